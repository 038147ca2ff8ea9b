"""A/B of the training step: LayerNorm differentiated op by op (A) vs its fused backward pass (B).

The same ALBERT pretraining model and batch (`bench_encoder.py`'s), traced twice in one process, once with
`layers.layer_norm_fused_backward` replaced by the plain `layers.layer_norm` (A) and once as shipped (B);
the two steps run in interleaved rounds (order alternating) so a change of load touches both alike, and
the medians' ratio is printed. `--peak_memory` instead runs each variant in a fresh process for 3 steps and
prints its peak resident set (`VmHWM`). No XLA around the step (the CPU training default).

    python benchmarks/ab_layer_norm.py --seq_length=384 --batch_size=4 --rounds=7
    python benchmarks/ab_layer_norm.py --seq_length=384 --batch_size=4 --peak_memory
    python benchmarks/ab_layer_norm.py --config=demo --seq_length=64 --batch_size=32 --steps_per_round=20 \
        --max_predictions_per_seq=10
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.dirname(_HERE)]  # bench_encoder, and albert_tf from a checkout

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

import albert_tf  # noqa: E402
import bench_encoder  # noqa: E402  (defines --preset and --max_predictions_per_seq, used by its helpers)
from albert_tf.demo import small_config  # noqa: E402
from albert_tf.modeling import layers  # noqa: E402

flags.DEFINE_enum("config", "preset", ["preset", "demo"], "--preset's config, or the demo's small one.")
flags.DEFINE_integer("seq_length", 384, "Sequence length.")
flags.DEFINE_integer("batch_size", 4, "Sequences per batch.")
flags.DEFINE_integer("rounds", 7, "Interleaved rounds.")
flags.DEFINE_integer("steps_per_round", 1, "Training steps per variant and round.")
flags.DEFINE_bool("peak_memory", False, "Peak memory of each variant (fresh processes) instead of time.")
flags.DEFINE_enum("variant", None, ["A", "B"], "Internal: the variant a --peak_memory child runs.")
FLAGS = flags.FLAGS

_FUSED = layers.layer_norm_fused_backward


def _use(variant: str) -> None:
    layers.layer_norm_fused_backward = layers.layer_norm if variant == "A" else _FUSED


def _setup():
    config = (small_config(3000, FLAGS.seq_length) if FLAGS.config == "demo"
              else albert_tf.AlbertConfig.from_preset(FLAGS.preset))
    inputs = bench_encoder.make_inputs(config, FLAGS.batch_size, FLAGS.seq_length)
    return bench_encoder.build_model("albert_tf", config), inputs


def _memory_child() -> None:
    model, inputs = _setup()
    _use(FLAGS.variant)
    train = bench_encoder.step_functions(model, inputs, False)["training"]
    for _ in range(3):
        float(train(inputs))
    print(json.dumps({"peak_MB": bench_encoder._status_bytes("VmHWM") / 2**20}))


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.variant:
        return _memory_child()
    if FLAGS.peak_memory:
        for variant in ("A", "B"):
            out = subprocess.run([sys.executable, os.path.abspath(__file__), f"--variant={variant}",
                                  *[a for a in sys.argv[1:] if a != "--peak_memory"]],
                                 capture_output=True, text=True, check=True)
            peak = json.loads(out.stdout.strip().splitlines()[-1])["peak_MB"]
            print(f"{variant}: training peak {peak:.0f} MB")
        return
    model, inputs = _setup()
    steps = {}
    for variant in ("A", "B"):  # each traced with its own LayerNorm, then warmed up
        _use(variant)
        steps[variant] = bench_encoder.step_functions(model, inputs, False)["training"]
        for _ in range(2):
            float(steps[variant](inputs))
    times: dict[str, list[float]] = {"A": [], "B": []}
    for r in range(FLAGS.rounds):
        for variant in ("AB" if r % 2 == 0 else "BA"):
            start = time.perf_counter()
            for _ in range(FLAGS.steps_per_round):
                float(steps[variant](inputs))
            times[variant].append(time.perf_counter() - start)
        print(f"round {r}: A {times['A'][-1]:.3f} s, B {times['B'][-1]:.3f} s, load {os.getloadavg()[0]:.1f}",
              flush=True)
    a, b = np.median(times["A"]), np.median(times["B"])
    print(f"seq {FLAGS.seq_length} batch {FLAGS.batch_size}, {FLAGS.steps_per_round} step(s) per round: "
          f"median A (op by op) {a:.3f} s, B (fused) {b:.3f} s, A/B = {a / b:.3f}x")


if __name__ == "__main__":
    app.run(main)
