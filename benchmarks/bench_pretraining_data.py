"""Throughput, CPU and memory of pretraining-data generation: this writer vs the original, and the Beam pipeline.

    python benchmarks/bench_pretraining_data.py --input_dir=/work/shared/data/corpus/gutenberg \
        --original_dir=/path/to/google-research/albert --beam_workers=1,2

Input: the `--files` books of `--input_dir` (default: six books, 3.2 MB, all valid UTF-8 so that the
original can read them). Without --spm_model_file, a SentencePiece model (--vocab_size pieces, the
README's special symbols) is trained on them first. Every measurement is a fresh process:

1. **Whole process, one core** (`--max_seq_length`, `--dupe_factor`, default 128 and 1): this repository's
   `create_pretraining_data.py --num_workers=1` and, with `--original_dir` (a checkout of
   github.com/google-research/albert, run under `tensorflow.compat.v1`), the original's script, run
   alternately `--repeats` times; CPU seconds (user + system) and peak resident memory of the whole
   process from `wait4`, the best of the repeats. The speed-up is the ratio of CPU seconds.
2. **Worker counts** (`--workers`): the in-process writer with `--num_workers=k`; outputs compared.
3. **Beam** (`--beam_workers`, needs apache-beam in `--beam_python`'s environment): the pipeline on the
   DirectRunner in multi-process mode with k workers, all on the same data (`--beam_dupe_factor`). The
   workers clock their own stages (`pretraining.beam.PipelineFigures`, through Beam's metrics): throughput
   is instances per *work second*, from the first element's start to the last's end (worker start-up
   excluded); beside it the CPU seconds of the runner process, of its workers in all (start-up included),
   of the stages summed and of the busiest worker, and the CPU-bound speed-up (the 1-worker stage CPU over
   the busiest worker's): what the work allows when every worker has a free core. The shards are compared.
4. **Projection**: a phase breakdown at `--projection_seq_length` (512) with dupe 1 gives the CPU seconds
   per MB of input for reading + tokenising (T) and for one pass of building + writing (B); then
   CPU-hours(S GB, dupe D) = S * 1000 * (T + D * B) / 3600, printed for S = `--projection_gb` (16, the
   paper's corpus) and D = `--projection_dupe_factor` (40, the original recipe's `dupe_factor`). Memory
   per GB of input is measured as the growth of the resident set over reading the corpus (after reading
   less before), as a slope between the corpus read once and three times (start-up and fixed costs
   cancel), printed beside the model of the corpus arrays (5 bytes per token).

`--sections` picks sections (e.g. `--sections=beam` for the Beam figures alone, about a minute).
On a shared machine wall-clock ratios are capped by the cores actually free (the load average is
printed); CPU seconds are the comparable figures.
"""
from __future__ import annotations

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
flags.DEFINE_string("files", "austen-emma,austen-persuasion,austen-sense,blake-poems,chesterton-brown,whitman-leaves",
                    "Comma-separated book names (<name>.txt in --input_dir); empty: every *.txt file.")
flags.DEFINE_string("spm_model_file", None, "SentencePiece model; trained on the corpus when not given.")
flags.DEFINE_integer("vocab_size", 8000, "Pieces of the model trained when --spm_model_file is not given.")
flags.DEFINE_string("original_dir", None,
                    "A checkout of github.com/google-research/albert in a directory named `albert` (the script "
                    "imports `from albert import tokenization`): its create_pretraining_data.py is timed side by "
                    "side (skipped when not given).")
