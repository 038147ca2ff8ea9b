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

from albert_tf.core import distribute, driver, flags as runtime_flags  # noqa: E402
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
flags.DEFINE_string("output_dir", None, "Where checkpoints, eval and prediction results are written.")
flags.DEFINE_string("init_checkpoint", None, "Pretrained checkpoint (official layout; prefix or directory), or a "
                    "fine-tuned RACE one to evaluate or predict with.")
flags.DEFINE_string("albert_hub_module_handle", None, "A TF-Hub encoder (TF2 SavedModel or the original's TF1 "
                    "module; local directory or URL) to fine-tune instead of --albert_config_file's AlbertModel.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the input text (True for the released models).")
flags.DEFINE_float("dropout_prob", 0.1, "Dropout on the pooled output in training.")
flags.DEFINE_integer("max_seq_length", 512, "Length of [CLS] article [SEP] question+option [SEP], per choice.")
flags.DEFINE_integer("max_qa_length", 128, "Question+option pieces kept (the last ones).")
flags.DEFINE_bool("high_only", False, "Only the high-school questions.")
flags.DEFINE_bool("middle_only", False, "Only the middle-school questions.")
flags.DEFINE_bool("do_train", True, "Whether to fine-tune.")
flags.DEFINE_bool("do_eval", True, "Whether to evaluate every checkpoint on the dev set.")
flags.DEFINE_bool("do_predict", False, "Whether to predict the test set with model.ckpt-best.")
flags.DEFINE_integer("train_batch_size", 32, "Global training batch size.")
flags.DEFINE_integer("eval_batch_size", 8, "Evaluation batch size.")
flags.DEFINE_integer("predict_batch_size", 8, "Prediction batch size.")
flags.DEFINE_float("learning_rate", 1e-5, "The initial learning rate.")
flags.DEFINE_integer("train_step", 12000, "Total number of training steps.")
flags.DEFINE_integer("warmup_step", 1000, "Number of linear warmup steps.")
flags.DEFINE_integer("save_checkpoints_steps", 100, "How often to save (and evaluate) a checkpoint.")
flags.DEFINE_integer("keep_checkpoint_max", 5, "How many model.ckpt-<step> to keep (0: all).")
flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "The optimizer for training.")
flags.DEFINE_string("export_dir", None, "Export a SavedModel of model.ckpt-best under <export_dir>/<timestamp>/.")
runtime_flags.define_runtime_flags()
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    distribute.configure_precision(FLAGS.mixed_precision)
    strategy = runtime_flags.strategy_from_flags(FLAGS)
    run = runtime_flags.run_config_from_flags(
        RaceRun, FLAGS, unflagged=("poly_power", "start_warmup_step", "init_from_group0"))
    driver.run(RaceTask(run), strategy)


if __name__ == "__main__":
    flags.mark_flags_as_required(["output_dir"])
    cli.run_main(main)
