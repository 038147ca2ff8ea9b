"""Export an ALBERT checkpoint for TF-Hub (TF2): an encoder SavedModel with an `mlm` sub-object, and a
preprocessing SavedModel (raw text -> input_word_ids / input_mask / input_type_ids), the interfaces of
Model Garden's `albert_en_*` / `albert_en_preprocess` models. The flags are the original
export_to_tfhub.py's, plus overrides. Example (an unpacked release):

  python export_tfhub.py --albert_directory=albert_base --checkpoint_name=model.ckpt-best \
      --export_path=hub/albert_base --preprocessing_export_path=hub/albert_base_preprocess

Load them with `hub.KerasLayer(path, trainable=True)` or `albert_tf.from_hub(path)`; see
albert_tf/export/tfhub.py for the interfaces.
"""
from albert_tf.core import cli

cli.quiet_tensorflow()  # before TensorFlow is imported: a readable console

import os  # noqa: E402

from absl import app, flags  # noqa: E402

from albert_tf.export.tfhub import export_from_checkpoint  # noqa: E402
from albert_tf.tokenization import FullTokenizer  # noqa: E402

flags.DEFINE_string("albert_directory", None, "A release or run directory holding albert_config.json, the "
                    "SentencePiece model and the checkpoint.")
flags.DEFINE_string("checkpoint_name", "model.ckpt-best", "Checkpoint prefix inside --albert_directory.")
flags.DEFINE_bool("do_lower_case", True, "Whether the model lower-cases its input (recorded in the exports).")
flags.DEFINE_bool("use_einsum", True, "Accepted for the original's command lines; the export never uses Einsum.")
flags.DEFINE_string("export_path", None, "Directory of the encoder SavedModel.")
flags.DEFINE_string("albert_config_file", None, "Overrides <albert_directory>/albert_config.json.")
flags.DEFINE_string("spm_model_file", None, "Overrides the SentencePiece model of --albert_directory "
                    "(30k-clean.model, else its only *.model).")
flags.DEFINE_string("init_checkpoint", None, "Overrides <albert_directory>/<checkpoint_name>.")
flags.DEFINE_bool("with_mlm", True, "Export the `mlm` sub-object (needs the checkpoint's cls/* heads).")
flags.DEFINE_string("preprocessing_export_path", None, "Also write the preprocessing SavedModel here.")
flags.DEFINE_integer("max_seq_length", 128, "Default seq_length of the preprocessing model (its "
                     "bert_pack_inputs takes any).")
FLAGS = flags.FLAGS


def main(_):
    directory = FLAGS.albert_directory
    if not directory and not (FLAGS.albert_config_file and FLAGS.init_checkpoint):
        raise app.UsageError("Pass --albert_directory, or --albert_config_file and --init_checkpoint.")
    config_file = FLAGS.albert_config_file or os.path.join(directory, "albert_config.json")
    checkpoint = FLAGS.init_checkpoint or os.path.join(directory, FLAGS.checkpoint_name)
    spm_model_file = FLAGS.spm_model_file
    if spm_model_file is None and directory:
        spm_model_file = FullTokenizer.from_release(directory, FLAGS.do_lower_case).spm_model_file
    paths = export_from_checkpoint(FLAGS.export_path, config_file, checkpoint, spm_model_file=spm_model_file,
                                   do_lower_case=FLAGS.do_lower_case, with_mlm=FLAGS.with_mlm,
                                   preprocessing_export_path=FLAGS.preprocessing_export_path,
                                   seq_length=FLAGS.max_seq_length)
    for path in paths.values():
        print(path)


def entry() -> None:
    """The `albert-export-tfhub` command (and `python export_tfhub.py` at the repository root)."""
    flags.mark_flags_as_required(["export_path"])
    cli.run_main(main)


if __name__ == "__main__":
    entry()
