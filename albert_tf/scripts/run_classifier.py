"""Fine-tune ALBERT on a GLUE task (or XNLI): train, evaluate every checkpoint, predict, export.

Original flags and defaults of the TF1 release, plus the TF2 runtime flags (--strategy_type, --tpu,
--mixed_precision, --jit_compile, --steps_per_loop, ...), --classifier_dropout and --xnli_language.
Outputs in --output_dir: model.ckpt-<step>, model.ckpt-best, eval_results.txt, best_trial.txt,
test_results.tsv, submit_results.tsv (see albert_tf/classifier.py). Example (run_glue.sh's RTE):

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
from albert_tf.data import task_names  # noqa: E402

flags.DEFINE_string("data_dir", None, "The GLUE root folder (holding e.g. RTE/train.tsv).")
flags.DEFINE_string("albert_config_file", None, "The albert_config.json of the pretrained model.")
flags.DEFINE_string("task_name", None, "The task: cola, mnli, mismnli, mrpc, rte, sst-2, sts-b, qqp, qnli, wnli, "
                    "ax (predict only, with an MNLI model) or xnli.")
flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary (used when --spm_model_file is not given).")
flags.DEFINE_string("spm_model_file", None, "The SentencePiece model (e.g. 30k-clean.model).")
flags.DEFINE_string("cached_dir", None, "Where the cached <task>_{train,eval}.tf_record go (default: --output_dir).")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the input text (True for the released models).")
flags.DEFINE_integer("max_seq_length", 512, "Maximum total sequence length after tokenization.")
flags.DEFINE_integer("train_step", 1000, "Total number of training steps.")
flags.DEFINE_integer("warmup_step", 0, "Number of linear warmup steps.")
flags.DEFINE_float("threshold_to_export", float("nan"), "A threshold served as a constant `threshold` output "
                   "of the exported SavedModel (default NaN: none).")
flags.DEFINE_float("classifier_dropout", 0.1, "Dropout on the pooled output in training (the original's 0.1).")
flags.DEFINE_string("xnli_language", "zh", "Language of the xnli task.")
runtime_flags.define_driver_flags()
FLAGS = flags.FLAGS


def main(_):
    cli.check_choice("task_name", FLAGS.task_name, task_names.GLUE_TASKS, task_names.TASK_ALIASES)
    from albert_tf.tasks.glue import ClassifierRun, GlueTask  # TensorFlow loads here, after the cheap checks

    runtime_flags.run_task(GlueTask, ClassifierRun, FLAGS,
                           unflagged=("poly_power", "start_warmup_step", "init_from_group0"))


def entry() -> None:
    """The `albert-run-classifier` command (and `python run_classifier.py` at the repository root)."""
    flags.mark_flags_as_required(["data_dir", "task_name", "output_dir"])
    cli.run_main(main)


if __name__ == "__main__":
    entry()
