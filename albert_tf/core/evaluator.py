"""The evaluation and prediction loop over global batches, compiled once per run.

An `Evaluator` wraps a model and a strategy. Its step functions are cached by (output function,
element spec): evaluating ten checkpoints of one run traces (and with `jit_compile`, XLA-compiles) the
step once, because loading a checkpoint only assigns the model's variables.
"""
from __future__ import annotations

import os
import re
import time
from typing import Any, Callable, Hashable, Optional, Union

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from albert_tf.core.task import Nested, Predictor

DatasetFn = Callable[[tf.distribute.InputContext], tf.data.Dataset]


def to_float32(outputs: Nested) -> Nested:
    """Casts every floating tensor of `outputs` to float32 (losses and metrics run in float32)."""

    def cast(t: Any) -> Any:
        if isinstance(t, (tf.Tensor, tf.Variable)) and t.dtype.is_floating and t.dtype != tf.float32:
            return tf.cast(t, tf.float32)
        return t

    return tf.nest.map_structure(cast, outputs)


def ensure_built(strategy: tf.distribute.Strategy, model: keras.Model,
                 data: Union[tf.data.Dataset, DatasetFn]) -> None:
    """Creates the variables of an unbuilt model by calling it on one example of `data` (outside any
    replica context). A model that already has variables is left untouched."""
    if model.variables:
        return
    dataset = data if isinstance(data, tf.data.Dataset) else data(
        tf.distribute.InputContext(num_replicas_in_sync=strategy.num_replicas_in_sync))
    features = tf.nest.map_structure(lambda t: t[:1], next(iter(dataset.take(1))))
    with strategy.scope():
        model(features, training=False)


class Evaluator(Predictor):
    """Runs `model` (`training=False`) over evaluation data on every replica, under any strategy.

    One path for one device, Mirrored, MultiWorkerMirrored and TPU: the examples are padded to whole
    global batches with examples marked not real, every replica runs the same number of steps on batches
    of one static shape, the outputs of all replicas (of all workers) are gathered in input order and the
    padded rows are dropped. Every worker therefore gets every output row; the caller decides who writes.

    Args:
      strategy: any strategy of `albert_tf.core.distribute.get_strategy`.
      model: a model created under `strategy.scope()`.
      jit_compile: XLA-compile the forward pass.
    """

    def __init__(self, strategy: tf.distribute.Strategy, model: keras.Model, jit_compile: bool = False):
        self.strategy = strategy
        self.model = model
        self._forward = self._make_forward(jit_compile)
        self._steps: dict[Hashable, Callable[[Any], Any]] = {}

    def _make_forward(self, jit_compile: bool) -> Callable[[Nested], Nested]:
        def forward(features: Nested) -> Nested:
            return to_float32(self.model(features, training=False))

        return tf.function(forward, jit_compile=True) if jit_compile else forward

    def global_batch_size(self, dataset: tf.data.Dataset) -> int:
        """The global batch of `dataset` (its first batch's size; one final partial batch is allowed),
        rounded up to a multiple of the replicas in sync."""
        first = next(iter(dataset.take(1)), None)
        if first is None:
            raise ValueError("predict got an empty dataset: there is nothing to predict.")
        replicas = self.strategy.num_replicas_in_sync
        size = int(tf.nest.flatten(first)[0].shape[0])
        rounded = -(-size // replicas) * replicas
        if rounded != size:
            logging.info("Evaluating in global batches of %d (%d rounded up to a multiple of the %d replicas).",
                         rounded, size, replicas)
        return rounded

    def _distribute(self, dataset: tf.data.Dataset, global_batch: int) -> Any:
        ensure_built(self.strategy, self.model, dataset)
        padded = pad_to_global_batches(dataset, global_batch)
        replicas = self.strategy.num_replicas_in_sync

        def replica_batches(context: tf.distribute.InputContext) -> tf.data.Dataset:
            return slice_for_pipeline(padded, replicas, context.num_input_pipelines, context.input_pipeline_id)

        return self.strategy.distribute_datasets_from_function(replica_batches)

    def _step(self, key: Hashable, distributed: Any, replica_fn: Callable[[Nested], Any]) -> Callable[[Any], Any]:
        """The cached `tf.function` running `replica_fn` on every replica and gathering its outputs of
        every replica in replica order (one trace per key and element spec)."""
        cache_key = (key, repr(distributed.element_spec))
        if cache_key not in self._steps:
            def step(batch: Any) -> Any:
                outputs = self.strategy.run(replica_fn, args=(batch,))
                return tf.nest.map_structure(lambda value: self.strategy.gather(value, axis=0), outputs)

            self._steps[cache_key] = tf.function(step, input_signature=[distributed.element_spec])
        return self._steps[cache_key]

    def predict(self, dataset: tf.data.Dataset, output_fn: Optional[Callable[[Nested, Nested], Nested]] = None,
                num_steps: Optional[int] = None) -> Nested:
        """Every output (or `output_fn(features, outputs)`, each with a leading batch dimension) as numpy
        arrays, one row per example, in input order, on every worker. `dataset` holds GLOBAL batches in
        order (a final partial batch is padded); `num_steps` stops after that many batches."""
        global_batch = self.global_batch_size(dataset)
        distributed = self._distribute(dataset, global_batch)

        def replica_predict(batch: tuple[Nested, tf.Tensor]) -> tuple[Nested, tf.Tensor]:
            features, real = batch
            outputs = self._forward(features)
            return (outputs if output_fn is None else output_fn(features, outputs)), real

        step = self._step(("predict", output_fn), distributed, replica_predict)
        chunks: list[Nested] = []
        start = time.perf_counter()
        # The padded input never ends: every worker stops at the first step that is not all real, which
        # all of them see alike (the mask is gathered from every replica).
        for index, batch in enumerate(distributed):
            if num_steps is not None and index >= num_steps:
                break
            outputs, real = step(batch)
            keep = np.asarray(real).astype(bool)
            chunks.append(tf.nest.map_structure(lambda t: np.asarray(t)[keep], outputs))
            if not keep.all():
                break
        rows = sum(len(tf.nest.flatten(chunk)[0]) for chunk in chunks)
        seconds = time.perf_counter() - start
        logging.info("Predicted %d examples in %.1f s (%.1f examples/s, first-call tracing included).", rows,
                     seconds, rows / max(seconds, 1e-9))
        return tf.nest.map_structure(lambda *parts: np.concatenate(parts, axis=0), *chunks)


def pad_to_global_batches(dataset: tf.data.Dataset, global_batch: int) -> tf.data.Dataset:
    """`(features, real)` global batches of exactly `global_batch` rows, forever: the examples of
    `dataset` (batches, in order) with `real` = 1, then all-zero examples with `real` = 0 (int32 [B]).

    Raises:
      ValueError: a feature whose per-example shape is not fully known (it cannot be padded).
    """
    examples = dataset.unbatch()
    for spec in tf.nest.flatten(examples.element_spec):
        if not spec.shape.is_fully_defined():
            raise ValueError(f"Evaluation features need fully known per-example shapes to be padded to whole "
                             f"batches; got {spec}.")
    padding = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype), examples.element_spec)
    real = examples.map(lambda features: (features, tf.constant(1, tf.int32)))
    fake = tf.data.Dataset.from_tensors((padding, tf.constant(0, tf.int32))).repeat()
    return real.concatenate(fake).batch(global_batch, drop_remainder=True)


