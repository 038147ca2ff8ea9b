"""Writes ALBERT pretraining TFRecords (SOP pairs + n-gram masked LM) from raw text.

Input: text files with one sentence per line and blank lines between documents. Output: TFRecords with
`input_ids`, `input_mask`, `segment_ids`, `token_boundary` int64[max_seq_length], `masked_lm_positions`,
`masked_lm_ids` int64[P], `masked_lm_weights` float32[P] (P = max_predictions_per_seq * (1 +
do_permutation)) and `next_sentence_labels` int64[1].

    python create_pretraining_data.py --input_file=corpus/*.txt --output_file=out/train.tfrecord \
        --spm_model_file=30k-clean.model --max_seq_length=512 --dupe_factor=40

Flags and defaults are the original release's; `--vocab_file` is only needed without `--spm_model_file`.
`--num_workers` is new: the output is the same for any value. `--allow_binary_input` is new: input that
looks binary or mostly undecodable is refused unless it is given. `--num_output_shards=N` is new: write
`<output_file>-SSSSS-of-NNNNN` instead. The algorithm is in
`albert_tf.tasks.pretraining.data.create_pretraining_data`; TensorFlow is not imported. Errors in flags or
inputs print one `error:` line (`--verbose` for a traceback).

With `--runner` the same instances are built by an Apache Beam pipeline on that runner
(`albert_tf.tasks.pretraining.beam`; needs the `beam` extra); every flag this script does not define is
passed to Beam as a pipeline option:

    python create_pretraining_data.py --runner=DirectRunner --direct_num_workers=2 \
        --direct_running_mode=multi_processing --input_file=corpus/*.txt --output_file=out/train.tfrecord \
        --num_output_shards=8 --spm_model_file=30k-clean.model --max_seq_length=512 --dupe_factor=40
"""
from __future__ import annotations

import dataclasses
import os
import sys

from albert_tf.core import cli

cli.quiet_tensorflow()

from absl import app, flags, logging  # noqa: E402  (after quiet_tensorflow, before TensorFlow loads)

flags.DEFINE_string("input_file", None, "Input raw text file(s): comma-separated glob patterns.")
flags.DEFINE_string("output_file", None, "Output TFRecord file(s), comma-separated; written round-robin.")
flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary (used when --spm_model_file is not set).")
flags.DEFINE_string("spm_model_file", None, "SentencePiece model (e.g. 30k-clean.model).")
flags.DEFINE_string("input_file_mode", "r", "Kept for compatibility ('r' or 'rb'); files are read as UTF-8.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the input (True for uncased models).")
flags.DEFINE_bool("do_whole_word_mask", True, "Mask whole words rather than single pieces.")
flags.DEFINE_bool("do_permutation", False, "Also permute a second set of tokens (doubles the prediction slots).")
flags.DEFINE_bool("favor_shorter_ngram", True, "p(n) proportional to 1/n; if False, the reverse.")
flags.DEFINE_bool("random_next_sentence", False,
                  "BERT-style random next sentence negatives instead of sentence-order swaps.")
flags.DEFINE_integer("max_seq_length", 512, "Maximum sequence length.")
flags.DEFINE_integer("ngram", 3, "Maximum n-gram length to mask.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Maximum masked LM predictions per sequence.")
flags.DEFINE_integer("random_seed", 12345, "Random seed; the same seed gives byte-identical output.")
flags.DEFINE_integer("dupe_factor", 40, "Passes over the data (each with different masks and splits).")
flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
flags.DEFINE_float("short_seq_prob", 0.1, "Probability of a shorter target sequence length per document.")
flags.DEFINE_integer("num_workers", os.cpu_count() or 1,
                     "Worker processes for tokenising and building instances (output does not depend on it).")
flags.DEFINE_bool("allow_binary_input", False,
                  "Read input files that look binary or mostly undecodable as text anyway (refused by default).")

