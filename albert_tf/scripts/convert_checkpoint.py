"""Convert ALBERT weights between the formats albert-tf reads and writes.

Formats (--input_format / --output_format):
  tf1           the official TF1 layout (release tarballs, model.ckpt-<step>, model.ckpt-best): a checkpoint
                prefix or a directory. Output: <output>/model.ckpt-best (or the prefix given), with
                albert_config.json and the tokenizer (spiece.model or vocab.txt) beside it.
  transformers  a Hugging Face directory (config.json, model.safetensors, spiece.model, tokenizer_config.json).
  tf2_state     albert-tf's TF2 training state (input only): a run's --output_dir, its tf2_checkpoints/
                folder, or a ckpt-<step> prefix; needs --albert_config_file and --model_kind.
  hub           TF-Hub: input a TF1 hub module of the original release (read through the official names);
                output an encoder SavedModel with the TF-Hub interface (albert_tf.export_encoder; with the
                `mlm` sub-object for a pretrainer, and the SentencePiece model when the input has one).
The input format is detected when --input_format is not given (a run's output_dir reads as tf1: its
model.ckpt-best or newest model.ckpt-<step>). The model kind (--model_kind) is read from the input too:
the architecture of a Hugging Face config, the head variables of a TF1 checkpoint.

Examples:
  # publish a GLUE fine-tune on the Hugging Face hub
  python convert_checkpoint.py --input=out/mrpc/model.ckpt-best --albert_config_file=albert_base/albert_config.json \
      --spm_model_file=albert_base/30k-clean.model --label_names=not_equivalent,equivalent \
      --output_format=transformers --output=hf_mrpc
  # a Hugging Face fine-tune in the official layout (then export_savedmodel.py for TensorFlow Serving)
  python convert_checkpoint.py --input=hf_mrpc --output_format=tf1 --output=mrpc_tf1
"""
from __future__ import annotations

from albert_tf.core import cli

cli.quiet_tensorflow()  # before TensorFlow is imported: a readable console

import os  # noqa: E402
import sys  # noqa: E402
from typing import Optional  # noqa: E402

import tensorflow as tf  # noqa: E402
from absl import flags, logging  # noqa: E402

from albert_tf import checkpoints  # noqa: E402
from albert_tf.checkpoints import hub, transformers as hf  # noqa: E402
from albert_tf.configs import AlbertConfig  # noqa: E402
from albert_tf.core.trainer import CHECKPOINT_SUBDIR  # noqa: E402
from albert_tf.export.tfhub import export_encoder  # noqa: E402
from albert_tf.modeling import (AlbertClassifier, AlbertModel, AlbertMultipleChoice, AlbertPretrainer,  # noqa: E402
                                AlbertQuestionAnswering)
from albert_tf.tokenization import FullTokenizer  # noqa: E402

FORMATS = ("tf1", "transformers", "tf2_state", "hub")
MODEL_KINDS = ("auto", "encoder", "pretrainer", "classifier", "question_answering", "multiple_choice")
TF1_OUTPUT_PREFIX = "model.ckpt-best"

flags.DEFINE_enum("input_format", None, FORMATS, "Format of --input (default: detected).")
flags.DEFINE_string("input", None, "The checkpoint, directory or handle to convert.")
flags.DEFINE_enum("output_format", None, ("tf1", "transformers", "hub"), "Format to write.")
flags.DEFINE_string("output", None, "Where to write: a directory (tf1: or a checkpoint prefix).")
flags.DEFINE_string("albert_config_file", None, "The albert_config.json of a tf1 / tf2_state input (default for "
                    "tf1: albert_config.json beside the checkpoint).")
flags.DEFINE_string("spm_model_file", None, "The SentencePiece model to write with the output (default: the "
                    "input's tokenizer, when it has one).")
flags.DEFINE_bool("do_lower_case", True, "Lower-casing written to a Hugging Face tokenizer_config.json (default: "
                  "the input tokenizer's, else True).")
