"""GLUE processors, classification features, their TFRecord reader and create_finetuning_data.py.

Every data file is generated here in the layout of the real GLUE release (headers, BOM, columns).
"""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from albert_tf import tokenization
from albert_tf.data import classifier_features as cf
from albert_tf.tasks.glue import data as glue
from albert_tf.data.classifier_features import InputExample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPM_MODEL = os.path.join(ROOT, "tests", "fixtures", "tokenization", "tiny-clean.model")
CLS, SEP = 2, 3  # ids of the control symbols in every 30k-clean-style model (spec §2.4)
BOM = "\ufeff"


def tsv(*rows):
    return "".join("\t".join(row) + "\n" for row in rows)


MNLI_TRAIN_HEADER = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                     "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
                     "sentence2", "label1", "gold_label"]
MNLI_DEV_HEADER = MNLI_TRAIN_HEADER[:10] + ["label1", "label2", "label3", "label4", "label5",
                                            "gold_label"]
MNLI_TEST_HEADER = MNLI_TRAIN_HEADER[:10]
MNLI_PARSES = ["p1", "p2", "(p1)", "(p2)"]
STSB_HEADER = ["index", "genre", "filename", "year", "old_index", "source1", "source2",
               "sentence1", "sentence2", "score"]
XNLI_HEADER = ["language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "promptID", "pairID"]

# One tiny data set per task, in the release's layout. Texts carry upper case, accents and extra
# spaces so the SentencePiece-mode normalisation (collapse spaces, strip accents, lower) shows.
FILES = {
    "CoLA/train.tsv": tsv(["gj04", "1", "", "The  Sailors rode."], ["gj04", "0", "*", "Rode the."]),
    "CoLA/dev.tsv": tsv(["cj99", "1", "", "Café  is open."]),
    "CoLA/test.tsv": tsv(["index", "sentence"], ["0", "Bill  whistled."], ["1", "Go."]),
    "SST-2/train.tsv": tsv(["sentence", "label"], ["A Charming  film ", "1"], ["dull", "0"]),
    "SST-2/dev.tsv": tsv(["sentence", "label"], ["Bleak ", "0"]),
    "SST-2/test.tsv": tsv(["index", "sentence"], ["0", "Uneasy mishmash ."]),
    "MRPC/train.tsv": BOM + tsv(["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                                ["1", "702876", "702977", 'He said " the witness " .',
                                 "Referring to HIM ."],
                                ["0", "2108705", "2108831", "Yucaipa owned it .", "It sold ."]),
    "MRPC/dev.tsv": BOM + tsv(["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                              ["0", "1", "2", "A b .", "C d ."]),
    "MRPC/test.tsv": tsv(["index", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                         ["0", "1089874", "1089925", "PCCW 's chief .", "Current chief ."]),
    "STS-B/train.tsv": tsv(STSB_HEADER, ["0", "main-captions", "MSRvid", "2012test", "0001", "none",
                                         "none", "A plane is taking off.", "An air plane.", "5.000"],
                           ["1", "main-news", "MSRvid", "2012test", "0004", "none", "none",
                            "A man.", "A flute.", "3.800"]),
    "STS-B/dev.tsv": tsv(STSB_HEADER, ["0", "g", "f", "y", "o", "s1", "s2", "A Man.", "A man!",
                                       "4.750"]),
    "STS-B/test.tsv": tsv(STSB_HEADER[:9], ["0", "g", "f", "y", "o", "s1", "s2", "A Girl.", "Hair."]),
    "QQP/train.tsv": tsv(["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
                         ["201359", "303345", "303346", "Why are AI images?", "Why?", "0"],
                         ["7", "8", "a broken row"],
                         ["263843", "69383", "380476", "How do I?", "What do I?", "1"]),
    "QQP/dev.tsv": tsv(["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
                       ["5", "1", "2", "Q one?", "Q two?", "1"]),
    "QQP/test.tsv": tsv(["id", "question1", "question2"], ["0", "Would You?", "Could I?"]),
    "MNLI/train.tsv": tsv(MNLI_TRAIN_HEADER,
                          ["0", "31193", "31193n", "government", *MNLI_PARSES, "Conceptually  cream.",
                           "Product and geography.", "neutral", "neutral"]),
    "MNLI/dev_matched.tsv": tsv(MNLI_DEV_HEADER,
                                ["0", "63735", "63735n", "slate", *MNLI_PARSES, "The New Rights.",
                                 "Everyone really.", "neutral", "entailment", "neutral", "neutral",
                                 "neutral", "neutral"]),
    "MNLI/dev_mismatched.tsv": tsv(MNLI_DEV_HEADER,
                                   ["0", "75290", "75290c", "letters", *MNLI_PARSES, "Your gift.",
                                    "Hundreds.", "contradiction", "contradiction", "contradiction",
                                    "contradiction", "contradiction", "contradiction"]),
    "MNLI/test_matched.tsv": tsv(MNLI_TEST_HEADER,
                                 ["0", "31493", "31493", "travel", *MNLI_PARSES, "Hierbas.", "Mas."]),
    "MNLI/test_mismatched.tsv": tsv(MNLI_TEST_HEADER,
                                    ["0", "1", "1", "letters", *MNLI_PARSES, "What.", "It."]),
    "QNLI/train.tsv": tsv(["index", "question", "sentence", "label"],
                          ["0", "When?", "In 1990.", "entailment"]),
    "QNLI/dev.tsv": tsv(["index", "question", "sentence", "label"],
                        ["0", "What came?", "As of That day.", "not_entailment"]),
    "QNLI/test.tsv": tsv(["index", "question", "sentence"], ["0", "Who?", "Him."]),
    "RTE/train.tsv": tsv(["index", "sentence1", "sentence2", "label"],
                         ["0", "No Weapons Found.", "Weapons Found.", "not_entailment"],
                         ["1", "A place.", "A Pope.", "entailment"]),
    "RTE/dev.tsv": tsv(["index", "sentence1", "sentence2", "label"],
                       ["0", "Dana Reeve died.", "Reeve had an accident.", "not_entailment"]),
    "RTE/test.tsv": tsv(["index", "sentence1", "sentence2"], ["0", "Mangla.", "Shukla."]),
    "WNLI/train.tsv": tsv(["index", "sentence1", "sentence2", "label"],
                          ["0", "I stuck a pin.", "The carrot.", "1"]),
    "WNLI/dev.tsv": tsv(["index", "sentence1", "sentence2", "label"], ["0", "Drain.", "Hair.", "0"]),
    "WNLI/test.tsv": tsv(["index", "sentence1", "sentence2"], ["0", "Maude.", "Horses."]),
    "diagnostic/diagnostic.tsv": tsv(["index", "sentence1", "sentence2"],
                                     ["0", "The cat sat.", "The cat did not sit."]),
    "XNLI/multinli/multinli.train.zh.tsv": tsv(["premise", "hypo", "label"],
                                               ["你好", "世界", "contradictory"],
                                               ["一", "二", "neutral"]),
    "XNLI/xnli.dev.tsv": tsv(XNLI_HEADER, ["en", "neutral", "b", "b", "p", "p", "Hello", "World",
                                           "1", "1"],
                             ["zh", "entailment", "b", "b", "p", "p", "你好", "世界", "1", "2"]),
    "XNLI/xnli.test.tsv": tsv(XNLI_HEADER, ["zh", "contradiction", "b", "b", "p", "p", "三", "四",
                                            "2", "3"]),
}


def ex(guid, a, b=None, label=None):
    return InputExample(guid=guid, text_a=a, text_b=b, label=label)


# Expected examples in SentencePiece mode with do_lower_case=True (guids/labels per spec §6.2).
EXPECTED = {
    "cola": {"train": [ex("train-0", "the sailors rode.", label="1"),
                       ex("train-1", "rode the.", label="0")],
             "dev": [ex("dev-0", "cafe is open.", label="1")],
             "test": [ex("0", "bill whistled.", label="0"), ex("1", "go.", label="0")]},
    "sst-2": {"train": [ex("train-1", "a charming film", label="1"), ex("train-2", "dull", label="0")],
              "dev": [ex("dev-1", "bleak", label="0")],
              "test": [ex("0", "uneasy mishmash .", label="0")]},
    "mrpc": {"train": [ex("train-1", 'he said " the witness " .', "referring to him .", "1"),
                       ex("train-2", "yucaipa owned it .", "it sold .", "0")],
             "dev": [ex("dev-1", "a b .", "c d .", "0")],
             "test": [ex("0", "pccw 's chief .", "current chief .", "0")]},
    "sts-b": {"train": [ex("0", "a plane is taking off.", "an air plane.", 5.0),
                        ex("1", "a man.", "a flute.", 3.8)],
              "dev": [ex("0", "a man.", "a man!", 4.75)],
              "test": [ex("0", "a girl.", "hair.", 0.0)]},
    "qqp": {"train": [ex("201359", "why are ai images?", "why?", "0"),
                      ex("263843", "how do i?", "what do i?", "1")],
            "dev": [ex("5", "q one?", "q two?", "1")],
            "test": [ex("0", "would you?", "could i?", "0")]},
    "mnli": {"train": [ex("0", "conceptually cream.", "product and geography.", "neutral")],
             "dev": [ex("0", "the new rights.", "everyone really.", "neutral")],
             "test": [ex("0", "hierbas.", "mas.", "contradiction")]},
    "mismnli": {"train": [ex("0", "conceptually cream.", "product and geography.", "neutral")],
                "dev": [ex("0", "your gift.", "hundreds.", "contradiction")],
                "test": [ex("0", "what.", "it.", "contradiction")]},
    "qnli": {"train": [ex("0", "when?", "in 1990.", "entailment")],
             "dev": [ex("0", "what came?", "as of that day.", "not_entailment")],
             "test": [ex("0", "who?", "him.", "entailment")]},
    "rte": {"train": [ex("0", "no weapons found.", "weapons found.", "not_entailment"),
                      ex("1", "a place.", "a pope.", "entailment")],
            "dev": [ex("0", "dana reeve died.", "reeve had an accident.", "not_entailment")],
            "test": [ex("0", "mangla.", "shukla.", "entailment")]},
    "wnli": {"train": [ex("0", "i stuck a pin.", "the carrot.", "1")],
             "dev": [ex("0", "drain.", "hair.", "0")],
             "test": [ex("0", "maude.", "horses.", "0")]},
    "ax": {"test": [ex("0", "the cat sat.", "the cat did not sit.", "contradiction")]},
    "xnli": {"train": [ex("train-1", "你好", "世界", "contradiction"),
                       ex("train-2", "一", "二", "neutral")],
             "dev": [ex("dev-2", "你好", "世界", "entailment")],
             "test": [ex("test-1", "三", "四", "contradiction")]},
}

LABELS = {"cola": ["0", "1"], "sst-2": ["0", "1"], "mrpc": ["0", "1"], "sts-b": [None],
          "qqp": ["0", "1"], "mnli": ["contradiction", "entailment", "neutral"],
          "mismnli": ["contradiction", "entailment", "neutral"],
          "qnli": ["entailment", "not_entailment"], "rte": ["entailment", "not_entailment"],
          "wnli": ["0", "1"], "ax": ["contradiction", "entailment", "neutral"],
          "xnli": ["contradiction", "entailment", "neutral"]}


def write_files(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return str(root)


@pytest.fixture
def data_dir(tmp_path):
    return write_files(tmp_path / "glue", FILES)


@pytest.fixture(scope="module")
def tokenizer():
    return tokenization.FullTokenizer(spm_model_file=SPM_MODEL)


class WhitespaceTokenizer:
    """Splits on spaces; a token's id is its position in a fixed vocabulary."""

    def __init__(self, words):
        self.vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "[CLS]", "[SEP]", *words])}

    def tokenize(self, text):
        return text.split()

    def convert_tokens_to_ids(self, tokens):
        return [self.vocab[t] for t in tokens]


# ----------------------------------------------------------------------------------------------
# Processors
# ----------------------------------------------------------------------------------------------

def test_every_task_is_registered():
    assert set(glue.PROCESSORS) == set(EXPECTED)


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_processor_reads_every_split(task, data_dir):
    processor = glue.get_processor(task.upper(), use_spm=True, do_lower_case=True)
    assert processor.name == task
    assert processor.get_labels() == LABELS[task]
    for split, expected in EXPECTED[task].items():
        assert processor.get_examples(data_dir, split) == expected, split
    assert processor.get_test_examples(data_dir) == EXPECTED[task]["test"]
    if "train" in EXPECTED[task]:
        assert processor.get_train_examples(data_dir) == EXPECTED[task]["train"]
        assert processor.get_dev_examples(data_dir) == EXPECTED[task]["dev"]


def test_task_properties():
    assert glue.get_processor("sts-b").is_regression
    assert not glue.get_processor("rte").is_regression
    assert glue.get_processor("cola").metric_key == "matthew_corr"
    assert glue.get_processor("sts-b").metric_key == "pearson"
    assert glue.get_processor("mrpc").metric_key == "eval_accuracy"
    assert glue.get_processor("MNLI").files["dev"] == "dev_matched.tsv"
    assert glue.get_processor("MisMNLI").files["dev"] == "dev_mismatched.tsv"


def test_aliases_map_to_canonical_names():
    assert glue.canonical_task_name("SST2") == "sst-2"
    assert glue.canonical_task_name("StsB") == "sts-b"
    assert glue.get_processor("sst2").name == "sst-2"
    assert glue.feature_file_name("STS-B", "eval") == "sts-b_eval.tf_record"


def test_wordpiece_mode_keeps_text_as_is(data_dir):
    processor = glue.get_processor("cola", use_spm=False, do_lower_case=True)
    assert processor.get_dev_examples(data_dir) == [ex("dev-0", "Café  is open.", label="1")]


def test_spm_mode_without_lower_case(data_dir):
    processor = glue.get_processor("rte", use_spm=True, do_lower_case=False)
    assert processor.get_dev_examples(data_dir)[0].text_a == "Dana Reeve died."


def test_xnli_language_filter(data_dir):
    processor = glue.get_processor("xnli", xnli_language="en")
    assert processor.get_dev_examples(data_dir) == [ex("dev-1", "hello", "world", "neutral")]
    with pytest.raises(FileNotFoundError, match="multinli.train.en.tsv"):
        processor.get_train_examples(data_dir)


def test_unknown_task_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown GLUE task 'foo'.*cola.*sst-2.*mismnli"):
        glue.get_processor("foo")


def test_missing_file_names_path_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        glue.get_processor("rte").get_train_examples(str(tmp_path))
    message = str(info.value)
    assert os.path.join(str(tmp_path), "RTE", "train.tsv") in message
    assert "--data_dir" in message and "RTE/dev.tsv" in message


def test_ax_has_only_a_test_set(data_dir):
    with pytest.raises(ValueError, match="no train set"):
        glue.get_processor("ax").get_train_examples(data_dir)


@pytest.mark.parametrize("task,rel,text,line,pattern", [
    ("rte", "RTE/train.tsv", tsv(["index", "sentence1", "sentence2", "label"], ["0", "a", "b", "entailment"],
                                 ["1", "only two"]), 3, r"expected 4 tab-separated columns \(index, sentence1, sentence2, label\), found 2"),
    ("rte", "RTE/dev.tsv", tsv(["index", "sentence1", "sentence2", "label"], ["0", "a", "b", "maybe"]),
     2, "unknown label 'maybe'"),
    ("sts-b", "STS-B/train.tsv", tsv(STSB_HEADER, ["0", "g", "f", "y", "o", "s", "s", "a", "b", "high"]),
     2, "'high' in the last column is not a number"),
    ("cola", "CoLA/train.tsv", tsv(["gj04", "1", "", "ok"], ["gj04", "1"]), 2,
     "expected 4 tab-separated columns"),
])
def test_malformed_row_names_file_and_line(tmp_path, task, rel, text, line, pattern):
    data_dir = write_files(tmp_path, {rel: text})
    split = "dev" if "dev" in rel else "train"
    with pytest.raises(glue.GlueDataError, match=pattern) as info:
        glue.get_processor(task).get_examples(data_dir, split)
    assert f"{os.path.join(data_dir, rel)}, line {line}:" in str(info.value)


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "RTE" / "dev.tsv"
    path.parent.mkdir()
    path.write_bytes(b"index\tsentence1\tsentence2\tlabel\n0\ta\xff\tb\tentailment\n")
    with pytest.raises(glue.GlueDataError, match="line 2: not valid UTF-8"):
        glue.get_processor("rte").get_dev_examples(str(tmp_path))


def test_empty_lines_are_skipped(tmp_path):
    data_dir = write_files(tmp_path, {"WNLI/dev.tsv": "index\ts1\ts2\tlabel\n0\ta\tb\t1\n\n"})
    assert glue.get_processor("wnli").get_dev_examples(data_dir) == [ex("0", "a", "b", "1")]


# ----------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------

def test_pair_features_value_for_value(tokenizer):
    ids_a = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("the cat sat."))
    ids_b = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("a dog"))
    seq_len = len(ids_a) + len(ids_b) + 3 + 4
    labels = ["entailment", "not_entailment"]
    features = cf.convert_examples_to_features(
        [ex("g", "the cat sat.", "a dog", "not_entailment")], labels, seq_len, tokenizer, False)
    n = len(ids_a) + len(ids_b) + 3
    assert features == [cf.InputFeatures(
        input_ids=[CLS, *ids_a, SEP, *ids_b, SEP, 0, 0, 0, 0],
        input_mask=[1] * n + [0] * 4,
        segment_ids=[0] * (len(ids_a) + 2) + [1] * (len(ids_b) + 1) + [0] * 4,
        label_id=1)]


def test_single_features_and_empty_text_b(tokenizer):
    ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("hello world"))
    for text_b in (None, ""):
        [features] = cf.convert_examples_to_features(
            [ex("g", "hello world", text_b, "1")], ["0", "1"], len(ids) + 3, tokenizer, False)
        assert features.input_ids == [CLS, *ids, SEP, 0]
        assert features.segment_ids == [0] * (len(ids) + 3)
        assert features.label_id == 1


def test_truncate_seq_pair_longest_first_from_the_end():
    a, b = ["a1", "a2", "a3", "a4", "a5"], ["b1", "b2"]
    cf.truncate_seq_pair(a, b, 5)
    assert (a, b) == (["a1", "a2", "a3"], ["b1", "b2"])
    # On a tie the second sequence loses its last token first.
    a, b = ["a1", "a2", "a3"], ["b1", "b2", "b3"]
    cf.truncate_seq_pair(a, b, 5)
    assert (a, b) == (["a1", "a2", "a3"], ["b1", "b2"])
    a, b = ["a1", "a2", "a3"], ["b1", "b2", "b3"]
    cf.truncate_seq_pair(a, b, 4)
    assert (a, b) == (["a1", "a2"], ["b1", "b2"])
    a, b = ["a1"], ["b1", "b2", "b3", "b4"]
    cf.truncate_seq_pair(a, b, 3)
    assert (a, b) == (["a1"], ["b1", "b2"])


def test_truncation_in_features():
    words = ["a1", "a2", "a3", "a4", "a5", "b1", "b2"]
    tok = WhitespaceTokenizer(words)
    v = tok.vocab
    [pair] = cf.convert_examples_to_features(
        [ex("g", "a1 a2 a3 a4 a5", "b1 b2", "0")], ["0"], 8, tok, False)
    # 8 - 3 = 5 tokens left: a loses a5 and a4.
    assert pair.input_ids == [CLS, v["a1"], v["a2"], v["a3"], SEP, v["b1"], v["b2"], SEP]
    assert pair.segment_ids == [0, 0, 0, 0, 0, 1, 1, 1]
    assert pair.input_mask == [1] * 8
    [single] = cf.convert_examples_to_features([ex("g", "a1 a2 a3 a4 a5", None, "0")], ["0"], 5, tok,
                                               False)
    assert single.input_ids == [CLS, v["a1"], v["a2"], v["a3"], SEP]


def test_unknown_label_in_features_names_guid():
    with pytest.raises(ValueError, match="'g7' has label 'x'"):
        cf.convert_examples_to_features([ex("g7", "a1", None, "x")], ["0", "1"], 8,
                                        WhitespaceTokenizer(["a1"]), False)


def test_max_seq_length_too_small():
    with pytest.raises(ValueError, match="at least 3"):
        cf.convert_examples_to_features([], ["0"], 2, WhitespaceTokenizer([]), False)


def read_raw(path):
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def test_records_on_disk(tmp_path):
    tok = WhitespaceTokenizer(["x", "y"])
    path = str(tmp_path / "sub" / "reg.tf_record")
    n = cf.file_based_convert_examples_to_features([ex("g", "x", "y", 3.5)], [None], 6, tok, path,
                                                   is_regression=True)
    assert n == 1
    [example] = read_raw(path)
    feats = example.features.feature
    assert sorted(feats) == ["input_ids", "input_mask", "is_real_example", "label_ids", "segment_ids"]
    assert list(feats["label_ids"].float_list.value) == [3.5]
    assert not feats["label_ids"].int64_list.value
    assert list(feats["input_ids"].int64_list.value) == [CLS, 4, SEP, 5, SEP, 0]
    assert list(feats["input_mask"].int64_list.value) == [1, 1, 1, 1, 1, 0]
    assert list(feats["segment_ids"].int64_list.value) == [0, 0, 0, 1, 1, 0]
    assert list(feats["is_real_example"].int64_list.value) == [1]

    path = str(tmp_path / "cls.tf_record")
    cf.file_based_convert_examples_to_features([ex("g", "x", None, "b")], ["a", "b"], 4, tok, path,
                                               is_regression=False)
    [example] = read_raw(path)
    assert list(example.features.feature["label_ids"].int64_list.value) == [1]
    assert not example.features.feature["label_ids"].float_list.value


def test_parallel_equals_sequential(tmp_path, tokenizer):
    words = ["the cat sat.", "a dog", "hello world", "cafe au lait"]
    examples = [ex(str(i), " ".join(words[j % 4] for j in range(i % 7 + 1)), words[i % 4] if i % 3 else None,
                   str(i % 2)) for i in range(700)]  # 700 examples = 3 chunks of at most 256
    sequential = cf.convert_examples_to_features(examples, ["0", "1"], 16, tokenizer, False, num_workers=1)
    parallel = cf.convert_examples_to_features(examples, ["0", "1"], 16, tokenizer, False, num_workers=2)
    assert parallel == sequential
    paths = [str(tmp_path / f"{w}.tf_record") for w in (1, 2)]
    for workers, path in zip((1, 2), paths):
        cf.file_based_convert_examples_to_features(examples, ["0", "1"], 16, tokenizer, path, False,
                                                   num_workers=workers)
    with open(paths[0], "rb") as f1, open(paths[1], "rb") as f2:
        assert f1.read() == f2.read()
    assert len(read_raw(paths[1])) == 700


def write_numbered(tmp_path, count, is_regression, seq_len=6):
    tok = WhitespaceTokenizer([str(i) for i in range(count)])
    examples = [ex(str(i), str(i), None, float(i) / 2 if is_regression else str(i % 3))
                for i in range(count)]
    path = str(tmp_path / "data.tf_record")
    labels = [None] if is_regression else ["0", "1", "2"]
    cf.file_based_convert_examples_to_features(examples, labels, seq_len, tok, path, is_regression)
    return path, tok


def test_reader_eval_keeps_every_example_in_order(tmp_path):
    path, tok = write_numbered(tmp_path, 5, is_regression=False)
    batches = list(cf.classifier_dataset(path, 6, 2, is_training=False, is_regression=False))
    assert [b["input_word_ids"].shape.as_list() for b in batches] == [[2, 6], [2, 6], [1, 6]]
    for key in ("input_word_ids", "input_mask", "input_type_ids", "label_ids", "is_real_example"):
        assert batches[0][key].dtype == tf.int32, key
    words = np.concatenate([b["input_word_ids"].numpy()[:, 1] for b in batches])
    assert words.tolist() == [tok.vocab[str(i)] for i in range(5)]
    assert np.concatenate([b["label_ids"].numpy() for b in batches]).tolist() == [0, 1, 2, 0, 1]
    assert batches[0]["input_mask"].numpy()[0].tolist() == [1, 1, 1, 0, 0, 0]
    assert np.concatenate([b["is_real_example"].numpy() for b in batches]).tolist() == [1] * 5


def test_reader_training_repeats_and_drops_remainder(tmp_path):
    path, _ = write_numbered(tmp_path, 5, is_regression=True)
    dataset = cf.classifier_dataset(path, 6, 4, is_training=True, is_regression=True, seed=1)
    batches = list(dataset.take(6))
    assert all(b["input_word_ids"].shape.as_list() == [4, 6] for b in batches)
    labels = np.concatenate([b["label_ids"].numpy() for b in batches])
    assert batches[0]["label_ids"].dtype == tf.float32
    assert set(labels.tolist()) == {0.0, 0.5, 1.0, 1.5, 2.0}


def test_reader_shards_by_input_context(tmp_path):
    path, tok = write_numbered(tmp_path, 6, is_regression=False)
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                         num_replicas_in_sync=2)
    dataset = cf.classifier_dataset(path, 6, 4, is_training=True, is_regression=False,
                                    input_context=context, seed=0)
    batches = list(dataset.take(5))
    assert all(b["input_word_ids"].shape.as_list() == [2, 6] for b in batches)
    seen = {int(i) for b in batches for i in b["input_word_ids"].numpy()[:, 1]}
    assert seen == {tok.vocab[str(i)] for i in (1, 3, 5)}


