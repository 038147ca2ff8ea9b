"""GLUE / XNLI fine-tuning (the original `run_classifier.py`) as a `Task` of the one driver.

What the task adds to the driver (`albert_tf.core.driver`):
- **features** cached as `<cached_dir or output_dir>/<task>_{train,eval}.tf_record` (built when missing;
  a cache written with another `max_seq_length` is refused);
- **model** `AlbertClassifier` (`output_weights` [C,H] / `output_bias` [C] at the root scope, dropout
  `classifier_dropout` on the pooled output); **loss** mean softmax cross-entropy, or mean squared
  error for STS-B;
- **evaluation** on the dev set (MNLI also on dev_mismatched, keys suffixed `_mismatched`): the task's
  metrics (`albert_tf.metrics`), the best checkpoint by the processor's key (`matthew_corr` for CoLA,
  `pearson` for STS-B, `eval_accuracy` otherwise);
- **predict**: the test set's cached features `<task>_predict.tf_record`; `test_results.tsv`
  (probabilities, or the score for STS-B) and `submit_results.tsv` (`index<TAB>prediction`, label
  strings); MNLI also `test_results_mm.tsv` / `submit_results_mm.tsv`. `ax` is predicted with an MNLI
  model given as `--init_checkpoint`;
- **export**: `export_dir/<timestamp>/` (the original serving signature) and
  `export_dir/<timestamp>_text/` (raw text in), see `export_classifier`.

Deviations from the original: `keep_checkpoint_max` is honoured; the `best =` line shows the best value
including the checkpoint just evaluated; evaluation runs alongside training, after it, or in a side-car
process beside it (`--continuous_eval`, as the original's second polling process).
"""
from __future__ import annotations

import math
import os
from typing import Any, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from albert_tf import metrics, tokenization
from albert_tf.core.context import RunContext
from albert_tf.core.task import ServingCheckpoint, TRAIN_SHUFFLE_SEED, EvalSet, Predictor, Task, check_seq_length
from albert_tf.tasks.glue import data as glue
from albert_tf.data.classifier_features import classifier_dataset
from albert_tf.export import deploy, serving
from albert_tf.modeling import AlbertClassifier
from albert_tf.tasks.glue.export import export_classifier, head_outputs
from albert_tf.tasks.glue.settings import ClassifierRun


def per_example_loss(labels: tf.Tensor, logits: tf.Tensor, is_regression: bool) -> tf.Tensor:
    """Per-example loss [B]: softmax cross-entropy of int labels [B] and logits [B,C], or for
    regression the squared error of float labels [B] and logits [B,1]."""
    if is_regression:
        return tf.square(tf.squeeze(logits, -1) - tf.cast(labels, tf.float32))
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)


