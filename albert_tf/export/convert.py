"""Conversion between the model formats albert-tf reads and writes (`albert-convert-checkpoint`).

Input formats are resolved by `albert_tf.checkpoints.source` (TF1 checkpoint, Hugging Face folder, TF-Hub
handle, TF2 training state); the model kind is read from the input (a Hugging Face config's architecture,
a TF1 checkpoint's head variables) unless given. Output: the TF1 layout (with `albert_config.json` and the
tokenizer beside it), a Hugging Face folder, or a TF-Hub encoder SavedModel.
"""
from __future__ import annotations

import os
from typing import Optional

import tensorflow as tf
from absl import logging

from albert_tf.checkpoints import hub, loading, source as model_source, tf1
from albert_tf.checkpoints import transformers as hf
from albert_tf.configs import AlbertConfig
from albert_tf.export.tfhub import export_encoder
from albert_tf.modeling import (AlbertClassifier, AlbertModel, AlbertMultipleChoice, AlbertPretrainer,
                                AlbertQuestionAnswering)
from albert_tf.tokenization import FullTokenizer

FORMATS = ("tf1", "transformers", "tf2_state", "hub")  # also restated TF-free by the script's flags
MODEL_KINDS = ("auto", "encoder", "pretrainer", "classifier", "question_answering", "multiple_choice")
TF1_OUTPUT_PREFIX = "model.ckpt-best"


def detect_format(path: str) -> str:
    """The format of `path` (see `albert_tf.checkpoints.source.detect`)."""
    found = model_source.detect(path)
    if found is None:
        raise ValueError(f"Cannot tell the format of --input={path}: it is no Hugging Face directory (config.json + "
                         "model.safetensors), TF-Hub SavedModel, TF1 checkpoint or TF2 training state. Check the path "
                         "or pass --input_format.")
    return "hub" if found.is_hub else found.kind


def _config(config_file: Optional[str], near: str) -> AlbertConfig:
    """--albert_config_file, else albert_config.json in the input directory (or beside the prefix)."""
    if config_file:
        return AlbertConfig.from_json_file(config_file)
    directory = near if tf.io.gfile.isdir(near) else os.path.dirname(near)
    candidate = os.path.join(directory, "albert_config.json")
    if tf.io.gfile.exists(candidate):
        return AlbertConfig.from_json_file(candidate)
    raise ValueError(f"No albert_config.json beside --input={near}: pass --albert_config_file.")


def _tf1_model_kind(shapes: dict) -> str:
    if "cls/squad/output_weights" in shapes:
        return "question_answering"
    if "output_weights" in shapes:
        if shapes["output_weights"][0] == 1:
            logging.warning("A [1,H] output_weights head reads as a regression classifier; pass "
                            "--model_kind=multiple_choice for a RACE model.")
        return "classifier"
    if "cls/predictions/output_bias" in shapes:
        return "pretrainer"
    heads = sorted(n for n in shapes if n.split("/")[0] in ("start_logits", "end_logits", "answer_class"))
    if heads:
        logging.warning("The input's head (%s, ...) has no counterpart here; only the encoder is converted.", heads[0])
    return "encoder"


def build_model(kind: str, config: AlbertConfig, num_labels: Optional[int], num_choices: int):
    """A new albert-tf model of `kind` (see MODEL_KINDS)."""
    if kind == "encoder":
        return AlbertModel(config)
    if kind == "pretrainer":
        return AlbertPretrainer(config)
    if kind == "question_answering":
        return AlbertQuestionAnswering(config)
    if kind == "multiple_choice":
        return AlbertMultipleChoice(config, num_choices=num_choices)
    if not num_labels:
        raise ValueError("--num_labels is required for a classifier read from this input.")
    return AlbertClassifier(config, num_labels)


def _release_tokenizer(path: str) -> Optional[FullTokenizer]:
    """The tokenizer beside a TF1 checkpoint (a *.model or vocab.txt in its directory), if any."""
    directory = path if tf.io.gfile.isdir(path) else os.path.dirname(path) or "."
    try:
        return FullTokenizer.from_release(directory)
    except (FileNotFoundError, ValueError):
        return None


