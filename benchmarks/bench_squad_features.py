"""Throughput of the SQuAD feature writer (features/s): one process against N worker processes.

    python benchmarks/bench_squad_features.py --input_file=/work/shared/data/squad/dev-v1.1.json \
        [--spm_model_file=30k-clean.model] [--workers=1,2] [--max_seq_length=384] [--doc_stride=128] \
        [--max_query_length=64] [--is_training=false]

Without --spm_model_file, a SentencePiece model (--vocab_size pieces, the README's special symbols,
`albert_tf.demo.train_sentencepiece`) is trained on the file's contexts first. Each worker count runs
the whole job once (read the JSON, encode and align every paragraph, build the spans, write the
TFRecords and, for eval features, the side file), as `create_finetuning_data.py --task=squad` does;
the outputs are compared byte for byte, and features/s and the speed-up over the first worker count
are printed, with the CPU seconds of this process and its workers (on a shared machine the wall-clock
speed-up is capped by the cores actually free; the CPU total shows the parallel overhead).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

flags.DEFINE_string("input_file", None, "SQuAD JSON file (e.g. dev-v1.1.json).")
flags.DEFINE_string("spm_model_file", None, "SentencePiece model; trained on the contexts when not given.")
flags.DEFINE_integer("vocab_size", 8000, "Pieces of the model trained when --spm_model_file is not given.")
flags.DEFINE_string("workers", "1,2", "Comma-separated worker counts to time.")
flags.DEFINE_integer("max_seq_length", 384, "Sequence length.")
flags.DEFINE_integer("doc_stride", 128, "Doc stride.")
flags.DEFINE_integer("max_query_length", 64, "Question length in pieces.")
flags.DEFINE_bool("is_training", False, "Training features (answer positions) instead of eval features.")
flags.DEFINE_string("work_dir", None, "Where to write the model and records (default: a temporary directory).")
FLAGS = flags.FLAGS


def cpu_seconds() -> tuple[float, float]:
    """User + system CPU time of (this process, its finished child processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def contexts_file(input_file: str, path: str) -> str:
    """Writes every context of a SQuAD file, one per line, for SentencePiece training."""
    with open(input_file, encoding="utf-8") as f:
        articles = json.load(f)["data"]
    with open(path, "w", encoding="utf-8") as f:
        for article in articles:
            for paragraph in article["paragraphs"]:
                f.write(" ".join(paragraph["context"].split()) + "\n")
    return path


def read_outputs(output_file: str) -> bytes:
    """The TFRecord bytes plus the side file's bytes (when written)."""
    from albert_tf.tasks.squad import data as squad

    data = b""
    for path in (output_file, squad.eval_features_path(output_file)):
        if os.path.exists(path):
            with open(path, "rb") as f:
                data += f.read()
    return data


def main(argv: list[str]) -> None:
    del argv
    from albert_tf import tokenization
    from albert_tf.tasks.squad import data as squad
    from albert_tf.demo import train_sentencepiece

    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="bench_squad_")
    os.makedirs(work_dir, exist_ok=True)
    model = FLAGS.spm_model_file
    if not model:
        start = time.perf_counter()
        text = contexts_file(FLAGS.input_file, os.path.join(work_dir, "contexts.txt"))
        model = train_sentencepiece(text, os.path.join(work_dir, "bench-spm"), FLAGS.vocab_size)
        print(f"trained {FLAGS.vocab_size}-piece SentencePiece model in {time.perf_counter() - start:.1f}s: {model}")
    worker_counts = [int(w) for w in FLAGS.workers.split(",")]
    print(f"{FLAGS.input_file}: max_seq_length={FLAGS.max_seq_length} doc_stride={FLAGS.doc_stride} "
          f"max_query_length={FLAGS.max_query_length} is_training={FLAGS.is_training} CPUs={os.cpu_count()}")

    results = []
    for workers in worker_counts:
        output = os.path.join(work_dir, f"bench-w{workers}.tf_record")
        start, start_cpu = time.perf_counter(), cpu_seconds()
        examples = squad.read_squad_examples(FLAGS.input_file, FLAGS.is_training)
        tokenizer = tokenization.FullTokenizer(spm_model_file=model, do_lower_case=True)
        summary = squad.write_squad_features(
            examples, tokenizer, output, max_seq_length=FLAGS.max_seq_length, doc_stride=FLAGS.doc_stride,
            max_query_length=FLAGS.max_query_length, is_training=FLAGS.is_training, do_lower_case=True,
            num_workers=workers)
        seconds = time.perf_counter() - start
        parent_cpu, workers_cpu = (end - begin for end, begin in zip(cpu_seconds(), start_cpu))
        results.append((workers, seconds, parent_cpu, workers_cpu, summary.num_features, read_outputs(output)))

    base_workers, base_seconds, base_parent, base_children, _, base_data = results[0]
    print(f"1-minute load average after the runs: {os.getloadavg()[0]:.1f} (CPUs: {os.cpu_count()})")
    print(f"{'workers':>7} {'seconds':>8} {'feat/s':>8} {'speed-up':>8} {'main_cpu':>8} {'worker_cpu':>10} "
          f"{'cpu_eff':>7} identical")
    for workers, seconds, parent_cpu, workers_cpu, features, data in results:
        efficiency = (base_parent + base_children) / (parent_cpu + workers_cpu)
        print(f"{workers:7d} {seconds:8.1f} {features / seconds:8.0f} {base_seconds / seconds:7.2f}x "
              f"{parent_cpu:8.1f} {workers_cpu:10.1f} {efficiency:7.2f} {data == base_data}")
    print(f"features: {results[0][4]} of {len(examples)} questions "
          f"(speed-up relative to {base_workers} worker(s); output files in {work_dir})")


if __name__ == "__main__":
    flags.mark_flag_as_required("input_file")
    app.run(main)
