"""Loading and saving checkpoints in the official TF1 ALBERT layout (`bert/...`, `cls/...`).

Every model in `albert_tf.modeling` lists its weights under their official names (`tf1_variables()`),
so loading is a strict name-by-name copy and saving writes exactly those names with `SaveV2`. The
files work with the original release's code and its converters.
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

# Variables the original optimizers and Estimator add to training checkpoints; never model weights.
_OPTIMIZER_STATE = re.compile(
    r"(/adam_m|/adam_v|/lamb_m|/lamb_v|/Adam|/Adam_1|/Momentum)$|^global_step$|^beta[12]_power$")
# Head variables of the original release's models (pretraining, GLUE/RACE, SQuAD v1 and v2); ignored,
# with a message, by a model that has no head of that name (e.g. an encoder loading a release).
_KNOWN_HEADS = re.compile(r"^cls/|^output_weights$|^output_bias$|^(start_logits|end_logits|answer_class)/")
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

    @property
    def ignored_heads(self) -> list[str]:
        """The ignored head variables of another model (the rest of `ignored` is optimizer state)."""
        return [n for n in self.ignored if _KNOWN_HEADS.search(n)]

    def __str__(self) -> str:
        heads = len(self.ignored_heads)
        return (f"{self.path}: loaded {len(self.loaded)}, missing {len(self.missing)}, "
                f"unused {len(self.unused)}, shape-mismatched {len(self.mismatched)}, "
                f"ignored {heads} head variables of another model and {len(self.ignored) - heads} "
                "optimizer state variables")


# Sub-folders of a run directory where its official-layout checkpoints live (the demo keeps them in
# `model/`, next to its config and SentencePiece model).
RUN_CHECKPOINT_SUBDIRS = ("model",)


def resolve_checkpoint_path(path: str) -> str:
    """Returns a checkpoint prefix for a prefix, a release directory or a run directory.

    A directory resolves to the prefix named in its `checkpoint` file, else `model.ckpt-best`, else its
    only prefix. A directory without any `*.index` (a run folder such as the demo's output) is looked
    into through `RUN_CHECKPOINT_SUBDIRS` (`model/`) with the same rules; the prefix chosen is logged.
    Otherwise an error names the candidates or the folders looked at.
    """
    path = os.fspath(path)
    if not tf.io.gfile.isdir(path):
        if not tf.io.gfile.exists(path + ".index"):
            raise FileNotFoundError(
                f"Checkpoint {path!r} not found: expected {path}.index (pass a checkpoint prefix such as "
                f"'albert_base/model.ckpt-best', a release directory or a run directory).")
        return path
    looked_at = [path]
    for folder in [path] + [os.path.join(path, sub) for sub in RUN_CHECKPOINT_SUBDIRS]:
        if folder != path:
            if not tf.io.gfile.isdir(folder):
                continue
            looked_at.append(folder)
        prefix = _prefix_in_directory(folder)
        if prefix is not None:
            if folder != path:
                logging.info("Checkpoint for run directory %s: %s", path, prefix)
            return prefix
    raise FileNotFoundError(f"No checkpoint (*.index) found in directory {' or '.join(looked_at)}.")


def _prefix_in_directory(folder: str) -> Optional[str]:
    """The prefix a directory names (see `resolve_checkpoint_path`); None when it holds no checkpoint."""
    state = tf.train.get_checkpoint_state(folder)
    if state and state.model_checkpoint_path:
        # TF already joined a relative path onto `folder`; a state file moved with its directory still
        # names the prefix by its base name.
        for prefix in (state.model_checkpoint_path,
                       os.path.join(folder, os.path.basename(state.model_checkpoint_path))):
            if tf.io.gfile.exists(prefix + ".index"):
                return prefix
    best = os.path.join(folder, "model.ckpt-best")
    if tf.io.gfile.exists(best + ".index"):
        return best
    candidates = sorted(p[: -len(".index")] for p in tf.io.gfile.glob(os.path.join(folder, "*.index")))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        return None
    raise ValueError(
        f"Directory {folder} holds several checkpoints and neither a `checkpoint` file nor "
        f"model.ckpt-best; pass one prefix explicitly: {', '.join(candidates)}.")


def open_checkpoint(prefix: str) -> tf.train.CheckpointReader:
    """A reader for checkpoint `prefix`; a truncated or corrupt file gives an error naming it."""
    try:
        return tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, IndexError, ValueError, RuntimeError) as e:
        raise CorruptCheckpointError(prefix, e) from None


class CorruptCheckpointError(ValueError):
    """A checkpoint whose files are incomplete (e.g. a copy that was cut off) or damaged."""

    def __init__(self, prefix: str, cause: BaseException):
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        super().__init__(f"Checkpoint {prefix} is incomplete or corrupt ({prefix}.index / {prefix}.data-*: "
                         f"{detail[:200]}). Copy or download it again, or point to another checkpoint.")


def read_tensor(reader: tf.train.CheckpointReader, prefix: str, name: str) -> np.ndarray:
    try:
        return reader.get_tensor(name)
    except (tf.errors.OpError, IndexError, ValueError, RuntimeError) as e:
        raise CorruptCheckpointError(prefix, e) from None


def summarize(items: Sequence[str], limit: int = 4) -> str:
    """The first `limit` items and a count of the rest (error messages stay one readable line)."""
    shown = ", ".join(items[:limit])
    return shown + (f" ... and {len(items) - limit} more ({len(items)} in all)" if len(items) > limit else "")


def load_variables(model: HasTF1Variables, shapes: Mapping[str, Sequence[int]], get_tensor: Callable[[str], Any],
                   source: str, *, allow_partial: bool = False, init_from_group0: bool = False,
                   targets: Optional[Mapping[str, tf.Variable]] = None, dry_run: bool = False) -> LoadReport:
    """Copies named arrays (official TF1 names) into `model`'s variables, strictly.

    The one loading routine behind every format: TF1 checkpoints here, and the converted names of the
    TF-Hub and Hugging Face readers.

    Args:
      model: anything with `tf1_variables()`.
      shapes: the source's variable name -> shape.
      get_tensor: name -> array.
      source: how to name the source in messages (a path).
      allow_partial: load what matches and log the rest instead of raising.
      init_from_group0: every parameter group the source lacks is initialised from its `group_0`.
      targets: the variables to fill (default: all of `model.tf1_variables()`); task models pass their
        encoder's variables to load an encoder checkpoint (see `initialize_from_checkpoint`).
      dry_run: check names and shapes (raising as a load would) without reading or assigning values.

    Returns:
      A `LoadReport`. Optimizer state is always ignored, and so are the heads of the original
      release's models (`cls/*`, `output_weights`, ...) when `targets` contain no head of that name.

    Raises:
      ValueError: (unless `allow_partial`) a target is missing from the source, a source variable is
        unused, or shapes differ; the message names a few of them and counts the rest.
    """
    targets = dict(model.tf1_variables() if targets is None else targets)
    ignored = sorted(n for n in shapes if _OPTIMIZER_STATE.search(n)
                     or (_KNOWN_HEADS.search(n) and n not in targets))
    loaded, missing, mismatched, from_group0 = [], [], [], []
    used = set()
    assignments: list[tuple[tf.Variable, str]] = []
    for name, variable in targets.items():
        name_in_source = name
        if name_in_source not in shapes and init_from_group0 and _GROUP.search(name):
            name_in_source = _GROUP.sub("/group_0/", name, count=1)
            if name_in_source in shapes:
                from_group0.append(name)
        if name_in_source not in shapes:
            missing.append(name)
            continue
        used.add(name_in_source)
        if list(shapes[name_in_source]) != variable.shape.as_list():
            mismatched.append(f"{name}: checkpoint {list(shapes[name_in_source])} vs model {variable.shape.as_list()}")
            continue
        assignments.append((variable, name_in_source))
        loaded.append(name)
    unused = sorted(n for n in shapes if n not in used and n not in ignored)
    report = LoadReport(source, loaded, missing, unused, mismatched, ignored, from_group0)

    problems = []
    if missing:
        problems.append(f"{len(missing)} model weights missing from the checkpoint: {summarize(missing)}")
    if unused:
        problems.append(f"{len(unused)} checkpoint variables the model does not use: {summarize(unused)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches (does the model config match the checkpoint?): "
                        + summarize(mismatched, 3))
    if problems and not allow_partial:
        raise CheckpointMismatchError(f"Cannot load {source}: " + "; ".join(problems)
                                      + ". Check that the config file (and the task) match this checkpoint.")
    if dry_run:
        return report
    for variable, name_in_source in assignments:
        variable.assign(np.asarray(get_tensor(name_in_source)).astype(variable.dtype.as_numpy_dtype))
    heads = report.ignored_heads
    if heads:
        logging.info("Ignored %d head variables of another model in %s (%s).", len(heads), source, summarize(heads, 3))
    if from_group0:
        logging.info("Initialised %d weights from group_0 (init_from_group0).", len(from_group0))
    for problem in problems:
        logging.warning("Partial load of %s: %s", source, problem)
    logging.info("Loaded checkpoint %s", report)
    return report


class CheckpointMismatchError(ValueError):
    """The checkpoint's variables do not match the model's (missing, unused or differently shaped)."""


def checkpoint_global_step(prefix: str) -> Optional[int]:
    """The `global_step` variable of an official-layout checkpoint (the step it was saved at; kept by
    `model.ckpt-best`), None when it has none (a release, a converted model)."""
    reader = open_checkpoint(prefix)
    return int(reader.get_tensor("global_step")) if reader.has_tensor("global_step") else None


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
    # Written under a temporary prefix and renamed (data files first, the index last), so an interrupted
    # save never leaves a checkpoint that looks complete.
    temp = f"{prefix}.tmp{os.getpid()}"
    with tf.device("CPU:0"):
        tf.raw_ops.SaveV2(prefix=temp, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    for path in tf.io.gfile.glob(prefix + ".*"):
        if not path.startswith(temp):
            tf.io.gfile.remove(path)
    written = tf.io.gfile.glob(temp + ".*")
    for path in sorted(written, key=lambda p: p.endswith(".index")):
        tf.io.gfile.rename(path, prefix + path[len(temp):], overwrite=True)
    write_checkpoint_state(directory, os.path.basename(prefix))
    logging.info("Saved %d variables in the official layout to %s", len(names), prefix)
    return prefix


def read_original_checkpoint(path: str) -> dict[str, np.ndarray]:
    """All variables of an official-layout checkpoint as numpy arrays (for inspection and tests)."""
    prefix = resolve_checkpoint_path(path)
    reader = open_checkpoint(prefix)
    return {name: read_tensor(reader, prefix, name) for name in reader.get_variable_to_shape_map()}


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
    doomed = steps[:-keep] if keep > 0 else []
    for _, prefix in doomed:
        for path in tf.io.gfile.glob(prefix + ".*"):
            tf.io.gfile.remove(path)
    if doomed and steps[-1:]:
        write_checkpoint_state(directory, os.path.basename(steps[-1][1]))


def write_checkpoint_state(directory: str, latest: str) -> None:
    """Writes `directory/checkpoint` naming `latest` and every `model.ckpt-<step>` there, with paths
    relative to `directory`, so `tf.train.latest_checkpoint` and the original's tools find them wherever
    the directory is (TF's own writer produces wrong relative paths for a relative directory)."""
    names = [os.path.basename(p) for _, p in step_checkpoints(directory)]
    if latest not in names:
        names.append(latest)
    lines = [f'model_checkpoint_path: "{latest}"'] + [f'all_model_checkpoint_paths: "{n}"' for n in names]
    temp = os.path.join(directory, ".checkpoint.tmp")
    with tf.io.gfile.GFile(temp, "w") as f:
        f.write("\n".join(lines) + "\n")
    tf.io.gfile.rename(temp, os.path.join(directory, "checkpoint"), overwrite=True)
