"""Pretraining data for ALBERT: the original `create_pretraining_data.py` algorithm and the TFRecord reader.

Writing (`create_pretraining_data`) follows the original release step by step:

1. Every input line is one "segment"; a blank line starts a new document. SentencePiece mode runs
   `preprocess_text(line, lower=do_lower_case)` before tokenising, WordPiece mode only strips the line.
   As in the original, a file boundary is *not* a document boundary (the last document of one file
   continues into the next file unless a blank line separates them). Empty documents are dropped and the
   documents are shuffled.
2. `dupe_factor` passes over all documents build `[CLS] A [SEP] B [SEP]` pairs with the sentence-order
   (SOP) label: 1 for swapped or random-document B, 0 for in order (see `create_instances_from_document`).
3. Whole-word n-gram masking with p(n) proportional to 1/n, 80/10/10 replacement and optional permutation
   (see `create_masked_lm_predictions`).
4. The instances stream through a bounded shuffle buffer (`shuffle_buffer_size`, 100k instances by
   default) and are written round-robin to the output files as they come, so memory does not grow with
   the output (the original held every instance and shuffled them all; a buffer at least as large as the
   output is that full shuffle).

Deviation from the original (documented on purpose): every random choice is seeded. The original drew the
n-gram length from NumPy's unseeded global generator, so two runs never matched. Here the work is cut into
units of (dupe pass, block of `docs_per_unit` shuffled documents); each unit gets its own `random.Random`
seeded from `random_seed` and the unit's indices, and the document shuffle and final instance shuffle use
`random.Random(random_seed)`. The same seed therefore gives byte-identical files whatever the number of
worker processes. The random stream differs from the original's (the masking walk also draws its random
candidate order lazily, only as far as it goes), the distribution of the data does not.

Tokenisation and instance building run in worker processes (``num_workers``). Workers are forked so that
they share the tokenizer and the tokenised corpus without pickling them (every worker may draw a random
B segment from any document); where `fork` is unavailable the work runs in this process.

Tokens are handled as ids from tokenisation on, each with a "start piece" flag computed from its piece
string (`tokenization.is_start_piece`), which is equivalent to the original's string handling. The corpus
lives in a few flat arrays (`TokenizedCorpus`), about 5 bytes per token, so forked workers share it
without copying.

Writing imports no TensorFlow (`tfrecord` serializes and frames the records, `fileio` reads local files);
`pretraining_beam` runs the same units of work as an Apache Beam pipeline. Reading (`pretraining_dataset`,
which imports TensorFlow when called) is the training input pipeline of `run_pretraining.py`, TF2 style.
"""
from __future__ import annotations

import array
import dataclasses
import functools
import itertools
import os
import random
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

from absl import logging

from albert_tf import fileio, tokenization
from albert_tf.data import parallel, text_checks, tfrecord

if TYPE_CHECKING:
    import tensorflow as tf

CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
MASK_TOKEN = "[MASK]"

# Documents per unit of work. Part of the output's definition: changing it changes which random stream
# each document sees, so it is fixed rather than derived from the number of workers.
DEFAULT_DOCS_PER_UNIT = 256
# Instances held by the final shuffle (`bounded_shuffle`); part of the output's definition. At seq 512
# an instance takes about 3 KB, so the default buffer holds about 300 MB.
DEFAULT_SHUFFLE_BUFFER_SIZE = 100_000
# Input lines sent to a tokenising worker at a time (does not affect the output).
_LINES_PER_TASK = 2048
# Instances logged in full, like the original.
_NUM_LOGGED_INSTANCES = 20



@dataclasses.dataclass(frozen=True)
class PretrainingOptions:
    """The instance-building hyper-parameters; field names are the original flag names."""

    max_seq_length: int = 512
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    ngram: int = 3
    do_whole_word_mask: bool = True
    do_permutation: bool = False
    favor_shorter_ngram: bool = True
    random_next_sentence: bool = False
    dupe_factor: int = 40
    random_seed: int = 12345

    def __post_init__(self) -> None:
        # [CLS] A [SEP] B [SEP] needs 3 special tokens and at least one token in each of A and B; the
        # short-sequence target is drawn from [2, max_seq_length - 3].
        if self.max_seq_length < 5:
            raise ValueError(f"--max_seq_length={self.max_seq_length} is too small: [CLS] A [SEP] B [SEP] "
                             "needs at least 5 positions. Pass --max_seq_length=5 or more (512 by default).")
        if self.max_predictions_per_seq < 1:
            raise ValueError(f"--max_predictions_per_seq={self.max_predictions_per_seq} must be >= 1.")
        if not 0.0 <= self.masked_lm_prob <= 1.0:
            raise ValueError(f"--masked_lm_prob={self.masked_lm_prob} must be in [0, 1].")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise ValueError(f"--short_seq_prob={self.short_seq_prob} must be in [0, 1].")
        if self.ngram < 1:
            raise ValueError(f"--ngram={self.ngram} must be >= 1.")
        if self.dupe_factor < 1:
            raise ValueError(f"--dupe_factor={self.dupe_factor} must be >= 1.")

    @property
    def num_prediction_slots(self) -> int:
        """P, the length of the masked_lm_* features: max_predictions_per_seq * (1 + do_permutation)."""
        return self.max_predictions_per_seq * (1 + int(self.do_permutation))

    @functools.cached_property
    def ngram_cdf(self) -> tuple[float, ...]:
        """Cumulative probabilities of n = 1..ngram, with p(n) proportional to 1/n (reversed if not favoured)."""
        weights = [1.0 / n for n in range(1, self.ngram + 1)]
        if not self.favor_shorter_ngram:
            weights.reverse()
        total = sum(weights)
        cdf = list(itertools.accumulate(w / total for w in weights))
        cdf[-1] = 1.0  # so that rounding can never leave a draw of u < 1 without an n
        return tuple(cdf)


