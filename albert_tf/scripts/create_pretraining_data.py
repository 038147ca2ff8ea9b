"""Writes ALBERT pretraining TFRecords (SOP pairs + n-gram masked LM) from raw text.

Input: text files with one sentence per line and blank lines between documents. Output: TFRecords with
`input_ids`, `input_mask`, `segment_ids`, `token_boundary` int64[max_seq_length], `masked_lm_positions`,
`masked_lm_ids` int64[P], `masked_lm_weights` float32[P] (P = max_predictions_per_seq * (1 +
do_permutation)) and `next_sentence_labels` int64[1].

    python create_pretraining_data.py --input_file=corpus/*.txt --output_file=out/train.tfrecord \
        --spm_model_file=30k-clean.model --max_seq_length=512 --dupe_factor=40

Flags and defaults are the original release's; `--vocab_file` is only needed without `--spm_model_file`.
`--num_workers` is new: the output is the same for any value. `--allow_binary_input` is new: input that
looks binary or mostly undecodable is refused unless it is given. The algorithm is in
`albert_tf.data.pretraining.create_pretraining_data`. Errors in flags or inputs print one `error:` line
(`--verbose` for a traceback).
"""
from __future__ import annotations

import os

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

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    # Imported here so that --help stays fast.
    from albert_tf.data import pretraining

    logging.set_verbosity(logging.INFO)
    pretraining.create_pretraining_data(
        FLAGS.input_file, FLAGS.output_file, spm_model_file=FLAGS.spm_model_file,
        vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case,
        do_whole_word_mask=FLAGS.do_whole_word_mask, do_permutation=FLAGS.do_permutation,
        favor_shorter_ngram=FLAGS.favor_shorter_ngram, random_next_sentence=FLAGS.random_next_sentence,
        max_seq_length=FLAGS.max_seq_length, ngram=FLAGS.ngram,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq, random_seed=FLAGS.random_seed,
        dupe_factor=FLAGS.dupe_factor, masked_lm_prob=FLAGS.masked_lm_prob,
        short_seq_prob=FLAGS.short_seq_prob, num_workers=FLAGS.num_workers,
        input_file_mode=FLAGS.input_file_mode, allow_binary_input=FLAGS.allow_binary_input)


def entry() -> None:
    """The `albert-create-pretraining-data` command (and `python create_pretraining_data.py` at the repository root)."""
    flags.mark_flag_as_required("input_file")
    flags.mark_flag_as_required("output_file")
    cli.run_main(main)


if __name__ == "__main__":
    entry()