flags.DEFINE_integer("repeats", 2, "Alternating runs of this writer and the original; the best CPU time counts.")
flags.DEFINE_string("workers", "1,2", "Worker counts of the in-process writer (empty: skip).")
flags.DEFINE_string("beam_workers", "1,2", "DirectRunner worker counts of the Beam pipeline (empty: skip).")
flags.DEFINE_string("beam_python", sys.executable, "Interpreter with apache-beam installed, for the Beam runs.")
flags.DEFINE_integer("beam_dupe_factor", 3, "Passes over the corpus in the Beam runs (more work per start-up).")
flags.DEFINE_integer("beam_shards", 4, "Output shards of the Beam runs.")
flags.DEFINE_integer("dupe_factor", 1, "Passes over the corpus (whole-process and worker-count runs).")
flags.DEFINE_integer("max_seq_length", 128, "Sequence length (whole-process and worker-count runs).")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked LM predictions per sequence.")
flags.DEFINE_integer("projection_seq_length", 512, "Sequence length of the projection's phase breakdown.")
flags.DEFINE_integer("projection_dupe_factor", 40, "Dupe factor of the projection (the original recipe: 40).")
flags.DEFINE_float("projection_gb", 16.0, "Corpus size of the projection, GB of text (the paper's: 16).")
flags.DEFINE_list("sections", ["whole", "workers", "beam", "projection"],
                  "Sections to run: whole (1, needs --original_dir for the side-by-side), workers (2), beam (3), "
                  "projection (4); e.g. --sections=beam for the Beam figures alone.")
flags.DEFINE_string("work_dir", None, "Where to write the model and records (default: a temporary directory).")
FLAGS = flags.FLAGS


def timed(argv: list[str], env: dict | None = None) -> dict:
    """Runs a whole process; returns wall s, CPU s (user + system, its worker processes included), peak
    resident bytes (of the largest single process: it or one of its workers) and its stdout / stderr."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env, cwd=ROOT)
        # wait4: the kernel's accounting of this child and its reaped descendants, nothing else.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv[:3])} ... failed:\n{stderr[-3000:]}")
    return dict(wall=wall, cpu=usage.ru_utime + usage.ru_stime, peak_rss=usage.ru_maxrss * 1024,
                stdout=stdout, stderr=stderr)


def count_records(paths: list[str]) -> int:
    from albert_tf.data import tfrecord

    return sum(len(tfrecord.read_records(p)) for p in paths)


# Runs in a fresh interpreter: the phase breakdown of one in-process run (CPU seconds per phase).
_PHASES = r"""
import json, os, random, resource, sys, time
sys.path.insert(0, {root!r})
from albert_tf.data import tfrecord
from albert_tf.tasks.pretraining import data as pretraining
options = pretraining.PretrainingOptions(max_seq_length={seq}, max_predictions_per_seq={preds}, dupe_factor=1)
def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
startup_rss = resident()
t0 = time.process_time()
tokenizer, vocab = pretraining.load_tokenizer({model!r}, None, True)
before_read = resident()
corpus = pretraining.read_documents({files!r}, tokenizer, True, 1)
t1 = time.process_time()
corpus_rss = resident() - before_read
count = 0
with tfrecord.RoundRobinWriter([{output!r}]) as writer:
    for record in pretraining.generate_training_instances(corpus, options, vocab, random.Random(1)):
        writer.write(record)
        count += 1
t2 = time.process_time()
peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(read_tokenize=t1 - t0, build_write=t2 - t1, instances=count, tokens=len(corpus.ids),
                      startup_rss=startup_rss, corpus_rss=corpus_rss, peak_rss=peak_rss)))
"""

# Runs in a fresh interpreter: one Beam pipeline, timed from its start to its end.
_BEAM = r"""
import dataclasses, json, resource, sys, time
sys.path.insert(0, {root!r})
from albert_tf.tasks.pretraining import data as pretraining
from albert_tf.tasks.pretraining import beam as pretraining_beam
options = pretraining.PretrainingOptions(max_seq_length={seq}, max_predictions_per_seq={preds}, dupe_factor={dupe})
args = ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers={workers}"]
def cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime
figures = []
start, runner, workers = time.perf_counter(), cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
paths = pretraining_beam.run_pipeline({files!r}, {output!r}, num_output_shards={shards}, pipeline_args=args,
                                      spm_model_file={model!r}, options=options, report=figures.append)