@dataclasses.dataclass(frozen=True)
class VocabIds:
    """The ids the instance builder needs.

    `replacement_ids` are the ids of *all* vocabulary pieces in vocabulary order (the original's
    `vocab_words`), specials included: the 10% random replacements draw from them uniformly.
    """

    cls_id: int
    sep_id: int
    mask_id: int
    replacement_ids: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer: tokenization.FullTokenizer, source: str) -> "VocabIds":
        """Looks up [CLS], [SEP] and [MASK]; `source` names the vocabulary in the error if one is missing."""
        missing = [t for t in (CLS_TOKEN, SEP_TOKEN, MASK_TOKEN) if t not in tokenizer.vocab]
        if missing:
            raise ValueError(
                f"{source} has no {', '.join(missing)} piece. ALBERT needs [CLS], [SEP] and [MASK] in the "
                "vocabulary (SentencePiece: train with --control_symbols=[CLS],[SEP],[MASK]).")
        cls_id, sep_id, mask_id = tokenizer.convert_tokens_to_ids([CLS_TOKEN, SEP_TOKEN, MASK_TOKEN])
        replacement_ids = tuple(tokenizer.convert_tokens_to_ids(list(tokenizer.vocab.keys())))
        return cls(cls_id=cls_id, sep_id=sep_id, mask_id=mask_id, replacement_ids=replacement_ids)


@dataclasses.dataclass
class TrainingInstance:
    """One sentence pair after masking, unpadded (all token lists have the sequence's length T).

    input_ids: [T] ids of `[CLS] A [SEP] B [SEP]` with masked/replaced/permuted tokens substituted.
    segment_ids: [T] 0 for CLS, A and the first SEP; 1 for B and the last SEP.
    token_boundary: [T] 1 where a token starts a word (and at CLS/SEP), else 0.
    masked_lm_positions / masked_lm_ids: [M] sorted positions and the original ids there.
    is_random_next: the SOP label (True = swapped or random-document B).
    """

    input_ids: list[int]
    segment_ids: list[int]
    token_boundary: list[int]
    masked_lm_positions: list[int]
    masked_lm_ids: list[int]
    is_random_next: bool

    def to_example(self, max_seq_length: int, num_prediction_slots: int) -> tfrecord.Example:
        """Pads to `max_seq_length` / `num_prediction_slots` with zeros and builds the original features."""
        pad = max_seq_length - len(self.input_ids)
        if pad < 0:
            raise ValueError(f"Instance of {len(self.input_ids)} tokens exceeds max_seq_length={max_seq_length}.")
        pad_p = num_prediction_slots - len(self.masked_lm_positions)
        if pad_p < 0:
            raise ValueError(f"Instance has {len(self.masked_lm_positions)} predictions, more than "
                             f"{num_prediction_slots} slots.")
        example = tfrecord.Example()
        # Filled in place: building each Feature first and passing them to `records.to_example` copies
        # every message and makes writing about 2x slower.
        feature = example.features.feature
        feature["input_ids"].int64_list.value.extend(self.input_ids + [0] * pad)
        feature["input_mask"].int64_list.value.extend([1] * len(self.input_ids) + [0] * pad)
        feature["segment_ids"].int64_list.value.extend(self.segment_ids + [0] * pad)
        feature["token_boundary"].int64_list.value.extend(self.token_boundary + [0] * pad)
        feature["masked_lm_positions"].int64_list.value.extend(self.masked_lm_positions + [0] * pad_p)
        feature["masked_lm_ids"].int64_list.value.extend(self.masked_lm_ids + [0] * pad_p)
        feature["masked_lm_weights"].float_list.value.extend([1.0] * len(self.masked_lm_ids) + [0.0] * pad_p)
        # The SOP label keeps the original feature name.
        feature["next_sentence_labels"].int64_list.value.append(int(self.is_random_next))
        return example


@dataclasses.dataclass(frozen=True)
class PretrainingDataSummary:
    """What `create_pretraining_data` wrote."""

    num_documents: int
    num_instances: int
    instances_per_file: dict[str, int]


@dataclasses.dataclass(frozen=True)
class TokenizedCorpus:
    """Every document's tokens in a few flat arrays (compact, and shared for free with forked workers).

    A segment is one input line's tokens; a document is a run of consecutive segments.

    ids: [N] token ids of all segments, in input order.
    starts: [N] 1 where the token's piece starts a word (`tokenization.is_start_piece`), else 0.
    segment_offsets: [num_segments + 1] segment s holds tokens [segment_offsets[s], segment_offsets[s+1]).
    document_bounds: [num_documents + 1] document d holds segments [document_bounds[d], document_bounds[d+1]);
      no document is empty.
    """

    ids: array.array
    starts: bytes
    segment_offsets: array.array
    document_bounds: array.array

    @property
    def num_documents(self) -> int:
        return len(self.document_bounds) - 1

    def document_segments(self, document: int) -> range:
        """Indices of the segments of `document`."""
        return range(self.document_bounds[document], self.document_bounds[document + 1])

    def segment_length(self, segment: int) -> int:
        return self.segment_offsets[segment + 1] - self.segment_offsets[segment]

    def tokens(self, first_segment: int, end_segment: int) -> tuple[list[int], list[int]]:
        """(ids, start flags) of segments [first_segment, end_segment) concatenated."""
        lo, hi = self.segment_offsets[first_segment], self.segment_offsets[end_segment]
        return self.ids[lo:hi].tolist(), list(self.starts[lo:hi])


