"""SQuAD v1.1 / v2.0 examples, features and TFRecords, as the original ``squad_utils.py`` builds them.

1. `read_squad_examples` reads a SQuAD JSON file into one `SquadExample` per question.
2. `convert_examples_to_features` encodes the question (``encode_ids`` of the preprocessed text, cut
   to ``max_query_length`` ids) and the paragraph (``encode_pieces``), maps every paragraph piece
   back to characters of the raw context (`align_paragraph`: a banded LCS between the raw text and
   the concatenated pieces), cuts the pieces into overlapping doc spans and yields one
   `SquadFeature` per span: ``[CLS] question [SEP] span [SEP]`` zero-padded to ``max_seq_length``,
   with segment ids, ``p_mask``, max-context flags and, when training, the answer's positions
   (0/0 and ``is_impossible`` when the answer is not wholly inside the span). An example whose
   paragraph cannot be aligned is dropped with a warning, as the original does. Chunks of consecutive
   examples are converted by forked workers (``num_workers``); ids are numbered in order afterwards, so
   the output does not depend on the number of workers.
3. `write_squad_features` writes the features as TFRecords in document order (``unique_ids``,
   ``input_ids``, ``input_mask``, ``segment_ids``, ``p_mask`` int64, plus ``start_positions``,
   ``end_positions``, ``is_impossible`` when training) and, for evaluation, a JSON side file
   (`eval_features_path`) with what post-processing needs; `load_eval_features` reads it back.
   `feature_fingerprint` is what a cached feature file is built from (`albert_tf.data.cache`).
4. `squad_dataset` reads the TFRecords as batches of model inputs.

Only the SentencePiece tokenizer is supported, as in the original.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

import tensorflow as tf
from absl import logging

from albert_tf import tokenization
from albert_tf.tasks.squad import evaluate as squad_eval
from albert_tf.data import cache, parallel, records

FIRST_UNIQUE_ID = 1000000000
# Examples per task of the parallel conversion (cut at the next paragraph change).
EXAMPLES_PER_CHUNK = 256
_R = TypeVar("_R")
_SIDE_FORMAT = "albert_tf.squad.eval_features"
_SIDE_FORMAT_VERSION = 1

# Backtracking moves of the LCS table (the original's g values); _UNSET marks cells it never set.
_UP, _LEFT, _DIAG, _UNSET = 0, 1, 2, 255


class SquadDataError(ValueError):
    """A malformed SQuAD file; the message names the file, the question and the fix."""


@dataclasses.dataclass(frozen=True)
class SquadExample:
    """One question about one paragraph.

    Attributes:
      qas_id: the question id (predictions are keyed by it).
      question_text: the raw question.
      paragraph_text: the raw context string.
      orig_answer_text: training only: the answer text ("" when impossible), else None.
      start_position: training only: the answer's character offset in ``paragraph_text``
        (-1 when impossible), else None.
      is_impossible: training only: the question has no answer (SQuAD v2.0).
    """
    qas_id: str
    question_text: str
    paragraph_text: str
    orig_answer_text: str | None = None
    start_position: int | None = None
    is_impossible: bool = False


@dataclasses.dataclass(frozen=True)
class SquadFeatureInfo:
    """What post-processing needs to turn one feature's logits back into answer text.

    Attributes:
      unique_id: the feature's id (``unique_ids`` in the TFRecord), counting from 1000000000.
      example_index: index of its example in the full example list (dropped examples included);
        set for training features too, where the original leaves it None (unused there).
      doc_span_index: which span of the example's paragraph this is (0, 1, ...).
      doc_offset: sequence position of the first paragraph piece (``len(question ids) + 2``).
      doc_start: index of the span's first piece among the paragraph's pieces.
      tok_start_to_orig_index, tok_end_to_orig_index: for each paragraph piece of the span, the
        character offsets in ``paragraph_text`` of its first and last character; the answer
        between pieces s and e is ``paragraph_text[start[s]:end[e] + 1].strip()``.
      token_is_max_context: {sequence position: whether this span gives that paragraph piece its
        maximal context} for the span's paragraph pieces.
    """
    unique_id: int
    example_index: int
    doc_span_index: int
    doc_offset: int
    doc_start: int
    tok_start_to_orig_index: list[int]
    tok_end_to_orig_index: list[int]
    token_is_max_context: dict[int, bool]


@dataclasses.dataclass(frozen=True)
class SquadFeature:
    """One doc span of one example, encoded for the model.

    Attributes:
      info: the post-processing side information.
      input_ids, input_mask, segment_ids, p_mask: int lists of length ``max_seq_length``; ``p_mask``
        is 1 where no answer may start or end (question, both ``[SEP]``, padding), 0 for ``[CLS]``
        and the paragraph pieces.
      start_position, end_position: training only: the answer's sequence positions (0/0 when the
        span holds no answer), else None.
      is_impossible: training only: the span holds no answer.
    """
    info: SquadFeatureInfo
    input_ids: list[int]
    input_mask: list[int]
    segment_ids: list[int]
    p_mask: list[int]
    start_position: int | None = None
    end_position: int | None = None
    is_impossible: bool = False


# ----------------------------------------------------------------------------------------------
# Reading SQuAD files
# ----------------------------------------------------------------------------------------------

def load_squad_json(input_file: str) -> list[Mapping[str, Any]]:
    """Reads a SQuAD file and returns its article list (the ``"data"`` entry). A run reads each file once,
    through `SquadFile`.

    Raises:
      FileNotFoundError: the file does not exist.
      SquadDataError: not UTF-8 JSON, or no ``"data"`` list at the top level.
    """
    if not tf.io.gfile.exists(input_file):
        raise FileNotFoundError(f"SQuAD file not found: {input_file!r}. Pass the train/dev JSON "
                                "file (e.g. dev-v1.1.json) with --input_file.")
    try:
        document = squad_eval.load_json(input_file, "a SQuAD file")
    except squad_eval.SquadEvalError as e:
        raise SquadDataError(f"{e} Pass an unmodified SQuAD file.") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise SquadDataError(f"{input_file}: expected a JSON object with a \"data\" list of "
                             "articles, as in the SQuAD release.")
    return document["data"]


_JSON_NAMES = {list: "an array", str: "a string", int: "an integer", dict: "an object"}


def _field(container: Any, key: str, kind: type, where: str) -> Any:
    """``container[key]``, checked to be of type ``kind``; errors say ``where`` it is missing."""
    value = container.get(key) if isinstance(container, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        found = "missing" if value is None else f"{type(value).__name__} {value!r}"[:60]
        raise SquadDataError(f"{where}: \"{key}\" must be {_JSON_NAMES[kind]}, found {found}. "
                             "Check that the file follows the SQuAD format.")
    return value


def resolve_version(input_file: str, requested: str | None = None,
                    articles: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The SQuAD version of a file: ``requested``, checked, or else detected ("v2.0" when any
    question has ``"is_impossible": true``, else "v1.1"). ``articles``: the file's parsed article list, when
    the caller has it (else the file is read).

    Raises:
      SquadDataError: ``requested`` is unknown, or "v1.1" for a file with unanswerable questions.
    """
    if requested not in (None, *squad_eval.VERSIONS):
        raise SquadDataError(f"Unknown SQuAD version {requested!r}; use "
                             f"{' or '.join(squad_eval.VERSIONS)}.")
    try:
        detected = squad_eval.detect_version(load_squad_json(input_file) if articles is None else articles,
                                             input_file)
    except squad_eval.SquadEvalError as e:
        raise SquadDataError(str(e)) from None
    if requested == squad_eval.V1 and detected == squad_eval.V2:
        raise SquadDataError(f"{input_file} has unanswerable questions (\"is_impossible\": true), so "
                             f"it is SQuAD {squad_eval.V2}; pass --squad_version={squad_eval.V2}.")
    return requested or detected


