"""GLUE / XNLI fine-tuning (the original `run_classifier.py`): loss, train / eval / predict / export.

`run_classifier(run, strategy)` does, in order, what the flags of a `ClassifierRun` ask for:

- **train** (`do_train`): features cached as `<cached_dir or output_dir>/<task>_train.tf_record` (built
  only if missing), `AlbertClassifier` (encoder from `init_checkpoint`), AdamW/LAMB with warmup and
  linear decay for `train_step` steps. Loss: mean softmax cross-entropy, or mean squared error for
  sts-b. Every `save_checkpoints_steps` steps the TF2 training state goes to
  `output_dir/tf2_checkpoints/` (resume) and the official TF1 layout to `output_dir/model.ckpt-<step>`
  (the newest `keep_checkpoint_max` kept);
- **eval** (`do_eval`): every saved checkpoint is evaluated on the dev set (`<task>_eval.tf_record`,
  cached; MNLI also on dev_mismatched, keys suffixed `_mismatched`). With `do_train` this happens at
  each save, on the weights being trained; without it, every `model.ckpt-<step>` in `output_dir` not
  yet recorded in `best_trial.txt` is evaluated in step order. Each evaluation appends its metrics,
  `best = <best value so far>` and a line of `=` to `eval_results.txt`, and rewrites `best_trial.txt`
  as `global_step:best_step:best_value`. The best checkpoint by the task's key (`matthew_corr` for
  CoLA, `pearson` for STS-B, `eval_accuracy` otherwise) is copied to `model.ckpt-best`;
- **predict** (`do_predict`): `output_dir/predict.tf_record` is rebuilt from the test set and predicted
  with `model.ckpt-best` (else the newest `model.ckpt-<step>`, else a fine-tuned `init_checkpoint`,
  which is how `ax` is predicted with an MNLI model). Writes `test_results.tsv` (class probabilities,
  or the score for sts-b) and `submit_results.tsv` (`index<TAB>prediction`, label strings); MNLI also
  writes `test_results_mm.tsv` / `submit_results_mm.tsv` for test_mismatched;
- **export** (`export_dir`): SavedModels of the same checkpoint under `export_dir/<timestamp>/` (the
  original serving signature) and `export_dir/<timestamp>_text/` (raw text in), see `export_classifier`.

Deviations from the original: `keep_checkpoint_max` is honoured (the original kept every checkpoint
and deleted non-best ones while evaluating); the `best =` line shows the best value including the
checkpoint just evaluated (the original printed the value before it); the eval job does not poll for
new checkpoints (run it after training, or together with `do_train`).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any, Callable, Optional

import numpy as np
import tensorflow as tf
from absl import logging

from albert_tf import checkpoints, metrics
from albert_tf.core import distribute, trainer as training
from albert_tf.export import serving as export
from albert_tf.configs import AlbertConfig
from albert_tf.data import glue
from albert_tf.data.classifier_features import classifier_dataset, file_based_convert_examples_to_features
from albert_tf.modeling import AlbertClassifier
from albert_tf.optimization import create_optimizer
from albert_tf.tokenization import FullTokenizer

# Tasks whose examples have one text (the others are pairs); decides the raw-text serving inputs.
SINGLE_SENTENCE_TASKS = ("cola", "sst-2")
BEST_CHECKPOINT = "model.ckpt-best"
EVAL_RESULTS = "eval_results.txt"
BEST_TRIAL = "best_trial.txt"


@dataclasses.dataclass
class ClassifierRun:
    """Everything `run_classifier.py` needs; names and defaults are the original flags'.

    `classifier_dropout` and `xnli_language` are additions (the original hard-coded 0.1 and "zh");
    the last four fields are the TF2 runtime settings of `albert_tf.runtime_flags`.
    """

    data_dir: str
    task_name: str
    output_dir: str
    albert_config_file: Optional[str] = None
    spm_model_file: Optional[str] = None
    vocab_file: Optional[str] = None
    init_checkpoint: Optional[str] = None
    albert_hub_module_handle: Optional[str] = None
    cached_dir: Optional[str] = None
    do_lower_case: bool = True
    max_seq_length: int = 512
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    train_batch_size: int = 32
    eval_batch_size: int = 8
    predict_batch_size: int = 8
    learning_rate: float = 5e-5
    train_step: int = 1000
    warmup_step: int = 0
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    optimizer: str = "adamw"
    export_dir: Optional[str] = None
    threshold_to_export: float = math.nan
    classifier_dropout: float = 0.1
    xnli_language: str = "zh"
    steps_per_loop: int = 1000
    log_steps: Optional[int] = None
    jit_compile: bool = False
    write_summaries: bool = True


# ------------------------------------------------------------------------------------ loss and heads
def per_example_loss(labels: tf.Tensor, logits: tf.Tensor, is_regression: bool) -> tf.Tensor:
    """Per-example loss [B]: softmax cross-entropy of int labels [B] and logits [B,C], or for
    regression the squared error of float labels [B] and logits [B,1]."""
    if is_regression:
        return tf.square(tf.squeeze(logits, -1) - tf.cast(labels, tf.float32))
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)


def head_outputs(logits: tf.Tensor, is_regression: bool) -> dict[str, tf.Tensor]:
    """The original PREDICT outputs from logits [B,C]: `probabilities` (softmax [B,C] float32; the raw
    [B,1] score for regression) and `predictions` (argmax [B] int32; the score [B] for regression)."""
    if is_regression:
        return {"probabilities": logits, "predictions": tf.squeeze(logits, -1)}
    return {"probabilities": tf.nn.softmax(logits, axis=-1),
            "predictions": tf.argmax(logits, axis=-1, output_type=tf.int32)}


def loss_fn_for(is_regression: bool) -> Callable[[dict, dict], tf.Tensor]:
    """`(features, outputs) -> scalar` mean loss of a batch, for `training.Trainer`."""

    def loss_fn(features: dict, outputs: dict) -> tf.Tensor:
        return tf.reduce_mean(per_example_loss(features["label_ids"], outputs["logits"], is_regression))

    return loss_fn


def _train_accuracy(features: dict, outputs: dict) -> tf.Tensor:
    predictions = tf.argmax(outputs["logits"], axis=-1, output_type=tf.int32)
    return tf.cast(tf.equal(predictions, tf.cast(features["label_ids"], tf.int32)), tf.float32)


# ------------------------------------------------------------------------------------ the task
class _Task:
    """The task's processor and labels, its cached feature files and (lazily) its tokenizer."""

    def __init__(self, run: ClassifierRun):
        self.run = run
        self.processor = glue.get_processor(run.task_name, use_spm=bool(run.spm_model_file),
                                            do_lower_case=run.do_lower_case, xnli_language=run.xnli_language)
        self.name = self.processor.name
        self.labels = self.processor.get_labels()
        self.is_regression = self.processor.is_regression
        self.metric_key = self.processor.metric_key
        self.cache_dir = run.cached_dir or run.output_dir
        self._tokenizer: Optional[FullTokenizer] = None

    @property
    def tokenizer(self) -> FullTokenizer:
        if self._tokenizer is None:
            self._tokenizer = FullTokenizer(vocab_file=self.run.vocab_file, do_lower_case=self.run.do_lower_case,
                                            spm_model_file=self.run.spm_model_file)
        return self._tokenizer

    def eval_processors(self) -> list[tuple[str, glue.DataProcessor]]:
        """(metric key suffix, processor) of each dev set: MNLI adds the mismatched one."""
        sets = [("", self.processor)]
        if self.name == "mnli":
            sets.append(("_mismatched", self._mismatched()))
        return sets

    def predict_processors(self) -> list[tuple[str, glue.DataProcessor]]:
        """(output file suffix, processor) of each test set: MNLI adds the mismatched one."""
        sets = [("", self.processor)]
        if self.name == "mnli":
            sets.append(("_mm", self._mismatched()))
        return sets

    def _mismatched(self) -> glue.DataProcessor:
        return glue.get_processor("mismnli", use_spm=bool(self.run.spm_model_file),
                                  do_lower_case=self.run.do_lower_case)

    def cached_features(self, processor: glue.DataProcessor, split: str) -> str:
        """Path of `<cache>/<task>_<split>.tf_record` ("train" or "eval"), written first if missing.

        Raises:
          FileNotFoundError: neither the cached file nor the GLUE file it is built from exists.
          ValueError: the cached file was written with another `max_seq_length`.
        """
        path = os.path.join(self.cache_dir, glue.feature_file_name(processor.name, split, self.run.xnli_language))
        if tf.io.gfile.exists(path):
            _check_cached_length(path, self.run.max_seq_length)
            logging.info("Using cached features %s", path)
            return path
        source = processor.split_path(self.run.data_dir, glue.FEATURE_SPLITS[split])
        if not tf.io.gfile.exists(source):
            raise FileNotFoundError(f"{source} not found (and no cached features {path}): "
                                    f"{processor.layout_hint()}.")
        glue.write_glue_features(processor.name, self.run.data_dir, self.tokenizer, self.run.max_seq_length,
                                 self.cache_dir, splits=(split,), do_lower_case=self.run.do_lower_case,
                                 xnli_language=self.run.xnli_language)
        return path

    def dataset(self, path: str, batch_size: int) -> tf.data.Dataset:
        """Eval/predict batches of a feature file, every example once, in order."""
        return classifier_dataset(path, self.run.max_seq_length, batch_size, is_training=False,
                                  is_regression=self.is_regression)