# ----------------------------------------------------------------------------------------------------
# Building instances.


class _TokenSpan:
    """Token ids with their start-piece flags (segment A or B of a pair), trimmed by truncate_seq_pair."""

    def __init__(self, ids: list[int], starts: list[int]) -> None:
        self.ids = ids
        self.starts = starts

    def __delitem__(self, index: int) -> None:
        del self.ids[index]
        del self.starts[index]

    def __len__(self) -> int:
        return len(self.ids)


def truncate_seq_pair(tokens_a: list, tokens_b: list, max_num_tokens: int, rng: random.Random) -> None:
    """Trims two token lists in place until len(a) + len(b) <= max_num_tokens.

    Each step trims the longer list (`tokens_b` on ties), removing its first token with probability 0.5,
    else its last token. Anything with `len` and `del x[i]` works (lists, `_TokenSpan`s).
    """
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        trunc = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if len(trunc) < 1:
            raise AssertionError("truncate_seq_pair: cannot trim an empty list.")
        # Trim the front sometimes and the back otherwise, to avoid biases.
        del trunc[0 if rng.random() < 0.5 else -1]


def _sample_ngram_length(rng: random.Random, cdf: Sequence[float]) -> int:
    """Draws n in 1..len(cdf) from the cumulative distribution `cdf` (the original used np.random)."""
    u = rng.random()
    for n, bound in enumerate(cdf, start=1):
        if u < bound:
            return n
    return len(cdf)


def _shuffled(n: int, rng: random.Random) -> Iterator[int]:
    """0..n-1 in uniformly random order, drawn lazily (Fisher-Yates from the front).

    The n-gram walk usually stops after a fifth of the candidates, so only the positions visited are drawn;
    `int(random() * m)` is uniform on 0..m-1 up to a bias of m / 2**53.
    """
    order = list(range(n))
    draw = rng.random
    for i in range(n):
        j = i + int(draw() * (n - i))
        order[i], order[j] = order[j], order[i]
        yield order[i]


def _select_ngrams(cand_indexes: list[list[int]], order: Iterable[int], budget: int, taken: set[int],
                   already: set[int], cdf: Sequence[float], rng: random.Random,
                   on_select: Callable[[int], None]) -> None:
    """The original n-gram selection loop, shared by masking and permutation.

    Walks the candidate n-grams starting at word `order[0]`, `order[1]`, ... (the original's shuffled
    `ngram_indexes`: entry k holds the 1..ngram-word slices of `cand_indexes` starting at word k, so a
    shuffled index list gives the same permutation while the slices are only built when visited). For each,
    samples n, backs off to shorter n-grams while the n-gram would overflow `budget`, skips it if it still
    overflows or touches a position in `taken` or `already`, and otherwise adds its positions to `taken`,
    calling `on_select(position)` for each.
    """
    for idx in order:
        if len(taken) >= budget:
            break
        n = _sample_ngram_length(rng, cdf)
        index_set = [i for word in cand_indexes[idx:idx + n] for i in word]
        n -= 1
        while len(taken) + len(index_set) > budget and n > 0:
            index_set = [i for word in cand_indexes[idx:idx + n] for i in word]
            n -= 1
        if len(taken) + len(index_set) > budget:
            continue
        if any(i in taken or i in already for i in index_set):
            continue
        for index in index_set:
            taken.add(index)
            on_select(index)


def create_masked_lm_predictions(
        token_ids: list[int], is_start: Sequence[int], special_positions: set[int],
        options: PretrainingOptions, vocab: VocabIds,
        rng: random.Random) -> tuple[list[int], list[int], list[int], list[int]]:
    """Whole-word n-gram masking of one sequence, as the original `create_masked_lm_predictions`.

    Args:
      token_ids: [T] ids of `[CLS] A [SEP] B [SEP]`.
      is_start: [T] start-piece flags (ignored at special positions).
      special_positions: positions of [CLS]/[SEP]: never masked, token_boundary 1, and skipped when
        grouping pieces into words (a non-start piece after a [SEP] joins the word before it, as in the
        original).
      options, vocab: masking settings and special/replacement ids.
      rng: the unit's generator (also draws the n-gram lengths).

    Returns:
      (output_ids [T], masked_lm_positions [M] sorted, masked_lm_ids [M] original ids, token_boundary [T])
      with M <= max_predictions_per_seq * (1 + do_permutation).
    """
    cand_indexes: list[list[int]] = []
    token_boundary = [0] * len(token_ids)
    for i in range(len(token_ids)):
        if i in special_positions:
            token_boundary[i] = 1
            continue
        if options.do_whole_word_mask and cand_indexes and not is_start[i]:
            cand_indexes[-1].append(i)
        else:
            cand_indexes.append([i])
            if is_start[i]:
                token_boundary[i] = 1

    output_ids = list(token_ids)
    if options.masked_lm_prob == 0:
        return output_ids, [], [], token_boundary

    # Python 3 round() (banker's rounding), as the original ran.
    num_to_predict = min(options.max_predictions_per_seq,
                         max(1, int(round(len(token_ids) * options.masked_lm_prob))))
    cdf = options.ngram_cdf

    labels: dict[int, int] = {}

    def mask(index: int) -> None:
        if rng.random() < 0.8:
            output_ids[index] = vocab.mask_id
        elif rng.random() < 0.5:
            pass  # keep the original token
        else:
            output_ids[index] = vocab.replacement_ids[rng.randint(0, len(vocab.replacement_ids) - 1)]
        labels[index] = token_ids[index]

    covered: set[int] = set()
    _select_ngrams(cand_indexes, _shuffled(len(cand_indexes), rng), num_to_predict, covered, set(), cdf, rng,
                   mask)

    if options.do_permutation:
        # (The original also reshuffles when not permuting; that only consumes random numbers.)
        selected: set[int] = set()
        _select_ngrams(cand_indexes, _shuffled(len(cand_indexes), rng), num_to_predict, selected, covered, cdf,
                       rng, lambda _: None)
        sources = sorted(selected)
        targets = list(sources)
        rng.shuffle(targets)
        before = list(output_ids)
        for src, tgt in zip(sources, targets):
            output_ids[src] = before[tgt]
            labels[src] = before[src]

    positions = sorted(labels)
    return output_ids, positions, [labels[p] for p in positions], token_boundary


