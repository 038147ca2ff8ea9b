"""Pretrain ALBERT (MLM + sentence-order prediction) on TFRecords from create_pretraining_data.py.

Original flags and defaults of the TF1 release, plus the TF2 runtime flags (--strategy_type, --tpu,
--mixed_precision, --jit_compile, --steps_per_loop, ...). Example:

  python run_pretraining.py --albert_config_file=albert_config.json --input_file='data/*.tfrecord' \
      --output_dir=out --do_train --do_eval --train_batch_size=64 --max_seq_length=128 \
      --max_predictions_per_seq=20 --num_train_steps=10000 --num_warmup_steps=500 --learning_rate=0.00176
"""
from albert_tf.core import cli

cli.quiet_tensorflow()  # before TensorFlow is imported: a readable console

from absl import flags  # noqa: E402

from albert_tf.core import flags as runtime_flags  # noqa: E402
from albert_tf.tasks.pretraining import PretrainingRun, PretrainingTask  # noqa: E402

flags.DEFINE_string("albert_config_file", None, "The albert_config.json of the model to train.")
flags.DEFINE_string("input_file", None, "Input TFRecord files (comma-separated globs).")
flags.DEFINE_string("eval_input_file", None, "TFRecords for --do_eval (default: --input_file, as the original).")
flags.DEFINE_integer("max_seq_length", 512, "Maximum sequence length; must match the TFRecords.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked LM predictions per sequence; must match the TFRecords.")
flags.DEFINE_float("poly_power", 1.0, "The power of the polynomial decay.")
flags.DEFINE_integer("num_train_steps", 125000, "Number of training steps.")
flags.DEFINE_integer("num_warmup_steps", 3125, "Number of warmup steps.")
flags.DEFINE_integer("start_warmup_step", 0, "The step at which warmup starts.")
flags.DEFINE_integer("max_eval_steps", 100, "Maximum number of eval batches.")
flags.DEFINE_bool("init_from_group0", False, "Initialise every parameter group from group_0 of --init_checkpoint.")
runtime_flags.define_driver_flags(do_train=True, train_batch_size=4096, eval_batch_size=64, learning_rate=0.00176,
                                  optimizer="lamb", save_checkpoints_steps=5000,
                                  skip=("do_predict", "predict_batch_size", "export_dir"))
FLAGS = flags.FLAGS


def main(_):
    runtime_flags.run_task(PretrainingTask, PretrainingRun, FLAGS,
                           unflagged=("do_predict", "export_dir", "predict_batch_size"))


def entry() -> None:
    """The `albert-run-pretraining` command (and `python run_pretraining.py` at the repository root)."""
    flags.mark_flags_as_required(["albert_config_file", "input_file", "output_dir"])
    cli.run_main(main)


if __name__ == "__main__":
    entry()
