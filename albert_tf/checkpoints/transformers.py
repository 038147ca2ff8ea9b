"""Hugging Face `transformers` ALBERT checkpoints, read and written without PyTorch.

A Hugging Face model directory holds `config.json` (`model_type: "albert"`, `architectures`), the weights
in `model.safetensors` (also sharded, with `model.safetensors.index.json`; or a `pytorch_model.bin`, read
only when torch is installed) and the tokenizer (`spiece.model` and `tokenizer_config.json`). This module
renames Hugging Face parameters to the official TF1 names that every albert_tf model lists
(`tf1_variables()`), so that loading goes through the one strict routine
`albert_tf.checkpoints.load_variables`, and writes that layout back from any albert_tf model.

Name map (Hugging Face name -> official name). Head models prefix the encoder's names with `albert.`; a
bare `AlbertModel` file does not. `[T]`: a dense weight, stored [out, in] by Hugging Face and [in, out]
(the TF kernel) here; embeddings and the heads' [C,H] matrices are stored alike in both.

  embeddings.{word,position,token_type}_embeddings.weight  -> bert/embeddings/{...}_embeddings
  embeddings.LayerNorm.{weight,bias}                        -> bert/embeddings/LayerNorm/{gamma,beta}
  encoder.embedding_hidden_mapping_in.{weight[T],bias}      -> bert/encoder/embedding_hidden_mapping_in/{kernel,bias}
  encoder.albert_layer_groups.{g}.albert_layers.{k}.X       -> bert/encoder/transformer/group_{g}/inner_group_{k}/Y
      X = attention.{query,key,value} [T]                      Y = attention_1/self/{query,key,value}
          attention.dense [T]                                      attention_1/output/dense
          attention.LayerNorm                                      LayerNorm
          ffn [T]                                                  ffn_1/intermediate/dense
          ffn_output [T]                                           ffn_1/intermediate/output/dense
          full_layer_layer_norm                                    LayerNorm_1
  pooler.{weight[T],bias}                                   -> bert/pooler/dense/{kernel,bias}
  predictions.dense [T] / predictions.LayerNorm             -> cls/predictions/transform/dense / transform/LayerNorm
  predictions.bias                                          -> cls/predictions/output_bias
  sop_classifier.classifier.{weight,bias} [2,H]             -> cls/seq_relationship/output_{weights,bias}
  classifier.{weight,bias} (sequence classification [C,H],
      multiple choice [1,H])                                -> output_{weights,bias} (root scope)
  qa_outputs.{weight,bias} [2,H]                            -> cls/squad/output_{weights,bias}

`predictions.decoder.weight` is tied to the word embeddings and `predictions.decoder.bias` to
`predictions.bias`; a file may hold them or not. They are checked equal to what they are tied to and
never written. Facts of the layout that differ from the original (each handled here):

- `embedding_hidden_mapping_in` exists even when E == H (the original has no projection then): it is
  written as the identity, and read only when it is the identity (anything else is refused).
- `hidden_act` "gelu" is the exact erf GELU there ("gelu_exact" here) and "gelu_new" the tanh form (the
  original's "gelu").
- Layer i runs group `int(i / (L / G))` there, `int(i / L * G)` in the original; a config where the two
  differ (for some L, G through float rounding, e.g. L = G = 22) is refused both ways.
- Masked-LM, token-classification and QA models have no pooler; a masked-LM file has no SOP head.
"""
from __future__ import annotations

import io
import json
import math
import os
from typing import Any, Iterable, Mapping, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from albert_tf.checkpoints.tf1 import CheckpointMismatchError, LoadReport, _summarize, load_variables
from albert_tf.configs import AlbertConfig
from albert_tf.modeling.encoder import AlbertModel
from albert_tf.modeling.layers import LAYER_NORM_EPSILON
from albert_tf.modeling.models import (AlbertClassifier, AlbertMultipleChoice, AlbertPretrainer,
                                       AlbertQuestionAnswering)

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PYTORCH_FILE = "pytorch_model.bin"
SPM_FILE = "spiece.model"
WORDPIECE_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
_WEIGHT_FILES = (SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, PYTORCH_FILE)

# Hugging Face architecture -> the albert_tf model class that holds the same weights.
ARCHITECTURES: dict[str, type] = {
    "AlbertModel": AlbertModel,
    "AlbertForPreTraining": AlbertPretrainer,
    "AlbertForMaskedLM": AlbertPretrainer,
    "AlbertForSequenceClassification": AlbertClassifier,
    "AlbertForQuestionAnswering": AlbertQuestionAnswering,
    "AlbertForMultipleChoice": AlbertMultipleChoice,
}
# The heads each architecture has, and whether its encoder has a pooler (HF `add_pooling_layer`).
_ARCHITECTURE_HEADS: dict[str, tuple[str, ...]] = {
    "AlbertModel": (), "AlbertForPreTraining": ("predictions", "sop"), "AlbertForMaskedLM": ("predictions",),
    "AlbertForSequenceClassification": ("classifier",), "AlbertForMultipleChoice": ("classifier",),
    "AlbertForQuestionAnswering": ("qa",),
}
_WITHOUT_POOLER = ("AlbertForMaskedLM", "AlbertForQuestionAnswering")
# Default architecture written for each albert_tf model class (most specific class first).
_DEFAULT_ARCHITECTURE: tuple[tuple[type, str], ...] = (
    (AlbertPretrainer, "AlbertForPreTraining"), (AlbertClassifier, "AlbertForSequenceClassification"),
    (AlbertQuestionAnswering, "AlbertForQuestionAnswering"), (AlbertMultipleChoice, "AlbertForMultipleChoice"),
    (AlbertModel, "AlbertModel"),
)

