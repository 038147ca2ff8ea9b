"""RACE multiple-choice reading comprehension (the original `run_race.py`) as a `Task` of the one driver.

What the task adds to the driver (`albert_tf.core.driver`):
- **features** (`albert_tf.tasks.race.data`): `--train_file` / `--eval_file` / `--predict_file`, by default
  `output_dir/{train,eval,predict}.tf_record`, built from `--data_dir`'s train / dev / test split when
  missing (or stale: `albert_tf.data.cache`). An existing `--predict_file` is used as is (the original
  ignored the flag). `--data_dir` is the folder holding `RACE/` (as the original) or `RACE/` itself;
  `--high_only` / `--middle_only` restrict the levels. Next to every feature file built here,
  `F.examples.json` records each example's article id, question index, level and label;
- **model** `AlbertMultipleChoice`: the encoder runs on [B*4,S]; pooled output -> dropout
  (`dropout_prob`, training only) -> `output_weights` [1,H] / `output_bias` [1] -> logits [B,4];
  **loss** mean softmax cross-entropy over the 4 choices;
- **evaluation** on the dev set: `eval_accuracy` and `eval_loss` weighted by `is_real_example`, plus
  `eval_accuracy_middle` / `eval_accuracy_high` (from the side file); the best checkpoint by
  `eval_accuracy`;
- **predict** (CPU, GPU or TPU; the original crashed off TPU) on the test set, whose labels are known:
  `predict_results.txt` (`***** Predict results *****`, the metrics as `key = value`, `best = <dev
  best>` when a dev evaluation record exists) and `race_predictions.jsonl`, one JSON object per example
  in record order: `logits` (4), `probabilities` (4), `prediction` (A-D) and, when the side file exists,
  `example_id` (the article id, e.g. `high12.txt`), `question_index`, `level` and `label` (A-D);
- **export**: `export_dir/<timestamp>/`, a SavedModel with `serving_default(input_word_ids, input_mask,
  input_type_ids: int32 [B,4,S])` and `serve_examples(serialized_example: string [B])` (the feature
  records), both returning `logits` [B,4], `probabilities` [B,4] and `predictions` [B] (int32 0-3).

Memory: batch 32 x 4 choices x 512 tokens is the recipe. `gradient_accumulation_steps` (micro-batches of
`train_batch_size / k`, same update) and `recompute_grad` (encoder blocks recomputed in the backward
pass; use it with the v2 configs, whose dropout is 0) make it fit smaller devices.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from albert_tf import metrics
from albert_tf.core.context import RunContext
from albert_tf.core.task import ServingCheckpoint, TRAIN_SHUFFLE_SEED, EvalSet, Predictor, Task, check_seq_length
from albert_tf.data import records
from albert_tf.tasks.race import data as race
from albert_tf.export import deploy, serving
from albert_tf.modeling import AlbertMultipleChoice
from albert_tf.tasks.race.export import MultipleChoiceServingModule, choice_outputs
from albert_tf.tasks.race.settings import RaceRun

PREDICT_RESULTS = "predict_results.txt"
PREDICTIONS_JSONL = "race_predictions.jsonl"
# Feature kind -> (RACE split it is built from, default file name in output_dir).
FEATURE_SPLITS = {"train": ("train", "train.tf_record"), "eval": ("dev", "eval.tf_record"),
                  "predict": ("test", "predict.tf_record")}


def per_example_loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Softmax cross-entropy [B] of labels [B] (0-3) and logits [B,4]."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)


def race_metrics(outputs: Mapping[str, np.ndarray], levels: Optional[Sequence[str]] = None) -> dict[str, float]:
    """The metrics of one evaluated set.

    Args:
      outputs: per-example arrays in record order: `logits` [N,4], `label_ids` [N], `is_real_example`
        [N] (0/1 weights) and `loss` [N] (per-example cross-entropy).
      levels: [N] `middle` / `high` per example (from the side file), or None when unknown.

    Returns:
      `eval_accuracy`, `eval_loss` over the real examples; with `levels`, `eval_accuracy_<level>` for each
      level present.
    """
    labels, logits, weights = outputs["label_ids"], outputs["logits"], outputs["is_real_example"]
    results = metrics.classification_metrics(labels, logits, weights=weights, per_example_loss=outputs["loss"])
    if levels is None:
        return results
    levels = np.asarray(levels)
    if levels.shape[0] != labels.shape[0]:
        raise ValueError(f"Got levels for {levels.shape[0]} examples but outputs for {labels.shape[0]}.")
    real = np.asarray(weights) > 0
    for level in ("middle", "high"):
        mask = (levels == level) & real
        if mask.any():
            results[f"eval_accuracy_{level}"] = metrics.classification_metrics(labels[mask], logits[mask])[
                "eval_accuracy"]
    return results


class RaceTask(Task):
    """RACE fine-tuning, evaluation, prediction and export (see the module docstring)."""

    compatibility_fields = ("do_lower_case", "max_seq_length")

    name = "race"
    metric_key = "eval_accuracy"

    def __init__(self, settings: RaceRun, context: Optional[RunContext] = None):
        super().__init__(settings, context)
        self.settings: RaceRun = settings
        self._features: dict[str, tuple[str, Optional[race.RaceFeatureInfo]]] = {}

    # ---------------------------------------------------------------------------------- settings
    @property
    def level(self) -> str:
        """The levels read: `high`, `middle` or `all` (`--high_only` / `--middle_only`)."""
        s = self.settings
        return "high" if s.high_only else "middle" if s.middle_only else "all"

    def feature_path(self, kind: str) -> str:
        """The feature file of `kind` (train, eval, predict): its flag, else `output_dir/<kind>.tf_record`."""
        return getattr(self.settings, f"{kind}_file") or os.path.join(self.settings.output_dir,
                                                                      FEATURE_SPLITS[kind][1])

    def _used_as_is(self, kind: str) -> bool:
        """An existing `--predict_file` is used as is (no data directory or tokenizer needed)."""
        return kind == "predict" and bool(self.settings.predict_file) and tf.io.gfile.exists(self.settings.predict_file)

    def _needed_kinds(self) -> list[str]:
        s = self.settings
        return [kind for kind, wanted in (("train", s.do_train), ("eval", s.do_eval), ("predict", s.do_predict))
                if wanted]

    def validate(self) -> None:
        s = self.settings
        if s.task_name.strip().lower() != "race":
            raise ValueError(f"--task_name={s.task_name}: run_race.py only runs the task 'race'.")
        if s.high_only and s.middle_only:
            raise ValueError("--high_only and --middle_only exclude each other: set at most one.")
        check_seq_length(s.max_seq_length, self.config, s.albert_config_file)
        if not 1 <= s.max_qa_length <= s.max_seq_length - 3:
            raise ValueError(f"--max_qa_length={s.max_qa_length} must be between 1 and --max_seq_length - 3 = "
                             f"{s.max_seq_length - 3} ([CLS] article [SEP] question+option [SEP]).")
        if not 0.0 <= s.dropout_prob < 1.0:
            raise ValueError(f"--dropout_prob={s.dropout_prob} must be in [0, 1).")
        if s.recompute_grad and self.config is not None and (
                self.config.hidden_dropout_prob > 0 or self.config.attention_probs_dropout_prob > 0):
            logging.warning("--recompute_grad with encoder dropout > 0 (%s): the recomputed activations draw new "
                            "dropout masks, so gradients do not match the forward pass exactly. Use it with "
                            "dropout 0 (the v2 configs and the v2 RACE recipe).", s.albert_config_file)
        to_build = [kind for kind in self._needed_kinds() if not self._used_as_is(kind)]
        if not to_build:
            return
        if not (s.spm_model_file or s.vocab_file):
            raise ValueError("Set --spm_model_file (SentencePiece, e.g. 30k-clean.model) or --vocab_file (WordPiece): "
                             f"the {', '.join(to_build)} features are built from --data_dir.")
        if not s.data_dir:
            raise ValueError(f"--data_dir is required to build the {', '.join(to_build)} features (the folder "
                             "holding RACE/{train,dev,test}/{middle,high}/).")
        root = race.race_root(s.data_dir)
        levels = ("middle", "high") if self.level == "all" else (self.level,)
        for kind in to_build:
            for level in levels:
                race.level_files(root, FEATURE_SPLITS[kind][0], level)  # names a missing folder

    def num_train_steps(self) -> int:
        return self.settings.train_step

    def num_warmup_steps(self) -> int:
        return self.settings.warmup_step

    # ---------------------------------------------------------------------------------- model
    def build_model(self, encoder: Optional[keras.layers.Layer] = None) -> AlbertMultipleChoice:
        return AlbertMultipleChoice(self.config, race.NUM_CHOICES, dropout_rate=self.settings.dropout_prob,
                                    encoder=encoder, recompute_grad=self.settings.recompute_grad)

    # ---------------------------------------------------------------------------------- data
    def features(self, kind: str) -> tuple[str, Optional[race.RaceFeatureInfo]]:
        """The feature file of `kind` (train, eval, predict), built or rebuilt when missing or stale, and
        its side information (None when the file has no side file, e.g. written by the original code).

        Raises:
          ValueError: the file holds another `max_seq_length`, or its side file another number of examples.
          albert_tf.data.cache.StaleCacheError: a cached file of unknown provenance (no fingerprint).
        """
        if kind in self._features:
            return self._features[kind]
        s = self.settings
        path = self.feature_path(kind)
        if self._used_as_is(kind):
            records.check_sequence_length(path, s.max_seq_length, multiple=race.NUM_CHOICES)
            logging.info("Using --predict_file=%s as it is.", path)
        else:
            written = race.write_race_features(race.race_root(s.data_dir), FEATURE_SPLITS[kind][0], self.level,
                                               self.tokenizer, s.max_seq_length, s.max_qa_length, path,
                                               do_lower_case=s.do_lower_case, reuse_cache=True)
            if written is not None:
                logging.info("Wrote %d RACE %s examples to %s", written, FEATURE_SPLITS[kind][0], path)
        info_path = race.examples_path(path)
        info = race.read_feature_info(info_path) if tf.io.gfile.exists(info_path) else None
        if info is None:
            logging.warning("%s has no side file %s: example ids and levels are unknown, so there is no "
                            "middle/high split of the metrics.", path, info_path)
        self._features[kind] = (path, info)
        return path, info

    def _dataset(self, path: str, batch_size: int) -> tf.data.Dataset:
        """Eval/predict batches of a feature file, every example once, in order."""
        return race.race_dataset(path, self.settings.max_seq_length, batch_size, is_training=False)

    # ---------------------------------------------------------------------------------- training
    def train_dataset(self, input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        """Per-replica micro-batches: `train_batch_size / gradient_accumulation_steps` examples over all
        replicas (the trainer accumulates k of them per optimizer step)."""
        s = self.settings
        batch_size = self.micro_batch_size()
        return race.race_dataset(self.features("train")[0], s.max_seq_length, batch_size, is_training=True,
                                 input_context=input_context, seed=TRAIN_SHUFFLE_SEED)

    def loss(self, features: dict, outputs: dict) -> tf.Tensor:
        return tf.reduce_mean(per_example_loss(features["label_ids"], outputs["logits"]))

    def train_metrics(self) -> dict:
        def accuracy(features: dict, outputs: dict) -> tf.Tensor:
            predictions = tf.argmax(outputs["logits"], axis=-1, output_type=tf.int32)
            return tf.cast(tf.equal(predictions, tf.cast(features["label_ids"], tf.int32)), tf.float32)

        return {"accuracy": accuracy}

    # ---------------------------------------------------------------------------------- evaluation
    def eval_sets(self) -> list[EvalSet]:
        path, info = self.features("eval")
        return [EvalSet("", self._dataset(path, self.settings.eval_batch_size), context=info)]

    def validation_outputs(self, features: dict, outputs: dict) -> dict[str, tf.Tensor]:
        logits = outputs["logits"]
        return dict(choice_outputs(logits), label_ids=features["label_ids"],
                    is_real_example=features["is_real_example"], loss=per_example_loss(features["label_ids"], logits))

    def _levels(self, path: str, info: Optional[race.RaceFeatureInfo], count: int) -> Optional[list[str]]:
        if info is None:
            return None
        if len(info) != count:
            raise ValueError(f"{race.examples_path(path)} lists {len(info)} examples but {path} holds {count}: "
                             "delete both files to rebuild them.")
        return info.levels

    def reduce_validation(self, collected: Mapping[str, Mapping[str, np.ndarray]], step: int) -> dict[str, Any]:
        outputs = collected[""]
        path, info = self.features("eval")
        return race_metrics(outputs, self._levels(path, info, len(outputs["label_ids"])))

    # ---------------------------------------------------------------------------------- predict, export
    def predict(self, model: keras.Model, runner: Predictor) -> dict[str, Any]:
        """Predicts the test features and writes `predict_results.txt` and `race_predictions.jsonl`.

        Returns:
          {"metrics": the test metrics, "logits" [N,4], "probabilities" [N,4], "predictions" [N]}.
        """
        s = self.settings
        path, info = self.features("predict")
        logging.info("***** Predicting %s (batch %d) *****", path, s.predict_batch_size)
        outputs = runner.predict(self._dataset(path, s.predict_batch_size), self.validation_outputs)
        results = race_metrics(outputs, self._levels(path, info, len(outputs["label_ids"])))
        serving = runner.checkpoint
        write_predict_results(os.path.join(self.write_dir, PREDICT_RESULTS), results,
                              serving.best_value if serving else None, serving.step if serving else None)
        write_predictions(os.path.join(self.write_dir, PREDICTIONS_JSONL), outputs, info)
        return {"metrics": results, **{k: outputs[k] for k in ("logits", "probabilities", "predictions")}}

    def export(self, model: keras.Model, export_dir: str, checkpoint: ServingCheckpoint) -> dict[str, str]:
        """The SavedModel (with savedmodel in `--export_formats`) and the ONNX / TFLite files of
        `albert_tf.export.deploy` (inputs int32 [B,4,S]; full_int8 calibrated on dev)."""
        s = self.settings
        paths = {}
        if deploy.wants_saved_model(s):
            module = MultipleChoiceServingModule(model, s.max_seq_length)
            paths.update(serving.export_saved_models({serving.EXAMPLES: module}, export_dir))
        features = serving.FeatureServing(model, lambda outputs: choice_outputs(outputs["logits"]),
                                          [race.NUM_CHOICES, s.max_seq_length])
        calibration = deploy.calibration_batches(
            lambda: self._dataset(self.features("eval")[0], s.eval_batch_size), features.input_names)
        paths.update(deploy.export_task(features, s, self.config, calibration))
        return paths


def write_predict_results(path: str, results: Mapping[str, float], best: Optional[float],
                          global_step: Optional[int] = None) -> None:
    """`predict_results.txt` as the original: a `***** Predict results *****` header, sorted
    `key = value` lines (the metrics and, when known, the checkpoint's `global_step`, which the
    original's `estimator.evaluate` reported) and `best = <dev best>` (when known)."""
    values = dict(results, **({"global_step": global_step} if global_step is not None else {}))
    lines = ["***** Predict results *****"] + [f"{key} = {values[key]}" for key in sorted(values)]
    if best is not None:
        lines.append(f"best = {best}")
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _floats(row: np.ndarray) -> list[float]:
    """float32 values as the shortest decimals that round-trip them."""
    return [float(str(np.float32(v))) for v in row]


def write_predictions(path: str, outputs: Mapping[str, np.ndarray], info: Optional[race.RaceFeatureInfo]) -> None:
    """`race_predictions.jsonl`: one JSON object per example, in record order (see the module docstring)."""
    with tf.io.gfile.GFile(path, "w") as f:
        for i, (logits, probabilities, prediction) in enumerate(
                zip(outputs["logits"], outputs["probabilities"], outputs["predictions"])):
            row: dict[str, Any] = {"logits": _floats(logits), "probabilities": _floats(probabilities),
                                   "prediction": race.LABELS[int(prediction)]}
            if info is not None:
                row.update(example_id=info.article_ids[i], question_index=info.question_indices[i],
                           level=info.levels[i], label=race.LABELS[info.labels[i]])
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
