"""Task models: an encoder plus heads. Every model takes `encoder=`: an `AlbertModel` (built from
`config` when not given) or any Keras layer with the TF-Hub / Model Garden encoder interface (dict
inputs `input_word_ids`, `input_mask`, `input_type_ids`; dict outputs `sequence_output` [B,S,H],
`pooled_output` [B,H], `encoder_outputs`).

Each model lists its weights under official TF1 names (`tf1_variables()`): the encoder's `bert/*`
names and the heads' own (`head_variables()`), which is what `albert_tf.checkpoints` loads and saves.
An encoder that is not an `AlbertModel` has no official names; its variables are listed under
`<encoder name>/<variable path>`, as the original kept a TF-Hub module's variables under the module's
own scope, so the checkpoint layout still round-trips.
"""
from __future__ import annotations

from typing import Any, Optional

import tensorflow as tf
import tf_keras as keras

from albert_tf.configs import AlbertConfig
from albert_tf.modeling.encoder import ENCODER_INPUTS, AlbertModel, as_inputs, dummy_inputs
from albert_tf.modeling.heads import ClassificationHead, MaskedLMHead, SquadV2Head


def encoder_tf1_variables(encoder: keras.layers.Layer) -> dict[str, tf.Variable]:
    """Checkpoint name -> variable for an encoder: the official names for an `AlbertModel`, else
    `<encoder name>/<variable path>` (made unique in order of appearance)."""
    if hasattr(encoder, "tf1_variables"):
        return encoder.tf1_variables()
    out: dict[str, tf.Variable] = {}
    for variable in encoder.variables:
        base = f"{encoder.name}/{variable.name.split(':')[0]}"
        name, n = base, 1
        while name in out:
            name, n = f"{base}_{n}", n + 1
        out[name] = variable
    return out