def _check_cached_length(path: str, max_seq_length: int) -> None:
    """Refuses a cached feature file whose `input_ids` length is not `max_seq_length`."""
    for record in tf.data.TFRecordDataset(path).take(1):
        length = len(tf.train.Example.FromString(record.numpy()).features.feature["input_ids"].int64_list.value)
        if length != max_seq_length:
            raise ValueError(f"Cached features {path} have max_seq_length {length}, but --max_seq_length="
                             f"{max_seq_length}. Delete the file (or use another --cached_dir) to rebuild it.")


# ------------------------------------------------------------------------------------ checkpoints
def finetuned_checkpoint(directory: str) -> Optional[str]:
    """`directory/model.ckpt-best`, else its newest `model.ckpt-<step>`, else None."""
    best = os.path.join(directory, BEST_CHECKPOINT)
    if tf.io.gfile.exists(best + ".index"):
        return best
    steps = checkpoints.step_checkpoints(directory)
    return steps[-1][1] if steps else None


def _head_shape(prefix: str) -> Optional[list[int]]:
    """Shape of the classifier head `output_weights` in a checkpoint, None when it has none."""
    return tf.train.load_checkpoint(prefix).get_variable_to_shape_map().get("output_weights")


def load_finetuned(model: AlbertClassifier, prefix: str) -> None:
    """Loads a fine-tuned classifier checkpoint (with its head) strictly into `model`."""
    if _head_shape(prefix) is None:
        raise ValueError(f"{prefix} has no classifier head (output_weights): it is not a fine-tuned model. "
                         "Fine-tune first (--do_train), or pass --init_checkpoint of a model fine-tuned on "
                         "this task (for ax: an MNLI model).")
    checkpoints.load_original_checkpoint(model, prefix)