class GlueTask(Task):
    """A GLUE / XNLI classification or regression task (see the module docstring)."""

    compatibility_fields = ("do_lower_case", "max_seq_length")

    def __init__(self, settings: ClassifierRun, context: Optional[RunContext] = None):
        super().__init__(settings, context)
        self.settings: ClassifierRun = settings
        # SentencePiece normalisation unless a WordPiece vocabulary is given (Hugging Face and TF-Hub
        # ALBERTs bring SentencePiece models).
        use_spm = bool(settings.spm_model_file) or not settings.vocab_file
        self.processor = glue.get_processor(settings.task_name, use_spm=use_spm,
                                            do_lower_case=settings.do_lower_case, xnli_language=settings.xnli_language)
        self.name = self.processor.name
        self.metric_key = self.processor.metric_key
        self.labels = self.processor.get_labels()
        self.is_regression = self.processor.is_regression
        self.cache_dir = settings.cached_dir or settings.output_dir

    # ---------------------------------------------------------------------------------- settings
    def validate(self) -> None:
        s = self.settings
        needs_text = s.do_train or s.do_eval or s.do_predict
        if needs_text:
            self.tokenizer  # noqa: B018 (fails early, naming the flags, when there is no tokenizer)
        if needs_text and not s.data_dir:
            raise ValueError("--data_dir is required (the GLUE root folder holding e.g. RTE/train.tsv).")
        check_seq_length(s.max_seq_length, self.config, s.albert_config_file)
        if s.do_train and not self.processor.has_split("train"):
            raise ValueError(f"--task_name={s.task_name} has no training set: fine-tune on mnli, then predict it "
                             "with --init_checkpoint=<the MNLI output_dir>.")

    def num_train_steps(self) -> int:
        return self.settings.train_step

    def num_warmup_steps(self) -> int:
        return self.settings.warmup_step

    # ---------------------------------------------------------------------------------- model
    def build_model(self, encoder: Optional[keras.layers.Layer] = None) -> AlbertClassifier:
        return AlbertClassifier(self.config, len(self.labels), dropout_rate=self.settings.classifier_dropout,
                                encoder=encoder, recompute_grad=self.settings.recompute_grad,
                                id2label=None if self.is_regression else dict(enumerate(self.labels)))

    # ---------------------------------------------------------------------------------- data
    def _mismatched(self) -> glue.DataProcessor:
        return glue.get_processor("mismnli", use_spm=self.processor.use_spm,
                                  do_lower_case=self.settings.do_lower_case)

    def eval_processors(self) -> list[tuple[str, glue.DataProcessor]]:
        """(metric key suffix, processor) of each dev set: MNLI adds the mismatched one."""
        return [("", self.processor)] + ([("_mismatched", self._mismatched())] if self.name == "mnli" else [])

    def predict_processors(self) -> list[tuple[str, glue.DataProcessor]]:
        """(output file suffix, processor) of each test set: MNLI adds the mismatched one."""
        return [("", self.processor)] + ([("_mm", self._mismatched())] if self.name == "mnli" else [])

    def cached_features(self, processor: glue.DataProcessor, split: str) -> str:
        """Path of `<cache>/<task>_<split>.tf_record` ("train", "eval" or "predict"): reused when its fingerprint
        (tokenizer file, casing, length, source file) matches, else (re)built (`albert_tf.data.cache`).

        Raises:
          FileNotFoundError: the GLUE file it is built from is missing.
          StaleCacheError: a cached file of unknown provenance (no fingerprint) is in the way.
        """
        s = self.settings
        source = processor.split_path(s.data_dir, glue.FEATURE_SPLITS[split])
        if not tf.io.gfile.exists(source):
            path = os.path.join(self.cache_dir, glue.feature_file_name(processor.name, split, s.xnli_language))
            raise FileNotFoundError(f"{source} not found (needed for {path}): {processor.layout_hint()}.")
        written = glue.write_glue_features(processor.name, s.data_dir, self.tokenizer, s.max_seq_length,
                                           self.cache_dir, splits=(split,), do_lower_case=s.do_lower_case,
                                           xnli_language=s.xnli_language, reuse_cache=True)
        return written[split][0]

    def _dataset(self, path: str, batch_size: int) -> tf.data.Dataset:
        """Eval/predict batches of a feature file, every example once, in order."""
        return classifier_dataset(path, self.settings.max_seq_length, batch_size, is_training=False,
                                  is_regression=self.is_regression)

    # ---------------------------------------------------------------------------------- training
    def train_dataset(self, input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        s = self.settings
        return classifier_dataset(self.cached_features(self.processor, "train"), s.max_seq_length,
                                  self.micro_batch_size(), is_training=True, is_regression=self.is_regression,
                                  input_context=input_context, seed=TRAIN_SHUFFLE_SEED)

    def loss(self, features: dict, outputs: dict) -> tf.Tensor:
        return tf.reduce_mean(per_example_loss(features["label_ids"], outputs["logits"], self.is_regression))

    def train_metrics(self) -> dict:
        if self.is_regression:
            return {}

        def accuracy(features: dict, outputs: dict) -> tf.Tensor:
            predictions = tf.argmax(outputs["logits"], axis=-1, output_type=tf.int32)
            return tf.cast(tf.equal(predictions, tf.cast(features["label_ids"], tf.int32)), tf.float32)

        return {"accuracy": accuracy}

    # ---------------------------------------------------------------------------------- evaluation
    def eval_sets(self) -> list[EvalSet]:
        return [EvalSet(suffix, self._dataset(self.cached_features(processor, "eval"), self.settings.eval_batch_size))
                for suffix, processor in self.eval_processors()]

    def validation_outputs(self, features: dict, outputs: dict) -> dict[str, tf.Tensor]:
        logits = outputs["logits"]
        return dict(head_outputs(logits, self.is_regression), label_ids=features["label_ids"],
                    is_real_example=features["is_real_example"],
                    loss=per_example_loss(features["label_ids"], logits, self.is_regression))

    def reduce_validation(self, collected: dict[str, dict[str, np.ndarray]], step: int) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for suffix, outputs in collected.items():
            scores = outputs["predictions"] if self.is_regression else outputs["probabilities"]
            values = metrics.classification_metrics(
                outputs["label_ids"], scores, weights=outputs["is_real_example"], per_example_loss=outputs["loss"],
                is_regression=self.is_regression, extra=self.processor.extra_metrics)
            results.update({f"{key}{suffix}": value for key, value in values.items()})
        return results

    # ---------------------------------------------------------------------------------- predict, export
    def predict(self, model: keras.Model, runner: Predictor) -> dict[str, np.ndarray]:
        """Predicts the test set(s) from their cached features (`<task>_predict.tf_record`, rebuilt only when
        stale) and writes `test_results{,_mm}.tsv` and `submit_results{,_mm}.tsv`. Returns the probabilities by
        file suffix."""
        s = self.settings
        results = {}
        for suffix, processor in self.predict_processors():
            examples = processor.get_test_examples(s.data_dir)  # their guids name the submitted rows
            path = self.cached_features(processor, "predict")
            logging.info("***** Predicting %d examples of %s (batch %d) *****", len(examples),
                         processor.split_path(s.data_dir, "test"), s.predict_batch_size)
            outputs = runner.predict(self._dataset(path, s.predict_batch_size),
                                     lambda _, out: head_outputs(out["logits"], self.is_regression))
            metrics.write_test_results(os.path.join(self.write_dir, f"test_results{suffix}.tsv"),
                                       outputs["probabilities"])
            metrics.write_submit_results(os.path.join(self.write_dir, f"submit_results{suffix}.tsv"),
                                         [e.guid for e in examples], outputs["predictions"], self.labels)
            results[suffix] = outputs["probabilities"]
        return results

    def _serving_spm_model(self) -> Optional[str]:
        """The SentencePiece model of the raw-text export: `--spm_model_file`, else the one a Hugging Face
        `--init_checkpoint` or a Hub module brings; None (no raw-text export) when there is none."""
        s = self.settings
        if s.spm_model_file or s.vocab_file:
            return s.spm_model_file
        try:
            tokenizer = self.tokenizer
        except ValueError:  # no tokenizer anywhere: the example-input SavedModel alone is exported
            return None
        return tokenization.in_graph_spm_model(tokenizer, getattr(tokenizer, "spm_model_file", None),
                                               "The raw-text SavedModel")

    def export(self, model: keras.Model, export_dir: str, checkpoint: ServingCheckpoint) -> dict[str, str]:
        """The SavedModels of `export_classifier` (with savedmodel in `--export_formats`) and the ONNX / TFLite
        files of `albert_tf.export.deploy` (logits, probabilities, predictions; full_int8 calibrated on dev)."""
        s = self.settings
        threshold = None if math.isnan(s.threshold_to_export) else s.threshold_to_export
        paths = {}
        if deploy.wants_saved_model(s):
            paths.update(export_classifier(model, export_dir, task_name=self.name, max_seq_length=s.max_seq_length,
                                           spm_model_file=self._serving_spm_model(),
                                           do_lower_case=s.do_lower_case, threshold=threshold))
        module = serving.FeatureServing(model, self._deployed_outputs, [s.max_seq_length])
        calibration = None if not s.data_dir else deploy.calibration_batches(
            lambda: self._dataset(self.cached_features(self.processor, "eval"), s.eval_batch_size), module.input_names)
        paths.update(deploy.export_task(module, s, self.config, calibration))
        return paths

    def _deployed_outputs(self, outputs: dict) -> dict[str, tf.Tensor]:
        """The ONNX / TFLite outputs: `logits` and the served `probabilities`, `predictions`."""
        logits = tf.cast(outputs["logits"], tf.float32)
        return dict(head_outputs(logits, self.is_regression), logits=logits)
