"""Throughput and memory of create_pretraining_data, whole process, for several worker counts.

    python benchmarks/bench_pretraining_data.py --input_dir=/work/shared/data/corpus/gutenberg \
        [--spm_model_file=30k-clean.model] [--workers=1,2] [--dupe_factor=2] [--max_seq_length=128]

Without --spm_model_file, a SentencePiece model (--vocab_size pieces, the README's special symbols) is
trained on the corpus first. Each worker count runs the whole program in a fresh process (Python and
TensorFlow start-up, read, tokenise, build, shuffle, write), timed from outside; the outputs are compared
byte for byte, and instances/s, the speed-up over the first worker count and the process's peak resident
set per GB of input text are printed. A single-process phase breakdown (start-up, read + tokenise, build,
write) shows the serial parts that bound what more workers can add. CPU seconds (main process plus
workers) are printed too: on a shared machine the wall-clock speed-up is capped by the cores actually free.
"""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

flags.DEFINE_string("input_dir", None,
                    "Directory of *.txt files (one sentence per line, blank lines between documents).")
flags.DEFINE_string("spm_model_file", None, "SentencePiece model; trained on the corpus when not given.")
flags.DEFINE_integer("vocab_size", 8000, "Pieces of the model trained when --spm_model_file is not given.")
flags.DEFINE_string("workers", "1,2", "Comma-separated worker counts to time.")
flags.DEFINE_integer("dupe_factor", 2, "Passes over the corpus.")
flags.DEFINE_integer("max_seq_length", 128, "Sequence length.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked LM predictions per sequence.")
flags.DEFINE_string("work_dir", None, "Where to write the model and records (default: a temporary directory).")
FLAGS = flags.FLAGS

# Runs in a fresh interpreter: one whole create_pretraining_data run, or the phase breakdown.
_CHILD = r"""
import json, os, random, resource, sys, time
start = time.perf_counter()
sys.path.insert(0, {root!r})
from albert_tf import tokenization
from albert_tf.data import pretraining, records
files, output, model, mode = {files!r}, {output!r}, {model!r}, {mode!r}
kwargs = dict(max_seq_length={seq}, max_predictions_per_seq={preds}, dupe_factor={dupe})
imported = time.perf_counter()
phases = {{"startup": imported - start}}
with open("/proc/self/statm") as f:
    startup_rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
startup_cpu = time.process_time()
if mode == "phases":
    tokenizer = tokenization.FullTokenizer(None, True, spm_model_file=model)
    vocab = pretraining.VocabIds.from_tokenizer(tokenizer, model)
    corpus = pretraining.read_documents(files, tokenizer, True, 1)
    phases["read_tokenize"] = time.perf_counter() - imported
    options = pretraining.PretrainingOptions(**kwargs)
    t = time.perf_counter()
    instances = list(pretraining.generate_training_instances(corpus, options, vocab, random.Random(1)))
    phases["build_shuffle"] = time.perf_counter() - t
    t = time.perf_counter()
    with records.RoundRobinWriter([output]) as writer:
        for serialized in instances:
            writer.write(serialized)
    phases["write"] = time.perf_counter() - t
    count = len(instances)
else:
    count = pretraining.create_pretraining_data(files, output, spm_model_file=model, num_workers=int(mode),
                                                **kwargs).num_instances
own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps(dict(phases=phases, instances=count, main_cpu=own.ru_utime + own.ru_stime,
                      startup_cpu=startup_cpu, startup_rss=startup_rss,
                      worker_cpu=children.ru_utime + children.ru_stime,
                      peak_rss=max(own.ru_maxrss, children.ru_maxrss) * 1024)))
"""


