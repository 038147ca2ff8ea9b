"""SQuAD v1.1 and v2.0 evaluation with the logic of the official evaluation scripts.

  python -m albert_tf.tasks.squad.evaluate DATA.json PREDICTIONS.json [--na_prob_file=NA.json]
      [--squad_version=v1.1|v2.0] [--na_prob_thresh=1.0]

prints one JSON object on stdout. ``DATA.json`` is a SQuAD file (``{"data": [articles]}``),
``PREDICTIONS.json`` maps question ids to answer strings (``""`` means "no answer" in v2.0) and
``NA.json`` maps question ids to a no-answer score (higher: more likely unanswerable).

* v1.1 (`evaluate_v1`): ``exact_match`` and ``f1`` in percent. Answers are normalised (lower case,
  punctuation removed, articles a/an/the removed, whitespace collapsed); EM and token F1 take the
  maximum over the gold answers.
* v2.0 (`evaluate_v2`): ``exact``, ``f1``, ``total`` and the same three for the answerable
  (``HasAns_*``) and unanswerable (``NoAns_*``) questions, where present. Gold answers that normalise
  to nothing are ignored; a question without gold answers is only matched by an empty prediction.
  A question whose no-answer score exceeds ``na_prob_thresh`` counts as answered "no answer". With
  no-answer scores, `find_best_thresholds` adds ``best_exact``/``best_f1`` and their thresholds:
  the best score reachable by answering exactly the questions whose no-answer score is at most
  the threshold.

The version defaults to v2.0 when any question has ``"is_impossible": true``, else v1.1
(`detect_version`).

A question without a prediction scores 0 in both versions; one line on stderr counts them and names
the first few. (The
official v2.0 script instead leaves it out of ``total`` and then fails with a KeyError when it
computes ``HasAns_*``/``NoAns_*``; with every question predicted both agree exactly.)
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import string
import sys
from typing import Any, Callable, Mapping, Sequence

from albert_tf import fileio
from albert_tf.tasks.squad.settings import V1, V2, VERSIONS

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")

Dataset = Sequence[Mapping[str, Any]]


class SquadEvalError(ValueError):
    """Malformed evaluation input; the message names the file or question and the fix."""


# ----------------------------------------------------------------------------------------------
# Answer comparison
# ----------------------------------------------------------------------------------------------

def normalize_answer(text: str) -> str:
    """The official normalisation: lower case, drop ASCII punctuation, drop the articles a/an/the
    (as whole words), then collapse whitespace runs to single spaces and strip."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_score(prediction: str, gold: str) -> int:
    """1 if both answers normalise to the same string, else 0."""
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str, empty_matches_empty: bool = False) -> float:
    """Token-overlap F1 between the normalised answers (tokens counted with multiplicity).

    Args:
      prediction: the predicted answer.
      gold: one gold answer.
      empty_matches_empty: the v2.0 rule: when either side has no tokens the score is 1 if both have
        none, else 0. Without it (v1.1), no common token always gives 0.
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if empty_matches_empty and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


# ----------------------------------------------------------------------------------------------
# Data set access
# ----------------------------------------------------------------------------------------------

def _articles(dataset: Dataset | Mapping[str, Any], source: str) -> Dataset:
    """The article list: ``dataset`` itself, or its ``"data"`` entry for a whole SQuAD file."""
    if isinstance(dataset, Mapping):
        if "data" not in dataset:
            raise SquadEvalError(f"{source}: no \"data\" key at the top level. Pass a SQuAD file "
                                 "({\"version\": ..., \"data\": [articles]}).")
        dataset = dataset["data"]
    if not isinstance(dataset, Sequence) or isinstance(dataset, str):
        raise SquadEvalError(f"{source}: \"data\" must be a list of articles, got "
                             f"{type(dataset).__name__}.")
    return dataset


def _all_qas(dataset: Dataset | Mapping[str, Any], source: str) -> list[Mapping[str, Any]]:
    """Every ``qas`` entry, checked to be an object with a string ``id``."""
    questions = []
    for a, article in enumerate(_articles(dataset, source)):
        paragraphs = article.get("paragraphs") if isinstance(article, Mapping) else None
        if not isinstance(paragraphs, list):
            raise SquadEvalError(f"{source}: article {a} has no \"paragraphs\" list.")
        for p, paragraph in enumerate(paragraphs):
            qas = paragraph.get("qas") if isinstance(paragraph, Mapping) else None
            if not isinstance(qas, list):
                raise SquadEvalError(f"{source}: article {a}, paragraph {p} has no \"qas\" list.")
            for q, qa in enumerate(qas):
                if not isinstance(qa, Mapping) or not isinstance(qa.get("id"), str):
                    raise SquadEvalError(f"{source}: article {a}, paragraph {p}, question {q} has "
                                         "no string \"id\".")
                questions.append(qa)
    if not questions:
        raise SquadEvalError(f"{source}: no questions in the data set.")
    return questions


def iter_questions(dataset: Dataset | Mapping[str, Any],
                   source: str = "the data set") -> list[Mapping[str, Any]]:
    """Every question (``qas`` entry) of a SQuAD data set, in file order, with its gold answers.

    Args:
      dataset: a whole SQuAD file (dict with ``"data"``) or its article list.
      source: names the data in error messages (e.g. the file path).

    Raises:
      SquadEvalError: no question, or a missing ``paragraphs``/``qas``/``id``/``answers`` entry or an
        answer without ``text``, naming the question.
    """
    questions = _all_qas(dataset, source)
    for qa in questions:
        answers = qa.get("answers")
        if not isinstance(answers, list) or not all(
                isinstance(x, Mapping) and isinstance(x.get("text"), str) for x in answers):
            raise SquadEvalError(f"{source}: question {qa['id']!r} needs an \"answers\" list of "
                                 "{\"text\": ...} objects (empty when unanswerable).")
    return questions


def detect_version(dataset: Dataset | Mapping[str, Any], source: str = "the data set") -> str:
    """"v2.0" when any question has ``"is_impossible": true``, else "v1.1" (answers not needed)."""
    return V2 if any(qa.get("is_impossible") is True for qa in _all_qas(dataset, source)) else V1


def _check_predictions(predictions: Any, source: str) -> Mapping[str, str]:
    if not isinstance(predictions, Mapping):
        raise SquadEvalError(f"{source}: predictions must be a JSON object {{question id: answer "
                             f"text}}, got {type(predictions).__name__}.")
    for qid, text in predictions.items():
        if not isinstance(text, str):
            raise SquadEvalError(f"{source}: the prediction for {qid!r} is {type(text).__name__}, "
                                 "not a string (use \"\" for no answer).")
    return predictions


def _report_missing(missing: Sequence[str], total: int, log: Callable[[str], None], shown: int = 3) -> None:
    """One line about the questions without a prediction (nothing when there are none)."""
    if len(missing) == 1:
        log(f"Unanswered question {missing[0]} will receive score 0.")
    elif missing:
        more = ", ..." if len(missing) > shown else ""
        log(f"{len(missing)} of {total} questions are unanswered and will receive score 0 (ids "
            f"{', '.join(missing[:shown])}{more}).")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# v1.1
# ----------------------------------------------------------------------------------------------

def evaluate_v1(dataset: Dataset | Mapping[str, Any], predictions: Mapping[str, str],
                log: Callable[[str], None] = _stderr) -> dict[str, float]:
    """Official SQuAD v1.1 scores.

    Args:
      dataset: a whole SQuAD file (dict with ``"data"``) or its article list.
      predictions: {question id: answer text}; ids not in the data set are ignored.
      log: receives one line about the questions without a prediction (they score 0).

    Returns:
      ``{"exact_match": EM, "f1": F1}`` in percent over all questions.

    Raises:
      SquadEvalError: malformed input, or a question without gold answers (a v2.0 file: evaluate it
        as v2.0).
    """
    predictions = _check_predictions(predictions, "predictions")
    exact = f1 = 0.0
    questions = iter_questions(dataset)
    missing = []
    for qa in questions:
        golds = [answer["text"] for answer in qa["answers"]]
        if not golds:
            raise SquadEvalError(f"Question {qa['id']!r} has no gold answer, which v1.1 cannot score; "
                                 f"evaluate with --squad_version={V2}.")
        if qa["id"] not in predictions:
            missing.append(qa["id"])
            continue
        prediction = predictions[qa["id"]]
        exact += max(exact_score(prediction, gold) for gold in golds)
        f1 += max(f1_score(prediction, gold) for gold in golds)
    _report_missing(missing, len(questions), log)
    return {"exact_match": 100.0 * exact / len(questions), "f1": 100.0 * f1 / len(questions)}


# ----------------------------------------------------------------------------------------------
# v2.0
# ----------------------------------------------------------------------------------------------

def has_answer_map(dataset: Dataset | Mapping[str, Any]) -> dict[str, bool]:
    """{question id: whether it has at least one gold answer}, in file order."""
    return {qa["id"]: bool(qa["answers"]) for qa in iter_questions(dataset)}


def raw_scores(dataset: Dataset | Mapping[str, Any], predictions: Mapping[str, str],
               log: Callable[[str], None] = _stderr) -> tuple[dict[str, float], dict[str, float]]:
    """Per-question v2.0 exact and F1 scores before any no-answer threshold.

    Gold answers that normalise to "" are dropped; a question left without one is matched only by a
    prediction that normalises to "" (exact) or has no tokens (F1). A question without a prediction
    scores 0; ``log`` receives one line about such questions.

    Returns:
      ({qid: exact}, {qid: f1}) over every question of the data set.
    """
    predictions = _check_predictions(predictions, "predictions")
    exact: dict[str, float] = {}
    f1: dict[str, float] = {}
    missing = []
    for qa in iter_questions(dataset):
        qid = qa["id"]
        golds = [a["text"] for a in qa["answers"] if normalize_answer(a["text"])] or [""]
        if qid not in predictions:
            missing.append(qid)
            exact[qid] = f1[qid] = 0.0
            continue
        prediction = predictions[qid]
        exact[qid] = float(max(exact_score(prediction, gold) for gold in golds))
        f1[qid] = max(f1_score(prediction, gold, empty_matches_empty=True) for gold in golds)
    _report_missing(missing, len(exact), log)
    return exact, f1


def _check_na_probs(na_probs: Mapping[str, float], predictions: Mapping[str, str],
                    qids: Sequence[str]) -> None:
    missing = [qid for qid in qids if qid in predictions and qid not in na_probs]
    if missing:
        raise SquadEvalError(f"The no-answer probabilities lack {len(missing)} predicted question(s), "
                             f"e.g. {missing[:3]}; the na_prob file needs a score for every "
                             "predicted question.")
    bad = [qid for qid, p in na_probs.items()
           if isinstance(p, bool) or not isinstance(p, (int, float))]
    if bad:
        raise SquadEvalError(f"No-answer probabilities must be numbers; {bad[0]!r} has "
                             f"{na_probs[bad[0]]!r}.")


def apply_no_answer_threshold(scores: Mapping[str, float], na_probs: Mapping[str, float],
                              has_answer: Mapping[str, bool], predictions: Mapping[str, str],
                              na_prob_thresh: float) -> dict[str, float]:
    """Scores after abstaining on every predicted question whose no-answer score > ``na_prob_thresh``.

    An abstention scores 1 on an unanswerable question and 0 on an answerable one. Questions without
    a prediction keep their score (0).
    """
    return {qid: (float(not has_answer[qid])
                  if qid in predictions and na_probs[qid] > na_prob_thresh else score)
            for qid, score in scores.items()}


def _summary(exact: Mapping[str, float], f1: Mapping[str, float],
             qids: Sequence[str]) -> dict[str, float | int]:
    return {"exact": 100.0 * sum(exact[q] for q in qids) / len(qids),
            "f1": 100.0 * sum(f1[q] for q in qids) / len(qids),
            "total": len(qids)}


def find_best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float],
                        na_probs: Mapping[str, float],
                        has_answer: Mapping[str, bool]) -> tuple[float, float]:
    """The official no-answer threshold search for one metric.

    Starts from abstaining everywhere (every unanswerable, predicted question correct), then answers
    the questions one at a time in increasing no-answer score (ties in ``na_probs`` order): an
    answerable question adds its raw score, an unanswerable one loses 1 if its prediction is a
    non-empty string. The threshold is the no-answer score of the last question answered at the
    first maximum (0.0 when abstaining everywhere is best).

    Args:
      predictions: {qid: text}.
      scores: raw per-question scores (`raw_scores`) of every question in the data set.
      na_probs: {qid: no-answer score} for at least every predicted question.
      has_answer: `has_answer_map` of the data set.

    Returns:
      (best score in percent of ``len(scores)``, threshold).
    """
    current = sum(1 for qid, answerable in has_answer.items() if not answerable and qid in predictions)
    best, best_thresh = current, 0.0
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in scores or qid not in predictions:
            continue
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_thresh = current, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh


def find_best_thresholds(predictions: Mapping[str, str], exact_raw: Mapping[str, float],
                         f1_raw: Mapping[str, float], na_probs: Mapping[str, float],
                         has_answer: Mapping[str, bool]) -> dict[str, float]:
    """`find_best_threshold` for exact and F1: ``best_exact``, ``best_exact_thresh``, ``best_f1``,
    ``best_f1_thresh``."""
    best_exact, exact_thresh = find_best_threshold(predictions, exact_raw, na_probs, has_answer)
    best_f1, f1_thresh = find_best_threshold(predictions, f1_raw, na_probs, has_answer)
    return {"best_exact": best_exact, "best_exact_thresh": exact_thresh,
            "best_f1": best_f1, "best_f1_thresh": f1_thresh}


def evaluate_v2(dataset: Dataset | Mapping[str, Any], predictions: Mapping[str, str],
                na_probs: Mapping[str, float] | None = None, na_prob_thresh: float = 1.0,
                log: Callable[[str], None] = _stderr) -> dict[str, float | int]:
    """Official SQuAD v2.0 scores.

    Args:
      dataset: a whole SQuAD file (dict with ``"data"``) or its article list.
      predictions: {question id: answer text}, ``""`` for "no answer".
      na_probs: {question id: no-answer score}; None means 0.0 for every question (no abstention,
        no best-threshold search).
      na_prob_thresh: abstain where the no-answer score is above this.
      log: receives one line about the questions without a prediction (they score 0).

    Returns:
      ``exact``, ``f1`` (percent), ``total``; ``HasAns_*`` / ``NoAns_*`` for the answerable /
      unanswerable questions when there are any; with ``na_probs``, also `find_best_thresholds`.
    """
    predictions = _check_predictions(predictions, "predictions")
    has_answer = has_answer_map(dataset)
    exact_raw, f1_raw = raw_scores(dataset, predictions, log)
    if na_probs is None:
        thresh_probs: Mapping[str, float] = {qid: 0.0 for qid in predictions}
    else:
        _check_na_probs(na_probs, predictions, list(has_answer))
        thresh_probs = na_probs
    exact = apply_no_answer_threshold(exact_raw, thresh_probs, has_answer, predictions, na_prob_thresh)
    f1 = apply_no_answer_threshold(f1_raw, thresh_probs, has_answer, predictions, na_prob_thresh)
    result = _summary(exact, f1, list(has_answer))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, answerable in has_answer.items() if answerable == wanted]
        if qids:
            result.update({f"{prefix}_{k}": v for k, v in _summary(exact, f1, qids).items()})
    if na_probs is not None:
        result.update(find_best_thresholds(predictions, exact_raw, f1_raw, na_probs, has_answer))
    return result


def evaluate(dataset: Mapping[str, Any] | Dataset, predictions: Mapping[str, str],
             na_probs: Mapping[str, float] | None = None, squad_version: str | None = None,
             na_prob_thresh: float = 1.0,
             log: Callable[[str], None] = _stderr) -> dict[str, float | int]:
    """`evaluate_v1` or `evaluate_v2`; ``squad_version`` None picks `detect_version`.

    Raises:
      SquadEvalError: an unknown version, or no-answer scores with v1.1.
    """
    if squad_version is None:
        squad_version = detect_version(dataset)
    if squad_version not in VERSIONS:
        raise SquadEvalError(f"Unknown SQuAD version {squad_version!r}; use {V1} or {V2}.")
    if squad_version == V1:
        if na_probs is not None:
            raise SquadEvalError(f"No-answer probabilities only apply to {V2}; drop --na_prob_file or "
                                 f"pass --squad_version={V2}.")
        return evaluate_v1(dataset, predictions, log)
    return evaluate_v2(dataset, predictions, na_probs, na_prob_thresh, log)


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def load_json(path: str, what: str) -> Any:
    """Reads a UTF-8 JSON file (local or any `tf.io.gfile` path); errors name the file and ``what`` it should
    be. The one JSON reader of the SQuAD package: data files are parsed here once per run."""
    if not fileio.exists(path):
        raise SquadEvalError(f"{what} not found: {path!r}.")
    with fileio.open_file(path, "rb") as f:
        raw = f.read()
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SquadEvalError(f"{path}: not UTF-8 text ({e.reason}); {what} must be a UTF-8 JSON "
                             "file.") from None
    except json.JSONDecodeError as e:
        raise SquadEvalError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column "
                             f"{e.colno}); {what} must be a JSON file.") from None


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m albert_tf.tasks.squad.evaluate",
        description="Evaluate SQuAD predictions like the official v1.1/v2.0 scripts; prints one JSON "
                    "object.")
    parser.add_argument("data_file", help="SQuAD data file (e.g. dev-v2.0.json).")
    parser.add_argument("pred_file", help="Predictions: JSON object {question id: answer text}.")
    parser.add_argument("--na_prob_file", default=None,
                        help="v2.0 only: JSON object {question id: no-answer score}; adds best_* "
                             "scores and thresholds.")
    parser.add_argument("--squad_version", choices=VERSIONS, default=None,
                        help="Default: v2.0 if any question has \"is_impossible\": true, else v1.1.")
    parser.add_argument("--na_prob_thresh", type=float, default=1.0,
                        help="v2.0: abstain where the no-answer score exceeds this (default 1.0).")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (2 for bad input, with a message on stderr)."""
    args = _parse_args(argv)
    try:
        dataset = load_json(args.data_file, "the SQuAD data file")
        predictions = load_json(args.pred_file, "the predictions file")
        na_probs = (load_json(args.na_prob_file, "the no-answer probability file")
                    if args.na_prob_file else None)
        if na_probs is not None and not isinstance(na_probs, Mapping):
            raise SquadEvalError(f"{args.na_prob_file}: must be a JSON object {{question id: "
                                 f"no-answer score}}, got {type(na_probs).__name__}.")
        _check_predictions(predictions, args.pred_file)
        iter_questions(dataset, args.data_file)  # Structural errors name the data file.
        version = args.squad_version or detect_version(dataset, args.data_file)
        result = evaluate(dataset, predictions, na_probs, version, args.na_prob_thresh)
    except SquadEvalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
