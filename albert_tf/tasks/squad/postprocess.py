"""SQuAD post-processing exactly as the original `squad_utils.py`: raw model outputs -> answer texts.

  python -m albert_tf.tasks.squad.postprocess --squad_version=v1.1|v2.0 --predict_file=DEV.json \
      --predict_feature_file=F.tf_record --raw_results=R.npz --output_dir=OUT [--n_best_size=20] \
      [--max_answer_length=30] [--null_score_diff_threshold=T | --tune_null_threshold]

writes ``OUT/predictions.json``, ``OUT/nbest_predictions.json`` and for v2.0 ``OUT/null_odds.json``
(``json.dumps(..., indent=4)`` plus a newline, as the original), and prints the evaluation JSON when
DEV.json has gold answers. It reads the side file written next to F (`squad.eval_features_path`).
`run_squad.py` uses the same functions.

Raw results (`RAW_RESULT_KEYS`, one row per feature; ``R.npz`` as `save_raw_results` writes it):
  v1.1: ``unique_ids`` [F], ``start_logits``, ``end_logits`` [F,S] (the original's ``start_log_prob``
    / ``end_log_prob``, which are raw logits);
  v2.0: ``unique_ids`` [F], ``start_top_log_probs``, ``start_top_index`` [F,k], ``end_top_log_probs``,
    ``end_top_index`` [F,k*k'] (entry i*k'+j: the j-th end of the i-th start), ``cls_logits`` [F].

Per example (`postprocess`):
  1. candidates per feature: v1 pairs every one of the ``n_best_size`` best starts with every one of
     the ``n_best_size`` best ends over all S positions (ties: lower position first); v2 takes the k*k'
     beam pairs. A pair is dropped when its start or end lies past the span's paragraph pieces, its
     start is not a max-context position of this span, end < start, or it is longer than
     ``max_answer_length`` pieces; v2 also drops starts inside the question. Pairs are keyed by their
     span-relative piece positions per feature, and repeated keys are averaged;
  2. candidates of all features are ranked by start + end score (ties keep feature, then start, then
     end order), and the first ``n_best_size`` distinct texts ``context[orig_start:orig_end + 1].strip()``
     form the n-best list; ``probability`` is the softmax of the summed scores over that list;
  3. no candidate: v1 answers "empty" (scores 0), v2 "" (scores -1e6);
  4. v1 predicts the top text. v2's null score (``null_odds.json``) is the minimum ``cls_logits`` over the
     example's features (1e6 without features); it predicts the top text unless a threshold is given
     and null score >= threshold, then "".
v2 evaluation with threshold tuning (`tune_and_write`) is the original `evaluate_v2`: predict without a
threshold, take the official `find_best_thresh` on F1 (starting from 0.0) as the threshold, rewrite the
files with it and evaluate again.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import os
import sys
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from albert_tf.tasks.squad import evaluate as squad_eval
from albert_tf.tasks.squad.evaluate import V1, V2, VERSIONS

RAW_RESULT_KEYS = {
    V1: ("unique_ids", "start_logits", "end_logits"),
    V2: ("unique_ids", "start_top_log_probs", "start_top_index", "end_top_log_probs", "end_top_index",
         "cls_logits"),
}
PREDICTIONS_FILE = "predictions.json"
NBEST_FILE = "nbest_predictions.json"
NULL_ODDS_FILE = "null_odds.json"
# The key of the tuned v2.0 threshold in the evaluation results (and so in eval_results.txt).
NULL_THRESHOLD_KEY = "null_score_diff_threshold"
# The original's "large and positive" initial null score and its v2 fallback score.
_NO_FEATURE_NULL_SCORE = 1000000
_V2_EMPTY_SCORE = -1e6


class PostprocessError(ValueError):
    """Raw results that do not fit the features or the predict file; the message names the fix."""


@dataclasses.dataclass(frozen=True)
class NbestEntry:
    """One n-best answer: its text and the (averaged) start / end scores."""
    text: str
    start_log_prob: float
    end_log_prob: float


@dataclasses.dataclass
class SquadPredictions:
    """The three output files' contents, keyed by question id in example order.

    Attributes:
      predictions: {qas_id: answer text}.
      nbest: {qas_id: [{"text", "probability", "start_log_prob", "end_log_prob"}, ...]}.
      null_odds: v2.0: {qas_id: null score}; None for v1.1.
    """
    predictions: dict[str, str]
    nbest: dict[str, list[dict[str, Any]]]
    null_odds: Optional[dict[str, float]]


# ----------------------------------------------------------------------------------------------
# Raw results
# ----------------------------------------------------------------------------------------------

def save_raw_results(path: str, results: Mapping[str, np.ndarray]) -> str:
    """Writes raw results (the keys of `RAW_RESULT_KEYS`) as an uncompressed ``.npz``; returns `path`."""
    with open(path, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in results.items()})
    return path


def load_raw_results(path: str, squad_version: str) -> dict[str, np.ndarray]:
    """Reads and checks a raw-results ``.npz`` of `squad_version`.

    Raises:
      FileNotFoundError: no such file.
      PostprocessError: keys of the other version or missing keys, or rows of different lengths.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"Raw results not found: {path!r} (run_squad.py --do_predict writes "
                                "raw_results.npz in its --output_dir).")
    with np.load(path) as data:
        results = {k: data[k] for k in data.files}
    return check_raw_results(results, squad_version, path)