def create_instances_from_document(corpus: TokenizedCorpus, documents: Sequence[int], document_index: int,
                                   options: PretrainingOptions, vocab: VocabIds,
                                   rng: random.Random) -> list[TrainingInstance]:
    """Builds the SOP pairs of one document, as the original `create_instances_from_document`.

    Args:
      corpus: the tokenised corpus.
      documents: corpus document indices in (shuffled) processing order; random B segments may come from
        any of them.
      document_index: position in `documents` of the document to split into pairs.
    Returns:
      The masked instances, in document order.
    """
    segments = corpus.document_segments(documents[document_index])
    max_num_tokens = options.max_seq_length - 3
    # Usually fill the whole sequence; sometimes (short_seq_prob) aim shorter, decided once per document.
    target_seq_length = max_num_tokens
    if rng.random() < options.short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)

    instances = []
    chunk_start = segments.start  # the current chunk is segments [chunk_start, i]
    current_length = 0
    i = segments.start
    while i < segments.stop:
        current_length += corpus.segment_length(i)
        if i == segments.stop - 1 or current_length >= target_seq_length:
            chunk_size = i + 1 - chunk_start
            a_end = chunk_start + (1 if chunk_size < 2 else rng.randint(1, chunk_size - 1))
            tokens_a = _TokenSpan(*corpus.tokens(chunk_start, a_end))
            if chunk_size == 1 or (options.random_next_sentence and rng.random() < 0.5):
                is_random_next = True
                target_b_length = target_seq_length - len(tokens_a)
                # Try to avoid the current document (gives up after 10 draws, as the original).
                for _ in range(10):
                    random_document_index = rng.randint(0, len(documents) - 1)
                    if random_document_index != document_index:
                        break
                random_segments = corpus.document_segments(documents[random_document_index])
                b_start = b_end = random_segments.start + rng.randint(0, len(random_segments) - 1)
                b_length = 0
                while b_end < random_segments.stop:  # whole segments until B reaches its target length
                    b_length += corpus.segment_length(b_end)
                    b_end += 1
                    if b_length >= target_b_length:
                        break
                tokens_b = _TokenSpan(*corpus.tokens(b_start, b_end))
                # The chunk's B segments were not used: put them back for the next chunk.
                i = a_end - 1
            else:
                tokens_b = _TokenSpan(*corpus.tokens(a_end, i + 1))
                is_random_next = not options.random_next_sentence and rng.random() < 0.5
                if is_random_next:  # SOP negative: the two halves swapped
                    tokens_a, tokens_b = tokens_b, tokens_a
            truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            if len(tokens_a) < 1 or len(tokens_b) < 1:
                raise AssertionError("Empty segment after truncation.")

            ids = [vocab.cls_id, *tokens_a.ids, vocab.sep_id, *tokens_b.ids, vocab.sep_id]
            starts = [1, *tokens_a.starts, 1, *tokens_b.starts, 1]
            segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
            specials = {0, len(tokens_a) + 1, len(ids) - 1}
            output_ids, positions, labels, boundary = create_masked_lm_predictions(
                ids, starts, specials, options, vocab, rng)
            instances.append(TrainingInstance(
                input_ids=output_ids, segment_ids=segment_ids, token_boundary=boundary,
                masked_lm_positions=positions, masked_lm_ids=labels, is_random_next=is_random_next))
            chunk_start = i + 1
            current_length = 0
        i += 1
    return instances


# ----------------------------------------------------------------------------------------------------
# Reading and tokenising documents.


def _read_lines(path: str, allow_binary_input: bool = False) -> list[str]:
    """Reads a text file (see `decode_lines`)."""
    with fileio.open_file(path, "rb") as f:
        return decode_lines(f.read(), path, allow_binary_input)


def decode_lines(data: bytes, path: str, allow_binary_input: bool = False) -> list[str]:
    """A text file's bytes as lines without their line ends; CRLF is handled by the callers' strip.

    Lines that are not valid UTF-8 are decoded as Latin-1, with one warning naming the file (`path`).

    Raises:
      text_checks.NotTextError: the file looks binary or mostly undecodable (unless
        `allow_binary_input`, the `--allow_binary_input` flag).
    """
    if not allow_binary_input:
        text_checks.check_text(data, f"--input_file {path}", opt_out="--allow_binary_input")
    # The newline that ends the last line does not start an empty line (the original stops at EOF).
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        return []
    try:
        return data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        pass
    lines, bad = [], []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(raw.decode("latin-1"))
            bad.append(number)
    logging.warning("--input_file %s: %d line(s) are not valid UTF-8 (first: line %d); decoded them as "
                    "Latin-1. Re-encode the file as UTF-8 to silence this.", path, len(bad), bad[0])
    return lines