def run_child(files: list[str], output: str, model: str, mode: str) -> tuple[float, dict]:
    """Runs one fresh process; returns (wall seconds, its JSON report)."""
    code = _CHILD.format(root=ROOT, files=files, output=output, model=model, mode=mode,
                         seq=FLAGS.max_seq_length, preds=FLAGS.max_predictions_per_seq, dupe=FLAGS.dupe_factor)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"run {mode} failed:\n{proc.stderr[-3000:]}")
    return seconds, json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    del argv
    files = sorted(glob.glob(os.path.join(FLAGS.input_dir, "*.txt")))
    if not files:
        raise app.UsageError(f"--input_dir={FLAGS.input_dir}: no *.txt files there.")
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="bench_pretraining_")
    os.makedirs(work_dir, exist_ok=True)
    model = FLAGS.spm_model_file
    if not model:
        start = time.perf_counter()
        from albert_tf.demo import train_sentencepiece  # the original's spm_train flags, symbols as lists

        model = train_sentencepiece(",".join(files), os.path.join(work_dir, "bench-spm"), FLAGS.vocab_size)
        print(f"trained {FLAGS.vocab_size}-piece SentencePiece model in {time.perf_counter() - start:.1f}s: {model}")
    size = sum(os.path.getsize(f) for f in files)
    print(f"corpus: {len(files)} files, {size / 1e6:.1f} MB; dupe_factor={FLAGS.dupe_factor}, "
          f"max_seq_length={FLAGS.max_seq_length}, CPUs={os.cpu_count()}")

    seconds, report = run_child(files, os.path.join(work_dir, "phases.tfrecord"), model, "phases")
    phases = report["phases"]
    print("single-process phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
          + f"; {report['instances'] / phases['build_shuffle']:.0f} instances/s in the build alone")

    results = []
    for workers in [int(w) for w in FLAGS.workers.split(",")]:
        output = os.path.join(work_dir, f"bench-w{workers}.tfrecord")
        seconds, report = run_child(files, output, model, str(workers))
        with open(output, "rb") as f:
            data = f.read()
        results.append((workers, seconds, report, data))

    base_seconds, base_report, base_data = results[0][1], results[0][2], results[0][3]
    print(f"1-minute load average after the runs: {os.getloadavg()[0]:.1f} (CPUs: {os.cpu_count()})")
    print(f"{'workers':>7} {'seconds':>8} {'inst/s':>8} {'speed-up':>8} {'main_cpu':>8} {'worker_cpu':>10} "
          f"{'inst/cpu_s':>10} {'peak MB':>8} {'MB/GB in':>8} identical")
    for workers, seconds, report, data in results:
        peak = report["peak_rss"] / 2**20
        # Memory that grows with the input: the peak over the resident set right after start-up (the
        # TensorFlow import alone holds about 0.7 GB), per GB of input text.
        growth = (report["peak_rss"] - report["startup_rss"]) / 2**20
        cpu = report["main_cpu"] + report["worker_cpu"]
        print(f"{workers:7d} {seconds:8.1f} {report['instances'] / seconds:8.0f} {base_seconds / seconds:7.2f}x "
              f"{report['main_cpu']:8.1f} {report['worker_cpu']:10.1f} {report['instances'] / cpu:10.0f} "
              f"{peak:8.0f} {growth / (size / 1e9):8.0f} {data == base_data}")
    print(f"start-up (imports, TensorFlow included): {base_report['startup_cpu']:.1f} CPU s and "
          f"{base_report['startup_rss'] / 2**20:.0f} MB resident, serial in every run.")
    print(f"instances: {base_report['instances']}. inst/cpu_s: instances per CPU second of all processes; "
          "MB/GB in: peak minus the start-up resident set, per GB of input. seconds are whole processes "
          "(start-up included); main_cpu "
          "is the serial part (start-up, reading, assembling the corpus, shuffle, write), which bounds the "
          "speed-up at (main_cpu + worker_cpu) / main_cpu with enough free cores.")
    print(f"(speed-up relative to {results[0][0]} worker(s); output files in {work_dir})")


if __name__ == "__main__":
    flags.mark_flag_as_required("input_dir")
    app.run(main)
