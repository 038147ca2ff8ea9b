"""The one driver every task script calls: `run(task, strategy)`.

In order, as the settings ask:
1. **validate** (cheap, before any expensive work): something to do, settings in range, the task's own
   checks (`Task.validate`), the output directory writable and, when it holds an earlier run, that run's
   settings compatible (`core.run_dir`: otherwise stop and say to pick a new `--output_dir` or pass
   `--overwrite_output_dir`), the init checkpoint present and matching the model (shapes checked without
   loading, before any feature is tokenized);
2. **train** (`do_train`): the shared `Trainer`; at every save the TF2 training state
   (`<output_dir>/tf2_checkpoints/`, for resuming), the official TF1 layout `model.ckpt-<step>`,
   evaluation when `do_eval`, then pruning to `keep_checkpoint_max` (0 keeps every checkpoint). A rerun
   of the same command resumes from the last save; a save the interrupted run did not finish (TF1 file
   or evaluation) is completed first;
3. **evaluate** saved checkpoints when not training (`do_eval` alone): every `model.ckpt-<step>` not yet
   in the record, in step order; with none, the newest TF2 training state, else `init_checkpoint`. With
   `continuous_eval` (a side-car evaluator beside a training job on the same `output_dir`): every new
   `model.ckpt-<step>` as the trainer writes it, until the final step is evaluated or no new checkpoint
   came for `eval_timeout` seconds; each is copied to a private snapshot first, so a checkpoint the
   trainer prunes meanwhile is skipped with a log line, never half-read;
4. **best checkpoint**: `core.best_checkpoint` keeps `eval_results.txt`, `best_trial.txt` and
   `model.ckpt-best`; a resumed run never replaces a better best;
5. **predict** (`do_predict`) and **export** (`export_dir`) with `model.ckpt-best`, else the newest
   `model.ckpt-<step>`, else a fine-tuned `init_checkpoint`.
Evaluation runs through one `Evaluator` per run, so its step is traced (and XLA-compiled) once.

Every strategy runs every step, multi-worker included: all workers train, evaluate and predict together
(the evaluator pads to whole global batches), the chief alone writes checkpoints, records, model.ckpt-best
and exports, and the other workers write their task files into a scratch folder (`Task.write_dir`). What
to evaluate is decided by the chief (`distribute.chief_value`), so every worker runs the same steps.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any, Optional

import tensorflow as tf
import tf_keras as keras
from absl import logging

from albert_tf.checkpoints import loading, source as model_source, tf1 as checkpoints
from albert_tf.checkpoints.source import ModelSource
from albert_tf.core import context as run_context, distribute, run_dir
from albert_tf.core.best_checkpoint import (BEST_CHECKPOINT, BEST_TRIAL, BestCheckpointTracker,
                                            best_checkpoint_results, copy_checkpoint, read_best_trial)
from albert_tf.core.evaluator import Evaluator, checkpoint_global_step
from albert_tf.core.task import EvalSet, ServingCheckpoint, Task
from albert_tf.core.trainer import Trainer
from albert_tf.optimization import create_optimizer

TF1_PREFIX = "model.ckpt"
# How often the side-car evaluator (`continuous_eval`) looks for a new checkpoint.
POLL_SECONDS = 2.0


def validate_settings(task: Task) -> None:
    """The checks every task shares (each error names the setting and the fix)."""
    s = task.settings
    if not s.output_dir:
        raise ValueError("--output_dir is required.")
    if not (s.do_train or s.do_eval or s.do_predict or s.export_dir):
        raise ValueError("Nothing to do: set at least one of --do_train, --do_eval, --do_predict, --export_dir.")
    for name in ("train_batch_size", "eval_batch_size", "predict_batch_size", "save_checkpoints_steps",
                 "steps_per_loop", "gradient_accumulation_steps"):
        value = getattr(s, name)
        if value is None or value < 1:
            raise ValueError(f"--{name} must be >= 1, got {value}.")
    if s.continuous_eval and (s.do_train or not s.do_eval):
        raise ValueError("--continuous_eval is the side-car evaluator: pass it with --do_eval and without --do_train "
                         "(and the training job's other flags), beside the training job.")
    if s.eval_timeout <= 0:
        raise ValueError(f"--eval_timeout must be > 0 seconds, got {s.eval_timeout}.")
    if s.keep_checkpoint_max < 0:
        raise ValueError(f"--keep_checkpoint_max must be >= 0 (0 keeps every checkpoint), got {s.keep_checkpoint_max}.")
    if s.export_dir:
        from albert_tf.export import deploy  # the export flags: known names, extras installed

        deploy.check_export_settings(s.export_formats, s.export_quantize)


def finetuned_checkpoint(directory: str) -> Optional[str]:
    """`directory/model.ckpt-best`, else its newest `model.ckpt-<step>`, else None."""
    best = os.path.join(directory, BEST_CHECKPOINT)
    if tf.io.gfile.exists(best + ".index"):
        return best
    steps = checkpoints.step_checkpoints(directory)
    return steps[-1][1] if steps else None


def serving_checkpoint(task: Task, head_names: list[str]) -> ModelSource:
    """The checkpoint to predict and export with: the best (else newest) of `output_dir`, else a
    fine-tuned `init_checkpoint` (a prefix, a Hugging Face directory, or a directory searched the same
    way), one that holds the task's head variables."""
    s = task.settings
    found = finetuned_checkpoint(s.output_dir) if s.output_dir else None
    if found:
        return model_source.resolve_tf1(found)
    init = task.context.init_source
    if init is not None:
        candidate = init
        if init.kind == model_source.TF1 and tf.io.gfile.isdir(init.given):
            in_dir = finetuned_checkpoint(init.given)
            candidate = model_source.resolve_tf1(in_dir) if in_dir else init
        if candidate.has_variables(head_names):
            return candidate
        raise ValueError(f"--init_checkpoint={s.init_checkpoint} is not fine-tuned for {task.name} (it lacks the "
                         f"head variables, e.g. {head_names[0]}). Fine-tune first (--do_train), or pass a "
                         "checkpoint fine-tuned on this task.")
    raise ValueError(f"No fine-tuned checkpoint to predict or export with: --output_dir={s.output_dir} has no "
                     f"{BEST_CHECKPOINT} or {TF1_PREFIX}-<step>, and no --init_checkpoint was given. Fine-tune "
                     "first with --do_train.")


