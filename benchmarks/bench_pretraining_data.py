"""Throughput of create_pretraining_data: the single-process path against N worker processes.

    python benchmarks/bench_pretraining_data.py --input_dir=/work/shared/data/corpus/gutenberg \
        [--spm_model_file=30k-clean.model] [--workers=1,2] [--dupe_factor=2] [--max_seq_length=512]

Without --spm_model_file, a SentencePiece model (--vocab_size pieces, the README's special symbols) is
trained on the corpus first. Each worker count runs the whole program once on the same input (read,
tokenise, build, shuffle, write); the outputs are compared byte for byte, and instances/s and the speed-up
over the first worker count are printed. CPU seconds (this process plus its workers) are printed too: on a
shared machine the wall-clock speed-up is capped by the cores actually free, while the CPU total shows the
parallel overhead (serial CPU / parallel CPU = the efficiency to expect with enough idle cores).
"""
from __future__ import annotations

import glob
import os
import resource
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

flags.DEFINE_string("input_dir", None,
                    "Directory of *.txt files (one sentence per line, blank lines between documents).")
flags.DEFINE_string("spm_model_file", None, "SentencePiece model; trained on the corpus when not given.")
flags.DEFINE_integer("vocab_size", 8000, "Pieces of the model trained when --spm_model_file is not given.")
flags.DEFINE_string("workers", "1,2", "Comma-separated worker counts to time.")
flags.DEFINE_integer("dupe_factor", 2, "Passes over the corpus.")
flags.DEFINE_integer("max_seq_length", 512, "Sequence length.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked LM predictions per sequence.")
flags.DEFINE_string("work_dir", None, "Where to write the model and records (default: a temporary directory).")
FLAGS = flags.FLAGS


def train_spm_model(files: list[str], prefix: str, vocab_size: int) -> str:
    """Trains a unigram model with the README's 30k-clean options; returns the .model path."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=",".join(files), model_prefix=prefix, vocab_size=vocab_size, pad_id=0, unk_id=1, eos_id=-1,
        bos_id=-1, control_symbols="[CLS],[SEP],[MASK]", user_defined_symbols='(,),",-,.,–,£,€',
        shuffle_input_sentence=True, input_sentence_size=10000000, character_coverage=0.99995,
        model_type="unigram", minloglevel=2)
    return prefix + ".model"


def cpu_seconds() -> tuple[float, float]:
    """User + system CPU time of (this process, its finished child processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def main(argv: list[str]) -> None:
    del argv
    from albert_tf.data import pretraining

    files = sorted(glob.glob(os.path.join(FLAGS.input_dir, "*.txt")))
    if not files:
        raise app.UsageError(f"--input_dir={FLAGS.input_dir}: no *.txt files there.")
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="bench_pretraining_")
    os.makedirs(work_dir, exist_ok=True)
    model = FLAGS.spm_model_file
    if not model:
        start = time.perf_counter()
        model = train_spm_model(files, os.path.join(work_dir, "bench-spm"), FLAGS.vocab_size)
        print(f"trained {FLAGS.vocab_size}-piece SentencePiece model in {time.perf_counter() - start:.1f}s: {model}")
    size_mb = sum(os.path.getsize(f) for f in files) / 1e6
    print(f"corpus: {len(files)} files, {size_mb:.1f} MB; dupe_factor={FLAGS.dupe_factor}, "
          f"max_seq_length={FLAGS.max_seq_length}, CPUs={os.cpu_count()}")

    results = []
    for workers in [int(w) for w in FLAGS.workers.split(",")]:
        output = os.path.join(work_dir, f"bench-w{workers}.tfrecord")
        start, start_cpu = time.perf_counter(), cpu_seconds()
        summary = pretraining.create_pretraining_data(
            files, output, spm_model_file=model, max_seq_length=FLAGS.max_seq_length,
            max_predictions_per_seq=FLAGS.max_predictions_per_seq, dupe_factor=FLAGS.dupe_factor,
            num_workers=workers)
        seconds = time.perf_counter() - start
        parent_cpu, workers_cpu = (end - begin for end, begin in zip(cpu_seconds(), start_cpu))
        with open(output, "rb") as f:
            data = f.read()
        results.append((workers, seconds, parent_cpu, workers_cpu, summary.num_instances, data))

    base_workers, base_seconds, base_parent, base_children, _, base_data = results[0]
    print(f"1-minute load average after the runs: {os.getloadavg()[0]:.1f} (CPUs: {os.cpu_count()})")
    print(f"{'workers':>7} {'seconds':>8} {'inst/s':>8} {'speed-up':>8} {'main_cpu':>8} {'worker_cpu':>10} "
          f"{'cpu_eff':>7} identical")
    for workers, seconds, parent_cpu, workers_cpu, instances, data in results:
        efficiency = (base_parent + base_children) / (parent_cpu + workers_cpu)
        print(f"{workers:7d} {seconds:8.1f} {instances / seconds:8.0f} {base_seconds / seconds:7.2f}x "
              f"{parent_cpu:8.1f} {workers_cpu:10.1f} {efficiency:7.2f} {data == base_data}")
    print(f"instances: {results[0][4]}. main_cpu is the serial part (read, assemble, shuffle, write), which "
          "bounds the speed-up at (main_cpu + worker_cpu) / main_cpu.")
    print(f"(speed-up relative to {base_workers} worker(s); output files in {work_dir})")


if __name__ == "__main__":
    flags.mark_flag_as_required("input_dir")
    app.run(main)