class AlbertTaskModel(keras.Model):
    """Base of the task models: holds the encoder and the heads, names their variables, serializes.

    Subclasses create their heads in `__init__` (listing them in `self.heads`), then call `self._build()`,
    and implement `call`.
    """

    def __init__(self, config: Optional[AlbertConfig], encoder: Optional[keras.layers.Layer] = None,
                 recompute_grad: bool = False, **kwargs):
        super().__init__(**kwargs)
        if encoder is None:
            if config is None:
                raise ValueError("Pass an AlbertConfig, or an encoder (encoder=...).")
            encoder = AlbertModel(config, recompute_grad=recompute_grad)
        self.config = config if config is not None else getattr(encoder, "config", None)
        self.encoder = encoder
        self.heads: list[keras.layers.Layer] = []

    @property
    def initializer_range(self) -> float:
        return self.config.initializer_range if self.config is not None else 0.02

    def _build(self, **extra_inputs: tf.Tensor) -> None:
        self(dummy_inputs(**extra_inputs), training=False)

    def encode(self, inputs: dict[str, tf.Tensor], training=None) -> dict[str, Any]:
        """Runs the encoder on the encoder inputs of `inputs` (already passed through `as_inputs`)."""
        return dict(self.encoder({k: inputs[k] for k in ENCODER_INPUTS}, training=training))

    def head_variables(self) -> dict[str, tf.Variable]:
        """Official names of the heads' weights (what a pretrained encoder checkpoint lacks)."""
        out: dict[str, tf.Variable] = {}
        for head in self.heads:
            out.update(head.tf1_variables())
        return out

    def tf1_variables(self) -> dict[str, tf.Variable]:
        """Official checkpoint name -> variable, encoder and heads."""
        return {**encoder_tf1_variables(self.encoder), **self.head_variables()}

    def _encoder_config(self) -> Optional[dict]:
        """The serialized encoder when it is not the default `AlbertModel(config)`."""
        if isinstance(self.encoder, AlbertModel) and self.encoder.config == self.config:
            return None
        return keras.saving.serialize_keras_object(self.encoder)

    def build_from_config(self, config: dict) -> None:
        """Nothing to do: the model builds itself in `__init__` on integer inputs (Keras' own rebuild
        would call it on float placeholders)."""

    def get_config(self) -> dict:
        return {"config": None if self.config is None else self.config.to_dict(),
                "encoder": self._encoder_config(), "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "AlbertTaskModel":
        config = dict(config)
        albert = config.pop("config")
        encoder = config.pop("encoder", None)
        return cls(AlbertConfig.from_dict(albert) if albert is not None else None,
                   encoder=keras.saving.deserialize_keras_object(encoder) if encoder else None, **config)


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertPretrainer(AlbertTaskModel):
    """Encoder + MLM head + sentence-order-prediction head (original `run_pretraining.model_fn`).

    Inputs: the encoder inputs plus `masked_lm_positions` [B,P] (if absent, MLM logits are computed
    for every position, [B,S,V]). Returns the encoder's dict plus `mlm_logits` [B,P,V] and
    `sop_logits` [B,2] (label 1 = swapped / random B). `pretrainer.encoder` is the encoder.

    Args:
      config: the model config (the encoder is built from it unless `encoder` is given).
      encoder: an encoder exposing `embedding_table` [V,E] (the MLM output layer is tied to it).
      recompute_grad: see `AlbertModel`.
    """

    def __init__(self, config: Optional[AlbertConfig], encoder: Optional[keras.layers.Layer] = None,
                 recompute_grad: bool = False, name: str = "albert_pretrainer", **kwargs):
        super().__init__(config, encoder, recompute_grad, name=name, **kwargs)
        if not hasattr(self.encoder, "embedding_table"):
            raise ValueError("AlbertPretrainer needs an encoder with an `embedding_table` (the MLM head is tied "
                             "to it), e.g. an AlbertModel.")
        activation = self.config.hidden_act if self.config is not None else "gelu"
        self.masked_lm = MaskedLMHead(self.encoder.embedding_table, activation, self.initializer_range,
                                      tf1_scope="cls/predictions", name="predictions")
        self.sentence_order = ClassificationHead(2, self.initializer_range, tf1_scope="cls/seq_relationship",
                                                 name="seq_relationship")
        self.heads = [self.masked_lm, self.sentence_order]
        self._build(masked_lm_positions=tf.constant([[0]], tf.int32))

    def call(self, inputs, training=None) -> dict[str, Any]:
        inputs = as_inputs(inputs)
        outputs = self.encode(inputs, training)
        outputs["mlm_logits"] = self.masked_lm(outputs["sequence_output"], inputs.get("masked_lm_positions"))
        outputs["sop_logits"] = self.sentence_order(outputs["pooled_output"])
        return outputs


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertClassifier(AlbertTaskModel):
    """Sequence classifier/regressor on the pooled output (original `classifier_utils.create_model`).

    Dropout `dropout_rate` (0.1 in the original, independent of the config) on the pooled output in
    training, then `output_weights` [num_labels,H] and `output_bias` [num_labels] at the root scope.
    Returns the encoder's dict plus `logits` [B,num_labels] (float32; num_labels=1 for regression).

    Args:
      config: the model config (may be None when `encoder` is given).
      num_labels: C.
      dropout_rate: head dropout in training.
      encoder: see the module docstring (e.g. from `albert_tf.from_hub`).
      recompute_grad: see `AlbertModel`.
      id2label: optional label names by class index (kept as `model.id2label`).
    """

    def __init__(self, config: Optional[AlbertConfig], num_labels: int, dropout_rate: float = 0.1,
                 encoder: Optional[keras.layers.Layer] = None, recompute_grad: bool = False,
                 id2label: Optional[dict[int, str]] = None, name: str = "albert_classifier", **kwargs):
        super().__init__(config, encoder, recompute_grad, name=name, **kwargs)
        self.num_labels = num_labels
        self.dropout_rate = dropout_rate
        self.id2label = dict(id2label) if id2label else None
        self.classifier = ClassificationHead(num_labels, self.initializer_range, dropout_rate, tf1_scope="",
                                             name="classifier")
        self.heads = [self.classifier]
        self._build()

    def call(self, inputs, training=None) -> dict[str, Any]:
        outputs = self.encode(as_inputs(inputs), training)
        outputs["logits"] = self.classifier(outputs["pooled_output"], training=training)
        return outputs

    def get_config(self) -> dict:
        return {**super().get_config(), "num_labels": self.num_labels, "dropout_rate": self.dropout_rate,
                "id2label": {str(k): v for k, v in self.id2label.items()} if self.id2label else None}

    @classmethod
    def from_config(cls, config: dict) -> "AlbertClassifier":
        config = dict(config)
        if config.get("id2label"):
            config["id2label"] = {int(k): v for k, v in config["id2label"].items()}
        return super().from_config(config)


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertQuestionAnswering(AlbertTaskModel):
    """Extractive QA with the SQuAD v1.1 span head (original `squad_utils.create_v1_model`): one [2,H]
    product at every position, `cls/squad/output_weights` [2,H] and `cls/squad/output_bias` [2], no
    dropout. Returns the encoder's dict plus `start_logits` and `end_logits` [B,S] (float32).

    Args:
      config, encoder, recompute_grad: as for `AlbertClassifier`.
    """

    def __init__(self, config: Optional[AlbertConfig], encoder: Optional[keras.layers.Layer] = None,
                 recompute_grad: bool = False, name: str = "albert_question_answering", **kwargs):
        super().__init__(config, encoder, recompute_grad, name=name, **kwargs)
        self.span = ClassificationHead(2, self.initializer_range, tf1_scope="cls/squad", name="squad")
        self.heads = [self.span]
        self._build()

    def call(self, inputs, training=None) -> dict[str, Any]:
        outputs = self.encode(as_inputs(inputs), training)
        logits = self.span(outputs["sequence_output"])  # [B,S,2]
        outputs["start_logits"] = logits[:, :, 0]
        outputs["end_logits"] = logits[:, :, 1]
        return outputs


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertMultipleChoice(AlbertTaskModel):
    """Multiple choice (original `race_utils.create_model`): [B,C,S] inputs run through the encoder as
    [B*C,S]; pooled output -> dropout (training only) -> one score per choice with `output_weights`
    [1,H] and `output_bias` [1] at the root scope. Returns `pooled_output` [B*C,H] and `logits` [B,C].

    Args:
      config, encoder, recompute_grad: as for `AlbertClassifier`.
      num_choices: C (4 for RACE).
      dropout_rate: head dropout in training (`--dropout_prob`, 0.1).
    """

    def __init__(self, config: Optional[AlbertConfig], num_choices: int = 4, dropout_rate: float = 0.1,
                 encoder: Optional[keras.layers.Layer] = None, recompute_grad: bool = False,
                 name: str = "albert_multiple_choice", **kwargs):
        super().__init__(config, encoder, recompute_grad, name=name, **kwargs)
        self.num_choices = num_choices
        self.dropout_rate = dropout_rate
        self.classifier = ClassificationHead(1, self.initializer_range, dropout_rate, tf1_scope="",
                                             name="classifier")
        self.heads = [self.classifier]
        ids = tf.zeros([1, num_choices, 2], tf.int32)
        self({"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": ids}, training=False)

    def call(self, inputs, training=None) -> dict[str, Any]:
        inputs = as_inputs(inputs)
        length = tf.shape(inputs["input_word_ids"])[-1]
        flat = {k: tf.reshape(inputs[k], [-1, length]) for k in ENCODER_INPUTS}
        outputs = self.encode(flat, training)
        scores = self.classifier(outputs["pooled_output"], training=training)  # [B*C,1]
        return {"pooled_output": outputs["pooled_output"],
                "logits": tf.reshape(scores, [-1, self.num_choices])}

    def get_config(self) -> dict:
        return {**super().get_config(), "num_choices": self.num_choices, "dropout_rate": self.dropout_rate}


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertSquadV2(AlbertTaskModel):
    """Extractive QA with the SQuAD v2.0 head of the original (`squad_utils.create_v2_model`): span
    start/end log-probs with beam search at inference and an answerability logit; see `SquadV2Head`
    for the computation. Its weights are at the root scope (`start_logits/*`, `end_logits/*`,
    `answer_class/*`); the encoder keeps `bert/pooler/*` as fine-tuned v2 checkpoints do.

    Inputs: the encoder inputs plus `p_mask` [B,S] (1 where no answer may start or end) and, in
    training, `start_positions` [B] (the end logits are conditioned on the gold start).
    Returns the encoder's dict plus, in training, `start_log_probs`, `end_log_probs` [B,S] and
    `cls_logits` [B]; otherwise `start_top_log_probs`, `start_top_index` [B,k], `end_top_log_probs`,
    `end_top_index` [B,k*k'] and `cls_logits` [B] (float32 values, int32 indices; the sequence length
    must be at least k and k').

    Args:
      config, encoder, recompute_grad: as for `AlbertClassifier`.
      start_n_top: k (`--start_n_top`, 5).
      end_n_top: k' (`--end_n_top`, 5).
      dropout_rate: dropout in the answerability branch in training (`--dropout_prob`, 0.1).
    """

    def __init__(self, config: Optional[AlbertConfig], encoder: Optional[keras.layers.Layer] = None,
                 recompute_grad: bool = False, start_n_top: int = 5, end_n_top: int = 5,
                 dropout_rate: float = 0.1, name: str = "albert_squad_v2", **kwargs):
        super().__init__(config, encoder, recompute_grad, name=name, **kwargs)
        self.start_n_top = start_n_top
        self.end_n_top = end_n_top
        self.dropout_rate = dropout_rate
        self.squad = SquadV2Head(start_n_top, end_n_top, dropout_rate, self.initializer_range, name="squad_v2")
        self.heads = [self.squad]
        ids = tf.zeros([1, max(start_n_top, end_n_top, 2)], tf.int32)
        self({"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": ids, "p_mask": ids},
             training=False)

    def call(self, inputs, training=None) -> dict[str, Any]:
        inputs = as_inputs(inputs)
        if inputs.get("p_mask") is None:
            raise KeyError("AlbertSquadV2 needs a `p_mask` input [B,S] (1 where no answer may be), as written "
                           "by the SQuAD feature writer.")
        outputs = self.encode(inputs, training)
        outputs.update(self.squad(outputs["sequence_output"], inputs["p_mask"], inputs.get("start_positions"),
                                  training=training))
        return outputs

    def get_config(self) -> dict:
        return {**super().get_config(), "start_n_top": self.start_n_top, "end_n_top": self.end_n_top,
                "dropout_rate": self.dropout_rate}