def check_raw_results(results: Mapping[str, np.ndarray], squad_version: str,
                      source: str = "raw results") -> dict[str, np.ndarray]:
    """`results` with the keys of `squad_version`, checked for consistent shapes."""
    wanted = RAW_RESULT_KEYS[squad_version]
    missing = [k for k in wanted if k not in results]
    if missing:
        other = V1 if squad_version == V2 else V2
        hint = (f" They look like {other} results; pass --squad_version={other}."
                if all(k in results for k in RAW_RESULT_KEYS[other]) else "")
        raise PostprocessError(f"{source}: missing {', '.join(missing)} for SQuAD {squad_version}.{hint}")
    out = {k: np.asarray(results[k]) for k in wanted}
    rows = {k: v.shape[0] if v.ndim else -1 for k, v in out.items()}
    if len(set(rows.values())) != 1:
        raise PostprocessError(f"{source}: the arrays have different numbers of rows {rows}; they must hold "
                               "one row per feature.")
    if squad_version == V2:
        k = out["start_top_index"].shape[1]
        if out["end_top_index"].shape[1] % k:
            raise PostprocessError(f"{source}: end_top_index has {out['end_top_index'].shape[1]} columns, not a "
                                   f"multiple of start_n_top={k}.")
    return out


# ----------------------------------------------------------------------------------------------
# Candidates
# ----------------------------------------------------------------------------------------------

def best_indexes(logits: Sequence[float], n_best_size: int) -> list[int]:
    """Positions of the `n_best_size` largest values, largest first; ties: lower position first."""
    return [i for i, _ in sorted(enumerate(logits), key=lambda x: x[1], reverse=True)[:n_best_size]]


def compute_softmax(scores: Sequence[float]) -> list[float]:
    """The original `_compute_softmax` (max-shifted, in Python floats)."""
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = _sequential_sum(exps)
    return [e / total for e in exps]


def _sequential_sum(values: Sequence[float]) -> float:
    """Left-to-right float sum from 0, as the original's loops (Python >= 3.12's `sum` compensates)."""
    total = 0
    for value in values:
        total += value
    return total


def _keep(info: Any, start: int, end: int, max_answer_length: int, require_doc_start: bool) -> bool:
    """The original's candidate filter for sequence positions (start, end) of one feature."""
    offset = info.doc_offset
    num_pieces = len(info.tok_start_to_orig_index)
    if start - offset >= num_pieces or end - offset >= num_pieces:
        return False
    if require_doc_start and start - offset < 0:
        return False
    if not info.token_is_max_context.get(start, False):
        return False
    return start <= end and end - start + 1 <= max_answer_length


def _candidates(info: Any, pairs: Sequence[tuple[int, int, float, float]], max_answer_length: int,
                require_doc_start: bool) -> dict[tuple[int, int], list[tuple[float, float]]]:
    """Kept (start, end, start score, end score) pairs under span-relative keys, in pair order."""
    kept: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for start, end, start_score, end_score in pairs:
        if _keep(info, start, end, max_answer_length, require_doc_start):
            key = (start - info.doc_offset, end - info.doc_offset)
            kept.setdefault(key, []).append((start_score, end_score))
    return kept


