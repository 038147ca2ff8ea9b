"""Tests of create_pretraining_data (albert_tf.tasks.pretraining.data) and the pretraining TFRecord reader.

Corpora are generated here. The WordPiece corpus names every word after its document and line
(`d{doc}l{line}`, optionally followed by `##a`/`##b` pieces), so a test can tell from the tokens alone where
each part of a pair came from and check the sentence-order semantics.
"""
from __future__ import annotations

import collections
import itertools
import os
import random
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from albert_tf import tokenization
from albert_tf.tasks.pretraining import data as pretraining

from conftest import FIXTURES, ROOT

SPM_MODEL = os.path.join(FIXTURES, "tokenization", "tiny-clean.model")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP, MASK = range(5)
WORD_RE = re.compile(r"^d(\d+)l(\d+)$")
NUM_DOCS = 60
FEATURES = {  # name -> (kind, length as a function of S and P)
    "input_ids": ("int64_list", "S"), "input_mask": ("int64_list", "S"), "segment_ids": ("int64_list", "S"),
    "token_boundary": ("int64_list", "S"), "masked_lm_positions": ("int64_list", "P"),
    "masked_lm_ids": ("int64_list", "P"), "masked_lm_weights": ("float_list", "P"),
    "next_sentence_labels": ("int64_list", "1"),
}


# ---------------------------------------------------------------------------------------------------
# Helpers


def doc_line_corpus(num_docs: int = NUM_DOCS, seed: int = 0) -> tuple[str, list[str]]:
    """Text with `num_docs` documents (every 5th has one line) and its WordPiece vocabulary."""
    rng = random.Random(seed)
    docs, vocab = [], list(SPECIALS) + ["##a", "##b"]
    for d in range(num_docs):
        num_lines = 1 if d % 5 == 0 else rng.randint(2, 6)
        lines = []
        for line in range(num_lines):
            vocab.append(f"d{d}l{line}")
            words = [f"d{d}l{line}" + rng.choice(["", "", "a", "ab", "b"]) for _ in range(rng.randint(2, 5))]
            lines.append(" ".join(words))
        docs.append("\n".join(lines))
    return "\n\n".join(docs) + "\n", vocab


def english_corpus(num_docs: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = ("the quick brown fox jumps over lazy dog while every clever student reads books about "
             "science history and music in 1990, 2001 or later").split()
    docs = []
    for _ in range(num_docs):
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))).capitalize() + "."
                 for _ in range(rng.randint(1, 6))]
        docs.append("\n".join(lines))
    return "\n\n".join(docs) + "\n"


def read_records(paths) -> list[dict[str, list]]:
    """Every record of `paths` (in file order) as {feature name: list of values}, via raw tf.train.Example."""
    out = []
    for path in ([paths] if isinstance(paths, str) else paths):
        for raw in tf.data.TFRecordDataset(path):
            feats = tf.train.Example.FromString(raw.numpy()).features.feature
            out.append({k: list(getattr(v, FEATURES[k][0]).value) if k in FEATURES else None
                        for k, v in feats.items()})
    return out


def unpadded(rec: dict) -> tuple[list[int], list[int], list[int]]:
    """(original token ids with masked labels restored, prediction positions, output ids), unpadded."""
    n = sum(rec["input_mask"])
    output = rec["input_ids"][:n]
    original = list(output)
    positions = [p for p, w in zip(rec["masked_lm_positions"], rec["masked_lm_weights"]) if w == 1.0]
    for p, label in zip(positions, rec["masked_lm_ids"]):
        original[p] = label
    return original, positions, output


def budget(length: int, max_predictions: int = 20, prob: float = 0.15) -> int:
    return min(max_predictions, max(1, int(round(length * prob))))


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory):
    """The doc/line corpus, its vocabulary file and id -> piece list."""
    d = tmp_path_factory.mktemp("wp")
    text, vocab = doc_line_corpus()
    (d / "corpus.txt").write_text(text)
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return d, vocab