def read_squad_examples(input_file: str, is_training: bool,
                        articles: Sequence[Mapping[str, Any]] | None = None) -> list[SquadExample]:
    """Reads every question of a SQuAD v1.1 / v2.0 file, in file order.

    Args:
      input_file: the SQuAD JSON file.
      articles: its parsed article list, when the caller has it (else the file is read).
      is_training: also read the answer: exactly one per question unless ``"is_impossible"`` is
        true (then the answer is "" at -1). At prediction time answers are not read.

    Returns:
      One `SquadExample` per question.

    Raises:
      FileNotFoundError: the file does not exist.
      SquadDataError: malformed JSON, a missing key, or (training) a question without exactly one
        answer or with an answer outside its context, naming the file and the question id.
    """
    examples = []
    for a, article in enumerate(load_squad_json(input_file) if articles is None else articles):
        for p, paragraph in enumerate(_field(article, "paragraphs", list,
                                             f"{input_file}: article {a}")):
            where = f"{input_file}: article {a}, paragraph {p}"
            context = _field(paragraph, "context", str, where)
            for q, qa in enumerate(_field(paragraph, "qas", list, where)):
                qas_id = _field(qa, "id", str, f"{where}, question {q}")
                where_qa = f"{input_file}: question {qas_id!r}"
                question = _field(qa, "question", str, where_qa)
                if not is_training:
                    examples.append(SquadExample(qas_id, question, context))
                    continue
                is_impossible = bool(qa.get("is_impossible", False))
                answers = _field(qa, "answers", list, where_qa)
                if is_impossible:
                    examples.append(SquadExample(qas_id, question, context, "", -1, True))
                    continue
                if len(answers) != 1:
                    raise SquadDataError(
                        f"{where_qa}: for training each question needs exactly 1 answer, found "
                        f"{len(answers)}. Train on a training file (dev files list several answers) "
                        "or mark unanswerable questions with \"is_impossible\": true.")
                text = _field(answers[0], "text", str, f"{where_qa}, answer")
                start = _field(answers[0], "answer_start", int, f"{where_qa}, answer")
                if not text or start < 0 or start + len(text) > len(context):
                    raise SquadDataError(
                        f"{where_qa}: the answer {text!r} at character {start} does not lie inside "
                        f"the {len(context)}-character context. Fix \"answer_start\"/\"text\".")
                examples.append(SquadExample(qas_id, question, context, text, start, False))
    return examples


class SquadFile:
    """One SQuAD JSON file, parsed once: its articles, its questions as examples, its version.

    A run holds one per input file (`albert_tf.tasks.squad.task.SquadTask`), so every consumer (the
    schedule, the version check, feature writing, post-processing, scoring) shares one parse.
    """

    def __init__(self, path: str):
        self.path = path
        self.articles = load_squad_json(path)
        self._examples: dict[bool, list[SquadExample]] = {}

    def examples(self, is_training: bool) -> list[SquadExample]:
        """`read_squad_examples` of the file (built once per mode; callers must not reorder the list)."""
        if is_training not in self._examples:
            self._examples[is_training] = read_squad_examples(self.path, is_training, self.articles)
        return self._examples[is_training]

    def version(self, requested: str | None = None) -> str:
        """`resolve_version` of the file."""
        return resolve_version(self.path, requested, self.articles)