def _pairs_v1(start_logits: list[float], end_logits: list[float], n_best_size: int):
    ends = best_indexes(end_logits, n_best_size)
    for start in best_indexes(start_logits, n_best_size):
        for end in ends:
            yield start, end, start_logits[start], end_logits[end]


def _pairs_v2(row: Mapping[str, list], end_n_top: int):
    for i, (start, start_score) in enumerate(zip(row["start_top_index"], row["start_top_log_probs"])):
        for j in range(i * end_n_top, (i + 1) * end_n_top):
            yield start, row["end_top_index"][j], start_score, row["end_top_log_probs"][j]


def _nbest(example: Any, features: Sequence[Any],
           candidates: Sequence[Mapping[tuple[int, int], list[tuple[float, float]]]],
           n_best_size: int) -> list[NbestEntry]:
    """Averages repeated keys, ranks all features' candidates and keeps the first distinct texts."""
    prelim = []
    for feature_index, kept in enumerate(candidates):
        for (start, end), scores in kept.items():
            start_score = _sequential_sum([s for s, _ in scores]) / len(scores)
            end_score = _sequential_sum([e for _, e in scores]) / len(scores)
            prelim.append((feature_index, start, end, start_score, end_score))
    prelim.sort(key=lambda p: p[3] + p[4], reverse=True)
    nbest: list[NbestEntry] = []
    seen = set()
    for feature_index, start, end, start_score, end_score in prelim:
        if len(nbest) >= n_best_size:
            break
        info = features[feature_index]
        text = example.paragraph_text[info.tok_start_to_orig_index[start]:
                                      info.tok_end_to_orig_index[end] + 1].strip()
        if text in seen:
            continue
        seen.add(text)
        nbest.append(NbestEntry(text, start_score, end_score))
    return nbest


def _nbest_json(nbest: Sequence[NbestEntry]) -> list[dict[str, Any]]:
    probs = compute_softmax([e.start_log_prob + e.end_log_prob for e in nbest])
    return [{"text": e.text, "probability": p, "start_log_prob": e.start_log_prob, "end_log_prob": e.end_log_prob}
            for e, p in zip(nbest, probs)]


# ----------------------------------------------------------------------------------------------
# Predictions
# ----------------------------------------------------------------------------------------------

def _rows_by_unique_id(side: Any, raw: Mapping[str, np.ndarray], squad_version: str) -> dict[int, dict[str, list]]:
    """One row of Python values per unique id, checked against the side file's features."""
    ids = [int(u) for u in raw["unique_ids"]]
    index = {u: i for i, u in enumerate(ids)}
    missing = [f.unique_id for f in side.features if f.unique_id not in index]
    if missing or len(ids) != len(side.features):
        raise PostprocessError(
            f"The raw results hold {len(ids)} features but the feature file has {len(side.features)}"
            f"{f' (e.g. unique id {missing[0]} has no result)' if missing else ''}: they come from another "
            "feature file. Post-process with the --predict_feature_file the results were predicted on.")
    if squad_version == V1:
        length = side.settings.get("max_seq_length")
        if length is not None and raw["start_logits"].shape[1] != length:
            raise PostprocessError(f"The raw results have {raw['start_logits'].shape[1]} positions per feature "
                                   f"but the features were written with max_seq_length={length}.")
    # float32 -> Python float is exact, as the original's float(x).
    columns = {k: v.tolist() for k, v in raw.items() if k != "unique_ids"}
    return {u: {k: column[i] for k, column in columns.items()} for u, i in index.items()}


