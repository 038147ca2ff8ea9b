"""The persistent record of a run's evaluations and its best checkpoint, the same for every task.

Files in the output directory:
- `eval_results.txt`: one block per evaluated checkpoint: its metrics as sorted `key = value` lines
  (`global_step` included), `best = <best value so far>` and a line of `=` (the original GLUE format,
  used by every task here);
- `best_trial.txt`: `global_step:best_step:best_value` (the original's file), rewritten atomically
  after each evaluation, so a resumed or repeated run continues the record and never replaces a better
  `model.ckpt-best` with a worse one;
- `model.ckpt-best.{index,data-*}`: a copy of the best `model.ckpt-<step>` (official layout).
"""
from __future__ import annotations

import math
import os
from typing import Any, Optional

import tensorflow as tf
from absl import logging

from albert_tf import metrics

BEST_CHECKPOINT = "model.ckpt-best"
EVAL_RESULTS = "eval_results.txt"
BEST_TRIAL = "best_trial.txt"


def read_best_trial(path: str) -> tuple[int, int, float]:
    """Parses `best_trial.txt` (`global_step:best_step:best_value`)."""
    with tf.io.gfile.GFile(path, "r") as f:
        text = f.read().strip()
    parts = text.split(":")
    try:
        return int(parts[0]), int(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        raise ValueError(f"{path} should hold 'global_step:best_step:best_value', got {text!r}. "
                         "Delete it to start the evaluation record afresh.") from None


def best_checkpoint_results(output_dir: str) -> Optional[dict[str, Any]]:
    """The `eval_results.txt` block of `output_dir/model.ckpt-best` (the best step of `best_trial.txt`),
    e.g. the SQuAD v2.0 `null_score_diff_threshold` selected with it; None without such a record."""
    trial_path = os.path.join(output_dir, BEST_TRIAL)
    results_path = os.path.join(output_dir, EVAL_RESULTS)
    if not (tf.io.gfile.exists(trial_path) and tf.io.gfile.exists(os.path.join(output_dir, BEST_CHECKPOINT + ".index"))
            and tf.io.gfile.exists(results_path)):
        return None
    best_step = read_best_trial(trial_path)[1]
    blocks = [b for b in metrics.read_eval_results(results_path) if b.get("global_step") == best_step]
    return blocks[-1] if blocks else None


def copy_checkpoint(source: str, target: str) -> None:
    """Copies the files of checkpoint prefix `source` to prefix `target`, replacing it. Each file is
    written under a temporary name and renamed, so an interrupted copy never leaves a mixed checkpoint."""
    sources = tf.io.gfile.glob(source + ".*")
    if not sources:
        raise FileNotFoundError(f"Checkpoint {source} has no files to copy.")
    for path in tf.io.gfile.glob(target + ".*"):
        tf.io.gfile.remove(path)
    for path in sources:
        final = target + path[len(source):]
        tf.io.gfile.copy(path, final + ".tmp", overwrite=True)
        tf.io.gfile.rename(final + ".tmp", final, overwrite=True)
    logging.info("Copied %s to %s", source, target)


def better(value: float, best: Optional[float], higher_is_better: bool = True) -> bool:
    """Whether `value` beats `best` (None: nothing yet; a NaN never beats a number)."""
    if best is None or (math.isnan(best) and not math.isnan(value)):
        return True
    if math.isnan(value):
        return False
    return value > best if higher_is_better else value < best


class BestCheckpointTracker:
    """Keeps `eval_results.txt`, `best_trial.txt` and `model.ckpt-best` of `output_dir` up to date.

    Args:
      output_dir: the run's output directory.
      metric_key: the metric that selects the best checkpoint.
      higher_is_better: its direction.
    """

    def __init__(self, output_dir: str, metric_key: str, higher_is_better: bool = True):
        self.output_dir = output_dir
        self.metric_key = metric_key
        self.higher_is_better = higher_is_better
        self.results_path = os.path.join(output_dir, EVAL_RESULTS)
        self.trial_path = os.path.join(output_dir, BEST_TRIAL)
        self.best_path = os.path.join(output_dir, BEST_CHECKPOINT)
        self.last_step, self.best_step, self.best = -1, -1, None
        if tf.io.gfile.exists(self.trial_path):
            self.last_step, self.best_step, self.best = read_best_trial(self.trial_path)
            logging.info("Continuing the evaluation record of %s: last evaluated step %d, best %s = %s at "
                         "step %d.", output_dir, self.last_step, metric_key, self.best, self.best_step)
        self.history: list[dict[str, Any]] = []

    def previous_results(self) -> list[dict[str, Any]]:
        """The blocks of an earlier `eval_results.txt` of this directory (empty when none)."""
        if not tf.io.gfile.exists(self.results_path):
            return []
        return metrics.read_eval_results(self.results_path)

    def is_evaluated(self, step: int) -> bool:
        return step <= self.last_step

    def record(self, step: int, results: dict[str, Any], prefix: Optional[str], write: bool = True) -> dict[str, Any]:
        """Records the metrics of the checkpoint saved at `step` (files of prefix `prefix`, copied to
        `model.ckpt-best` when it is the new best; None when there are no files to copy). `write=False`
        (a worker other than the chief) keeps the same record in memory and writes nothing."""
        if self.metric_key not in results:
            raise KeyError(f"The evaluation returned no {self.metric_key!r} (got {sorted(results)}).")
        results = dict(results, global_step=step)
        value = float(results[self.metric_key])
        if better(value, self.best, self.higher_is_better):
            self.best, self.best_step = value, step
            if prefix is not None and write:
                copy_checkpoint(prefix, self.best_path)
        logging.info("Eval at step %d: %s (best %s = %s at step %d)", step,
                     ", ".join(f"{k}={_short(results[k])}" for k in sorted(results) if k != "global_step"),
                     self.metric_key, _short(self.best), self.best_step)
        self.last_step = step
        self.history.append(results)
        if not write:
            return results
        metrics.write_eval_results(self.results_path, results, best=self.best,
                                   append=tf.io.gfile.exists(self.results_path))
        temp = self.trial_path + ".tmp"
        with tf.io.gfile.GFile(temp, "w") as f:
            f.write(f"{step}:{self.best_step}:{self.best}")
        tf.io.gfile.rename(temp, self.trial_path, overwrite=True)
        return results


def _short(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
