"""The ALBERT encoder (`AlbertModel`, the original `modeling.AlbertModel`), and the input conventions
every albert_tf model shares.

Inputs: a dict of int32/int64 tensors: `input_word_ids` [B,S], optional `input_mask` [B,S] (defaults
to ones) and `input_type_ids` [B,S] (defaults to zeros), the TF-Hub / Model Garden names.
"""
from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tf_keras as keras

from albert_tf.configs import AlbertConfig
from albert_tf.modeling.embedding import AlbertEmbeddings
from albert_tf.modeling.layers import ATTENTION_MASK_ADDER, dense_variables, truncated_normal
from albert_tf.modeling.transformer import AlbertTransformerBlock

ENCODER_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
ENCODER_OUTPUTS = ("sequence_output", "pooled_output", "encoder_outputs")


def as_inputs(inputs: Any) -> dict[str, tf.Tensor]:
    """Accepts a dict (Model Garden / TF-Hub names) or a bare id tensor; fills defaults; casts ints to int32."""
    if not isinstance(inputs, Mapping):
        inputs = {"input_word_ids": inputs}
    if "input_word_ids" not in inputs:
        raise KeyError(f"ALBERT inputs need 'input_word_ids'; got keys {sorted(inputs)}.")
    out = {k: tf.cast(v, tf.int32) if v.dtype.is_integer else v for k, v in inputs.items()}
    ids = out["input_word_ids"]
    if out.get("input_mask") is None:
        out["input_mask"] = tf.ones_like(ids)
    if out.get("input_type_ids") is None:
        out["input_type_ids"] = tf.zeros_like(ids)
    return out


