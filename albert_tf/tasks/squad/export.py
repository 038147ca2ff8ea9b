"""SQuAD exports: the model's raw outputs, the original v1 TFLite file, and a raw-text QA SavedModel.

`export_squad(model, export_dir, squad_version=..., max_seq_length=..., spm_model_file=...)` writes

- ``export_dir/saved_model/<timestamp>/`` (`SquadFeatureServing`): ``serving_default(input_word_ids,
  input_mask, input_type_ids[, p_mask])``, int32 [B, S] each (``p_mask`` for v2.0) -> the raw outputs
  of ``run_squad.py``'s ``raw_results.npz``: v1.1 ``start_logits``, ``end_logits`` [B, S]; v2.0
  ``start_top_log_probs``, ``start_top_index`` [B, k], ``end_top_log_probs``, ``end_top_index``
  [B, k*k'], ``cls_logits`` [B]. Plain TensorFlow ops.
- ``export_dir/albert_model.tflite`` (v1.1, ``tflite=True``): the original's TFLite conversion, inputs
  ``input_word_ids``, ``input_mask``, ``input_type_ids`` int32 [1, S], outputs ``start_logits``,
  ``end_logits`` [1, S].
- ``export_dir/saved_model/<timestamp>_text/`` (`SquadTextServing`, when ``spm_model_file`` is given):
  ``serving_default(question, context)``, string [B] each -> the answer, computed in the graph exactly
  as ``convert_examples_to_features`` + ``squad_postprocess`` do it in Python (see `SquadTextServing`).
  Its ops come from tensorflow_text: ``import tensorflow_text`` before loading it.

How character offsets are found in the graph. The Python features map every SentencePiece piece to
characters of the raw context by a banded LCS between the raw text and the concatenated pieces
(`albert_tf.tasks.squad.data.align_paragraph`). The graph tracks offsets through each step instead:

1. ``preprocess_text`` acts character by character except for the whitespace collapse: NFKD followed
   by the removal of every combining mark is the concatenation of the per-character results (canonical
   reordering only moves combining marks, which are removed), and lowercasing changes no UTF-8 length
   in context. So raw character i produces ``n_i`` bytes of the normalised text: its own normalised
   length, or for whitespace 1 byte when it starts a run between two non-space characters, else 0.
   A normalised byte offset maps back to the raw character whose bytes contain it.
2. tensorflow_text's `SentencepieceTokenizer.tokenize_with_offsets` gives each piece's byte range in
   the normalised text (through SentencePiece's own normaliser). Its segmentation can break exact score
   ties differently from pip sentencepiece (e.g. ``000`` as ``00 0`` or ``0 00``); the ids served to
   the model are those of `FastSentencepieceTokenizer` (what `InGraphTokenizer` and so the Python path
   produce), and inside a run of differing pieces the byte ranges are rebuilt from the pieces' lengths.
   (A batch where the two disagree on a piece count falls back to the offset tokenizer's pieces.)
3. The digit-comma rule splits a piece such as ``1990,`` into pieces whose ranges are cut from the end of
   the piece's range by their lengths.

The answer is ``context[first_char(start piece) : last_char(end piece) + 1].strip()`` as in the original;
its offsets are Unicode code point indices into the given context (Python ``str`` indices), with the
end exclusive: ``context[answer_start:answer_end] == answer_text``.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
import tf_keras as keras
from absl import logging

from albert_tf import sentencepiece_rules, tokenization
from albert_tf.export import serving, tflite
from albert_tf.export.spm_asset import TOKENIZATION_INFO, attach_spm_asset
from albert_tf.tasks.squad.evaluate import V1, V2, VERSIONS

V1_OUTPUTS = ("start_logits", "end_logits")
V2_OUTPUTS = ("start_top_log_probs", "start_top_index", "end_top_log_probs", "end_top_index", "cls_logits")
TFLITE_FILE = "albert_model.tflite"
SAVED_MODEL_DIR = "saved_model"  # export_dir/saved_model/<timestamp>/, as the original
_NULL_SCORE_INIT = 1e6  # the original's initial null score ("large and positive")
_V2_NO_ANSWER_SCORE = -1e6  # the original's v2 fallback start and end scores


def model_input_names(squad_version: str) -> tuple[str, ...]:
    """The model inputs of the features, in signature order (``p_mask`` only for v2.0)."""
    base = ("input_word_ids", "input_mask", "input_type_ids")
    return base + ("p_mask",) if squad_version == V2 else base


def raw_outputs(squad_version: str, outputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The raw outputs (`V1_OUTPUTS` / `V2_OUTPUTS`, the keys of ``raw_results.npz``) of a SQuAD model's
    outputs dict: float32 values, int32 indices."""
    names = V1_OUTPUTS if squad_version == V1 else V2_OUTPUTS
    return {name: tf.cast(outputs[name], tf.int32 if name.endswith("_index") else tf.float32)
            for name in names}


