"""SQuAD examples, piece alignment, doc spans, features, TFRecords, side file, reader and the CLI.

Every SQuAD file is generated here (tmp_path); texts exercise case, accents, runs of spaces, the
"digits," comma rule, long contexts that need several doc spans, and unalignable paragraphs.
"""
import json
import logging
import os
import random
import string
import subprocess
import sys

import pytest
import tensorflow as tf

from albert_tf import tokenization
from albert_tf.data import cache
from albert_tf.tasks.squad import data as squad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPM_MODEL = os.path.join(ROOT, "tests", "fixtures", "tokenization", "tiny-clean.model")
CLS, SEP = 2, 3  # Control-symbol ids of every 30k-clean-style model (spec §2.4).
U = tokenization.SPIECE_UNDERLINE

ZOE = "Zoë  met   José in 1,000, days."
# Context made of distinct numbered words, long enough for several doc spans.
LONG = " ".join(f"Item {i} is ready." for i in range(40))
LONG_QUESTION = "Which numbered item is ready now?"  # 12 pieces: longer than max_query_length


@pytest.fixture(scope="module")
def tokenizer():
    return tokenization.FullTokenizer(spm_model_file=SPM_MODEL)


def squad_json(*paragraphs, version="1.1"):
    """A SQuAD file with one article; each paragraph is (context, [qa dicts])."""
    return {"version": version, "data": [{"title": "T", "paragraphs": [
        {"context": context, "qas": qas} for context, qas in paragraphs]}]}


def qa(qid, question, answers=(), impossible=None):
    entry = {"id": qid, "question": question,
             "answers": [{"text": text, "answer_start": start} for text, start in answers]}
    if impossible is not None:
        entry["is_impossible"] = impossible
    return entry