# ----------------------------------------------------------------------------------------------
# Aligning SentencePiece pieces with the raw paragraph
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ParagraphAlignment:
    """A paragraph's pieces and their character positions in the raw text.

    Attributes:
      piece_ids: ids of the paragraph pieces.
      tok_start_to_orig_index, tok_end_to_orig_index: per piece, the raw-text offsets of its first
        and last character.
      chartok_to_tok_index: for each character of the concatenated pieces (``▁`` as a space), the
        piece it belongs to.
      orig_to_chartok_index: for each raw character, the aligned character of the concatenated
        pieces, or None.
    """
    piece_ids: list[int]
    tok_start_to_orig_index: list[int]
    tok_end_to_orig_index: list[int]
    chartok_to_tok_index: list[int]
    orig_to_chartok_index: list[int | None]


@functools.lru_cache(maxsize=65536)
def _normalized_char(char: str, lower: bool, keep_accents: bool = False) -> str:
    """``preprocess_text`` of one raw character (cached: the DP looks up every character)."""
    return tokenization.preprocess_text(char, remove_space=False, lower=lower, keep_accents=keep_accents)


def _banded_lcs(orig: Sequence[str], tok: str, max_dist: int) -> tuple[int, list[bytearray]]:
    """Longest common subsequence of ``orig`` and ``tok``, restricted to a diagonal band.

    Row i (a character of ``orig``) covers the columns ``j`` in ``[i - max_dist, i + max_dist)``;
    cells outside the band count as 0. ``orig[i]`` matches ``tok[j]`` when they are equal (``orig``
    holds already normalised characters). The tie-breaking of the original is kept, because the
    backtracking path decides the alignment: a cell takes "up" by default (except in row 0, where it
    takes nothing), "left" when strictly better, and "diagonal" on a match when strictly better
    than both.

    Returns:
      (LCS length ending at the last cell, per-row moves indexed by ``j - i + max_dist``).
    """
    n, m = len(orig), len(tok)
    width = 2 * max_dist
    prev = [0] * (width + 1)  # The extra cell reads as 0 for "up" past the band's right edge.
    moves: list[bytearray] = []
    for i in range(n):
        cur = [0] * (width + 1)
        row_moves = bytearray([_UNSET]) * width
        char = orig[i]
        default_move = _UNSET if i == 0 else _UP
        offset = max_dist - i
        left = 0
        for j in range(max(0, i - max_dist), min(m, i + max_dist)):
            k = j + offset
            best = prev[k + 1]
            move = default_move
            if left > best:
                best = left
                move = _LEFT
            # prev[k] is the diagonal neighbour; for j == 0 it is a never-written 0, as in the
            # original (whose diagonal term is 0 in the first column).
            if tok[j] == char and prev[k] + 1 > best:
                best = prev[k] + 1
                move = _DIAG
            cur[k] = best
            row_moves[k] = move
            left = best
        moves.append(row_moves)
        prev = cur
    return prev[(m - 1) - (n - 1) + max_dist], moves


def _backtrack(moves: list[bytearray], n: int, m: int,
               max_dist: int) -> tuple[list[int | None], list[int | None]]:
    """Follows the moves from the last cell; returns (orig -> tok char, tok char -> orig) maps."""
    orig_to_tok: list[int | None] = [None] * n
    tok_to_orig: list[int | None] = [None] * m
    i, j = n - 1, m - 1
    while i >= 0 and j >= 0:
        k = j - i + max_dist
        move = moves[i][k] if 0 <= k < 2 * max_dist else _UNSET
        if move == _DIAG:
            orig_to_tok[i] = j
            tok_to_orig[j] = i
            i, j = i - 1, j - 1
        elif move == _LEFT:
            j -= 1
        elif move == _UP:
            i -= 1
        else:
            break
    return orig_to_tok, tok_to_orig


def _convert_index(index: Sequence[int | None], pos: int, limit: int | None, is_start: bool) -> int:
    """``index[pos]``, or an estimate from the nearest aligned neighbours when it is None.

    With the nearest aligned values ``front`` (before ``pos``) and ``rear`` (after it):
    - a start takes ``front + 1`` when that leaves room before ``rear``, else ``rear``;
    - an end takes ``rear - 1`` when that leaves room after ``front``, else ``front``;
    - with nothing aligned before: a start takes 0 and an end ``rear - 1`` (when ``rear >= 1``);
    - with nothing aligned after: a start takes ``front + 1`` and an end ``limit - 1`` (when
      ``limit`` is given and ``front < limit - 1``).
    """
    if index[pos] is not None:
        return index[pos]
    rear = next((index[p] for p in range(pos + 1, len(index)) if index[p] is not None), None)
    front = next((index[p] for p in range(pos - 1, -1, -1) if index[p] is not None), None)
    if front is None:
        if rear >= 1:
            return 0 if is_start else rear - 1
        return rear
    if rear is None:
        if limit is not None and front < limit - 1:
            return front + 1 if is_start else limit - 1
        return front
    if rear > front + 1:
        return front + 1 if is_start else rear - 1
    return rear if is_start else front