@dataclasses.dataclass
class _TokenizeState:
    tokenizer: tokenization.FullTokenizer
    do_lower_case: bool
    # piece -> (id, start-piece flag), filled on first sight (the vocabulary is small, the corpus large).
    piece_cache: dict[str, tuple[int, bool]] = dataclasses.field(default_factory=dict)

    @property
    def spm_mode(self) -> bool:
        return self.tokenizer.sp_model is not None


def _tokenize_lines(state: _TokenizeState, lines: Sequence[str]) -> tuple[array.array, bytes, array.array]:
    """Tokenises raw lines into one flat block: (ids [N], start flags [N], lengths [L']).

    `lengths` has one entry per line that yields tokens (its token count) and -1 per document break (an
    empty line); lines with text but no tokens are dropped, as in the original. One flat block per task
    keeps the cost of sending results back to the parent low.
    """
    ids, starts, lengths = array.array("i"), bytearray(), array.array("i")
    cache, spm_mode = state.piece_cache, state.spm_mode
    for raw in lines:
        if spm_mode and raw.isascii():
            # `preprocess_text` of ASCII text: NFKD changes nothing and there are no combining marks.
            line = " ".join(raw.split())
            if state.do_lower_case:
                line = line.lower()
        elif spm_mode:
            line = tokenization.preprocess_text(raw, lower=state.do_lower_case)
        else:
            line = tokenization.convert_to_unicode(raw).strip()
        if not line:
            lengths.append(-1)
            continue
        pieces = state.tokenizer.tokenize(line)
        if not pieces:
            continue
        for piece in pieces:
            entry = cache.get(piece)
            if entry is None:
                entry = cache[piece] = (state.tokenizer.convert_tokens_to_ids([piece])[0],
                                        tokenization.is_start_piece(piece, spm_mode))
            ids.append(entry[0])
            starts.append(entry[1])
        lengths.append(len(pieces))
    return ids, bytes(starts), lengths


def read_documents(input_files: Sequence[str], tokenizer: tokenization.FullTokenizer,
                   do_lower_case: bool = True, num_workers: int = 1,
                   allow_binary_input: bool = False) -> TokenizedCorpus:
    """Reads and tokenises the input files into documents (in input order, empty documents removed).

    The result is the same for any `num_workers`. Files that look binary are refused unless
    `allow_binary_input` (see `_read_lines`).
    """
    state = _TokenizeState(tokenizer=tokenizer, do_lower_case=do_lower_case)
    # A generator, so that only about one file's lines are held as strings at a time.
    tasks = (lines[k:k + _LINES_PER_TASK]
             for path in input_files for lines in (_read_lines(path, allow_binary_input),)
             for k in range(0, len(lines), _LINES_PER_TASK))
    return assemble_corpus(parallel.ordered_map(_tokenize_lines, state, tasks, num_workers))


def tokenize_lines(tokenizer: tokenization.FullTokenizer, do_lower_case: bool,
                   lines: Sequence[str]) -> tuple[array.array, bytes, array.array]:
    """One block of `assemble_corpus`'s input: the tokens of consecutive input lines (see `_tokenize_lines`)."""
    return _tokenize_lines(_TokenizeState(tokenizer=tokenizer, do_lower_case=do_lower_case), lines)


def assemble_corpus(blocks: Iterable[tuple[array.array, bytes, array.array]]) -> TokenizedCorpus:
    """Joins tokenised blocks of consecutive lines, in input order, into the corpus arrays.

    Args:
      blocks: (ids [N], start flags [N], lengths [L']) per block, as `_tokenize_lines` returns them.
    """
    all_ids, all_starts = array.array("i"), bytearray()
    segment_offsets, document_bounds = array.array("q", [0]), array.array("q", [0])
    for ids, starts, lengths in blocks:
        all_ids.extend(ids)
        all_starts.extend(starts)
        for length in lengths:
            if length >= 0:
                segment_offsets.append(segment_offsets[-1] + length)
            elif len(segment_offsets) - 1 > document_bounds[-1]:  # a break ends a non-empty document
                document_bounds.append(len(segment_offsets) - 1)
    if len(segment_offsets) - 1 > document_bounds[-1]:
        document_bounds.append(len(segment_offsets) - 1)
    return TokenizedCorpus(ids=all_ids, starts=bytes(all_starts), segment_offsets=segment_offsets,
                           document_bounds=document_bounds)


@dataclasses.dataclass(frozen=True)
class _BuildState:
    corpus: TokenizedCorpus
    documents: list[int]  # shuffled document order
    options: PretrainingOptions
    vocab: VocabIds


def unit_rng(random_seed: int, dupe_pass: int, unit_index: int) -> random.Random:
    """The generator of one unit of work, derived only from the seed and the unit's indices."""
    # A string seed is hashed with SHA-512 by `random.Random`, so it is stable across runs and processes.
    return random.Random(f"albert-pretraining/{random_seed}/{dupe_pass}/{unit_index}")


