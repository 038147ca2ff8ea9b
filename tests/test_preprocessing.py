"""In-graph ALBERT preprocessing (packing, truncation, padding) and its standalone SavedModel."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from albert_tf import preprocessing, tokenization
from conftest import FIXTURES

TINY_MODEL = os.path.join(FIXTURES, "tokenization", "tiny-clean.model")
CLS, SEP = 2, 3  # Ids of the fixture model (and of 30k-clean).


def _reference_truncate(tokens_a, tokens_b, max_length):
    """The original _truncate_seq_pair loop (on copies); returns (a, b) as lists."""
    tokens_a, tokens_b = list(tokens_a), list(tokens_b)
    while len(tokens_a) + len(tokens_b) > max_length:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()
    return tokens_a, tokens_b


def _reference_features(sp_model, text_a, text_b, seq_length):
    """What the original convert_single_example builds, written out directly.

    Like the original processors, texts are preprocessed first and an empty `text_b` means a single
    sentence (`if example.text_b:`).
    """
    ids_a = tokenization.encode_ids(sp_model, tokenization.preprocess_text(text_a, lower=True))
    if text_b is not None:
        text_b = tokenization.preprocess_text(text_b, lower=True) or None
    if text_b is None:
        ids_a, ids_b = ids_a[:seq_length - 2], None
    else:
        ids_b = tokenization.encode_ids(sp_model, text_b)
        ids_a, ids_b = _reference_truncate(ids_a, ids_b, seq_length - 3)
    word_ids = [CLS] + ids_a + [SEP]
    type_ids = [0] * len(word_ids)
    if ids_b is not None:
        word_ids += ids_b + [SEP]
        type_ids += [1] * (len(ids_b) + 1)
    pad = seq_length - len(word_ids)
    return {"input_word_ids": word_ids + [0] * pad, "input_mask": [1] * len(word_ids) + [0] * pad,
            "input_type_ids": type_ids + [0] * pad}


@pytest.fixture(scope="module")
def sample_lines():
    with open(os.path.join(FIXTURES, "tokenization", "gutenberg_sample.txt"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    return lines[:120] + ["", "a", " \t ", "Ünïcödé ﬁ 1,000,"]


@pytest.fixture(scope="module")
def sp_model():
    return tokenization.FullTokenizer(spm_model_file=TINY_MODEL).sp_model


def test_truncation_matches_the_original_loop_exhaustively():
    pairs = [(la, lb) for la in range(14) for lb in range(14)]
    len_a = tf.constant([la for la, _ in pairs], tf.int64)
    len_b = tf.constant([lb for _, lb in pairs], tf.int64)
    for seq_length in (3, 4, 5, 8, 11, 16):
        keep_a, keep_b = preprocessing.truncated_lengths([len_a, len_b], seq_length)
        for (la, lb), got_a, got_b in zip(pairs, keep_a.numpy(), keep_b.numpy()):
            want_a, want_b = _reference_truncate(range(la), range(lb), seq_length - 3)
            assert (got_a, got_b) == (len(want_a), len(want_b)), (seq_length, la, lb)
        (keep_single,) = preprocessing.truncated_lengths([len_a], seq_length)
        assert keep_single.numpy().tolist() == [min(la, seq_length - 2) for la, _ in pairs]


def test_pack_segments_layout():
    a = tf.ragged.constant([[11, 12, 13, 14], [], [21]], tf.int32)
    b = tf.ragged.constant([[31], [41, 42], []], tf.int32)
    packed = preprocessing.pack_segments([a, b], 7, cls_id=2, sep_id=3)  # Room for 4 tokens.
    assert packed["input_word_ids"].numpy().tolist() == [
        [2, 11, 12, 13, 3, 31, 3], [2, 3, 41, 42, 3, 0, 0], [2, 21, 3, 0, 0, 0, 0]]  # empty b: single
    assert packed["input_type_ids"].numpy().tolist() == [
        [0, 0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0]]
    assert packed["input_mask"].numpy().tolist() == [
        [1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0, 0]]
    single = preprocessing.pack_segments([a], 4, cls_id=2, sep_id=3)
    assert single["input_word_ids"].numpy().tolist() == [[2, 11, 12, 3], [2, 3, 0, 0], [2, 21, 3, 0]]
    assert single["input_type_ids"].numpy().sum() == 0


@pytest.mark.parametrize("seq_length", [8, 13, 64])
def test_pairs_and_singles_match_python_reference(seq_length, sample_lines, sp_model):
    layer = preprocessing.AlbertPreprocessor(TINY_MODEL, do_lower_case=True, seq_length=seq_length)
    text_a = sample_lines
    text_b = sample_lines[::-1]
    pair = layer((tf.constant(text_a), tf.constant(text_b)))
    single = layer(tf.constant(text_a))
    for outputs, texts_b in ((pair, text_b), (single, [None] * len(text_a))):
        assert sorted(outputs) == ["input_mask", "input_type_ids", "input_word_ids"]
        for name, tensor in outputs.items():
            assert tensor.dtype == tf.int32 and tensor.shape == (len(text_a), seq_length), name
        for row, (a, b) in enumerate(zip(text_a, texts_b)):
            want = _reference_features(sp_model, a, b, seq_length)
            for name, values in want.items():
                assert outputs[name][row].numpy().tolist() == values, (name, a, b)


def test_keras_functional_model_and_config(sample_lines):
    layer = preprocessing.AlbertPreprocessor(TINY_MODEL, seq_length=16)
    text_a = keras.Input(shape=(), dtype=tf.string)
    text_b = keras.Input(shape=(), dtype=tf.string)
    model = keras.Model([text_a, text_b], layer((text_a, text_b)))
    batch = [tf.constant(sample_lines[:5]), tf.constant(sample_lines[5:10])]
    direct = layer((batch[0], batch[1]))
    via_model = model(batch)
    restored = preprocessing.AlbertPreprocessor.from_config(json.loads(json.dumps(layer.get_config())))
    via_config = restored((batch[0], batch[1]))
    for name in direct:
        np.testing.assert_array_equal(via_model[name], direct[name])
        np.testing.assert_array_equal(via_config[name], direct[name])
    assert restored.seq_length == 16 and restored.cls_id == CLS and restored.sep_id == SEP


def test_preprocessor_errors():
    with pytest.raises(ValueError, match="seq_length=1"):
        preprocessing.AlbertPreprocessor(TINY_MODEL, seq_length=1)
    layer = preprocessing.AlbertPreprocessor(TINY_MODEL, seq_length=2)
    single = layer(tf.constant(["hello there"]))
    assert single["input_word_ids"].numpy().tolist() == [[CLS, SEP]]
    with pytest.raises(ValueError, match="seq_length=2 leaves no room"):
        layer((tf.constant(["a"]), tf.constant(["b"])))
    with pytest.raises(ValueError, match="one or two text segments, got 3"):
        layer([tf.constant(["a"])] * 3)


def test_savedmodel_round_trip(tmp_path, sample_lines):
    export_dir = str(tmp_path / "preprocess")
    assert preprocessing.export_preprocessing_savedmodel(export_dir, TINY_MODEL, True, 24) == export_dir
    assert os.listdir(os.path.join(export_dir, "assets")) == ["tiny-clean.model"]
    texts_a, texts_b = tf.constant(sample_lines[:20]), tf.constant(sample_lines[20:40])
    # The loaded object holds only restored graph functions, no albert_tf Python code.
    loaded = tf.saved_model.load(export_dir)
    single = loaded.signatures["serving_default"](text_a=texts_a)
    pair = loaded.signatures["serving_pair"](text_a=texts_a, text_b=texts_b)
    info = loaded.signatures["tokenization_info"]()

    layer = preprocessing.AlbertPreprocessor(TINY_MODEL, do_lower_case=True, seq_length=24)
    want_single, want_pair = layer(texts_a), layer((texts_a, texts_b))
    for name in want_single:
        np.testing.assert_array_equal(single[name], want_single[name])
        np.testing.assert_array_equal(pair[name], want_pair[name])
    assert loaded.tokenize(texts_a).to_list() == layer.tokenizer(texts_a).to_list()
    assert bool(info["do_lower_case"].numpy()) is True
    vocab_file = info["vocab_file"].numpy().decode()
    assert vocab_file == os.path.join(export_dir, "assets", "tiny-clean.model")
    tok = tokenization.FullTokenizer.from_saved_model_assets(export_dir)
    assert tok.convert_tokens_to_ids(["[CLS]", "[SEP]"]) == [CLS, SEP]
