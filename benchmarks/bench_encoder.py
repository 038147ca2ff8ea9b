"""Encoder speed and memory: albert_tf against Model Garden's AlbertEncoder and KerasHub's AlbertBackbone
(Keras 3, run in its own interpreter: see bench_kerashub_peer.py), same config, same batch, same machine,
one run per sequence length.

    python benchmarks/bench_encoder.py --preset=base_v2 --seq_lengths=128,384,512 --batch_sizes=8,4,4 \
        --repeats=3 --kerashub_python=/work/venv-kerashub/bin/python \
        [--jit_compile=both|true|false] [--precisions=none,bfloat16] [--memory=false]

For every implementation and XLA setting it times
  * inference: the encoder forward pass (`training=False`), and
  * a training step: encoder + MLM/SOP heads (the original pretraining loss), backward, and an optimizer
    update (LAMB: ours for albert_tf and Model Garden, keras.optimizers.Lamb for KerasHub) of every
    trainable variable, so no gradient can be
    pruned.
Each configuration is a `tf.function` (XLA-compiled with --jit_compile); two calls warm it up (tracing
and compilation excluded), then the configurations are called in turn, one call each per round, for
--repeats rounds, so machine noise hits all alike; each figure is the median over rounds.

MFU (model-FLOP utilisation) divides analytic FLOPs (matmuls only: 2 per multiply-add; a training step
counts 3x the forward FLOPs of encoder and heads) by the time, then by the fp32 matmul peak measured in
the same run (median of --repeats timings of a 2048^3 `tf.matmul`).

Peak training memory: each (implementation, XLA setting, length) runs 3 training steps in a fresh process; the
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
from bench_kerashub_peer import numpy_inputs  # noqa: E402  (numpy only; Keras 3 stays in the child)

flags.DEFINE_string("preset", "base_v2", "Model config preset (see albert_tf.PRESETS): base_v2, large_v2, "
                    "xlarge_v2, xxlarge_v2, ...")
flags.DEFINE_list("seq_lengths", ["128", "384", "512"], "Sequence lengths, each measured on its own (pretraining "
                  "phase 1, SQuAD, RACE / pretraining phase 2).")
flags.DEFINE_list("batch_sizes", ["8", "4", "4"], "Sequences per batch, one per --seq_lengths entry.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked positions per sequence (MLM head).")
flags.DEFINE_enum("jit_compile", "both", ["both", "true", "false"], "XLA settings to time.")
flags.DEFINE_list("precisions", ["none", "bfloat16"], "Compute precisions (none = fp32, bfloat16, float16); "
                  "bfloat16 on a CPU without AVX512_BF16/AMX is skipped with the reason printed.")
flags.DEFINE_integer("repeats", 5, "Timed rounds (one call per configuration per round).")
flags.DEFINE_bool("memory", True, "Measure peak training memory (one fresh process per configuration).")
flags.DEFINE_bool("recompute_grad", False, "Also run albert_tf with recomputed blocks.")
flags.DEFINE_string("implementations", "albert_tf,model_garden,kerashub", "Which to run.")
flags.DEFINE_string("kerashub_python", os.environ.get("KERASHUB_PYTHON"),
                    "Interpreter with keras-hub beside Keras 3 (see bench_kerashub_peer.py for the venv command); "
                    "default $KERASHUB_PYTHON; without it the KerasHub rows are skipped.")
flags.DEFINE_string("memory_child", None, "Internal: 'impl:jit:batch:seq' measured in this fresh process.")
FLAGS = flags.FLAGS

RECOMPUTE = "albert_tf+recompute"
KERASHUB = "kerashub"
KERASHUB_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_kerashub_peer.py")


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
    raise ValueError(f"--implementations: unknown {name!r}; use albert_tf, model_garden and kerashub.")


def make_inputs(config: albert_tf.AlbertConfig, batch: int, seq: int) -> dict[str, tf.Tensor]:
    """The seeded benchmark batch, the same in every process (see `numpy_inputs`)."""
    arrays = numpy_inputs(config.vocab_size, batch, seq, FLAGS.max_predictions_per_seq)
    return {k: tf.constant(v) for k, v in arrays.items()}


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
    name, jit, batch, seq = spec.split(":")
    distribute.configure_precision(FLAGS.precisions[0])
    config = albert_tf.AlbertConfig.from_preset(FLAGS.preset)
    inputs = make_inputs(config, int(batch), int(seq))
    model = build_model(name, config)
    train = step_functions(model, inputs, jit == "True")["training"]
    built_rss = _status_bytes("VmRSS")
    for _ in range(3):
        float(train(inputs))
    print(json.dumps({"peak": _status_bytes("VmHWM"), "built": built_rss}))


def _last_json(argv: list[str], what: str, **kwargs) -> dict:
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if proc.returncode:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_memory(name: str, jit: bool, batch: int, seq: int, precision: str) -> dict[str, float]:
    """Peak (VmHWM) and after-build (VmRSS) bytes of a fresh process running 3 training steps."""
    if name == KERASHUB:
        return _last_json([FLAGS.kerashub_python, KERASHUB_SCRIPT,
                           kerashub_settings(batch, seq, [jit], precision, "memory")],
                          f"KerasHub memory child jit={jit}", env=_kerashub_env())
    argv = [sys.executable, os.path.abspath(__file__), f"--memory_child={name}:{jit}:{batch}:{seq}",
            f"--preset={FLAGS.preset}", f"--max_predictions_per_seq={FLAGS.max_predictions_per_seq}",
            f"--precisions={precision}"]
    return _last_json(argv, f"memory child {name}:{jit}")


def _kerashub_env() -> dict[str, str]:
    return {**os.environ, "KERAS_BACKEND": "tensorflow"}


def kerashub_settings(batch: int, seq: int, jits: list[bool], precision: str, mode: str) -> str:
    """The JSON argument of a `bench_kerashub_peer.py` child (same config, batch and precision)."""
    policy = {"none": None, "float32": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
    return json.dumps({"config": albert_tf.AlbertConfig.from_preset(FLAGS.preset).to_dict(),
                       "batch_size": batch, "seq_length": seq,
                       "max_predictions_per_seq": FLAGS.max_predictions_per_seq, "jits": jits,
                       "dtype_policy": policy[precision.lower()], "mode": mode})


def kerashub_skip_reason() -> str | None:
    """Why the KerasHub rows cannot run here (None when they can)."""
    python = FLAGS.kerashub_python
    if not python:
        return ("no --kerashub_python (an interpreter with keras-hub; create it with the commands in "
                "benchmarks/bench_kerashub_peer.py)")
    if not os.path.exists(python):
        return f"--kerashub_python={python} does not exist"
    proc = subprocess.run([python, "-c", "import keras_hub"], capture_output=True, text=True, env=_kerashub_env())
    if proc.returncode:
        return f"{python} cannot import keras_hub: {proc.stderr.strip().splitlines()[-1:]}"
    return None


class KerasHubPeer:
    """A `bench_kerashub_peer.py` child serving timed calls, so its rounds interleave with ours."""

    def __init__(self, batch: int, seq: int, jits: list[bool], precision: str):
        self._proc = subprocess.Popen(
            [FLAGS.kerashub_python, KERASHUB_SCRIPT, kerashub_settings(batch, seq, jits, precision, "serve")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_kerashub_env())
        self.warmup = self._reply()["warmup"]

    def _reply(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the KerasHub child exited (status {self._proc.wait()}); see its stderr above")
        return json.loads(line)

    def seconds(self, task: str, jit: bool) -> float:
        """One call of (task, jit), timed inside the child."""
        self._proc.stdin.write(f"{task} {jit}\n")
        self._proc.stdin.flush()
        return self._reply()["seconds"]

    def close(self) -> None:
        self._proc.stdin.write("quit\n")
        self._proc.stdin.flush()
        self._proc.wait()


def _cpu_info() -> tuple[str, set[str]]:
    """(model name, flags) of the first CPU in /proc/cpuinfo."""
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
    return model, set(flags_line.split()[2:])


def _cpu_flags() -> set[str]:
    return _cpu_info()[1]


def cpu_description() -> str:
    model, cpu_flags = _cpu_info()
    extras = [f for f in ("avx512f", "avx512_bf16", "amx_tile") if f in cpu_flags]
    return f"{model}, {os.cpu_count()} CPUs, {' '.join(extras) or 'no AVX-512'}"


def precision_skip_reason(precision: str) -> str | None:
    """Why `precision` is not measured on this machine (None when it is)."""
    if precision.lower() != "bfloat16" or tf.config.list_physical_devices("GPU"):
        return None
    if {"avx512_bf16", "amx_bf16"} & _cpu_flags():
        return None
    return "this CPU has no AVX512_BF16 or AMX, so TensorFlow would emulate bf16 (not the fast path)"


def _timer(fn: Callable, inputs: dict[str, tf.Tensor]) -> Callable[[], float]:
    def seconds() -> float:
        start = time.perf_counter()
        fn(inputs).numpy()
        return time.perf_counter() - start

    return seconds


def measure_length(config: albert_tf.AlbertConfig, batch: int, seq: int, precision: str,
                   names: list[str]) -> None:
    """Times every (implementation, XLA, task) of one batch shape in interleaved rounds; prints the table."""
    inputs = make_inputs(config, batch, seq)
    jits = {"both": [False, True], "true": [True], "false": [False]}[FLAGS.jit_compile]
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"\n== {FLAGS.preset} batch={batch} seq={seq} precision={precision} device={device} "
          f"({cpu_description() if device == 'CPU' else tf.config.list_physical_devices('GPU')})", flush=True)
    timers: dict[tuple[str, bool, str], Callable[[], float]] = {}
    peer = None
    for name in names:
        if name == KERASHUB:
            peer = KerasHubPeer(batch, seq, jits, precision)
            for jit in jits:
                for task in ("inference", "training"):
                    print(f"  warm-up {name:<20} jit={jit!s:<5} {task:<9} {peer.warmup[f'{task} {jit}']:6.1f}s")
                    timers[(name, jit, task)] = (lambda t=task, j=jit: peer.seconds(t, j))
            continue
        model = build_model(name, config)
        for jit in jits:
            for task, fn in step_functions(model, inputs, jit).items():
                if task == "inference" and name == RECOMPUTE:
                    continue  # recompute only changes the backward pass
                start = time.perf_counter()
                fn(inputs).numpy()
                fn(inputs).numpy()
                print(f"  warm-up {name:<20} jit={jit!s:<5} {task:<9} {time.perf_counter() - start:6.1f}s", flush=True)
                timers[(name, jit, task)] = _timer(fn, inputs)
    peak = matmul_peak(FLAGS.repeats)
    times: dict[tuple[str, bool, str], list[float]] = {key: [] for key in timers}
    for _ in range(FLAGS.repeats):
        for key, timer in timers.items():
            times[key].append(timer())
    if peer is not None:
        peer.close()
    peak_after = matmul_peak(FLAGS.repeats)
    print(f"fp32 matmul peak (2048^3, median): {peak:.0f} GFLOP/s before, {peak_after:.0f} after the timed "
          f"rounds; MFU uses the larger. 1-minute load average: {os.getloadavg()[0]:.1f}")
    peak = max(peak, peak_after)

    memory = {}
    if FLAGS.memory:
        for name in names:
            for jit in jits:
                memory[(name, jit)] = measure_memory(name, jit, batch, seq, precision)

    median_ms = {key: 1000 * float(np.median(t)) for key, t in times.items()}
    flops = {"inference": forward_flops(config, seq, with_heads=False) * batch,
             "training": 3 * forward_flops(config, seq, with_heads=True) * batch}
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
            print(f"{name:<20} {jit!s:<5} {task:<9} {ms:9.1f} {batch / ms * 1000:7.1f} "
                  f"{100 * mfu:5.1f}% {ratio} {mem_text}")
    if memory:
        peers = [m["peak"] for (n, _), m in memory.items() if not n.startswith("albert_tf")]
        for (name, jit), m in memory.items():
            if name.startswith("albert_tf"):
                extra = f", {min(peers) / m['peak']:.2f}x the smallest peer's" if peers else ""
                print(f"memory {name} jit={jit}: peak {m['peak'] / 2**20:.0f} MB, activations and "
                      f"compilation (peak - after build) {(m['peak'] - m['built']) / 2**20:.0f} MB{extra}")
    print(f"ratio = best peer time / this time (> 1: faster than the best peer); medians of {FLAGS.repeats} "
          f"interleaved rounds, warm-up excluded. seq={seq} done, 1-minute load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.memory_child:
        memory_child(FLAGS.memory_child)
        return
    lengths, batches = [int(v) for v in FLAGS.seq_lengths], [int(v) for v in FLAGS.batch_sizes]
    if len(lengths) != len(batches):
        raise app.UsageError(f"--batch_sizes needs one entry per --seq_lengths entry; got {len(batches)} "
                             f"for {len(lengths)}.")
    names = [n.strip() for n in FLAGS.implementations.split(",") if n.strip()]
    if KERASHUB in names and (reason := kerashub_skip_reason()):
        print(f"skipped {KERASHUB}: {reason}")
        names.remove(KERASHUB)
    if FLAGS.recompute_grad:
        names.append(RECOMPUTE)
    runnable = []
    for precision in FLAGS.precisions:
        if reason := precision_skip_reason(precision):
            print(f"skipped precision={precision}: {reason}")
        else:
            runnable.append(precision)
    config = albert_tf.AlbertConfig.from_preset(FLAGS.preset)
    for precision in runnable:
        if len(runnable) > 1:  # the tf_keras dtype policy is per process: one child per precision
            subprocess.run([sys.executable, os.path.abspath(__file__), *sys.argv[1:], f"--precisions={precision}"],
                           check=True)
            continue
        distribute.configure_precision(precision)
        for seq, batch in zip(lengths, batches):
            measure_length(config, batch, seq, precision, names)


if __name__ == "__main__":
    app.run(main)
