"""Per-op time of one benchmark configuration (TensorFlow profiler trace, summed by op type).

    python benchmarks/profile_encoder.py --implementations=albert_tf --seq_lengths=512 --batch_sizes=4 \
        --jit_compile=false --task=training [--steps=3]
    /work/venv-kerashub/bin/python benchmarks/profile_encoder.py --implementations=kerashub ...

Same models, inputs and step functions as `bench_encoder.py` (whose flags it takes: the first entry of
--implementations, --seq_lengths, --batch_sizes, --precisions; --jit_compile=true|false). After two
warm-up calls it traces --steps calls and prints the op types (or, with XLA, the compiled clusters and
their fusions, with XLA's own trace events turned on) by their share of the traced op time. The kerashub
configuration runs in this process, so run it with the KerasHub interpreter.
"""
from __future__ import annotations

import collections
import glob
import json
import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# XLA's CPU runtime emits a trace event per fusion / custom call only when asked to.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_enable_xprof_traceme=true")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_encoder  # noqa: E402  (defines the shared flags)
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

import albert_tf  # noqa: E402
from albert_tf.core import distribute  # noqa: E402

flags.DEFINE_enum("task", "training", ["inference", "training"], "Which step to trace.")
flags.DEFINE_integer("steps", 3, "Traced calls.")
flags.DEFINE_integer("top", 25, "Rows printed.")
FLAGS = flags.FLAGS


def op_times(logdir: str) -> collections.Counter:
    """Seconds per op type (or XLA fusion name) summed over the host threads of the trace in `logdir`.

    Op events of the TF executor are named `name:type`; only the type is kept. Nested events (an XLA
    cluster and its fusions) are both counted, so the shares of a cluster and its parts overlap.
    """
    (path,) = glob.glob(os.path.join(logdir, "plugins/profile/*/*.xplane.pb"))
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    totals: collections.Counter = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and not name.startswith("__inference"):
                    name = name.rsplit(":", 1)[1]
                totals[name] += event.duration_ps / 1e12
    return totals


def step_function():
    """(fn, inputs) of the configured implementation, XLA setting and task."""
    name = FLAGS.implementations.split(",")[0]
    seq, batch = int(FLAGS.seq_lengths[0]), int(FLAGS.batch_sizes[0])
    jit = FLAGS.jit_compile == "true"
    precision = FLAGS.precisions[0]
    if name == bench_encoder.KERASHUB:
        import bench_kerashub_peer

        settings = json.loads(bench_encoder.kerashub_settings(batch, seq, [jit], precision, "serve"))
        functions, _ = bench_kerashub_peer._step_functions(settings)
        return (lambda _: functions[(FLAGS.task, jit)]()), None
    distribute.configure_precision(precision)
    config = albert_tf.AlbertConfig.from_preset(FLAGS.preset)
    inputs = bench_encoder.make_inputs(config, batch, seq)
    fn = bench_encoder.step_functions(bench_encoder.build_model(name, config), inputs, jit)[FLAGS.task]
    return fn, inputs


def main(argv: list[str]) -> None:
    del argv
    fn, inputs = step_function()
    fn(inputs).numpy()
    fn(inputs).numpy()
    logdir = tempfile.mkdtemp(prefix="albert_profile_")
    tf.profiler.experimental.start(logdir)
    for _ in range(FLAGS.steps):
        fn(inputs).numpy()
    tf.profiler.experimental.stop()
    totals = op_times(logdir)
    calls = [v for k, v in totals.items() if k.startswith("__inference")]
    step = max(calls) / FLAGS.steps if calls else sum(totals.values()) / FLAGS.steps
    print(f"{FLAGS.implementations.split(',')[0]} {FLAGS.task} jit={FLAGS.jit_compile} "
          f"batch={FLAGS.batch_sizes[0]} seq={FLAGS.seq_lengths[0]}: {1000 * step:.0f} ms per traced call "
          f"(load average {os.getloadavg()[0]:.1f})")
    ops = {k: v for k, v in totals.items() if not k.startswith("__inference")}
    op_total = sum(ops.values())
    for name, seconds in sorted(ops.items(), key=lambda kv: -kv[1])[:FLAGS.top]:
        print(f"  {100 * seconds / op_total:5.1f}%  {1000 * seconds / FLAGS.steps:8.1f} ms  {name}")


if __name__ == "__main__":
    app.run(main)