# ----------------------------------------------------------------------------------------------
# write_glue_features and the command line
# ----------------------------------------------------------------------------------------------

def test_write_glue_features(data_dir, tmp_path, tokenizer):
    out = str(tmp_path / "out" / "nested")
    messages = []
    written = glue.write_glue_features("STS-B", data_dir, tokenizer, 32, out, log=messages.append)
    assert written == {"train": (os.path.join(out, "sts-b_train.tf_record"), 2),
                       "eval": (os.path.join(out, "sts-b_eval.tf_record"), 1),
                       "predict": (os.path.join(out, "sts-b_predict.tf_record"), 1)}
    labels = [list(e.features.feature["label_ids"].float_list.value)
              for e in read_raw(written["train"][0])]
    assert labels == [[5.0], [pytest.approx(3.8)]]

    messages.clear()
    written = glue.write_glue_features("ax", data_dir, tokenizer, 32, out, log=messages.append)
    assert list(written) == ["predict"]
    assert any("Skipping train" in m for m in messages)


def test_write_glue_features_skips_missing_split(tmp_path, tokenizer):
    files = {k: v for k, v in FILES.items() if k.startswith("RTE/") and k != "RTE/test.tsv"}
    data_dir = write_files(tmp_path / "glue", files)
    messages = []
    written = glue.write_glue_features("RTE", data_dir, tokenizer, 32, str(tmp_path / "o"),
                                       log=messages.append)
    assert sorted(written) == ["eval", "train"]
    assert any("Skipping predict" in m and "RTE/test.tsv" in m for m in messages)


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, os.path.join(ROOT, "create_finetuning_data.py"), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_writes_glue_files_and_skips_missing_split(tmp_path):
    files = {k: v for k, v in FILES.items() if k.startswith("RTE/") and k != "RTE/dev.tsv"}
    data_dir = write_files(tmp_path / "glue", files)
    out = tmp_path / "out"
    result = run_cli("--task=glue", "--task_name=RTE", f"--data_dir={data_dir}",
                     f"--spm_model_file={SPM_MODEL}", "--do_lower_case", "--max_seq_length=16",
                     f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    assert sorted(n for n in os.listdir(out) if n.endswith(".tf_record")) == ["rte_predict.tf_record",
                                                                             "rte_train.tf_record"]
    assert "Skipping eval" in result.stdout and "RTE/dev.tsv" in result.stdout
    assert len(read_raw(str(out / "rte_train.tf_record"))) == 2
    [first] = read_raw(str(out / "rte_predict.tf_record"))
    assert len(first.features.feature["input_ids"].int64_list.value) == 16


def test_cli_rejects_unknown_task():
    result = run_cli("--task=ner")
    assert result.returncode != 0
    assert "--task must be one of glue, squad, race" in result.stderr


def test_xnli_cache_names_carry_the_language():
    assert glue.feature_file_name("RTE", "train") == "rte_train.tf_record"
    assert glue.feature_file_name("XNLI", "eval", xnli_language="de") == "xnli_de_eval.tf_record"
    assert glue.feature_file_name("xnli", "eval", xnli_language="fr") != glue.feature_file_name("xnli", "eval")