def _build_unit(state: _BuildState, unit: Unit) -> list[bytes]:
    """Builds and serialises the instances of documents [start, stop) for one dupe pass."""
    dupe_pass, unit_index, start, stop = unit
    rng = unit_rng(state.options.random_seed, dupe_pass, unit_index)
    out = []
    for document_index in range(start, stop):
        for instance in create_instances_from_document(state.corpus, state.documents, document_index,
                                                       state.options, state.vocab, rng):
            example = instance.to_example(state.options.max_seq_length, state.options.num_prediction_slots)
            # Deterministic serialisation sorts the feature map, so equal data gives equal bytes.
            out.append(example.SerializeToString(deterministic=True))
    return out


def bounded_shuffle(items: Iterable[bytes], buffer_size: int, rng: random.Random) -> Iterator[bytes]:
    """Yields `items` in random order, holding at most `buffer_size` of them (tf.data's shuffle buffer).

    Each incoming item replaces a uniformly drawn buffered one, which is emitted; the rest are emitted in
    random order at the end. A buffer at least as large as the input is a full uniform shuffle.
    """
    buffer: list[bytes] = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        j = rng.randrange(buffer_size)
        yield buffer[j]
        buffer[j] = item
    rng.shuffle(buffer)
    yield from buffer


Unit = tuple[int, int, int, int]  # (dupe pass, unit index, first, end): documents [first, end) of the order


def plan_units(num_documents: int, options: PretrainingOptions, rng: random.Random,
               docs_per_unit: int = DEFAULT_DOCS_PER_UNIT) -> tuple[list[int], list[Unit]]:
    """The shuffled document order (drawn from `rng`) and the units of work over it.

    Returns:
      (documents, units): `documents` [num_documents] corpus document indices in processing order;
      `units`, per dupe pass, blocks of `docs_per_unit` positions of that order, each built with its
      own `unit_rng`.
    """
    if num_documents == 0:
        raise ValueError("The input files contain no text: nothing to build pretraining instances from.")
    documents = list(range(num_documents))
    rng.shuffle(documents)
    units = [(dupe_pass, unit_index, start, min(start + docs_per_unit, num_documents))
             for dupe_pass in range(options.dupe_factor)
             for unit_index, start in enumerate(range(0, num_documents, docs_per_unit))]
    return documents, units


def build_unit(corpus: TokenizedCorpus, documents: list[int], options: PretrainingOptions, vocab: VocabIds,
               unit: Unit) -> list[bytes]:
    """The serialised instances of one unit of work (the same bytes wherever it runs)."""
    return _build_unit(_BuildState(corpus=corpus, documents=documents, options=options, vocab=vocab), unit)


def generate_training_instances(corpus: TokenizedCorpus, options: PretrainingOptions, vocab: VocabIds,
                                rng: random.Random, num_workers: int = 1,
                                docs_per_unit: int = DEFAULT_DOCS_PER_UNIT,
                                shuffle_buffer_size: int = DEFAULT_SHUFFLE_BUFFER_SIZE) -> Iterator[bytes]:
    """Shuffles the documents with `rng`, builds `dupe_factor` passes of instances, and yields them through
    a `bounded_shuffle` of `shuffle_buffer_size` driven by `rng`.

    Yields serialised `tf.train.Example`s in their final order, the same for any `num_workers`, while
    holding only the buffer (plus the units in flight), not the whole output.
    """
    documents, units = plan_units(corpus.num_documents, options, rng, docs_per_unit)
    state = _BuildState(corpus=corpus, documents=documents, options=options, vocab=vocab)
    workers = min(num_workers, len(units))
    built = (s for unit in parallel.ordered_map(_build_unit, state, units, workers) for s in unit)
    yield from bounded_shuffle(built, shuffle_buffer_size, rng)


# ----------------------------------------------------------------------------------------------------
# The whole program.


def _log_instance(serialized: bytes, inv_vocab: dict[int, str]) -> None:
    example = tfrecord.Example.FromString(serialized)
    feats = example.features.feature
    length = sum(feats["input_mask"].int64_list.value)
    tokens = [inv_vocab.get(i, "<?>") for i in feats["input_ids"].int64_list.value[:length]]
    logging.info("*** Example ***")
    logging.info("tokens: %s", " ".join(tokens))
    for name in ("input_ids", "input_mask", "segment_ids", "token_boundary", "masked_lm_positions",
                 "masked_lm_ids", "masked_lm_weights", "next_sentence_labels"):
        values = feats[name].int64_list.value or feats[name].float_list.value
        logging.info("%s: %s", name, " ".join(str(v) for v in values))


def output_paths(output_file: str | Sequence[str], num_output_shards: int = 0) -> list[str]:
    """The files to write: the comma-separated `output_file` paths, or with `num_output_shards` N > 0
    the N files ``<output_file>-SSSSS-of-NNNNN`` of the one `output_file` (Beam's shard names)."""
    paths = output_file.split(",") if isinstance(output_file, str) else output_file
    paths = [p.strip() for p in paths if p.strip()]
    if not paths:
        raise ValueError("--output_file is empty: pass one or more comma-separated output paths.")
    if num_output_shards < 0:
        raise ValueError(f"--num_output_shards={num_output_shards} must be >= 0 (0: write --output_file as given).")
    if num_output_shards:
        if len(paths) > 1:
            raise ValueError("--num_output_shards names the files itself: pass one --output_file prefix, not "
                             f"{len(paths)} comma-separated paths.")
        return tfrecord.sharded_names(paths[0], num_output_shards)
    return paths


