"""Export a fine-tuned GLUE classifier as SavedModels, without training.

Reads model.ckpt-best (else the newest model.ckpt-<step>) of a run_classifier.py --output_dir, or the
fine-tuned --init_checkpoint, and writes <export_dir>/<timestamp>/ (the original serving signature:
serialized tf.Examples in, probabilities and predictions out) and, with --spm_model_file,
<export_dir>/<timestamp>_text/ (raw text in); --export_formats=onnx,tflite and --export_quantize=float16,int8
add <export_dir>/<timestamp>_deploy/albert_model*.{onnx,tflite} (see albert_tf.export.deploy). Example:

  python export_savedmodel.py --task_name=MRPC --output_dir=out/mrpc \
      --albert_config_file=albert_base/albert_config.json --spm_model_file=albert_base/30k-clean.model \
      --max_seq_length=512 --export_dir=exports/mrpc
"""
from albert_tf.core import cli

cli.quiet_tensorflow()  # before TensorFlow is imported: a readable console

import math  # noqa: E402

from absl import app, flags  # noqa: E402

from albert_tf.runs import export_classifier_checkpoint  # noqa: E402

flags.DEFINE_string("task_name", None, "The task the model was fine-tuned on (decides labels and outputs).")
flags.DEFINE_string("albert_config_file", None, "The albert_config.json of the model.")
flags.DEFINE_string("output_dir", None, "A run_classifier.py output folder holding model.ckpt-best.")
flags.DEFINE_string("init_checkpoint", None, "A fine-tuned checkpoint (prefix or folder), when not --output_dir.")
flags.DEFINE_string("spm_model_file", None, "The SentencePiece model; enables the raw-text SavedModel.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the input text in the raw-text SavedModel.")
flags.DEFINE_integer("max_seq_length", 512, "Sequence length of the serving inputs.")
flags.DEFINE_string("export_dir", None, "Where the timestamped SavedModel folders are written.")
flags.DEFINE_string("export_formats", "savedmodel", "Comma list of savedmodel, onnx (needs the onnx extra), "
                    "tflite.")
flags.DEFINE_string("export_quantize", "", "Quantized ONNX/TFLite files beside the float ones: comma list of "
                    "float16, int8 (dynamic range); full_int8 needs the dev set: run_classifier.py --data_dir offers it.")
flags.DEFINE_float("threshold_to_export", float("nan"), "A threshold served as a constant `threshold` output "
                   "(default NaN: none).")
FLAGS = flags.FLAGS


def main(_):
    if not (FLAGS.output_dir or FLAGS.init_checkpoint):
        raise app.UsageError("Pass --output_dir (a fine-tuning run) or --init_checkpoint (a fine-tuned checkpoint).")
    threshold = None if math.isnan(FLAGS.threshold_to_export) else FLAGS.threshold_to_export
    paths = export_classifier_checkpoint(
        FLAGS.albert_config_file, FLAGS.task_name, FLAGS.export_dir, output_dir=FLAGS.output_dir,
        init_checkpoint=FLAGS.init_checkpoint, max_seq_length=FLAGS.max_seq_length,
        spm_model_file=FLAGS.spm_model_file, do_lower_case=FLAGS.do_lower_case, threshold=threshold,
        export_formats=FLAGS.export_formats, export_quantize=FLAGS.export_quantize)
    for path in paths.values():
        print(path)


def entry() -> None:
    """The `albert-export-savedmodel` command (and `python export_savedmodel.py` at the repository root)."""
    flags.mark_flags_as_required(["task_name", "albert_config_file", "export_dir"])
    cli.run_main(main)


if __name__ == "__main__":
    entry()