def serving_info(output_dir: str, source: ModelSource) -> ServingCheckpoint:
    """What the run recorded about the serving checkpoint `source` (see `ServingCheckpoint`)."""
    trial = os.path.join(output_dir, BEST_TRIAL)
    return ServingCheckpoint(path=source.location, step=source.global_step(),
                             best_value=read_best_trial(trial)[2] if tf.io.gfile.exists(trial) else None,
                             best_record=best_checkpoint_results(output_dir))


class _Evaluation:
    """Evaluates the model's current weights on the task's eval sets and records the result (on every
    worker together; the chief alone writes the record)."""

    def __init__(self, task: Task, strategy: tf.distribute.Strategy, model: keras.Model):
        self.task = task
        self.strategy = strategy
        self.model = model
        self.chief = distribute.is_chief(strategy)
        self.tracker = BestCheckpointTracker(task.settings.output_dir, task.metric_key, task.higher_is_better)
        self.evaluator = Evaluator(strategy, model, task.settings.eval_jit_compile)
        # Built now, before any training: a missing or malformed dev set fails at once, not at the first save.
        self._sets: list[EvalSet] = task.eval_sets()

    def __call__(self, step: int, prefix: Optional[str]) -> dict[str, Any]:
        collected = {}
        for eval_set in self._sets:
            logging.info("Evaluating step %d on %s%s", step, self.task.name, eval_set.name)
            collected[eval_set.name] = self.evaluator.predict(eval_set.dataset, self.task.validation_outputs,
                                                              eval_set.num_steps)
        return self.tracker.record(step, self.task.reduce_validation(collected, step), prefix, write=self.chief)

    def pending(self, directory: str) -> list[tuple[int, str]]:
        """The `model.ckpt-<step>` of `directory` not yet in the chief's record, in step order."""
        self.tracker.last_step = distribute.chief_value(self.strategy, self.tracker.last_step)
        return [(step, prefix) for step, prefix in checkpoints.step_checkpoints(directory)
                if not self.tracker.is_evaluated(step)]

    def evaluate_files(self, pending: list[tuple[int, str]]) -> None:
        for step, prefix in pending:
            loading.load_original_checkpoint(self.model, prefix)
            self(step, prefix)

    def evaluate_snapshot(self, step: int, prefix: str) -> bool:
        """Evaluates checkpoint `prefix` from a private copy of its files (the trainer may prune it meanwhile).
        Returns False, with a log line, when it vanished before it could be read."""
        snapshot_dir = tempfile.mkdtemp(prefix="albert_tf_eval_")
        snapshot = os.path.join(snapshot_dir, os.path.basename(prefix))
        try:
            try:
                copy_checkpoint(prefix, snapshot)
                loading.load_original_checkpoint(self.model, snapshot)
            except (tf.errors.OpError, FileNotFoundError, checkpoints.CorruptCheckpointError):
                if tf.io.gfile.exists(prefix + ".index") and tf.io.gfile.glob(prefix + ".data-*"):
                    raise  # still complete where it is: really unreadable
                logging.warning("Skipping %s: it vanished while it was copied (pruned by the training job's "
                                "--keep_checkpoint_max).", prefix)
                return False
            self(step, snapshot)
            return True
        finally:
            shutil.rmtree(snapshot_dir, ignore_errors=True)


