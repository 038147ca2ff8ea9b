"""Encoder speed and memory: albert_tf against Model Garden's AlbertEncoder, same config, same batch, same
machine, one run. (KerasHub's AlbertBackbone is a Keras 3 model; keras-hub is not installed with this
project, whose models are tf_keras (Keras 2), so it is not compared here.)

    python benchmarks/bench_encoder.py --preset=base_v2 --batch_size=8 --seq_length=128 \
        [--jit_compile=both|true|false] [--mixed_precision=none|bfloat16|float16] [--repeats=7]

For every implementation and XLA setting it times
  * inference: the encoder forward pass (`training=False`), and
  * a training step: encoder + MLM/SOP heads (the original pretraining loss), backward, and an optimizer
    update (LAMB, the same optimizer for everyone) of every trainable variable, so no gradient can be
    pruned.
Each configuration is a `tf.function` (XLA-compiled with --jit_compile); two calls warm it up (tracing
and compilation excluded), then the configurations are called in turn, one call each per round, for
--repeats rounds, so machine noise hits all alike; each figure is the median over rounds.

MFU (model-FLOP utilisation) divides analytic FLOPs (matmuls only: 2 per multiply-add; a training step
counts 3x the forward FLOPs of encoder and heads) by the time, then by the fp32 matmul peak measured in
the same run (median of --repeats timings of a 2048^3 `tf.matmul`).

Peak training memory: each (implementation, XLA setting) runs 3 training steps in a fresh process; the
figure is that process's peak resident set (`VmHWM`): comparable, since each process does the same.
--recompute_grad adds albert_tf with each block recomputed in the backward pass (activation memory =
peak minus the resident set after building the model, reported separately).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from absl import app, flags  # noqa: E402

import albert_tf  # noqa: E402
from albert_tf import optimization  # noqa: E402
from albert_tf.core import distribute  # noqa: E402
from albert_tf.modeling import ENCODER_INPUTS  # noqa: E402
from albert_tf.tasks.pretraining.task import pretraining_loss  # noqa: E402

flags.DEFINE_string("preset", "base_v2", "Model config preset (see albert_tf.PRESETS): base_v2, large_v2, "
                    "xlarge_v2, xxlarge_v2, ...")
flags.DEFINE_integer("batch_size", 8, "Sequences per batch.")
flags.DEFINE_integer("seq_length", 128, "Sequence length.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked positions per sequence (MLM head).")
flags.DEFINE_enum("jit_compile", "both", ["both", "true", "false"], "XLA settings to time.")
flags.DEFINE_enum("mixed_precision", "none", ["none", "float16", "bfloat16"], "Compute precision.")
flags.DEFINE_integer("repeats", 7, "Timed rounds (one call per configuration per round).")
flags.DEFINE_bool("memory", True, "Measure peak training memory (one fresh process per configuration).")
flags.DEFINE_bool("recompute_grad", False, "Also run albert_tf with recomputed blocks.")
flags.DEFINE_string("implementations", "albert_tf,model_garden", "Which to run.")
flags.DEFINE_string("memory_child", None, "Internal: 'impl:jit' measured in this fresh process.")
FLAGS = flags.FLAGS

RECOMPUTE = "albert_tf+recompute"


def _gelu(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.gelu(x, approximate=True)


class _ModelGardenPretrainer(keras.Model):
    """official AlbertEncoder + official MaskedLM head + a [H,2] sentence-order dense layer."""

    def __init__(self, config: albert_tf.AlbertConfig):
        super().__init__()
        from official.nlp.modeling import layers, networks

        self.encoder = networks.AlbertEncoder(
            vocab_size=config.vocab_size, embedding_width=config.embedding_size,
            hidden_size=config.hidden_size, num_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            max_sequence_length=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
            intermediate_size=config.intermediate_size, activation=_gelu,
            dropout_rate=config.hidden_dropout_prob,
            attention_dropout_rate=config.attention_probs_dropout_prob, dict_outputs=True)
        self.masked_lm = layers.MaskedLM(self.encoder.get_embedding_table(), activation=_gelu,
                                         initializer=keras.initializers.TruncatedNormal(0.02))
        self.sentence_order = keras.layers.Dense(2)

    def call(self, inputs, training=None):
        encoder_inputs = {k: inputs[k] for k in ENCODER_INPUTS}
        outputs = dict(self.encoder(encoder_inputs, training=training))
        if "masked_lm_positions" in inputs:
            outputs["mlm_logits"] = self.masked_lm(outputs["sequence_output"], inputs["masked_lm_positions"])
            outputs["sop_logits"] = self.sentence_order(outputs["pooled_output"])
        return outputs


def build_model(name: str, config: albert_tf.AlbertConfig) -> keras.Model:
    """A pretraining model (encoder + MLM + SOP heads) whose outputs feed `pretraining_loss`."""
    if name in ("albert_tf", RECOMPUTE):
        return albert_tf.AlbertPretrainer(config, recompute_grad=name == RECOMPUTE)
    if name == "model_garden":
        return _ModelGardenPretrainer(config)
    raise ValueError(f"--implementations: unknown {name!r}; use albert_tf and model_garden.")


def make_inputs(config: albert_tf.AlbertConfig) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(0)
    b, s, p = FLAGS.batch_size, FLAGS.seq_length, FLAGS.max_predictions_per_seq
    return {
        "input_word_ids": tf.constant(rng.integers(5, config.vocab_size, (b, s)), tf.int32),
        "input_mask": tf.ones((b, s), tf.int32),
        "input_type_ids": tf.constant(np.repeat([[0] * (s // 2) + [1] * (s - s // 2)], b, 0), tf.int32),
        "masked_lm_positions": tf.constant(np.sort(rng.choice(np.arange(1, s), (b, p))), tf.int32),
        "masked_lm_ids": tf.constant(rng.integers(5, config.vocab_size, (b, p)), tf.int32),
        "masked_lm_weights": tf.ones((b, p), tf.float32),
        "next_sentence_labels": tf.constant(rng.integers(0, 2, (b, 1)), tf.int32),
    }


def _float32(outputs: dict) -> dict:
    return {k: tf.cast(v, tf.float32) if isinstance(v, tf.Tensor) and v.dtype.is_floating else v
            for k, v in outputs.items()}


def step_functions(model: keras.Model, inputs: dict[str, tf.Tensor], jit: bool) -> dict[str, Callable]:
    """`{"inference": fn, "training": fn}`, each a (possibly XLA-compiled) tf.function of the inputs.

    Inference runs `model.encoder` alone; training runs the whole pretraining model.
    """
    model(inputs, training=False)  # creates every variable (heads build lazily) before the optimizer
    optimizer = optimization.create_optimizer(1e-4, 1000, 10, optimizer="lamb")
    optimizer.build(model.trainable_variables)

    def inference(inputs):
        out = model.encoder({k: inputs[k] for k in ENCODER_INPUTS}, training=False)
        return tf.reduce_sum(tf.cast(out["sequence_output"][:, 0], tf.float32))

    def training(inputs):
        with tf.GradientTape() as tape:
            loss = pretraining_loss(inputs, _float32(model(inputs, training=True)))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return {"inference": tf.function(inference, jit_compile=jit),
            "training": tf.function(training, jit_compile=jit)}


def forward_flops(config: albert_tf.AlbertConfig, seq: int, with_heads: bool) -> float:
    """Matmul FLOPs of one sequence's forward pass (2 per multiply-add)."""
    h, e, i = config.hidden_size, config.embedding_size, config.intermediate_size
    layers = config.num_hidden_layers * config.inner_group_num
    per_token = e * h + layers * (4 * h * h + 2 * h * i + 2 * seq * h)
    macs = seq * per_token + h * h  # + pooler
    if with_heads:
        macs += FLAGS.max_predictions_per_seq * (h * e + e * config.vocab_size) + 2 * h
    return 2.0 * macs