# Hugging Face's AlbertConfig defaults: its config.json files omit every key equal to them.
_HF_DEFAULTS: dict[str, Any] = dict(
    vocab_size=30000, embedding_size=128, hidden_size=4096, num_hidden_layers=12, num_hidden_groups=1,
    num_attention_heads=64, intermediate_size=16384, inner_group_num=1, hidden_act="gelu_new",
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=512, type_vocab_size=2,
    initializer_range=0.02, layer_norm_eps=1e-12, classifier_dropout_prob=0.1, position_embedding_type="absolute")
# The AlbertConfig fields both sides share under the same name and meaning.
_SHARED_FIELDS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
                  "num_attention_heads", "intermediate_size", "inner_group_num", "hidden_dropout_prob",
                  "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size", "initializer_range")
# Activation names: Hugging Face (ACT2FN) -> albert_tf, and back. The three tanh forms are one function.
_ACTIVATION_FROM_HF = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "gelu_fast": "gelu", "gelu": "gelu_exact",
                       "relu": "relu", "tanh": "tanh", "silu": "silu", "swish": "silu", "linear": "linear"}
_ACTIVATION_TO_HF = {"gelu": "gelu_new", "gelu_new": "gelu_new", "gelu_exact": "gelu", "relu": "relu",
                     "tanh": "tanh", "silu": "silu", "swish": "silu", "linear": "linear", "": "linear"}
# Non-trainable buffers some Hugging Face versions save; never weights.
_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
_TIED_DECODER_WEIGHT = "predictions.decoder.weight"
_TIED_DECODER_BIAS = "predictions.decoder.bias"
_POOLER = ("bert/pooler/dense/kernel", "bert/pooler/dense/bias")
_PROJECTION = "bert/encoder/embedding_hidden_mapping_in"

NameTable = list[tuple[str, str, bool]]  # (Hugging Face name, official name, transpose)


# ---------------------------------------------------------------------------------------------- names
def _dense(hf: str, tf1: str) -> NameTable:
    return [(f"{hf}.weight", f"{tf1}/kernel", True), (f"{hf}.bias", f"{tf1}/bias", False)]


def _layer_norm(hf: str, tf1: str) -> NameTable:
    return [(f"{hf}.weight", f"{tf1}/gamma", False), (f"{hf}.bias", f"{tf1}/beta", False)]


def _linear_head(hf: str, tf1_scope: str) -> NameTable:
    scope = f"{tf1_scope}/" if tf1_scope else ""
    return [(f"{hf}.weight", f"{scope}output_weights", False), (f"{hf}.bias", f"{scope}output_bias", False)]


_HEAD_TABLES: dict[str, NameTable] = {
    "predictions": (_dense("predictions.dense", "cls/predictions/transform/dense")
                    + _layer_norm("predictions.LayerNorm", "cls/predictions/transform/LayerNorm")
                    + [("predictions.bias", "cls/predictions/output_bias", False)]),
    "sop": _linear_head("sop_classifier.classifier", "cls/seq_relationship"),
    "classifier": _linear_head("classifier", ""),
    "qa": _linear_head("qa_outputs", "cls/squad"),
}


def name_table(config: AlbertConfig, prefix: str, heads: Iterable[str], pooler: bool,
               groups: Optional[Iterable[int]] = None) -> NameTable:
    """(Hugging Face name, official name, transpose) for every weight of one Hugging Face model.

    Args:
      config: the model's config (G groups of K inner layers).
      prefix: "albert." for head models, "" for a bare `AlbertModel`.
      heads: keys of the heads present ("predictions", "sop", "classifier", "qa").
      pooler: whether the encoder has its pooler.
      groups: the parameter groups listed (default: all G, as Hugging Face creates them).
    """
    table = [(f"{prefix}embeddings.{kind}_embeddings.weight", f"bert/embeddings/{kind}_embeddings", False)
             for kind in ("word", "position", "token_type")]
    table += _layer_norm(f"{prefix}embeddings.LayerNorm", "bert/embeddings/LayerNorm")
    table += _dense(f"{prefix}encoder.embedding_hidden_mapping_in", _PROJECTION)
    for g in range(config.num_hidden_groups) if groups is None else groups:
        for k in range(config.inner_group_num):
            hf = f"{prefix}encoder.albert_layer_groups.{g}.albert_layers.{k}"
            tf1 = f"bert/encoder/transformer/group_{g}/inner_group_{k}"
            for name in ("query", "key", "value"):
                table += _dense(f"{hf}.attention.{name}", f"{tf1}/attention_1/self/{name}")
            table += _dense(f"{hf}.attention.dense", f"{tf1}/attention_1/output/dense")
            table += _layer_norm(f"{hf}.attention.LayerNorm", f"{tf1}/LayerNorm")
            table += _dense(f"{hf}.ffn", f"{tf1}/ffn_1/intermediate/dense")
            table += _dense(f"{hf}.ffn_output", f"{tf1}/ffn_1/intermediate/output/dense")
            table += _layer_norm(f"{hf}.full_layer_layer_norm", f"{tf1}/LayerNorm_1")
    if pooler:
        table += _dense(f"{prefix}pooler", "bert/pooler/dense")
    for head in heads:
        table += _HEAD_TABLES[head]
    return table


