"""SQuAD v1.1 / v2.0 evaluation: normalisation, EM/F1, no-answer scoring, threshold search, CLI.

Every expected number is worked out by hand in the comments.
"""
import json
import os
import subprocess
import sys

import pytest

from albert_tf.tasks.squad import evaluate as ev

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dataset(*questions):
    """A SQuAD file with one paragraph holding ``questions`` ((id, [gold texts], impossible))."""
    qas = []
    for qid, golds, impossible in questions:
        entry = {"id": qid, "question": "?", "answers": [{"text": g, "answer_start": 0} for g in golds]}
        if impossible is not None:
            entry["is_impossible"] = impossible
        qas.append(entry)
    return {"version": "x", "data": [{"title": "t", "paragraphs": [{"context": "c", "qas": qas}]}]}


V1_DATA = dataset(("q1", ["Denver Broncos", "The Denver Broncos"], None),
                  ("q2", ["cat sat"], None),
                  ("q3", ["anything"], None))
# q1: "denver broncos!" normalises to "denver broncos": EM 1, F1 1.
# q2: "the cat" -> [cat] vs [cat, sat]: EM 0, P 1, R 1/2, F1 2/3.  q3: missing, scores 0.
V1_PREDS = {"q1": "denver broncos!", "q2": "the cat"}

V2_DATA = dataset(("h1", ["Paris"], False), ("h2", ["blue whale", "a blue whale"], False),
                  ("n1", [], True), ("n2", [], True))
# h1 exact. h2 "whale": EM 0, F1 2/3. n1 abstains (""): EM 1, F1 1. n2 answers: 0, 0.
V2_PREDS = {"h1": "Paris", "h2": "whale", "n1": "", "n2": "something"}
V2_NA = {"h1": 0.1, "h2": 0.2, "n2": 0.3, "n1": 0.9}


def test_normalize_answer():
    assert ev.normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert ev.normalize_answer("an apple a day") == "apple day"
    assert ev.normalize_answer("Theater, anthem") == "theater anthem"  # whole words only
    assert ev.normalize_answer("A-B") == "ab"  # punctuation goes first, so "a-b" is no article
    assert ev.normalize_answer(" \tthe\n") == ""


def test_exact_and_f1():
    assert ev.exact_score("The Cat.", "cat") == 1
    assert ev.exact_score("cats", "cat") == 0
    # [cat, sat, on, mat] vs [cat, on, mat]: 3 common, P 3/4, R 1 -> F1 = 1.5 / 1.75 = 6/7.
    assert ev.f1_score("the cat sat on the mat", "a cat on a mat") == pytest.approx(6 / 7)
    # Tokens count with multiplicity: [x, x, y] vs [x, y, y] have one x and one y in common.
    assert ev.f1_score("x x y", "x y y") == pytest.approx(2 / 3)
    assert ev.f1_score("dog", "cat") == 0.0
    # Both sides empty after normalisation: v1.1 gives 0, v2.0 gives 1; one side empty: 0.
    assert ev.f1_score("the", "a") == 0.0
    assert ev.f1_score("the", "a", empty_matches_empty=True) == 1.0
    assert ev.f1_score("", "cat", empty_matches_empty=True) == 0.0


def test_evaluate_v1_by_hand():
    messages = []
    result = ev.evaluate_v1(V1_DATA, V1_PREDS, log=messages.append)
    assert result == pytest.approx({"exact_match": 100 / 3, "f1": 100 * (1 + 2 / 3) / 3})
    assert messages == ["Unanswered question q3 will receive score 0."]
    # The article list works as well as the whole file; unknown ids are ignored.
    assert ev.evaluate_v1(V1_DATA["data"], {**V1_PREDS, "zz": "x"}, log=messages.append) == result


def test_evaluate_v1_max_over_golds():
    data = dataset(("q", ["Broncos", "Denver Broncos of 2015"], None))
    # vs "Broncos": [denver, broncos] P 1/2 R 1 -> 2/3; vs the long gold: 2 common of 2 and 4
    # tokens -> P 1, R 1/2 -> 2/3 as well; "denver broncos of 2015" exactly would give 1.
    assert ev.evaluate_v1(data, {"q": "Denver Broncos"})["f1"] == pytest.approx(200 / 3)
    assert ev.evaluate_v1(data, {"q": "denver broncos of 2015"}) == {"exact_match": 100.0, "f1": 100.0}


def test_evaluate_v1_rejects_no_answer_questions():
    with pytest.raises(ev.SquadEvalError, match="--squad_version=v2.0"):
        ev.evaluate_v1(V2_DATA, V2_PREDS)