flags.DEFINE_enum("model_kind", "auto", MODEL_KINDS, "The albert-tf model to read the input as (auto: from the "
                  "input; required for tf2_state).")
flags.DEFINE_integer("num_labels", None, "Labels of a classifier (tf1: default from output_weights; tf2_state: "
                     "required).")
flags.DEFINE_integer("num_choices", 4, "Choices per example of a multiple-choice model.")
flags.DEFINE_list("label_names", None, "Label names of a classifier, in label order (Hugging Face id2label).")
flags.DEFINE_string("architecture", None, "Hugging Face architecture to write (e.g. AlbertForMaskedLM for a "
                    "pretrainer; default: the model's own).")
FLAGS = flags.FLAGS


def detect_format(path: str) -> str:
    """The format of `path`: a Hugging Face directory, a hub module / SavedModel, a TF1 checkpoint, or
    a TF2 training state, in that order."""
    if hf.is_transformers_dir(path):
        return "transformers"
    if path.startswith(("http://", "https://")) or (tf.io.gfile.isdir(path) and any(
            tf.io.gfile.exists(os.path.join(path, n)) for n in (hub.TF1_MODULE_FILE, "saved_model.pb"))):
        return "hub"
    try:
        checkpoints.resolve_checkpoint_path(path)
        return "tf1"
    except (FileNotFoundError, ValueError):
        pass
    if _tf2_checkpoint(path):
        return "tf2_state"
    raise ValueError(f"Cannot tell the format of --input={path}: it is no Hugging Face directory (config.json + "
                     "model.safetensors), TF-Hub SavedModel, TF1 checkpoint or TF2 training state. Check the path "
                     "or pass --input_format.")


def _tf2_checkpoint(path: str) -> Optional[str]:
    """The newest TF2 checkpoint of a run directory, of its tf2_checkpoints/ folder, or a ckpt prefix."""
    for directory in (os.path.join(path, CHECKPOINT_SUBDIR), path):
        if tf.io.gfile.isdir(directory):
            latest = tf.train.latest_checkpoint(directory)
            if latest:
                return latest
    return path if tf.io.gfile.exists(path + ".index") else None


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
        prefix = checkpoints.resolve_checkpoint_path(path)
        shapes = checkpoints.open_checkpoint(prefix).get_variable_to_shape_map()
        kind = _tf1_model_kind(shapes) if model_kind == "auto" else model_kind
        if kind == "classifier" and not num_labels and "output_weights" in shapes:
            num_labels = shapes["output_weights"][0]
        model = build_model(kind, _config(config_file, path), num_labels, num_choices)
        checkpoints.load_original_checkpoint(model, path)
        return model, _release_tokenizer(path)
    if fmt == "tf2_state":
        prefix = _tf2_checkpoint(path)
        if prefix is None:
            raise ValueError(f"No TF2 training state at --input={path} (expected {CHECKPOINT_SUBDIR}/ckpt-<step>).")
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
    prefix = checkpoints.save_original_checkpoint(model, prefix)
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


def main(_):
    try:
        written = convert(FLAGS.input, FLAGS.output_format, FLAGS.output, FLAGS.input_format,
                          FLAGS.albert_config_file, FLAGS.spm_model_file, FLAGS.model_kind, FLAGS.num_labels,
                          FLAGS.num_choices, FLAGS.label_names, FLAGS.architecture,
                          FLAGS.do_lower_case if FLAGS["do_lower_case"].present else None)
    except (ValueError, OSError, ImportError, tf.errors.OpError) as e:
        sys.exit(f"convert_checkpoint.py: {e}")
    print(written)


def entry() -> None:
    """The `albert-convert-checkpoint` command (and `python convert_checkpoint.py` at the repository root)."""
    flags.mark_flags_as_required(["input", "output_format", "output"])
    cli.run_main(main)


if __name__ == "__main__":
    entry()