flags.DEFINE_integer("num_output_shards", 0,
                     "If N > 0, write <output_file>-SSSSS-of-NNNNN (N files, round-robin; required with --runner).")
flags.DEFINE_string("runner", None,
                    "Build the data with an Apache Beam pipeline on this runner (DirectRunner, DataflowRunner, "
                    "FlinkRunner, SparkRunner, ...); flags not defined here are passed to Beam as pipeline options.")

FLAGS = flags.FLAGS

# Arguments this script does not define: Beam pipeline options when --runner is given (set by `_split_argv`).
_beam_args: list[str] = []


def _split_argv(argv: list[str]) -> list[str]:
    """Returns `argv` without the arguments absl does not know, which go to `_beam_args`."""
    try:
        unknown = FLAGS(argv, known_only=True)[1:]
    except flags.Error:
        return argv  # parsed again by `cli.run_main`, which reports the error
    finally:
        FLAGS.unparse_flags()
    _beam_args[:] = unknown
    rest = list(unknown)
    kept = [argv[0]]
    for arg in argv[1:]:
        if rest and arg == rest[0]:
            rest.pop(0)
        else:
            kept.append(arg)
    return kept


def _run_beam() -> None:
    try:
        from albert_tf.tasks.pretraining import data as pretraining
        from albert_tf.tasks.pretraining import beam as pretraining_beam
    except ImportError as error:
        raise app.UsageError(f"--runner needs Apache Beam ({error}): pip install 'albert-tf[beam]' "
                             "(see README, \"Pretraining data at corpus scale\").") from None
    options = pretraining.PretrainingOptions(
        **{field.name: getattr(FLAGS, field.name) for field in dataclasses.fields(pretraining.PretrainingOptions)})
    paths = pretraining_beam.run_pipeline(
        FLAGS.input_file, FLAGS.output_file, num_output_shards=FLAGS.num_output_shards,
        pipeline_args=[f"--runner={FLAGS.runner}", *_beam_args], spm_model_file=FLAGS.spm_model_file,
        vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case, allow_binary_input=FLAGS.allow_binary_input,
        options=options)
    logging.info("Wrote %d shard(s): %s ... %s", len(paths), paths[0], paths[-1])


def main(argv: list[str]) -> None:
    if len(argv) > 1 or (_beam_args and not FLAGS.runner):
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:] + _beam_args)} (flags other than this "
                             "script's are only accepted as Beam pipeline options, with --runner).")
    logging.set_verbosity(logging.INFO)
    if FLAGS.runner:
        _run_beam()
        return
    # Imported here so that --help stays fast.
    from albert_tf.tasks.pretraining import data as pretraining

    pretraining.create_pretraining_data(
        FLAGS.input_file, FLAGS.output_file, spm_model_file=FLAGS.spm_model_file,
        vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case,
        do_whole_word_mask=FLAGS.do_whole_word_mask, do_permutation=FLAGS.do_permutation,
        favor_shorter_ngram=FLAGS.favor_shorter_ngram, random_next_sentence=FLAGS.random_next_sentence,
        max_seq_length=FLAGS.max_seq_length, ngram=FLAGS.ngram,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq, random_seed=FLAGS.random_seed,
        dupe_factor=FLAGS.dupe_factor, masked_lm_prob=FLAGS.masked_lm_prob,
        short_seq_prob=FLAGS.short_seq_prob, num_workers=FLAGS.num_workers,
        input_file_mode=FLAGS.input_file_mode, allow_binary_input=FLAGS.allow_binary_input,
        num_output_shards=FLAGS.num_output_shards)


def entry() -> None:
    """The `albert-create-pretraining-data` command (and `python create_pretraining_data.py` at the repository root)."""
    flags.mark_flag_as_required("input_file")
    flags.mark_flag_as_required("output_file")
    cli.run_main(main, argv=_split_argv(sys.argv))


if __name__ == "__main__":
    entry()
