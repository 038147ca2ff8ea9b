"""Writes the fine-tuning feature files that the task scripts cache and reuse.

  python create_finetuning_data.py --task=glue --task_name=RTE --data_dir=GLUE_DIR \
      --spm_model_file=30k-clean.model --do_lower_case --max_seq_length=128 --output_dir=OUT

writes OUT/rte_train.tf_record, OUT/rte_eval.tf_record and OUT/rte_predict.tf_record (a split whose
TSV file is missing is skipped with a message).

  python create_finetuning_data.py --task=squad --squad_version=v1.1 --input_file=dev-v1.1.json \
      --is_training=false --spm_model_file=30k-clean.model --do_lower_case --max_seq_length=384 \
      --doc_stride=128 --max_query_length=64 --output_file=squad_dev.tf_record

writes the SQuAD features in document order and, with --is_training=false, the post-processing side
file squad_dev.features.json next to them.

  python create_finetuning_data.py --task=race --data_dir=RACE_ROOT --split=dev --level=all \
      --spm_model_file=30k-clean.model --do_lower_case --max_seq_length=512 --max_qa_length=128 \
      --output_file=race_dev.tf_record

writes one record per RACE question (4 choices of max_seq_length each), articles in numeric file
order, middle before high. Each ``--task`` dispatches to a library writer;
the writers import TensorFlow lazily, so --help and flag errors (an unknown --task or --task_name)
answer at once. Every feature file gets a fingerprint sidecar ``<file>.fingerprint.json`` (see
`albert_tf.data.cache`) so the training scripts can tell whether it matches their inputs. Errors in
flags or inputs print one ``error:`` line (``--verbose`` for a traceback).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

from albert_tf.core import cli

cli.quiet_tensorflow()

from absl import app, flags, logging  # noqa: E402  (after quiet_tensorflow, before TensorFlow loads)

from albert_tf.tasks.glue import names as task_names  # noqa: E402  (no TensorFlow)

if TYPE_CHECKING:
    from albert_tf.tokenization import FullTokenizer

FLAGS = flags.FLAGS

flags.DEFINE_string("task", None, "Which feature files to write: glue, squad, race.")
flags.DEFINE_string("task_name", None, "GLUE task, e.g. RTE, MNLI, MisMNLI, STS-B, AX, XNLI.")
flags.DEFINE_string("data_dir", None, "GLUE root folder holding RTE/train.tsv etc.; RACE "
                    "root holding {train,dev,test}/{middle,high}/.")
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
flags.DEFINE_enum("squad_version", None, ["v1.1", "v2.0"], "SQuAD version of --input_file (default: "
                  "v2.0 if any question is marked is_impossible, else v1.1).")
flags.DEFINE_string("input_file", None, "SQuAD JSON file (e.g. train-v1.1.json, dev-v2.0.json).")
flags.DEFINE_bool("is_training", None, "SQuAD: write training features (with answer positions); "
                  "false writes eval features plus the post-processing side file.")
flags.DEFINE_integer("doc_stride", 128, "SQuAD: how far apart the paragraph windows start, in pieces.")
flags.DEFINE_integer("max_query_length", 64, "SQuAD: question pieces beyond this are cut.")
flags.DEFINE_string("output_file", None, "SQuAD, RACE: the TFRecord file to write.")
flags.DEFINE_enum("split", None, ["train", "dev", "test"], "RACE: the split to write.")
flags.DEFINE_enum("level", "all", ["middle", "high", "all"], "RACE: the levels to read (all: middle, "
                  "then high).")
flags.DEFINE_integer("max_qa_length", 128, "RACE: question+option pieces kept, counted from the end.")


def _make_tokenizer() -> "FullTokenizer":
    """Builds the FullTokenizer from --spm_model_file / --vocab_file."""
    from albert_tf import tokenization
    if not FLAGS.spm_model_file and not FLAGS.vocab_file:
        raise app.UsageError("Pass --spm_model_file (or --vocab_file for a WordPiece model).")
    return tokenization.FullTokenizer(vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case,
                                      spm_model_file=FLAGS.spm_model_file)


def _write_glue() -> None:
    missing = [name for name in ("task_name", "data_dir", "output_dir") if not FLAGS[name].value]
    if missing:
        raise app.UsageError(f"--task=glue needs {', '.join('--' + m for m in missing)}.")
    cli.check_choice("task_name", FLAGS.task_name, task_names.GLUE_TASKS, task_names.TASK_ALIASES)
    from albert_tf.tasks.glue import data as glue
    unknown = [s for s in FLAGS.splits if s not in glue.FEATURE_SPLITS]
    if unknown:
        raise app.UsageError(f"--splits: unknown {unknown}; use train, eval, predict.")
    written = glue.write_glue_features(
        FLAGS.task_name, FLAGS.data_dir, _make_tokenizer(), FLAGS.max_seq_length,
        FLAGS.output_dir, splits=FLAGS.splits, do_lower_case=FLAGS.do_lower_case,
        xnli_language=FLAGS.xnli_language, num_workers=FLAGS.num_workers, log=print)
    if not written:
        raise app.UsageError(f"No feature file written: no {FLAGS.task_name} split found under "
                             f"{FLAGS.data_dir}.")


def _write_squad() -> None:
    import tensorflow as tf

    from albert_tf.data import cache
    from albert_tf.tasks.squad import data as squad
    missing = [name for name in ("input_file", "is_training", "output_file")
               if FLAGS[name].value is None]
    if missing:
        raise app.UsageError(f"--task=squad needs {', '.join('--' + m for m in missing)}.")
    squad_file = squad.SquadFile(FLAGS.input_file)  # parsed once
    examples = squad_file.examples(FLAGS.is_training)
    version = squad_file.version(FLAGS.squad_version)
    tokenizer = _make_tokenizer()
    expected = squad.feature_fingerprint(
        tokenizer, FLAGS.input_file, FLAGS.is_training, FLAGS.do_lower_case, FLAGS.max_seq_length,
        FLAGS.doc_stride, FLAGS.max_query_length, version)
    if os.path.dirname(FLAGS.output_file):
        tf.io.gfile.makedirs(os.path.dirname(FLAGS.output_file))
    summary = cache.build_with_fingerprint(FLAGS.output_file, expected, lambda: squad.write_squad_features(
        examples, tokenizer, FLAGS.output_file, FLAGS.max_seq_length, FLAGS.doc_stride,
        FLAGS.max_query_length, FLAGS.is_training, FLAGS.do_lower_case,
        settings={"input_file": FLAGS.input_file, "squad_version": version}, num_workers=FLAGS.num_workers))
    kind = (f"training features ({summary.num_impossible_features} without an answer in their "
            "window)" if FLAGS.is_training else "eval features")
    print(f"Wrote {summary.num_features} {kind} for {summary.num_examples} SQuAD {version} questions "
          f"to {FLAGS.output_file}.")
    skipped = summary.skipped_message(FLAGS.input_file)
    if skipped:
        print(skipped)
    if summary.side_info_file:
        print(f"Wrote the post-processing side file {summary.side_info_file}.")


def _write_race() -> None:
    missing = [name for name in ("data_dir", "split", "output_file") if not FLAGS[name].value]
    if missing:
        raise app.UsageError(f"--task=race needs {', '.join('--' + m for m in missing)}.")
    from albert_tf.tasks.race import data as race
    count = race.write_race_features(
        FLAGS.data_dir, FLAGS.split, FLAGS.level, _make_tokenizer(), FLAGS.max_seq_length,
        FLAGS.max_qa_length, FLAGS.output_file, do_lower_case=FLAGS.do_lower_case, num_workers=FLAGS.num_workers)
    print(f"Wrote {count} RACE {FLAGS.split}/{FLAGS.level} examples to {FLAGS.output_file}.")


WRITERS: dict[str, Callable[[], None]] = {"glue": _write_glue, "squad": _write_squad,
                                          "race": _write_race}


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    WRITERS[cli.check_choice("task", FLAGS.task, WRITERS)]()


def entry() -> None:
    """The `albert-create-finetuning-data` command (and `python create_finetuning_data.py` at the repository root)."""
    logging.set_verbosity(logging.INFO)
    cli.run_main(main)


if __name__ == "__main__":
    entry()
