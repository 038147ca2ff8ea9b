"""KerasHub's `AlbertBackbone` (Keras 3, TensorFlow backend) as a peer of `bench_encoder.py`.

Run by `bench_encoder.py --kerashub_python=PATH` as a child process with an interpreter that has keras-hub
beside Keras 3 (this project's models are tf_keras, so keras-hub lives in its own virtualenv):

    python -m venv --system-site-packages /work/venv-kerashub
    /work/venv-kerashub/bin/pip install keras-hub==0.32.0   # changes no installed package (--dry-run)

The parent sends one JSON line of settings (the `AlbertConfig` dict, batch, sequence length, masked
positions, XLA settings, mode) on the command line. Mode `serve`: build the model and the step functions,
warm them up, print one `{"warmup": ...}` line, then answer each `<task> <jit>` line on stdin with
`{"seconds": s}` (the call timed here, so pipe latency is not counted), until `quit`; the parent
interleaves these calls with its own configurations round by round. Mode `memory`: three training steps
in this fresh process, then `{"peak", "built"}` (VmHWM, VmRSS after building) like the parent's children.

Same work as the parent's configurations: the encoder forward (inference), and a training step of
encoder + KerasHub's MLM head (tied embeddings, as `AlbertMaskedLM`) + a [H,2] sentence-order dense
layer, the original pretraining loss, backward, and a LAMB update (`keras.optimizers.Lamb`) of every
trainable variable. Random weights, fp32 (or the Keras dtype policy given).
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np


def numpy_inputs(vocab_size: int, batch: int, seq: int, predictions: int) -> dict[str, np.ndarray]:
    """The benchmark batch (seeded, identical in every process): ids, full mask, two segments, P masked
    positions per sequence in increasing order, their label ids and weights, sentence-order labels."""
    rng = np.random.default_rng(0)
    return {
        "input_word_ids": rng.integers(5, vocab_size, (batch, seq)).astype(np.int32),
        "input_mask": np.ones((batch, seq), np.int32),
        "input_type_ids": np.repeat([[0] * (seq // 2) + [1] * (seq - seq // 2)], batch, 0).astype(np.int32),
        "masked_lm_positions": np.sort(rng.choice(np.arange(1, seq), (batch, predictions))).astype(np.int32),
        "masked_lm_ids": rng.integers(5, vocab_size, (batch, predictions)).astype(np.int32),
        "masked_lm_weights": np.ones((batch, predictions), np.float32),
        "next_sentence_labels": rng.integers(0, 2, (batch, 1)).astype(np.int32),
    }


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _step_functions(settings: dict) -> tuple[dict, dict]:
    """({(task, jit): tf.function}, inputs as tensors) for the KerasHub model of `settings`."""
    import keras
    import keras_hub
    import tensorflow as tf
    from keras_hub.src.utils.keras_utils import gelu_approximate

    cfg = settings["config"]
    if settings.get("dtype_policy"):
        keras.mixed_precision.set_dtype_policy(settings["dtype_policy"])
    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=cfg["vocab_size"], num_layers=cfg["num_hidden_layers"],
        num_heads=cfg["num_attention_heads"], embedding_dim=cfg["embedding_size"],
        hidden_dim=cfg["hidden_size"], intermediate_dim=cfg["intermediate_size"],
        num_groups=cfg["num_hidden_groups"], num_inner_repetitions=cfg["inner_group_num"],
        dropout=cfg["hidden_dropout_prob"], max_sequence_length=cfg["max_position_embeddings"],
        num_segments=cfg["type_vocab_size"])
    mlm_head = keras_hub.layers.MaskedLMHead(
        vocabulary_size=cfg["vocab_size"], token_embedding=backbone.token_embedding,
        intermediate_activation=gelu_approximate)
    sentence_order = keras.layers.Dense(2)
    inputs = {k: tf.constant(v) for k, v in numpy_inputs(
        cfg["vocab_size"], settings["batch_size"], settings["seq_length"],
        settings["max_predictions_per_seq"]).items()}
    backbone_inputs = {"token_ids": inputs["input_word_ids"], "padding_mask": inputs["input_mask"],
                       "segment_ids": inputs["input_type_ids"]}

    def heads(training: bool):
        out = backbone(backbone_inputs, training=training)
        mlm = tf.cast(mlm_head(out["sequence_output"], inputs["masked_lm_positions"]), tf.float32)
        return mlm, tf.cast(sentence_order(out["pooled_output"]), tf.float32)

    heads(False)  # builds the heads
    variables = backbone.trainable_variables + mlm_head.trainable_variables + sentence_order.trainable_variables
    optimizer = keras.optimizers.Lamb(learning_rate=1e-4)
    optimizer.build(variables)

    def inference():
        out = backbone(backbone_inputs, training=False)
        return tf.reduce_sum(tf.cast(out["sequence_output"][:, 0], tf.float32))

    def training():
        with tf.GradientTape() as tape:
            mlm_logits, sop_logits = heads(True)
            # The original pretraining loss (albert_tf.tasks.pretraining.pretraining_loss).
            per_position = tf.nn.sparse_softmax_cross_entropy_with_logits(inputs["masked_lm_ids"], mlm_logits)
            weights = inputs["masked_lm_weights"]
            mlm = tf.reduce_sum(weights * per_position) / (tf.reduce_sum(weights) + 1e-5)
            sop = tf.nn.sparse_softmax_cross_entropy_with_logits(inputs["next_sentence_labels"][:, 0], sop_logits)
            loss = mlm + tf.reduce_mean(sop)
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    functions = {}
    for jit in settings["jits"]:
        functions[("inference", jit)] = tf.function(inference, jit_compile=jit)
        functions[("training", jit)] = tf.function(training, jit_compile=jit)
    return functions, inputs


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    settings = json.loads(sys.argv[1])
    functions, _ = _step_functions(settings)
    if settings["mode"] == "memory":
        train = functions[("training", settings["jits"][0])]
        built = _status_bytes("VmRSS")
        for _ in range(3):
            float(train())
        print(json.dumps({"peak": _status_bytes("VmHWM"), "built": built}), flush=True)
        return
    warmup = {}
    for (task, jit), fn in functions.items():
        start = time.perf_counter()
        fn().numpy()
        fn().numpy()
        warmup[f"{task} {jit}"] = time.perf_counter() - start
    print(json.dumps({"warmup": warmup}), flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            return
        task, jit = line.split()
        fn = functions[(task, jit == "True")]
        start = time.perf_counter()
        fn().numpy()
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main()
