"""Loading and saving checkpoints in the official TF1 ALBERT layout (`bert/...`, `cls/...`).

Every model in `albert_tf.modeling` lists its weights under their official names (`tf1_variables()`),
so loading is a strict name-by-name copy and saving writes exactly those names with `SaveV2`. The
files work with the original release's code and its converters.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Protocol

import numpy as np
import tensorflow as tf
from absl import logging

# Variables the original optimizers and Estimator add to training checkpoints; never model weights.
_OPTIMIZER_STATE = re.compile(
    r"(/adam_m|/adam_v|/lamb_m|/lamb_v|/Adam|/Adam_1|/Momentum)$|^global_step$|^beta[12]_power$")
# Pretraining heads in a release checkpoint; ignored (with a message) when loading a bare encoder.
_PRETRAINING_HEADS = re.compile(r"^cls/")
_GROUP = re.compile(r"/group_(\d+)/")


class HasTF1Variables(Protocol):
    def tf1_variables(self) -> dict[str, tf.Variable]: ...


@dataclasses.dataclass
class LoadReport:
    """What `load_original_checkpoint` did. Names are official checkpoint names."""

    path: str
    loaded: list[str]
    missing: list[str]  # model weights the checkpoint lacks (left at their current values)
    unused: list[str]  # checkpoint variables the model does not use (optimizer state excluded)
    mismatched: list[str]  # "name: checkpoint [a, b] vs model [c, d]"
    ignored: list[str]  # optimizer state and pretraining heads skipped on purpose
    copied_from_group0: list[str] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        return (f"{self.path}: loaded {len(self.loaded)}, missing {len(self.missing)}, "
                f"unused {len(self.unused)}, shape-mismatched {len(self.mismatched)}, "
                f"ignored {len(self.ignored)}")


def resolve_checkpoint_path(path: str) -> str:
    """Returns a checkpoint prefix for a prefix or a directory.

    A directory resolves to the prefix named in its `checkpoint` file, else `model.ckpt-best`, else its
    only prefix; otherwise an error lists the candidates.
    """
    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        state = tf.train.get_checkpoint_state(path)
        if state and state.model_checkpoint_path:
            prefix = state.model_checkpoint_path
            if not os.path.isabs(prefix) and "://" not in prefix:
                prefix = os.path.join(path, prefix)
            if tf.io.gfile.exists(prefix + ".index"):
                return prefix
        best = os.path.join(path, "model.ckpt-best")
        if tf.io.gfile.exists(best + ".index"):
            return best
        candidates = sorted(p[: -len(".index")] for p in tf.io.gfile.glob(os.path.join(path, "*.index")))
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise FileNotFoundError(f"No checkpoint (*.index) found in directory {path}.")
        raise ValueError(
            f"Directory {path} holds several checkpoints and neither a `checkpoint` file nor "
            f"model.ckpt-best; pass one prefix explicitly: {', '.join(candidates)}.")
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(
            f"Checkpoint {path!r} not found: expected {path}.index (pass a checkpoint prefix such as "
            f"'albert_base/model.ckpt-best' or the release directory).")
    return path


def _check_release_config(path: str, model) -> None:
    """When `path` is a release directory with `albert_config.json`, it must match the model's config."""
    config_path = os.path.join(path, "albert_config.json")
    config = getattr(model, "config", None)
    if config is None or not tf.io.gfile.isdir(path) or not tf.io.gfile.exists(config_path):
        return
    with tf.io.gfile.GFile(config_path) as f:
        release = json.load(f)
    mine = config.to_dict()
    fields = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
              "num_attention_heads", "intermediate_size", "inner_group_num", "max_position_embeddings",
              "type_vocab_size", "hidden_act")
    diffs = [f"{k}: release {release[k]!r} vs model {mine.get(k)!r}"
             for k in fields if k in release and release[k] != mine.get(k)]
    if diffs:
        raise ValueError(f"The model's config does not match {config_path} ({'; '.join(diffs)}). "
                         "Build the model from that file: AlbertConfig.from_json_file(...).")