def _check_init_checkpoint(task: Task, model: keras.Model) -> None:
    """Fails now, before features are built, when `--init_checkpoint` cannot initialise `model`."""
    if task.settings.init_checkpoint and task.settings.do_train:
        loading.initialize_from_checkpoint(model, task.context.init_source,
                                           init_from_group0=task.settings.init_from_group0, dry_run=True)


def _train(task: Task, strategy: tf.distribute.Strategy, model: keras.Model,
           evaluation: Optional[_Evaluation]) -> dict[str, Any]:
    s = task.settings

    chief = distribute.is_chief(strategy)

    def save_and_evaluate(step: int, _path: Optional[str] = None) -> None:
        # Called on every worker: the chief writes, all evaluate together.
        prefix = None
        if chief:
            prefix = checkpoints.save_original_checkpoint(trainer.model, os.path.join(s.output_dir, TF1_PREFIX), step)
        if evaluation is not None:
            evaluation(step, prefix)
        if chief:
            checkpoints.prune_checkpoints(s.output_dir, s.keep_checkpoint_max)

    logging.info("***** Training %s *****", task.train_log_summary())
    trainer = Trainer(
        strategy=strategy, model_fn=lambda: model,
        optimizer_fn=lambda: create_optimizer(s.learning_rate, task.num_train_steps(), task.num_warmup_steps(),
                                              s.optimizer, s.poly_power, s.start_warmup_step),
        dataset_fn=task.train_dataset, loss_fn=task.loss, metrics=task.train_metrics(),
        global_batch_size=s.train_batch_size, num_train_steps=task.num_train_steps(), model_dir=s.output_dir,
        steps_per_loop=s.steps_per_loop, log_steps=s.log_steps, save_checkpoints_steps=s.save_checkpoints_steps,
        keep_checkpoint_max=max(s.keep_checkpoint_max, 1), jit_compile=s.jit_compile,
        write_summaries=s.write_summaries, gradient_accumulation_steps=s.gradient_accumulation_steps,
        init_fn=(lambda m: task.initialize(m, task.context.init_source)) if s.init_checkpoint else None,
        on_checkpoint=save_and_evaluate)
    if evaluation is not None:
        # Saves of an interrupted run that were written but not evaluated: evaluate them before the
        # restore below overwrites the weights.
        evaluation.evaluate_files(evaluation.pending(s.output_dir))
    if trainer.restore_or_initialize():
        step = trainer.global_step
        unfinished = not tf.io.gfile.exists(os.path.join(s.output_dir, f"{TF1_PREFIX}-{step}.index")) and (
            evaluation is None or not evaluation.tracker.is_evaluated(step))
        if distribute.chief_value(strategy, int(unfinished)):
            logging.info("Completing the save of step %d that the interrupted run did not finish.", step)
            save_and_evaluate(step)
    return trainer.train()


def _evaluate_saved(task: Task, evaluation: _Evaluation) -> None:
    """`--do_eval` without training (see the module docstring)."""
    s = task.settings
    found = checkpoints.step_checkpoints(s.output_dir)
    if found:
        pending = evaluation.pending(s.output_dir)
        if not pending:
            logging.info("Every checkpoint in %s is already evaluated (%s).", s.output_dir,
                         evaluation.tracker.trial_path)
        evaluation.evaluate_files(pending)
        return
    latest = tf.train.latest_checkpoint(os.path.join(s.output_dir, model_source.TF2_STATE_SUBDIR))
    if latest:
        tf.train.Checkpoint(model=evaluation.model).restore(latest).expect_partial().assert_existing_objects_matched()
        evaluation(checkpoint_global_step(latest) or 0, None)
    elif s.init_checkpoint:
        report = loading.initialize_from_checkpoint(evaluation.model, task.context.init_source,
                                                    init_from_group0=s.init_from_group0)
        evaluation(checkpoint_global_step(report.path) or 0, None)
    else:
        raise FileNotFoundError(f"--do_eval: no {TF1_PREFIX}-<step> or training state in {s.output_dir} and no "
                                "--init_checkpoint. Train first (--do_train) or point --output_dir at a training run.")


