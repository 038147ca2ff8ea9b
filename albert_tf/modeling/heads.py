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


def _mask_logits(logits: tf.Tensor, p_mask: tf.Tensor) -> tf.Tensor:
    """The original's masking `logits * (1 - p_mask) - 1e30 * p_mask` (float32; p_mask 1 = no answer)."""
    return logits * (1.0 - p_mask) - 1e30 * p_mask


@keras.saving.register_keras_serializable(package="albert_tf")
class SquadV2Head(keras.layers.Layer):
    """The SQuAD v2.0 head of the original (`squad_utils.create_v2_model`, XLNet-style), in float32.

    Start: `start_logits/dense` (1 unit) at every position, masked with `p_mask`, log-softmax over S.
    End, conditioned on a start position s: at every position t, `[h_t ; h_s]` (2H) ->
    `end_logits/dense_0` (H, tanh) -> `end_logits/LayerNorm` (eps 1e-12) -> `end_logits/dense_1` (1),
    masked, log-softmax over S. In training s is the gold start; at inference it is each of the
    `start_n_top` best starts, and the `end_n_top` best ends of each are kept.
    Answerability: `[sum_t softmax(masked start logits)_t h_t ; h_0]` (2H) -> `answer_class/dense_0`
    (H, tanh) -> dropout (training only) -> `answer_class/dense_1` (1, no bias): `cls_logits`, the logit
    of "impossible". The weights live at the root scope under these names.

    Inputs: `sequence_output` [B,S,H], `p_mask` [B,S] (1 where no answer may be), `start_positions` [B]
    (int, training only).
    Outputs (float32 values, int32 indices):
      training: `start_log_probs` [B,S], `end_log_probs` [B,S], `cls_logits` [B];
      inference: `start_top_log_probs`, `start_top_index` [B,k]; `end_top_log_probs`, `end_top_index`
        [B,k*k'] (entry i*k'+j is the j-th end of the i-th start); `cls_logits` [B].

    Args:
      start_n_top: k, starts kept at inference.
      end_n_top: k', ends kept per start.
      dropout_rate: dropout before `answer_class/dense_1` in training (`--dropout_prob`, 0.1).
      initializer_range: stddev of the truncated-normal kernel initialiser.
    """

    def __init__(self, start_n_top: int = 5, end_n_top: int = 5, dropout_rate: float = 0.1,
                 initializer_range: float = 0.02, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.start_n_top = start_n_top
        self.end_n_top = end_n_top
        self.dropout_rate = dropout_rate
        self.initializer_range = initializer_range
        self.start_dense = self._dense(1, "start_dense")
        self.end_dense_1 = self._dense(1, "end_dense_1")
        self.end_layer_norm = LayerNorm(name="end_layer_norm", dtype="float32")
        self.answer_dropout = optional_dropout(dropout_rate)
        self.answer_dense_1 = self._dense(1, "answer_dense_1", use_bias=False)

    def _dense(self, units: int, name: str, activation=None, use_bias: bool = True) -> keras.layers.Dense:
        return keras.layers.Dense(units, activation=activation, use_bias=use_bias, name=name, dtype="float32",
                                  kernel_initializer=truncated_normal(self.initializer_range))

    def build(self, input_shape):
        width = int(input_shape[-1])
        # The H-wide layers need H, which is known only here.
        self.end_dense_0 = self._dense(width, "end_dense_0", tf.tanh)
        self.answer_dense_0 = self._dense(width, "answer_dense_0", tf.tanh)
        self.start_dense.build([None, width])
        self.end_dense_0.build([None, 2 * width])
        self.end_layer_norm.build([None, width])
        self.end_dense_1.build([None, width])
        self.answer_dense_0.build([None, 2 * width])
        self.answer_dense_1.build([None, width])
        super().build(input_shape)

    def _end_log_probs(self, hidden: tf.Tensor, start_features: tf.Tensor, p_mask: tf.Tensor) -> tf.Tensor:
        """End log-probs [B,K,S] for K start features [B,K,H] over `hidden` [B,S,H]."""
        length, num_starts = tf.shape(hidden)[1], tf.shape(start_features)[1]
        h_t = tf.tile(hidden[:, None], [1, num_starts, 1, 1])                  # [B,K,S,H]
        h_s = tf.tile(start_features[:, :, None], [1, 1, length, 1])           # [B,K,S,H]
        x = self.end_dense_0(tf.concat([h_t, h_s], axis=-1))
        logits = tf.squeeze(self.end_dense_1(self.end_layer_norm(x)), -1)      # [B,K,S]
        return tf.nn.log_softmax(_mask_logits(logits, p_mask[:, None]), axis=-1)

    def call(self, sequence_output: tf.Tensor, p_mask: tf.Tensor, start_positions: tf.Tensor | None = None,
             training=None) -> dict[str, tf.Tensor]:
        hidden = tf.cast(sequence_output, tf.float32)
        p_mask = tf.cast(p_mask, tf.float32)
        start_logits = _mask_logits(tf.squeeze(self.start_dense(hidden), -1), p_mask)   # [B,S]
        start_log_probs = tf.nn.log_softmax(start_logits, axis=-1)
        out: dict[str, tf.Tensor] = {}
        # With the gold starts (training) the end logits are conditioned on them; without (inference, and
        # Keras' own traces of the model) on each of the top `start_n_top` starts.
        if start_positions is not None:
            gold = tf.gather(hidden, tf.reshape(tf.cast(start_positions, tf.int32), [-1]), batch_dims=1)
            out["start_log_probs"] = start_log_probs
            out["end_log_probs"] = self._end_log_probs(hidden, gold[:, None], p_mask)[:, 0]
        else:
            top_log_probs, top_index = tf.math.top_k(start_log_probs, k=self.start_n_top)     # [B,k]
            starts = tf.gather(hidden, top_index, batch_dims=1)                               # [B,k,H]
            end_top_log_probs, end_top_index = tf.math.top_k(
                self._end_log_probs(hidden, starts, p_mask), k=self.end_n_top)             # [B,k,k']
            size = self.start_n_top * self.end_n_top
            out.update(start_top_log_probs=top_log_probs, start_top_index=top_index,
                       end_top_log_probs=tf.reshape(end_top_log_probs, [-1, size]),
                       end_top_index=tf.reshape(end_top_index, [-1, size]))
        start_feature = tf.einsum("bsh,bs->bh", hidden, tf.nn.softmax(start_logits, axis=-1))
        features = tf.concat([start_feature, hidden[:, 0]], axis=-1)
        features = apply_dropout(self.answer_dropout, self.answer_dense_0(features), training)
        out["cls_logits"] = tf.squeeze(self.answer_dense_1(features), -1)
        return out

    def tf1_variables(self) -> dict[str, tf.Variable]:
        out = dense_variables("start_logits/dense", self.start_dense)
        out.update(dense_variables("end_logits/dense_0", self.end_dense_0))
        out.update(layer_norm_variables("end_logits/LayerNorm", self.end_layer_norm))
        out.update(dense_variables("end_logits/dense_1", self.end_dense_1))
        out.update(dense_variables("answer_class/dense_0", self.answer_dense_0))
        out.update(dense_variables("answer_class/dense_1", self.answer_dense_1))
        return out

    def get_config(self) -> dict:
        config = {**super().get_config(), "start_n_top": self.start_n_top, "end_n_top": self.end_n_top,
                  "dropout_rate": self.dropout_rate, "initializer_range": self.initializer_range}
        config.pop("dtype", None)
        return config