def test_evaluate_v2_by_hand():
    result = ev.evaluate_v2(V2_DATA, V2_PREDS)
    assert result == pytest.approx({
        "exact": 50.0, "f1": 100 * (1 + 2 / 3 + 1 + 0) / 4, "total": 4,
        "HasAns_exact": 50.0, "HasAns_f1": 100 * (1 + 2 / 3) / 2, "HasAns_total": 2,
        "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2})
    assert list(result) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total",
                            "NoAns_exact", "NoAns_f1", "NoAns_total"]


def test_evaluate_v2_threshold_search_by_hand():
    result = ev.evaluate_v2(V2_DATA, V2_PREDS, na_probs=V2_NA)
    # Threshold 1.0 changes nothing (no score above it), so the raw scores stand.
    assert result["exact"] == 50.0
    # Search, starting from "abstain everywhere" = the 2 unanswerable questions right:
    #   exact: h1 (0.1) +1 -> 3 best; h2 (0.2) +0; n2 (0.3) -1; n1 (0.9) +0  -> 75 at 0.1.
    #   f1:    h1 +1 -> 3; h2 +2/3 -> 3.67 best at 0.2; n2 -1; n1 +0         -> 91.67 at 0.2.
    assert result["best_exact"] == pytest.approx(75.0) and result["best_exact_thresh"] == 0.1
    assert result["best_f1"] == pytest.approx(100 * (3 + 2 / 3) / 4)
    assert result["best_f1_thresh"] == 0.2
    # Applying a threshold of 0.25 abstains on n2 (0.3) and n1: that reaches best_f1.
    applied = ev.evaluate_v2(V2_DATA, V2_PREDS, na_probs=V2_NA, na_prob_thresh=0.25)
    assert applied["f1"] == pytest.approx(result["best_f1"])
    assert applied["exact"] == pytest.approx(75.0)
    assert applied["NoAns_exact"] == 100.0


def test_threshold_search_when_abstaining_everywhere_is_best():
    data = dataset(("h", ["yes"], False), ("n", [], True))
    preds = {"h": "no", "n": "maybe"}
    # Start 1 (n right); h (0.5) +0; n (0.7) -1: the start stays best, threshold 0.0.
    best, thresh = ev.find_best_threshold(preds, {"h": 0.0, "n": 0.0}, {"h": 0.5, "n": 0.7},
                                          ev.has_answer_map(data))
    assert (best, thresh) == (50.0, 0.0)


def test_evaluate_v2_missing_prediction_scores_zero():
    messages = []
    preds = {k: v for k, v in V2_PREDS.items() if k != "n1"}
    result = ev.evaluate_v2(V2_DATA, preds, log=messages.append)
    # n1 (a correct abstention before) now scores 0 and stays in the totals.
    assert result["total"] == 4 and result["NoAns_total"] == 2
    assert result["exact"] == 25.0 and result["NoAns_exact"] == 0.0
    assert messages == ["Unanswered question n1 will receive score 0."]


def test_na_probs_must_cover_predictions():
    with pytest.raises(ev.SquadEvalError, match="lack 1 predicted question.*'n1'"):
        ev.evaluate_v2(V2_DATA, V2_PREDS, na_probs={k: v for k, v in V2_NA.items() if k != "n1"})
    with pytest.raises(ev.SquadEvalError, match="must be numbers"):
        ev.evaluate_v2(V2_DATA, V2_PREDS, na_probs={**V2_NA, "h1": "low"})


def test_detect_version_and_dispatch():
    assert ev.detect_version(V1_DATA) == "v1.1"
    assert ev.detect_version(dataset(("q", ["a"], False))) == "v1.1"
    assert ev.detect_version(V2_DATA) == "v2.0"
    assert set(ev.evaluate(V1_DATA, V1_PREDS, log=lambda m: None)) == {"exact_match", "f1"}
    assert "HasAns_exact" in ev.evaluate(V2_DATA, V2_PREDS)
    # v1.1 data may be scored as v2.0.
    assert set(ev.evaluate(V1_DATA, V1_PREDS, squad_version="v2.0", log=lambda m: None)) == {
        "exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total"}
    with pytest.raises(ev.SquadEvalError, match="only apply to v2.0"):
        ev.evaluate(V1_DATA, V1_PREDS, na_probs={"q1": 0.0})


@pytest.mark.parametrize("predictions, expected", [
    (["a", "b"], "must be a JSON object"),
    ({"q1": 3}, "'q1' is int, not a string"),
])
def test_bad_predictions(predictions, expected):
    with pytest.raises(ev.SquadEvalError, match=expected):
        ev.evaluate_v1(V1_DATA, predictions)


def test_bad_dataset():
    with pytest.raises(ev.SquadEvalError, match="no \"data\" key"):
        ev.evaluate_v1({"version": "1.1"}, {})
    with pytest.raises(ev.SquadEvalError, match="'q' needs an \"answers\" list"):
        ev.evaluate_v1({"data": [{"paragraphs": [{"qas": [{"id": "q"}]}]}]}, {})


def write(tmp_path, name, value):
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    return str(path)


def test_main_prints_one_json_object(tmp_path, capsys):
    data = write(tmp_path, "v2.json", V2_DATA)
    preds = write(tmp_path, "p.json", V2_PREDS)
    na = write(tmp_path, "na.json", V2_NA)
    assert ev.main([data, preds, f"--na_prob_file={na}"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total",
                            "NoAns_exact", "NoAns_f1", "NoAns_total", "best_exact",
                            "best_exact_thresh", "best_f1", "best_f1_thresh"]
    assert result["best_f1_thresh"] == 0.2

    v1 = write(tmp_path, "v1.json", V1_DATA)
    assert ev.main([v1, write(tmp_path, "p1.json", V1_PREDS)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == pytest.approx({"exact_match": 100 / 3, "f1": 500 / 9})
    assert "Unanswered question q3" in captured.err


@pytest.mark.parametrize("pred_text, extra, expected", [
    ("[1, 2]", [], "p.json: predictions must be a JSON object"),
    ("{oops", [], "p.json: not valid JSON"),
    ("{}", ["--squad_version=v1.1", "--na_prob_file=NA"], "only apply to v2.0"),
])
def test_main_errors(tmp_path, capsys, pred_text, extra, expected):
    data = write(tmp_path, "d.json", V1_DATA)
    preds = write(tmp_path, "p.json", pred_text)
    na = write(tmp_path, "na.json", {"q1": 0.5})
    assert ev.main([data, preds, *[a.replace("NA", na) for a in extra]]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and expected in captured.err


def test_module_command_line(tmp_path):
    data = write(tmp_path, "d.json", V2_DATA)
    preds = write(tmp_path, "p.json", V2_PREDS)
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-m", "albert_tf.squad_eval", data, preds,
                             "--squad_version=v2.0"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert json.loads(line)["exact"] == 50.0
