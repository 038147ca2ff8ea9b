"""GLUE evaluation metrics and the original result files.

Metric keys follow the original `run_classifier.py`:

- every classification task: ``eval_accuracy`` (accuracy of the argmax) and ``eval_loss`` (mean
  per-example loss, when losses are given);
- ``cola``: also ``matthew_corr`` (Matthews correlation; 0 when undefined, like ``div_no_nan``);
- ``mrpc`` and ``qqp``: also ``f1`` (positive class "1"). The original reports accuracy only;
  F1 is the GLUE leaderboard's second number for these tasks;
- ``sts-b``: ``pearson``, ``spearman`` (not in the original), ``MSE`` and ``eval_loss``; no accuracy.
- MNLI: the runner evaluates dev_matched and dev_mismatched separately and merges them with
  `merge_mismatched`, which keeps the matched keys (``eval_accuracy`` selects the best checkpoint)
  and adds the mismatched ones with a ``_mismatched`` suffix (``eval_accuracy_mismatched``).

All metrics are weighted by ``is_real_example`` (weights must be 0 or 1): padding examples are left
out. Files: ``eval_results.txt`` (sorted ``key = value`` lines, ``best = ...``, a line of ``=``
per evaluated checkpoint), ``test_results.tsv`` (the tab-separated class probabilities of each
example, the raw score for sts-b) and ``submit_results.tsv`` (header ``index<TAB>prediction``,
then ``guid<TAB>label``).
"""
from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import scipy.stats
import tensorflow as tf
from sklearn import metrics as sk_metrics

# Classification metrics a task can ask for beyond accuracy and loss.
EXTRA_METRICS = ("matthew_corr", "f1")


def _real_mask(weights: np.ndarray | Sequence[float] | None, n: int) -> np.ndarray:
    """Boolean [N] mask of the real examples from 0/1 weights (None: all real)."""
    if weights is None:
        return np.ones(n, dtype=bool)
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    if weights.shape[0] != n:
        raise ValueError(f"weights has {weights.shape[0]} entries but there are {n} examples.")
    if not np.isin(weights, (0.0, 1.0)).all():
        raise ValueError("weights must be is_real_example values, 0 or 1; got "
                         f"{sorted(set(weights.tolist()))[:5]}.")
    return weights > 0


