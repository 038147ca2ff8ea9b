"""`python -m albert_tf.data.squad_split`: the documented command that makes the SQuAD walkthrough's files."""
import json
import subprocess
import sys

import pytest

from albert_tf.tasks.squad import split as squad_split
from conftest import ROOT


def article(title, answers_per_question):
    return {"title": title, "paragraphs": [{"context": "Zoë met José in Zürich.", "qas": [
        {"id": f"{title}-{i}", "question": "Who?", "answers": [{"text": "Zoë", "answer_start": 0}] * n}
        for i, n in enumerate(answers_per_question)]}]}


def test_split_keeps_the_first_answer_for_training_and_every_answer_for_dev():
    articles = [article("a", [3, 1]), article("b", [2]), article("c", [3]), article("d", [1])]
    train, dev = squad_split.split_articles(articles, 2, 1)
    assert [a["title"] for a in train] == ["a", "b"] and [a["title"] for a in dev] == ["c"]
    assert [len(qa["answers"]) for a in train for qa in a["paragraphs"][0]["qas"]] == [1, 1, 1]
    assert len(dev[0]["paragraphs"][0]["qas"][0]["answers"]) == 3
    assert len(articles[0]["paragraphs"][0]["qas"][0]["answers"]) == 3  # the input is not modified
    with pytest.raises(squad_split.SplitError, match="has 4 articles, fewer than .* = 5"):
        squad_split.split_articles(articles, 4, 1)
    with pytest.raises(squad_split.SplitError, match="at least 1"):
        squad_split.split_articles(articles, 0, 1)


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "albert_tf.data.squad_split", *args], cwd=cwd, capture_output=True,
                          text=True, env={"PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"})


def test_command_writes_files_the_reader_accepts_and_never_overwrites(tmp_path):
    source = tmp_path / "dev-v1.1.json"
    source.write_text(json.dumps({"version": "1.1", "data": [article(t, [2, 1]) for t in "abc"]}), encoding="utf-8")
    args = [f"--input_file={source}", "--train_file=train.json", "--dev_file=dev.json", "--num_train_articles=2",
            "--num_dev_articles=1"]
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "train.json: 2 articles, 4 questions" in result.stdout
    from albert_tf.tasks.squad import data as squad
    assert len(squad.read_squad_examples(str(tmp_path / "train.json"), is_training=True)) == 4
    assert json.loads((tmp_path / "dev.json").read_text())["version"] == "1.1"
    before = (tmp_path / "train.json").read_bytes()
    again = run(*args, cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.strip().startswith("error: train.json exists")
    assert (tmp_path / "train.json").read_bytes() == before
