"""Fine-tune ALBERT on SQuAD v1.1 or v2.0: train, evaluate every checkpoint, predict, export.

Original flags and defaults of the TF1 release's run_squad_v1.py / run_squad_v2.py, plus --squad_version,
--do_eval, --optimizer, --keep_checkpoint_max, --null_score_diff_threshold and the TF2 runtime flags
(--strategy_type, --mixed_precision, --jit_compile, --steps_per_loop, ...). See albert_tf/tasks/squad.py
for what is written to --output_dir. The README recipe (SQuAD v1.1):

  python run_squad.py --squad_version=v1.1 --albert_config_file=albert_base/albert_config.json \
      --init_checkpoint=albert_base/model.ckpt-best --spm_model_file=albert_base/30k-clean.model \
      --train_file=train-v1.1.json --predict_file=dev-v1.1.json \
      --train_feature_file=out/train.tf_record --predict_feature_file=out/dev.tf_record \
      --do_lower_case --max_seq_length=384 --doc_stride=128 --max_query_length=64 \
      --do_train --do_eval --do_predict --train_batch_size=48 --predict_batch_size=8 --learning_rate=5e-5 \
      --num_train_epochs=2.0 --warmup_proportion=.1 --save_checkpoints_steps=5000 --n_best_size=20 \
      --max_answer_length=30 --output_dir=out
"""
from albert_tf.core import cli

cli.quiet_tensorflow()  # before TensorFlow is imported: a readable console

import functools  # noqa: E402
from typing import Optional  # noqa: E402

from absl import flags  # noqa: E402

from albert_tf import squad_postprocess  # noqa: E402
from albert_tf.core import flags as runtime_flags  # noqa: E402
from albert_tf.data import squad  # noqa: E402
from albert_tf.squad_eval import VERSIONS  # noqa: E402
from albert_tf.tasks.squad import SquadRun, SquadTask  # noqa: E402

# RunSettings fields the SQuAD scripts have no flag for (they keep their defaults).
UNFLAGGED = ("poly_power", "start_warmup_step", "init_from_group0")


def define_flags(squad_version: Optional[str] = None) -> None:
    """Defines every flag of the SQuAD scripts; `squad_version` fixes the version (run_squad_v1/v2.py)."""
    defaults = SquadRun(output_dir="")
    flags.DEFINE_string("albert_config_file", None, "The albert_config.json of the pretrained model.")
    flags.DEFINE_string("vocab_file", None, "Unused: SQuAD features need --spm_model_file (kept for compatibility).")
    flags.DEFINE_string("spm_model_file", None, "The SentencePiece model (e.g. 30k-clean.model).")
    flags.DEFINE_string("train_file", None, "SQuAD json for training, e.g. train-v1.1.json.")
    flags.DEFINE_string("predict_file", None, "SQuAD json for evaluation and predictions, e.g. dev-v1.1.json.")
    flags.DEFINE_string("train_feature_file", None, "Training TFRecord; built when missing (default "
                        "<output_dir>/train.tf_record).")
    flags.DEFINE_string("predict_feature_file", None, "Predict TFRecord (+ its side file F.features.json); used "
                        "as is when it exists, else built (default <output_dir>/predict.tf_record).")
    flags.DEFINE_string("predict_feature_left_file", None, "Original flag, unused: the post-processing side "
                        "information is written next to --predict_feature_file.")
    flags.DEFINE_bool("do_lower_case", defaults.do_lower_case, "Lower-case the input text.")
    flags.DEFINE_integer("max_seq_length", defaults.max_seq_length, "Sequence length (question + context window).")
    flags.DEFINE_integer("doc_stride", defaults.doc_stride, "How far apart the context windows start, in pieces.")
    flags.DEFINE_integer("max_query_length", defaults.max_query_length, "Question pieces beyond this are cut.")
    flags.DEFINE_float("num_train_epochs", defaults.num_train_epochs, "Training epochs (over questions).")
    flags.DEFINE_float("warmup_proportion", defaults.warmup_proportion, "Share of the steps with linear warmup.")
    flags.DEFINE_integer("n_best_size", defaults.n_best_size, "Size of the n-best lists.")
    flags.DEFINE_integer("max_answer_length", defaults.max_answer_length, "Longest answer, in pieces.")
    flags.DEFINE_bool("use_einsum", defaults.use_einsum, "Original v1 flag (False for the TFLite export).")
    flags.DEFINE_integer("start_n_top", defaults.start_n_top, "v2.0: beam size of the start positions.")
    flags.DEFINE_integer("end_n_top", defaults.end_n_top, "v2.0: end positions kept per start.")
    flags.DEFINE_float("dropout_prob", defaults.dropout_prob, "v2.0: dropout of the answerability layer.")
    flags.DEFINE_float("null_score_diff_threshold", None, "v2.0: answer \"\" where the null score is >= this. "
                       "Default: tuned on --predict_file for evaluation, as the original.")
    if squad_version is None:
        flags.DEFINE_enum("squad_version", None, list(VERSIONS), "SQuAD version of the data and head.")
    runtime_flags.define_driver_flags(
        train_batch_size=defaults.train_batch_size, predict_batch_size=defaults.predict_batch_size,
        learning_rate=defaults.learning_rate, optimizer=defaults.optimizer,
        save_checkpoints_steps=defaults.save_checkpoints_steps, keep_checkpoint_max=defaults.keep_checkpoint_max,
        skip=("eval_batch_size",))  # SQuAD evaluates with --predict_batch_size, as the original


def original_do_eval(flag_values: flags.FlagValues) -> bool:
    """`--do_eval`, or the original scripts' behaviour: `--do_train --do_predict` on a predict file with
    answers evaluated every checkpoint and kept the best by F1."""
    if flag_values.do_eval or not (flag_values.do_train and flag_values.do_predict and flag_values.predict_file):
        return flag_values.do_eval
    return squad_postprocess.has_gold_answers(squad.load_squad_json(flag_values.predict_file))


def main(_, squad_version: Optional[str] = None) -> None:
    """Runs the task; `squad_version` is given by run_squad_v1.py / run_squad_v2.py, which also take
    `--do_train --do_predict` on a dev file as the original did (`original_do_eval`)."""
    FLAGS = flags.FLAGS
    runtime_flags.run_task(SquadTask, SquadRun, FLAGS, unflagged=UNFLAGGED, eval_batch_size=FLAGS.predict_batch_size,
                           squad_version=squad_version or FLAGS.squad_version,
                           do_eval=original_do_eval(FLAGS) if squad_version else FLAGS.do_eval)


def run_version(squad_version: str) -> None:
    """The original's run_squad_v1.py / run_squad_v2.py: `--squad_version` fixed, their required flags."""
    define_flags(squad_version)
    flags.mark_flags_as_required(["spm_model_file", "albert_config_file", "output_dir"])
    cli.run_main(functools.partial(main, squad_version=squad_version))


def entry() -> None:
    """The `albert-run-squad` command (and `python run_squad.py` at the repository root)."""
    define_flags()
    flags.mark_flags_as_required(["squad_version", "output_dir"])
    cli.run_main(main)


if __name__ == "__main__":
    entry()