def _correlation(fn, a: np.ndarray, b: np.ndarray) -> float:
    """Pearson/Spearman correlation; NaN (no warning) when an input is constant."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(fn(a, b)[0])


def classification_metrics(labels: Sequence[float] | np.ndarray, predictions: Sequence[float] | np.ndarray,
                           weights: Sequence[float] | np.ndarray | None = None,
                           per_example_loss: Sequence[float] | np.ndarray | None = None, *,
                           is_regression: bool = False, extra: Sequence[str] = ()) -> dict[str, float]:
    """Computes the original's eval metrics of one eval set.

    Args:
      labels: [N] label ids (float scores for sts-b).
      predictions: [N] predicted ids, or [N, C] probabilities/logits (argmax taken); for sts-b the
        [N] or [N, 1] predicted scores.
      weights: [N] ``is_real_example`` (0 or 1), or None for all real.
      per_example_loss: [N] losses; gives ``eval_loss`` (their mean over real examples).
      is_regression: the task predicts a score (STS-B): Pearson/Spearman/MSE instead of accuracy.
      extra: further classification metrics, from ``EXTRA_METRICS`` (a GLUE processor's
        ``extra_metrics``: ``matthew_corr`` for CoLA, ``f1`` for MRPC/QQP).

    Returns:
      {metric key: value} as described in the module docstring.
    """
    unknown = set(extra) - set(EXTRA_METRICS)
    if unknown:
        raise ValueError(f"Unknown metrics {sorted(unknown)}; known: {', '.join(EXTRA_METRICS)}.")
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    n = labels.reshape(-1).shape[0]
    labels = labels.reshape(n)
    mask = _real_mask(weights, n)
    if not mask.any():
        raise ValueError("No real example to evaluate (every weight is 0).")

    results: dict[str, float] = {}
    if is_regression:
        scores = predictions.reshape(-1).astype(np.float64)
        if scores.shape[0] != n:
            raise ValueError(f"Got {scores.shape[0]} predicted scores for {n} labels.")
        y, s = labels[mask].astype(np.float64), scores[mask]
        results["pearson"] = _correlation(scipy.stats.pearsonr, s, y)
        results["spearman"] = _correlation(scipy.stats.spearmanr, s, y)
        results["MSE"] = float(sk_metrics.mean_squared_error(y, s))
    else:
        if predictions.ndim == 2:
            predictions = predictions.argmax(axis=-1)
        predictions = predictions.reshape(-1)
        if predictions.shape[0] != n:
            raise ValueError(f"Got {predictions.shape[0]} predictions for {n} labels.")
        y, p = labels[mask].astype(np.int64), predictions[mask].astype(np.int64)
        results["eval_accuracy"] = float(sk_metrics.accuracy_score(y, p))
        if "matthew_corr" in extra:
            results["matthew_corr"] = float(sk_metrics.matthews_corrcoef(y, p))
        if "f1" in extra:
            results["f1"] = float(sk_metrics.f1_score(y, p, pos_label=1, zero_division=0))
    if per_example_loss is not None:
        losses = np.asarray(per_example_loss, dtype=np.float64).reshape(-1)
        if losses.shape[0] != n:
            raise ValueError(f"Got {losses.shape[0]} per-example losses for {n} labels.")
        results["eval_loss"] = float(losses[mask].mean())
    return results


def merge_mismatched(matched: Mapping[str, float], mismatched: Mapping[str, float]) -> dict[str, float]:
    """MNLI: matched metrics as they are plus mismatched ones as ``<key>_mismatched``."""
    merged = dict(matched)
    merged.update({f"{key}_mismatched": value for key, value in mismatched.items()})
    return merged


def format_eval_results(metrics: Mapping[str, object], best: float | None = None) -> str:
    """One ``eval_results.txt`` block: sorted ``key = value`` lines, ``best = ...``, 50 ``=``."""
    lines = [f"{key} = {metrics[key]}" for key in sorted(metrics)]
    if best is not None:
        lines.append(f"best = {best}")
    lines.append("=" * 50)
    return "\n".join(lines) + "\n"


def write_eval_results(path: str, metrics: Mapping[str, object], best: float | None = None,
                       append: bool = False) -> None:
    """Writes (or appends, for each further checkpoint) one block to ``eval_results.txt``."""
    with tf.io.gfile.GFile(path, "a" if append else "w") as f:
        f.write(format_eval_results(metrics, best))


def read_eval_results(path: str) -> list[dict[str, float | str]]:
    """Parses ``eval_results.txt`` into one dict per block (numbers as floats)."""
    blocks: list[dict[str, float | str]] = []
    current: dict[str, float | str] = {}
    with tf.io.gfile.GFile(path, "r") as f:
        for line_number, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            if set(line) == {"="}:
                blocks.append(current)
                current = {}
                continue
            key, sep, value = line.partition(" = ")
            if not sep:
                raise ValueError(f"{path}, line {line_number}: expected 'key = value', got {line!r}.")
            try:
                current[key] = float(value)
            except ValueError:
                current[key] = value
    if current:
        blocks.append(current)
    return blocks


def write_test_results(path: str, probabilities: Sequence[Sequence[float]] | np.ndarray) -> None:
    """Writes ``test_results.tsv``: per example its tab-separated probabilities ([N, C]), or its
    raw score for regression ([N] or [N, 1]), printed as float32 like the original."""
    rows = np.asarray(probabilities, dtype=np.float32)
    rows = rows.reshape(rows.shape[0], -1)
    with tf.io.gfile.GFile(path, "w") as f:
        for row in rows:
            f.write("\t".join(str(value) for value in row) + "\n")


def read_test_results(path: str) -> np.ndarray:
    """Reads ``test_results.tsv`` back as float32 [N, C] ([N, 1] for regression)."""
    with tf.io.gfile.GFile(path, "r") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        raise ValueError(f"{path}: rows have different numbers of columns {sorted(widths)}.")
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)


def write_submit_results(path: str, guids: Sequence[str], predictions: Sequence[float] | np.ndarray,
                         label_list: Sequence[str | None] | None = None) -> None:
    """Writes ``submit_results.tsv``: header ``index\\tprediction``, then ``guid\\tlabel``.

    Args:
      path: output file.
      guids: [N] example guids.
      predictions: [N] predicted label ids (classification), or scores for regression.
      label_list: the task's labels, mapping ids to label strings; None (or ``[None]``) for
        regression, whose scores are printed as float32.
    """
    predictions = np.asarray(predictions).reshape(-1)
    if len(guids) != predictions.shape[0]:
        raise ValueError(f"Got {len(guids)} guids but {predictions.shape[0]} predictions.")
    regression = label_list is None or list(label_list) == [None]
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("index\tprediction\n")
        for guid, prediction in zip(guids, predictions):
            label = str(np.float32(prediction)) if regression else label_list[int(prediction)]
            f.write(f"{guid}\t{label}\n")


def read_submit_results(path: str) -> list[tuple[str, str]]:
    """Reads ``submit_results.tsv`` as (guid, prediction string) pairs, header checked."""
    with tf.io.gfile.GFile(path, "r") as f:
        lines = [line.rstrip("\n") for line in f]
    if not lines or lines[0] != "index\tprediction":
        raise ValueError(f"{path}: the first line must be the header 'index<TAB>prediction'.")
    pairs = []
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        guid, sep, prediction = line.partition("\t")
        if not sep:
            raise ValueError(f"{path}, line {line_number}: expected 'guid<TAB>prediction', got "
                             f"{line!r}.")
        pairs.append((guid, prediction))
    return pairs