def matmul_peak(repeats: int) -> float:
    """Median fp32 GFLOP/s of a 2048^3 matmul (oneDNN / the default kernel)."""
    n = 2048
    a, b = tf.random.normal([n, n]), tf.random.normal([n, n])
    fn = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    fn(a, b).numpy()
    times = []
    for _ in range(max(repeats, 3)):
        start = time.perf_counter()
        fn(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / float(np.median(times)) / 1e9


def _status_bytes(field: str) -> int:
    """A `/proc/self/status` memory field (VmRSS: resident now, VmHWM: peak resident) in bytes.

    VmHWM belongs to this process's own address space, unlike `ru_maxrss`, which a child inherits from
    its parent across fork and exec (a child of a large parent would report the parent's size).
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def memory_child(spec: str) -> None:
    """Builds one configuration, runs 3 training steps, prints JSON with the resident-set figures."""
    name, jit = spec.split(":")
    distribute.configure_precision(FLAGS.mixed_precision)
    config = albert_tf.AlbertConfig.from_preset(FLAGS.preset)
    inputs = make_inputs(config)
    model = build_model(name, config)
    train = step_functions(model, inputs, jit == "True")["training"]
    built_rss = _status_bytes("VmRSS")
    for _ in range(3):
        float(train(inputs))
    print(json.dumps({"peak": _status_bytes("VmHWM"), "built": built_rss}))


def measure_memory(name: str, jit: bool) -> dict[str, float]:
    argv = [sys.executable, os.path.abspath(__file__), f"--memory_child={name}:{jit}", f"--preset={FLAGS.preset}",
            f"--batch_size={FLAGS.batch_size}", f"--seq_length={FLAGS.seq_length}",
            f"--max_predictions_per_seq={FLAGS.max_predictions_per_seq}",
            f"--mixed_precision={FLAGS.mixed_precision}"]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"memory child {name}:{jit} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_description() -> str:
    model, flags_line = "unknown CPU", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown CPU":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags_line:
                    flags_line = line
    except OSError:
        pass
    cpu_flags = set(flags_line.split())
    extras = [f for f in ("avx512f", "avx512_bf16", "amx_tile") if f in cpu_flags]
    return f"{model}, {os.cpu_count()} CPUs, {' '.join(extras) or 'no AVX-512'}"


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.memory_child:
        memory_child(FLAGS.memory_child)
        return
    distribute.configure_precision(FLAGS.mixed_precision)
    config = albert_tf.AlbertConfig.from_preset(FLAGS.preset)
    inputs = make_inputs(config)
    names = [n.strip() for n in FLAGS.implementations.split(",") if n.strip()]
    if FLAGS.recompute_grad:
        names.append(RECOMPUTE)
    jits = {"both": [False, True], "true": [True], "false": [False]}[FLAGS.jit_compile]
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"{FLAGS.preset} batch={FLAGS.batch_size} seq={FLAGS.seq_length} precision={FLAGS.mixed_precision} "
          f"device={device} ({cpu_description() if device == 'CPU' else tf.config.list_physical_devices('GPU')})")

    functions: dict[tuple[str, bool, str], Callable] = {}
    for name in names:
        model = build_model(name, config)
        for jit in jits:
            for task, fn in step_functions(model, inputs, jit).items():
                if task == "inference" and name == RECOMPUTE:
                    continue  # recompute only changes the backward pass
                start = time.perf_counter()
                fn(inputs).numpy()
                fn(inputs).numpy()
                print(f"  warm-up {name:<20} jit={jit!s:<5} {task:<9} {time.perf_counter() - start:6.1f}s")
                functions[(name, jit, task)] = fn
    peak = matmul_peak(FLAGS.repeats)
    times: dict[tuple[str, bool, str], list[float]] = {key: [] for key in functions}
    for _ in range(FLAGS.repeats):
        for key, fn in functions.items():
            start = time.perf_counter()
            fn(inputs).numpy()
            times[key].append(time.perf_counter() - start)
    peak_after = matmul_peak(FLAGS.repeats)
    print(f"fp32 matmul peak (2048^3, median): {peak:.0f} GFLOP/s before, {peak_after:.0f} after the timed "
          f"rounds; MFU uses the larger. 1-minute load average: {os.getloadavg()[0]:.1f}")
    peak = max(peak, peak_after)

    memory = {}
    if FLAGS.memory:
        for name in names:
            for jit in jits:
                memory[(name, jit)] = measure_memory(name, jit)

    median_ms = {key: 1000 * float(np.median(t)) for key, t in times.items()}
    flops = {"inference": forward_flops(config, FLAGS.seq_length, with_heads=False) * FLAGS.batch_size,
             "training": 3 * forward_flops(config, FLAGS.seq_length, with_heads=True) * FLAGS.batch_size}
    print(f"\n{'implementation':<20} {'jit':<5} {'task':<9} {'ms/batch':>9} {'seq/s':>7} {'MFU':>6} "
          f"{'vs best peer':>12} {'peak MB':>8}")
    for task in ("inference", "training"):
        peers = [ms for (n, _, t), ms in median_ms.items() if t == task and not n.startswith("albert_tf")]
        best_peer = min(peers) if peers else None
        for (name, jit, t), ms in median_ms.items():
            if t != task:
                continue
            mfu = flops[task] / (ms / 1000) / 1e9 / peak
            ratio = f"{best_peer / ms:11.2f}x" if best_peer else f"{'-':>12}"
            mem = memory.get((name, jit)) if task == "training" else None
            mem_text = f"{mem['peak'] / 2**20:8.0f}" if mem else f"{'':>8}"
            print(f"{name:<20} {jit!s:<5} {task:<9} {ms:9.1f} {FLAGS.batch_size / ms * 1000:7.1f} "
                  f"{100 * mfu:5.1f}% {ratio} {mem_text}")
    if memory:
        peers = [m["peak"] for (n, _), m in memory.items() if not n.startswith("albert_tf")]
        for (name, jit), m in memory.items():
            if name.startswith("albert_tf"):
                extra = f", {min(peers) / m['peak']:.2f}x the smallest peer's" if peers else ""
                print(f"memory {name} jit={jit}: peak {m['peak'] / 2**20:.0f} MB, activations and "
                      f"compilation (peak - after build) {(m['peak'] - m['built']) / 2**20:.0f} MB{extra}")
    print("ratio = best peer time / this time (> 1: faster than the best peer); medians of "
          f"{FLAGS.repeats} interleaved rounds, warm-up excluded.")


if __name__ == "__main__":
    app.run(main)
