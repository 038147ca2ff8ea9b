"""Tokenization: the original's Python behaviour (SentencePiece and WordPiece) and the in-graph layer."""
import io
import json
import os
import shutil

import pytest
import sentencepiece as spm
import tensorflow as tf
from sentencepiece import sentencepiece_model_pb2

from albert_tf import tokenization
from conftest import FIXTURES

TOK_FIXTURES = os.path.join(FIXTURES, "tokenization")
TINY_MODEL = os.path.join(TOK_FIXTURES, "tiny-clean.model")
with open(os.path.join(TOK_FIXTURES, "spm_cases_sample.json"), encoding="utf-8") as _f:
    SPM_CASES = json.load(_f)
SPECIAL_PIECES = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]", "(", ")", '"', "-", ".", "–", "£", "€"]

# Text that exercises each preprocessing step: unicode spaces, accents, compatibility forms,
# combining marks, Greek final sigma, CJK, quotes, digits with commas, emoji and control characters.
UNICODE_LINES = [
    "Ça\u00a0va? \u3000Très\u2003bien\u2028merci", "naïve café résumé Ångström Øre Ærø",
    "ﬁnal ﬂow ½ ① ² ™ …", "ＦＵＬＬ　ｗｉｄｔｈ １２,３４５,", "ΟΔΟΣ ΣΑΣ. Ὀδυσσεύς", "İstanbul ǅ ẞ ß",
    "e\u0301 o\u0308 a\u0323\u0302 (combining)", "``quoted'' and “smart” ‘quotes’", "中文字符 mixed 日本語 한국어",
    "emoji 😀 test \u200b zero\u200dwidth", "tabs\tand\nnewlines\r\nhere\x0bvt\x1cfs",
    "In 1,999, the year 2,000, 3,4,5, ok", "$1,000,000, €2,50, £3,",
    "Ελληνικά ΚΕΦΑΛΑΙΑ Σ", "Ｃａｆé\u0327 ǆ ǈ ǋ", "",
]


@pytest.fixture(scope="module")
def tiny_tokenizer():
    return tokenization.FullTokenizer(spm_model_file=TINY_MODEL)


@pytest.fixture(scope="module")
def tiny_layer():
    return tokenization.InGraphTokenizer(TINY_MODEL, do_lower_case=True)


# ---------------------------------------------------------------------------------------------
# SentencePiece path against the fixture cases
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", SPM_CASES, ids=lambda c: c["text"][:30])
def test_python_path_matches_fixture(case, tiny_tokenizer):
    preprocessed = tokenization.preprocess_text(case["text"], lower=case["do_lower_case"])
    assert preprocessed == case["preprocessed"]
    pieces = tiny_tokenizer.tokenize(preprocessed)
    assert pieces == case["pieces"]
    assert tiny_tokenizer.convert_tokens_to_ids(pieces) == case["ids"]
    assert tokenization.encode_ids(tiny_tokenizer.sp_model, preprocessed) == case["ids"]
    assert tiny_tokenizer.convert_ids_to_tokens(case["ids"]) == [
        tiny_tokenizer.inv_vocab[i] for i in case["ids"]]


def test_in_graph_layer_matches_fixture(tiny_layer):
    for lower in (True, False):
        cases = [c for c in SPM_CASES if c["do_lower_case"] == lower]
        if not cases:
            continue
        layer = tiny_layer if lower else tokenization.InGraphTokenizer(TINY_MODEL, do_lower_case=False)
        ids = layer(tf.constant([c["text"] for c in cases]))
        assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32
        assert ids.to_list() == [c["ids"] for c in cases]


def test_vocab_layout_of_fixture_model(tiny_tokenizer):
    assert [tiny_tokenizer.inv_vocab[i] for i in range(13)] == SPECIAL_PIECES
    assert tiny_tokenizer.vocab["[MASK]"] == 4 and len(tiny_tokenizer.vocab) == 1000
    assert tiny_tokenizer.convert_tokens_to_ids(["[CLS]", "no-such-piece"]) == [2, 1]


# ---------------------------------------------------------------------------------------------
# preprocess_text
# ---------------------------------------------------------------------------------------------

