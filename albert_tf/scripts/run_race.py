"""Fine-tune ALBERT on RACE: train, evaluate every checkpoint, predict the test set, export.

Original flags and defaults of the TF1 release (do_train and do_eval default to True, as there), plus
--optimizer, --keep_checkpoint_max, --export_dir and the TF2 runtime flags (--strategy_type,
--mixed_precision, --gradient_accumulation_steps, --recompute_grad, ...). Outputs in --output_dir:
model.ckpt-<step>, model.ckpt-best, eval_results.txt, best_trial.txt, predict_results.txt,
race_predictions.jsonl (see albert_tf/tasks/race.py). The original README's command:

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
from albert_tf.tasks.race import RaceRun, RaceTask  # noqa: E402

flags.DEFINE_string("data_dir", None, "The folder holding RACE/{train,dev,test}/{middle,high}/ (one JSON article per "
                    "*.txt, or all.txt with one per line); RACE/ itself also works.")
flags.DEFINE_string("albert_config_file", None, "The albert_config.json of the pretrained model.")
flags.DEFINE_string("task_name", "race", "The task: race.")
flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary (used when --spm_model_file is not given).")
flags.DEFINE_string("train_file", None, "Training features (TFRecord); built from the train split when missing. "
                    "Default: <output_dir>/train.tf_record.")
flags.DEFINE_string("eval_file", None, "Dev features; built from the dev split when missing. Default: "
                    "<output_dir>/eval.tf_record.")
flags.DEFINE_string("predict_file", None, "Test features; used as is when it exists, else built from the test "
                    "split. Default: <output_dir>/predict.tf_record.")
flags.DEFINE_string("spm_model_file", None, "The SentencePiece model (e.g. 30k-clean.model).")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the input text (True for the released models).")
flags.DEFINE_float("dropout_prob", 0.1, "Dropout on the pooled output in training.")
flags.DEFINE_integer("max_seq_length", 512, "Length of [CLS] article [SEP] question+option [SEP], per choice.")
flags.DEFINE_integer("max_qa_length", 128, "Question+option pieces kept (the last ones).")
flags.DEFINE_bool("high_only", False, "Only the high-school questions.")
flags.DEFINE_bool("middle_only", False, "Only the middle-school questions.")
flags.DEFINE_integer("train_step", 12000, "Total number of training steps.")
flags.DEFINE_integer("warmup_step", 1000, "Number of linear warmup steps.")
runtime_flags.define_driver_flags(do_train=True, do_eval=True, learning_rate=1e-5, save_checkpoints_steps=100)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    runtime_flags.run_task(RaceTask, RaceRun, FLAGS, unflagged=("poly_power", "start_warmup_step", "init_from_group0"))


def entry() -> None:
    """The `albert-run-race` command (and `python run_race.py` at the repository root)."""
    flags.mark_flags_as_required(["output_dir"])
    cli.run_main(main)


if __name__ == "__main__":
    entry()