def align_paragraph(sp_model: Any, paragraph_text: str, do_lower_case: bool,
                    **text_options: bool) -> ParagraphAlignment | None:
    """Encodes a paragraph and maps each piece to its characters in the raw text.

    The pieces (``▁`` read as a space) are concatenated and aligned with the raw text by a banded
    LCS in which a raw character matches a piece character when ``preprocess_text(char,
    remove_space=False, lower=do_lower_case)`` equals it. The band is ``|n - m| + 5`` (n raw, m piece
    characters); when the LCS is at most ``0.8 n`` it is run once more with the band doubled.
    Unaligned positions are filled from their aligned neighbours (`_convert_index`). ``text_options``:
    the tokenizer's further ``preprocess_text`` options (`tokenization.text_options`).

    Returns:
      The alignment, or None when nothing aligns or the LCS is below ``0.8 n`` (the original's
      "MISMATCH DETECTED!": the caller drops the example).
    """
    pieces = tokenization.encode_pieces(
        sp_model, tokenization.preprocess_text(paragraph_text, lower=do_lower_case, **text_options),
        return_unicode=False)
    piece_texts = [piece.replace(tokenization.SPIECE_UNDERLINE, " ") for piece in pieces]
    chartok_to_tok_index: list[int] = []
    tok_start_to_chartok_index: list[int] = []
    tok_end_to_chartok_index: list[int] = []
    for t, text in enumerate(piece_texts):
        tok_start_to_chartok_index.append(len(chartok_to_tok_index))
        chartok_to_tok_index.extend([t] * len(text))
        tok_end_to_chartok_index.append(len(chartok_to_tok_index) - 1)
    tok_cat_text = "".join(piece_texts)
    n, m = len(paragraph_text), len(tok_cat_text)
    if n == 0 or m == 0:
        return None
    keep_accents = text_options.get("keep_accents", False)
    orig = [_normalized_char(c, do_lower_case, keep_accents) for c in paragraph_text]
    max_dist = abs(n - m) + 5
    for attempt in range(2):
        score, moves = _banded_lcs(orig, tok_cat_text, max_dist)
        if score > 0.8 * n or attempt == 1:
            break
        max_dist *= 2
    orig_to_chartok, chartok_to_orig = _backtrack(moves, n, m, max_dist)
    if score < 0.8 * n or all(v is None for v in orig_to_chartok):
        return None
    return ParagraphAlignment(
        piece_ids=[sp_model.PieceToId(piece) for piece in pieces],
        tok_start_to_orig_index=[_convert_index(chartok_to_orig, c, n, is_start=True)
                                 for c in tok_start_to_chartok_index],
        tok_end_to_orig_index=[_convert_index(chartok_to_orig, c, n, is_start=False)
                               for c in tok_end_to_chartok_index],
        chartok_to_tok_index=chartok_to_tok_index,
        orig_to_chartok_index=orig_to_chartok)


def answer_piece_range(alignment: ParagraphAlignment, start_char: int,
                       answer_text: str) -> tuple[int, int]:
    """Paragraph-piece indices (first, last) covering an answer given by raw character offset."""
    end_char = start_char + len(answer_text) - 1
    start = _convert_index(alignment.orig_to_chartok_index, start_char, None, is_start=True)
    end = _convert_index(alignment.orig_to_chartok_index, end_char, None, is_start=False)
    return alignment.chartok_to_tok_index[start], alignment.chartok_to_tok_index[end]


# ----------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------

def doc_spans(num_tokens: int, max_tokens_for_doc: int, doc_stride: int) -> tuple[tuple[int, int], ...]:
    """Sliding windows (start, length) over ``num_tokens`` pieces.

    Each window holds ``min(remaining, max_tokens_for_doc)`` pieces; the next one starts
    ``min(length, doc_stride)`` later; the last window ends at the last piece.
    """
    spans = []
    start = 0
    while start < num_tokens:
        length = min(num_tokens - start, max_tokens_for_doc)
        spans.append((start, length))
        if start + length == num_tokens:
            break
        start += min(length, doc_stride)
    return tuple(spans)


@functools.lru_cache(maxsize=4096)
def max_context_span(spans: tuple[tuple[int, int], ...], num_tokens: int) -> tuple[int, ...]:
    """For each piece, the index of the span giving it the most context.

    A piece at ``position`` of span (start, length) scores ``min(left, right) + 0.01 * length``
    (left/right: pieces of the span before/after it); the first span with the highest score wins.
    """
    best_span = [-1] * num_tokens
    best_score = [0.0] * num_tokens
    for s, (start, length) in enumerate(spans):
        end = start + length - 1
        for position in range(start, end + 1):
            score = min(position - start, end - position) + 0.01 * length
            if best_span[position] < 0 or score > best_score[position]:
                best_span[position], best_score[position] = s, score
    return tuple(best_span)


def _check_settings(tokenizer: Any, max_seq_length: int, doc_stride: int,
                    max_query_length: int) -> None:
    if getattr(tokenizer, "sp_model", None) is None:
        raise ValueError("SQuAD features need a SentencePiece tokenizer (--spm_model_file), as in the "
                         "original; WordPiece vocabularies are not supported here.")
    for piece in ("[CLS]", "[SEP]"):
        if tokenizer.sp_model.IdToPiece(tokenizer.sp_model.PieceToId(piece)) != piece:
            raise ValueError(f"The SentencePiece model has no {piece} piece; train it with "
                             "--control_symbols=[CLS],[SEP],[MASK] like 30k-clean.model.")
    if max_seq_length <= max_query_length + 3:
        raise ValueError(f"max_seq_length ({max_seq_length}) must exceed max_query_length "
                         f"({max_query_length}) + 3 so that every span holds paragraph pieces.")
    if doc_stride < 1 or max_query_length < 1:
        raise ValueError(f"doc_stride ({doc_stride}) and max_query_length ({max_query_length}) must "
                         "be positive.")