def test_preprocess_text_steps():
    assert tokenization.preprocess_text("  a\u00a0 b\t\nc\u3000 ") == "a b c"
    assert tokenization.preprocess_text(" a  b ", remove_space=False) == " a  b "
    assert tokenization.preprocess_text("Naïve CAFÉ", lower=False) == "Naive CAFE"
    assert tokenization.preprocess_text("Naïve CAFÉ", lower=True) == "naive cafe"
    assert tokenization.preprocess_text("ﬁ … ½") == "fi ... 1⁄2"  # NFKD compatibility folding
    # No quote normalisation (XLNet's version would turn `` and '' into ").
    assert tokenization.preprocess_text("``a'' \"b\"") == "``a'' \"b\""
    assert tokenization.preprocess_text("caf\u00e9".encode("utf-8"), lower=True) == "cafe"


def test_preprocess_text_rejects_invalid_utf8():
    with pytest.raises(ValueError, match=r"not valid UTF-8 \(byte 2"):
        tokenization.preprocess_text(b"ab\xffcd")
    with pytest.raises(ValueError, match="must be str or bytes"):
        tokenization.preprocess_text(12)


def test_text_helpers():
    assert tokenization.convert_to_unicode(b"a\xffb") == "ab"  # The original ignores bad bytes here.
    assert tokenization.printable_text("x") == "x"
    assert tokenization.whitespace_tokenize("  a b\tc  ") == ["a", "b", "c"]
    assert tokenization.whitespace_tokenize("   ") == []
    with pytest.raises(ValueError, match="Unsupported string type"):
        tokenization.convert_to_unicode(3)


# ---------------------------------------------------------------------------------------------
# The comma rule
# ---------------------------------------------------------------------------------------------

def _model_with_extra_pieces(pieces):
    """tiny-clean with extra normal pieces of score 0 (higher than every learned piece)."""
    proto = sentencepiece_model_pb2.ModelProto()
    with open(TINY_MODEL, "rb") as f:
        proto.ParseFromString(f.read())
    for piece in pieces:
        proto.pieces.add(piece=piece, score=0.0, type=sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL)
    return proto.SerializeToString()


@pytest.fixture(scope="module")
def comma_model():
    proto = _model_with_extra_pieces(["▁1990,", "9,", "000,", "12,", "▁12"])
    return proto, tokenization.load_spm_model(proto)


def test_digit_comma_rule_intended_behaviour(comma_model):
    _, sp = comma_model
    # Premises: what SentencePiece itself produces for these texts and for the digits alone.
    assert sp.EncodeAsPieces("1990,") == ["▁1990,"]
    assert sp.EncodeAsPieces("1990") == ["▁", "1", "9", "9", "0"]
    assert sp.EncodeAsPieces("a9,b") == ["▁a", "9,", "b"]
    assert sp.EncodeAsPieces("9") == ["▁", "9"]
    assert sp.EncodeAsPieces("$1,000,") == ["▁", "$", "1,", "000,"]
    assert sp.EncodeAsPieces("1") == ["▁", "1"] and sp.EncodeAsPieces("000") == ["▁", "0", "00"]
    assert sp.EncodeAsPieces("a12,") == ["▁a", "12,"] and sp.EncodeAsPieces("12") == ["▁12"]
    # A word-initial piece keeps the re-encoding's "▁"; a mid-word piece loses it (a lone "▁"
    # piece is dropped, a longer first piece loses its first character), then "," follows.
    assert tokenization.encode_pieces(sp, "1990,") == ["▁", "1", "9", "9", "0", ","]
    assert tokenization.encode_pieces(sp, "a9,b") == ["▁a", "9", ",", "b"]
    assert tokenization.encode_pieces(sp, "$1,000,") == ["▁", "$", "1", ",", "0", "00", ","]
    assert tokenization.encode_pieces(sp, "a12,") == ["▁a", "12", ","]
    # "12" is not a piece of this model, so its id is unk, as in the original.
    assert tokenization.encode_ids(sp, "a12,") == [sp.PieceToId("▁a"), sp.unk_id(), sp.PieceToId(",")]


def test_digit_comma_rule_in_graph(comma_model):
    proto, sp = comma_model
    layer = tokenization.InGraphTokenizer(spm_model_proto=proto)
    texts = ["1990,", "a9,b", "$1,000,", "a12,", "In 1990, x9, 12,000,", "12, ,9 9,9,"]
    assert layer(tf.constant(texts)).to_list() == [
        tokenization.encode_ids(sp, tokenization.preprocess_text(t, lower=True)) for t in texts]