# --------------------------------------------------------------------------------------------- config
def hf_group_index(layer_idx: int, num_layers: int, num_groups: int) -> int:
    """The parameter group Hugging Face's `AlbertTransformer` runs at layer `layer_idx`."""
    return int(layer_idx / (num_layers / num_groups))


def check_group_rule(config: AlbertConfig, what: str) -> None:
    """Raises when Hugging Face would run a different group than the original at some layer."""
    L, G = config.num_hidden_layers, config.num_hidden_groups
    differ = [i for i in range(L) if hf_group_index(i, L, G) != config.group_index(i)]
    if differ:
        raise ValueError(
            f"{what}: with num_hidden_layers={L} and num_hidden_groups={G}, Hugging Face runs layer i with group "
            f"int(i / (L / G)) and the original with int(i / L * G); they differ at layers {differ} (float "
            "rounding), so the two would compute different networks. Use another num_hidden_groups.")


def albert_config_from_transformers(hf_config: Mapping[str, Any], source: str = CONFIG_FILE) -> AlbertConfig:
    """The `AlbertConfig` of a Hugging Face ALBERT `config.json` (a dict).

    Keys the file omits take Hugging Face's defaults (its writer drops every default value), not the
    original's. Refuses what albert_tf cannot compute identically: a `position_embedding_type` other
    than "absolute", a `layer_norm_eps` other than 1e-12, an unknown `hidden_act`, a group layout that
    differs from the original's (`check_group_rule`).

    Raises:
      ValueError: naming `source` and the field.
    """
    if hf_config.get("model_type") != "albert":
        raise ValueError(f"{source} has model_type {hf_config.get('model_type')!r}, not 'albert': not a Hugging "
                         "Face ALBERT model.")
    values = {**_HF_DEFAULTS, **{k: hf_config[k] for k in _HF_DEFAULTS if hf_config.get(k) is not None}}
    if values["position_embedding_type"] != "absolute":
        raise ValueError(f"{source}: position_embedding_type {values['position_embedding_type']!r} is not supported "
                         "(ALBERT uses 'absolute' position embeddings).")
    if not math.isclose(float(values["layer_norm_eps"]), LAYER_NORM_EPSILON, rel_tol=1e-6):
        raise ValueError(f"{source}: layer_norm_eps {values['layer_norm_eps']} differs from the original's 1e-12, "
                         "which albert_tf's LayerNorm uses; this model would compute differently.")
    act = values["hidden_act"]
    if act not in _ACTIVATION_FROM_HF:
        raise ValueError(f"{source}: hidden_act {act!r} is not supported; supported: "
                         f"{', '.join(sorted(_ACTIVATION_FROM_HF))}.")
    config = AlbertConfig(**{k: values[k] for k in _SHARED_FIELDS}, hidden_act=_ACTIVATION_FROM_HF[act])
    check_group_rule(config, source)
    return config


def _read_json(path: str) -> dict:
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path} not found.")
    with tf.io.gfile.GFile(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}).") from None


def is_transformers_dir(path: str) -> bool:
    """Whether `path` is a Hugging Face ALBERT directory: `config.json` with `model_type` "albert" and a
    weights file (`model.safetensors`, `model.safetensors.index.json` or `pytorch_model.bin`)."""
    path = os.fspath(path)
    config = os.path.join(path, CONFIG_FILE)
    if not tf.io.gfile.isdir(path) or not tf.io.gfile.exists(config):
        return False
    try:
        model_type = _read_json(config).get("model_type")
    except ValueError:
        return False
    return model_type == "albert" and any(tf.io.gfile.exists(os.path.join(path, n)) for n in _WEIGHT_FILES)


def transformers_albert_config(path: str) -> AlbertConfig:
    """The `AlbertConfig` of the Hugging Face directory `path` (see `albert_config_from_transformers`)."""
    config_path = os.path.join(os.fspath(path), CONFIG_FILE)
    return albert_config_from_transformers(_read_json(config_path), config_path)


