"""Hugging Face `transformers` ALBERT models: built from a folder, and written back (no PyTorch).

The folder format (file names, the name map to the official TF1 names, config conversion, the facts of
the layout that differ from the original) is read by `albert_tf.checkpoints.hf_format`; this module
builds albert_tf models from it (`from_transformers`, `initialize_from_transformers`) and writes any
albert_tf model back in that layout (`save_transformers`), loadable by `transformers.from_pretrained`.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from albert_tf.checkpoints import hf_format as fmt
from albert_tf.checkpoints import source as model_source
from albert_tf.checkpoints.hf_format import (albert_config_from_transformers, is_transformers_dir,  # noqa: F401
                                             transformers_albert_config)
from albert_tf.checkpoints.tf1 import CheckpointMismatchError, LoadReport, load_variables, summarize
from albert_tf.configs import AlbertConfig
from albert_tf.modeling.encoder import AlbertModel
from albert_tf.modeling.models import (AlbertClassifier, AlbertMultipleChoice, AlbertPretrainer,
                                       AlbertQuestionAnswering)
from albert_tf.tokenization import FullTokenizer

# Hugging Face architecture -> the albert_tf model class that holds the same weights.
ARCHITECTURES: dict[str, type] = {
    "AlbertModel": AlbertModel,
    "AlbertForPreTraining": AlbertPretrainer,
    "AlbertForMaskedLM": AlbertPretrainer,
    "AlbertForSequenceClassification": AlbertClassifier,
    "AlbertForQuestionAnswering": AlbertQuestionAnswering,
    "AlbertForMultipleChoice": AlbertMultipleChoice,
}
# Default architecture written for each albert_tf model class (most specific class first).
_DEFAULT_ARCHITECTURE: tuple[tuple[type, str], ...] = (
    (AlbertPretrainer, "AlbertForPreTraining"), (AlbertClassifier, "AlbertForSequenceClassification"),
    (AlbertQuestionAnswering, "AlbertForQuestionAnswering"), (AlbertMultipleChoice, "AlbertForMultipleChoice"),
    (AlbertModel, "AlbertModel"),
)



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
                f"{source} has only part of the {type(model).__name__} head {head.name} ({summarize(present, 2)} "
                f"but not {summarize(sorted(set(names) - set(present)), 2)}).")
        if not present:
            fresh += names
    if not any(n in arrays for n in fmt.POOLER):
        fresh += [n for n in fmt.POOLER if n in targets]
    for name in fresh:
        del targets[name]
    if fresh and not load_options.get("dry_run"):
        logging.warning("%s has no weights for %s of %s; they keep their initialisation.", source,
                        summarize(fresh, 3), type(model).__name__)
    return load_variables(model, {n: a.shape for n, a in arrays.items()}, arrays.__getitem__, source,
                          init_from_group0=init_from_group0, targets=targets, **load_options)


def initialize_from_transformers(model, path: str | os.PathLike | model_source.ModelSource,
                                 init_from_group0: bool = False, **load_options: Any) -> LoadReport:
    """`--init_checkpoint` from a Hugging Face directory: checks the model's config against the file's,
    then loads with `load_transformers_arrays` (encoder strictly, each head when the file has it)."""
    src = model_source.as_source(path)
    src.check_model_config(model)
    return load_transformers_arrays(model, src.arrays(), src.location, init_from_group0, **load_options)


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
    path = os.fspath(path)
    arrays, info = fmt.transformers_tf1_arrays(path)
    architecture = architecture or info["architecture"] or "AlbertModel"
    if architecture not in ARCHITECTURES:
        raise ValueError(f"{path}: architecture {architecture!r} is not supported; supported: "
                         f"{', '.join(ARCHITECTURES)} (architecture='AlbertModel' loads the encoder of any "
                         "ALBERT file).")
    model = _build_model(architecture, info, arrays, num_choices)
    load_transformers_arrays(model, arrays, path)
    if info["tokenizer"] is None:
        logging.warning("%s has no %s or %s: the model has no tokenizer (model.tokenizer is None).", path,
                        fmt.SPM_FILE, fmt.WORDPIECE_FILE)
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
    fmt.check_group_rule(config, what)
    L, G, K = config.num_hidden_layers, config.num_hidden_groups, config.inner_group_num
    if K > int(L / G):
        raise ValueError(f"{what}: inner_group_num={K} exceeds int(num_hidden_layers / num_hidden_groups) = "
                         f"{int(L / G)}; Hugging Face's AlbertLayerGroup indexes a head mask of that many entries "
                         "per inner layer and fails.")
    unused = sorted(set(range(G)) - set(config.used_groups()))
    if unused:
        raise ValueError(f"{what}: groups {unused} are run by no layer (Hugging Face would need weights for them).")
    act = config.hidden_act if config.hidden_act is not None else ""
    if act.lower() not in fmt.ACTIVATION_TO_HF:
        raise ValueError(f"{what}: hidden_act {config.hidden_act!r} has no Hugging Face equivalent.")


def _hf_config(model, config: AlbertConfig, architecture: str) -> dict[str, Any]:
    out: dict[str, Any] = {"architectures": [architecture], "model_type": "albert"}
    out.update({f: getattr(config, f) for f in fmt.SHARED_FIELDS})
    out["hidden_act"] = fmt.ACTIVATION_TO_HF[(config.hidden_act or "").lower()]
    out.update(layer_norm_eps=fmt.LAYER_NORM_EPSILON, position_embedding_type="absolute",
               classifier_dropout_prob=float(getattr(model, "dropout_rate", fmt.HF_DEFAULTS["classifier_dropout_prob"])),
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
        _write(os.path.join(directory, fmt.SPM_FILE), tokenizer.sp_model.serialized_model_proto())
        return fmt.SPM_FILE
    _write(os.path.join(directory, fmt.WORDPIECE_FILE),
           "".join(tokenizer.inv_vocab[i] + "\n" for i in range(len(tokenizer.inv_vocab))))
    return fmt.WORDPIECE_FILE


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
    _write(os.path.join(directory, fmt.TOKENIZER_CONFIG_FILE), json.dumps(options, indent=2, sort_keys=True) + "\n")
    return [vocabulary, fmt.TOKENIZER_CONFIG_FILE]


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
    table = fmt.name_table(config, prefix, fmt.ARCHITECTURE_HEADS[architecture],
                       pooler=architecture not in fmt.WITHOUT_POOLER, groups=config.used_groups())
    tensors: dict[str, np.ndarray] = {}
    for hf, tf1, transpose in table:
        if tf1.startswith(fmt.PROJECTION) and config.embedding_size == config.hidden_size:
            tensors[hf] = (np.eye(config.hidden_size, dtype=np.float32) if tf1.endswith("/kernel")
                           else np.zeros([config.hidden_size], np.float32))
            continue
        value = variables[tf1].numpy().astype(np.float32)
        tensors[hf] = np.ascontiguousarray(value.T if transpose else value)

    import safetensors.numpy  # local: only writing needs the package

    tf.io.gfile.makedirs(directory)
    _write(os.path.join(directory, fmt.SAFETENSORS_FILE), safetensors.numpy.save(tensors, metadata={"format": "pt"}))
    _write(os.path.join(directory, fmt.CONFIG_FILE),
           json.dumps(_hf_config(model, config, architecture), indent=2, sort_keys=True) + "\n")
    written = [fmt.CONFIG_FILE, fmt.SAFETENSORS_FILE]
    if tokenizer is not None:
        written += _write_tokenizer(directory, tokenizer, config, do_lower_case)
    else:
        logging.warning("No tokenizer given (tokenizer=, spm_model_file= or model.tokenizer): %s has no %s.",
                        directory, fmt.SPM_FILE)
    logging.info("Wrote %s (%s, %d tensors): %s", directory, architecture, len(tensors), ", ".join(written))
    return directory