def test_comma_rule_ignores_other_pieces(tiny_tokenizer):
    sp = tiny_tokenizer.sp_model
    for text in ["a,", "x ,", "'," , "12 ,"]:
        assert tokenization.encode_pieces(sp, text) == sp.EncodeAsPieces(text)


def test_sampling_is_subword_regularisation(tiny_tokenizer):
    sp = tiny_tokenizer.sp_model
    text = "the quick brown fox jumps over the lazy dog " * 3
    spm.set_random_generator_seed(1234)  # reproducible samples
    samples = {tuple(tokenization.encode_pieces(sp, text, sample=True)) for _ in range(20)}
    assert len(samples) > 1
    assert all("".join(s).replace("▁", " ").strip() == text.strip() for s in samples)


# ---------------------------------------------------------------------------------------------
# A model trained with the README flags
# ---------------------------------------------------------------------------------------------

def test_readme_flags_give_the_documented_id_layout(tmp_path):
    words = "the cat sat on a mat and the dog ran to its house in the year of money".split()
    corpus = tmp_path / "all.txt"
    tail = ' (x) "y" - z. – £1 €2 [CLS MASK SEP]'
    lines = [" ".join(words[(i * 7) % len(words):] + words[:(i * 3) % len(words)]) + tail for i in range(200)]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = io.BytesIO()
    # The README's flags. The quoted symbol list is given as a list: sentencepiece parses a
    # string value as CSV, where a bare '"' opens a quoted field.
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_writer=model, vocab_size=60, pad_id=0, unk_id=1, eos_id=-1, bos_id=-1,
        control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        user_defined_symbols=["(", ")", '"', "-", ".", "–", "£", "€"], shuffle_input_sentence=True,
        character_coverage=0.99995, model_type="unigram", hard_vocab_limit=False, minloglevel=2)
    path = tmp_path / "30k-clean.model"
    path.write_bytes(model.getvalue())
    tok = tokenization.FullTokenizer.from_release(str(tmp_path))
    assert [tok.inv_vocab[i] for i in range(13)] == SPECIAL_PIECES
    assert tok.convert_tokens_to_ids(["[CLS]", "[SEP]", "[MASK]", "<pad>"]) == [2, 3, 4, 0]
    # User-defined symbols are always their own pieces; control symbols are not matched in text.
    pieces = tok.tokenize('the (cat) "sat" on-a mat. – £1 €2')
    assert [p for p in pieces if set(p) & set('()"-.–£€')] == ["(", ")", '"', '"', "-", ".", "–", "£", "€"]
    assert 4 not in tok.convert_tokens_to_ids(tok.tokenize("[MASK]"))  # Its characters are known.


# ---------------------------------------------------------------------------------------------
# Python path vs in-graph layer on real text
# ---------------------------------------------------------------------------------------------