def _convert_range(examples: Sequence[SquadExample], tokenizer: Any, max_seq_length: int,
                   doc_stride: int, max_query_length: int, is_training: bool,
                   do_lower_case: bool) -> Iterator[SquadFeature]:
    """The features of ``examples`` (see `convert_examples_to_features`), with example indexes and
    unique ids counted from 0 within ``examples``."""
    sp_model = tokenizer.sp_model
    text_options = tokenization.text_options(tokenizer)
    cls_id, sep_id = sp_model.PieceToId("[CLS]"), sp_model.PieceToId("[SEP]")
    unique_id = 0
    # Questions about one paragraph come together, so the last alignment is usually reusable.
    cached_text: str | None = None
    alignment: ParagraphAlignment | None = None
    for example_index, example in enumerate(examples):
        if example.paragraph_text != cached_text:
            cached_text = example.paragraph_text
            alignment = align_paragraph(sp_model, cached_text, do_lower_case, **text_options)
        if alignment is None:
            logging.warning("MISMATCH DETECTED: the pieces of the context of question %r do not "
                            "align with its text; the question is skipped.", example.qas_id)
            continue
        query_ids = tokenization.encode_ids(
            sp_model, tokenization.preprocess_text(example.question_text, lower=do_lower_case, **text_options))
        query_ids = query_ids[:max_query_length]
        answer_range = None
        if is_training and not example.is_impossible:
            answer_range = answer_piece_range(alignment, example.start_position,
                                              example.orig_answer_text)
            if answer_range[0] > answer_range[1]:
                logging.warning("The answer of question %r maps to no paragraph piece; the question "
                                "is skipped.", example.qas_id)
                continue
        doc_offset = len(query_ids) + 2
        num_doc = len(alignment.piece_ids)
        spans = doc_spans(num_doc, max_seq_length - len(query_ids) - 3, doc_stride)
        best_span = max_context_span(spans, num_doc)
        for span_index, (start, length) in enumerate(spans):
            input_ids = [cls_id] + query_ids + [sep_id] + alignment.piece_ids[start:start + length]
            input_ids.append(sep_id)
            real = len(input_ids)
            padding = [0] * (max_seq_length - real)
            info = SquadFeatureInfo(
                unique_id=unique_id, example_index=example_index, doc_span_index=span_index,
                doc_offset=doc_offset, doc_start=start,
                tok_start_to_orig_index=alignment.tok_start_to_orig_index[start:start + length],
                tok_end_to_orig_index=alignment.tok_end_to_orig_index[start:start + length],
                token_is_max_context={doc_offset + i: best_span[start + i] == span_index
                                      for i in range(length)})
            start_position = end_position = None
            span_is_impossible = example.is_impossible
            if is_training:
                if answer_range is not None and start <= answer_range[0] \
                        and answer_range[1] < start + length:
                    start_position = answer_range[0] - start + doc_offset
                    end_position = answer_range[1] - start + doc_offset
                else:
                    # An answer outside the span (or none at all) points at [CLS], in v1 as in v2.
                    start_position = end_position = 0
                    span_is_impossible = True
            yield SquadFeature(
                info=info,
                input_ids=input_ids + padding,
                input_mask=[1] * real + padding,
                segment_ids=[0] * doc_offset + [1] * (length + 1) + padding,
                p_mask=[0] + [1] * (doc_offset - 1) + [0] * length + [1] * (max_seq_length - real + 1),
                start_position=start_position, end_position=end_position,
                is_impossible=span_is_impossible)
            unique_id += 1




def _chunk_bounds(examples: Sequence[SquadExample], size: int) -> list[tuple[int, int]]:
    """(start, end) ranges of consecutive examples: a range ends at the first change of paragraph after
    ``size`` examples (so a paragraph is aligned once), or after ``2 * size`` examples at most."""
    bounds = []
    start = 0
    for end in range(1, len(examples) + 1):
        if end == len(examples) or (end - start >= size and (
                examples[end].paragraph_text != examples[end - 1].paragraph_text or end - start >= 2 * size)):
            bounds.append((start, end))
            start = end
    return bounds


def _convert_chunk(state: tuple[Sequence[SquadExample], Any, tuple], bounds: tuple[int, int]
                   ) -> list[list[SquadFeature]]:
    """For each example of ``examples[start:end]``, its features (chunk-local ids, see `_convert_range`)."""
    examples, tokenizer, settings = state
    start, end = bounds
    per_example: list[list[SquadFeature]] = [[] for _ in range(end - start)]
    for feature in _convert_range(examples[start:end], tokenizer, *settings):
        per_example[feature.info.example_index].append(feature)
    return per_example


def _encode_chunk(state: tuple[Sequence[SquadExample], Any, tuple], bounds: tuple[int, int]
                  ) -> list[list[tuple[SquadFeatureInfo, bool, bytes]]]:
    """`_convert_chunk`, each feature already serialized without its id (`_record_body`): (info, is_impossible,
    body), chunk-local ids."""
    is_training = state[2][3]
    return [[(f.info, f.is_impossible, _record_body(f, is_training)) for f in features]
            for features in _convert_chunk(state, bounds)]


def _per_example(chunk_fn: Callable[[Any, tuple[int, int]], list[list[_R]]], examples: Sequence[SquadExample],
                 tokenizer: Any, settings: tuple[int, int, int, bool, bool], num_workers: int | None
                 ) -> Iterator[list[_R]]:
    """Yields ``chunk_fn``'s list for every example, in order. Chunks of about `EXAMPLES_PER_CHUNK`
    examples (`_chunk_bounds`) go to ``num_workers`` forked processes (None: every CPU) through
    `parallel.ordered_map`; the callers number the features in order, so the result does not depend on
    the number of workers. ``settings``: (max_seq_length, doc_stride, max_query_length, is_training,
    do_lower_case)."""
    _check_settings(tokenizer, *settings[:3])
    bounds = _chunk_bounds(examples, EXAMPLES_PER_CHUNK)
    if num_workers is None:
        num_workers = os.cpu_count() or 1
    for chunk in parallel.ordered_map(chunk_fn, (examples, tokenizer, settings), bounds,
                                      min(num_workers, len(bounds))):
        yield from chunk