# -------------------------------------------------------------------------------------------- weights
def _read_bytes(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def _load_safetensors(path: str) -> dict[str, np.ndarray]:
    import safetensors.numpy  # local: only this format needs the package

    try:
        return dict(safetensors.numpy.load(_read_bytes(path)))
    except KeyError as e:  # a dtype numpy lacks
        raise ValueError(f"{path} holds {e.args[0]} tensors, which numpy cannot read; save the model in float32 "
                         "(e.g. model.float().save_pretrained(...)).") from None
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{path} is not a readable safetensors file ({e}).") from None


def _load_pytorch(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ImportError(f"{path} is a PyTorch file and reading it needs torch, which is not installed: "
                          "pip install torch, or save the model as model.safetensors "
                          "(save_pretrained(..., safe_serialization=True)).") from None
    state = torch.load(io.BytesIO(_read_bytes(path)), map_location="cpu", weights_only=True)
    return {name: (t.detach().float() if t.is_floating_point() else t.detach()).numpy() for name, t in state.items()}


def read_transformers_weights(path: str) -> dict[str, np.ndarray]:
    """Every tensor of the Hugging Face directory `path`, by Hugging Face name.

    Reads `model.safetensors`, else the shards listed in `model.safetensors.index.json`, else
    `pytorch_model.bin` (only with torch installed; floating tensors as float32).

    Raises:
      FileNotFoundError: none of these files exists.
      ImportError: only `pytorch_model.bin` exists and torch is not installed.
    """
    path = os.fspath(path)
    single, index, pickle = (os.path.join(path, n) for n in _WEIGHT_FILES)
    if tf.io.gfile.exists(single):
        return _load_safetensors(single)
    if tf.io.gfile.exists(index):
        weights: dict[str, np.ndarray] = {}
        for shard in sorted(set(_read_json(index).get("weight_map", {}).values())):
            weights.update(_load_safetensors(os.path.join(path, shard)))
        return weights
    if tf.io.gfile.exists(pickle):
        return _load_pytorch(pickle)
    raise FileNotFoundError(f"No weights in {path}: expected {SAFETENSORS_FILE} (or {SAFETENSORS_INDEX_FILE} with "
                            f"its shards, or {PYTORCH_FILE}) next to {CONFIG_FILE}.")


def _tokenizer_options(path: str) -> Optional[dict[str, Any]]:
    """`do_lower_case`, `remove_space`, `keep_accents` of `tokenizer_config.json` (HF's AlbertTokenizer
    defaults True, True, False), or None without a tokenizer file."""
    if not any(tf.io.gfile.exists(os.path.join(path, n)) for n in (SPM_FILE, WORDPIECE_FILE)):
        return None
    config_path = os.path.join(path, TOKENIZER_CONFIG_FILE)
    options = _read_json(config_path) if tf.io.gfile.exists(config_path) else {}
    return {"do_lower_case": bool(options.get("do_lower_case", True)),
            "remove_space": bool(options.get("remove_space", True)),
            "keep_accents": bool(options.get("keep_accents", False))}


def _id2label(hf_config: Mapping[str, Any]) -> Optional[dict[int, str]]:
    labels = hf_config.get("id2label")
    return {int(k): str(v) for k, v in labels.items()} if labels else None


def transformers_tf1_arrays(path: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every weight of a Hugging Face ALBERT directory, under the official TF1 names.

    Dense weights are transposed to TF kernels; buffers and the tied decoder copies are dropped (after
    checking them); parameter groups no layer runs are dropped; with E == H the identity
    `embedding_hidden_mapping_in` is dropped. With these arrays,
    `load_variables(model, {n: a.shape for n, a in arrays.items()}, arrays.__getitem__, path)` loads
    strictly into an albert_tf model of the same config.

    Returns:
      (arrays, info). `info`: `config` (AlbertConfig), `architecture` (the first of `config.architectures`,
      or None), `id2label` ({int: str} or None), `num_labels`, `classifier_dropout_prob`, `has_pooler`,
      `tokenizer` (the options of `_tokenizer_options`, or None without tokenizer files), `hf_config`.

    Raises:
      ValueError: an unsupported config (see `albert_config_from_transformers`), names that are not an
        ALBERT model's (the message lists them), untied decoder weights, a learned E == H projection.
      FileNotFoundError / ImportError: see `read_transformers_weights`.
    """
    path = os.fspath(path)
    config_path = os.path.join(path, CONFIG_FILE)
    hf_config = _read_json(config_path)
    config = albert_config_from_transformers(hf_config, config_path)
    weights = read_transformers_weights(path)
    prefix = "albert." if any(n.startswith("albert.") for n in weights) else ""
    table = {hf: (tf1, transpose)
             for hf, tf1, transpose in name_table(config, prefix, _HEAD_TABLES, pooler=True)}
    arrays: dict[str, np.ndarray] = {}
    tied: dict[str, np.ndarray] = {}
    unknown = []
    for name, value in weights.items():
        if name in (prefix + b for b in _BUFFERS):
            continue
        if name in (_TIED_DECODER_WEIGHT, _TIED_DECODER_BIAS):
            tied[name] = value
        elif name in table:
            tf1, transpose = table[name]
            arrays[tf1] = np.ascontiguousarray(value.T) if transpose else value
        else:
            unknown.append(name)
    if unknown:
        raise CheckpointMismatchError(
            f"{path}: {len(unknown)} parameters are not those of a Hugging Face ALBERT model "
            f"({_summarize(sorted(unknown))}); supported architectures: {', '.join(ARCHITECTURES)}.")
    _check_tied(arrays, tied, path)
    _drop_identity_projection(arrays, config, path)
    used = set(config.used_groups())
    for g in range(config.num_hidden_groups):
        if g not in used:
            scope = f"bert/encoder/transformer/group_{g}/"
            for name in [n for n in arrays if n.startswith(scope)]:
                del arrays[name]
            logging.info("%s: group %d is run by no layer; its weights are not used.", path, g)
    architectures = hf_config.get("architectures") or [None]
    id2label = _id2label(hf_config)
    info = {"config": config, "architecture": architectures[0], "id2label": id2label,
            "num_labels": len(id2label) if id2label else int(hf_config.get("num_labels", 2)),
            "classifier_dropout_prob": float(_HF_DEFAULTS["classifier_dropout_prob"]
                                             if hf_config.get("classifier_dropout_prob") is None
                                             else hf_config["classifier_dropout_prob"]),
            "has_pooler": _POOLER[0] in arrays, "tokenizer": _tokenizer_options(path), "hf_config": hf_config}
    return arrays, info


def _check_tied(arrays: dict[str, np.ndarray], tied: Mapping[str, np.ndarray], path: str) -> None:
    """The decoder copies must equal what they are tied to (albert_tf ties them as the original does)."""
    weight, bias = tied.get(_TIED_DECODER_WEIGHT), tied.get(_TIED_DECODER_BIAS)
    embeddings = arrays.get("bert/embeddings/word_embeddings")
    if weight is not None and (embeddings is None or not np.array_equal(weight, embeddings)):
        raise ValueError(f"{path}: {_TIED_DECODER_WEIGHT} differs from the word embeddings (an untied output "
                         "layer), which the ALBERT masked-LM head cannot represent.")
    if bias is not None:
        output_bias = arrays.setdefault("cls/predictions/output_bias", bias)
        if not np.array_equal(bias, output_bias):
            raise ValueError(f"{path}: {_TIED_DECODER_BIAS} differs from predictions.bias; they are one tied "
                             "parameter in an ALBERT model.")


def _drop_identity_projection(arrays: dict[str, np.ndarray], config: AlbertConfig, path: str) -> None:
    """With E == H the original has no projection; Hugging Face's must then be the identity."""
    if config.embedding_size != config.hidden_size:
        return
    kernel = arrays.pop(f"{_PROJECTION}/kernel", None)
    bias = arrays.pop(f"{_PROJECTION}/bias", None)
    identity = np.eye(config.hidden_size, dtype=np.float32)
    if (kernel is not None and not np.array_equal(kernel, identity)) or (bias is not None and np.any(bias)):
        raise ValueError(
            f"{path}: embedding_size == hidden_size ({config.hidden_size}) and the model has a learned "
            "embedding_hidden_mapping_in; the original ALBERT (and albert_tf) has no projection when E == H, "
            "so this model cannot be represented.")


# ------------------------------------------------------------------------------------------- loading
def _activation_function(name: Optional[str]) -> str:
    """One name per function ("gelu" and "gelu_new" are both the tanh GELU here, "swish" is "silu")."""
    key = (name or "").lower()
    return _ACTIVATION_FROM_HF.get(_ACTIVATION_TO_HF.get(key, key), key)


def _check_model_config(model, config: AlbertConfig, source: str) -> None:
    """The model's config must describe the network of the file (hidden_act compared as a function)."""
    mine = getattr(model, "config", None)
    if mine is None:
        return
    fields = [f for f in _SHARED_FIELDS if not f.endswith("dropout_prob") and f != "initializer_range"]
    diffs = [f"{f}: file {getattr(config, f)!r} vs model {getattr(mine, f)!r}"
             for f in fields if getattr(config, f) != getattr(mine, f)]
    if _activation_function(config.hidden_act) != _activation_function(mine.hidden_act):
        diffs.append(f"hidden_act: file {config.hidden_act!r} vs model {mine.hidden_act!r}")
    if diffs:
        raise ValueError(f"The model's config does not match {source} ({'; '.join(diffs)}). Build the model from "
                         "that directory's config: albert_tf.checkpoints.transformers.transformers_albert_config(dir).")


def load_transformers_arrays(model, arrays: Mapping[str, np.ndarray], source: str, init_from_group0: bool = False,
                             **load_options: Any) -> LoadReport:
    """Loads official-name arrays of a Hugging Face file into `model`, strictly, with the head policy
    of `initialize_from_checkpoint` applied per head:

    - a head whose weights are all in the file is loaded; one with none of them keeps its fresh
      initialisation (logged), e.g. the SOP head from a masked-LM file, or a classifier head from a
      pretrained model; one with only some of them is an error;
    - the pooler keeps its initialisation when the file has none (masked-LM and QA models);
    - every other weight must be in the file, and every weight of the file must be used (heads of
      other tasks excepted), as `load_variables` checks.

    `load_options` go to `load_variables` (e.g. `dry_run`).
    """
    targets = dict(model.tf1_variables())
    fresh: list[str] = []
    for head in getattr(model, "heads", []):
        names = sorted(head.tf1_variables())
        present = [n for n in names if n in arrays]
        if present and len(present) != len(names):
            raise CheckpointMismatchError(
                f"{source} has only part of the {type(model).__name__} head {head.name} ({_summarize(present, 2)} "
                f"but not {_summarize(sorted(set(names) - set(present)), 2)}).")
        if not present:
            fresh += names
    if not any(n in arrays for n in _POOLER):
        fresh += [n for n in _POOLER if n in targets]
    for name in fresh:
        del targets[name]
    if fresh and not load_options.get("dry_run"):
        logging.warning("%s has no weights for %s of %s; they keep their initialisation.", source,
                        _summarize(fresh, 3), type(model).__name__)
    return load_variables(model, {n: a.shape for n, a in arrays.items()}, arrays.__getitem__, source,
                          init_from_group0=init_from_group0, targets=targets, **load_options)


def initialize_from_transformers(model, path: str, init_from_group0: bool = False,
                                 **load_options: Any) -> LoadReport:
    """`--init_checkpoint` from a Hugging Face directory: checks the model's config against the file's,
    then loads with `load_transformers_arrays` (encoder strictly, each head when the file has it)."""
    path = os.fspath(path)
    arrays, info = transformers_tf1_arrays(path)
    _check_model_config(model, info["config"], os.path.join(path, CONFIG_FILE))
    return load_transformers_arrays(model, arrays, path, init_from_group0, **load_options)


def _build_model(architecture: str, info: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                 num_choices: int) -> keras.Model:
    config = info["config"]
    cls = ARCHITECTURES[architecture]
    if cls is AlbertModel or cls is AlbertPretrainer or cls is AlbertQuestionAnswering:
        return cls(config)
    dropout = info["classifier_dropout_prob"]
    if cls is AlbertMultipleChoice:
        return AlbertMultipleChoice(config, num_choices=num_choices, dropout_rate=dropout)
    weights = arrays.get("output_weights")
    num_labels = int(weights.shape[0]) if weights is not None else info["num_labels"]
    id2label = info["id2label"] if info["id2label"] and len(info["id2label"]) == num_labels else None
    return AlbertClassifier(config, num_labels, dropout_rate=dropout, id2label=id2label)


def from_transformers(path: str, architecture: Optional[str] = None, num_choices: int = 4) -> keras.Model:
    """The albert_tf model of a Hugging Face ALBERT directory, with its weights and tokenizer.

    Args:
      path: a directory with `config.json` and `model.safetensors` (or shards, or `pytorch_model.bin`
        with torch installed), and optionally `spiece.model` / `vocab.txt` + `tokenizer_config.json`.
      architecture: the Hugging Face class to read it as (default: the first of `config.architectures`,
        else "AlbertModel"): "AlbertModel" -> `AlbertModel` (any file: its heads are ignored);
        "AlbertForPreTraining" / "AlbertForMaskedLM" -> `AlbertPretrainer` (from a masked-LM file the SOP
        head and the pooler keep their initialisation); "AlbertForSequenceClassification" ->
        `AlbertClassifier` (num_labels from the file, label names as `model.id2label`);
        "AlbertForQuestionAnswering" -> `AlbertQuestionAnswering` (no pooler in the file: `pooled_output`
        is meaningless, `start_logits` / `end_logits` are exact); "AlbertForMultipleChoice" ->
        `AlbertMultipleChoice`.
      num_choices: choices per example of a multiple-choice model (the [B,C,S] input's C).

    Returns:
      The model with `model.tokenizer` (a `FullTokenizer`, or None when the directory has no tokenizer
      files). The head dropout is the file's `classifier_dropout_prob`.

    Raises:
      ValueError: an unsupported architecture or config, or weights that do not fit it.
    """
    from albert_tf.tokenization import FullTokenizer

    path = os.fspath(path)
    arrays, info = transformers_tf1_arrays(path)
    architecture = architecture or info["architecture"] or "AlbertModel"
    if architecture not in ARCHITECTURES:
        raise ValueError(f"{path}: architecture {architecture!r} is not supported; supported: "
                         f"{', '.join(ARCHITECTURES)} (architecture='AlbertModel' loads the encoder of any "
                         "ALBERT file).")
    model = _build_model(architecture, info, arrays, num_choices)
    load_transformers_arrays(model, arrays, path)
    if info["tokenizer"] is None:
        logging.warning("%s has no %s or %s: the model has no tokenizer (model.tokenizer is None).", path,
                        SPM_FILE, WORDPIECE_FILE)
        model.tokenizer = None
    else:
        model.tokenizer = FullTokenizer.from_transformers(path)
    return model


# ------------------------------------------------------------------------------------------- writing
def _architecture_for(model, architecture: Optional[str]) -> str:
    default = next((name for cls, name in _DEFAULT_ARCHITECTURE if isinstance(model, cls)), None)
    if default is None:
        raise ValueError(f"save_transformers cannot write a {type(model).__name__}; it writes AlbertModel, "
                         "AlbertPretrainer, AlbertClassifier, AlbertQuestionAnswering and AlbertMultipleChoice.")
    allowed = {default} | ({"AlbertForMaskedLM"} if default == "AlbertForPreTraining" else set())
    if architecture is None:
        return default
    if architecture not in allowed:
        raise ValueError(f"A {type(model).__name__} is written as {' or '.join(sorted(allowed))}, not "
                         f"{architecture!r}.")
    return architecture


def check_transformers_compatible(config: AlbertConfig) -> None:
    """Raises ValueError when Hugging Face's AlbertModel would not compute this config as albert_tf does."""
    what = "This model cannot be written for Hugging Face transformers"
    check_group_rule(config, what)
    L, G, K = config.num_hidden_layers, config.num_hidden_groups, config.inner_group_num
    if K > int(L / G):
        raise ValueError(f"{what}: inner_group_num={K} exceeds int(num_hidden_layers / num_hidden_groups) = "
                         f"{int(L / G)}; Hugging Face's AlbertLayerGroup indexes a head mask of that many entries "
                         "per inner layer and fails.")
    unused = sorted(set(range(G)) - set(config.used_groups()))
    if unused:
        raise ValueError(f"{what}: groups {unused} are run by no layer (Hugging Face would need weights for them).")
    act = config.hidden_act if config.hidden_act is not None else ""
    if act.lower() not in _ACTIVATION_TO_HF:
        raise ValueError(f"{what}: hidden_act {config.hidden_act!r} has no Hugging Face equivalent.")


def _hf_config(model, config: AlbertConfig, architecture: str) -> dict[str, Any]:
    out: dict[str, Any] = {"architectures": [architecture], "model_type": "albert"}
    out.update({f: getattr(config, f) for f in _SHARED_FIELDS})
    out["hidden_act"] = _ACTIVATION_TO_HF[(config.hidden_act or "").lower()]
    out.update(layer_norm_eps=LAYER_NORM_EPSILON, position_embedding_type="absolute",
               classifier_dropout_prob=float(getattr(model, "dropout_rate", _HF_DEFAULTS["classifier_dropout_prob"])),
               pad_token_id=0, bos_token_id=2, eos_token_id=3)
    labels = None
    if isinstance(model, AlbertClassifier):
        labels = model.id2label or {i: f"LABEL_{i}" for i in range(model.num_labels)}
        if len(labels) != model.num_labels:
            raise ValueError(f"model.id2label has {len(labels)} names for {model.num_labels} labels.")
    elif architecture in ("AlbertForPreTraining", "AlbertForQuestionAnswering"):
        labels = {0: "LABEL_0", 1: "LABEL_1"}  # the SOP / span head has 2 outputs (HF's num_labels)
    if labels is not None:
        out["id2label"] = {str(i): str(labels[i]) for i in sorted(labels)}
        out["label2id"] = {str(labels[i]): i for i in sorted(labels)}
    return out


def _write(path: str, data: bytes | str) -> None:
    with tf.io.gfile.GFile(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def write_vocabulary(directory: str, tokenizer) -> str:
    """Writes a `FullTokenizer`'s SentencePiece model as `spiece.model`, or its WordPiece vocabulary as
    `vocab.txt` (one piece per line in id order), into `directory`; returns the file name."""
    if tokenizer.sp_model is not None:
        _write(os.path.join(directory, SPM_FILE), tokenizer.sp_model.serialized_model_proto())
        return SPM_FILE
    _write(os.path.join(directory, WORDPIECE_FILE),
           "".join(tokenizer.inv_vocab[i] + "\n" for i in range(len(tokenizer.inv_vocab))))
    return WORDPIECE_FILE


def _write_tokenizer(directory: str, tokenizer, config: AlbertConfig, do_lower_case: Optional[bool]) -> list[str]:
    """Writes the vocabulary and `tokenizer_config.json`; returns the names written."""
    lower = bool(getattr(tokenizer, "do_lower_case", True) if do_lower_case is None else do_lower_case)
    options: dict[str, Any] = {"do_lower_case": lower, "model_max_length": config.max_position_embeddings}
    if tokenizer.sp_model is not None:
        options.update(tokenizer_class="AlbertTokenizer", remove_space=bool(getattr(tokenizer, "remove_space", True)),
                       keep_accents=bool(getattr(tokenizer, "keep_accents", False)), bos_token="[CLS]",
                       eos_token="[SEP]", unk_token="<unk>", sep_token="[SEP]", pad_token="<pad>", cls_token="[CLS]",
                       mask_token="[MASK]")
    else:
        options.update(tokenizer_class="BertTokenizer", unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                       cls_token="[CLS]", mask_token="[MASK]")
    vocabulary = write_vocabulary(directory, tokenizer)
    _write(os.path.join(directory, TOKENIZER_CONFIG_FILE), json.dumps(options, indent=2, sort_keys=True) + "\n")
    return [vocabulary, TOKENIZER_CONFIG_FILE]


def save_transformers(model, directory: str, tokenizer=None, spm_model_file: Optional[str] = None,
                      architecture: Optional[str] = None, do_lower_case: Optional[bool] = None) -> str:
    """Writes `model` as a Hugging Face ALBERT directory that transformers' `from_pretrained` loads in the
    matching class with the same outputs.

    Files: `config.json` (`model_type` "albert", `architectures`, `hidden_act` in Hugging Face's naming,
    `classifier_dropout_prob` = the head dropout, `id2label` with string keys for classifiers),
    `model.safetensors` (float32, written with the `safetensors` package; tied decoder weights left out,
    as transformers does), and with a tokenizer `spiece.model` (or `vocab.txt`) + `tokenizer_config.json`.

    Args:
      model: an `AlbertModel` -> "AlbertModel"; `AlbertPretrainer` -> "AlbertForPreTraining" (or
        "AlbertForMaskedLM": no pooler, no SOP head); `AlbertClassifier` ->
        "AlbertForSequenceClassification"; `AlbertQuestionAnswering` -> "AlbertForQuestionAnswering" (no
        pooler, as transformers has none there); `AlbertMultipleChoice` -> "AlbertForMultipleChoice". Its
        encoder must be an `AlbertModel`.
      directory: created if needed; existing files of these names are replaced.
      tokenizer: a `FullTokenizer` (default: `model.tokenizer` when the model has one).
      spm_model_file: a SentencePiece model to write instead of `tokenizer`'s.
      architecture: override of the architecture written (see `model`).
      do_lower_case: written to `tokenizer_config.json` (default: the tokenizer's, else True).

    Returns:
      `directory`.

    Raises:
      ValueError: a model or config Hugging Face would compute differently (`check_transformers_compatible`),
        an architecture that does not fit the model, or a tokenizer with more pieces than `vocab_size`;
        raised before anything is written.
    """
    from albert_tf.tokenization import FullTokenizer

    directory = os.fspath(directory)
    architecture = _architecture_for(model, architecture)
    encoder = model if isinstance(model, AlbertModel) else model.encoder
    if not isinstance(encoder, AlbertModel):
        raise ValueError(f"save_transformers needs an AlbertModel encoder; this model's is a "
                         f"{type(encoder).__name__} (e.g. a TF2 hub SavedModel), which has no ALBERT weight names.")
    config = encoder.config
    check_transformers_compatible(config)
    if spm_model_file:
        tokenizer = FullTokenizer(spm_model_file=spm_model_file)
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if tokenizer is not None and len(tokenizer.vocab) > config.vocab_size:
        raise ValueError(f"The tokenizer has {len(tokenizer.vocab)} pieces but the model's vocab_size is "
                         f"{config.vocab_size}: they belong to different models.")

    variables = model.tf1_variables()
    prefix = "" if architecture == "AlbertModel" else "albert."
    table = name_table(config, prefix, _ARCHITECTURE_HEADS[architecture],
                       pooler=architecture not in _WITHOUT_POOLER, groups=config.used_groups())
    tensors: dict[str, np.ndarray] = {}
    for hf, tf1, transpose in table:
        if tf1.startswith(_PROJECTION) and config.embedding_size == config.hidden_size:
            tensors[hf] = (np.eye(config.hidden_size, dtype=np.float32) if tf1.endswith("/kernel")
                           else np.zeros([config.hidden_size], np.float32))
            continue
        value = variables[tf1].numpy().astype(np.float32)
        tensors[hf] = np.ascontiguousarray(value.T if transpose else value)

    import safetensors.numpy  # local: only writing needs the package

    tf.io.gfile.makedirs(directory)
    _write(os.path.join(directory, SAFETENSORS_FILE), safetensors.numpy.save(tensors, metadata={"format": "pt"}))
    _write(os.path.join(directory, CONFIG_FILE),
           json.dumps(_hf_config(model, config, architecture), indent=2, sort_keys=True) + "\n")
    written = [CONFIG_FILE, SAFETENSORS_FILE]
    if tokenizer is not None:
        written += _write_tokenizer(directory, tokenizer, config, do_lower_case)
    else:
        logging.warning("No tokenizer given (tokenizer=, spm_model_file= or model.tokenizer): %s has no %s.",
                        directory, SPM_FILE)
    logging.info("Wrote %s (%s, %d tensors): %s", directory, architecture, len(tensors), ", ".join(written))
    return directory
