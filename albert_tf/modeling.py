"""ALBERT models: the encoder (`AlbertModel`), the pretraining model (`AlbertPretrainer`) and the
sequence classifier used for GLUE (`AlbertClassifier`).

All models take a dict of int32/int64 tensors: `input_word_ids` [B,S], optional `input_mask` [B,S]
(defaults to ones) and `input_type_ids` [B,S] (defaults to zeros), plus `masked_lm_positions` [B,P]
for the pretrainer. They return dicts (see each class). Every model can list its weights under their
official TF1 names (`tf1_variables()`), which is what `albert_tf.checkpoints` loads and saves.
"""
from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tf_keras as keras

from albert_tf.configs import AlbertConfig
from albert_tf.layers import (ATTENTION_MASK_ADDER, AlbertEmbeddings, AlbertTransformerBlock,
                              ClassificationHead, MaskedLMHead, dense_variables, layer_norm_variables,
                              truncated_normal)

ENCODER_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")


def _as_inputs(inputs: Any) -> dict[str, tf.Tensor]:
    """Accepts a dict (Model Garden / TF-Hub names) or a bare id tensor; fills defaults; casts to int32."""
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


def _dummy_inputs(with_positions: bool = False) -> dict[str, tf.Tensor]:
    ids = tf.constant([[0, 0]], tf.int32)
    out = {"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": tf.zeros_like(ids)}
    if with_positions:
        out["masked_lm_positions"] = tf.constant([[0]], tf.int32)
    return out


class AlbertModel(keras.Model):
    """The ALBERT encoder (original `modeling.AlbertModel`).

    Call with a dict (see module docstring) and `training` (dropout only when True). Returns a dict:
      `embedding_output` [B,S,E]: embeddings after LayerNorm (and dropout), before the E->H projection;
      `sequence_output` [B,S,H]: the last block's output;
      `pooled_output` [B,H]: tanh(dense(sequence_output[:, 0]));
      `encoder_outputs`: list of L*K tensors [B,S,H], one per inner block application, in order.
    Layer i uses parameter group `config.group_index(i)` and runs `inner_group_num` blocks.
    """

    def __init__(self, config: AlbertConfig, name: str = "albert", **kwargs):
        super().__init__(name=name, **kwargs)
        config.validate()
        self.config = config
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
        self(_dummy_inputs(), training=False)

    @property
    def embedding_table(self) -> tf.Variable:
        """The [V,E] word-embedding table (tied to the MLM output layer)."""
        return self.embeddings.word_embeddings

    def block(self, group: int, inner: int) -> AlbertTransformerBlock:
        """The shared block of parameter group `group`, inner group `inner`."""
        return self.blocks[self.used_groups.index(group) * self.config.inner_group_num + inner]

    def call(self, inputs, training=None) -> dict[str, Any]:
        inputs = _as_inputs(inputs)
        embedding_output = self.embeddings(inputs["input_word_ids"], inputs["input_type_ids"], training=training)
        x = embedding_output
        if self.embedding_projection is not None:
            x = self.embedding_projection(x)
        # [B,S] -> [B,1,1,S]: only key positions are masked, as in the original.
        mask = tf.cast(inputs["input_mask"][:, tf.newaxis, tf.newaxis, :], x.dtype)
        attention_bias = (1.0 - mask) * ATTENTION_MASK_ADDER
        encoder_outputs = []
        cfg = self.config
        for layer_idx in range(cfg.num_hidden_layers):
            group = cfg.group_index(layer_idx)
            for inner in range(cfg.inner_group_num):
                x = self.block(group, inner)(x, attention_bias, training=training)
                encoder_outputs.append(x)
        pooled_output = self.pooler(x[:, 0])
        return {"embedding_output": embedding_output, "sequence_output": x,
                "pooled_output": pooled_output, "encoder_outputs": encoder_outputs}

    def tf1_variables(self, scope: str = "bert") -> dict[str, tf.Variable]:
        """Official checkpoint name -> variable, for every weight of the encoder."""
        emb = self.embeddings
        out = {f"{scope}/embeddings/word_embeddings": emb.word_embeddings,
               f"{scope}/embeddings/token_type_embeddings": emb.token_type_embeddings,
               f"{scope}/embeddings/position_embeddings": emb.position_embeddings}
        out.update(layer_norm_variables(f"{scope}/embeddings/LayerNorm", emb.layer_norm))
        if self.embedding_projection is not None:
            out.update(dense_variables(f"{scope}/encoder/embedding_hidden_mapping_in", self.embedding_projection))
        for group in self.used_groups:
            for inner in range(self.config.inner_group_num):
                out.update(self.block(group, inner).tf1_variables(
                    f"{scope}/encoder/transformer/group_{group}/inner_group_{inner}"))
        out.update(dense_variables(f"{scope}/pooler/dense", self.pooler))
        return out


