"""Generic distributed training, evaluation and prediction loops (the TF2 stand-in for TPUEstimator).

Nothing here knows about ALBERT: a task supplies a model factory, an optimizer factory, a per-replica
dataset function, a loss function and named metric functions.

Checkpoint layout under ``model_dir``:

- ``tf2_checkpoints/ckpt-<step>.{index,data-*}`` plus that folder's own ``checkpoint`` state file: the full
  training state (model, optimizer slots, ``optimizer.iterations`` = the global step, and the current
  learning rate). Training resumes from the newest one. They live in a sub-folder because
  ``tf.train.CheckpointManager`` always names its state file ``checkpoint``, which would clash with the
  state file of the original TF1-layout ``model.ckpt-<step>`` checkpoints that the task scripts write at
  the top of ``model_dir`` (see ``Trainer(on_checkpoint=...)``).
- ``summaries/train/``: TensorBoard scalars (chief only).

Loss scaling across replicas: ``loss_fn`` returns the mean loss of its replica's batch; the trainer
divides it by the number of replicas before differentiating and the optimizer sums the gradients over
replicas, so the update is the gradient of the mean over replicas. For a loss that is a mean over
equally-sized per-replica batches this is exactly the one-device gradient for the same global batch.
Gradients are clipped (by the optimizer) after that cross-replica sum, i.e. on the global gradient.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any, Callable, Mapping, Optional, Union

import tensorflow as tf
import tf_keras as keras
from absl import logging

from albert_tf.checkpoints.source import TF2_STATE_SUBDIR
from albert_tf.core import distribute
from albert_tf.core.evaluator import ensure_built, to_float32
from albert_tf.data.parallel import format_duration

CHECKPOINT_NAME = "ckpt"
SUMMARY_SUBDIR = os.path.join("summaries", "train")

# A nested structure (dict, list, tuple) of tensors: one batch of features, or the model's outputs.
Nested = Any
DatasetFn = Callable[[tf.distribute.InputContext], tf.data.Dataset]
LossFn = Callable[[Nested, Nested], tf.Tensor]
# Returns per-example values, or (values, weights); the metric is their weighted mean over all examples.
MetricFn = Callable[[Nested, Nested], Union[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]]


class _WeightedMeans:
    """One ``keras.metrics.Mean`` per named metric function; create under ``strategy.scope()``."""

    def __init__(self, metric_fns: Mapping[str, MetricFn]):
        self._fns = dict(metric_fns)
        self._means = {name: keras.metrics.Mean(name=name) for name in self._fns}

    def update(self, features: Nested, outputs: Nested) -> None:
        """Adds one replica batch (called inside ``strategy.run``)."""
        for name, fn in self._fns.items():
            result = fn(features, outputs)
            values, weights = result if isinstance(result, tuple) else (result, None)
            self._means[name].update_state(values, sample_weight=weights)

    def results(self) -> dict[str, float]:
        """Current weighted means over every replica and step since the last reset."""
        return {name: float(mean.result()) for name, mean in self._means.items()}

    def reset(self) -> None:
        for mean in self._means.values():
            mean.reset_state()


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate the optimizer applied at its latest step (its schedule at step 0 before any)."""
    lr = optimizer.learning_rate
    if callable(lr):  # A bare schedule (legacy optimizers): evaluate it at the current step.
        lr = lr(optimizer.iterations)
    return float(tf.convert_to_tensor(lr))


