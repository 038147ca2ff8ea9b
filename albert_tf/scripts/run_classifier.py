"""Fine-tune ALBERT on a GLUE task (or XNLI): train, evaluate every checkpoint, predict, export.

Original flags and defaults of the TF1 release, plus the TF2 runtime flags (--strategy_type, --tpu,
--mixed_precision, --jit_compile, --steps_per_loop, ...), --classifier_dropout and --xnli_language.
Outputs in --output_dir: model.ckpt-<step>, model.ckpt-best, eval_results.txt, best_trial.txt,
test_results.tsv, submit_results.tsv (see albert_tf/tasks/glue/). Example (run_glue.sh's RTE):

  python run_classifier.py --task_name=RTE --data_dir=glue --output_dir=out/rte \
      --albert_config_file=albert_base/albert_config.json --init_checkpoint=albert_base/model.ckpt-best \
      --spm_model_file=albert_base/30k-clean.model --do_train --do_eval --do_predict \
      --max_seq_length=512 --train_batch_size=32 --learning_rate=3e-5 --train_step=800 \
      --warmup_step=200 --save_checkpoints_steps=100
"""
from albert_tf.core import cli

cli.quiet_tensorflow()  # before TensorFlow is imported: a readable console

from absl import flags  # noqa: E402

from albert_tf.core import flags as runtime_flags  # noqa: E402 (TensorFlow-free: flag errors answer at once)
from albert_tf.tasks.glue import names as task_names  # noqa: E402
from albert_tf.tasks.glue.settings import ClassifierRun  # noqa: E402

runtime_flags.define_flags(ClassifierRun)
runtime_flags.define_runtime_flags()
FLAGS = flags.FLAGS


def main(_):
    cli.check_choice("task_name", FLAGS.task_name, task_names.GLUE_TASKS, task_names.TASK_ALIASES)
    from albert_tf.tasks.glue.task import GlueTask  # TensorFlow loads here, after the cheap checks

    runtime_flags.run_task(GlueTask, ClassifierRun, FLAGS)


def entry() -> None:
    """The `albert-run-classifier` command (and `python run_classifier.py` at the repository root)."""
    flags.mark_flags_as_required(["data_dir", "task_name", "output_dir"])
    cli.run_main(main)


if __name__ == "__main__":
    entry()