class SquadFeatureServing(serving.FeatureServing):
    """`serving_default(input_word_ids, input_mask, input_type_ids[, p_mask])` (int32 [B, S]) -> the raw
    outputs (`V1_OUTPUTS` or `V2_OUTPUTS`).

    Args:
      model: `AlbertQuestionAnswering` (v1.1) or `AlbertSquadV2` (v2.0).
      squad_version: "v1.1" or "v2.0".
      seq_length: S, the `max_seq_length` of the features.
    """

    def __init__(self, model: keras.Model, squad_version: str, seq_length: int):
        super().__init__(model, lambda outputs: raw_outputs(squad_version, outputs), [seq_length],
                         model_input_names(squad_version), name="squad_feature_serving")
        self.squad_version = squad_version
        self.seq_length = seq_length


# ----------------------------------------------------------------------------------------------
# Raw text -> pieces with character offsets
# ----------------------------------------------------------------------------------------------

def _comma_rule_table(sp_model) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per vocabulary id, what the digit-comma rule makes of it, with where each result piece lies.

    Returns:
      (row lengths [V], ids [N], tail_end [N], tail_begin [N]) of a ragged [V, (k)] table: piece i becomes
      ids[...]; result piece j ends ``tail_end`` bytes and starts ``tail_begin`` bytes before the end of
      piece i's text. Ordinary pieces map to themselves with ``tail_end`` 0 and ``tail_begin`` a huge
      value (their own start is kept).
    """
    unk = sp_model.unk_id()
    lengths, ids, tail_end, tail_begin = [], [], [], []
    for i in range(sp_model.GetPieceSize()):
        piece = sp_model.IdToPiece(i)
        if i == unk or not sentencepiece_rules.ends_with_digit_comma(piece):
            lengths.append(1)
            ids.append(i)
            tail_end.append(0)
            tail_begin.append(np.iinfo(np.int64).max // 4)
            continue
        parts = sentencepiece_rules.split_digit_comma(sp_model, piece)
        sizes = [len(p.replace(tokenization.SPIECE_UNDERLINE, " ").encode("utf-8")) for p in parts]
        after = np.cumsum(sizes[::-1])[::-1]  # bytes from each part's start to the piece's end
        lengths.append(len(parts))
        ids.extend(sp_model.PieceToId(p) for p in parts)
        tail_begin.extend(int(a) for a in after)
        tail_end.extend(int(a) - s for a, s in zip(after, sizes))
    return (np.asarray(lengths, np.int64), np.asarray(ids, np.int32), np.asarray(tail_end, np.int64),
            np.asarray(tail_begin, np.int64))


def _row_starts(splits: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """bool [size]: whether each flat position is the first of its row (row splits int64 [R+1])."""
    return tf.reduce_any(tf.equal(tf.range(size)[:, tf.newaxis], splits[tf.newaxis, :-1]), axis=1)


def _cumsum_in_rows(values: tf.Tensor, splits: tf.Tensor) -> tf.Tensor:
    """Inclusive cumulative sums of flat int64 ``values`` restarting at each row (row splits [R+1])."""
    total = tf.cumsum(values)
    at_row_start = tf.gather(tf.concat([[0], total], 0), splits[:-1])
    row_ids = tf.ragged.row_splits_to_segment_ids(splits, out_type=tf.int64)
    return total - tf.gather(at_row_start, row_ids)


class ContextPieces:
    """Raw contexts -> the ids of their pieces and each piece's first and last raw character, in-graph.

    The ids equal `InGraphTokenizer`'s (so those of ``encode_ids(sp, preprocess_text(context))``); see
    the module docstring for how the offsets are found.

    Args:
      tokenizer: the `InGraphTokenizer` of the model's SentencePiece model and casing.
    """

    def __init__(self, tokenizer: tokenization.InGraphTokenizer):
        self.tokenizer = tokenizer
        proto = tokenizer.spm_model_proto
        self._fast = tf_text.FastSentencepieceTokenizer(proto)
        self.offset_tokenizer = tf_text.SentencepieceTokenizer(proto)
        sp_model = tokenizer.sp_model
        self._surface_bytes = np.asarray(
            [len(sp_model.IdToPiece(i).replace(tokenization.SPIECE_UNDERLINE, " ").encode("utf-8"))
             for i in range(sp_model.GetPieceSize())], np.int64)
        self._comma_table = _comma_rule_table(sp_model)
        self._space_class = sentencepiece_rules.regex_classes()[0]

    def _segment(self, normalized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """Normalised texts [B] -> (row splits [B+1], ids [P] int32, begin, end [P] int64 byte offsets)."""
        fast = self._fast.tokenize(normalized).with_row_splits_dtype(tf.int64)
        ids, begins, ends = self.offset_tokenizer.tokenize_with_offsets(normalized)
        splits = ids.with_row_splits_dtype(tf.int64).row_splits
        old_ids = tf.cast(ids.flat_values, tf.int32)
        old_begin = tf.cast(begins.flat_values, tf.int64)
        old_end = tf.cast(ends.flat_values, tf.int64)

        def fast_ids_with_offsets() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            # A run of positions where the segmentations differ covers the same bytes in both; the fast
            # pieces' ranges are rebuilt backwards from the run's end by their text lengths (the first
            # piece of a text has no byte for its "▁", so the run's start is the weaker anchor).
            new_ids = tf.cast(fast.flat_values, tf.int32)
            differs = tf.not_equal(new_ids, old_ids)
            size = tf.size(differs, out_type=tf.int64)
            previous = tf.concat([[False], differs[:-1]], 0) & ~_row_starts(splits, size)
            run_of = tf.cumsum(tf.cast(differs & ~previous, tf.int64)) - 1
            positions = tf.boolean_mask(tf.range(size), differs)
            runs = tf.boolean_mask(run_of, differs)
            run_last = tf.gather(tf.math.segment_max(positions, runs), runs)
            run_first = tf.gather(tf.math.segment_min(positions, runs), runs)
            sizes = tf.where(differs, tf.gather(self._surface_bytes, new_ids), tf.zeros_like(old_begin))
            upto = tf.cumsum(sizes)
            end = tf.gather(old_end, run_last) - (tf.gather(upto, run_last) - tf.gather(upto, positions))
            begin = tf.maximum(end - tf.gather(sizes, positions), tf.gather(old_begin, run_first))
            index = positions[:, tf.newaxis]
            return (new_ids, tf.tensor_scatter_nd_update(old_begin, index, begin),
                    tf.tensor_scatter_nd_update(old_end, index, end))

        same_counts = tf.reduce_all(tf.equal(fast.row_splits, splits))
        new_ids, begin, end = tf.cond(same_counts, fast_ids_with_offsets, lambda: (old_ids, old_begin, old_end))
        return splits, new_ids, begin, end

    def _apply_comma_rule(self, splits: tf.Tensor, ids: tf.Tensor, begin: tf.Tensor,
                          end: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor, tf.Tensor]:
        """Expands "digits," pieces as `InGraphTokenizer` does, cutting their byte ranges (step 3)."""
        lengths, values, tail_end, tail_begin = (tf.constant(t) for t in self._comma_table)
        counts = tf.gather(lengths, ids)  # result pieces per piece
        result_splits = tf.concat([[0], tf.cumsum(counts)], 0)
        piece = tf.ragged.row_splits_to_segment_ids(result_splits, out_type=tf.int64)
        table_index = (tf.gather(tf.cumsum(lengths, exclusive=True), tf.gather(ids, piece))
                       + tf.range(tf.size(piece, out_type=tf.int64)) - tf.gather(result_splits, piece))
        piece_end = tf.gather(end, piece)
        new_end = piece_end - tf.gather(tail_end, table_index)
        new_begin = tf.maximum(piece_end - tf.gather(tail_begin, table_index), tf.gather(begin, piece))
        pieces = tf.RaggedTensor.from_row_splits(tf.gather(values, table_index), tf.gather(result_splits, splits),
                                                 validate=False)
        return pieces, new_begin, new_end

    def __call__(self, contexts: tf.Tensor) -> dict[str, tf.RaggedTensor]:
        """Raw contexts, string [B] ->

        ``ids``: ragged int32 [B, (P)], the context's piece ids;
        ``first_char``, ``last_char``: ragged int64 [B, (P)], each piece's first and last raw character
          (code point indices; for a piece without bytes the last precedes the first);
        ``is_space``: ragged bool [B, (N)], ``str.isspace`` of each raw character.
        """
        chars = tf.strings.unicode_split(contexts, "UTF-8").with_row_splits_dtype(tf.int64)
        char_splits = chars.row_splits
        size = tf.size(chars.flat_values, out_type=tf.int64)
        is_space = tf.strings.regex_full_match(chars.flat_values, f"[{self._space_class}]")
        # Per raw character, the bytes it becomes in the normalised text (module docstring, step 1).
        alone = tf.cast(tf.strings.length(self.tokenizer.preprocess(chars.flat_values)), tf.int64)
        solid = tf.cast(~is_space, tf.int64)
        solid_upto = _cumsum_in_rows(solid, char_splits)
        row_ids = tf.ragged.row_splits_to_segment_ids(char_splits, out_type=tf.int64)
        solid_total = tf.gather(tf.math.unsorted_segment_sum(solid, row_ids, tf.size(char_splits) - 1), row_ids)
        previous_space = tf.concat([[True], is_space[:-1]], 0) | _row_starts(char_splits, size)
        opens_gap = is_space & ~previous_space & (solid_upto > 0) & (solid_upto < solid_total)
        sizes = tf.where(is_space, tf.cast(opens_gap, tf.int64), alone)
        char_ends = tf.RaggedTensor.from_row_splits(_cumsum_in_rows(sizes, char_splits), char_splits)

        splits, ids, begin, end = self._segment(self.tokenizer.preprocess(contexts))
        pieces, begin, end = self._apply_comma_rule(splits, ids, begin, end)
        # A byte offset lies in the raw character numbered by how many characters end at or before it.
        dense_ends = char_ends.to_tensor(np.iinfo(np.int64).max)
        last_index = tf.maximum(chars.row_lengths() - 1, 0)[:, tf.newaxis]

        def to_char(offsets: tf.Tensor) -> tf.RaggedTensor:
            dense = pieces.with_flat_values(offsets).to_tensor(0)
            found = tf.minimum(tf.searchsorted(dense_ends, dense, side="right", out_type=tf.int64), last_index)
            return tf.RaggedTensor.from_tensor(found, lengths=pieces.row_lengths()).with_row_splits_dtype(tf.int64)

        return {"ids": pieces, "first_char": to_char(begin), "last_char": to_char(end - 1),
                "is_space": chars.with_flat_values(is_space)}


# ----------------------------------------------------------------------------------------------
# Windows, max context and decoding, as the Python features and post-processing
# ----------------------------------------------------------------------------------------------

def doc_windows(num_pieces: tf.Tensor, query_lengths: tf.Tensor, seq_length: int,
                doc_stride: int) -> dict[str, tf.Tensor]:
    """The doc spans of `albert_tf.tasks.squad.data.doc_spans` for a batch, in closed form.

    With ``M = seq_length - len(query) - 3`` pieces per window and ``a = min(M, doc_stride)``, an
    example of L > 0 pieces has windows starting at ``k * a`` for ``k = 0 .. ceil(max(L - M, 0) / a)``,
    each ``min(L - start, M)`` long; an empty context has none.

    Args:
      num_pieces: L per example, int64 [B].
      query_lengths: question pieces per example (after truncation), int64 [B].

    Returns:
      int64 tensors over all windows W, in example order: ``example`` [W], ``index`` (k) [W], ``start``
      [W], ``length`` [W], ``doc_offset`` (sequence position of the first doc piece) [W], and
      ``count`` [B] (windows per example).
    """
    per_window = seq_length - query_lengths - 3
    advance = tf.minimum(per_window, doc_stride)
    extra = tf.where(num_pieces > per_window, (num_pieces - per_window + advance - 1) // advance, 0)
    count = tf.where(num_pieces > 0, extra + 1, 0)
    index = tf.ragged.range(count).flat_values
    example = tf.repeat(tf.range(tf.size(count, out_type=tf.int64)), count)
    start = index * tf.gather(advance, example)
    length = tf.minimum(tf.gather(num_pieces, example) - start, tf.gather(per_window, example))
    return {"example": example, "index": index, "start": start, "length": length,
            "doc_offset": tf.gather(query_lengths, example) + 2, "count": count}


def max_context(windows: dict[str, tf.Tensor], seq_length: int) -> tf.Tensor:
    """bool [W, S]: sequence positions holding a doc piece whose maximal context is this window.

    As `albert_tf.tasks.squad.data.max_context_span`: the piece at ``p`` scores ``min(p - start, end - p) +
    0.01 * length`` in every window holding it (float64, the Python arithmetic), and the first window
    with the highest score wins.
    """
    count = windows["count"]
    spans = [tf.RaggedTensor.from_row_lengths(windows[k], count).to_tensor(-1) for k in ("start", "length")]
    starts, lengths = (tf.gather(s, windows["example"])[:, tf.newaxis, :] for s in spans)  # [W, 1, K]
    position = tf.range(seq_length, dtype=tf.int64)[tf.newaxis, :]
    piece = (windows["start"][:, tf.newaxis] + position - windows["doc_offset"][:, tf.newaxis])[:, :, tf.newaxis]
    inside = (piece >= starts) & (piece < starts + lengths) & (lengths > 0)
    score = (tf.cast(tf.minimum(piece - starts, starts + lengths - 1 - piece), tf.float64)
             + 0.01 * tf.cast(lengths, tf.float64))
    score = tf.where(inside, score, -np.inf)
    best = tf.reduce_max(score, axis=2, keepdims=True)
    k = tf.range(tf.shape(score, out_type=tf.int64)[2])
    first_best = tf.reduce_min(tf.where((score == best) & inside, k, tf.int64.max), axis=2)
    in_doc = (position >= windows["doc_offset"][:, tf.newaxis]) & (
        position < (windows["doc_offset"] + windows["length"])[:, tf.newaxis])
    return in_doc & tf.equal(first_best, windows["index"][:, tf.newaxis])


def window_inputs(query_ids: tf.RaggedTensor, doc_ids: tf.RaggedTensor, windows: dict[str, tf.Tensor],
                  seq_length: int, cls_id: int, sep_id: int) -> dict[str, tf.Tensor]:
    """``[CLS] query [SEP] doc[start:start+length] [SEP]`` zero-padded, per window, as the Python features.

    Returns:
      int32 [W, S]: ``input_word_ids``, ``input_mask``, ``input_type_ids`` (1 on the doc pieces and the
      last [SEP]) and ``p_mask`` (0 on [CLS] and the doc pieces, 1 elsewhere).
    """
    example = windows["example"]
    queries = tf.gather(tf.pad(tf.cast(query_ids.to_tensor(0), tf.int64), [[0, 0], [0, 1]]), example)
    docs = tf.gather(tf.pad(tf.cast(doc_ids.to_tensor(0), tf.int64), [[0, 0], [0, 1]]), example)
    column = tf.range(seq_length, dtype=tf.int64)[tf.newaxis, :]
    offset = windows["doc_offset"][:, tf.newaxis]
    doc_end = offset + windows["length"][:, tf.newaxis]  # position of the last [SEP]

    def take(rows: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        index = tf.clip_by_value(index, 0, tf.shape(rows, out_type=tf.int64)[1] - 1)
        return tf.gather(rows, tf.broadcast_to(index, [tf.shape(rows, out_type=tf.int64)[0], seq_length]),
                         batch_dims=1)

    in_query = (column >= 1) & (column < offset - 1)
    in_doc = (column >= offset) & (column < doc_end)
    is_sep = (column == offset - 1) | (column == doc_end)
    word_ids = tf.where(in_query, take(queries, column - 1), 0)
    word_ids = tf.where(in_doc, take(docs, windows["start"][:, tf.newaxis] + column - offset), word_ids)
    word_ids = tf.where(is_sep, tf.constant(sep_id, tf.int64), word_ids)
    word_ids = tf.where(column == 0, tf.constant(cls_id, tf.int64), word_ids)
    return {"input_word_ids": tf.cast(word_ids, tf.int32),
            "input_mask": tf.cast(column <= doc_end, tf.int32),
            "input_type_ids": tf.cast((column >= offset) & (column <= doc_end), tf.int32),
            "p_mask": tf.cast(~((column == 0) | in_doc), tf.int32)}


def _best_per_example(score: tf.Tensor, valid: tf.Tensor, count: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The best valid candidate of each example, the first one in (window, candidate) order on ties.

    Args:
      score: float64 [W, C]; valid: bool [W, C]; count: windows per example, int64 [B].

    Returns:
      (found bool [B], window int64 [B] (global window index), candidate int64 [B]); 0 where not found.
    """
    candidates = tf.shape(score, out_type=tf.int64)[1]
    flat = tf.RaggedTensor.from_row_lengths(tf.reshape(tf.where(valid, score, -np.inf), [-1]), count * candidates)
    dense = flat.to_tensor(-np.inf)
    found = tf.reduce_any(tf.RaggedTensor.from_row_lengths(tf.reshape(valid, [-1]), count * candidates)
                          .to_tensor(False), axis=1)
    best = tf.reduce_max(dense, axis=1, keepdims=True)
    position = tf.range(tf.shape(dense, out_type=tf.int64)[1])
    first = tf.reduce_min(tf.where(dense == best, position, tf.int64.max), axis=1)
    first = tf.where(found, first, 0)
    flat_index = tf.where(found, flat.row_splits[:-1] + first, 0)
    return found, flat_index // candidates, flat_index % candidates