def serving_checkpoint(output_dir: Optional[str], init_checkpoint: Optional[str]) -> str:
    """The checkpoint to predict and export with: the best (else newest) in `output_dir`, else a
    fine-tuned `init_checkpoint` (a prefix, or a directory searched the same way)."""
    found = finetuned_checkpoint(output_dir) if output_dir else None
    if found:
        return found
    if init_checkpoint:
        if tf.io.gfile.isdir(init_checkpoint):
            found = finetuned_checkpoint(init_checkpoint)
        found = found or checkpoints.resolve_checkpoint_path(init_checkpoint)
        if _head_shape(found) is not None:
            return found
    raise ValueError(f"No fine-tuned checkpoint to predict or export with: --output_dir={output_dir} has no "
                     f"{BEST_CHECKPOINT} or model.ckpt-<step>, and --init_checkpoint={init_checkpoint} is not a "
                     "fine-tuned classifier. Fine-tune first with --do_train.")


def _initialize(model: AlbertClassifier, path: str) -> None:
    """`--init_checkpoint` for training: a pretrained encoder, or a fine-tuned classifier whose head
    has this task's number of labels (both loaded strictly)."""
    prefix = checkpoints.resolve_checkpoint_path(path)
    shape = _head_shape(prefix)
    if shape is None:
        checkpoints.load_original_checkpoint(model.encoder, path)
        return
    if shape[0] != model.num_labels:
        raise ValueError(f"--init_checkpoint {prefix} has a classifier head for {shape[0]} labels but the task "
                         f"has {model.num_labels}; start from a pretrained (encoder-only) checkpoint.")
    checkpoints.load_original_checkpoint(model, path)


