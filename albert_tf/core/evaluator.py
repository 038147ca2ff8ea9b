"""The evaluation and prediction loop over global batches, compiled once per run.

An `Evaluator` wraps a model and a strategy. Its step functions are cached by (output function,
element spec): evaluating ten checkpoints of one run traces (and with `jit_compile`, XLA-compiles) the
step once, because loading a checkpoint only assigns the model's variables.
"""
from __future__ import annotations

import os
import re
from typing import Any, Callable, Hashable, Optional, Union

import numpy as np
import tensorflow as tf
import tf_keras as keras

from albert_tf.core import distribute
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
    """Runs `model` (`training=False`) over evaluation data on every replica.

    Args:
      strategy: a single-worker strategy (one_device, mirrored, tpu; on TPU pad to full batches).
      model: a model created under `strategy.scope()`.
      jit_compile: XLA-compile the forward pass.
    """

    def __init__(self, strategy: tf.distribute.Strategy, model: keras.Model, jit_compile: bool = False):
        if distribute.is_multi_worker(strategy):
            raise ValueError(
                "Evaluation and prediction do not run under a multi-worker strategy: the final partial batch "
                "would leave workers with different step counts. Run them in a single-worker process "
                "(strategy one_device or mirrored), like the original's separate eval job.")
        self.strategy = strategy
        self.model = model
        self._forward = self._make_forward(jit_compile)
        self._steps: dict[Hashable, Callable[[Any], Any]] = {}

    def _make_forward(self, jit_compile: bool) -> Callable[[Nested], Nested]:
        def forward(features: Nested) -> Nested:
            return to_float32(self.model(features, training=False))

        return tf.function(forward, jit_compile=True) if jit_compile else forward

    def _distribute(self, dataset: tf.data.Dataset) -> Any:
        ensure_built(self.strategy, self.model, dataset)
        return self.strategy.experimental_distribute_dataset(dataset)

    def _step(self, key: Hashable, distributed: Any, replica_fn: Callable[[Nested], Any]) -> Callable[[Any], Any]:
        """The cached `tf.function` running `replica_fn` on every replica (one trace per key and spec)."""
        cache_key = (key, repr(distributed.element_spec))
        if cache_key not in self._steps:
            def step(batch: Any) -> Any:
                return self.strategy.run(replica_fn, args=(batch,))

            self._steps[cache_key] = tf.function(step, input_signature=[distributed.element_spec])
        return self._steps[cache_key]

    def predict(self, dataset: tf.data.Dataset, output_fn: Optional[Callable[[Nested, Nested], Nested]] = None,
                num_steps: Optional[int] = None) -> Nested:
        """Every output (or `output_fn(features, outputs)`) as numpy arrays, one row per example, in input
        order. `dataset` holds GLOBAL batches in order; a final partial batch is fine off TPU."""
        distributed = self._distribute(dataset)

        def replica_predict(features: Nested) -> Nested:
            outputs = self._forward(features)
            return outputs if output_fn is None else output_fn(features, outputs)

        step = self._step(("predict", output_fn), distributed, replica_predict)
        chunks: list[Nested] = []
        for index, batch in enumerate(distributed):
            if num_steps is not None and index >= num_steps:
                break
            # The strategy splits each global batch into consecutive slices, one per replica, in order.
            chunks.extend(self.strategy.experimental_local_results(step(batch)))
        if not chunks:
            raise ValueError("predict got an empty dataset: there is nothing to predict.")
        return tf.nest.map_structure(lambda *parts: np.concatenate([np.asarray(p) for p in parts], axis=0), *chunks)


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
