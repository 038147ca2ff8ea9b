"""Writes the fine-tuning feature files that the task scripts cache and reuse.

  python create_finetuning_data.py --task=glue --task_name=RTE --data_dir=GLUE_DIR \
      --spm_model_file=30k-clean.model --do_lower_case --max_seq_length=128 --output_dir=OUT

writes OUT/rte_train.tf_record, OUT/rte_eval.tf_record and OUT/rte_predict.tf_record (a split whose
TSV file is missing is skipped with a message). Each ``--task`` dispatches to a library writer;
the writers import TensorFlow lazily, so --help and flag errors answer at once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from absl import app, flags, logging

if TYPE_CHECKING:
    from albert_tf.tokenization import FullTokenizer

FLAGS = flags.FLAGS

flags.DEFINE_string("task", None, "Which feature files to write: glue.")
flags.DEFINE_string("task_name", None, "GLUE task, e.g. RTE, MNLI, MisMNLI, STS-B, AX, XNLI.")
flags.DEFINE_string("data_dir", None, "GLUE root folder holding RTE/train.tsv etc.")
flags.DEFINE_string("output_dir", None, "Folder for <task>_{train,eval,predict}.tf_record.")
flags.DEFINE_string("spm_model_file", None, "SentencePiece model (30k-clean.model).")
flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary, used when no --spm_model_file is given.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the input text.")
flags.DEFINE_integer("max_seq_length", 512, "Total length after tokenization; longer inputs are "
                     "truncated, shorter ones padded.")
flags.DEFINE_list("splits", ["train", "eval", "predict"], "Feature files to write: any of train "
                  "(train.tsv), eval (dev) and predict (test).")
flags.DEFINE_string("xnli_language", "zh", "Language of the XNLI task.")
flags.DEFINE_integer("num_workers", None, "Tokenization processes (default: all CPUs for large sets).")


def _make_tokenizer() -> "FullTokenizer":
    """Builds the FullTokenizer from --spm_model_file / --vocab_file."""
    from albert_tf import tokenization
    if not FLAGS.spm_model_file and not FLAGS.vocab_file:
        raise app.UsageError("Pass --spm_model_file (or --vocab_file for a WordPiece model).")
    return tokenization.FullTokenizer(vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case,
                                      spm_model_file=FLAGS.spm_model_file)


def _write_glue() -> None:
    from albert_tf.data import glue
    missing = [name for name in ("task_name", "data_dir", "output_dir") if not FLAGS[name].value]
    if missing:
        raise app.UsageError(f"--task=glue needs {', '.join('--' + m for m in missing)}.")
    unknown = [s for s in FLAGS.splits if s not in glue.FEATURE_SPLITS]
    if unknown:
        raise app.UsageError(f"--splits: unknown {unknown}; use train, eval, predict.")
    try:
        written = glue.write_glue_features(
            FLAGS.task_name, FLAGS.data_dir, _make_tokenizer(), FLAGS.max_seq_length,
            FLAGS.output_dir, splits=FLAGS.splits, do_lower_case=FLAGS.do_lower_case,
            xnli_language=FLAGS.xnli_language, num_workers=FLAGS.num_workers, log=print)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    if not written:
        raise app.UsageError(f"No feature file written: no {FLAGS.task_name} split found under "
                             f"{FLAGS.data_dir}.")


WRITERS: dict[str, Callable[[], None]] = {"glue": _write_glue}
PLANNED = ("squad", "race")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    task = (FLAGS.task or "").lower()
    if task in WRITERS:
        WRITERS[task]()
    elif task in PLANNED:
        raise app.UsageError(f"--task={task} is not supported yet: only {', '.join(WRITERS)}.")
    else:
        raise app.UsageError(f"--task must be one of {', '.join(WRITERS)}; got {FLAGS.task!r}.")


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main)