@pytest.fixture(scope="module")
def sop_records(wordpiece):
    """Records of the doc/line corpus: 48-token sequences, 30 passes (about 1900 pairs)."""
    d, vocab = wordpiece
    out = str(d / "sop.tfrecord")
    pretraining.create_pretraining_data(str(d / "corpus.txt"), out, vocab_file=str(d / "vocab.txt"),
                                        max_seq_length=48, dupe_factor=30, random_seed=7, num_workers=1)
    return read_records(out), vocab


def word_of(piece: str) -> tuple[int, int] | None:
    m = WORD_RE.match(piece)
    return (int(m.group(1)), int(m.group(2))) if m else None


def segments(rec: dict, vocab: list[str]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(doc, line) of every start piece of A and of B (original tokens)."""
    original, _, _ = unpadded(rec)
    n = len(original)
    parts: tuple[list, list] = ([], [])
    for i in range(1, n - 1):
        w = word_of(vocab[original[i]])
        if w is not None:
            parts[rec["segment_ids"][i]].append(w)
    return parts


# ---------------------------------------------------------------------------------------------------
# Output schema and layout


def test_schema_padding_and_round_robin_spm(tmp_path):
    (tmp_path / "a.txt").write_text(english_corpus(30, seed=1))
    (tmp_path / "b.txt").write_text(english_corpus(30, seed=2))
    outs = [str(tmp_path / "o1.tfrecord"), str(tmp_path / "o2.tfrecord"), str(tmp_path / "o3.tfrecord")]
    summary = pretraining.create_pretraining_data(
        f"{tmp_path}/a.txt,{tmp_path}/b*.txt", ",".join(outs), spm_model_file=SPM_MODEL,
        max_seq_length=64, max_predictions_per_seq=10, dupe_factor=2, num_workers=1)
    counts = [len(read_records(p)) for p in outs]
    total = sum(counts)
    assert summary.num_instances == total and summary.instances_per_file == dict(zip(outs, counts))
    assert max(counts) - min(counts) <= 1 and counts == sorted(counts, reverse=True)  # round-robin from file 1
    sizes = {"S": 64, "P": 10, "1": 1}
    for rec in read_records(outs):
        assert set(rec) == set(FEATURES)
        for name, (_, length) in FEATURES.items():
            assert len(rec[name]) == sizes[length], name
        n = sum(rec["input_mask"])
        assert rec["input_mask"] == [1] * n + [0] * (64 - n)
        for name in ("input_ids", "segment_ids", "token_boundary"):
            assert rec[name][n:] == [0] * (64 - n), name
        m = int(sum(rec["masked_lm_weights"]))
        assert rec["masked_lm_weights"] == [1.0] * m + [0.0] * (10 - m)
        assert rec["masked_lm_positions"][m:] == [0] * (10 - m) and rec["masked_lm_ids"][m:] == [0] * (10 - m)
        assert rec["next_sentence_labels"] in ([0], [1])


def test_pair_layout_segment_ids_and_boundaries(sop_records):
    records, vocab = sop_records
    for rec in records:
        original, positions, output = unpadded(rec)
        n = len(original)
        seps = [i for i, t in enumerate(original) if t == SEP]
        assert original[0] == CLS and len(seps) == 2 and seps[1] == n - 1
        a_len = seps[0] - 1
        assert a_len >= 1 and n - 2 - seps[0] >= 1
        assert rec["segment_ids"][:n] == [0] * (a_len + 2) + [1] * (n - a_len - 2)
        # Masks never hit [CLS]/[SEP]; positions are sorted and unique; labels are real word pieces.
        assert not set(positions) & {0, seps[0], n - 1}
        assert positions == sorted(set(positions))
        assert all(t >= len(SPECIALS) for i, t in enumerate(original) if i not in (0, seps[0], n - 1))
        # token_boundary: 1 at specials and at every piece not starting with ##.
        expected = [1 if i in (0, seps[0], n - 1) or not vocab[t].startswith("##") else 0
                    for i, t in enumerate(original)]
        assert rec["token_boundary"][:n] == expected
        # Whole-word masking: a masked piece's whole word is masked.
        masked = set(positions)
        for p in masked:
            if vocab[original[p]].startswith("##") and original[p - 1] not in (CLS, SEP):
                assert p - 1 in masked
            if p + 1 < n and vocab[original[p + 1]].startswith("##"):
                assert p + 1 in masked


def test_token_boundary_spm(tmp_path):
    (tmp_path / "c.txt").write_text(english_corpus(20, seed=3))
    out = str(tmp_path / "o.tfrecord")
    pretraining.create_pretraining_data(str(tmp_path / "c.txt"), out, spm_model_file=SPM_MODEL,
                                        max_seq_length=64, dupe_factor=1, num_workers=1)
    tok = tokenization.FullTokenizer(spm_model_file=SPM_MODEL)
    inv = {i: p for p, i in tok.vocab.items()}
    seen = collections.Counter()
    for rec in read_records(out):
        original, _, _ = unpadded(rec)
        for i, t in enumerate(original):
            piece = inv[t]
            if piece.startswith("\u2581") or piece in ("[CLS]", "[SEP]"):
                assert rec["token_boundary"][i] == 1, piece
                seen[1] += 1
            elif piece.isalpha() and piece.isascii():  # a bare letters piece continues a word
                assert rec["token_boundary"][i] == 0, piece
                seen[0] += 1
    assert seen[0] > 50 and seen[1] > 50


# ---------------------------------------------------------------------------------------------------
# Sentence order


def test_sentence_order_semantics(sop_records):
    records, vocab = sop_records
    single_line_docs = {d for d in range(NUM_DOCS) if d % 5 == 0}
    kinds = collections.Counter()
    for rec in records:
        a, b = segments(rec, vocab)
        if not a or not b:  # a side trimmed down to ## pieces only
            kinds["unknown"] += 1
            continue
        a_docs, b_docs = {w[0] for w in a}, {w[0] for w in b}
        assert len(a_docs) == 1 and len(b_docs) == 1  # each side comes from one document
        # Within a side, lines appear in document order.
        assert [w[1] for w in a] == sorted(w[1] for w in a) and [w[1] for w in b] == sorted(w[1] for w in b)
        label = rec["next_sentence_labels"][0]
        same_doc = a_docs == b_docs
        if label == 0:
            assert same_doc and max(w[1] for w in a) < min(w[1] for w in b)
            kinds["in_order"] += 1
        elif same_doc:
            assert max(w[1] for w in b) < min(w[1] for w in a)  # swapped: B's text precedes A's
            kinds["swapped"] += 1
        else:
            kinds["random"] += 1
        if a_docs <= single_line_docs:  # a one-segment chunk always gets a random-document B
            assert label == 1 and not same_doc
    assert kinds["unknown"] < 0.05 * len(records)
    assert min(kinds["in_order"], kinds["swapped"], kinds["random"]) > 30
    # Multi-segment chunks are swapped with probability 0.5.
    assert 0.4 < kinds["swapped"] / (kinds["swapped"] + kinds["in_order"]) < 0.6


def test_random_next_sentence_puts_back_unused_segments(wordpiece, tmp_path):
    d, vocab = wordpiece
    out = str(tmp_path / "nsp.tfrecord")
    # Long sequences and no short targets: every document is one chunk.
    pretraining.create_pretraining_data(str(d / "corpus.txt"), out, vocab_file=str(d / "vocab.txt"),
                                        max_seq_length=256, short_seq_prob=0.0, dupe_factor=1,
                                        random_next_sentence=True, num_workers=1)
    text, _ = doc_line_corpus()
    num_lines = [doc.count("\n") + 1 for doc in text.strip().split("\n\n")]
    two_line_docs = {i for i, n in enumerate(num_lines) if n == 2}
    by_doc = collections.defaultdict(list)
    for rec in read_records(out):
        a, b = segments(rec, vocab)
        if rec["next_sentence_labels"][0] == 1:
            # A random B takes whole lines from a random start until the target length (253 tokens here,
            # more than any document) is reached, so it runs to the end of its document.
            b_lines = sorted({w[1] for w in b})
            assert b_lines == list(range(b_lines[0], num_lines[b[0][0]]))
        by_doc[a[0][0]].append((sorted({w[1] for w in a}), rec["next_sentence_labels"][0],
                                {w[0] for w in b}))
    outcomes = collections.Counter()
    for doc in two_line_docs:
        got = sorted(by_doc[doc])
        if len(got) == 1:  # in order: A = line 0, B = line 1
            assert got == [([0], 0, {doc})]
            outcomes["in_order"] += 1
        else:  # random B for line 0, then line 1 (put back) gets its own pair with a random B
            assert [(g[0], g[1]) for g in got] == [([0], 1), ([1], 1)]
            assert all(doc not in g[2] for g in got)
            outcomes["random"] += 1
    assert outcomes["in_order"] > 0 and outcomes["random"] > 0


def test_truncate_seq_pair():
    rng = random.Random(0)
    ends = set()
    for _ in range(50):
        a, b = list(range(10)), list(range(100, 104))
        pretraining.truncate_seq_pair(a, b, 8, rng)
        # a shrinks 10 -> 5 alone (it is longer); at 5+4=9 a (longer) loses one more: (4, 4).
        assert len(a) == 4 and b == list(range(100, 104))
        assert a == list(range(a[0], a[0] + 4))  # a contiguous run: only ends are removed
        ends.add(a[0])
        a, b = list(range(5)), list(range(5, 10))
        pretraining.truncate_seq_pair(a, b, 9, rng)
        assert a == list(range(5)) and len(b) == 4  # ties trim B
    assert len(ends) > 3  # both the front and the back get trimmed


# ---------------------------------------------------------------------------------------------------
# Masking


def test_masking_statistics(sop_records):
    records, vocab = sop_records
    kinds = collections.Counter()
    predicted = total_budget = 0
    replaced_ids = set()
    for rec in records:
        original, positions, output = unpadded(rec)
        b = budget(len(original))
        assert len(positions) <= b
        predicted += len(positions)
        total_budget += b
        for p in positions:
            if output[p] == MASK:
                kinds["mask"] += 1
            elif output[p] == original[p]:
                kinds["keep"] += 1
            else:
                kinds["random"] += 1
                replaced_ids.add(output[p])
    n = sum(kinds.values())
    v = len(vocab)
    assert predicted / total_budget > 0.97
    # A random replacement is [MASK] or the original token with probability 1/V each.
    assert abs(kinds["mask"] / n - (0.8 + 0.1 / v)) < 0.02
    assert abs(kinds["keep"] / n - (0.1 + 0.1 / v)) < 0.015
    assert abs(kinds["random"] / n - 0.1 * (1 - 2 / v)) < 0.015
    # Replacements come from the whole vocabulary, special pieces included.
    assert replaced_ids & {PAD, UNK, CLS, SEP}


def test_vocab_ids_use_every_piece(wordpiece):
    d, vocab = wordpiece
    wp = pretraining.VocabIds.from_tokenizer(tokenization.FullTokenizer(vocab_file=str(d / "vocab.txt")), "v")
    assert (wp.cls_id, wp.sep_id, wp.mask_id) == (CLS, SEP, MASK)
    assert wp.replacement_ids == tuple(range(len(vocab)))
    sp = pretraining.VocabIds.from_tokenizer(tokenization.FullTokenizer(spm_model_file=SPM_MODEL), "m")
    assert (sp.cls_id, sp.sep_id, sp.mask_id) == (2, 3, 4)  # the 30k-clean layout (spec section 2.4)
    assert sp.replacement_ids == tuple(range(1000))


def test_vocab_without_mask_is_rejected(tmp_path):
    (tmp_path / "v.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nword\n")
    with pytest.raises(ValueError, match=r"--vocab_file=.*\[MASK\]"):
        pretraining.VocabIds.from_tokenizer(tokenization.FullTokenizer(vocab_file=str(tmp_path / "v.txt")),
                                            f"--vocab_file={tmp_path / 'v.txt'}")


@pytest.mark.parametrize("favor_shorter, p3, p111", [(True, 2 / 11, (6 / 11) ** 2), (False, 6 / 11, (2 / 11) ** 2)])
def test_ngram_length_distribution(favor_shorter, p3, p111):
    """Budget 3 over 150 one-piece words: the first n-gram fills the budget alone iff n = 3 (p(3)); three
    separate words need n = 1 twice in a row (p(1)^2), after which the back-off forces a 1-gram."""
    options = pretraining.PretrainingOptions(max_predictions_per_seq=3, favor_shorter_ngram=favor_shorter)
    vocab = pretraining.VocabIds(cls_id=CLS, sep_id=SEP, mask_id=MASK, replacement_ids=tuple(range(300)))
    ids = [CLS] + list(range(10, 160)) + [SEP]
    rng = random.Random(1)
    shapes = collections.Counter()
    trials = 2500
    for _ in range(trials):
        _, positions, labels, _ = pretraining.create_masked_lm_predictions(
            ids, [1] * len(ids), {0, len(ids) - 1}, options, vocab, rng)
        assert len(positions) == 3 and labels == [ids[p] for p in positions]
        runs = tuple(sorted(len(list(g)) for _, g in itertools.groupby(
            enumerate(positions), key=lambda t: t[1] - t[0])))
        shapes[runs] += 1
    assert abs(shapes[(3,)] / trials - p3) < 0.03
    assert abs(shapes[(1, 1, 1)] / trials - p111) < 0.03


def test_masking_budget_rounding_and_zero_prob():
    vocab = pretraining.VocabIds(cls_id=CLS, sep_id=SEP, mask_id=MASK, replacement_ids=tuple(range(50)))
    rng = random.Random(0)
    # len 30 * 0.15 = 4.5 -> Python's round gives 4 (banker's rounding); len 50 -> 7.5 -> 8.
    for length, expected in ((30, 4), (50, 8), (4, 1)):
        ids = [CLS] + list(range(10, 10 + length - 2)) + [SEP]
        options = pretraining.PretrainingOptions(do_whole_word_mask=False)
        _, positions, _, _ = pretraining.create_masked_lm_predictions(
            ids, [1] * length, {0, length - 1}, options, vocab, rng)
        assert len(positions) == expected
    options = pretraining.PretrainingOptions(masked_lm_prob=0.0)
    out, positions, labels, _ = pretraining.create_masked_lm_predictions(
        ids, [1] * len(ids), {0, len(ids) - 1}, options, vocab, rng)
    assert out == ids and positions == [] and labels == []


def test_do_permutation_doubles_prediction_slots(wordpiece, tmp_path):
    d, vocab = wordpiece
    out = str(tmp_path / "perm.tfrecord")
    pretraining.create_pretraining_data(str(d / "corpus.txt"), out, vocab_file=str(d / "vocab.txt"),
                                        max_seq_length=48, max_predictions_per_seq=5, dupe_factor=2,
                                        do_permutation=True, num_workers=1)
    over = 0
    for rec in read_records(out):
        assert len(rec["masked_lm_positions"]) == 10 and len(rec["masked_lm_weights"]) == 10
        original, positions, output = unpadded(rec)
        b = budget(len(original), max_predictions=5)
        assert len(positions) <= 2 * b
        over += len(positions) > b
    assert over > 0


# ---------------------------------------------------------------------------------------------------
# Determinism and parallelism


def test_same_seed_same_bytes_for_any_worker_count(wordpiece, tmp_path, monkeypatch):
    d, _ = wordpiece
    # Small tasks so that both the tokenising and the building stages really split across workers.
    monkeypatch.setattr(pretraining, "_LINES_PER_TASK", 16)

    def run(name, seed, workers):
        outs = [str(tmp_path / f"{name}-{k}.tfrecord") for k in range(2)]
        # A shuffle buffer smaller than the output: instances stream to disk through it.
        pretraining.create_pretraining_data(str(d / "corpus.txt"), outs, vocab_file=str(d / "vocab.txt"),
                                            max_seq_length=48, dupe_factor=3, random_seed=seed,
                                            num_workers=workers, docs_per_unit=8, shuffle_buffer_size=5)
        return [open(p, "rb").read() for p in outs]

    one = run("one", 5, 1)
    assert one == run("again", 5, 1)
    assert one == run("two", 5, 2)
    assert one != run("other", 6, 2)


def test_bounded_shuffle_is_a_permutation_that_moves_items_at_most_the_buffer_earlier():
    items = [bytes([i]) for i in range(200)]
    out = list(pretraining.bounded_shuffle(items, 10, random.Random(3)))
    assert sorted(out) == items and out != items
    # Item i enters when the buffer is full and pushes out an older one: it leaves at position >= i - 10.
    assert all(out.index(item) >= i - 10 for i, item in enumerate(items))
    assert list(pretraining.bounded_shuffle(items, 1, random.Random(3))) == items
    # A buffer as large as the input holds everything, then shuffles it once: a full shuffle.
    full = list(pretraining.bounded_shuffle(items, 200, random.Random(3)))
    expected = list(items)
    random.Random(3).shuffle(expected)
    assert full == expected


# ---------------------------------------------------------------------------------------------------
# Reading documents


def test_read_documents_crlf_latin1_and_document_breaks(wordpiece, tmp_path, caplog):
    d, _ = wordpiece
    tok = tokenization.FullTokenizer(vocab_file=str(d / "vocab.txt"))
    (tmp_path / "1.txt").write_bytes(b"d1l0 d1l0a\r\nd1l1\r\n \r\nd2l0 caf\xe9\r\n\r\n\r\nd3l0")
    (tmp_path / "2.txt").write_bytes(b"d3l1\n\nd4l0\n")
    with caplog.at_level("WARNING"):
        corpus = pretraining.read_documents([str(tmp_path / "1.txt"), str(tmp_path / "2.txt")], tok)
    assert re.search(r"1\.txt.*Latin-1", caplog.text)
    docs = [[corpus.tokens(s, s + 1) for s in corpus.document_segments(d)] for d in range(corpus.num_documents)]
    pieces = [[tok.convert_ids_to_tokens(ids) for ids, _ in doc] for doc in docs]
    # "café" decodes as Latin-1, is lower-cased/accent-stripped to "cafe" and is unknown in this vocabulary.
    # The last document of 1.txt continues into 2.txt (no blank line between them), as in the original.
    assert pieces == [[["d1l0", "d1l0", "##a"], ["d1l1"]], [["d2l0", "[UNK]"]], [["d3l0"], ["d3l1"]], [["d4l0"]]]
    assert [list(seg[1]) for seg in docs[0]] == [[1, 1, 0], [1]]


def test_errors_name_the_flag(wordpiece, tmp_path):
    d, _ = wordpiece
    out = str(tmp_path / "o.tfrecord")
    with pytest.raises(FileNotFoundError, match="--input_file"):
        pretraining.create_pretraining_data(str(tmp_path / "missing*.txt"), out, spm_model_file=SPM_MODEL)
    with pytest.raises(ValueError, match="--spm_model_file.*--vocab_file"):
        pretraining.create_pretraining_data(str(d / "corpus.txt"), out)
    with pytest.raises(ValueError, match="--max_seq_length=4"):
        pretraining.create_pretraining_data(str(d / "corpus.txt"), out, spm_model_file=SPM_MODEL, max_seq_length=4)
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(ValueError, match="no text"):
        pretraining.create_pretraining_data(str(tmp_path / "empty.txt"), out, spm_model_file=SPM_MODEL)


# ---------------------------------------------------------------------------------------------------
# Reader


@pytest.fixture(scope="module")
def three_files(wordpiece):
    d, _ = wordpiece
    outs = [str(d / f"r{k}.tfrecord") for k in range(3)]
    pretraining.create_pretraining_data(str(d / "corpus.txt"), outs, vocab_file=str(d / "vocab.txt"),
                                        max_seq_length=32, max_predictions_per_seq=6, dupe_factor=1,
                                        num_workers=1)
    return outs


def test_reader_shapes_and_dtypes(three_files):
    ds = pretraining.pretraining_dataset(",".join(three_files), 32, 6, batch_size=4, is_training=True, seed=1)
    batch = next(iter(ds))
    expected = {"input_word_ids": (tf.int32, [4, 32]), "input_mask": (tf.int32, [4, 32]),
                "input_type_ids": (tf.int32, [4, 32]), "masked_lm_positions": (tf.int32, [4, 6]),
                "masked_lm_ids": (tf.int32, [4, 6]), "masked_lm_weights": (tf.float32, [4, 6]),
                "next_sentence_labels": (tf.int32, [4, 1])}
    assert {k: (v.dtype, v.shape.as_list()) for k, v in batch.items()} == expected


def test_reader_eval_order_and_sharding(three_files):
    records = [read_records(p) for p in three_files]

    def ids_of(recs):
        return [tuple(r["input_ids"]) for r in recs]

    def read(files, context=None, batch=2):
        ds = pretraining.pretraining_dataset(files, 32, 6, batch_size=batch, is_training=False,
                                             input_context=context)
        return [tuple(row) for b in ds for row in b["input_word_ids"].numpy().tolist()]

    everything = ids_of(records[0] + records[1] + records[2])
    assert read(three_files, batch=1) == everything
    assert len(read(three_files, batch=4)) == len(everything) // 4 * 4  # drop_remainder
    # Enough files: pipeline i reads files i, i+2, ...
    ctx = [tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i) for i in range(2)]
    assert read(three_files, ctx[0], 1) == ids_of(records[0] + records[2])
    assert read(three_files, ctx[1], 1) == ids_of(records[1])
    # One file for two pipelines: records are sharded instead.
    assert read(three_files[:1], ctx[0], 1) == ids_of(records[0])[0::2]
    assert read(three_files[:1], ctx[1], 1) == ids_of(records[0])[1::2]
    # Training with record sharding still yields batches.
    ds = pretraining.pretraining_dataset(three_files[:1], 32, 6, 2, is_training=True, input_context=ctx[1])
    assert next(iter(ds))["input_word_ids"].shape == (2, 32)


def test_reader_seeded_training_stream_is_the_same_every_run(three_files):
    """With a seed the training stream (shuffled files, interleaved, shuffled records) is identical in every
    run, whole or one pipeline of two: a resumed distributed run that skips what it consumed reads on."""
    def first_ids(context, skip=0, batches=6):
        ds = pretraining.pretraining_dataset(three_files, 32, 6, batch_size=2, is_training=True,
                                             input_context=context, seed=7, cycle_length=2).skip(skip)
        return [b["input_word_ids"].numpy().tolist() for b in ds.take(batches)]

    for context in (None, tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=0)):
        stream = first_ids(context)
        assert len({str(b) for b in stream}) > 1
        assert first_ids(context, skip=2, batches=4) == stream[2:]


def test_reader_length_mismatch_names_the_flag(three_files):
    with pytest.raises(ValueError, match=r"--max_predictions_per_seq=20 .*pass --max_predictions_per_seq=6"):
        pretraining.pretraining_dataset(three_files, 32, 20, batch_size=2, is_training=True)
    with pytest.raises(ValueError, match=r"--max_seq_length=64 .*pass --max_seq_length=32"):
        pretraining.pretraining_dataset(three_files, 64, 6, batch_size=2, is_training=True)


# ---------------------------------------------------------------------------------------------------
# Command line


def test_command_line_end_to_end(tmp_path):
    (tmp_path / "c.txt").write_text(english_corpus(10, seed=4))
    out = tmp_path / "out" / "x.tfrecord"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "create_pretraining_data.py"), f"--input_file={tmp_path}/c.txt",
         f"--output_file={out}", f"--spm_model_file={SPM_MODEL}", "--max_seq_length=32",
         "--max_predictions_per_seq=5", "--dupe_factor=2", "--num_workers=2", "--do_permutation"],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Wrote" in proc.stderr and "*** Example ***" in proc.stderr
    recs = read_records(str(out))
    assert recs and all(len(r["input_ids"]) == 32 and len(r["masked_lm_ids"]) == 10 for r in recs)


def test_command_line_rejects_unknown_flags_without_runner(tmp_path):
    (tmp_path / "c.txt").write_text(english_corpus(3, seed=4))
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "create_pretraining_data.py"), f"--input_file={tmp_path}/c.txt",
         f"--output_file={tmp_path}/x", f"--spm_model_file={SPM_MODEL}", "--direct_num_workers=2"],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)
    assert proc.returncode == 2
    assert re.search(r"^error: Unexpected arguments: --direct_num_workers=2 .*--runner", proc.stderr, re.M)
    assert not os.path.exists(tmp_path / "x")


# ---------------------------------------------------------------------------------------------------
# The TensorFlow-free writer and sharded output


def test_command_line_does_not_import_tensorflow(tmp_path):
    """The whole in-process run (flags, tokenizer, build, write) never imports TensorFlow or Keras."""
    (tmp_path / "c.txt").write_text(english_corpus(10, seed=5))
    out = tmp_path / "x.tfrecord"
    code = (
        "import runpy, sys\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        f"sys.argv = ['create_pretraining_data.py', '--input_file={tmp_path}/c.txt', '--output_file={out}',\n"
        f"            '--spm_model_file={SPM_MODEL}', '--max_seq_length=32', '--num_workers=2']\n"
        "try:\n"
        f"    runpy.run_path({os.path.join(ROOT, 'create_pretraining_data.py')!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & "
        "{'tensorflow', 'tf_keras', 'keras', 'tensorflow_text', 'tensorflow_hub'}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LOADED []" in proc.stdout
    assert "Wrote" in proc.stderr and read_records(str(out))


def test_files_equal_tensorflows_serialization_and_writer(wordpiece, tmp_path):
    """Each record is what tf.train.Example serializes for the same features, and the file is what
    tf.io.TFRecordWriter writes for the same records (the writer before it went TensorFlow-free)."""
    d, _ = wordpiece
    out = str(tmp_path / "o.tfrecord")
    pretraining.create_pretraining_data(str(d / "corpus.txt"), out, vocab_file=str(d / "vocab.txt"),
                                        max_seq_length=48, dupe_factor=2, num_workers=1, do_permutation=True)
    raw = [r.numpy() for r in tf.data.TFRecordDataset(out)]
    assert len(raw) > 100
    for record in raw:
        example = tf.train.Example()
        for name, values in read_records_from_bytes(record).items():
            getattr(example.features.feature[name], FEATURES[name][0]).value.extend(values)
        assert example.SerializeToString(deterministic=True) == record
    expected = str(tmp_path / "tf.tfrecord")
    with tf.io.TFRecordWriter(expected) as writer:
        for record in raw:
            writer.write(record)
    assert open(out, "rb").read() == open(expected, "rb").read()


def read_records_from_bytes(record: bytes) -> dict[str, list]:
    feats = tf.train.Example.FromString(record).features.feature
    return {k: list(getattr(v, FEATURES[k][0]).value) for k, v in feats.items()}


def test_num_output_shards_round_robin_of_the_single_file(wordpiece, tmp_path):
    d, _ = wordpiece
    common = dict(vocab_file=str(d / "vocab.txt"), max_seq_length=48, dupe_factor=2, random_seed=3, num_workers=1)
    single = str(tmp_path / "single.tfrecord")
    pretraining.create_pretraining_data(str(d / "corpus.txt"), single, **common)
    summary = pretraining.create_pretraining_data(str(d / "corpus.txt"), str(tmp_path / "out" / "train"),
                                                  num_output_shards=3, **common)
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == ["train-00000-of-00003", "train-00001-of-00003", "train-00002-of-00003"]
    records = [r.numpy() for r in tf.data.TFRecordDataset(single)]
    for k, name in enumerate(names):
        assert [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "out" / name))] == records[k::3]
    assert summary.num_instances == len(records)
    with pytest.raises(ValueError, match="--num_output_shards .*one --output_file"):
        pretraining.create_pretraining_data(str(d / "corpus.txt"), f"{tmp_path}/a,{tmp_path}/b",
                                            num_output_shards=2, **common)