def postprocess(side: Any, raw: Mapping[str, np.ndarray], squad_version: str, n_best_size: int = 20,
                max_answer_length: int = 30,
                null_score_diff_threshold: Optional[float] = None) -> SquadPredictions:
    """Answers for every example of an eval side file from the raw results of its features.

    Args:
      side: `albert_tf.tasks.squad.data.EvalSideInfo` (`load_eval_features`).
      raw: raw results of every feature (`check_raw_results`), any row order.
      squad_version: "v1.1" or "v2.0".
      n_best_size: n-best list length (and, for v1, how many starts / ends are paired).
      max_answer_length: longest answer in pieces.
      null_score_diff_threshold: v2: predict "" where the null score is >= this (None: never).

    Returns:
      `SquadPredictions` in example order.
    """
    if squad_version not in VERSIONS:
        raise PostprocessError(f"Unknown SQuAD version {squad_version!r}; use {V1} or {V2}.")
    raw = check_raw_results(raw, squad_version)
    rows = _rows_by_unique_id(side, raw, squad_version)
    end_n_top = raw["end_top_index"].shape[1] // raw["start_top_index"].shape[1] if squad_version == V2 else 0
    features_of = collections.defaultdict(list)
    for info in side.features:
        features_of[info.example_index].append(info)
    out = SquadPredictions({}, {}, {} if squad_version == V2 else None)
    for example_index, example in enumerate(side.examples):
        features = features_of[example_index]
        candidates = []
        null_score = _NO_FEATURE_NULL_SCORE
        for info in features:
            row = rows[info.unique_id]
            if squad_version == V1:
                pairs = _pairs_v1(row["start_logits"], row["end_logits"], n_best_size)
            else:
                null_score = min(null_score, row["cls_logits"])
                pairs = _pairs_v2(row, end_n_top)
            candidates.append(_candidates(info, list(pairs), max_answer_length, squad_version == V2))
        nbest = _nbest(example, features, candidates, n_best_size)
        if not nbest:
            nbest = [NbestEntry("empty", 0.0, 0.0) if squad_version == V1
                     else NbestEntry("", _V2_EMPTY_SCORE, _V2_EMPTY_SCORE)]
        out.nbest[example.qas_id] = _nbest_json(nbest)
        text = nbest[0].text
        if squad_version == V2:
            out.null_odds[example.qas_id] = float(null_score)
            if null_score_diff_threshold is not None and not null_score < null_score_diff_threshold:
                text = ""
        out.predictions[example.qas_id] = text
    return out


def write_predictions(predictions: SquadPredictions, output_dir: str) -> dict[str, str]:
    """Writes `predictions.json`, `nbest_predictions.json` and (v2) `null_odds.json` with indent 4.
    Returns {file name: path}."""
    os.makedirs(output_dir, exist_ok=True)
    contents = {PREDICTIONS_FILE: predictions.predictions, NBEST_FILE: predictions.nbest}
    if predictions.null_odds is not None:
        contents[NULL_ODDS_FILE] = predictions.null_odds
    paths = {}
    for name, value in contents.items():
        paths[name] = os.path.join(output_dir, name)
        with open(paths[name], "w", encoding="utf-8") as f:
            f.write(json.dumps(value, indent=4) + "\n")
    return paths


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------

def has_gold_answers(dataset: Any) -> bool:
    """Whether a SQuAD data set can be scored: every question has an ``answers`` list and some question
    has an answer or is marked impossible (test files have neither)."""
    try:
        questions = squad_eval.iter_questions(dataset)
    except squad_eval.SquadEvalError:
        return False
    return any(qa["answers"] or qa.get("is_impossible") is True for qa in questions)


def evaluate(dataset: Any, predictions: SquadPredictions, squad_version: str) -> dict[str, Any]:
    """Official scores of `predictions` (v2.0 with the null odds as no-answer scores, threshold 1.0)."""
    if squad_version == V1:
        return squad_eval.evaluate_v1(dataset, predictions.predictions)
    return squad_eval.evaluate_v2(dataset, predictions.predictions, predictions.null_odds, 1.0)


