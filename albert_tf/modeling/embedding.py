"""The factorised ALBERT embedding layer (the original `embedding_lookup` + `embedding_postprocessor`)."""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from albert_tf.modeling.layers import LayerNorm, apply_dropout, layer_norm_variables, optional_dropout, truncated_normal


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertEmbeddings(keras.layers.Layer):
    """Factorised embeddings at width E: word + token type + position, then LayerNorm and dropout.

    Inputs: `word_ids` [B,S] int, `type_ids` [B,S] int. Output: [B,S,E] (the original's
    `get_embedding_output()`). Positions are always 0..S-1 and S must not exceed
    `max_position_embeddings` (checked when the length is known while tracing).

    Args:
      vocab_size: V, rows of the word table.
      embedding_size: E, the width of all three tables.
      type_vocab_size: rows of the token-type table.
      max_position_embeddings: rows of the position table.
      dropout_rate: dropout after the LayerNorm (the config's `hidden_dropout_prob`).
      initializer_range: stddev of the truncated-normal initialiser.
    """

    def __init__(self, vocab_size: int, embedding_size: int, type_vocab_size: int,
                 max_position_embeddings: int, dropout_rate: float, initializer_range: float, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.type_vocab_size = type_vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.dropout_rate = dropout_rate
        self.initializer_range = initializer_range
        self.layer_norm = LayerNorm(name="LayerNorm")
        self.dropout = optional_dropout(dropout_rate)

    def build(self, input_shape):
        def table(name: str, rows: int) -> tf.Variable:
            return self.add_weight(name, shape=[rows, self.embedding_size],
                                   initializer=truncated_normal(self.initializer_range))

        self.word_embeddings = table("word_embeddings", self.vocab_size)
        self.token_type_embeddings = table("token_type_embeddings", self.type_vocab_size)
        self.position_embeddings = table("position_embeddings", self.max_position_embeddings)
        super().build(input_shape)

    def call(self, word_ids: tf.Tensor, type_ids: tf.Tensor, training=None) -> tf.Tensor:
        seq_length = word_ids.shape[1]
        if seq_length is not None and seq_length > self.max_position_embeddings:
            raise ValueError(
                f"Sequence length {seq_length} exceeds max_position_embeddings="
                f"{self.max_position_embeddings} of this config; use --max_seq_length <= "
                f"{self.max_position_embeddings} or truncate the inputs.")
        # A longer dynamic length makes the position slice below fail with an out-of-range error; no
        # in-graph assertion is added (it costs a host sync per step and breaks some converters).
        dynamic_length = tf.shape(word_ids)[1]
        x = tf.gather(self.word_embeddings, word_ids)
        x += tf.gather(self.token_type_embeddings, type_ids)
        x += tf.expand_dims(self.position_embeddings[:dynamic_length], 0)
        x = self.layer_norm(x)
        return apply_dropout(self.dropout, x, training)

    def tf1_variables(self, scope: str) -> dict[str, tf.Variable]:
        """Official names under `scope` (e.g. `bert/embeddings`)."""
        out = {f"{scope}/word_embeddings": self.word_embeddings,
               f"{scope}/token_type_embeddings": self.token_type_embeddings,
               f"{scope}/position_embeddings": self.position_embeddings}
        out.update(layer_norm_variables(f"{scope}/LayerNorm", self.layer_norm))
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_size": self.vocab_size, "embedding_size": self.embedding_size,
                "type_vocab_size": self.type_vocab_size, "max_position_embeddings": self.max_position_embeddings,
                "dropout_rate": self.dropout_rate, "initializer_range": self.initializer_range}