class AlbertPretrainer(keras.Model):
    """Encoder + MLM head + sentence-order-prediction head (original `run_pretraining.model_fn`).

    Inputs: the encoder inputs plus `masked_lm_positions` [B,P] (if absent, MLM logits are computed
    for every position, [B,S,V]). Returns the encoder's dict plus `mlm_logits` [B,P,V] and
    `sop_logits` [B,2] (label 1 = swapped / random B). `pretrainer.encoder` is the `AlbertModel`.
    """

    def __init__(self, config: AlbertConfig, name: str = "albert_pretrainer", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.encoder = AlbertModel(config)
        self.masked_lm = MaskedLMHead(self.encoder.embedding_table, config.hidden_act,
                                      config.initializer_range, name="predictions")
        self.sentence_order = ClassificationHead(2, config.initializer_range, name="seq_relationship")
        self(_dummy_inputs(with_positions=True), training=False)

    def call(self, inputs, training=None) -> dict[str, Any]:
        inputs = _as_inputs(inputs)
        outputs = dict(self.encoder({k: inputs[k] for k in ENCODER_INPUTS}, training=training))
        outputs["mlm_logits"] = self.masked_lm(outputs["sequence_output"], inputs.get("masked_lm_positions"))
        outputs["sop_logits"] = self.sentence_order(outputs["pooled_output"])
        return outputs

    def tf1_variables(self) -> dict[str, tf.Variable]:
        out = self.encoder.tf1_variables()
        out.update(self.masked_lm.tf1_variables("cls/predictions"))
        out.update(self.sentence_order.tf1_variables("cls/seq_relationship"))
        return out


class AlbertClassifier(keras.Model):
    """Sequence classifier/regressor on the pooled output (original `classifier_utils.create_model`).

    Dropout `dropout_rate` (0.1 in the original, independent of the config) on the pooled output in
    training, then `output_weights` [num_labels,H] and `output_bias` [num_labels] at the root scope.
    Returns the encoder's dict plus `logits` [B,num_labels] (float32; num_labels=1 for regression).
    """

    def __init__(self, config: AlbertConfig, num_labels: int, dropout_rate: float = 0.1,
                 name: str = "albert_classifier", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.num_labels = num_labels
        self.encoder = AlbertModel(config)
        self.classifier = ClassificationHead(num_labels, config.initializer_range, dropout_rate,
                                             name="classifier")
        self(_dummy_inputs(), training=False)

    def call(self, inputs, training=None) -> dict[str, Any]:
        inputs = _as_inputs(inputs)
        outputs = dict(self.encoder({k: inputs[k] for k in ENCODER_INPUTS}, training=training))
        outputs["logits"] = self.classifier(outputs["pooled_output"], training=training)
        return outputs

    def tf1_variables(self) -> dict[str, tf.Variable]:
        out = self.encoder.tf1_variables()
        out.update(self.classifier.tf1_variables(""))
        return out
