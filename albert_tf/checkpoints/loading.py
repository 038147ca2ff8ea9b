"""Loading any model source into an albert_tf model: the strict TF1 load and the one initialisation policy.

Both take a path or an already resolved `ModelSource` (a run resolves `--init_checkpoint` once and passes
the source around, so a Hugging Face file is read once for the dry run and the load).
"""
from __future__ import annotations

import os
from typing import Iterable

from absl import logging

from albert_tf.checkpoints import source as model_source
from albert_tf.checkpoints.source import ModelSource
from albert_tf.checkpoints.tf1 import CheckpointMismatchError, HasTF1Variables, LoadReport, load_variables, summarize

PathOrSource = str | os.PathLike | ModelSource


def load_original_checkpoint(model: HasTF1Variables, path: PathOrSource, allow_partial: bool = False,
                             init_from_group0: bool = False) -> LoadReport:
    """Copies an official-layout checkpoint into `model` (any albert_tf model), strictly.

    Args:
      model: `AlbertModel`, `AlbertPretrainer`, `AlbertClassifier`, ... (anything with `tf1_variables()`).
      path: a checkpoint prefix, a release or run directory (see `tf1.resolve_checkpoint_path`), or a
        resolved TF1 `ModelSource`.
      allow_partial: load what matches and log the rest instead of raising.
      init_from_group0: the original's `--init_from_group0`, as intended: every parameter group of the
        model that the checkpoint lacks is initialised from the checkpoint's `group_0`.

    Returns:
      A `LoadReport`. Optimizer state is always ignored; the original's head variables (`cls/*`,
      `output_weights`, SQuAD heads) are ignored when the model has no head of that name.

    Raises:
      ValueError: (unless `allow_partial`) a model weight is missing from the checkpoint, a checkpoint
        variable is unused, or shapes differ; the message names them. Also a release folder whose
        `albert_config.json` contradicts the model's config.
    """
    src = path if isinstance(path, ModelSource) else model_source.resolve_tf1(path)
    src.check_model_config(model)
    return load_variables(model, src.variable_shapes(), src.get_tensor, src.location, allow_partial=allow_partial,
                          init_from_group0=init_from_group0)


def initialize_from_checkpoint(model: HasTF1Variables, path: PathOrSource, init_from_group0: bool = False,
                               dry_run: bool = False) -> LoadReport:
    """The one initialisation policy of every task (`--init_checkpoint`), for every source form.

    - The checkpoint holds every head variable of `model` (a model fine-tuned on this task, or a
      pretraining checkpoint for the pretrainer): the whole model is loaded strictly.
    - It holds none of them (a release or pretraining checkpoint for a fine-tuning task, an encoder
      export): the encoder is loaded strictly and the heads keep their fresh initialisation, which is
      logged with their names. The original's heads of other tasks in the checkpoint are ignored.
    - It holds some of them: an error (it is a checkpoint of another task or head size).

    A Hugging Face folder applies this per head (a masked-LM file has no SOP head) and keeps the pooler's
    initialisation when the file has none (`transformers.load_transformers_arrays`). The model's config is
    checked against the config the source states (a release folder's `albert_config.json`, a Hugging Face
    `config.json`). `model` must have `head_variables()` (the task models); a bare encoder is loaded
    strictly. `dry_run` checks without assigning (the driver calls it before any expensive work).
    """
    src = model_source.as_source(path)
    src.check_model_config(model)
    if src.kind == model_source.TRANSFORMERS:
        from albert_tf.checkpoints import transformers  # builds on the models: imported when needed

        return transformers.load_transformers_arrays(model, src.arrays(), src.location, init_from_group0,
                                                     dry_run=dry_run)
    if src.kind != model_source.TF1:
        raise ValueError(f"{src.given} is a TF-Hub {src.kind[4:].upper()} encoder, not a checkpoint: pass it as "
                         "--albert_hub_module_handle instead of --init_checkpoint.")
    shapes = src.variable_shapes()
    heads = model.head_variables() if hasattr(model, "head_variables") else {}
    present = [n for n in heads if n in shapes]
    targets = None
    if heads and not present:
        targets = {n: v for n, v in model.tf1_variables().items() if n not in heads}
        if not dry_run:
            logging.info("%s has no %s head: loading the encoder; the head starts from its random "
                         "initialisation (%s).", src.location, type(model).__name__, summarize(sorted(heads), 3))
    elif len(present) != len(heads):
        absent = sorted(set(heads) - set(present))
        raise CheckpointMismatchError(
            f"{src.location} has only part of the {type(model).__name__} head ({summarize(present, 2)} but not "
            f"{summarize(absent, 2)}): it was trained for another task. Start from a pretrained checkpoint.")
    return load_variables(model, shapes, src.get_tensor, src.location, init_from_group0=init_from_group0,
                          targets=targets, dry_run=dry_run)


def has_variables(path: PathOrSource, names: Iterable[str]) -> bool:
    """Whether the checkpoint at `path` (prefix, directory, Hugging Face directory or a resolved source)
    holds every one of `names` (official names); read from names, not weights."""
    return model_source.as_source(path).has_variables(names)
