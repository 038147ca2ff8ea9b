"""SQuAD v1.1 / v2.0 fine-tuning (the original `run_squad_v1.py` / `run_squad_v2.py`) as a `Task` of the
one driver.

What the task adds to the driver (`albert_tf.core.driver`):
- **features**: `--train_feature_file` / `--predict_feature_file` are built when missing (`albert_tf.tasks.squad.data`,
  on every CPU): training questions are shuffled with `random.Random(12345)` before conversion, as the
  original; the predict features get their post-processing side file `F.features.json` (the original's
  `--predict_feature_left_file` pickle is not used). Every built file gets a fingerprint
  (`albert_tf.data.cache`: SentencePiece model, source file, casing, lengths, version): it is reused when that
  matches and rebuilt when it does not. A file given by flag without a fingerprint is used as it is (checked
  against `--max_seq_length`), as the original. Defaults: `<output_dir>/train.tf_record`,
  `<output_dir>/predict.tf_record`;
- **schedule**: `int(#questions / train_batch_size * num_train_epochs)` steps (questions, not
  features, as the original), `int(steps * warmup_proportion)` warmup;
- **model**: v1.1 `AlbertQuestionAnswering` (`cls/squad/output_{weights,bias}`), v2.0 `AlbertSquadV2`
  (`start_logits/*`, `end_logits/*`, `answer_class/*`); **loss** v1.1 `(CE_start + CE_end) / 2`, v2.0
  `0.5 (CE_start + CE_end) + 0.5 sigmoid-CE(is_impossible)`;
- **evaluation** of every checkpoint on `--predict_file` (it needs gold answers): post-processing
  (`albert_tf.tasks.squad.postprocess`) writes `predictions.json`, `nbest_predictions.json` (and v2.0
  `null_odds.json`) in `output_dir` and the official scores select `model.ckpt-best` by `f1`. v2.0 tunes
  the null threshold on the same file, as the original (`null_score_diff_threshold` in the results);
  `--null_score_diff_threshold` applies a given one instead;
- **predict**: the same files for `--predict_file` plus `raw_results.npz` (`squad_postprocess`'s raw
  outputs, in feature order); scores when the file has answers (v2.0 then tunes the threshold unless
  one is given; without answers and threshold v2.0 answers the best non-null text);
- **export** (`export_dir`): `albert_tf.tasks.squad.export.export_squad` (raw-output and raw-text SavedModels,
  and for v1.1 the original's `albert_model.tflite`).

Deviations from the original: v1.1 predict-only works (the original crashed); evaluation runs
alongside training or after it (`--do_eval`), not as a polling loop of `--do_predict`.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import random
from typing import Any, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from albert_tf import tokenization
from albert_tf.tasks.squad import postprocess as squad_postprocess
from albert_tf.core.context import RunContext
from albert_tf.core.task import ServingCheckpoint, TRAIN_SHUFFLE_SEED, EvalSet, Predictor, Task, check_seq_length
from albert_tf.data import cache
from albert_tf.tasks.squad import data as squad
from albert_tf.modeling.models import AlbertQuestionAnswering, AlbertSquadV2
from albert_tf.tasks.squad.evaluate import V1, V2, VERSIONS
from albert_tf.tasks.squad.settings import SquadRun

RAW_RESULTS_FILE = "raw_results.npz"
SHUFFLE_SEED = 12345


def span_cross_entropy(log_probs: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """The original `compute_loss`: mean over the batch of `-log_probs[b, positions[b]]` (one-hot sum).
    log_probs [B,S] float32, positions [B] int -> scalar."""
    one_hot = tf.one_hot(tf.reshape(positions, [-1]), depth=tf.shape(log_probs)[-1], dtype=tf.float32)
    return -tf.reduce_mean(tf.reduce_sum(one_hot * log_probs, axis=-1))


class SquadTask(Task):
    """SQuAD v1.1 or v2.0 (see the module docstring)."""

    compatibility_fields = ("do_lower_case", "max_seq_length")

    name = "squad"
    metric_key = "f1"

    def __init__(self, settings: SquadRun, context: Optional[RunContext] = None):
        super().__init__(settings, context)
        self.settings: SquadRun = settings
        self.name = f"squad_{settings.squad_version}"
        self._num_train_examples: Optional[int] = None
        self._predict_side: Optional[squad.EvalSideInfo] = None
        self._train_features_ready = False
        self._files: dict[str, squad.SquadFile] = {}

    # ---------------------------------------------------------------------------------- settings
    @property
    def is_v2(self) -> bool:
        return self.settings.squad_version == V2

    @property
    def train_feature_file(self) -> str:
        return self.settings.train_feature_file or os.path.join(self.settings.output_dir, "train.tf_record")

    @property
    def predict_feature_file(self) -> str:
        return self.settings.predict_feature_file or os.path.join(self.settings.output_dir, "predict.tf_record")

    def resolve_settings(self) -> SquadRun:
        """With `eval_with_train_predict` (run_squad_v1.py / run_squad_v2.py, as the original), `--do_train
        --do_predict` on a predict file with answers also evaluates every checkpoint (`do_eval`)."""
        s = self.settings
        if (s.eval_with_train_predict and not s.do_eval and s.do_train and s.do_predict and s.predict_file
                and squad_postprocess.has_gold_answers(self.predict_json)):
            return dataclasses.replace(s, do_eval=True)
        return s

    def validate(self) -> None:
        s = self.settings
        if s.squad_version not in VERSIONS:
            raise ValueError(f"--squad_version={s.squad_version!r}: use {V1} or {V2}.")
        if (s.do_train or s.do_eval or s.do_predict) and getattr(self.tokenizer, "sp_model", None) is None:
            raise ValueError("SQuAD features need a SentencePiece model: pass --spm_model_file (e.g. "
                             "30k-clean.model), as in the original; WordPiece --vocab_file is not supported.")
        if (s.do_eval or s.do_predict) and not s.predict_file:
            raise ValueError("--do_eval/--do_predict need --predict_file (the SQuAD JSON to answer, e.g. "
                             "dev-v1.1.json).")
        if s.predict_file and not tf.io.gfile.exists(s.predict_file):
            raise FileNotFoundError(f"--predict_file={s.predict_file} not found.")
        check_seq_length(s.max_seq_length, self.config, s.albert_config_file)
        if s.max_seq_length <= s.max_query_length + 3:
            raise ValueError(f"--max_seq_length={s.max_seq_length} must exceed --max_query_length="
                             f"{s.max_query_length} + 3, so that every window holds context pieces.")
        for flag in ("doc_stride", "max_query_length", "n_best_size", "max_answer_length", "start_n_top",
                     "end_n_top"):
            if getattr(s, flag) < 1:
                raise ValueError(f"--{flag} must be >= 1, got {getattr(s, flag)}.")
        if self.is_v2 and max(s.start_n_top, s.end_n_top) > s.max_seq_length:
            raise ValueError(f"--start_n_top={s.start_n_top} / --end_n_top={s.end_n_top} exceed --max_seq_length="
                             f"{s.max_seq_length}.")
        if not self.is_v2 and s.null_score_diff_threshold is not None:
            raise ValueError(f"--null_score_diff_threshold applies to SQuAD {V2} only; drop it or pass "
                             f"--squad_version={V2}.")
        if s.do_train:
            if s.num_train_epochs <= 0:
                raise ValueError(f"--num_train_epochs must be > 0, got {s.num_train_epochs}.")
            self.num_train_steps()  # --train_file set, present and readable
            self.squad_file(s.train_file).version(s.squad_version)
        if s.do_eval or s.do_predict:
            self.squad_file(s.predict_file).version(s.squad_version)
        if s.do_eval and not squad_postprocess.has_gold_answers(self.predict_json):
            raise ValueError(f"--do_eval: --predict_file={s.predict_file} has no gold answers to score against "
                             "(a test file?); evaluate on a dev file or drop --do_eval.")
        if s.predict_feature_left_file:
            logging.info("--predict_feature_left_file is not used: the post-processing side information lives "
                         "next to the predict features (%s).", squad.eval_features_path(self.predict_feature_file))

    def num_train_steps(self) -> int:
        """`int(#questions / train_batch_size * num_train_epochs)`; reads `train_file` once.

        Raises:
          ValueError, FileNotFoundError: `train_file` is not set or missing (this runs before `validate`).
        """
        s = self.settings
        if self._num_train_examples is None:
            if not s.train_file:
                raise ValueError("--do_train needs --train_file (the SQuAD training JSON, e.g. train-v1.1.json).")
            if not tf.io.gfile.exists(s.train_file):
                raise FileNotFoundError(f"--train_file={s.train_file} not found.")
            self._num_train_examples = len(self.squad_file(s.train_file).examples(is_training=True))
        return int(self._num_train_examples / s.train_batch_size * s.num_train_epochs)

    def num_warmup_steps(self) -> int:
        return int(self.num_train_steps() * self.settings.warmup_proportion)

    # ---------------------------------------------------------------------------------- model
    def build_model(self, encoder: Optional[keras.layers.Layer] = None) -> keras.Model:
        s = self.settings
        if self.is_v2:
            return AlbertSquadV2(self.config, encoder=encoder, recompute_grad=s.recompute_grad,
                                 start_n_top=s.start_n_top, end_n_top=s.end_n_top, dropout_rate=s.dropout_prob)
        return AlbertQuestionAnswering(self.config, encoder=encoder, recompute_grad=s.recompute_grad)

    # ---------------------------------------------------------------------------------- features
    def _write_features(self, input_file: str, output_file: str, is_training: bool) -> None:
        s = self.settings
        examples = list(self.squad_file(input_file).examples(is_training))
        if is_training:
            random.Random(SHUFFLE_SEED).shuffle(examples)
        summary = squad.write_squad_features(
            examples, self.tokenizer, output_file, s.max_seq_length, s.doc_stride, s.max_query_length,
            is_training=is_training, do_lower_case=s.do_lower_case,
            settings={"input_file": input_file, "squad_version": s.squad_version}, num_workers=None)
        logging.info("Wrote %d features of %d questions of %s to %s.", summary.num_features, summary.num_examples,
                     input_file, output_file)

    def _ensure_features(self, input_file: str, path: str, is_training: bool, given: bool) -> None:
        """Makes `path` hold the features of `input_file` for this run (see `albert_tf.data.cache`): built
        when missing (for prediction also when its side file is missing), reused when its fingerprint
        matches, rebuilt when it was built from other inputs or settings. A file given by flag (`given`)
        without a fingerprint is used as is after the length check, as the original; the task's own cache
        without one is refused (`cache.StaleCacheError`)."""
        s = self.settings
        expected = squad.feature_fingerprint(self.tokenizer, input_file, is_training, s.do_lower_case,
                                             s.max_seq_length, s.doc_stride, s.max_query_length, s.squad_version)
        build = functools.partial(self._write_features, input_file, path, is_training)
        if os.path.dirname(path):
            tf.io.gfile.makedirs(os.path.dirname(path))  # the fingerprint is written before the features
        exists = tf.io.gfile.exists(path)
        side_path = squad.eval_features_path(path)
        if exists and not is_training and not tf.io.gfile.exists(side_path):
            logging.info("%s has no post-processing side file %s: building both.", path, side_path)
            cache.build_with_fingerprint(path, expected, build)
        elif exists and given and cache.read_fingerprint(path) is None:
            squad.check_feature_file(path, s.max_seq_length, is_training)
            logging.info("Using %s as is: it has no fingerprint (%s), so the tokenizer, casing and lengths it was "
                         "built with cannot be checked.", path, cache.sidecar_path(path))
        else:
            cache.ensure_features(path, expected, build)

    def train_features(self) -> str:
        """`train_feature_file`, built from `train_file` when missing or stale (`_ensure_features`, checked once
        per task: every input pipeline asks)."""
        s = self.settings
        if not self._train_features_ready:
            self._ensure_features(s.train_file, self.train_feature_file, is_training=True,
                                  given=bool(s.train_feature_file))
            self._train_features_ready = True
        return self.train_feature_file

    def squad_file(self, path: str) -> squad.SquadFile:
        """The SQuAD file `path`, parsed once per task (every use of it in the run shares the parse)."""
        if path not in self._files:
            self._files[path] = squad.SquadFile(path)
        return self._files[path]

    @property
    def predict_json(self) -> Any:
        """The article list of `predict_file`."""
        return self.squad_file(self.settings.predict_file).articles

    def predict_features(self) -> tuple[str, squad.EvalSideInfo]:
        """`predict_feature_file` (built from `predict_file` when missing or stale) and its side information,
        checked to belong to `predict_file`."""
        s = self.settings
        path = self.predict_feature_file
        if self._predict_side is not None:
            return path, self._predict_side
        self._ensure_features(s.predict_file, path, is_training=False, given=bool(s.predict_feature_file))
        side = squad.load_eval_features(squad.eval_features_path(path))
        question_ids = [e.qas_id for e in self.squad_file(s.predict_file).examples(is_training=False)]
        squad_postprocess.check_predict_file(side, question_ids, s.predict_file, path)
        for key in ("doc_stride", "max_query_length", "do_lower_case"):
            if key in side.settings and side.settings[key] != getattr(s, key):
                logging.warning("%s was written with %s=%s (this run: %s); using it as it is.", path, key,
                                side.settings[key], getattr(s, key))
        self._predict_side = side
        return path, side

    def _predict_dataset(self, path: str) -> tf.data.Dataset:
        return squad.squad_dataset(path, self.settings.max_seq_length, self.settings.predict_batch_size,
                                   is_training=False)

    # ---------------------------------------------------------------------------------- training
    def train_dataset(self, input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        s = self.settings
        return squad.squad_dataset(self.train_features(), s.max_seq_length, self.micro_batch_size(),
                                   is_training=True, input_context=input_context, seed=TRAIN_SHUFFLE_SEED)

    def loss(self, features: dict, outputs: dict) -> tf.Tensor:
        if not self.is_v2:
            start = span_cross_entropy(tf.nn.log_softmax(outputs["start_logits"], axis=-1), features["start_positions"])
            end = span_cross_entropy(tf.nn.log_softmax(outputs["end_logits"], axis=-1), features["end_positions"])
            return (start + end) / 2.0
        span = (span_cross_entropy(outputs["start_log_probs"], features["start_positions"])
                + span_cross_entropy(outputs["end_log_probs"], features["end_positions"])) * 0.5
        labels = tf.cast(tf.reshape(features["is_impossible"], [-1]), tf.float32)
        answerable = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels,
                                                                            logits=outputs["cls_logits"]))
        return span + answerable * 0.5

    # ---------------------------------------------------------------------------------- evaluation
    def raw_outputs(self, features: dict, outputs: dict) -> dict[str, tf.Tensor]:
        """The raw results of a batch (`squad_postprocess.RAW_RESULT_KEYS`), one row per feature."""
        out = {"unique_ids": features["unique_ids"]}
        out.update({k: outputs[k] for k in squad_postprocess.RAW_RESULT_KEYS[self.settings.squad_version][1:]})
        return out

    def eval_sets(self) -> list[EvalSet]:
        path, side = self.predict_features()
        return [EvalSet("", self._predict_dataset(path), context=side)]

    def validation_outputs(self, features: dict, outputs: dict) -> dict[str, tf.Tensor]:
        return self.raw_outputs(features, outputs)

    def _postprocess(self, raw: dict[str, np.ndarray]) -> Optional[dict[str, Any]]:
        """Writes the prediction files in `output_dir` and scores them when the predict file has answers."""
        s = self.settings
        _, side = self.predict_features()
        scorable = squad_postprocess.has_gold_answers(self.predict_json)
        tune = self.is_v2 and s.null_score_diff_threshold is None and scorable
        return squad_postprocess.postprocess_and_write(
            side, raw, s.squad_version, self.write_dir, self.predict_json if scorable else None, s.n_best_size,
            s.max_answer_length, s.null_score_diff_threshold, tune_null_threshold=tune)

    def reduce_validation(self, collected: dict[str, dict[str, np.ndarray]], step: int) -> dict[str, Any]:
        return self._postprocess(collected[""])

    # ---------------------------------------------------------------------------------- predict, export
    def predict(self, model: keras.Model, runner: Predictor) -> dict[str, Any]:
        """Predicts `predict_feature_file`, writes `raw_results.npz` and the prediction files. Returns
        {"raw_results": path, "eval": the scores, or None when the predict file has no answers}."""
        s = self.settings
        path, side = self.predict_features()
        logging.info("***** Predicting %d features of %d questions of %s (batch %d) *****", len(side.features),
                     len(side.examples), s.predict_file, s.predict_batch_size)
        raw = runner.predict(self._predict_dataset(path), self.raw_outputs)
        raw_path = squad_postprocess.save_raw_results(os.path.join(self.write_dir, RAW_RESULTS_FILE), raw)
        result = self._postprocess(raw)
        if result is not None:
            logging.info("Predictions on %s: %s", s.predict_file, result)
        return {"raw_results": raw_path, "eval": result}

    def export(self, model: keras.Model, export_dir: str, checkpoint: ServingCheckpoint) -> dict[str, str]:
        """With savedmodel in `--export_formats`, `albert_tf.tasks.squad.export.export_squad`: the raw-output
        SavedModel, the raw-text QA SavedModel and, for v1.1 as the original, `export_dir/albert_model.tflite`;
        then the ONNX / TFLite files of `albert_tf.export.deploy` (the raw outputs; full_int8 calibrated on
        the predict features)."""
        from albert_tf.export import deploy
        from albert_tf.tasks.squad.export import SquadFeatureServing, export_squad  # imports tensorflow_text
        s = self.settings
        paths = {}
        if deploy.wants_saved_model(s):
            paths.update(export_squad(
                model, export_dir, squad_version=s.squad_version, max_seq_length=s.max_seq_length,
                max_query_length=s.max_query_length, doc_stride=s.doc_stride,
                spm_model_file=tokenization.in_graph_spm_model(
                    self.tokenizer, s.spm_model_file or getattr(self.tokenizer, "spm_model_file", None),
                    "The raw-text SQuAD SavedModel"),
                do_lower_case=s.do_lower_case, n_best_size=s.n_best_size, max_answer_length=s.max_answer_length,
                null_score_diff_threshold=self._serving_threshold(checkpoint), tflite=not self.is_v2))
        module = SquadFeatureServing(model, s.squad_version, s.max_seq_length)
        calibration = deploy.calibration_batches(lambda: self._predict_dataset(self.predict_features()[0]),
                                                 module.input_names)
        paths.update(deploy.export_task(module, s, self.config, calibration))
        return paths

    def _serving_threshold(self, checkpoint: ServingCheckpoint) -> Optional[float]:
        """v2.0: `--null_score_diff_threshold`, else the threshold tuned with `model.ckpt-best` (its record in
        `eval_results.txt`, handed over by the driver), so the export answers as the run's `predictions.json`
        did; None otherwise."""
        s = self.settings
        if not self.is_v2 or s.null_score_diff_threshold is not None:
            return s.null_score_diff_threshold
        record = checkpoint.best_record or {}
        threshold = record.get(squad_postprocess.NULL_THRESHOLD_KEY)
        if threshold is not None:
            logging.info("Exporting with null_score_diff_threshold=%s, tuned with %s at step %d "
                         "(--null_score_diff_threshold overrides it).", threshold, checkpoint.path,
                         int(record["global_step"]))
        return threshold