# ------------------------------------------------------------------------------------ evaluation
def _better(value: float, best: Optional[float]) -> bool:
    """Whether `value` beats `best` (None: nothing yet; a NaN metric never beats a number)."""
    if best is None or (math.isnan(best) and not math.isnan(value)):
        return True
    return value > best


class CheckpointEvaluator:
    """Evaluates checkpoints on the dev set(s) and keeps `eval_results.txt`, `best_trial.txt` and
    `model.ckpt-best` in `output_dir` up to date. Continues the record of an earlier run found in
    `best_trial.txt`."""

    def __init__(self, run: ClassifierRun, task: _Task, strategy: tf.distribute.Strategy):
        self.run, self.task, self.strategy = run, task, strategy
        self.eval_files = [(suffix, task.cached_features(processor, "eval"))
                           for suffix, processor in task.eval_processors()]
        self.results_path = os.path.join(run.output_dir, EVAL_RESULTS)
        self.trial_path = os.path.join(run.output_dir, BEST_TRIAL)
        self.last_step, self.best_step, self.best = -1, -1, None
        if tf.io.gfile.exists(self.trial_path):
            self.last_step, self.best_step, self.best = read_best_trial(self.trial_path)
            logging.info("Continuing %s: last evaluated step %d, best %s at step %d.", self.trial_path,
                         self.last_step, self.best, self.best_step)
        self.history: list[dict[str, Any]] = []

    def evaluate(self, model: AlbertClassifier) -> dict[str, float]:
        """Metrics of `model`'s current weights on every dev set (mismatched keys suffixed)."""
        results: dict[str, float] = {}
        for suffix, path in self.eval_files:
            outputs = training.predict(
                self.strategy, model, self.task.dataset(path, self.run.eval_batch_size),
                output_fn=self._eval_outputs, jit_compile=self.run.jit_compile)
            scores = outputs["probabilities"] if not self.task.is_regression else outputs["predictions"]
            values = metrics.classification_metrics(self.task.name, outputs["label_ids"], scores,
                                                    weights=outputs["is_real_example"],
                                                    per_example_loss=outputs["loss"])
            results.update({f"{key}{suffix}": value for key, value in values.items()})
        return results

    def _eval_outputs(self, features: dict, outputs: dict) -> dict[str, tf.Tensor]:
        logits = outputs["logits"]
        return dict(head_outputs(logits, self.task.is_regression), label_ids=features["label_ids"],
                    is_real_example=features["is_real_example"],
                    loss=per_example_loss(features["label_ids"], logits, self.task.is_regression))

    def record(self, model: AlbertClassifier, step: int, prefix: str) -> dict[str, Any]:
        """Evaluates `model` (holding the weights of checkpoint `prefix`, saved at `step`), writes the
        result files and copies `prefix` to `model.ckpt-best` when it is the new best."""
        results: dict[str, Any] = dict(self.evaluate(model), global_step=step)
        value = results[self.task.metric_key]
        if _better(value, self.best):
            self.best, self.best_step = value, step
            _copy_checkpoint(prefix, os.path.join(self.run.output_dir, BEST_CHECKPOINT))
        logging.info("***** Eval results at step %d *****\n%s", step,
                     "\n".join(f"  {key} = {results[key]}" for key in sorted(results)))
        metrics.write_eval_results(self.results_path, results, best=self.best,
                                   append=tf.io.gfile.exists(self.results_path) and self.last_step >= 0)
        self.last_step = step
        with tf.io.gfile.GFile(self.trial_path, "w") as f:
            f.write(f"{step}:{self.best_step}:{self.best}")
        self.history.append(results)
        return results

    def evaluate_saved(self, model: AlbertClassifier) -> list[dict[str, Any]]:
        """`--do_eval` without training: every `model.ckpt-<step>` in `output_dir` newer than the
        last recorded step, in step order."""
        found = checkpoints.step_checkpoints(self.run.output_dir)
        if not found:
            raise FileNotFoundError(f"--do_eval: no model.ckpt-<step> checkpoint in {self.run.output_dir}. "
                                    "Train first (--do_train) or point --output_dir at a training run.")
        pending = [(step, prefix) for step, prefix in found if step > self.last_step]
        if not pending:
            logging.info("Every checkpoint in %s is already evaluated (%s).", self.run.output_dir, self.trial_path)
        for step, prefix in pending:
            checkpoints.load_original_checkpoint(model, prefix)
            self.record(model, step, prefix)
        return self.history


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