def slice_for_pipeline(global_batches: tf.data.Dataset, replicas: int, num_pipelines: int,
                       pipeline_id: int) -> tf.data.Dataset:
    """The per-replica batches one input pipeline feeds its replicas, in the order the strategy hands
    them out (one per local replica, in turn): replica r of all `replicas` gets rows [r*b, (r+1)*b) of
    each global batch (b = B / replicas), and pipeline p serves replicas [p*L, (p+1)*L), L = replicas / P."""
    local = replicas // num_pipelines

    def local_share(*batch: Nested) -> Nested:
        def split(t: tf.Tensor) -> tf.Tensor:
            per_replica = tf.reshape(t, [replicas, t.shape[0] // replicas] + t.shape[1:].as_list())
            return per_replica[pipeline_id * local:(pipeline_id + 1) * local]

        return tf.nest.map_structure(split, batch)

    return global_batches.map(local_share).unbatch().prefetch(tf.data.AUTOTUNE)


def checkpoint_global_step(checkpoint_path: str) -> Optional[int]:
    """The training step a checkpoint was written at, or None when it cannot tell.

    Reads a TF1 `global_step` variable, else a TF2 `optimizer/.../_iterations` variable, else the `-<N>`
    suffix of the file name (`model.ckpt-120`, `ckpt-120`).
    """
    names = [name for name, _ in tf.train.list_variables(checkpoint_path)]
    for name in names:
        if name == "global_step" or (
                name.startswith("optimizer/") and name.endswith("_iterations/.ATTRIBUTES/VARIABLE_VALUE")):
            return int(tf.train.load_variable(checkpoint_path, name))
    match = re.search(r"-(\d+)$", os.path.basename(checkpoint_path))
    return int(match.group(1)) if match else None