def read_model(fmt: str, path: str, config_file: Optional[str] = None, model_kind: str = "auto",
               num_labels: Optional[int] = None, num_choices: int = 4):
    """Reads `path` in format `fmt` into an albert-tf model. Returns (model, tokenizer or None)."""
    if fmt == "transformers":
        architecture = None
        if model_kind != "auto":
            architecture = {"encoder": "AlbertModel", "pretrainer": "AlbertForPreTraining",
                            "classifier": "AlbertForSequenceClassification",
                            "question_answering": "AlbertForQuestionAnswering",
                            "multiple_choice": "AlbertForMultipleChoice"}[model_kind]
        model = hf.from_transformers(path, architecture=architecture, num_choices=num_choices)
        return model, model.tokenizer
    if fmt == "tf1":
        src = model_source.resolve_tf1(path)
        shapes = src.variable_shapes()
        kind = _tf1_model_kind(shapes) if model_kind == "auto" else model_kind
        if kind == "classifier" and not num_labels and "output_weights" in shapes:
            num_labels = shapes["output_weights"][0]
        model = build_model(kind, _config(config_file, path), num_labels, num_choices)
        loading.load_original_checkpoint(model, src)
        return model, _release_tokenizer(path)
    if fmt == "tf2_state":
        prefix = model_source.tf2_state_prefix(path)
        if prefix is None:
            raise ValueError(f"No TF2 training state at --input={path} (expected "
                             f"{model_source.TF2_STATE_SUBDIR}/ckpt-<step>).")
        if model_kind == "auto":
            raise ValueError("--model_kind is required for a tf2_state input (e.g. --model_kind=classifier "
                             "--num_labels=2).")
        if not config_file:
            raise ValueError("--albert_config_file is required for a tf2_state input.")
        model = build_model(model_kind, AlbertConfig.from_json_file(config_file), num_labels, num_choices)
        tf.train.Checkpoint(model=model).restore(prefix).expect_partial().assert_existing_objects_matched()
        return model, None
    if fmt == "hub":
        encoder = hub.from_hub(path)
        if not isinstance(encoder, AlbertModel):
            raise ValueError(f"--input={path} is a TF2 SavedModel encoder, whose weights have no ALBERT names; only "
                             "the original's TF1 hub modules convert (fine-tune the SavedModel with "
                             "--albert_hub_module_handle instead).")
        return encoder, encoder.tokenizer
    raise ValueError(f"Unknown --input_format={fmt!r}; choose one of {', '.join(FORMATS)}.")


def _write_tf1(model, tokenizer: Optional[FullTokenizer], output: str) -> str:
    is_prefix = "ckpt" in os.path.basename(output.rstrip("/")) and not tf.io.gfile.isdir(output)
    prefix = output if is_prefix else os.path.join(output, TF1_OUTPUT_PREFIX)
    prefix = tf1.save_original_checkpoint(model, prefix)
    directory = os.path.dirname(prefix) or "."
    config = model.config if isinstance(model, AlbertModel) else model.encoder.config
    config.to_json_file(os.path.join(directory, "albert_config.json"))
    if tokenizer is not None:
        hf.write_vocabulary(directory, tokenizer)
    return prefix


def write_model(model, fmt: str, output: str, tokenizer: Optional[FullTokenizer] = None,
                architecture: Optional[str] = None, do_lower_case: Optional[bool] = None) -> str:
    """Writes `model` (and `tokenizer`) in format `fmt`; returns what was written (a prefix or directory)."""
    if fmt == "tf1":
        return _write_tf1(model, tokenizer, output)
    if fmt == "transformers":
        return hf.save_transformers(model, output, tokenizer=tokenizer, architecture=architecture,
                                    do_lower_case=do_lower_case)
    if fmt == "hub":
        spm_model_file = getattr(tokenizer, "spm_model_file", None) if tokenizer is not None else None
        lower = getattr(tokenizer, "do_lower_case", True) if do_lower_case is None else do_lower_case
        return export_encoder(model, output, spm_model_file=spm_model_file, do_lower_case=lower)
    raise ValueError(f"Unknown --output_format={fmt!r}; choose tf1, transformers or hub.")


def convert(input_path: str, output_format: str, output: str, input_format: Optional[str] = None,
            albert_config_file: Optional[str] = None, spm_model_file: Optional[str] = None,
            model_kind: str = "auto", num_labels: Optional[int] = None, num_choices: int = 4,
            label_names: Optional[list[str]] = None, architecture: Optional[str] = None,
            do_lower_case: Optional[bool] = None) -> str:
    """Reads `input_path` and writes it as `output_format` at `output` (see the module docstring)."""
    fmt = input_format or detect_format(input_path)
    model, tokenizer = read_model(fmt, input_path, albert_config_file, model_kind, num_labels, num_choices)
    if spm_model_file:
        tokenizer = FullTokenizer(spm_model_file=spm_model_file,
                                  do_lower_case=True if do_lower_case is None else do_lower_case)
    if label_names:
        labels = model.num_labels if isinstance(model, AlbertClassifier) else None
        if labels != len(label_names):
            raise ValueError(f"--label_names gives {len(label_names)} names, but the input is a "
                             f"{type(model).__name__}" + (f" with {labels} labels." if labels else "."))
        model.id2label = dict(enumerate(label_names))
    written = write_model(model, output_format, output, tokenizer, architecture, do_lower_case)
    logging.info("Converted %s (%s, %s) to %s (%s).", input_path, fmt, type(model).__name__, written, output_format)
    return written