def load_original_checkpoint(model: HasTF1Variables, path: str, allow_partial: bool = False,
                             init_from_group0: bool = False) -> LoadReport:
    """Copies an official-layout checkpoint into `model` (any albert_tf model).

    Args:
      model: `AlbertModel`, `AlbertPretrainer`, `AlbertClassifier`, ... (anything with `tf1_variables()`).
      path: a checkpoint prefix or a release directory (see `resolve_checkpoint_path`).
      allow_partial: load what matches and log the rest instead of raising.
      init_from_group0: the original's `--init_from_group0`, as intended: every parameter group of the
        model that the checkpoint lacks is initialised from the checkpoint's `group_0`.

    Returns:
      A `LoadReport`. Optimizer state is always ignored; `cls/*` heads are ignored when the model has none.

    Raises:
      ValueError: (unless `allow_partial`) a model weight is missing from the checkpoint, a checkpoint
        variable is unused, or shapes differ; the message names them.
    """
    _check_release_config(os.fspath(path), model)
    prefix = resolve_checkpoint_path(path)
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    targets = model.tf1_variables()
    model_has_heads = any(_PRETRAINING_HEADS.search(n) for n in targets)

    ignored = sorted(n for n in shapes if _OPTIMIZER_STATE.search(n)
                     or (not model_has_heads and _PRETRAINING_HEADS.search(n)))
    loaded, missing, mismatched, from_group0 = [], [], [], []
    used = set()
    assignments: list[tuple[tf.Variable, str]] = []
    for name, variable in targets.items():
        source = name
        if source not in shapes and init_from_group0 and _GROUP.search(name):
            source = _GROUP.sub("/group_0/", name, count=1)
            if source in shapes:
                from_group0.append(name)
        if source not in shapes:
            missing.append(name)
            continue
        used.add(source)
        if list(shapes[source]) != variable.shape.as_list():
            mismatched.append(f"{name}: checkpoint {list(shapes[source])} vs model {variable.shape.as_list()}")
            continue
        assignments.append((variable, source))
        loaded.append(name)
    unused = sorted(n for n in shapes if n not in used and n not in ignored)
    report = LoadReport(prefix, loaded, missing, unused, mismatched, ignored, from_group0)

    problems = []
    if missing:
        problems.append(f"model weights missing from the checkpoint: {', '.join(missing)}")
    if unused:
        problems.append(f"checkpoint variables the model does not use: {', '.join(unused)}")
    if mismatched:
        problems.append("shape mismatches (does the config match the checkpoint?): " + "; ".join(mismatched))
    if problems and not allow_partial:
        raise ValueError(f"Cannot load {prefix} strictly: " + " | ".join(problems)
                         + ". Pass allow_partial=True to load only what matches.")
    for variable, source in assignments:
        variable.assign(reader.get_tensor(source).astype(variable.dtype.as_numpy_dtype))
    if any(_PRETRAINING_HEADS.search(n) for n in ignored):
        logging.info("Ignored the pretraining heads (cls/*) in %s: the model has no such heads.", prefix)
    if from_group0:
        logging.info("Initialised %d weights from group_0 (init_from_group0).", len(from_group0))
    for problem in problems:
        logging.warning("Partial load of %s: %s", prefix, problem)
    logging.info("Loaded checkpoint %s", report)
    return report


def save_original_checkpoint(model: HasTF1Variables, prefix: str, global_step: int | None = None) -> str:
    """Writes `model`'s weights with the official names and shapes (TF1 layout).

    Writes `prefix[-<step>].index` and `.data-00000-of-00001` (plus an int64 `global_step` variable when
    `global_step` is given) and a `checkpoint` file in that directory. Returns the prefix written.
    """
    prefix = os.fspath(prefix)
    if global_step is not None:
        prefix = f"{prefix}-{int(global_step)}"
    directory = os.path.dirname(prefix) or "."
    tf.io.gfile.makedirs(directory)
    variables = model.tf1_variables()
    names = sorted(variables)
    tensors = [tf.convert_to_tensor(variables[n].read_value()) for n in names]
    if global_step is not None:
        names.append("global_step")
        tensors.append(tf.constant(int(global_step), tf.int64))
    with tf.device("CPU:0"):
        tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                          tensors=tensors)
    tf.compat.v1.train.update_checkpoint_state(directory, os.path.basename(prefix) if directory != "." else prefix)
    logging.info("Saved %d variables in the official layout to %s", len(names), prefix)
    return prefix


def read_original_checkpoint(path: str) -> dict[str, np.ndarray]:
    """All variables of an official-layout checkpoint as numpy arrays (for inspection and tests)."""
    reader = tf.train.load_checkpoint(resolve_checkpoint_path(path))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


_STEP_INDEX = re.compile(r"model\.ckpt-(\d+)\.index$")


def step_checkpoints(directory: str) -> list[tuple[int, str]]:
    """The `model.ckpt-<step>` prefixes in `directory` as (step, prefix) pairs, in step order.

    `model.ckpt-best` and other names are not included.
    """
    found = []
    for path in tf.io.gfile.glob(os.path.join(directory, "model.ckpt-*.index")):
        match = _STEP_INDEX.search(path)
        if match:
            found.append((int(match.group(1)), path[: -len(".index")]))
    return sorted(found)


def prune_checkpoints(directory: str, keep: int) -> None:
    """Deletes all but the newest `keep` `model.ckpt-<step>` checkpoints (never `model.ckpt-best`).

    `keep <= 0` keeps everything (as `keep_checkpoint_max=0` did for the original's RunConfig).
    """
    steps = step_checkpoints(directory)
    for _, prefix in steps[:-keep] if keep > 0 else []:
        for path in tf.io.gfile.glob(prefix + ".*"):
            tf.io.gfile.remove(path)