def test_python_and_graph_agree_on_gutenberg_sample(tiny_tokenizer, tiny_layer):
    with open(os.path.join(TOK_FIXTURES, "gutenberg_sample.txt"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) > 1800
    texts = lines + UNICODE_LINES
    graph_ids = tf.function(tiny_layer.call, autograph=False)(tf.constant(texts)).to_list()
    for text, ids in zip(texts, graph_ids):
        assert ids == tokenization.encode_ids(tiny_tokenizer.sp_model,
                                              tokenization.preprocess_text(text, lower=True)), text
    cased = tokenization.InGraphTokenizer(TINY_MODEL, do_lower_case=False)
    texts = lines[:300] + UNICODE_LINES
    for text, ids in zip(texts, cased(tf.constant(texts)).to_list()):
        assert ids == tokenization.encode_ids(tiny_tokenizer.sp_model,
                                              tokenization.preprocess_text(text, lower=False)), text


def test_known_tie_order_difference_after_user_defined_piece(tiny_tokenizer, tiny_layer):
    # Equal-score segmentations of "000" after "£" can be ordered differently (see InGraphTokenizer);
    # for this text they are (", 00 0" in Python vs ", 0 00" in the graph) with tensorflow-text 2.20.
    text = "£250,000"
    python_ids = tokenization.encode_ids(tiny_tokenizer.sp_model, text)
    graph_ids = tiny_layer(tf.constant([text])).to_list()[0]
    assert sorted(graph_ids) == sorted(python_ids)
    assert graph_ids != python_ids  # the documented difference; if it goes, update the docs


def test_graph_preprocessing_matches_python(tiny_layer):
    spaces = [chr(cp) for cp in range(0x3001) if chr(cp).isspace()]
    texts = UNICODE_LINES + [f"{c}a{c}b {c}{c}c {c}" for c in spaces] + ["".join(spaces)]
    lower = tiny_layer.preprocess(tf.constant(texts)).numpy()
    cased = tokenization.InGraphTokenizer(TINY_MODEL, do_lower_case=False).preprocess(
        tf.constant(texts)).numpy()
    for text, got_lower, got_cased in zip(texts, lower, cased):
        assert got_lower.decode("utf-8") == tokenization.preprocess_text(text, lower=True)
        assert got_cased.decode("utf-8") == tokenization.preprocess_text(text, lower=False)


def test_graph_replaces_invalid_utf8_like_python_replace(tiny_tokenizer, tiny_layer):
    raw = [b"ab\xffcd", b"\xc3", b"ok\xe2\x82x y", b"a\xc0\xafb"]
    got = tiny_layer(tf.constant(raw)).to_list()
    for data, ids in zip(raw, got):
        text = tokenization.preprocess_text(data.decode("utf-8", "replace"), lower=True)
        assert ids == tokenization.encode_ids(tiny_tokenizer.sp_model, text)


# ---------------------------------------------------------------------------------------------
# InGraphTokenizer as a Keras layer and in a SavedModel
# ---------------------------------------------------------------------------------------------

def test_layer_config_round_trip_and_bytes_input(tiny_layer):
    config = json.loads(json.dumps(tiny_layer.get_config()))
    restored = tokenization.InGraphTokenizer.from_config(config)
    with open(TINY_MODEL, "rb") as f:
        from_bytes = tokenization.InGraphTokenizer(spm_model_proto=f.read())
    texts = tf.constant(["Hello, World 1,000,", "x"])
    expected = tiny_layer(texts).to_list()
    assert restored(texts).to_list() == expected == from_bytes(texts).to_list()
    assert restored.do_lower_case and restored.spm_model_proto == tiny_layer.spm_model_proto


def test_layer_in_savedmodel_without_python_objects(tmp_path, tiny_layer):
    module = tf.Module()
    module.layer = tiny_layer
    module.tokenize = tf.function(tiny_layer.call, input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    texts = tf.constant(["Café au lait, 12,000,", ""])
    assert loaded.tokenize(texts).to_list() == tiny_layer(texts).to_list()


def test_layer_errors(tmp_path):
    with pytest.raises(ValueError, match="exactly one of spm_model_file"):
        tokenization.InGraphTokenizer()
    with pytest.raises(FileNotFoundError, match=r"missing\.model.*--spm_model_file"):
        tokenization.InGraphTokenizer(str(tmp_path / "missing.model"))
    layer = tokenization.InGraphTokenizer(TINY_MODEL)
    with pytest.raises(ValueError, match="rank-1 string tensor"):
        layer(tf.constant([["a"]]))
    assert layer.token_id("[SEP]") == 3
    with pytest.raises(ValueError, match="no '<s>' piece"):
        layer.token_id("<s>")


def test_layer_needs_a_comma_piece():
    proto = sentencepiece_model_pb2.ModelProto()
    with open(TINY_MODEL, "rb") as f:
        proto.ParseFromString(f.read())
    comma = next(p for p in proto.pieces if p.piece == ",")
    comma.piece = "\u2603"  # The model no longer knows ",".
    with pytest.raises(ValueError, match="has no ',' piece"):
        tokenization.InGraphTokenizer(spm_model_proto=proto.SerializeToString())


# ---------------------------------------------------------------------------------------------
# FullTokenizer construction and errors
# ---------------------------------------------------------------------------------------------

def test_full_tokenizer_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.model'.*--spm_model_file"):
        tokenization.FullTokenizer(spm_model_file=str(tmp_path / "nope.model"))
    with pytest.raises(ValueError, match="neither was given"):
        tokenization.FullTokenizer()
    with pytest.raises(ValueError, match=r"tiny-clean\.vocab' is not a SentencePiece model"):
        tokenization.FullTokenizer(spm_model_file=os.path.join(TOK_FIXTURES, "tiny-clean.vocab"))
    with pytest.raises(ValueError, match=r"not a text vocabulary.*--spm_model_file"):
        tokenization.FullTokenizer(vocab_file=TINY_MODEL)
    with pytest.raises(FileNotFoundError, match="--vocab_file"):
        tokenization.FullTokenizer(vocab_file=str(tmp_path / "vocab.txt"))


def test_from_release_and_saved_model_assets(tmp_path):
    release = tmp_path / "albert_base"
    release.mkdir()
    shutil.copy(TINY_MODEL, release / "30k-clean.model")
    shutil.copy(TINY_MODEL, release / "other.model")
    tok = tokenization.FullTokenizer.from_release(str(release))
    assert tok.spm_model_file.endswith("30k-clean.model") and tok.sp_model is not None
    os.remove(release / "30k-clean.model")
    assert tokenization.FullTokenizer.from_release(str(release)).spm_model_file.endswith("other.model")
    shutil.copy(TINY_MODEL, release / "third.model")
    with pytest.raises(ValueError, match="Several SentencePiece models"):
        tokenization.FullTokenizer.from_release(str(release))

    wordpiece = tmp_path / "albert_zh"
    wordpiece.mkdir()
    (wordpiece / "vocab.txt").write_text("[UNK]\n中\n文\n", encoding="utf-8")
    tok = tokenization.FullTokenizer.from_release(str(wordpiece))
    assert tok.sp_model is None and tok.tokenize("中文x") == ["中", "文", "[UNK]"]
    with pytest.raises(FileNotFoundError, match=r"No 30k-clean\.model"):
        tokenization.FullTokenizer.from_release(str(tmp_path))

    hub = tmp_path / "hub" / "assets"
    hub.mkdir(parents=True)
    shutil.copy(TINY_MODEL, hub / "30k-clean.model")
    tok = tokenization.FullTokenizer.from_saved_model_assets(str(tmp_path / "hub"))
    assert tok.vocab["[CLS]"] == 2


# ---------------------------------------------------------------------------------------------
# WordPiece path (the original tokenization_test.py cases)
# ---------------------------------------------------------------------------------------------

WORDPIECE_VOCAB = ["[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing", ","]


def _write_vocab(tmp_path, tokens):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return str(path)


def test_full_tokenizer_wordpiece(tmp_path):
    tok = tokenization.FullTokenizer(vocab_file=_write_vocab(tmp_path, WORDPIECE_VOCAB))
    tokens = tok.tokenize("UNwant\u00E9d,running")
    assert tokens == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tok.convert_tokens_to_ids(tokens) == [7, 4, 5, 10, 8, 9]
    assert tok.convert_ids_to_tokens([7, 4, 5]) == ["un", "##want", "##ed"]
    with pytest.raises(KeyError, match="'zzz' is not in the vocabulary"):
        tok.convert_tokens_to_ids(["zzz"])


def test_basic_tokenizer():
    assert tokenization.BasicTokenizer().tokenize("ah\u535A\u63A8zz") == ["ah", "\u535A", "\u63A8", "zz"]
    lower = tokenization.BasicTokenizer(do_lower_case=True)
    assert lower.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
    assert lower.tokenize("H\u00E9llo") == ["hello"]
    cased = tokenization.BasicTokenizer(do_lower_case=False)
    assert cased.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["HeLLo", "!", "how", "Are", "yoU", "?"]
    # Control characters, NUL and U+FFFD vanish; "$" and "^" are punctuation (non-alphanumeric ASCII).
    assert cased.tokenize("a\x00b\ufffdc\u200bd e$f^g") == ["abcd", "e", "$", "f", "^", "g"]


def test_wordpiece_tokenizer():
    vocab = {t: i for i, t in enumerate(WORDPIECE_VOCAB)}
    tok = tokenization.WordpieceTokenizer(vocab=vocab)
    assert tok.tokenize("") == []
    assert tok.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert tok.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]
    long_words = tokenization.WordpieceTokenizer(vocab={"[UNK]": 0, "a": 1, "##a": 2})
    assert long_words.tokenize("a" * 200) == ["a"] + ["##a"] * 199
    assert long_words.tokenize("a" * 201 + " a") == ["[UNK]", "a"]  # Over 200 characters.


def test_load_vocab_rules(tmp_path):
    vocab = tokenization.load_vocab(_write_vocab(tmp_path, ["a", "b extra", "", "a", "c", "", "\r"]))
    assert vocab == {"a": 0, "b": 1, " ": 2, "c": 3}


def test_character_classes():
    assert all(tokenization._is_whitespace(c) for c in " \t\r\n\u00A0")
    assert not any(tokenization._is_whitespace(c) for c in "A-")
    assert all(tokenization._is_control(c) for c in "\u0005\u200b")
    assert not any(tokenization._is_control(c) for c in "A \t\r\n")
    assert all(tokenization._is_punctuation(c) for c in "-$`.\u3002")
    assert not any(tokenization._is_punctuation(c) for c in "A ")


@pytest.mark.parametrize("piece, spm_mode, expected", [
    ("▁the", True, True), ("<unk>", True, True), (",", True, True), ("`", True, True),
    ("ing", True, False), ("s", True, False), ("a-b", True, False), ("9", True, True),
    ("ab9", True, True), ("'", True, True), ("é", True, True), ("a€", True, True), ("A", True, False),
    ("##ing", False, False), ("ing", False, True), ("▁x", False, True),
])
def test_is_start_piece(piece, spm_mode, expected):
    assert tokenization.is_start_piece(piece, spm_mode) is expected


@pytest.mark.parametrize("keep_accents", [False, True])
@pytest.mark.parametrize("remove_space", [True, False])
def test_hugging_face_text_options_give_transformers_ids(tmp_path, keep_accents, remove_space):
    """A Hugging Face directory's keep_accents / remove_space are honoured exactly as transformers' slow
    AlbertTokenizer does (its ``` `` ``` / ``''`` quote rewrite aside, which the sample avoids), and they
    reach the GLUE, RACE and SQuAD text normalisation."""
    transformers = pytest.importorskip("transformers")
    from albert_tf.tasks.glue import data as glue
    from albert_tf.tasks.squad import data as squad

    directory = tmp_path / "hf"
    directory.mkdir()
    shutil.copy(os.path.join(FIXTURES, "tokenization", "tiny-clean.model"), directory / "spiece.model")
    options = {"do_lower_case": True, "remove_space": remove_space, "keep_accents": keep_accents}
    (directory / "tokenizer_config.json").write_text(json.dumps(dict(options, tokenizer_class="AlbertTokenizer")))
    ours = tokenization.FullTokenizer.from_transformers(str(directory))
    theirs = transformers.AlbertTokenizer(vocab_file=str(directory / "spiece.model"), **options)
    with open(os.path.join(FIXTURES, "tokenization", "accents_sample.txt"), encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    texts = lines + ["  " + line.replace(". ", ".   ").replace(", ", " ,\t") + " " for line in lines[:20]]
    originals = tokenization.FullTokenizer(spm_model_file=str(directory / "spiece.model"))
    differ = 0
    for text in texts:
        ids = ours.convert_tokens_to_ids(ours.tokenize(ours.preprocess(text)))
        assert ids == theirs.convert_tokens_to_ids(theirs.tokenize(text)), text
        differ += ids != originals.convert_tokens_to_ids(originals.tokenize(originals.preprocess(text)))
    # keep_accents changes the ids of some of these texts; remove_space=False keeps the spaces in the
    # text (this SentencePiece model then collapses them itself); the original's options change nothing.
    assert (differ > 0) == keep_accents
    assert (ours.preprocess(texts[-1]) != originals.preprocess(texts[-1])) == (keep_accents or not remove_space)
    expected = {} if (remove_space and not keep_accents) else {k: options[k] for k in ("remove_space", "keep_accents")
                                                                if options[k] != tokenization.DEFAULT_TEXT_OPTIONS[k]}
    assert tokenization.text_options(ours) == expected
    # The feature writers normalise with them.
    assert glue.get_processor("sst-2", **tokenization.text_options(ours)).process_text(texts[0]) == ours.preprocess(
        texts[0])
    paragraph = lines[1]
    alignment = squad.align_paragraph(ours.sp_model, paragraph, True, **tokenization.text_options(ours))
    assert alignment is not None
    assert alignment.piece_ids == ours.convert_tokens_to_ids(ours.tokenize(ours.preprocess(paragraph)))
