"""Fine-tune ALBERT on RACE: train, evaluate every checkpoint, predict the test set, export.

Original flags and defaults of the TF1 release (do_train and do_eval default to True, as there), plus
--optimizer, --keep_checkpoint_max, --export_dir and the TF2 runtime flags (--strategy_type,
--mixed_precision, --gradient_accumulation_steps, --recompute_grad, ...). Outputs in --output_dir:
model.ckpt-<step>, model.ckpt-best, eval_results.txt, best_trial.txt, predict_results.txt,
race_predictions.jsonl (see albert_tf/tasks/race/). The original README's command:

  python run_race.py --albert_config_file=albert_base/albert_config.json --output_dir=out/race \
      --train_file=out/race/train.tf_record --eval_file=out/race/eval.tf_record --data_dir=RACE_PARENT \
      --vocab_file=albert_base/30k-clean.vocab --spm_model_file=albert_base/30k-clean.model \
      --init_checkpoint=albert_base/model.ckpt-best --max_seq_length=512 --max_qa_length=128 \
      --do_train --do_eval --train_batch_size=32 --eval_batch_size=8 --learning_rate=1e-5 \
      --train_step=12000 --warmup_step=1000 --save_checkpoints_steps=100
"""
from albert_tf.core import cli

cli.quiet_tensorflow()  # before TensorFlow is imported: a readable console

from absl import app, flags  # noqa: E402

from albert_tf.core import flags as runtime_flags  # noqa: E402
from albert_tf.tasks.race.settings import RaceRun  # noqa: E402

runtime_flags.define_flags(RaceRun)
runtime_flags.define_runtime_flags()
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from albert_tf.tasks.race.task import RaceTask  # TensorFlow loads here, after the cheap checks

    runtime_flags.run_task(RaceTask, RaceRun, FLAGS)


def entry() -> None:
    """The `albert-run-race` command (and `python run_race.py` at the repository root)."""
    flags.mark_flags_as_required(["output_dir"])
    cli.run_main(main)


if __name__ == "__main__":
    entry()