def convert_examples_to_features(examples: Sequence[SquadExample], tokenizer: Any,
                                 max_seq_length: int, doc_stride: int, max_query_length: int,
                                 is_training: bool, do_lower_case: bool,
                                 num_workers: int | None = None) -> Iterator[SquadFeature]:
    """Yields the features of every example, in order (unique ids from 1000000000).

    Args:
      examples: from `read_squad_examples` (with answers when ``is_training``).
      tokenizer: a SentencePiece ``FullTokenizer``.
      max_seq_length: S; each span holds ``S - len(question ids) - 3`` paragraph pieces at most.
      doc_stride: how far consecutive spans start apart (at most).
      max_query_length: question ids beyond this many are cut.
      is_training: compute the answer targets.
      do_lower_case: lower-case question and paragraph (``preprocess_text``'s ``lower``).
      num_workers: processes (forked) converting chunks of about `EXAMPLES_PER_CHUNK` consecutive
        examples; None: every CPU. The features do not depend on it.

    Yields:
      `SquadFeature`s. Examples whose paragraph does not align (`align_paragraph`) or whose answer
      maps to an empty piece range are skipped with a warning.

    Raises:
      ValueError: a WordPiece tokenizer or inconsistent lengths.
    """
    settings = (max_seq_length, doc_stride, max_query_length, is_training, do_lower_case)
    unique_id = FIRST_UNIQUE_ID
    for example_index, features in enumerate(_per_example(_convert_chunk, examples, tokenizer, settings,
                                                           num_workers)):
        for feature in features:
            info = dataclasses.replace(feature.info, unique_id=unique_id, example_index=example_index)
            yield dataclasses.replace(feature, info=info)
            unique_id += 1


# ----------------------------------------------------------------------------------------------
# TFRecords and side information
# ----------------------------------------------------------------------------------------------

def _record_body(feature: SquadFeature, is_training: bool) -> bytes:
    """The serialized ``tf.train.Features`` of a feature record without ``unique_ids`` (deterministic:
    sorted keys), built in the worker processes; the parent adds the id (`with_unique_id`)."""
    values = {
        "input_ids": records.int64_feature(feature.input_ids),
        "input_mask": records.int64_feature(feature.input_mask),
        "segment_ids": records.int64_feature(feature.segment_ids),
        "p_mask": records.int64_feature(feature.p_mask),
    }
    if is_training:
        values["start_positions"] = records.int64_feature([feature.start_position])
        values["end_positions"] = records.int64_feature([feature.end_position])
        values["is_impossible"] = records.int64_feature([int(feature.is_impossible)])
    return tf.train.Features(feature=values).SerializeToString(deterministic=True)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def with_unique_id(body: bytes, unique_id: int) -> bytes:
    """The feature record of `_record_body` with its ``unique_ids``: the map entry appended (``unique_ids``
    sorts after every other key, so this is where deterministic serialization puts it) and the whole
    wrapped as field 1 of a ``tf.train.Example``; byte for byte ``Example.SerializeToString(deterministic=True)``,
    without parsing or re-serializing the record."""
    entry = tf.train.Features(feature={"unique_ids": records.int64_feature([unique_id])}).SerializeToString()
    features = body + entry
    return b"\x0a" + _varint(len(features)) + features


def eval_features_path(output_file: str) -> str:
    """Where the side information of an eval feature file goes: ``F.tf_record`` ->
    ``F.features.json`` (the last extension is replaced)."""
    return os.path.splitext(output_file)[0] + ".features.json"


@dataclasses.dataclass(frozen=True)
class EvalSideInfo:
    """The contents of an eval side file.

    Attributes:
      examples: every example of the input file (without answers), indexed by ``example_index``.
      features: one `SquadFeatureInfo` per TFRecord, in file order.
      settings: how the features were made (``max_seq_length``, ``doc_stride``,
        ``max_query_length``, ``do_lower_case``, ``squad_version``, ``input_file``).
    """
    examples: list[SquadExample]
    features: list[SquadFeatureInfo]
    settings: dict[str, Any]


def _side_info_json(examples: Sequence[SquadExample], infos: Iterable[SquadFeatureInfo],
                    settings: Mapping[str, Any]) -> dict[str, Any]:
    """The side file's contents. Paragraphs are stored once, with the piece-to-character maps of all
    their pieces; a feature stores only where its span lies (the loader slices the maps and
    recomputes the max-context flags from the example's spans)."""
    paragraph_index: dict[str, int] = {}
    paragraphs: list[dict[str, Any]] = []
    example_rows = []
    for example in examples:
        index = paragraph_index.setdefault(example.paragraph_text, len(paragraphs))
        if index == len(paragraphs):
            paragraphs.append({"text": example.paragraph_text, "tok_start_to_orig_index": [],
                               "tok_end_to_orig_index": []})
        example_rows.append({"qas_id": example.qas_id, "question_text": example.question_text,
                             "paragraph_index": index})
    feature_rows = []
    for info in infos:
        paragraph = paragraphs[example_rows[info.example_index]["paragraph_index"]]
        # Spans start at 0 and overlap or touch, so appending each span's new tail rebuilds the
        # maps of the whole paragraph.
        known = len(paragraph["tok_start_to_orig_index"]) - info.doc_start
        paragraph["tok_start_to_orig_index"].extend(info.tok_start_to_orig_index[known:])
        paragraph["tok_end_to_orig_index"].extend(info.tok_end_to_orig_index[known:])
        feature_rows.append({"unique_id": info.unique_id, "example_index": info.example_index,
                             "doc_span_index": info.doc_span_index, "doc_offset": info.doc_offset,
                             "doc_start": info.doc_start,
                             "doc_length": len(info.tok_start_to_orig_index)})
    return {"format": _SIDE_FORMAT, "format_version": _SIDE_FORMAT_VERSION,
            "settings": dict(settings), "paragraphs": paragraphs, "examples": example_rows,
            "features": feature_rows}


