"""RACE reading, encoding, TFRecord round trip and the create_finetuning_data.py --task=race CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from albert_tf import tokenization
from albert_tf.tasks.race import data as race
from conftest import FIXTURES, ROOT

SPM_MODEL = os.path.join(FIXTURES, "tokenization", "tiny-clean.model")
SEQ, QA = 32, 8

SHORT = {"id": "middle2.txt", "article": "The  Cat sat on the mat.",
         "questions": ["The cat sat on the _ .", "Where was the cat?"],
         "options": [["mat", "dog", "roof", "tree"],
                     ["on the mat", "in a very long and winding tale about many other small things",
                      "at school", "nowhere"]],
         "answers": ["A", "C"]}
LONG = {"id": "middle10.txt", "article": " ".join(["the quick brown fox jumps over the lazy dog"] * 6),
        "questions": ["Who jumps?"], "options": [["fox", "dog", "cat", "cow"]], "answers": ["D"]}
HIGH = {"id": "high1.txt", "article": "Café owners open early.",
        "questions": ["When do _ open?"], "options": [["owners", "Cats", "dogs", "birds"]],
        "answers": ["B"]}


@pytest.fixture(scope="module")
def tokenizer():
    return tokenization.FullTokenizer(spm_model_file=SPM_MODEL)


def write_article(path, article):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(article))


@pytest.fixture
def race_root(tmp_path):
    """dev/middle/{10,2}.txt and dev/high/1.txt, written in the order that must NOT be read."""
    write_article(tmp_path / "dev" / "middle" / "10.txt", LONG)
    write_article(tmp_path / "dev" / "middle" / "2.txt", SHORT)
    write_article(tmp_path / "dev" / "high" / "1.txt", HIGH)
    return tmp_path


def expected_choice(tokenizer, context, ending, seq=SEQ, qa=QA):
    """[CLS] context [SEP] ending [SEP] built by hand from literal, already normalised texts."""
    ending_tokens = tokenizer.tokenize(ending)[-qa:]
    context_tokens = tokenizer.tokenize(context)[:seq - 3 - len(ending_tokens)]
    tokens = ["[CLS]"] + context_tokens + ["[SEP]"] + ending_tokens + ["[SEP]"]
    pad = seq - len(tokens)
    ids = tokenizer.convert_tokens_to_ids(tokens) + [0] * pad
    segments = [0] * (len(context_tokens) + 2) + [1] * (len(ending_tokens) + 1) + [0] * pad
    return ids, [1] * len(tokens) + [0] * pad, segments


def read_raw(path):
    out = []
    for record in tf.data.TFRecordDataset(path):
        example = tf.train.Example.FromString(record.numpy())
        out.append({k: list(v.int64_list.value) for k, v in example.features.feature.items()})
    return out


def test_read_examples_order_labels_and_candidates(race_root):
    examples = race.read_race_examples(str(race_root), "dev", "all")
    # 2.txt before 10.txt (numeric order), middle before high.
    assert [e.example_id for e in examples] == ["middle2.txt-0", "middle2.txt-1", "middle10.txt-0",
                                                "high1.txt-0"]
    assert [e.label for e in examples] == [0, 2, 3, 1]
    first, second, _, high = examples
    assert first.context == "the cat sat on the mat."  # whitespace collapsed, lower-cased
    assert first.endings == ("the cat sat on the mat .", "the cat sat on the dog .",
                             "the cat sat on the roof .", "the cat sat on the tree .")
    assert second.endings[0] == "where was the cat? on the mat"
    assert high.context == "cafe owners open early."  # accent dropped
    assert high.endings[1] == "when do cats open?"
    assert [e.example_id for e in race.read_race_examples(str(race_root), "dev", "high")] == \
        ["high1.txt-0"]
    cased = race.read_race_examples(str(race_root), "dev", "high", do_lower_case=False)
    assert cased[0].endings[1] == "When do Cats open?"


def test_features_value_for_value(race_root, tokenizer, tmp_path):
    out = str(tmp_path / "out" / "dev.tf_record")
    count = race.write_race_features(str(race_root), "dev", "middle", tokenizer, SEQ, QA, out)
    assert count == 3
    rows = read_raw(out)
    assert [r["label_ids"] for r in rows] == [[0], [2], [3]]
    assert all(r["is_real_example"] == [1] for r in rows)
    contexts = ["the cat sat on the mat."] * 2 + [LONG["article"]]
    endings = [["the cat sat on the mat .", "the cat sat on the dog .", "the cat sat on the roof .",
                "the cat sat on the tree ."],
               ["where was the cat? on the mat",
                "where was the cat? in a very long and winding tale about many other small things",
                "where was the cat? at school", "where was the cat? nowhere"],
               ["who jumps? fox", "who jumps? dog", "who jumps? cat", "who jumps? cow"]]
    for row, context, choices in zip(rows, contexts, endings):
        want = [expected_choice(tokenizer, context, ending) for ending in choices]
        assert row["input_ids"] == sum((w[0] for w in want), [])
        assert row["input_mask"] == sum((w[1] for w in want), [])
        assert row["segment_ids"] == sum((w[2] for w in want), [])

    # The long option keeps the TAIL of its pieces: exactly QA pieces, ending with "things".
    long_ending = tokenizer.tokenize(endings[1][1])
    assert len(long_ending) > QA
    choice = np.array(rows[1]["input_ids"]).reshape(4, SEQ)[1]
    segments = np.array(rows[1]["segment_ids"]).reshape(4, SEQ)[1]
    assert segments.sum() == QA + 1
    end = int(np.array(rows[1]["input_mask"]).reshape(4, SEQ)[1].sum())
    assert list(choice[end - 1 - QA:end - 1]) == tokenizer.convert_tokens_to_ids(long_ending[-QA:])

    # The long article is cut from its end so every choice fills exactly SEQ positions.
    masks = np.array(rows[2]["input_mask"]).reshape(4, SEQ)
    assert len(tokenizer.tokenize(LONG["article"])) > SEQ
    assert (masks.sum(axis=1) == SEQ).all()
    first = np.array(rows[2]["input_ids"]).reshape(4, SEQ)[0]
    ending_len = len(tokenizer.tokenize("who jumps? fox"))
    assert list(first[1:SEQ - 2 - ending_len]) == tokenizer.convert_tokens_to_ids(
        tokenizer.tokenize(LONG["article"])[:SEQ - 3 - ending_len])


def test_all_txt_is_read_alone(tmp_path, tokenizer):
    level = tmp_path / "test" / "middle"
    level.mkdir(parents=True)
    (level / "all.txt").write_text(json.dumps(LONG) + "\n\n" + json.dumps(SHORT) + "\n")
    write_article(level / "5.txt", HIGH)  # ignored: all.txt wins, as in the original
    examples = race.read_race_examples(str(tmp_path), "test", "middle")
    assert [e.example_id for e in examples] == ["middle10.txt-0", "middle2.txt-0", "middle2.txt-1"]


def test_dataset_shapes_and_values(race_root, tokenizer, tmp_path):
    out = str(tmp_path / "dev.tf_record")
    race.write_race_features(str(race_root), "dev", "all", tokenizer, SEQ, QA, out)
    rows = read_raw(out)
    batches = list(race.race_dataset(out, SEQ, batch_size=3, is_training=False))
    assert [b["label_ids"].shape[0] for b in batches] == [3, 1]  # eval keeps the partial batch
    batch = batches[0]
    for key in ("input_word_ids", "input_mask", "input_type_ids"):
        assert batch[key].shape == (3, 4, SEQ) and batch[key].dtype == tf.int32
    np.testing.assert_array_equal(batch["input_word_ids"].numpy()[1].reshape(-1), rows[1]["input_ids"])
    np.testing.assert_array_equal(batch["input_type_ids"].numpy()[2].reshape(-1),
                                  rows[2]["segment_ids"])
    assert batch["label_ids"].numpy().tolist() == [0, 2, 3]
    assert batch["is_real_example"].numpy().tolist() == [1, 1, 1]
    train = next(iter(race.race_dataset(out, SEQ, batch_size=8, is_training=True, seed=1)))
    assert train["input_mask"].shape == (8, 4, SEQ)


def test_errors_name_file_and_fix(tmp_path, tokenizer):
    with pytest.raises(FileNotFoundError, match=r"dev/middle.*\{train,dev,test\}/\{middle,high\}"):
        race.read_race_examples(str(tmp_path), "dev", "middle")
    write_article(tmp_path / "RACE" / "dev" / "middle" / "1.txt", SHORT)
    with pytest.raises(FileNotFoundError, match="pass that as --data_dir"):
        race.read_race_examples(str(tmp_path), "dev", "middle")

    level = tmp_path / "dev" / "middle"
    level.mkdir(parents=True)
    (level / "3.txt").write_text("{not json")
    with pytest.raises(race.RaceDataError, match=r"3\.txt: not valid JSON"):
        race.read_race_examples(str(tmp_path), "dev", "middle")
    cases = [({k: v for k, v in SHORT.items() if k != "answers"}, r"3\.txt: article has no 'answers'"),
             (dict(SHORT, answers=["A", "E"]), r"3\.txt: 'answers'\[1\] is 'E'; expected one of A, B"),
             (dict(SHORT, options=[["a", "b", "c"], SHORT["options"][1]]),
              r"3\.txt: 'options'\[0\] has 3 options; RACE needs exactly 4"),
             (dict(SHORT, answers=["A"]), r"one entry per question; got 2, 2 and 1")]
    for article, message in cases:
        write_article(level / "3.txt", article)
        with pytest.raises(race.RaceDataError, match=message):
            race.read_race_examples(str(tmp_path), "dev", "middle")
    with pytest.raises(ValueError, match="split must be one of train, dev, test"):
        race.read_race_examples(str(tmp_path), "validation", "middle")
    with pytest.raises(ValueError, match="max_qa_length <= max_seq_length - 3"):
        race.write_race_features(str(tmp_path), "dev", "middle", tokenizer, 10, 8,
                                 str(tmp_path / "x.tf_record"))


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, os.path.join(ROOT, "create_finetuning_data.py"), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_writes_race_features(race_root, tokenizer, tmp_path):
    out = tmp_path / "feats" / "race_dev.tf_record"
    result = run_cli("--task=race", f"--data_dir={race_root}", "--split=dev", "--level=all",
                     f"--spm_model_file={SPM_MODEL}", "--do_lower_case", f"--max_seq_length={SEQ}",
                     f"--max_qa_length={QA}", f"--output_file={out}")
    assert result.returncode == 0, result.stderr
    assert "Wrote 4 RACE dev/all examples" in result.stdout
    library = str(tmp_path / "library.tf_record")
    race.write_race_features(str(race_root), "dev", "all", tokenizer, SEQ, QA, library)
    assert read_raw(str(out)) == read_raw(library)

    result = run_cli("--task=race", f"--data_dir={race_root}", f"--spm_model_file={SPM_MODEL}")
    assert result.returncode != 0
    assert "--task=race needs --split, --output_file" in result.stderr