def _copy_checkpoint(source: str, target: str) -> None:
    """Copies the files of checkpoint prefix `source` to prefix `target` (replacing it)."""
    for path in tf.io.gfile.glob(target + ".*"):
        tf.io.gfile.remove(path)
    for path in tf.io.gfile.glob(source + ".*"):
        tf.io.gfile.copy(path, target + path[len(source):], overwrite=True)
    logging.info("Copied %s to %s", source, target)


# ------------------------------------------------------------------------------------ predict
def predict(run: ClassifierRun, task: _Task, strategy: tf.distribute.Strategy, model: AlbertClassifier
            ) -> dict[str, np.ndarray]:
    """Rebuilds `predict.tf_record` from the test set(s), predicts with `model` and writes
    `test_results{,_mm}.tsv` and `submit_results{,_mm}.tsv`. Returns the probabilities by file suffix."""
    results = {}
    for suffix, processor in task.predict_processors():
        examples = processor.get_test_examples(run.data_dir)
        path = os.path.join(run.output_dir, f"predict{suffix}.tf_record")
        file_based_convert_examples_to_features(examples, task.labels, run.max_seq_length, task.tokenizer, path,
                                                task.is_regression)
        logging.info("***** Predicting %d examples of %s (batch %d) *****", len(examples),
                     processor.split_path(run.data_dir, "test"), run.predict_batch_size)
        outputs = training.predict(strategy, model, task.dataset(path, run.predict_batch_size),
                                   output_fn=lambda _, out: head_outputs(out["logits"], task.is_regression),
                                   jit_compile=run.jit_compile)
        metrics.write_test_results(os.path.join(run.output_dir, f"test_results{suffix}.tsv"),
                                   outputs["probabilities"])
        metrics.write_submit_results(os.path.join(run.output_dir, f"submit_results{suffix}.tsv"),
                                     [e.guid for e in examples], outputs["predictions"], task.labels)
        results[suffix] = outputs["probabilities"]
    return results


# ------------------------------------------------------------------------------------ export
def export_classifier(model: AlbertClassifier, export_dir_base: str, *, task_name: str, max_seq_length: int,
                      spm_model_file: Optional[str] = None, do_lower_case: bool = True,
                      threshold: Optional[float] = None) -> dict[str, str]:
    """Exports a GLUE classifier as SavedModels (see `albert_tf.export`).

    `export_dir_base/<timestamp>/`, as the original: `serving_default(serialized_example)` ->
    `probabilities` float32 [None, C] ([None, 1] raw score for sts-b), `predictions` ([None] int32
    label ids; float32 scores for sts-b) and, when `threshold` is given, a constant float32 `threshold`.
    `export_dir_base/<timestamp>_text/` (only with `spm_model_file`): `serving_default(text_a)` for
    cola / sst-2, `serving_default(text_a, text_b)` for pair tasks -> the same outputs plus `labels`
    (string [None], the predicted label) for classification tasks.

    Returns:
      {"": original-style SavedModel dir, "_text": raw-text SavedModel dir (when exported)}.
    """
    processor = glue.get_processor(task_name)
    outputs_fn = functools.partial(head_outputs, is_regression=processor.is_regression)
    modules: dict[str, Any] = {export.EXAMPLES: export.ExampleServingModule(model, max_seq_length, outputs_fn,
                                                                           threshold)}
    if spm_model_file:
        modules[export.TEXT] = export.TextServingModule(
            model, outputs_fn, spm_model_file, do_lower_case, max_seq_length,
            text_inputs=("text_a",) if processor.name in SINGLE_SENTENCE_TASKS else ("text_a", "text_b"),
            label_strings=None if processor.is_regression else processor.get_labels(), threshold=threshold)
    else:
        logging.warning("No --spm_model_file: the raw-text SavedModel is not exported.")
    return export.export_saved_models(modules, export_dir_base)