def load_eval_features(path: str) -> EvalSideInfo:
    """Reads a side file written by `write_squad_features` (``eval_features_path(F)``).

    Raises:
      FileNotFoundError: no such file (write the eval features first).
      SquadDataError: the file is not such a side file.
    """
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"SQuAD eval side file not found: {path!r}. It is written next to the "
                                "eval TFRecord by create_finetuning_data.py --task=squad "
                                "--is_training=false.")
    with tf.io.gfile.GFile(path, "r") as f:
        try:
            data = json.loads(f.read())
        except json.JSONDecodeError as e:
            raise SquadDataError(f"{path}: not valid JSON ({e.msg}); rewrite the eval "
                                 "features.") from None
    if not isinstance(data, dict) or data.get("format") != _SIDE_FORMAT \
            or data.get("format_version") != _SIDE_FORMAT_VERSION:
        raise SquadDataError(f"{path}: not a {_SIDE_FORMAT} file (version {_SIDE_FORMAT_VERSION}); "
                             "rewrite the eval features with this version of albert_tf.")
    paragraphs = data["paragraphs"]
    examples = [SquadExample(row["qas_id"], row["question_text"],
                             paragraphs[row["paragraph_index"]]["text"])
                for row in data["examples"]]
    spans_of_example: dict[int, list[tuple[int, int]]] = {}
    for row in data["features"]:
        spans_of_example.setdefault(row["example_index"], []).append(
            (row["doc_start"], row["doc_length"]))
    features = []
    for row in data["features"]:
        paragraph = paragraphs[data["examples"][row["example_index"]]["paragraph_index"]]
        start, end, offset = row["doc_start"], row["doc_start"] + row["doc_length"], row["doc_offset"]
        best_span = max_context_span(tuple(spans_of_example[row["example_index"]]),
                                     len(paragraph["tok_start_to_orig_index"]))
        features.append(SquadFeatureInfo(
            unique_id=row["unique_id"], example_index=row["example_index"],
            doc_span_index=row["doc_span_index"], doc_offset=offset, doc_start=start,
            tok_start_to_orig_index=paragraph["tok_start_to_orig_index"][start:end],
            tok_end_to_orig_index=paragraph["tok_end_to_orig_index"][start:end],
            token_is_max_context={offset + i - start: best_span[i] == row["doc_span_index"]
                                  for i in range(start, end)}))
    return EvalSideInfo(examples, features, data["settings"])


@dataclasses.dataclass(frozen=True)
class WriteSummary:
    """What `write_squad_features` wrote: counts, the ids of the questions that got no feature (their
    paragraph or answer could not be aligned with the pieces) and the side file (None when training)."""
    num_examples: int
    num_features: int
    num_skipped_examples: int
    num_impossible_features: int
    side_info_file: str | None
    skipped_qas_ids: tuple[str, ...] = ()

    def skipped_message(self, input_file: str) -> str | None:
        """One line reporting the skipped questions (None when there are none)."""
        if not self.num_skipped_examples:
            return None
        ids = ", ".join(repr(q) for q in self.skipped_qas_ids[:5])
        more = ", ..." if self.num_skipped_examples > 5 else ""
        return (f"{input_file}: {self.num_skipped_examples} of {self.num_examples} questions got no feature because "
                f"their context or answer could not be aligned with the SentencePiece pieces ({ids}{more}); "
                "training skips them, evaluation scores them as unanswered.")


def write_squad_features(examples: Sequence[SquadExample], tokenizer: Any, output_file: str,
                         max_seq_length: int, doc_stride: int, max_query_length: int,
                         is_training: bool, do_lower_case: bool,
                         settings: Mapping[str, Any] | None = None,
                         num_workers: int | None = None) -> WriteSummary:
    """Encodes ``examples`` (`convert_examples_to_features`) into one TFRecord file, in order.

    Eval mode (``is_training`` False) also writes `eval_features_path` ``(output_file)``: the
    examples' ids, questions and paragraphs and each feature's `SquadFeatureInfo`, plus
    ``settings`` (extra entries such as the input file and SQuAD version) and the lengths used.
    The output directory is created. ``num_workers``: see `convert_examples_to_features` (the files do
    not depend on it). Progress (questions done, rate, ETA) is logged every 10 s.
    """
    infos: list[SquadFeatureInfo] = []
    impossible = 0
    skipped = []
    logging.info("Writing the features of %d questions to %s", len(examples), output_file)
    settings_tuple = (max_seq_length, doc_stride, max_query_length, is_training, do_lower_case)
    per_example = _per_example(_encode_chunk, examples, tokenizer, settings_tuple, num_workers)
    unique_id = FIRST_UNIQUE_ID
    with records.RoundRobinWriter([output_file]) as writer:
        for example_index, encoded in enumerate(parallel.progress(per_example, len(examples), "questions",
                                                                  label="SQuAD features: ")):
            example = examples[example_index]
            if not encoded:
                skipped.append(example.qas_id)
            for local_info, is_impossible, body in encoded:
                record = with_unique_id(body, unique_id)
                info = dataclasses.replace(local_info, unique_id=unique_id, example_index=example_index)
                if writer.count < 3:
                    _log_feature(info, tf.train.Example.FromString(record), example, tokenizer, is_training)
                writer.write(record)
                impossible += int(is_impossible)
                if not is_training:
                    infos.append(info)
                unique_id += 1
        num_features = writer.count
    side_file = None
    if not is_training:
        side_file = eval_features_path(output_file)
        all_settings = {"max_seq_length": max_seq_length, "doc_stride": doc_stride,
                        "max_query_length": max_query_length, "do_lower_case": do_lower_case,
                        **(settings or {})}
        # One write: GFile is slow with json.dump's many small writes.
        text = json.dumps(_side_info_json(examples, infos, all_settings), ensure_ascii=False)
        with tf.io.gfile.GFile(side_file, "w") as f:
            f.write(text)
    summary = WriteSummary(num_examples=len(examples), num_features=num_features,
                           num_skipped_examples=len(skipped), num_impossible_features=impossible,
                           side_info_file=side_file, skipped_qas_ids=tuple(skipped))
    message = summary.skipped_message(str((settings or {}).get("input_file", output_file)))
    if message:
        logging.warning(message)
    return summary