def _evaluate_continuously(task: Task, evaluation: _Evaluation) -> None:
    """The side-car evaluator (`--continuous_eval`, see the module docstring)."""
    s = task.settings
    final = task.num_train_steps()
    done = evaluation.tracker.last_step
    skipped: set[int] = set()
    waiting_since = time.time()
    logging.info("Waiting for checkpoints of %s up to step %d (timeout %ss without a new one).", s.output_dir,
                 final, s.eval_timeout)
    while done < final:
        fresh = [(step, prefix) for step, prefix in evaluation.pending(s.output_dir) if step not in skipped]
        for step, prefix in fresh:
            if not evaluation.evaluate_snapshot(step, prefix):
                skipped.add(step)
            done = max(done, step)
            waiting_since = time.time()
        if done >= final:
            break
        if distribute.chief_value(evaluation.strategy, int(time.time() - waiting_since > s.eval_timeout)):
            logging.warning("No new checkpoint in %s for %ss (--eval_timeout): stopping at step %d of %d.",
                            s.output_dir, s.eval_timeout, done, final)
            return
        time.sleep(POLL_SECONDS)
    logging.info("Evaluated up to the final step %d.", final)


def run(task: Task, strategy: Optional[tf.distribute.Strategy] = None) -> dict[str, Any]:
    """Runs `task` as its settings ask (see the module docstring).

    Returns:
      `{"train": Trainer summary ({} without training), "eval": [results per evaluated checkpoint],
      "predict": what `Task.predict` returned (None without prediction), "export": {kind: SavedModel dir}}`.
    """
    task.settings = task.resolve_settings()
    s = task.settings
    validate_settings(task)
    strategy = strategy or distribute.get_strategy("one_device")
    if task.context is None:  # the model source, encoder, config and tokenizer, resolved once
        task.context = run_context.build(s, strategy)
    task.validate()
    if s.do_train and task.num_train_steps() < 1:
        raise ValueError(f"{task.name}: the number of training steps must be >= 1, got {task.num_train_steps()}.")
    if s.do_train or s.do_eval:  # the run writes (and resumes) training state and records in output_dir
        run_dir.prepare_output_dir(s.output_dir, task.compatibility_facts(), overwrite=s.overwrite_output_dir)
    else:
        run_dir.check_writable_dir(s.output_dir)
    chief = distribute.is_chief(strategy)
    if not chief:  # computes every output with the chief; only the chief's files count
        task.scratch_dir = tempfile.mkdtemp(prefix="albert_tf_worker_")
    try:
        with distribute.explain_lost_workers(strategy, s.output_dir):
            return _run(task, strategy, chief)
    finally:
        if task.scratch_dir:
            shutil.rmtree(task.scratch_dir, ignore_errors=True)
            task.scratch_dir = None


def _run(task: Task, strategy: tf.distribute.Strategy, chief: bool) -> dict[str, Any]:
    s = task.settings
    with strategy.scope():
        model = task.build_model(task.context.hub_encoder)
    _check_init_checkpoint(task, model)
    evaluation = _Evaluation(task, strategy, model) if s.do_eval else None
    history = evaluation.tracker.previous_results() if evaluation is not None and not s.do_train else []
    if history:
        logging.info("Evaluation history of %s: %d checkpoints, best %s = %s at step %d.", s.output_dir,
                     len(history), task.metric_key, evaluation.tracker.best, evaluation.tracker.best_step)

    summary: dict[str, Any] = {}
    if s.do_train:
        summary = _train(task, strategy, model, evaluation)
    elif evaluation is not None and s.continuous_eval:
        _evaluate_continuously(task, evaluation)
    elif evaluation is not None:
        _evaluate_saved(task, evaluation)

    predictions, saved_models = None, {}
    if s.do_predict or s.export_dir:
        # Every worker reads the chief's record: wait until the chief has written the last evaluation's best
        # checkpoint (else another worker could predict with the previous best; found in a 2-worker run).
        distribute.barrier(strategy)
        source = serving_checkpoint(task, sorted(model.head_variables()))
        logging.info("Predicting/exporting with %s", source.location)
        # A fine-tuned Hugging Face model has every head; a TF1 checkpoint is loaded strictly.
        if source.kind == model_source.TRANSFORMERS:
            loading.initialize_from_checkpoint(model, source)
        else:
            loading.load_original_checkpoint(model, source)
        serving = serving_info(s.output_dir, source)
        if s.do_predict:
            runner = Evaluator(strategy, model, s.eval_jit_compile)
            runner.checkpoint = serving
            predictions = task.predict(model, runner)
        if s.export_dir and chief:
            saved_models = task.export(model, s.export_dir, serving)
    return {"train": summary, "eval": evaluation.tracker.history if evaluation else [], "predict": predictions,
            "export": saved_models}
