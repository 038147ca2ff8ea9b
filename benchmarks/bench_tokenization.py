"""Throughput of the Python tokenizer vs the in-graph tokenizer layer on a text corpus.

    python benchmarks/bench_tokenization.py --corpus_dir=/work/shared/data/corpus/gutenberg

Python path: ``encode_ids(sp, preprocess_text(line, lower=True))`` line by line.
In-graph path: ``InGraphTokenizer`` on batches of lines, inside a ``tf.data`` pipeline whose map runs
the layer's ``tf.function`` on several batches in parallel.
Both are run once over the same non-blank lines; the script prints lines/s of each, the wall-time
and CPU-time ratios (the CPU ratio is the fairer one on a busy machine), and how many lines got
different ids from the two paths.
"""
from __future__ import annotations

import glob
import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from albert_tf import tokenization  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("corpus_dir", None, "Directory of *.txt files (one line per text).")
flags.DEFINE_string("spm_model_file",
                    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 "tests", "fixtures", "tokenization", "tiny-clean.model"),
                    "SentencePiece model to tokenize with.")
flags.DEFINE_bool("do_lower_case", True, "Lowercase the text, as for the released English models.")
flags.DEFINE_integer("batch_size", 2048, "Lines per in-graph batch.")
flags.DEFINE_integer("max_lines", 0, "Use only the first N lines (0: all).")
flags.mark_flag_as_required("corpus_dir")


def read_lines(corpus_dir: str, max_lines: int) -> list[str]:
    """Non-blank lines of every ``*.txt`` under ``corpus_dir`` (sorted), undecodable bytes replaced."""
    paths = sorted(glob.glob(os.path.join(corpus_dir, "*.txt")))
    if not paths:
        raise FileNotFoundError(f"No *.txt file in --corpus_dir={corpus_dir!r}.")
    lines = []
    for path in paths:
        with open(path, "rb") as f:
            lines.extend(ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip())
    return lines[:max_lines] if max_lines > 0 else lines


def main(argv: list[str]) -> None:
    del argv
    lines = read_lines(FLAGS.corpus_dir, FLAGS.max_lines)
    tokenizer = tokenization.FullTokenizer(spm_model_file=FLAGS.spm_model_file)
    layer = tokenization.InGraphTokenizer(FLAGS.spm_model_file, do_lower_case=FLAGS.do_lower_case)

    start, cpu_start = time.perf_counter(), time.process_time()
    python_ids = [tokenization.encode_ids(tokenizer.sp_model,
                                          tokenization.preprocess_text(line, lower=FLAGS.do_lower_case))
                  for line in lines]
    python_s, python_cpu = time.perf_counter() - start, time.process_time() - cpu_start

    tokenize = tf.function(layer.call, autograph=False)
    dataset = (tf.data.Dataset.from_tensor_slices(lines).batch(FLAGS.batch_size)
               .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
               .prefetch(tf.data.AUTOTUNE))
    tokenize(tf.constant(lines[:2]))  # Trace once outside the timing.
    start, cpu_start = time.perf_counter(), time.process_time()
    graph_batches = list(dataset)
    graph_s, graph_cpu = time.perf_counter() - start, time.process_time() - cpu_start

    graph_ids = [row for batch in graph_batches for row in batch.to_list()]
    mismatches = sum(a != b for a, b in zip(python_ids, graph_ids))
    n_tokens = sum(len(ids) for ids in python_ids)
    print(f"lines: {len(lines)}  tokens: {n_tokens}  model: {FLAGS.spm_model_file}")
    print(f"python   (preprocess_text + encode_ids): {len(lines) / python_s:10.0f} lines/s  "
          f"({python_s:.2f} s wall, {python_cpu:.2f} s CPU)")
    print(f"in-graph (InGraphTokenizer, batch {FLAGS.batch_size}): {len(lines) / graph_s:10.0f} lines/s  "
          f"({graph_s:.2f} s wall, {graph_cpu:.2f} s CPU on {os.cpu_count()} cores)")
    print(f"ratio in-graph / python: {python_s / graph_s:.2f}x wall time, "
          f"{python_cpu / graph_cpu:.2f}x CPU time")
    print(f"lines whose ids differ: {mismatches} of {len(lines)}")


if __name__ == "__main__":
    app.run(main)