def feature_fingerprint(tokenizer: Any, input_file: str, is_training: bool, do_lower_case: bool,
                        max_seq_length: int, doc_stride: int, max_query_length: int,
                        squad_version: str) -> dict[str, Any]:
    """What a SQuAD feature file is built from (`cache.fingerprint`): the tokenizer's SentencePiece model
    and ``input_file`` (hashed), the casing, the lengths, training or eval, and the SQuAD version.

    Raises:
      FileNotFoundError: the input file or the tokenizer's model is missing.
    """
    return cache.fingerprint(tokenizer_file=cache.tokenizer_file(tokenizer), sources=[input_file], kind="squad",
                             is_training=is_training, do_lower_case=do_lower_case, max_seq_length=max_seq_length,
                             doc_stride=doc_stride, max_query_length=max_query_length,
                             squad_version=squad_version, **tokenization.text_options(tokenizer))


def _log_feature(info: SquadFeatureInfo, record: tf.train.Example, example: SquadExample, tokenizer: Any,
                 is_training: bool) -> None:
    values = {name: list(feature.int64_list.value) for name, feature in record.features.feature.items()}
    input_ids = values["input_ids"][:sum(values["input_mask"])]
    logging.info("unique_id: %d  qas_id: %s  doc_span_index: %d\n  pieces: %s\n  input_ids: %s",
                 info.unique_id, example.qas_id, info.doc_span_index,
                 " ".join(tokenizer.convert_ids_to_tokens(input_ids)), input_ids)
    if is_training and not values["is_impossible"][0]:
        start, end = values["start_positions"][0], values["end_positions"][0]
        pieces = tokenizer.convert_ids_to_tokens(values["input_ids"][start:end + 1])
        logging.info("  answer: %s (positions %d-%d)", tokenizer.sp_model.DecodePieces(pieces), start, end)


def squad_feature_spec(seq_length: int, is_training: bool) -> dict[str, tf.io.FixedLenFeature]:
    """Parsing spec of the on-disk features."""
    spec = {
        "unique_ids": tf.io.FixedLenFeature([], tf.int64),
        "input_ids": records.fixed_len_int(seq_length),
        "input_mask": records.fixed_len_int(seq_length),
        "segment_ids": records.fixed_len_int(seq_length),
        "p_mask": records.fixed_len_int(seq_length),
    }
    if is_training:
        for name in ("start_positions", "end_positions", "is_impossible"):
            spec[name] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def check_feature_file(path: str, max_seq_length: int, is_training: bool) -> None:
    """Refuses an existing SQuAD feature file that does not fit the run: written with another
    ``max_seq_length``, eval features given for training, or not SQuAD features at all.

    Raises:
      SquadDataError: naming the file, what it holds and the fix.
    """
    feature = records.first_record_features(path)
    if feature is None:
        raise SquadDataError(f"SQuAD feature file {path} is empty. {records.REBUILD_HINT}")
    missing = [k for k in squad_feature_spec(max_seq_length, is_training) if k not in feature]
    if missing:
        kind = "training" if is_training else "SQuAD"
        raise SquadDataError(f"{path} holds no {kind} features (no {', '.join(missing)}). {records.REBUILD_HINT}")
    records.check_sequence_length(path, max_seq_length, features=feature, error=SquadDataError)


def squad_dataset(path: str | Sequence[str], seq_length: int, batch_size: int, is_training: bool,
                  input_context: tf.distribute.InputContext | None = None,
                  drop_remainder: bool | None = None, shuffle_buffer_size: int = 100,
                  seed: int | None = None) -> tf.data.Dataset:
    """Reads SQuAD TFRecords as batches of model inputs.

    Args:
      path: a TFRecord file (or list / comma-separated globs) from `write_squad_features`.
      seq_length: S, the ``max_seq_length`` the file was written with.
      batch_size: the global batch size; with ``input_context`` each pipeline gets its share.
      is_training: parse the targets, shard by ``input_context``, repeat forever and shuffle
        (buffer 100, as the original). Otherwise every feature is read once, in file order.
      input_context: from ``strategy.distribute_datasets_from_function``.
      drop_remainder: defaults to ``is_training``; prediction keeps the last partial batch.
      shuffle_buffer_size: shuffle buffer when training.
      seed: shuffle seed (None: nondeterministic).

    Returns:
      A dataset of dicts: ``unique_ids`` [B]; ``input_word_ids``, ``input_mask``, ``input_type_ids``,
      ``p_mask`` [B, S]; when training ``start_positions``, ``end_positions``, ``is_impossible``
      [B]. All int32.
    """
    return records.finetuning_dataset(path, squad_feature_spec(seq_length, is_training), batch_size, is_training, input_context,
                                      drop_remainder, shuffle_buffer_size, seed)
