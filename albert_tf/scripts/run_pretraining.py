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
from albert_tf.tasks.pretraining.settings import PretrainingRun  # noqa: E402

runtime_flags.define_flags(PretrainingRun)
runtime_flags.define_runtime_flags()
FLAGS = flags.FLAGS


def main(_):
    from albert_tf.tasks.pretraining.task import PretrainingTask  # TensorFlow loads here

    runtime_flags.run_task(PretrainingTask, PretrainingRun, FLAGS)


def entry() -> None:
    """The `albert-run-pretraining` command (and `python run_pretraining.py` at the repository root)."""
    flags.mark_flags_as_required(["albert_config_file", "input_file", "output_dir"])
    cli.run_main(main)


if __name__ == "__main__":
    entry()
