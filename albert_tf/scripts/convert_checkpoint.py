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

from absl import flags  # noqa: E402

# Kept here, TensorFlow-free, so that flag errors answer at once (the library's lists are the same).
FORMATS = ("tf1", "transformers", "tf2_state", "hub")
MODEL_KINDS = ("auto", "encoder", "pretrainer", "classifier", "question_answering", "multiple_choice")

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


def main(_):
    from albert_tf.export.convert import convert  # TensorFlow loads here, after the cheap checks

    print(convert(FLAGS.input, FLAGS.output_format, FLAGS.output, FLAGS.input_format, FLAGS.albert_config_file,
                  FLAGS.spm_model_file, FLAGS.model_kind, FLAGS.num_labels, FLAGS.num_choices, FLAGS.label_names,
                  FLAGS.architecture, FLAGS.do_lower_case if FLAGS["do_lower_case"].present else None))


def entry() -> None:
    """The `albert-convert-checkpoint` command (and `python convert_checkpoint.py` at the repository root)."""
    flags.mark_flags_as_required(["input", "output_format", "output"])
    cli.run_main(main)


if __name__ == "__main__":
    entry()