def write_json(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def decoded(sp_model, ids):
    """Text of piece ids with ▁ read as a space, stripped."""
    return "".join(sp_model.IdToPiece(i) for i in ids).replace(U, " ").strip()


# ----------------------------------------------------------------------------------------------
# read_squad_examples
# ----------------------------------------------------------------------------------------------

def test_read_examples_training_and_eval(tmp_path):
    data = squad_json(("The cat sat.", [qa("q1", "Who sat?", [("The cat", 0)]),
                                        qa("q2", "Who left?", [], impossible=True)]),
                      ("Dogs bark.", [qa("q3", "What barks?", [("Dogs", 0)], impossible=False)]))
    path = write_json(tmp_path / "train.json", data)
    train = squad.read_squad_examples(path, is_training=True)
    assert train == [
        squad.SquadExample("q1", "Who sat?", "The cat sat.", "The cat", 0, False),
        squad.SquadExample("q2", "Who left?", "The cat sat.", "", -1, True),
        squad.SquadExample("q3", "What barks?", "Dogs bark.", "Dogs", 0, False),
    ]
    # At prediction time answers are not read: several gold answers are fine.
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"].append({"text": "cat", "answer_start": 4})
    path = write_json(tmp_path / "dev.json", data)
    dev = squad.read_squad_examples(path, is_training=False)
    assert [(e.qas_id, e.orig_answer_text, e.start_position, e.is_impossible) for e in dev] == [
        ("q1", None, None, False), ("q2", None, None, False), ("q3", None, None, False)]


@pytest.mark.parametrize("data, is_training, expected", [
    ("{not json", False, ["not valid JSON", "line 1"]),
    ({"version": "1.1"}, False, ["\"data\" list"]),
    (squad_json(("c", [{"id": "q9", "answers": []}])), False, ["q9", "\"question\"", "missing"]),
    ({"data": [{"paragraphs": [{"qas": []}]}]}, False, ["article 0, paragraph 0", "\"context\""]),
    (squad_json(("The cat sat.", [qa("q1", "?", [("cat", 4), ("The cat", 0)])])), True,
     ["q1", "exactly 1 answer", "found 2"]),
    (squad_json(("The cat sat.", [qa("q1", "?", [("cat", 10)])])), True,
     ["q1", "does not lie inside", "answer_start"]),
    (squad_json(("The cat sat.", [qa("q1", "?", [("cat", "4")])])), True,
     ["q1", "\"answer_start\" must be an integer", "str '4'"]),
])
def test_read_examples_errors_name_file_and_question(tmp_path, data, is_training, expected):
    path = tmp_path / "bad.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    with pytest.raises(squad.SquadDataError) as err:
        squad.read_squad_examples(str(path), is_training)
    message = str(err.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_read_examples_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="--input_file"):
        squad.read_squad_examples(str(tmp_path / "nope.json"), False)


# ----------------------------------------------------------------------------------------------
# Alignment of pieces with the raw paragraph
# ----------------------------------------------------------------------------------------------

def test_banded_lcs_hand_case():
    # raw "a  b" against pieces text " a b" (▁a ▁b). By hand: the LCS is "a b" (3); backtracking
    # from the end takes b-b, then "up" past the second raw space (the diagonal is not strictly
    # better), aligns the first raw space, then a-a.
    score, moves = squad._banded_lcs(list("a  b"), " a b", max_dist=5)
    assert score == 3
    orig_to_tok, tok_to_orig = squad._backtrack(moves, 4, 4, 5)
    assert orig_to_tok == [1, 2, None, 3]
    assert tok_to_orig == [None, 0, 1, 3]


def test_convert_index_gap_rules():
    index = [None, 0, None, None, 3, None]
    assert squad._convert_index(index, 1, None, True) == 0  # aligned: itself
    assert squad._convert_index(index, 0, None, True) == 0  # nothing before, rear 0 < 1
    assert squad._convert_index(index, 2, None, True) == 1  # front 0 + 1 (room before rear 3)
    assert squad._convert_index(index, 2, None, False) == 2  # rear 3 - 1
    assert squad._convert_index(index, 5, 10, True) == 4  # nothing after: front 3 + 1
    assert squad._convert_index(index, 5, 10, False) == 9  # nothing after: limit - 1
    assert squad._convert_index(index, 5, None, False) == 3  # no limit: front
    tight = [None, 4, None, 5]
    assert squad._convert_index(tight, 2, None, True) == 5  # no room between 4 and 5: rear
    assert squad._convert_index(tight, 2, None, False) == 4  # ... and front for an end
    assert squad._convert_index(tight, 0, None, True) == 0  # nothing before, rear 4 >= 1
    assert squad._convert_index(tight, 0, None, False) == 3  # ... rear - 1


def test_align_ascii_paragraph(tokenizer):
    # Preprocessed "the cat sat." is encoded with a leading ▁, so piece character c + 1 is raw
    # character c; the ▁ of the first piece has no raw character and takes the first one.
    alignment = squad.align_paragraph(tokenizer.sp_model, "The cat sat.", do_lower_case=True)
    assert alignment.orig_to_chartok_index == list(range(1, 13))
    pieces = tokenizer.convert_ids_to_tokens(alignment.piece_ids)
    raw = ["The cat sat."[s:e + 1] for s, e in zip(alignment.tok_start_to_orig_index,
                                                      alignment.tok_end_to_orig_index)]
    # Each piece covers exactly its own raw characters (capital T included).
    assert [p.replace(U, " ") for p in pieces] == [r.lower() if i else " " + r.lower()
                                                   for i, r in enumerate(raw)]
    assert "".join(raw) == "The cat sat."


def test_align_accents_spaces_and_digit_commas(tokenizer):
    sp_model = tokenizer.sp_model
    alignment = squad.align_paragraph(sp_model, ZOE, do_lower_case=True)
    # Raw: Z o ë _ _ m e t _ _ _ J o s é _ i n ... ; pieces text: _ z o e _ m e t _ j o s e _ i n ...
    # The accented letters match their stripped forms; of each run of spaces only the first
    # aligns (hand-traced as in test_banded_lcs_hand_case); after José the offset is -2.
    expected = [1, 2, 3, 4, None, 5, 6, 7, 8, None, None] + list(range(9, 29))
    assert alignment.orig_to_chartok_index == expected
    pieces = tokenizer.convert_ids_to_tokens(alignment.piece_ids)
    assert pieces[pieces.index("1"):pieces.index("1") + 5] == ["1", ",", "00", "0", ","]
    # The raw text of every piece, read back through the maps, is the piece text (accents and
    # extra spaces aside), so answer extraction returns raw substrings.
    for piece, start, end in zip(pieces, alignment.tok_start_to_orig_index,
                                 alignment.tok_end_to_orig_index):
        raw = ZOE[start:end + 1]
        assert tokenization.preprocess_text(raw, lower=True) == piece.replace(U, " ").strip() \
            or piece == U
    for answer, start in (("1,000", 19), ("José", 11), ("met", 5), ("days.", 26)):
        first, last = squad.answer_piece_range(alignment, start, answer)
        assert ZOE[alignment.tok_start_to_orig_index[first]:
                   alignment.tok_end_to_orig_index[last] + 1].strip() == answer
        assert decoded(sp_model, alignment.piece_ids[first:last + 1]) == \
            tokenization.preprocess_text(answer, lower=True)


def test_alignment_needs_eighty_percent(tokenizer):
    # "a  b" -> pieces text " a b": the LCS is 3 < 0.8 * 4, so the paragraph is dropped.
    assert squad.align_paragraph(tokenizer.sp_model, "a  b", True) is None
    # Ligatures normalise to two letters and never match: nothing aligns at all.
    assert squad.align_paragraph(tokenizer.sp_model, "\ufb01" * 5, True) is None


def test_band_is_doubled_once(tokenizer):
    # k ligatures ("ﬁ" -> "fi") push the following letters k + 1 characters right in the pieces
    # text, and k + 1 trailing spaces (stripped) make both texts equally long, so the first band
    # is 5. A shift of 7 fits the doubled band (10); a shift of 13 fits neither.
    letters = "".join(random.Random(0).choices(string.ascii_lowercase, k=100))
    ok = "\ufb01" * 6 + letters + " " * 7
    orig = [squad._normalized_char(c, True) for c in ok]
    pieces_text = " " + "fi" * 6 + letters
    assert squad._banded_lcs(orig, pieces_text, 5)[0] <= 0.8 * len(ok)  # first band fails
    alignment = squad.align_paragraph(tokenizer.sp_model, ok, True)
    assert alignment.orig_to_chartok_index[6:106] == list(range(13, 113))
    too_far = "\ufb01" * 12 + letters + " " * 13
    assert squad.align_paragraph(tokenizer.sp_model, too_far, True) is None


# ----------------------------------------------------------------------------------------------
# Doc spans and max context
# ----------------------------------------------------------------------------------------------

def test_doc_spans_and_max_context_by_hand():
    assert squad.doc_spans(10, 4, 3) == ((0, 4), (3, 4), (6, 4))
    assert squad.doc_spans(10, 4, 8) == ((0, 4), (4, 4), (8, 2))  # stride capped by the length
    assert squad.doc_spans(3, 4, 2) == ((0, 3),)
    # Piece 3: span 0 scores min(3, 0) + .04, span 1 min(0, 3) + .04: tie, the first wins.
    # Pieces 4, 5: span 1 scores 1.04. Piece 6: tie between spans 1 and 2 -> span 1.
    assert squad.max_context_span(((0, 4), (3, 4), (6, 4)), 10) == (0, 0, 0, 0, 1, 1, 1, 2, 2, 2)
    spans = squad.doc_spans(11, 6, 4)
    assert spans == ((0, 6), (4, 6), (8, 3))
    # Piece 4: span 0 min(4, 1) beats span 1 min(0, 5); piece 5: span 1 min(1, 4) wins; piece 8:
    # span 1 min(4, 1) + .06 beats the short span min(0, 2) + .03; piece 9: span 2 min(1, 1) wins.
    assert squad.max_context_span(spans, 11) == (0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2)
    # Pieces 0 and 1 have the same min(left, right) in spans (0, 3) and (0, 5): the 0.01 * length
    # term makes the longer, later span win.
    assert squad.max_context_span(((0, 3), (0, 5)), 5) == (1, 1, 1, 1, 1)


# ----------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------

def expected_layout(query_len, span_len, seq_len):
    """Masks of [CLS] q [SEP] span [SEP] + padding, straight from the spec's table."""
    pad = seq_len - (query_len + span_len + 3)
    return {
        "input_mask": [1] * (query_len + span_len + 3) + [0] * pad,
        "segment_ids": [0] * (query_len + 2) + [1] * (span_len + 1) + [0] * pad,
        "p_mask": [0] + [1] * (query_len + 1) + [0] * span_len + [1] * (1 + pad),
    }


def test_features_layout_targets_and_spans(tokenizer):
    sp_model = tokenizer.sp_model
    answer_start = LONG.index("Item 21 is")
    examples = [squad.SquadExample("long", LONG_QUESTION, LONG, "Item 21", answer_start),
                squad.SquadExample("none", "Is it late?", LONG, "", -1, True),
                squad.SquadExample("zoe", "Who met José?", ZOE, "1,000", 19)]
    seq_len, stride, max_query = 48, 16, 8
    features = list(squad.convert_examples_to_features(
        examples, tokenizer, seq_len, stride, max_query, is_training=True, do_lower_case=True))
    assert [f.info.unique_id for f in features] == list(range(1000000000, 1000000000 + len(features)))

    alignment = squad.align_paragraph(sp_model, LONG, True)
    num_pieces = len(alignment.piece_ids)
    query = tokenization.encode_ids(sp_model, tokenization.preprocess_text(LONG_QUESTION, lower=True))
    assert len(query) > max_query  # so the query is cut
    window = seq_len - max_query - 3
    long_features = [f for f in features if f.info.example_index == 0]
    # Windows of `window` pieces every `stride` pieces; the last one ends at the last piece.
    assert len(long_features) == -(-(num_pieces - window) // stride) + 1
    assert [f.info.doc_start for f in long_features] == [i * stride for i in range(len(long_features))]
    first, last = squad.answer_piece_range(alignment, answer_start, "Item 21")
    with_answer = 0
    for f in long_features:
        span_len = len(f.info.tok_start_to_orig_index)
        assert span_len == min(window, num_pieces - f.info.doc_start)
        assert f.info.doc_offset == max_query + 2
        assert f.input_ids == ([CLS] + query[:max_query] + [SEP]
                               + alignment.piece_ids[f.info.doc_start:f.info.doc_start + span_len]
                               + [SEP] + [0] * (seq_len - max_query - span_len - 3))
        layout = expected_layout(max_query, span_len, seq_len)
        assert (f.input_mask, f.segment_ids, f.p_mask) == (
            layout["input_mask"], layout["segment_ids"], layout["p_mask"])
        if f.info.doc_start <= first and last < f.info.doc_start + span_len:
            with_answer += 1
            assert not f.is_impossible
            assert decoded(sp_model, f.input_ids[f.start_position:f.end_position + 1]) == "item 21"
            s, e = f.start_position - f.info.doc_offset, f.end_position - f.info.doc_offset
            assert LONG[f.info.tok_start_to_orig_index[s]:f.info.tok_end_to_orig_index[e] + 1] \
                .strip() == "Item 21"
        else:  # answer outside this window: points at [CLS]
            assert (f.start_position, f.end_position, f.is_impossible) == (0, 0, True)
    assert 1 <= with_answer < len(long_features)
    # Every paragraph piece is max-context in exactly one window.
    owners = [0] * num_pieces
    for f in long_features:
        for position, is_max in f.info.token_is_max_context.items():
            owners[f.info.doc_start + position - f.info.doc_offset] += is_max
    assert owners == [1] * num_pieces

    impossible = [f for f in features if f.info.example_index == 1]
    assert impossible and all((f.start_position, f.end_position, f.is_impossible) == (0, 0, True)
               for f in impossible)
    [zoe] = [f for f in features if f.info.example_index == 2]
    assert decoded(sp_model, zoe.input_ids[zoe.start_position:zoe.end_position + 1]) == "1,000"


def test_eval_features_have_no_targets_and_skip_unalignable(tokenizer, caplog):
    examples = [squad.SquadExample("bad", "Where?", "a  b"),
                squad.SquadExample("ok", "Where?", "The cat sat.")]
    with caplog.at_level(logging.WARNING):
        features = list(squad.convert_examples_to_features(examples, tokenizer, 32, 8, 8, False, True))
    assert [f.info.example_index for f in features] == [1]
    assert features[0].info.unique_id == 1000000000
    assert (features[0].start_position, features[0].end_position, features[0].is_impossible) == \
        (None, None, False)
    assert any("MISMATCH" in r.getMessage() and "'bad'" in r.getMessage() for r in caplog.records)


def test_settings_are_checked(tokenizer):
    example = [squad.SquadExample("q", "Where?", "The cat sat.")]
    with pytest.raises(ValueError, match="must exceed max_query_length"):
        list(squad.convert_examples_to_features(example, tokenizer, 67, 128, 64, False, True))
    with pytest.raises(ValueError, match="SentencePiece"):
        list(squad.convert_examples_to_features(example, object(), 384, 128, 64, False, True))


# ----------------------------------------------------------------------------------------------
# TFRecords, side file, reader
# ----------------------------------------------------------------------------------------------

def read_raw(path):
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def two_paragraph_examples():
    return [squad.SquadExample("a1", LONG_QUESTION, LONG, "Item 21", LONG.index("Item 21")),
            squad.SquadExample("a2", "Is it late?", LONG, "", -1, True),
            squad.SquadExample("z1", "Who met José?", ZOE, "José", 11)]


@pytest.mark.parametrize("is_training", [True, False])
def test_tfrecord_schema(tokenizer, tmp_path, is_training):
    examples = two_paragraph_examples()
    out = str(tmp_path / "f.tf_record")
    summary = squad.write_squad_features(examples, tokenizer, out, 40, 16, 8, is_training, True)
    features = list(squad.convert_examples_to_features(examples, tokenizer, 40, 16, 8,
                                                       is_training, True))
    raw = read_raw(out)
    assert summary.num_features == len(raw) == len(features)
    names = {"unique_ids", "input_ids", "input_mask", "segment_ids", "p_mask"}
    if is_training:
        names |= {"start_positions", "end_positions", "is_impossible"}
    for example, feature in zip(raw, features):  # document order
        values = example.features.feature
        assert set(values) == names
        assert all(values[n].WhichOneof("kind") == "int64_list" for n in names)
        assert list(values["unique_ids"].int64_list.value) == [feature.info.unique_id]
        for name in ("input_ids", "input_mask", "segment_ids", "p_mask"):
            assert list(values[name].int64_list.value) == getattr(feature, name)
        if is_training:
            assert list(values["start_positions"].int64_list.value) == [feature.start_position]
            assert list(values["is_impossible"].int64_list.value) == [int(feature.is_impossible)]
    side = squad.eval_features_path(out)
    assert side == str(tmp_path / "f.features.json")
    assert os.path.exists(side) == (not is_training) and summary.side_info_file == (
        None if is_training else side)


def test_side_file_round_trip(tokenizer, tmp_path):
    examples = two_paragraph_examples() + [squad.SquadExample("bad", "Where?", "a  b")]
    out = str(tmp_path / "dev.tf_record")
    summary = squad.write_squad_features(examples, tokenizer, out, 40, 16, 8, False, True,
                                         settings={"squad_version": "v1.1"})
    assert summary.num_skipped_examples == 1
    side = squad.load_eval_features(summary.side_info_file)
    infos = [f.info for f in squad.convert_examples_to_features(examples, tokenizer, 40, 16, 8,
                                                                False, True)]
    assert side.features == infos
    assert [(e.qas_id, e.question_text, e.paragraph_text) for e in side.examples] == \
        [(e.qas_id, e.question_text, e.paragraph_text) for e in examples]
    assert side.settings == {"max_seq_length": 40, "doc_stride": 16, "max_query_length": 8,
                             "do_lower_case": True, "squad_version": "v1.1"}
    (tmp_path / "other.json").write_text("{\"format\": \"x\"}")
    with pytest.raises(squad.SquadDataError, match="not a albert_tf.squad.eval_features file"):
        squad.load_eval_features(str(tmp_path / "other.json"))


def test_chunks_end_at_paragraph_changes():
    examples = [squad.SquadExample(str(i), "q", paragraph) for i, paragraph in enumerate("AAABBCDDDDDE")]
    # Size 2: a chunk ends at the first paragraph change after 2 examples (A A A | B B), or after 4 (C D D D).
    assert squad._chunk_bounds(examples, 2) == [(0, 3), (3, 5), (5, 9), (9, 11), (11, 12)]
    assert squad._chunk_bounds([], 2) == []


def generated_squad_file(tmp_path):
    """Paragraphs that need several windows, unicode, an unalignable context, questions at span edges."""
    long_qas = [qa(f"l{i}", f"Which item {i} is ready?", [(f"Item {i}", LONG.index(f"Item {i} "))])
                for i in (0, 7, 21, 39)]
    data = squad_json((LONG, long_qas),
                      (ZOE, [qa("z1", "Who met José?", [("José", 11)]), qa("z2", "How many days?", [("1,000", 19)]),
                             qa("z3", "Who?", [("Zoë", 0)])]),
                      ("a  b", [qa("bad", "Where?", [("a", 0)])]),
                      (LONG.upper(), [qa("u1", "Item 3?", [("ITEM 3", 3 * len("Item 0 is ready. "))])]))
    return write_json(tmp_path / "gen.json", data)


@pytest.mark.parametrize("is_training", [True, False])
def test_files_do_not_depend_on_the_number_of_workers(tokenizer, tmp_path, monkeypatch, caplog, is_training):
    caplog.set_level(logging.INFO, logger="absl")  # flag parsing elsewhere may leave absl at WARNING
    caplog.set_level(logging.INFO)
    examples = squad.read_squad_examples(generated_squad_file(tmp_path), is_training)
    if is_training:  # as the task does: paragraphs interleave
        random.Random(12345).shuffle(examples)
    outputs = []
    for workers, chunk in ((1, squad.EXAMPLES_PER_CHUNK), (2, 2)):  # one chunk, then several on 2 processes
        monkeypatch.setattr(squad, "EXAMPLES_PER_CHUNK", chunk)
        out = str(tmp_path / f"w{workers}.tf_record")
        summary = squad.write_squad_features(examples, tokenizer, out, 40, 8, 8, is_training, True,
                                             num_workers=workers)
        side = squad.eval_features_path(out)
        outputs.append([open(path, "rb").read() for path in (out, side) if os.path.exists(path)])
        assert summary.skipped_qas_ids == ("bad",)
        ids = [e.features.feature["unique_ids"].int64_list.value[0] for e in read_raw(out)]
        assert ids == list(range(1000000000, 1000000000 + summary.num_features))
    assert len(squad._chunk_bounds(examples, 2)) >= 3
    # One progress line at the end of each file (the 10 s lines need a longer job).
    assert sum(r.getMessage().startswith("SQuAD features: 9/9 questions in ") for r in caplog.records) == 2
    assert outputs[0] == outputs[1] and len(outputs[0]) == (1 if is_training else 2)
    if not is_training:  # example indexes of the side file: 4 windowed questions, 3 single ones, none for "bad"
        side = squad.load_eval_features(squad.eval_features_path(out))
        by_example = [f.example_index for f in side.features]
        assert sorted(set(by_example)) == [0, 1, 2, 3, 4, 5, 6, 8] and by_example == sorted(by_example)
        assert by_example.count(0) > 1


def test_task_rebuilds_stale_features_and_uses_given_files_without_fingerprint(tmp_path):
    from albert_tf.core.context import RunContext
    from albert_tf.tasks.squad.task import SquadRun, SquadTask  # Keras models: imported by this test only

    path = generated_squad_file(tmp_path)
    train_file = str(tmp_path / "out" / "train.tf_record")

    def task(max_query_length, **kwargs):
        run = SquadRun(output_dir=str(tmp_path / "out"), spm_model_file=SPM_MODEL, train_file=path,
                       predict_file=path, max_seq_length=40, doc_stride=8, max_query_length=max_query_length, **kwargs)
        return SquadTask(run, RunContext(run))  # the tokenizer from the settings; no model is built

    def sep_position(feature_file):  # the first [SEP]: 1 + the question's (cut) length
        return list(read_raw(feature_file)[0].features.feature["input_ids"].int64_list.value).index(SEP)

    assert task(4).train_features() == train_file
    assert cache.read_fingerprint(train_file)["max_query_length"] == 4 and sep_position(train_file) == 5
    built = os.stat(train_file).st_mtime_ns
    task(4).train_features()  # same inputs: reused
    assert os.stat(train_file).st_mtime_ns == built
    task(8).train_features()  # other max_query_length: rebuilt
    assert cache.read_fingerprint(train_file)["max_query_length"] == 8 and sep_position(train_file) == 9

    # A given predict file without fingerprint is used as is (the original's rule), even if built otherwise.
    given = str(tmp_path / "given.tf_record")
    examples = squad.read_squad_examples(path, is_training=False)
    squad.write_squad_features(examples, tokenization.FullTokenizer(spm_model_file=SPM_MODEL), given, 40, 8, 4,
                               False, True)
    _, side = task(8, predict_feature_file=given).predict_features()
    assert side.settings["max_query_length"] == 4 and cache.read_fingerprint(given) is None
    # Without its side file it counts as missing: rebuilt for this run, with a fingerprint.
    os.remove(squad.eval_features_path(given))
    _, side = task(8, predict_feature_file=given).predict_features()
    assert side.settings["max_query_length"] == 8 and cache.read_fingerprint(given)["max_query_length"] == 8


def test_squad_dataset(tokenizer, tmp_path):
    examples = two_paragraph_examples()
    train_file, eval_file = str(tmp_path / "t.tf_record"), str(tmp_path / "e.tf_record")
    squad.write_squad_features(examples, tokenizer, train_file, 40, 16, 8, True, True)
    summary = squad.write_squad_features(examples, tokenizer, eval_file, 40, 16, 8, False, True)
    count = summary.num_features
    batches = list(squad.squad_dataset(eval_file, 40, 4, is_training=False))
    assert sum(int(b["unique_ids"].shape[0]) for b in batches) == count  # last partial batch kept
    ids = tf.concat([b["unique_ids"] for b in batches], 0).numpy().tolist()
    assert ids == list(range(1000000000, 1000000000 + count))
    assert set(batches[0]) == {"unique_ids", "input_word_ids", "input_mask", "input_type_ids", "p_mask"}
    assert all(v.dtype == tf.int32 for v in batches[0].values())
    assert batches[0]["input_word_ids"].shape == (4, 40)
    train = next(iter(squad.squad_dataset(train_file, 40, count + 3, is_training=True, seed=1)))
    assert train["start_positions"].shape == (count + 3,)  # repeats past the end
    assert set(train) >= {"start_positions", "end_positions", "is_impossible"}


def test_resolve_version(tmp_path):
    v1 = write_json(tmp_path / "v1.json", squad_json(("c", [qa("q", "?", [("c", 0)])])))
    v2 = write_json(tmp_path / "v2.json", squad_json(("c", [qa("q", "?", [("c", 0)], False),
                                                             qa("r", "?", [], True)])))
    assert squad.resolve_version(v1) == "v1.1"
    assert squad.resolve_version(v2) == "v2.0"
    assert squad.resolve_version(v1, "v2.0") == "v2.0"  # v1.1 data read as v2.0 is fine
    with pytest.raises(squad.SquadDataError, match="pass --squad_version=v2.0"):
        squad.resolve_version(v2, "v1.1")
    with pytest.raises(squad.SquadDataError, match="Unknown SQuAD version 'v3'"):
        squad.resolve_version(v1, "v3")


# ----------------------------------------------------------------------------------------------
# create_finetuning_data.py --task=squad
# ----------------------------------------------------------------------------------------------

def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, os.path.join(ROOT, "create_finetuning_data.py"), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_writes_eval_features_and_side_file(tmp_path):
    data = squad_json((ZOE, [qa("z1", "Who met José?", [("José", 11)])]),
                      (LONG, [qa("l1", "Which item?", [("Item 21", LONG.index("Item 21"))]),
                              qa("l2", "Late?", [], impossible=True)]),
                      ("a  b", [qa("bad", "Where?")]), version="v2.0")
    path = write_json(tmp_path / "dev.json", data)
    out = tmp_path / "out" / "dev.tf_record"
    result = run_cli("--task=squad", f"--input_file={path}", "--is_training=false",
                     f"--spm_model_file={SPM_MODEL}", "--do_lower_case", "--max_seq_length=64",
                     "--doc_stride=32", "--max_query_length=16", f"--output_file={out}", "--num_workers=2")
    assert result.returncode == 0, result.stderr
    side = squad.load_eval_features(str(tmp_path / "out" / "dev.features.json"))
    assert side.settings["squad_version"] == "v2.0"  # detected from is_impossible
    assert side.settings["max_seq_length"] == 64
    assert [e.qas_id for e in side.examples] == ["z1", "l1", "l2", "bad"]
    assert len(read_raw(str(out))) == len(side.features) > 3
    assert f"Wrote {len(side.features)} eval features for 4 SQuAD v2.0 questions" in result.stdout
    assert f"{path}: 1 of 4 questions got no feature" in result.stdout and "('bad')" in result.stdout
    fingerprint = cache.read_fingerprint(str(out))  # the task scripts can reuse the file
    assert (fingerprint["kind"], fingerprint["max_query_length"], fingerprint["is_training"]) == ("squad", 16, False)
