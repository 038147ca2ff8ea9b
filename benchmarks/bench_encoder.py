"""Encoder throughput: albert_tf.AlbertModel vs Model Garden's AlbertEncoder, same config, same batch.

Both models run the same forward pass (inference, or forward+backward with --train) inside a
`tf.function` (optionally XLA-compiled); iterations alternate between the two models so that machine
noise hits both alike. Prints milliseconds per batch for each and the ratio (ours / Model Garden).

  python benchmarks/bench_encoder.py --preset=base_v2 --batch_size=8 --seq_length=128 [--train] [--jit_compile]
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import app, flags
from official.nlp.modeling import networks

import albert_tf  # noqa: E402
from albert_tf.core import distribute  # noqa: E402

flags.DEFINE_string("preset", "base_v2", "Model config preset (see albert_tf.PRESETS).")
flags.DEFINE_integer("batch_size", 8, "Batch size.")
flags.DEFINE_integer("seq_length", 128, "Sequence length.")
flags.DEFINE_integer("iterations", 10, "Timed iterations per model.")
flags.DEFINE_bool("train", False, "Time forward+backward instead of inference.")
flags.DEFINE_bool("jit_compile", False, "XLA-compile both step functions.")
flags.DEFINE_enum("mixed_precision", "none", ["none", "float16", "bfloat16"], "Compute precision.")
FLAGS = flags.FLAGS


def model_garden_encoder(config: albert_tf.AlbertConfig) -> keras.Model:
    return networks.AlbertEncoder(
        vocab_size=config.vocab_size, embedding_width=config.embedding_size, hidden_size=config.hidden_size,
        num_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        max_sequence_length=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
        intermediate_size=config.intermediate_size,
        activation=lambda x: keras.activations.gelu(x, approximate=True),
        dropout_rate=config.hidden_dropout_prob, attention_dropout_rate=config.attention_probs_dropout_prob,
        dict_outputs=True)


def step_fn(model: keras.Model, train: bool, jit: bool):
    def forward(inputs):
        out = model(inputs, training=train)
        return tf.reduce_sum(tf.cast(out["sequence_output"], tf.float32))

    def train_step(inputs):
        with tf.GradientTape() as tape:
            loss = forward(inputs)
        # The norm of every gradient, so that XLA cannot prune any part of the backward pass.
        return tf.linalg.global_norm(tape.gradient(loss, model.trainable_variables))

    return tf.function(train_step if train else forward, jit_compile=jit)


def main(_):
    distribute.configure_precision(FLAGS.mixed_precision)
    config = albert_tf.AlbertConfig.from_preset(FLAGS.preset)
    rng = np.random.default_rng(0)
    shape = (FLAGS.batch_size, FLAGS.seq_length)
    inputs = dict(input_word_ids=tf.constant(rng.integers(5, config.vocab_size, shape), tf.int32),
                  input_mask=tf.ones(shape, tf.int32), input_type_ids=tf.zeros(shape, tf.int32))
    models = {"albert_tf.AlbertModel": albert_tf.AlbertModel(config),
              "official AlbertEncoder": model_garden_encoder(config)}
    steps = {name: step_fn(m, FLAGS.train, FLAGS.jit_compile) for name, m in models.items()}
    for step in steps.values():  # trace, compile, warm up
        step(inputs)
        step(inputs)
    times = {name: [] for name in steps}
    for _ in range(FLAGS.iterations):
        for name, step in steps.items():
            start = time.perf_counter()
            np.asarray(step(inputs))
            times[name].append(time.perf_counter() - start)
    mode = "train step" if FLAGS.train else "inference"
    print(f"{FLAGS.preset} batch={FLAGS.batch_size} seq={FLAGS.seq_length} {mode} "
          f"jit={FLAGS.jit_compile} precision={FLAGS.mixed_precision} device={'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}")
    medians = {name: float(np.median(t)) * 1000 for name, t in times.items()}
    for name, ms in medians.items():
        print(f"  {name:<24} {ms:8.1f} ms/batch (median of {FLAGS.iterations})")
    ours, theirs = medians.values()
    print(f"  ratio ours/Model Garden: {ours / theirs:.2f} (< 1 means albert_tf is faster)")


if __name__ == "__main__":
    app.run(main)