def export_checkpoint(albert_config_file: str, task_name: str, export_dir: str, *,
                      output_dir: Optional[str] = None, init_checkpoint: Optional[str] = None,
                      max_seq_length: int = 512, spm_model_file: Optional[str] = None, do_lower_case: bool = True,
                      threshold: Optional[float] = None) -> dict[str, str]:
    """Exports a fine-tuned classifier without training (`export_savedmodel.py`).

    The checkpoint is found as for prediction (`serving_checkpoint(output_dir, init_checkpoint)`);
    the SavedModels are those of `export_classifier`, whose result is returned.
    """
    config = AlbertConfig.from_json_file(albert_config_file)
    _check_seq_length(max_seq_length, config, albert_config_file)
    processor = glue.get_processor(task_name)
    model = AlbertClassifier(config, len(processor.get_labels()))
    prefix = serving_checkpoint(output_dir, init_checkpoint)
    load_finetuned(model, prefix)
    logging.info("Exporting %s", prefix)
    return export_classifier(model, export_dir, task_name=processor.name, max_seq_length=max_seq_length,
                             spm_model_file=spm_model_file, do_lower_case=do_lower_case, threshold=threshold)


def _check_seq_length(max_seq_length: int, config: AlbertConfig, config_file: str) -> None:
    if max_seq_length > config.max_position_embeddings:
        raise ValueError(f"--max_seq_length={max_seq_length} exceeds max_position_embeddings="
                         f"{config.max_position_embeddings} of {config_file}; use a smaller --max_seq_length.")
    if max_seq_length < 3:
        raise ValueError(f"--max_seq_length={max_seq_length} is too small: [CLS] A [SEP] B [SEP] needs >= 3.")


# ------------------------------------------------------------------------------------ the run
def validate(run: ClassifierRun) -> AlbertConfig:
    """Checks the settings (each error names the flag and the fix) and returns the model config."""
    if run.albert_hub_module_handle:
        raise ValueError("--albert_hub_module_handle: loading TF-Hub modules is not supported yet. Download the "
                         "model and pass --albert_config_file and --init_checkpoint (its model.ckpt-best) instead.")
    if not run.albert_config_file:
        raise ValueError("--albert_config_file is required (the albert_config.json of the model).")
    if not (run.do_train or run.do_eval or run.do_predict or run.export_dir):
        raise ValueError("Nothing to do: set at least one of --do_train, --do_eval, --do_predict, --export_dir.")
    glue.canonical_task_name(run.task_name)
    if not (run.spm_model_file or run.vocab_file):
        raise ValueError("Set --spm_model_file (SentencePiece, e.g. 30k-clean.model) or --vocab_file (WordPiece).")
    config = AlbertConfig.from_json_file(run.albert_config_file)
    _check_seq_length(run.max_seq_length, config, run.albert_config_file)
    if run.do_train and not glue.get_processor(run.task_name).has_split("train"):
        raise ValueError(f"--task_name={run.task_name} has no training set: fine-tune on mnli, then predict it "
                         "with --init_checkpoint=<the MNLI output_dir>.")
    if not run.output_dir:
        raise ValueError("--output_dir is required.")
    return config


