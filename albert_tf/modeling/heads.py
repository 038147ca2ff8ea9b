"""Task heads. Each head names its own weights with the original release's variable names, under a
`tf1_scope` given when it is built, so a task model lists its head variables without guessing.

Original names: MLM `cls/predictions/...`, SOP `cls/seq_relationship/output_{weights,bias}`, GLUE and RACE
`output_weights` / `output_bias` at the root scope, SQuAD v1 `cls/squad/output_{weights,bias}`.
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from albert_tf.modeling.layers import (LayerNorm, apply_dropout, dense_variables, get_activation,
                                       layer_norm_variables, optional_dropout, truncated_normal)


def _scoped(scope: str, name: str) -> str:
    return f"{scope}/{name}" if scope else name


@keras.saving.register_keras_serializable(package="albert_tf")
class MaskedLMHead(keras.layers.Layer):
    """The original MLM decoder: dense H->E (config activation), LayerNorm(E), logits against the tied
    word-embedding table plus an output-only bias.

    Inputs: `sequence_output` [B,S,H], `positions` [B,P] int (or None for every position).
    Output: logits [B,P,V] (float32).

    Args:
      embedding_table: the encoder's [V,E] word-embedding variable (tied, not copied). Because it is a
        variable, this head is rebuilt by its model's `from_config`, not on its own.
      activation: the config's `hidden_act`.
      initializer_range: stddev of the truncated-normal initialiser.
      tf1_scope: official scope of its weights (`cls/predictions`).
    """

    def __init__(self, embedding_table: tf.Variable, activation: str, initializer_range: float,
                 tf1_scope: str = "cls/predictions", **kwargs):
        super().__init__(**kwargs)
        self.embedding_table = embedding_table
        vocab_size, embedding_size = embedding_table.shape
        self.vocab_size = int(vocab_size)
        self.activation = activation
        self.initializer_range = initializer_range
        self.tf1_scope = tf1_scope
        self.dense = keras.layers.Dense(int(embedding_size), activation=get_activation(activation),
                                        kernel_initializer=truncated_normal(initializer_range), name="dense")
        self.layer_norm = LayerNorm(name="LayerNorm")

    def build(self, input_shape):
        self.output_bias = self.add_weight("output_bias", shape=[self.vocab_size], initializer="zeros")
        super().build(input_shape)

    def call(self, sequence_output: tf.Tensor, positions: tf.Tensor | None = None) -> tf.Tensor:
        x = sequence_output if positions is None else tf.gather(sequence_output, positions, batch_dims=1)
        x = self.layer_norm(self.dense(x))
        table = tf.cast(self.embedding_table, x.dtype)
        logits = tf.matmul(x, table, transpose_b=True)
        return tf.cast(logits, tf.float32) + tf.cast(self.output_bias, tf.float32)

    def tf1_variables(self) -> dict[str, tf.Variable]:
        out = dense_variables(f"{self.tf1_scope}/transform/dense", self.dense)
        out.update(layer_norm_variables(f"{self.tf1_scope}/transform/LayerNorm", self.layer_norm))
        out[f"{self.tf1_scope}/output_bias"] = self.output_bias
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation,
                "initializer_range": self.initializer_range, "tf1_scope": self.tf1_scope}


@keras.saving.register_keras_serializable(package="albert_tf")
class ClassificationHead(keras.layers.Layer):
    """Linear head `x @ output_weights^T + output_bias`, with weights stored [num_classes, H] as the
    original keeps them. Used for SOP (`cls/seq_relationship`), GLUE and RACE (root scope) and the
    SQuAD v1 span head (`cls/squad`, 2 classes = start/end, applied at every position).

    Optional dropout on the input (active only in training), as the fine-tuning heads apply.
    Input [..., H] -> logits [..., num_classes] (float32).

    Args:
      num_classes: C.
      initializer_range: stddev of the truncated-normal initialiser of `output_weights`.
      dropout_rate: dropout on the input in training (0: none).
      tf1_scope: official scope of `output_weights` / `output_bias` ("" = root).
    """

    def __init__(self, num_classes: int, initializer_range: float = 0.02, dropout_rate: float = 0.0,
                 tf1_scope: str = "", **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.initializer_range = initializer_range
        self.dropout_rate = dropout_rate
        self.tf1_scope = tf1_scope
        self.dropout = optional_dropout(dropout_rate)

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.output_weights = self.add_weight("output_weights", shape=[self.num_classes, width],
                                              initializer=truncated_normal(self.initializer_range))
        self.output_bias = self.add_weight("output_bias", shape=[self.num_classes], initializer="zeros")
        super().build(input_shape)

    def call(self, x: tf.Tensor, training=None) -> tf.Tensor:
        x = apply_dropout(self.dropout, x, training)
        logits = tf.matmul(x, tf.cast(self.output_weights, x.dtype), transpose_b=True)
        return tf.cast(logits, tf.float32) + tf.cast(self.output_bias, tf.float32)

    def tf1_variables(self) -> dict[str, tf.Variable]:
        return {_scoped(self.tf1_scope, "output_weights"): self.output_weights,
                _scoped(self.tf1_scope, "output_bias"): self.output_bias}

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes,
                "initializer_range": self.initializer_range, "dropout_rate": self.dropout_rate,
                "tf1_scope": self.tf1_scope}
