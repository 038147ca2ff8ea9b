"""Serving latency and throughput of the exported raw-text classifier SavedModel (text in, labels out).

    python benchmarks/bench_serving.py [--preset=base_v2] [--seq_length=128] [--requests=200] \
        [--spm_model_file=tests/fixtures/tokenization/tiny-clean.model]

Builds an `AlbertClassifier` (random weights; --preset config) for MRPC, exports it with
`albert_tf.tasks.glue.export.export_classifier` (the same SavedModels `run_classifier.py --export_dir` writes),
loads the text SavedModel back with `tf.saved_model.load` and calls its `serving_default` signature the
way a server does: in-graph SentencePiece tokenisation, packing to --seq_length, the encoder and the head.
Reports p50/p99 latency of single requests (batch 1) and the throughput of --batch_size requests per call,
each over --requests timed calls after --warmup untimed ones. Sentences are long enough that every request
fills the sequence.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

import albert_tf  # noqa: E402
from albert_tf.tasks.glue import export as glue  # noqa: E402

flags.DEFINE_string("preset", "base_v2", "Model config preset (see albert_tf.PRESETS).")
flags.DEFINE_integer("seq_length", 128, "max_seq_length of the exported model.")
flags.DEFINE_integer("batch_size", 32, "Requests per call for the throughput figure.")
flags.DEFINE_integer("requests", 100, "Timed calls per figure.")
flags.DEFINE_integer("warmup", 5, "Untimed calls before timing.")
flags.DEFINE_string("spm_model_file", os.path.join(ROOT, "tests", "fixtures", "tokenization", "tiny-clean.model"),
                    "SentencePiece model bundled into the export.")
FLAGS = flags.FLAGS

_WORDS = ("the quick brown fox jumps over the lazy dog while a small bird sings in the old oak tree near "
          "the river and children play football on the green field behind the school").split()


def sentence(rng: np.random.Generator, words: int) -> str:
    return " ".join(rng.choice(_WORDS, words))


def timed_calls(fn, args: tuple, calls: int, warmup: int) -> np.ndarray:
    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        out = fn(*args)
        np.asarray(out["probabilities"])
        times.append(time.perf_counter() - start)
    return np.array(times)


def main(argv: list[str]) -> None:
    del argv
    config = albert_tf.AlbertConfig.from_preset(FLAGS.preset)
    model = albert_tf.AlbertClassifier(config, num_labels=2)
    export_base = tempfile.mkdtemp(prefix="bench_serving_")
    start = time.perf_counter()
    paths = glue.export_classifier(model, export_base, task_name="mrpc", max_seq_length=FLAGS.seq_length,
                                   spm_model_file=FLAGS.spm_model_file)
    print(f"exported in {time.perf_counter() - start:.1f}s: {paths['_text']}")
    serve = tf.saved_model.load(paths["_text"]).signatures["serving_default"]

    rng = np.random.default_rng(0)
    words = FLAGS.seq_length  # more words than positions: every request is truncated to a full sequence

    def texts(n: int) -> tuple[tf.Tensor, tf.Tensor]:
        return (tf.constant([sentence(rng, words) for _ in range(n)]),
                tf.constant([sentence(rng, words) for _ in range(n)]))

    def call(text_a, text_b):
        return serve(text_a=text_a, text_b=text_b)

    single = timed_calls(call, texts(1), FLAGS.requests, FLAGS.warmup) * 1000
    batched = timed_calls(call, texts(FLAGS.batch_size), max(FLAGS.requests // 5, 10), FLAGS.warmup)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"{FLAGS.preset} text-in MRPC classifier, seq {FLAGS.seq_length}, {device}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  batch 1: p50 {np.percentile(single, 50):.1f} ms, p99 {np.percentile(single, 99):.1f} ms "
          f"({FLAGS.requests} requests)")
    print(f"  batch {FLAGS.batch_size}: {FLAGS.batch_size / np.median(batched):.1f} sequences/s "
          f"(median call {1000 * np.median(batched):.0f} ms)")


if __name__ == "__main__":
    app.run(main)