def _padded(values: tf.Tensor) -> tf.Tensor:
    """``values`` with one zero row appended, so that index 0 exists when there are no windows."""
    return tf.pad(values, [[0, 1]] + [[0, 0]] * (values.shape.rank - 1))


class SquadTextServing(serving.ModelServing):
    """Raw-text extractive QA: ``serving_default(question, context)``, string [B] each.

    The graph builds the features of ``convert_examples_to_features`` (question ids cut to
    ``max_query_length``, doc spans of ``max_seq_length - len(question) - 3`` pieces every
    ``doc_stride``, ``[CLS] question [SEP] span [SEP]``), runs the model on all windows of the batch and
    decodes as ``albert_tf.tasks.squad.postprocess``: v1.1 pairs the ``n_best_size`` best starts and ends of
    each window (over all positions), v2.0 the model's k*k' beam pairs; a pair is dropped when its start
    is not a max-context doc position of its window (v2.0: or lies in the question), its end is past the
    window's doc pieces or before the start, or it is longer than ``max_answer_length`` pieces; the
    highest start + end score over all windows wins (ties: first window, then candidate order).

    Outputs, [B] each:
      ``answer_text`` (string): ``context[first_char:last_char + 1].strip()`` of the best span; v1.1
        without any valid span "empty" (as the original), v2.0 "" then or when it does not answer;
      ``answer_start``, ``answer_end`` (int32): the answer's code point offsets in ``context``, end
        exclusive (``context[answer_start:answer_end] == answer_text``); -1 when no span is returned;
      ``score`` (float32): start + end logit (v1.1; 0.0 for "empty") or log-prob (v2.0; -2e6 without a
        valid span) of the best span;
      v2.0 also ``null_score`` (float32): the minimum ``cls_logits`` over the windows (1e6 without
        any), and ``has_answer`` (bool): a span was found and, when ``null_score_diff_threshold`` is
        set, ``null_score < threshold``.
    ``tokenization_info()`` returns the SentencePiece model asset and the casing.

    Args:
      model: `AlbertQuestionAnswering` (v1.1) or `AlbertSquadV2` (v2.0).
      squad_version: "v1.1" or "v2.0".
      spm_model_file: the SentencePiece model the model was fine-tuned with (stored as an asset).
      do_lower_case: the fine-tuning casing.
      max_seq_length, doc_stride, max_query_length, n_best_size, max_answer_length: the feature and
        post-processing settings.
      null_score_diff_threshold: v2.0: answer only when the null score is below it (None: always the
        best non-null span, as the original without a threshold).
    """

    def __init__(self, model: keras.Model, squad_version: str, spm_model_file: str, do_lower_case: bool,
                 max_seq_length: int, doc_stride: int, max_query_length: int, n_best_size: int,
                 max_answer_length: int, null_score_diff_threshold: Optional[float]):
        super().__init__(model, lambda outputs: raw_outputs(squad_version, outputs), None,
                         name="squad_text_serving")
        self.squad_version = squad_version
        tokenizer = tokenization.InGraphTokenizer(spm_model_file, do_lower_case)
        # The layer and the model bytes are constants of the traced graph (not tracked, as the model);
        # the offset tokenizer's SentencePiece resource must be tracked to be saved.
        self._tokenize = tokenizer.__call__
        self._pieces = ContextPieces(tokenizer)
        self.offset_tokenizer = self._pieces.offset_tokenizer
        self._cls_id = tokenizer.token_id("[CLS]")
        self._sep_id = tokenizer.token_id("[SEP]")
        self._settings = dict(max_seq_length=max_seq_length, doc_stride=doc_stride,
                              max_query_length=max_query_length, n_best_size=n_best_size,
                              max_answer_length=max_answer_length)
        self._threshold_value = null_score_diff_threshold
        self._info = attach_spm_asset(self, spm_model_file, do_lower_case)

    def _candidates(self, raw: dict[str, tf.Tensor], windows: dict[str, tf.Tensor],
                    is_max_context: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """(score float64 [W, C], valid [W, C], start position [W, C], end position [W, C]) of every pair."""
        if self.squad_version == V1:
            n = min(self._settings["n_best_size"], self._settings["max_seq_length"])
            start_score, start = tf.math.top_k(raw["start_logits"], n)
            end_score, end = tf.math.top_k(raw["end_logits"], n)
            # Candidate i * n + j pairs the i-th best start with the j-th best end.
            start, end = tf.repeat(start, n, axis=1), tf.tile(end, [1, n])
            start_score, end_score = tf.repeat(start_score, n, axis=1), tf.tile(end_score, [1, n])
        else:
            end_n_top = tf.shape(raw["end_top_index"])[1] // tf.shape(raw["start_top_index"])[1]
            start = tf.repeat(raw["start_top_index"], end_n_top, axis=1)
            end = raw["end_top_index"]
            start_score, end_score = tf.repeat(raw["start_top_log_probs"], end_n_top, axis=1), raw["end_top_log_probs"]
        # Summed in float64, as the Python post-processing ranks them.
        score = tf.cast(start_score, tf.float64) + tf.cast(end_score, tf.float64)
        start, end = tf.cast(start, tf.int64), tf.cast(end, tf.int64)
        offset = windows["doc_offset"][:, tf.newaxis]
        valid = (tf.gather(is_max_context, start, batch_dims=1) & (start >= offset) & (end >= start)
                 & (end - offset < windows["length"][:, tf.newaxis])
                 & (end - start + 1 <= self._settings["max_answer_length"]))
        return score, valid, start, end

    def serve(self, question: tf.Tensor, context: tf.Tensor) -> dict[str, tf.Tensor]:
        """Questions and contexts, string [B] each -> the answers (see the class docstring)."""
        settings = self._settings
        seq_length = settings["max_seq_length"]
        query_ids = self._tokenize(question)[:, :settings["max_query_length"]].with_row_splits_dtype(tf.int64)
        pieces = self._pieces(context)
        doc_ids = pieces["ids"]
        windows = doc_windows(doc_ids.row_lengths(), query_ids.row_lengths(), seq_length, settings["doc_stride"])
        inputs = window_inputs(query_ids, doc_ids, windows, seq_length, self._cls_id, self._sep_id)
        if self.squad_version == V1:
            inputs.pop("p_mask")
        raw = self._outputs_fn(self._call_model(inputs, training=False))
        score, valid, start, end = self._candidates(raw, windows, max_context(windows, seq_length))
        found, window, candidate = _best_per_example(score, valid, windows["count"])

        def pick(values: tf.Tensor) -> tf.Tensor:
            return tf.gather_nd(_padded(values), tf.stack([window, candidate], axis=1))

        # The best pair's pieces -> raw characters -> the stripped answer.
        to_piece = tf.gather(_padded(windows["start"] - windows["doc_offset"]), window)
        row_start = doc_ids.row_splits[:-1]
        first_piece = tf.where(found, row_start + pick(start) + to_piece, 0)
        last_piece = tf.where(found, row_start + pick(end) + to_piece, 0)
        first_char = tf.where(found, tf.gather(_padded(pieces["first_char"].flat_values), first_piece), 0)
        last_char = tf.where(found, tf.gather(_padded(pieces["last_char"].flat_values), last_piece), -1)
        best_score = tf.cast(pick(score), tf.float32)
        is_space = pieces["is_space"].to_tensor(True)
        position = tf.range(tf.shape(is_space, out_type=tf.int64)[1])[tf.newaxis, :]
        kept = (position >= first_char[:, tf.newaxis]) & (position <= last_char[:, tf.newaxis]) & ~is_space
        begin = tf.reduce_min(tf.where(kept, position, tf.int64.max), axis=1)
        end = tf.reduce_max(tf.where(kept, position, -1), axis=1) + 1
        empty = begin == tf.int64.max
        begin = tf.where(empty, first_char, begin)
        end = tf.where(empty, first_char, end)
        text = tf.strings.substr(context, tf.cast(begin, tf.int32), tf.cast(end - begin, tf.int32),
                                 unit="UTF8_CHAR")
        if self.squad_version == V1:
            answered = found
            text = tf.where(found, text, "empty")
            best_score = tf.where(found, best_score, 0.0)
            extra = {}
        else:
            null = tf.RaggedTensor.from_row_lengths(raw["cls_logits"], windows["count"]).to_tensor(_NULL_SCORE_INIT)
            null = tf.minimum(tf.reduce_min(null, axis=1), _NULL_SCORE_INIT)
            answered = found
            if self._threshold_value is not None:
                answered &= null < self._threshold_value
            best_score = tf.where(found, best_score, 2 * _V2_NO_ANSWER_SCORE)
            text = tf.where(answered, text, "")
            extra = {"null_score": null, "has_answer": answered}
        return {"answer_text": text,
                "answer_start": tf.cast(tf.where(answered, begin, -1), tf.int32),
                "answer_end": tf.cast(tf.where(answered, end, -1), tf.int32),
                "score": best_score, **extra}

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """The concrete functions to save, by signature key."""
        specs = [tf.TensorSpec([None], tf.string, name=name) for name in ("question", "context")]
        serve = tf.function(self.serve, autograph=False).get_concrete_function(*specs)
        return {"serving_default": serve, TOKENIZATION_INFO: self._info}


# ----------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------

def _check_export_settings(model: keras.Model, squad_version: str, max_seq_length: int,
                           max_query_length: int, doc_stride: int, spm_model_file: Optional[str],
                           n_best_size: int, max_answer_length: int, tflite: bool) -> None:
    """Raises a ValueError / FileNotFoundError naming the setting before anything is traced."""
    if squad_version not in VERSIONS:
        raise ValueError(f"squad_version={squad_version!r}: use {' or '.join(VERSIONS)}.")
    # The v2.0 model (`AlbertSquadV2`) has a beam (`start_n_top`); the v1.1 one does not.
    if hasattr(model, "start_n_top") != (squad_version == V2):
        kind = "AlbertSquadV2" if squad_version == V2 else "AlbertQuestionAnswering"
        raise ValueError(f"squad_version={squad_version} exports a {kind} model, got {type(model).__name__}; "
                         "pass the model fine-tuned for that version.")
    config = getattr(model, "config", None)
    if config is not None and max_seq_length > config.max_position_embeddings:
        raise ValueError(f"max_seq_length={max_seq_length} exceeds the model's max_position_embeddings "
                         f"({config.max_position_embeddings}); use the --max_seq_length it was fine-tuned with.")
    if max_seq_length <= max_query_length + 3:
        raise ValueError(f"max_seq_length ({max_seq_length}) must exceed max_query_length ({max_query_length}) "
                         "+ 3 so that every window holds context pieces.")
    if squad_version == V2 and max_seq_length < max(model.start_n_top, model.end_n_top):
        raise ValueError(f"max_seq_length ({max_seq_length}) must be at least start_n_top / end_n_top "
                         f"({model.start_n_top} / {model.end_n_top}).")
    for name, value in (("doc_stride", doc_stride), ("max_query_length", max_query_length),
                        ("n_best_size", n_best_size), ("max_answer_length", max_answer_length)):
        if value < 1:
            raise ValueError(f"{name}={value} must be positive.")
    if tflite and squad_version != V1:
        raise ValueError("tflite=True: the original converts only the SQuAD v1.1 model to TFLite; export v2.0 "
                         "without it.")
    if spm_model_file is not None and (not tf.io.gfile.exists(spm_model_file) or tf.io.gfile.isdir(spm_model_file)):
        raise FileNotFoundError(f"--spm_model_file {spm_model_file} not found; pass the SentencePiece .model the "
                                "model was fine-tuned with (or None to skip the raw-text SavedModel).")


def convert_to_tflite(module: SquadFeatureServing, path: str) -> str:
    """Writes the v1.1 model as TFLite: inputs ``input_word_ids``, ``input_mask``, ``input_type_ids``
    int32 [1, S]; outputs ``start_logits``, ``end_logits`` float32 [1, S] (the original's conversion
    of its serving graph), converted quietly by `albert_tf.export.tflite`. Returns ``path``."""
    data = tflite.convert(module.concrete_function(batch_size=1), module)
    tflite.write(data, path)
    logging.info("Wrote the TFLite model %s (%d bytes)", path, len(data))
    return path


def export_squad(model: keras.Model, export_dir: str, *, squad_version: str, max_seq_length: int,
                 max_query_length: int = 64, doc_stride: int = 128, spm_model_file: Optional[str] = None,
                 do_lower_case: bool = True, n_best_size: int = 20, max_answer_length: int = 30,
                 null_score_diff_threshold: Optional[float] = None, tflite: bool = False) -> dict[str, str]:
    """Exports a fine-tuned SQuAD model (see the module docstring for what each file serves).

    Args:
      model: `AlbertQuestionAnswering` (v1.1) or `AlbertSquadV2` (v2.0), with its fine-tuned weights.
      export_dir: the original's ``--export_dir``; created if missing.
      squad_version: "v1.1" or "v2.0".
      max_seq_length, max_query_length, doc_stride: the feature settings of fine-tuning (S, 64, 128).
      spm_model_file: the SentencePiece model; when given, the raw-text SavedModel is written too.
      do_lower_case: the casing of fine-tuning (raw-text SavedModel).
      n_best_size, max_answer_length: post-processing settings (raw-text SavedModel; 20, 30).
      null_score_diff_threshold: v2.0 raw-text SavedModel: answer only when the null score is below it.
      tflite: also write ``export_dir/albert_model.tflite`` (v1.1 only, as the original).

    Returns:
      {"saved_model": the raw-output SavedModel directory, "text_saved_model": the raw-text one (with
      ``spm_model_file``), "tflite": the TFLite file (with ``tflite``)}.

    Raises:
      ValueError, FileNotFoundError: an unknown version, a model of the other version, inconsistent
        lengths, tflite for v2.0, or a missing SentencePiece model; before anything is written.
    """
    _check_export_settings(model, squad_version, max_seq_length, max_query_length, doc_stride, spm_model_file,
                           n_best_size, max_answer_length, tflite)
    features = SquadFeatureServing(model, squad_version, max_seq_length)
    modules: dict[str, serving.ModelServing] = {serving.EXAMPLES: features}
    if spm_model_file is not None:
        modules[serving.TEXT] = SquadTextServing(
            model, squad_version, spm_model_file, do_lower_case, max_seq_length, doc_stride, max_query_length,
            n_best_size, max_answer_length, null_score_diff_threshold)
    paths = serving.export_saved_models(modules, os.path.join(export_dir, SAVED_MODEL_DIR))
    result = {"saved_model": paths[serving.EXAMPLES]}
    if spm_model_file is not None:
        result["text_saved_model"] = paths[serving.TEXT]
    if tflite:
        result["tflite"] = convert_to_tflite(features, os.path.join(export_dir, TFLITE_FILE))
    return result