def run_classifier(run: ClassifierRun, strategy: Optional[tf.distribute.Strategy] = None) -> dict[str, Any]:
    """Trains / evaluates / predicts / exports as `run` asks (see the module docstring).

    Returns:
      `{"train": Trainer summary or {}, "eval": [results per evaluated checkpoint], "predict":
      {file suffix: probabilities}, "export": {suffix: SavedModel dir} (empty without export_dir)}`.
    """
    config = validate(run)
    strategy = strategy or distribute.get_strategy("one_device")
    task = _Task(run)
    tf.io.gfile.makedirs(run.output_dir)
    multi_worker = distribute.is_multi_worker(strategy)
    evaluator = CheckpointEvaluator(run, task, strategy) if run.do_eval and not multi_worker else None
    if run.do_eval and multi_worker:
        logging.warning("--do_eval is skipped under a multi-worker strategy: evaluate afterwards in a "
                        "single-worker process with --do_eval and without --do_train.")

    def new_model() -> AlbertClassifier:
        return AlbertClassifier(config, len(task.labels), dropout_rate=run.classifier_dropout)

    summary: dict[str, Any] = {}
    model: Optional[AlbertClassifier] = None
    if run.do_train:
        trainer = _trainer(run, task, strategy, new_model, evaluator)
        summary = trainer.train()
        model = trainer.model
    elif evaluator is not None:
        with strategy.scope():
            model = new_model()
        evaluator.evaluate_saved(model)

    predictions: dict[str, np.ndarray] = {}
    saved_models: dict[str, str] = {}
    if run.do_predict or run.export_dir:
        if model is None:
            with strategy.scope():
                model = new_model()
        prefix = serving_checkpoint(run.output_dir, run.init_checkpoint)
        logging.info("Predicting/exporting with %s", prefix)
        load_finetuned(model, prefix)
        if run.do_predict:
            predictions = predict(run, task, strategy, model)
        if run.export_dir:
            threshold = None if math.isnan(run.threshold_to_export) else run.threshold_to_export
            saved_models = export_classifier(model, run.export_dir, task_name=task.name,
                                            max_seq_length=run.max_seq_length, spm_model_file=run.spm_model_file,
                                            do_lower_case=run.do_lower_case, threshold=threshold)
    return {"train": summary, "eval": evaluator.history if evaluator else [], "predict": predictions,
            "export": saved_models}


def _trainer(run: ClassifierRun, task: _Task, strategy: tf.distribute.Strategy,
             model_fn: Callable[[], AlbertClassifier], evaluator: Optional[CheckpointEvaluator]) -> training.Trainer:
    """The training loop; each save also writes `model.ckpt-<step>` and evaluates when asked."""
    train_file = task.cached_features(task.processor, "train")

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        return classifier_dataset(train_file, run.max_seq_length, run.train_batch_size, is_training=True,
                                  is_regression=task.is_regression, input_context=ctx)

    def on_checkpoint(step: int, _path: str) -> None:
        prefix = checkpoints.save_original_checkpoint(trainer.model, os.path.join(run.output_dir, "model.ckpt"),
                                                      step)
        if evaluator is not None:
            evaluator.record(trainer.model, step, prefix)
        checkpoints.prune_checkpoints(run.output_dir, run.keep_checkpoint_max)

    logging.info("***** Training %s: batch %d, %d steps (%d warmup), %s lr %g *****", task.name,
                 run.train_batch_size, run.train_step, run.warmup_step, run.optimizer, run.learning_rate)
    trainer = training.Trainer(
        strategy=strategy, model_fn=model_fn,
        optimizer_fn=lambda: create_optimizer(run.learning_rate, run.train_step, run.warmup_step, run.optimizer),
        dataset_fn=dataset_fn, loss_fn=loss_fn_for(task.is_regression),
        metrics=None if task.is_regression else {"accuracy": _train_accuracy},
        global_batch_size=run.train_batch_size, num_train_steps=run.train_step, model_dir=run.output_dir,
        steps_per_loop=run.steps_per_loop, log_steps=run.log_steps,
        save_checkpoints_steps=run.save_checkpoints_steps, keep_checkpoint_max=max(run.keep_checkpoint_max, 1),
        jit_compile=run.jit_compile, write_summaries=run.write_summaries,
        init_fn=(lambda model: _initialize(model, run.init_checkpoint)) if run.init_checkpoint else None,
        on_checkpoint=on_checkpoint)
    return trainer