def load_tokenizer(spm_model_file: str | None, vocab_file: str | None,
                   do_lower_case: bool) -> tuple[tokenization.FullTokenizer, VocabIds]:
    """The tokenizer of the flags (SentencePiece if `spm_model_file`, else WordPiece) and its ids.

    Raises:
      ValueError / FileNotFoundError: neither file given, a missing file, or no [CLS]/[SEP]/[MASK].
    """
    if not spm_model_file and not vocab_file:
        raise ValueError("Pass --spm_model_file (SentencePiece model, e.g. 30k-clean.model) or --vocab_file "
                         "(WordPiece vocabulary): neither was given.")
    for flag, path in (("spm_model_file", spm_model_file), ("vocab_file", None if spm_model_file else vocab_file)):
        if path and not fileio.exists(path):
            raise FileNotFoundError(f"--{flag}={path}: file not found.")
    tokenizer = tokenization.FullTokenizer(vocab_file=None if spm_model_file else vocab_file,
                                           do_lower_case=do_lower_case, spm_model_file=spm_model_file)
    vocab = VocabIds.from_tokenizer(tokenizer, f"--spm_model_file={spm_model_file}" if spm_model_file
                                    else f"--vocab_file={vocab_file}")
    return tokenizer, vocab


def create_pretraining_data(
        input_file: str | Sequence[str], output_file: str | Sequence[str], *,
        spm_model_file: str | None = None, vocab_file: str | None = None, do_lower_case: bool = True,
        do_whole_word_mask: bool = True, do_permutation: bool = False, favor_shorter_ngram: bool = True,
        random_next_sentence: bool = False, max_seq_length: int = 512, ngram: int = 3,
        max_predictions_per_seq: int = 20, random_seed: int = 12345, dupe_factor: int = 40,
        masked_lm_prob: float = 0.15, short_seq_prob: float = 0.1, num_workers: int | None = None,
        input_file_mode: str = "r", docs_per_unit: int = DEFAULT_DOCS_PER_UNIT,
        shuffle_buffer_size: int = DEFAULT_SHUFFLE_BUFFER_SIZE,
        allow_binary_input: bool = False, num_output_shards: int = 0) -> PretrainingDataSummary:
    """Reads raw text and writes ALBERT pretraining TFRecords; the library form of the command line.

    Args:
      input_file: comma-separated glob patterns (or a list of them) of text files: one sentence per line,
        blank lines between documents.
      output_file: comma-separated output paths (or a list); instances go round-robin over them.
      num_output_shards: if N > 0, write round-robin to ``<output_file>-SSSSS-of-NNNNN`` instead (one
        `output_file` prefix; the names of the Beam pipeline's shards, `output_paths`).
      spm_model_file / vocab_file: SentencePiece model (SPM mode), else a WordPiece vocabulary.
      input_file_mode: "r" or "rb", accepted for compatibility with the original flag; files are always
        read as bytes and decoded as UTF-8 (Latin-1 for undecodable lines, with a warning).
      num_workers: processes for tokenising and building (default: CPU count); output does not depend on it.
      docs_per_unit: documents per seeded unit of work; part of the output's definition.
      shuffle_buffer_size: instances held by the final shuffle (instances stream to disk through it); part
        of the output's definition. At least the number of instances: a full shuffle, like the original.
      allow_binary_input: read files that look binary or mostly undecodable (refused by default).
      The other arguments are the original flags (see `PretrainingOptions`).

    Returns:
      A `PretrainingDataSummary`.
    """
    options = PretrainingOptions(
        max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq,
        masked_lm_prob=masked_lm_prob, short_seq_prob=short_seq_prob, ngram=ngram,
        do_whole_word_mask=do_whole_word_mask, do_permutation=do_permutation,
        favor_shorter_ngram=favor_shorter_ngram, random_next_sentence=random_next_sentence,
        dupe_factor=dupe_factor, random_seed=random_seed)
    if input_file_mode not in ("r", "rb"):
        raise ValueError(f"--input_file_mode={input_file_mode!r}: use 'r' or 'rb'.")
    output_files = output_paths(output_file, num_output_shards)
    if docs_per_unit < 1:
        raise ValueError(f"docs_per_unit={docs_per_unit} must be >= 1.")
    if shuffle_buffer_size < 1:
        raise ValueError(f"shuffle_buffer_size={shuffle_buffer_size} must be >= 1.")
    input_files = fileio.expand_file_patterns(input_file, what="input_file")
    num_workers = num_workers or os.cpu_count() or 1
    tokenizer, vocab = load_tokenizer(spm_model_file, vocab_file, do_lower_case)

    logging.info("*** Reading from input files ***")
    for path in input_files:
        logging.info("  %s", path)
    corpus = read_documents(input_files, tokenizer, do_lower_case, num_workers, allow_binary_input)
    logging.info("Read %d documents; building %d passes with %d worker(s).",
                 corpus.num_documents, options.dupe_factor, num_workers)
    instances = generate_training_instances(corpus, options, vocab, random.Random(options.random_seed),
                                            num_workers, docs_per_unit, shuffle_buffer_size)

    logging.info("*** Writing to output files ***")
    for path in output_files:
        logging.info("  %s", path)
    inv_vocab = {i: piece for piece, i in tokenizer.vocab.items()}
    with tfrecord.RoundRobinWriter(output_files) as writer:
        for index, serialized in enumerate(instances):
            writer.write(serialized)
            if index < _NUM_LOGGED_INSTANCES:
                _log_instance(serialized, inv_vocab)
    total, k = writer.count, len(output_files)
    per_file = {path: (total - j + k - 1) // k for j, path in enumerate(output_files)}
    logging.info("Wrote %d total instances from %d documents:", total, corpus.num_documents)
    for path, count in per_file.items():
        logging.info("  %s: %d", path, count)
    return PretrainingDataSummary(num_documents=corpus.num_documents, num_instances=total,
                                  instances_per_file=per_file)


# ----------------------------------------------------------------------------------------------------
# Reading the TFRecords for training.


def _check_record_lengths(files: Sequence[str], seq_length: int, max_predictions_per_seq: int) -> None:
    """Compares the first record's feature lengths with the flags, so mismatches fail with a clear message."""
    import tensorflow as tf

    first = next(iter(tf.data.TFRecordDataset(list(files)).take(1)), None)
    if first is None:
        raise ValueError(f"--input_file: the files {', '.join(files)} contain no records.")
    feats = tf.train.Example.FromString(first.numpy()).features.feature
    needed = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
              "masked_lm_weights", "next_sentence_labels")
    missing = [n for n in needed if n not in feats]
    if missing:
        raise ValueError(f"--input_file: records in {files[0]} lack {', '.join(missing)}; these are not "
                         "pretraining records (write them with create_pretraining_data.py).")
    seq_in_file = len(feats["input_ids"].int64_list.value)
    if seq_in_file != seq_length:
        raise ValueError(f"--max_seq_length={seq_length} but {files[0]} holds sequences of length {seq_in_file}: "
                         f"pass --max_seq_length={seq_in_file} (or regenerate the data).")
    p_in_file = len(feats["masked_lm_positions"].int64_list.value)
    if p_in_file != max_predictions_per_seq:
        raise ValueError(
            f"--max_predictions_per_seq={max_predictions_per_seq} but {files[0]} holds {p_in_file} "
            f"masked_lm positions per sequence: pass --max_predictions_per_seq={p_in_file} (data written with "
            "--do_permutation holds twice the writer's max_predictions_per_seq).")