def dummy_inputs(**extra: tf.Tensor) -> dict[str, tf.Tensor]:
    """A [1,2] batch of encoder inputs (plus `extra`), used to create a model's variables."""
    ids = tf.constant([[0, 0]], tf.int32)
    return {"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": tf.zeros_like(ids), **extra}


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertModel(keras.Model):
    """The ALBERT encoder.

    Call with a dict (see the module docstring) and `training` (dropout only when True). Returns a dict:
      `embedding_output` [B,S,E]: embeddings after LayerNorm (and dropout), before the E->H projection;
      `sequence_output` [B,S,H]: the last block's output;
      `pooled_output` [B,H]: tanh(dense(sequence_output[:, 0]));
      `encoder_outputs`: list of L*K tensors [B,S,H], one per inner block application, in order.
    Layer i uses parameter group `config.group_index(i)` and runs `inner_group_num` blocks.

    Args:
      config: the `AlbertConfig` (validated here).
      recompute_grad: in training, recompute each block application's activations in the backward
        pass instead of keeping them (`tf.recompute_grad`): less activation memory for more compute.
        With dropout > 0 the recomputed masks are fresh draws, so use it with dropout 0 (the v2
        recipes) for gradients identical to the plain pass.
      name: Keras name.
    """

    def __init__(self, config: AlbertConfig, recompute_grad: bool = False, name: str = "albert", **kwargs):
        super().__init__(name=name, **kwargs)
        config.validate()
        self.config = config
        self.recompute_grad = bool(recompute_grad)
        self.embeddings = AlbertEmbeddings(
            config.vocab_size, config.embedding_size, config.type_vocab_size,
            config.max_position_embeddings, config.hidden_dropout_prob, config.initializer_range,
            name="embeddings")
        # E == H: the original creates no projection at all.
        self.embedding_projection = (
            keras.layers.Dense(config.hidden_size, name="embedding_hidden_mapping_in",
                               kernel_initializer=truncated_normal(config.initializer_range))
            if config.embedding_size != config.hidden_size else None)
        # One block per (used group, inner group), in that order; applications share these weights.
        self.used_groups = config.used_groups()
        self.blocks = [
            AlbertTransformerBlock(
                config.hidden_size, config.num_attention_heads, config.intermediate_size,
                config.hidden_act, config.hidden_dropout_prob, config.attention_probs_dropout_prob,
                config.initializer_range, name=f"group_{group}_inner_group_{inner}")
            for group in self.used_groups for inner in range(config.inner_group_num)]
        self.pooler = keras.layers.Dense(config.hidden_size, activation="tanh", name="pooler",
                                         kernel_initializer=truncated_normal(config.initializer_range))
        self(dummy_inputs(), training=False)

    @property
    def embedding_table(self) -> tf.Variable:
        """The [V,E] word-embedding table (tied to the MLM output layer)."""
        return self.embeddings.word_embeddings

    def block(self, group: int, inner: int) -> AlbertTransformerBlock:
        """The shared block of parameter group `group`, inner group `inner`."""
        return self.blocks[self.used_groups.index(group) * self.config.inner_group_num + inner]

    def _apply_block(self, block: AlbertTransformerBlock, x: tf.Tensor, attention_bias: tf.Tensor,
                     qkv_weights: tuple[tf.Tensor, tf.Tensor] | None, training) -> tf.Tensor:
        if self.recompute_grad and training and qkv_weights is None:
            return tf.recompute_grad(lambda h: block(h, attention_bias, training=training))(x)
        if self.recompute_grad and training:
            # The fused Q/K/V weights are inputs of the recomputed function (not captured tensors), so
            # their gradients flow back to the three kernels.
            def recomputed(h: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
                return block(h, attention_bias, training=training, qkv_weights=(kernel, bias))

            return tf.recompute_grad(recomputed)(x, *qkv_weights)
        return block(x, attention_bias, training=training, qkv_weights=qkv_weights)

    def call(self, inputs, training=None) -> dict[str, Any]:
        inputs = as_inputs(inputs)
        embedding_output = self.embeddings(inputs["input_word_ids"], inputs["input_type_ids"], training=training)
        x = embedding_output
        if self.embedding_projection is not None:
            x = self.embedding_projection(x)
        # [B,S] -> [B,1,1,S]: only key positions are masked, as in the original.
        # (expand_dims rather than a new-axis slice: it converts to TFLite builtin ops.)
        mask = tf.cast(tf.expand_dims(tf.expand_dims(inputs["input_mask"], 1), 1), x.dtype)
        attention_bias = (1.0 - mask) * ATTENTION_MASK_ADDER
        encoder_outputs = []
        cfg = self.config
        # Once per forward pass: every layer of a parameter group reuses its block's fused Q/K/V weights
        # (a block not built yet, in the very first call, computes them itself).
        qkv_weights = [block.fused_qkv_weights() if block.built else None for block in self.blocks]
        for layer_idx in range(cfg.num_hidden_layers):
            group = cfg.group_index(layer_idx)
            for inner in range(cfg.inner_group_num):
                index = self.used_groups.index(group) * cfg.inner_group_num + inner
                x = self._apply_block(self.blocks[index], x, attention_bias, qkv_weights[index], training)
                encoder_outputs.append(x)
        pooled_output = self.pooler(x[:, 0])
        return {"embedding_output": embedding_output, "sequence_output": x,
                "pooled_output": pooled_output, "encoder_outputs": encoder_outputs}

    def tf1_variables(self, scope: str = "bert") -> dict[str, tf.Variable]:
        """Official checkpoint name -> variable, for every weight of the encoder."""
        out = self.embeddings.tf1_variables(f"{scope}/embeddings")
        if self.embedding_projection is not None:
            out.update(dense_variables(f"{scope}/encoder/embedding_hidden_mapping_in", self.embedding_projection))
        for group in self.used_groups:
            for inner in range(self.config.inner_group_num):
                out.update(self.block(group, inner).tf1_variables(
                    f"{scope}/encoder/transformer/group_{group}/inner_group_{inner}"))
        out.update(dense_variables(f"{scope}/pooler/dense", self.pooler))
        return out

    def build_from_config(self, config: dict) -> None:
        """Nothing to do: the model builds itself in `__init__` on integer inputs (Keras' own rebuild
        would call it on float placeholders)."""

    def get_config(self) -> dict:
        return {"config": self.config.to_dict(), "recompute_grad": self.recompute_grad, "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "AlbertModel":
        config = dict(config)
        return cls(AlbertConfig.from_dict(config.pop("config")), **config)