def _next_boundary(step: int, every: int) -> int:
    """Smallest multiple of ``every`` strictly greater than ``step``."""
    return (step // every + 1) * every


class Trainer:
    """Distributed training loop with checkpoint/resume, summaries and progress logging.

    Construction builds the model and optimizer under ``strategy.scope()``; :meth:`train` restores the
    newest checkpoint in ``<model_dir>/tf2_checkpoints`` (or calls ``init_fn``) and trains until
    ``optimizer.iterations == num_train_steps``.

    Args:
      strategy: from :func:`albert_tf.core.distribute.get_strategy`.
      model_fn: ``() -> keras.Model``; called under the strategy scope. The model takes a batch of
        features (as produced by the dataset) and returns a nested structure of tensors. If it has no
        variables yet it is built by calling it on one example.
      optimizer_fn: ``() -> keras optimizer`` (e.g. ``albert_tf.optimization.create_optimizer``); called
        under the scope. Its ``iterations`` is the global step; clipping happens inside it. When the
        model computes in float16 (``mixed_float16`` policy) it is wrapped in a dynamic
        ``keras.mixed_precision.LossScaleOptimizer``.
      dataset_fn: ``(tf.distribute.InputContext) -> tf.data.Dataset`` yielding PER-REPLICA
        micro-batches of ``input_context.get_per_replica_batch_size(global_batch_size //
        gradient_accumulation_steps)`` examples (:meth:`micro_batch_size`; with no accumulation, the
        per-replica share of ``global_batch_size``); it should shard by ``input_context.input_pipeline_id``
        out of ``num_input_pipelines`` and repeat forever. The caller divides, the trainer checks: a
        batch of another static size is an error.
      loss_fn: ``(features, outputs) -> scalar``: the mean loss over the replica's batch. ``outputs`` are
        cast to float32 first.
      global_batch_size: examples per optimizer step over all replicas and micro-batches (ex/s and a
        divisibility check).
      num_train_steps: the global step to stop at.
      model_dir: output folder (checkpoints and summaries; see the module docstring).
      metrics: ``{name: fn(features, outputs) -> values | (values, weights)}``; each is logged as the
        weighted mean since the previous log line.
      steps_per_loop: train steps run inside one ``tf.function`` call; loops are also cut at checkpoint
        and log boundaries.
      log_steps: log and write summaries every this many steps; None: after every loop.
      save_checkpoints_steps: save every this many steps (and always at the end); None: only at the end.
      keep_checkpoint_max: how many TF2 checkpoints to keep.
      jit_compile: XLA-compile the training step: forward, backward, gradient accumulation and, with one
        replica in sync, the optimizer update too (one XLA program per step). With several replicas the
        cross-replica gradient sum and the update stay outside XLA (XLA cannot reach the other
        replicas' variables); the optimizer's own per-variable update is still XLA-compiled there.
      write_summaries: write TensorBoard scalars under ``<model_dir>/summaries/train``.
      init_fn: ``(model) -> None``, called once when no checkpoint exists (e.g. load an init checkpoint).
      on_checkpoint: ``(step, path) -> None``, called on every worker after every save, with the TF2
        checkpoint prefix on the chief and None on the other workers (e.g. to also write the original TF1
        layout on the chief, or to evaluate on all workers together). Its time is not counted in the
        logged steps/s, ETA and returned rates.
      gradient_accumulation_steps: k; each optimizer step runs k micro-batches of
        ``global_batch_size / k`` examples, sums their gradients (each of loss / (k * replicas)), and
        applies them once: the update of one batch of ``global_batch_size`` for a loss that is a mean
        over equally-sized micro-batches. ``optimizer.iterations`` (the global step, the learning-rate
        schedule's step, ``num_train_steps``) counts optimizer steps, not micro-batches.

    Raises:
      ValueError: inconsistent arguments (each message names the offending setting).
    """

    def __init__(
        self,
        *,
        strategy: tf.distribute.Strategy,
        model_fn: Callable[[], keras.Model],
        optimizer_fn: Callable[[], keras.optimizers.Optimizer],
        dataset_fn: DatasetFn,
        loss_fn: LossFn,
        global_batch_size: int,
        num_train_steps: int,
        model_dir: str,
        metrics: Optional[Mapping[str, MetricFn]] = None,
        steps_per_loop: int = 100,
        log_steps: Optional[int] = None,
        save_checkpoints_steps: Optional[int] = None,
        keep_checkpoint_max: int = 5,
        jit_compile: bool = False,
        write_summaries: bool = True,
        init_fn: Optional[Callable[[keras.Model], None]] = None,
        on_checkpoint: Optional[Callable[[int, Optional[str]], None]] = None,
        gradient_accumulation_steps: int = 1,
    ):
        replicas = strategy.num_replicas_in_sync
        if gradient_accumulation_steps < 1:
            raise ValueError(f"gradient_accumulation_steps must be >= 1, got {gradient_accumulation_steps}.")
        if global_batch_size < 1 or global_batch_size % (replicas * gradient_accumulation_steps):
            raise ValueError(
                f"The global batch size ({global_batch_size}, the train batch size) must be a positive "
                f"multiple of the {replicas} replicas in sync times gradient_accumulation_steps="
                f"{gradient_accumulation_steps}; change the batch size, the accumulation steps or the strategy."
            )
        for name, value in (("num_train_steps", num_train_steps), ("steps_per_loop", steps_per_loop),
                            ("keep_checkpoint_max", keep_checkpoint_max)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}.")
        for name, value in (("log_steps", log_steps), ("save_checkpoints_steps", save_checkpoints_steps)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 when set, got {value}.")
        if not model_dir:
            raise ValueError("model_dir is empty: pass the output folder.")

        self.strategy = strategy
        self.model_dir = model_dir
        self.checkpoint_dir = os.path.join(model_dir, TF2_STATE_SUBDIR)
        self.global_batch_size = global_batch_size
        self.num_train_steps = num_train_steps
        self._dataset_fn = dataset_fn
        self._loss_fn = loss_fn
        self._steps_per_loop = steps_per_loop
        self._log_steps = log_steps
        self._save_steps = save_checkpoints_steps
        self._write_summaries = write_summaries
        self._init_fn = init_fn
        self._on_checkpoint = on_checkpoint
        self._accumulation_steps = gradient_accumulation_steps
        self._is_chief = distribute.is_chief(strategy)
        self._started = False
        self._restored_from: Optional[str] = None
        # Indices into model.trainable_variables that the loss does not reach (e.g. the pooler of the
        # SQuAD models), found while tracing: they are left out of every update, as the original's
        # optimizers skipped variables without a gradient (no weight decay for them either).
        self._no_gradient: Optional[frozenset[int]] = None

        with strategy.scope():
            self.model = model_fn()
            ensure_built(strategy, self.model, dataset_fn)
            optimizer = optimizer_fn()
            self._loss_scaling = self.model.dtype_policy.compute_dtype == "float16"
            if self._loss_scaling and not isinstance(
                optimizer, keras.mixed_precision.LossScaleOptimizer
            ):
                optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            # Slots exist before any restore, so a checkpoint restores them immediately.
            self.optimizer.build(self.model.trainable_variables)
            self._train_loss = keras.metrics.Mean(name="loss")
            self._train_metrics = _WeightedMeans(metrics or {})
            # Per-replica gradient sums of the micro-batches of one step; not part of any checkpoint
            # (they are zero between steps).
            self._accumulators = [
                tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name="grad_accumulator",
                            synchronization=tf.VariableSynchronization.ON_READ,
                            aggregation=tf.VariableAggregation.SUM)
                for v in self.model.trainable_variables
            ] if gradient_accumulation_steps > 1 else []

        # With one device the input iterator is part of the training state: a resumed run reads on exactly
        # where the interrupted one stopped (same shuffle order), so it ends with the same weights as an
        # uninterrupted run. Distributed iterators cannot be checkpointed: there a resumed run skips the
        # batches the steps so far consumed (`_distributed_iterator`), which continues the same stream when
        # `dataset_fn` is deterministic (seeded shuffles, ordered reads).
        self._iterator = None
        state = {"model": self.model, "optimizer": self.optimizer}
        if isinstance(strategy, tf.distribute.OneDeviceStrategy):
            with tf.device(strategy.extended.worker_devices[0]):
                self._iterator = iter(dataset_fn(tf.distribute.InputContext()))
            state["data"] = self._iterator
        self._checkpoint = tf.train.Checkpoint(**state)
        self._manager = (
            tf.train.CheckpointManager(
                self._checkpoint,
                self.checkpoint_dir,
                max_to_keep=keep_checkpoint_max,
                checkpoint_name=CHECKPOINT_NAME,
            )
            if self._is_chief
            else None
        )
        # XLA covers the optimizer update only where every variable lives on this replica's device.
        jit_update = jit_compile and replicas == 1
        self._micro_step_fn = tf.function(self._micro_step, jit_compile=True) if jit_update else self._micro_step
        self._apply_fn = (tf.function(self._apply_accumulated, jit_compile=True) if jit_update
                          else self._apply_accumulated)
        self._forward_backward_fn = (
            tf.function(self._forward_backward, jit_compile=True) if jit_compile and not jit_update
            else self._forward_backward
        )
        self._train_loop_fn = tf.function(self._train_loop)

    @staticmethod
    def micro_batch_size(global_batch_size: int, gradient_accumulation_steps: int) -> int:
        """Examples per micro-batch over all replicas: what ``dataset_fn`` batches for (per replica:
        ``input_context.get_per_replica_batch_size`` of it)."""
        return global_batch_size // gradient_accumulation_steps

    @property
    def global_step(self) -> int:
        """``optimizer.iterations`` as an int."""
        return int(self.optimizer.iterations.numpy())

    def _forward_backward(self, features: Nested) -> tuple[tf.Tensor, list[tf.Tensor], Nested]:
        """Per-replica loss, gradients of loss / (replicas * k) (unscaled again under loss scaling), outputs.

        Checks (while tracing) that the micro-batch has the size ``dataset_fn`` was asked for.
        """
        batch = tf.nest.flatten(features)[0].shape[0]
        expected = self.micro_batch_size(self.global_batch_size, self._accumulation_steps) // (
            self.strategy.num_replicas_in_sync)
        if batch is not None and batch != expected:
            raise ValueError(
                f"dataset_fn yields per-replica batches of {batch} examples, expected {expected}: the global "
                f"batch {self.global_batch_size} / {self._accumulation_steps} gradient_accumulation_steps / "
                f"{self.strategy.num_replicas_in_sync} replicas. Batch with input_context."
                "get_per_replica_batch_size(Trainer.micro_batch_size(global_batch_size, "
                "gradient_accumulation_steps)).")
        with tf.GradientTape() as tape:
            outputs = to_float32(self.model(features, training=True))
            loss = tf.cast(self._loss_fn(features, outputs), tf.float32)
            scaled_loss = loss / (self.strategy.num_replicas_in_sync * self._accumulation_steps)
            if self._loss_scaling:
                scaled_loss = self.optimizer.get_scaled_loss(scaled_loss)
        variables = self.model.trainable_variables
        grads = tape.gradient(scaled_loss, variables)
        if self._loss_scaling:
            grads = self.optimizer.get_unscaled_gradients(grads)
        self._note_variables_without_gradient(grads)
        return loss, grads, outputs

    def _note_variables_without_gradient(self, grads: list[Optional[tf.Tensor]]) -> None:
        """Records (while tracing) which variables get no gradient and says so once."""
        no_gradient = frozenset(i for i, g in enumerate(grads) if g is None)
        if self._no_gradient is None:
            self._no_gradient = no_gradient
            if no_gradient:
                names = [self.model.trainable_variables[i].name for i in sorted(no_gradient)]
                logging.info("%d trainable variable(s) get no gradient from this task's loss and are not "
                             "updated (as in the original): %s", len(names), ", ".join(names))

    def _apply(self, grads: list[Optional[tf.Tensor]]) -> None:
        # apply_gradients sums the gradients over replicas, then clips and updates.
        self.optimizer.apply_gradients(
            [(g, v) for i, (g, v) in enumerate(zip(grads, self.model.trainable_variables))
             if i not in self._no_gradient])

    def _micro_step(self, features: Nested) -> tuple[tf.Tensor, Nested]:
        """One micro-batch: gradients, then the update (k == 1) or their sum into the accumulators."""
        loss, grads, outputs = self._forward_backward_fn(features)
        if self._accumulation_steps == 1:
            self._apply(grads)
        else:
            for accumulator, grad in zip(self._accumulators, grads):
                if grad is not None:
                    accumulator.assign_add(tf.convert_to_tensor(grad))  # embedding gradients arrive sparse
        return loss, outputs

    def _apply_accumulated(self) -> None:
        """Applies the accumulated gradients of one step and zeroes the accumulators."""
        self._apply([tf.identity(accumulator) for accumulator in self._accumulators])
        for accumulator in self._accumulators:
            accumulator.assign(tf.zeros_like(accumulator))

    def _replica_micro_step(self, features: Nested) -> None:
        loss, outputs = self._micro_step_fn(features)
        self._train_loss.update_state(loss)
        self._train_metrics.update(features, outputs)

    def _train_loop(self, iterator: Any, num_steps: tf.Tensor) -> None:
        for _ in tf.range(num_steps):
            if self._accumulation_steps == 1:
                self.strategy.run(self._replica_micro_step, args=(next(iterator),))
            else:
                for _ in tf.range(self._accumulation_steps):
                    self.strategy.run(self._replica_micro_step, args=(next(iterator),))
                self.strategy.run(self._apply_fn)

    def restore_or_initialize(self) -> Optional[str]:
        """Restores the newest checkpoint in ``checkpoint_dir`` or, when there is none, calls ``init_fn``.

        Runs once: :meth:`train` calls it unless it already ran. Every worker reads the chief's folder.

        Returns:
          The restored checkpoint prefix, or None when training starts from scratch.
        """
        if self._started:
            return self._restored_from
        self._started = True
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        if latest:
            self._checkpoint.restore(latest).assert_existing_objects_matched()
            logging.info("Resumed from %s at step %d.", latest, self.global_step)
            self._restored_from = latest
        elif self._init_fn is not None:
            self._init_fn(self.model)
        return self._restored_from

    def _save(self, step: int) -> None:
        """Saves the training state; non-chief workers write to a throw-away folder (all must save)."""
        path = None
        if self._is_chief:
            path = self._manager.save(checkpoint_number=step)
            logging.info("Saved checkpoint %s", path)
        else:
            scratch = tempfile.mkdtemp(prefix="albert_tf_worker_ckpt_")
            try:
                self._checkpoint.write(os.path.join(scratch, CHECKPOINT_NAME))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        if self._on_checkpoint is not None:
            self._on_checkpoint(step, path)

    def _distributed_iterator(self, step: int) -> Any:
        """The input of every replica from global step `step` on: each input pipeline hands its per-replica
        batches to its local replicas in turn, so every step so far consumed `gradient_accumulation_steps`
        batches per local replica of each pipeline; they are skipped."""
        consumed = step * self._accumulation_steps
        if consumed:
            logging.info("Resuming the input at step %d: skipping the %d micro-batches per replica it consumed.",
                         step, consumed)

        def resumed(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
            local_replicas = self.strategy.num_replicas_in_sync // input_context.num_input_pipelines
            dataset = self._dataset_fn(input_context)
            return dataset.skip(consumed * local_replicas) if consumed else dataset

        return iter(self.strategy.distribute_datasets_from_function(resumed))

    def train(self) -> dict[str, Any]:
        """Trains to ``num_train_steps``, resuming from the newest checkpoint.

        Returns:
          ``{"global_step", "loss", "metrics", "learning_rate", "train_seconds", "wall_seconds",
          "steps_per_second", "examples_per_second"}``: ``loss`` and ``metrics`` are the means over the
          steps since the previous log line (None / empty when no step ran); ``train_seconds`` is the time
          spent in training loops (tracing and compilation included; checkpoint saves and
          ``on_checkpoint``, e.g. evaluation, excluded), ``wall_seconds`` the whole call; the rates are
          the steps run by this call over ``train_seconds``.
        """
        self.restore_or_initialize()
        step = start_step = self.global_step
        writer = (
            tf.summary.create_file_writer(os.path.join(self.model_dir, SUMMARY_SUBDIR))
            if self._is_chief and self._write_summaries
            else None
        )
        iterator = self._iterator or self._distributed_iterator(step)
        next_save = _next_boundary(step, self._save_steps) if self._save_steps else None
        next_log = _next_boundary(step, self._log_steps) if self._log_steps else None
        summary: dict[str, Any] = {"loss": None, "metrics": {}}
        call_start = time.time()
        # Only time spent in training loops counts for rates and the ETA (not saves, not evaluation).
        train_seconds = log_seconds = 0.0
        log_start_step = step
        while step < self.num_train_steps:
            num_steps = min(self._steps_per_loop, self.num_train_steps - step)
            for boundary in (next_save, next_log):
                if boundary is not None:
                    num_steps = min(num_steps, boundary - step)
            loop_start = time.time()
            try:
                self._train_loop_fn(iterator, tf.constant(num_steps, tf.int32))
            except tf.errors.OutOfRangeError as e:
                raise ValueError(
                    f"The training dataset ran out near step {self.global_step} of "
                    f"{self.num_train_steps}; make dataset_fn repeat() (or lower num_train_steps)."
                ) from e
            step = self.global_step  # reading the step waits for the loop to finish
            loop_seconds = time.time() - loop_start
            train_seconds += loop_seconds
            log_seconds += loop_seconds
            done = step >= self.num_train_steps
            if next_log is None or step >= next_log or done:
                summary = self._log(step, step - log_start_step, log_seconds, writer)
                log_seconds, log_start_step = 0.0, step
                if next_log is not None:
                    next_log = _next_boundary(step, self._log_steps)
            if (next_save is not None and step >= next_save) or done:
                self._save(step)
                if next_save is not None:
                    next_save = _next_boundary(step, self._save_steps)
        steps_per_second = (step - start_step) / train_seconds if step > start_step else 0.0
        summary.update(
            global_step=step,
            learning_rate=current_learning_rate(self.optimizer),
            train_seconds=train_seconds,
            wall_seconds=time.time() - call_start,
            steps_per_second=steps_per_second,
            examples_per_second=steps_per_second * self.global_batch_size,
        )
        if writer is not None:
            writer.close()
        return summary

    def _log(
        self, step: int, steps: int, seconds: float, writer: Optional[tf.summary.SummaryWriter]
    ) -> dict[str, Any]:
        """Logs one progress line, writes summaries, resets the running means; returns loss/metrics."""
        loss = float(self._train_loss.result())
        metrics = self._train_metrics.results()
        self._train_loss.reset_state()
        self._train_metrics.reset()
        lr = current_learning_rate(self.optimizer)
        steps_per_second = steps / seconds if seconds > 0 else 0.0
        examples_per_second = steps_per_second * self.global_batch_size
        remaining = (self.num_train_steps - step) / steps_per_second if steps_per_second else 0.0
        metric_text = "".join(f" {name}={value:.4f}" for name, value in metrics.items())
        logging.info(
            "step %d/%d (%.1f%%) loss=%.4f%s lr=%.3e %.2f steps/s %.1f ex/s ETA %s",
            step, self.num_train_steps, 100.0 * step / self.num_train_steps, loss, metric_text, lr,
            steps_per_second, examples_per_second, format_duration(remaining),
        )
        if writer is not None:
            with writer.as_default(step=step):
                tf.summary.scalar("loss", loss)
                for name, value in metrics.items():
                    tf.summary.scalar(name, value)
                tf.summary.scalar("learning_rate", lr)
                tf.summary.scalar("steps_per_second", steps_per_second)
                tf.summary.scalar("examples_per_second", examples_per_second)
            writer.flush()
        return {"loss": loss, "metrics": metrics}