def pretraining_dataset(input_patterns: str | Sequence[str], seq_length: int, max_predictions_per_seq: int,
                        batch_size: int, is_training: bool,
                        input_context: tf.distribute.InputContext | None = None, *,
                        repeat: bool | None = None, cycle_length: int = 4, shuffle_buffer_size: int = 100,
                        seed: int | None = None) -> tf.data.Dataset:
    """The pretraining input pipeline (the original `input_fn_builder`, TF2 style).

    Args:
      input_patterns: comma-separated globs (or a list) of TFRecord files from `create_pretraining_data`.
      seq_length: S, must equal the files' max_seq_length.
      max_predictions_per_seq: P, must equal the files' masked_lm length (checked on the first record).
      batch_size: examples per batch this dataset yields (per replica when distributed; use
        `input_context.get_per_replica_batch_size(global_batch_size)`).
      is_training: shuffle files and records and interleave files; otherwise read in order.
      input_context: when given with several input pipelines, each pipeline reads a disjoint shard: whole
        files when there are at least as many files as pipelines, else every n-th record.
      repeat: repeat forever (default: `is_training`).
      cycle_length: files read in parallel when training (capped at the number of files).
      shuffle_buffer_size: record shuffle buffer when training.
      seed: shuffle seed. With a seed the files are also interleaved in a fixed order, so the stream is
        the same in every run and a resumed distributed run that skips the batches it consumed reads on
        where it stopped. None: nondeterministic, with the original's sloppy (first-ready) interleave.

    Returns:
      A dataset of dicts, batches of exactly `batch_size` (drop_remainder): `input_word_ids`,
      `input_mask`, `input_type_ids` int32 [B,S]; `masked_lm_positions`, `masked_lm_ids` int32 [B,P];
      `masked_lm_weights` float32 [B,P]; `next_sentence_labels` int32 [B,1].
    """
    # TensorFlow is imported here, not at the top: writing pretraining data does not need it.
    import tensorflow as tf

    from albert_tf.data import records

    files = records.expand_file_patterns(input_patterns, what="input_file")
    _check_record_lengths(files, seq_length, max_predictions_per_seq)
    repeat = is_training if repeat is None else repeat
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    shard_files = num_pipelines > 1 and len(files) >= num_pipelines

    if shard_files:
        files = files[pipeline_id::num_pipelines]
    if is_training and (num_pipelines == 1 or shard_files):
        d = tf.data.Dataset.from_tensor_slices(files)
        if repeat:
            d = d.repeat()
        d = d.shuffle(len(files), seed=seed)
        d = d.interleave(tf.data.TFRecordDataset, cycle_length=min(cycle_length, len(files)),
                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None)
    else:
        d = tf.data.TFRecordDataset(files)
        if num_pipelines > 1 and not shard_files:
            d = d.shard(num_pipelines, pipeline_id)
        if repeat:
            d = d.repeat()
    if is_training:
        d = d.shuffle(shuffle_buffer_size, seed=seed)
    d = d.batch(batch_size, drop_remainder=True)

    spec = {
        "input_ids": records.fixed_len_int(seq_length),
        "input_mask": records.fixed_len_int(seq_length),
        "segment_ids": records.fixed_len_int(seq_length),
        "masked_lm_positions": records.fixed_len_int(max_predictions_per_seq),
        "masked_lm_ids": records.fixed_len_int(max_predictions_per_seq),
        "masked_lm_weights": records.fixed_len_float(max_predictions_per_seq),
        "next_sentence_labels": records.fixed_len_int(1),
    }

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = records.parse_and_cast(serialized, spec)
        return {records.MODEL_INPUT_NAMES.get(k, k): v for k, v in parsed.items()}

    d = d.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return d.prefetch(tf.data.AUTOTUNE)
