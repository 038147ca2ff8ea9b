"""The Hugging Face ALBERT directory format, read without PyTorch (no model is built here).

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
from absl import logging

from albert_tf.checkpoints.tf1 import CheckpointMismatchError, summarize
from albert_tf.configs import LAYER_NORM_EPSILON, AlbertConfig

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PYTORCH_FILE = "pytorch_model.bin"
SPM_FILE = "spiece.model"
WORDPIECE_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
_WEIGHT_FILES = (SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, PYTORCH_FILE)

# The heads each architecture has, and whether its encoder has a pooler (HF `add_pooling_layer`).
ARCHITECTURE_HEADS: dict[str, tuple[str, ...]] = {
    "AlbertModel": (), "AlbertForPreTraining": ("predictions", "sop"), "AlbertForMaskedLM": ("predictions",),
    "AlbertForSequenceClassification": ("classifier",), "AlbertForMultipleChoice": ("classifier",),
    "AlbertForQuestionAnswering": ("qa",),
}
WITHOUT_POOLER = ("AlbertForMaskedLM", "AlbertForQuestionAnswering")
# Hugging Face's AlbertConfig defaults: its config.json files omit every key equal to them.
HF_DEFAULTS: dict[str, Any] = dict(
    vocab_size=30000, embedding_size=128, hidden_size=4096, num_hidden_layers=12, num_hidden_groups=1,
    num_attention_heads=64, intermediate_size=16384, inner_group_num=1, hidden_act="gelu_new",
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=512, type_vocab_size=2,
    initializer_range=0.02, layer_norm_eps=1e-12, classifier_dropout_prob=0.1, position_embedding_type="absolute")
# The AlbertConfig fields both sides share under the same name and meaning.
SHARED_FIELDS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
                  "num_attention_heads", "intermediate_size", "inner_group_num", "hidden_dropout_prob",
                  "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size", "initializer_range")
# Activation names: Hugging Face (ACT2FN) -> albert_tf, and back. The three tanh forms are one function.
_ACTIVATION_FROM_HF = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "gelu_fast": "gelu", "gelu": "gelu_exact",
                       "relu": "relu", "tanh": "tanh", "silu": "silu", "swish": "silu", "linear": "linear"}
ACTIVATION_TO_HF = {"gelu": "gelu_new", "gelu_new": "gelu_new", "gelu_exact": "gelu", "relu": "relu",
                     "tanh": "tanh", "silu": "silu", "swish": "silu", "linear": "linear", "": "linear"}
# Non-trainable buffers some Hugging Face versions save; never weights.
_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
_TIED_DECODER_WEIGHT = "predictions.decoder.weight"
_TIED_DECODER_BIAS = "predictions.decoder.bias"
POOLER = ("bert/pooler/dense/kernel", "bert/pooler/dense/bias")
PROJECTION = "bert/encoder/embedding_hidden_mapping_in"

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
    table += _dense(f"{prefix}encoder.embedding_hidden_mapping_in", PROJECTION)
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
    values = {**HF_DEFAULTS, **{k: hf_config[k] for k in HF_DEFAULTS if hf_config.get(k) is not None}}
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
    config = AlbertConfig(**{k: values[k] for k in SHARED_FIELDS}, hidden_act=_ACTIVATION_FROM_HF[act])
    check_group_rule(config, source)
    return config


def read_json(path: str) -> dict:
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
        model_type = read_json(config).get("model_type")
    except ValueError:
        return False
    return model_type == "albert" and any(tf.io.gfile.exists(os.path.join(path, n)) for n in _WEIGHT_FILES)


def transformers_albert_config(path: str) -> AlbertConfig:
    """The `AlbertConfig` of the Hugging Face directory `path` (see `albert_config_from_transformers`)."""
    config_path = os.path.join(os.fspath(path), CONFIG_FILE)
    return albert_config_from_transformers(read_json(config_path), config_path)


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
        for shard in sorted(set(read_json(index).get("weight_map", {}).values())):
            weights.update(_load_safetensors(os.path.join(path, shard)))
        return weights
    if tf.io.gfile.exists(pickle):
        return _load_pytorch(pickle)
    raise FileNotFoundError(f"No weights in {path}: expected {SAFETENSORS_FILE} (or {SAFETENSORS_INDEX_FILE} with "
                            f"its shards, or {PYTORCH_FILE}) next to {CONFIG_FILE}.")


def _parameter_names(path: str) -> list[str]:
    """The Hugging Face parameter names of the folder's weights, read from the file headers (safetensors,
    the shard index) without reading any tensor; a PyTorch pickle is read whole."""
    single, index, pickle = (os.path.join(path, n) for n in _WEIGHT_FILES)
    if tf.io.gfile.exists(index) and not tf.io.gfile.exists(single):
        return list(read_json(index).get("weight_map", {}))
    if tf.io.gfile.exists(single) and os.path.exists(single):  # a local file: header only
        import safetensors  # local: only this format needs the package

        try:
            with safetensors.safe_open(single, framework="numpy") as f:
                return list(f.keys())
        except Exception as e:  # safetensors raises its own error types for damaged files
            raise ValueError(f"{single} is not a readable safetensors file ({e}).") from None
    return list(read_transformers_weights(path))


def transformers_tf1_names(path: str) -> set[str]:
    """The official names a Hugging Face folder's parameters map to, from the file headers only (for
    "does it hold this head?"; `transformers_tf1_arrays` reads and checks the weights themselves)."""
    path = os.fspath(path)
    config_path = os.path.join(path, CONFIG_FILE)
    config = albert_config_from_transformers(read_json(config_path), config_path)
    names = _parameter_names(path)
    prefix = "albert." if any(n.startswith("albert.") for n in names) else ""
    table = {hf: tf1 for hf, tf1, _ in name_table(config, prefix, _HEAD_TABLES, pooler=True)}
    return {table[n] for n in names if n in table}


def tokenizer_options(path: str) -> Optional[dict[str, Any]]:
    """`do_lower_case`, `remove_space`, `keep_accents` of `tokenizer_config.json` (HF's AlbertTokenizer
    defaults True, True, False), or None without a tokenizer file."""
    if not any(tf.io.gfile.exists(os.path.join(path, n)) for n in (SPM_FILE, WORDPIECE_FILE)):
        return None
    config_path = os.path.join(path, TOKENIZER_CONFIG_FILE)
    options = read_json(config_path) if tf.io.gfile.exists(config_path) else {}
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
      `tokenizer` (the options of `tokenizer_options`, or None without tokenizer files), `hf_config`.

    Raises:
      ValueError: an unsupported config (see `albert_config_from_transformers`), names that are not an
        ALBERT model's (the message lists them), untied decoder weights, a learned E == H projection.
      FileNotFoundError / ImportError: see `read_transformers_weights`.
    """
    path = os.fspath(path)
    config_path = os.path.join(path, CONFIG_FILE)
    hf_config = read_json(config_path)
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
            f"({summarize(sorted(unknown))}); supported architectures: {', '.join(ARCHITECTURE_HEADS)}.")
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
            "classifier_dropout_prob": float(HF_DEFAULTS["classifier_dropout_prob"]
                                             if hf_config.get("classifier_dropout_prob") is None
                                             else hf_config["classifier_dropout_prob"]),
            "has_pooler": POOLER[0] in arrays, "tokenizer": tokenizer_options(path), "hf_config": hf_config}
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
    kernel = arrays.pop(f"{PROJECTION}/kernel", None)
    bias = arrays.pop(f"{PROJECTION}/bias", None)
    identity = np.eye(config.hidden_size, dtype=np.float32)
    if (kernel is not None and not np.array_equal(kernel, identity)) or (bias is not None and np.any(bias)):
        raise ValueError(
            f"{path}: embedding_size == hidden_size ({config.hidden_size}) and the model has a learned "
            "embedding_hidden_mapping_in; the original ALBERT (and albert_tf) has no projection when E == H, "
            "so this model cannot be represented.")


# ------------------------------------------------------------------------------------------- loading
def activation_function(name: Optional[str]) -> str:
    """One name per function ("gelu" and "gelu_new" are both the tanh GELU here, "swish" is "silu")."""
    key = (name or "").lower()
    return _ACTIVATION_FROM_HF.get(ACTIVATION_TO_HF.get(key, key), key)