seconds = time.perf_counter() - start
print(json.dumps(dict(seconds=seconds, paths=paths, runner_cpu=cpu(resource.RUSAGE_SELF) - runner,
                      workers_cpu=cpu(resource.RUSAGE_CHILDREN) - workers,
                      figures=dataclasses.asdict(figures[0]))))
"""


def main(argv: list[str]) -> None:
    del argv
    sections = set(FLAGS.sections)
    unknown = sections - {"whole", "workers", "beam", "projection"}
    if unknown:
        raise app.UsageError(f"--sections: unknown {sorted(unknown)}; choose from whole, workers, beam, projection.")

    names = [n.strip() for n in FLAGS.files.split(",") if n.strip()]
    if names:
        files = [os.path.join(FLAGS.input_dir, f"{n}.txt") for n in names]
    else:
        files = sorted(os.path.join(FLAGS.input_dir, n) for n in os.listdir(FLAGS.input_dir) if n.endswith(".txt"))
    missing = [f for f in files if not os.path.exists(f)]
    if not files or missing:
        raise app.UsageError(f"--input_dir / --files: missing {missing or 'every *.txt'}.")
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="bench_pretraining_")
    os.makedirs(work_dir, exist_ok=True)
    model = FLAGS.spm_model_file
    if not model:
        # Trained in its own process (the original's spm_train flags, symbols as lists): this process must stay
        # small, since Linux reports a child's peak memory as at least its parent's at the fork.
        prefix = os.path.join(work_dir, "bench-spm")
        subprocess.run([sys.executable, "-c", "import sys; from albert_tf.demo import train_sentencepiece; "
                        "train_sentencepiece(*sys.argv[1:3], int(sys.argv[3]))", ",".join(files), prefix,
                        str(FLAGS.vocab_size)], check=True, cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        model = prefix + ".model"
    size_mb = sum(os.path.getsize(f) for f in files) / 1e6
    print(f"corpus: {len(files)} files, {size_mb:.2f} MB ({', '.join(os.path.basename(f) for f in files)}); "
          f"CPUs={os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    common = [f"--input_file={','.join(files)}", f"--spm_model_file={model}",
              f"--max_seq_length={FLAGS.max_seq_length}",
              f"--max_predictions_per_seq={FLAGS.max_predictions_per_seq}", f"--dupe_factor={FLAGS.dupe_factor}"]

    # 1. Whole process, one core, side by side with the original.
    ours_cmd = [sys.executable, os.path.join(ROOT, "create_pretraining_data.py"), *common, "--num_workers=1"]
    runs: dict[str, list[dict]] = {"albert-tf": [], "original": []}
    for repeat in range(FLAGS.repeats if "whole" in sections else 0):
        out = os.path.join(work_dir, "ours.tfrecord")
        result = timed(ours_cmd + [f"--output_file={out}"])
        result["instances"] = count_records([out])
        runs["albert-tf"].append(result)
        if FLAGS.original_dir:
            out = os.path.join(work_dir, "original.tfrecord")
            vocab = model[:-len(".model")] + ".vocab" if model.endswith(".model") else model
            result = timed([sys.executable, os.path.join(FLAGS.original_dir, "create_pretraining_data.py"), *common,
                            f"--vocab_file={vocab}", f"--output_file={out}"],
                           env={"PYTHONPATH": os.path.dirname(os.path.abspath(FLAGS.original_dir))})
            result["instances"] = count_records([out])
            runs["original"].append(result)
    if "whole" in sections:
        print(f"\n1. whole process, one core: seq {FLAGS.max_seq_length}, dupe {FLAGS.dupe_factor}, best of "
              f"{FLAGS.repeats} alternating runs (load average now {os.getloadavg()[0]:.1f})")
        print(f"{'writer':>10} {'CPU s':>7} {'wall s':>7} {'instances':>9} {'inst/CPU s':>10} {'CPU s/MB':>8} "
              f"{'peak MB':>8}")
        best = {}
        for name, results in runs.items():
            if not results:
                continue
            r = best[name] = min(results, key=lambda x: x["cpu"])
            print(f"{name:>10} {r['cpu']:7.2f} {r['wall']:7.2f} {r['instances']:9d} {r['instances'] / r['cpu']:10.0f} "
                  f"{r['cpu'] / size_mb:8.2f} {r['peak_rss'] / 2**20:8.0f}")
        if "original" in best:
            ratio = (best["albert-tf"]["instances"] / best["albert-tf"]["cpu"]) / (
                best["original"]["instances"] / best["original"]["cpu"])
            print(f"speed-up over the original (instances per CPU second, whole process): {ratio:.2f}x "
                  f"(CPU seconds: {best['original']['cpu'] / best['albert-tf']['cpu']:.2f}x)")

    # 2. Worker counts of the in-process writer.
    counts = [int(w) for w in FLAGS.workers.split(",") if w.strip()] if "workers" in sections else []
    if counts:
        print(f"\n2. in-process writer, --num_workers (whole process)")
        print(f"{'workers':>7} {'wall s':>7} {'CPU s':>7} {'inst/s':>8} {'speed-up':>8} identical")
        reference = None
        for workers in counts:
            out = os.path.join(work_dir, f"ours-w{workers}.tfrecord")
            r = timed(ours_cmd[:-1] + [f"--num_workers={workers}", f"--output_file={out}"])
            data = open(out, "rb").read()
            reference = reference or (r["wall"], data)
            n = count_records([out])
            print(f"{workers:7d} {r['wall']:7.2f} {r['cpu']:7.2f} {n / r['wall']:8.0f} "
                  f"{reference[0] / r['wall']:7.2f}x {data == reference[1]}")

    # 3. The Beam pipeline, DirectRunner, k worker processes.
    beam_counts = [int(w) for w in FLAGS.beam_workers.split(",") if w.strip()] if "beam" in sections else []
    if beam_counts:
        print(f"\n3. Beam pipeline, DirectRunner multi_processing: seq {FLAGS.max_seq_length}, dupe "
              f"{FLAGS.beam_dupe_factor}, {FLAGS.beam_shards} shards (load average now {os.getloadavg()[0]:.1f})")
        print(f"{'workers':>7} {'run s':>6} {'work s':>6} {'inst/s':>7} {'speed-up':>8} {'runner':>6} "
              f"{'workers':>7} {'stages':>6} {'busiest':>7} {'CPU bound':>9} {'peak MB':>7} identical")
        reference = None
        for workers in beam_counts:
            output = os.path.join(work_dir, f"beam-w{workers}", "train")
            code = _BEAM.format(root=ROOT, seq=FLAGS.max_seq_length, preds=FLAGS.max_predictions_per_seq,
                                dupe=FLAGS.beam_dupe_factor, workers=workers, files=files, output=output,
                                shards=FLAGS.beam_shards, model=model)
            r = timed([FLAGS.beam_python, "-c", code], env={"PYTHONPATH": ROOT})
            report = json.loads(r["stdout"].strip().splitlines()[-1])
            figures = report["figures"]
            data = [open(p, "rb").read() for p in report["paths"]]
            n = count_records(report["paths"])
            stages, busiest = sum(figures["stage_cpu"].values()), max(figures["process_cpu"].values())
            reference = reference or (n / figures["work_seconds"], stages, data)
            print(f"{workers:7d} {report['seconds']:6.2f} {figures['work_seconds']:6.2f} "
                  f"{n / figures['work_seconds']:7.0f} {n / figures['work_seconds'] / reference[0]:7.2f}x "
                  f"{report['runner_cpu']:6.2f} {report['workers_cpu']:7.2f} {stages:6.2f} {busiest:7.2f} "
                  f"{reference[1] / busiest:8.2f}x {r['peak_rss'] / 2**20:7.0f} {data == reference[2]}")
            print(f"{'':7} stage CPU s: " + ", ".join(f"{k} {v:.2f}" for k, v in figures["stage_cpu"].items())
                  + "; per worker: " + ", ".join(f"{v:.2f}" for v in sorted(figures["process_cpu"].values()))
                  + "; stage wall s: " + ", ".join(f"{k} {v:.2f}" for k, v in figures["stage_seconds"].items()))
        print("run s: all of run_pipeline (tokenizer load, pipeline construction, worker start, work); work s: from "
              "the first element's start to the last's end, as the workers clocked them (start-up excluded); "
              "inst/s and speed-up: instances per work second. CPU seconds: runner = the launching process "
              "(pipeline construction and the runner's coordination), workers = its worker processes in all "
              "(their start-up included), stages = the pipeline's own work (tokenize, plan, build, write) summed, "
              "busiest = the stage CPU of the busiest worker; CPU bound = the 1-worker stage CPU / busiest: the "
              "speed-up the work allows when every worker has a free core (runner coordination and waits "
              "excluded). peak MB: the largest single process (the runner or one worker).")

    # 4. Projection at the paper's settings and memory per GB of input: the same run on the corpus and on
    # the corpus read 3 times (the files listed thrice).
    if "projection" not in sections:
        print(f"(outputs in {work_dir})")
        return
    phases = {}
    for copies in (1, 3):
        output = os.path.join(work_dir, f"phases-x{copies}.tfrecord")
        code = _PHASES.format(root=ROOT, seq=FLAGS.projection_seq_length, preds=FLAGS.max_predictions_per_seq,
                              model=model, files=files * copies, output=output)
        phases[copies] = json.loads(timed([sys.executable, "-c", code])["stdout"].strip().splitlines()[-1])
    one = phases[1]
    t_read, t_build = one["read_tokenize"] / size_mb, one["build_write"] / size_mb
    hours = FLAGS.projection_gb * 1000 * (t_read + FLAGS.projection_dupe_factor * t_build) / 3600
    # The corpus's resident bytes (resident set after reading less before), per GB: the slope between the
    # corpus read once and thrice (start-up and the fixed costs cancel), and the model of its arrays.
    per_gb = (phases[3]["corpus_rss"] - phases[1]["corpus_rss"]) / 2**20 / (2 * size_mb / 1000)
    model_per_gb = 5 * one["tokens"] / size_mb / 1000  # 4-byte id + 1-byte start flag per token
    print(f"\n4. projection: at seq {FLAGS.projection_seq_length}, per MB of text: read + tokenise T = {t_read:.3f} "
          f"CPU s, one pass of build + write B = {t_build:.3f} CPU s ({one['instances']} instances, "
          f"{one['tokens'] / size_mb / 1e3:.0f}k tokens per MB)")
    print(f"CPU-hours = GB * 1000 * (T + dupe * B) / 3600 = {FLAGS.projection_gb:g} * 1000 * ({t_read:.3f} + "
          f"{FLAGS.projection_dupe_factor} * {t_build:.3f}) / 3600 = {hours:.0f} CPU-hours "
          f"(~{hours / 16:.1f} h on 16 cores; the Beam pipeline adds per-worker start-up and "
          "moving the corpus to each worker)")
    measured = f"{per_gb:.0f} MB" if per_gb > 0 else "not measurable here (below the resident set's noise)"
    print(f"memory per GB of input: {measured} measured (resident set after reading less before, the corpus "
          f"read 3x vs 1x: {phases[1]['corpus_rss'] / 2**20:.1f} -> {phases[3]['corpus_rss'] / 2**20:.1f} MB); "
          f"model: the corpus arrays, 5 bytes/token = {model_per_gb:.0f} MB per GB. Plus, independent of the input "
          f"size: the start-up {one['startup_rss'] / 2**20:.0f} MB and the in-process writer's shuffle buffer "
          "(100k instances, ~3 KB each at seq 512, ~300 MB). A Beam build worker holds the same corpus arrays "
          "plus one shard's records.")
    print(f"(outputs in {work_dir})")


if __name__ == "__main__":
    flags.mark_flag_as_required("input_dir")
    app.run(main)