def postprocess_and_write(side: Any, raw: Mapping[str, np.ndarray], squad_version: str, output_dir: str,
                          dataset: Any = None, n_best_size: int = 20, max_answer_length: int = 30,
                          null_score_diff_threshold: Optional[float] = None,
                          tune_null_threshold: bool = False) -> Optional[dict[str, Any]]:
    """Post-processes, writes the files in `output_dir` and evaluates on `dataset` when it has answers.

    v2.0 with `tune_null_threshold` is the original `evaluate_v2`: the files are first written without a
    threshold; `find_best_thresh` on F1 of those predictions (with the null odds) gives the threshold;
    the files are rewritten with it and evaluated again. The result then has the second pass's scores,
    `null_score_diff_threshold`, and the first pass's `best_exact`, `best_exact_thresh`, `best_f1`,
    `best_f1_thresh`.

    Returns:
      The evaluation (`evaluate`), or None when `dataset` is None or has no gold answers.

    Raises:
      PostprocessError: tuning without a data set with answers, or with v1.1 / a given threshold.
    """
    scorable = dataset is not None and has_gold_answers(dataset)
    if tune_null_threshold:
        if squad_version != V2:
            raise PostprocessError(f"--tune_null_threshold applies to SQuAD {V2} only.")
        if null_score_diff_threshold is not None:
            raise PostprocessError("Pass either --null_score_diff_threshold or --tune_null_threshold, not both.")
        if not scorable:
            raise PostprocessError("--tune_null_threshold needs a predict file with gold answers (a dev file).")
    if squad_version == V1 and null_score_diff_threshold is not None:
        raise PostprocessError(f"--null_score_diff_threshold applies to SQuAD {V2} only.")
    predictions = postprocess(side, raw, squad_version, n_best_size, max_answer_length, null_score_diff_threshold)
    write_predictions(predictions, output_dir)
    if not scorable:
        return None
    result = evaluate(dataset, predictions, squad_version)
    if not tune_null_threshold:
        return result
    first_pass = {k: result[k] for k in ("best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh")}
    threshold = first_pass["best_f1_thresh"]
    predictions = postprocess(side, raw, squad_version, n_best_size, max_answer_length, threshold)
    write_predictions(predictions, output_dir)
    result = evaluate(dataset, predictions, squad_version)
    result.update(first_pass)
    result[NULL_THRESHOLD_KEY] = threshold
    return result


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def check_predict_file(side: Any, question_ids: Sequence[str], predict_file: str, feature_file: str) -> None:
    """Refuses a side file whose questions are not `question_ids` (those of `predict_file`, in order)."""
    if list(question_ids) != [e.qas_id for e in side.examples]:
        raise PostprocessError(f"{feature_file} was not written from {predict_file} (its questions differ); pass "
                               "the predict file the features were written from, or rewrite the features.")


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m albert_tf.tasks.squad.postprocess",
        description="Post-process SQuAD raw results like the original run_squad: writes predictions.json, "
                    "nbest_predictions.json (and null_odds.json for v2.0); prints the evaluation JSON when "
                    "the predict file has answers.")
    parser.add_argument("--squad_version", choices=VERSIONS, required=True)
    parser.add_argument("--predict_file", required=True, help="The SQuAD JSON the features were written from.")
    parser.add_argument("--predict_feature_file", required=True,
                        help="The eval TFRecord; its side file F.features.json is read.")
    parser.add_argument("--raw_results", required=True, help="raw_results.npz from run_squad.py --do_predict.")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--n_best_size", type=int, default=20)
    parser.add_argument("--max_answer_length", type=int, default=30)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--null_score_diff_threshold", type=float, default=None,
                       help="v2.0: answer \"\" where the null score is >= this.")
    group.add_argument("--tune_null_threshold", action="store_true",
                       help="v2.0: the original evaluate_v2 (threshold maximising F1 on --predict_file).")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit status (2 for bad input, with one line on stderr)."""
    args = _parse_args(argv)
    from albert_tf.tasks.squad import data as squad  # TensorFlow is imported only here.
    try:
        if args.n_best_size < 1 or args.max_answer_length < 1:
            raise PostprocessError("--n_best_size and --max_answer_length must be positive.")
        squad.resolve_version(args.predict_file, args.squad_version)
        examples = squad.read_squad_examples(args.predict_file, is_training=False)
        dataset = squad.load_squad_json(args.predict_file)
        side = squad.load_eval_features(squad.eval_features_path(args.predict_feature_file))
        check_predict_file(side, [e.qas_id for e in examples], args.predict_file, args.predict_feature_file)
        raw = load_raw_results(args.raw_results, args.squad_version)
        result = postprocess_and_write(side, raw, args.squad_version, args.output_dir, dataset, args.n_best_size,
                                       args.max_answer_length, args.null_score_diff_threshold,
                                       args.tune_null_threshold)
    except (PostprocessError, squad.SquadDataError, squad_eval.SquadEvalError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if result is not None:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
