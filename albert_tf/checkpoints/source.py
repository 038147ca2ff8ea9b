"""What a user pointed at: one resolution of a model path or handle, answered for every consumer.

A run resolves `--init_checkpoint` and `--albert_hub_module_handle` once (`resolve`), and the driver,
the tasks, the loaders, the converters and tokenization ask the resulting `ModelSource` instead of
guessing the format again. The forms and what each answers:

| kind           | given as                                                  | config                   | tokenizer                   |
|----------------|-----------------------------------------------------------|--------------------------|-----------------------------|
| `tf1`          | a prefix, a release folder, a run folder (`model/`)       | the release folder's `albert_config.json`, else none | none (flags) |
| `transformers` | a Hugging Face folder (`config.json` + weights)            | `config.json`            | `spiece.model` / `vocab.txt` + `tokenizer_config.json` |
| `hub_tf1`      | a TF1 Hub module (`tfhub_module.pb`), folder or URL        | `assets/albert_config.json`, else inferred from shapes | `tokenization_info` |
| `hub_tf2`      | a TF2 SavedModel encoder, folder or URL                    | none (the SavedModel is the network) | `tokenization_info` or Model Garden's attributes |

Variable names are the official TF1 names in every form, so "does this hold the SQuAD head?" is one
question (`has_variables`), answered from names and shapes, without reading the weights where the format
allows (TF1 checkpoints and Hub modules: the index; Hugging Face: the name map over the file's names).
Weights are read once per source (`arrays` / `get_tensor`) and shared by the dry run and the load.

This module and the format readers under it (`tf1`, `hf_format`, `hub_format`) import no model and no
tokenizer: loaders that build models (`transformers`, `hub`, `initialize`) sit above them.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Iterable, Mapping, Optional

import numpy as np
import tensorflow as tf

from albert_tf.checkpoints import hf_format, hub_format, tf1
from albert_tf.configs import AlbertConfig

TF1, TRANSFORMERS, HUB_TF1, HUB_TF2 = "tf1", "transformers", "hub_tf1", "hub_tf2"
RELEASE_CONFIG_FILE = "albert_config.json"
# Where a run keeps its TF2 training state (`albert_tf.core.trainer`): `<output_dir>/tf2_checkpoints/ckpt-<n>`.
TF2_STATE_SUBDIR = "tf2_checkpoints"
TF2_STATE = "tf2_state"
# The config fields that define the network's weights and computation (dropout and initialisation don't).
STRUCTURE_FIELDS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
                    "num_attention_heads", "intermediate_size", "inner_group_num", "max_position_embeddings",
                    "type_vocab_size", "hidden_act")


@dataclasses.dataclass(frozen=True)
class TokenizerSpec:
    """The tokenizer a model source carries (build it with `FullTokenizer.from_spec`).

    Attributes:
      spm_model_file: the SentencePiece model, or None for WordPiece.
      vocab_file: the WordPiece vocabulary (when `spm_model_file` is None).
      do_lower_case: the model's casing.
      remove_space, keep_accents: `preprocess_text` options (the original's: True, False).
      origin: what it was read from, for messages.
    """

    spm_model_file: Optional[str]
    vocab_file: Optional[str]
    do_lower_case: bool
    remove_space: bool = True
    keep_accents: bool = False
    origin: str = ""


def _structure(values: Mapping[str, Any]) -> dict[str, Any]:
    """The structural fields `values` states, `hidden_act` named by its function ("gelu" == "gelu_new")."""
    out = {k: values[k] for k in STRUCTURE_FIELDS if k in values and values[k] is not None}
    if "hidden_act" in out:
        out["hidden_act"] = hf_format.activation_function(out["hidden_act"])
    return out


def check_config_matches(model_config: Optional[AlbertConfig], file_values: Mapping[str, Any], source: str,
                         fix: str) -> None:
    """Raises when the fields a file states (`file_values`, e.g. a release's `albert_config.json` or a
    Hugging Face `config.json` read as an `AlbertConfig`) contradict the model's config; `fix` says how to
    build a matching model. Fields the file does not state are not compared."""
    if model_config is None:
        return
    mine, theirs = _structure(model_config.to_dict()), _structure(file_values)
    diffs = [f"{k}: file {file_values[k]!r} vs model {getattr(model_config, k)!r}"
             for k in STRUCTURE_FIELDS if k in theirs and theirs[k] != mine.get(k)]
    if diffs:
        raise ValueError(f"The model's config does not match {source} ({'; '.join(diffs)}). {fix}")


class ModelSource:
    """One resolved model path or handle (see the module docstring). Build with `resolve`.

    Attributes:
      kind: `tf1`, `transformers`, `hub_tf1`, `hub_tf2` or (only from `detect`) `tf2_state`.
      given: the path or handle as the user gave it.
      location: the checkpoint prefix (`tf1`), the directory (`transformers`) or the resolved Hub
        directory (`hub_*`).
    """

    def __init__(self, kind: str, given: str, location: str):
        self.kind = kind
        self.given = given
        self.location = location
        self._config: Any = ...
        self._shapes: Optional[dict[str, list[int]]] = None
        self._arrays: Optional[dict[str, np.ndarray]] = None
        self._info: Optional[dict[str, Any]] = None
        self._reader: Any = None
        self._hub_names: Optional[dict[str, str]] = None

    def __repr__(self) -> str:
        return f"ModelSource({self.kind}, {self.location!r})"

    @property
    def is_hub(self) -> bool:
        return self.kind in (HUB_TF1, HUB_TF2)

    # ----------------------------------------------------------------------------------------- config
    def config_values(self) -> Optional[tuple[dict[str, Any], str]]:
        """(the config fields the source's own files state, the file) or None when it states none."""
        if self.kind == TF1:
            path = os.path.join(self.given, RELEASE_CONFIG_FILE)
            if tf.io.gfile.isdir(self.given) and tf.io.gfile.exists(path):
                with tf.io.gfile.GFile(path) as f:
                    return json.load(f), path
            return None
        if self.kind == TRANSFORMERS:
            return self.config().to_dict(), os.path.join(self.location, hf_format.CONFIG_FILE)
        return None

    def config(self) -> Optional[AlbertConfig]:
        """The model config the source carries: a release folder's `albert_config.json`, a Hugging Face
        `config.json`, a TF1 Hub module's asset (else inferred from its shapes); None for a bare TF1
        prefix and for a TF2 SavedModel (which needs none). Read once."""
        if self._config is ...:
            if self.kind == TRANSFORMERS:
                self._config = hf_format.transformers_albert_config(self.location)
            elif self.kind == HUB_TF1:
                self._config = hub_format.hub_module_config(self.location)
            else:
                stated = self.config_values() if self.kind == TF1 else None
                self._config = AlbertConfig.from_dict(stated[0]) if stated else None
        return self._config

    def check_model_config(self, model: Any) -> None:
        """Raises when `model.config` contradicts the config the source's files state (a release folder's
        `albert_config.json`, a Hugging Face `config.json`); nothing to compare otherwise."""
        stated = self.config_values()
        if stated is None:
            return
        values, path = stated
        fix = ("Build the model from that file: AlbertConfig.from_json_file(...)." if self.kind == TF1 else
               "Build the model from that directory's config: "
               "albert_tf.checkpoints.transformers.transformers_albert_config(dir).")
        check_config_matches(getattr(model, "config", None), values, path, fix)

    # -------------------------------------------------------------------------------------- tokenizer
    def tokenizer_spec(self, use_spm: bool = True, loaded: Any = None) -> Optional[TokenizerSpec]:
        """The tokenizer the source carries, or None (a TF1 checkpoint: the flags give it). `use_spm`:
        a Hub module's vocabulary as SentencePiece model (else WordPiece), as the original
        `from_hub_module`; `loaded`: a TF2 SavedModel the caller has loaded already.

        Raises:
          ValueError / FileNotFoundError: a Hub module without a usable `tokenization_info`, or a Hugging
            Face folder whose tokenizer files are unreadable.
        """
        if self.kind == TRANSFORMERS:
            return transformers_tokenizer_spec(self.location)
        if self.is_hub:
            path, lower, is_spm = hub_format.tokenization_info(self.location, loaded)
            if use_spm and is_spm:
                return TokenizerSpec(spm_model_file=path, vocab_file=None, do_lower_case=lower, origin=self.location)
            return TokenizerSpec(spm_model_file=None, vocab_file=path, do_lower_case=lower, origin=self.location)
        return None

    # -------------------------------------------------------------------------------------- variables
    def variable_shapes(self) -> dict[str, list[int]]:
        """{official name: shape} of every variable (optimizer state included for a TF1 checkpoint).
        Hugging Face: the whole file is read once (see `arrays`). Empty for a TF2 SavedModel."""
        if self._shapes is None:
            if self.kind == TF1:
                self._reader = tf1.open_checkpoint(self.location)
                self._shapes = dict(self._reader.get_variable_to_shape_map())
            elif self.kind == HUB_TF1:
                self._reader, self._shapes, self._hub_names, _ = hub_format.module_variables(self.location)
            elif self.kind == TRANSFORMERS:
                self._shapes = {n: list(a.shape) for n, a in self.arrays().items()}
            else:
                self._shapes = {}
        return self._shapes

    def variable_names(self) -> set[str]:
        """The official names the source holds, without reading weights: the index of a TF1 checkpoint or
        Hub module; for Hugging Face, the name map applied to the file's parameter names."""
        if self.kind == TRANSFORMERS and self._arrays is None:
            return hf_format.transformers_tf1_names(self.location)
        return set(self.variable_shapes())

    def has_variables(self, names: Iterable[str]) -> bool:
        """Whether the source holds every one of `names` (official names), e.g. a task's head."""
        return set(names) <= self.variable_names()

    def arrays(self) -> dict[str, np.ndarray]:
        """Every weight of a Hugging Face folder under its official name (read once, see
        `hf_format.transformers_tf1_arrays`)."""
        if self.kind != TRANSFORMERS:
            raise ValueError(f"{self.location} is a {self.kind} source; arrays() reads Hugging Face folders.")
        if self._arrays is None:
            self._arrays, self._info = hf_format.transformers_tf1_arrays(self.location)
        return self._arrays

    def transformers_info(self) -> dict[str, Any]:
        """The file facts of a Hugging Face folder (architecture, labels, ...; see `transformers_tf1_arrays`)."""
        self.arrays()
        return self._info

    def get_tensor(self, name: str) -> np.ndarray:
        """The value of official variable `name` (a corrupt TF1 file gives an error naming it)."""
        if self.kind == TRANSFORMERS:
            return self.arrays()[name]
        self.variable_shapes()
        if self.kind == HUB_TF1:
            return self._reader.get_tensor(self._hub_names[name])
        return tf1.read_tensor(self._reader, self.location, name)

    def global_step(self) -> Optional[int]:
        """The `global_step` a TF1 checkpoint was saved at; None for other forms and for releases."""
        if self.kind != TF1 or "global_step" not in self.variable_shapes():
            return None
        return int(self._reader.get_tensor("global_step"))


def transformers_tokenizer_spec(directory: str) -> Optional[TokenizerSpec]:
    """The tokenizer of a Hugging Face folder: `spiece.model`, else `vocab.txt`, with the options of its
    `tokenizer_config.json` (Hugging Face's defaults when absent); None without either file."""
    options = hf_format.tokenizer_options(directory)
    if options is None:
        return None
    spm_path = os.path.join(directory, hf_format.SPM_FILE)
    is_spm = tf.io.gfile.exists(spm_path)
    return TokenizerSpec(spm_model_file=spm_path if is_spm else None,
                         vocab_file=None if is_spm else os.path.join(directory, hf_format.WORDPIECE_FILE),
                         origin=os.path.join(directory, hf_format.TOKENIZER_CONFIG_FILE), **options)


def resolve(path: str | os.PathLike, hub: bool = False) -> ModelSource:
    """Resolves what `path` holds, once (see the module docstring).

    Args:
      path: `--init_checkpoint` (a TF1 prefix, release or run folder, or a Hugging Face folder), or with
        `hub` `--albert_hub_module_handle` (a TF1 Hub module or TF2 SavedModel, folder or URL).
      hub: resolve a Hub handle.

    Raises:
      FileNotFoundError / ValueError: nothing usable at `path`; the message names what was found and
        what each form needs.
    """
    given = os.fspath(path)
    if hub:
        directory = hub_format.resolve_handle(given)
        return ModelSource(HUB_TF1 if hub_format.hub_format(directory) == "tf1" else HUB_TF2, given, directory)
    if hf_format.is_transformers_dir(given):
        return ModelSource(TRANSFORMERS, given, given)
    return resolve_tf1(given)


def tf2_state_prefix(path: str | os.PathLike) -> Optional[str]:
    """The newest TF2 training state of a run folder (in its `tf2_checkpoints/`) or of that folder itself,
    or `path` when it is a `ckpt-<n>` prefix; None otherwise."""
    path = os.fspath(path)
    for directory in (os.path.join(path, TF2_STATE_SUBDIR), path):
        if tf.io.gfile.isdir(directory):
            latest = tf.train.latest_checkpoint(directory)
            if latest:
                return latest
    return path if tf.io.gfile.exists(path + ".index") else None


def detect(path: str | os.PathLike) -> Optional[ModelSource]:
    """Whatever `path` holds, tried in order: a Hugging Face folder, a TF-Hub handle (a URL, or a folder
    with `tfhub_module.pb` / `saved_model.pb`), a TF1 checkpoint, a TF2 training state (`location` its
    `ckpt-<n>` prefix); None when it is none of them."""
    given = os.fspath(path)
    if hf_format.is_transformers_dir(given):
        return ModelSource(TRANSFORMERS, given, given)
    if given.startswith(("http://", "https://")) or (tf.io.gfile.isdir(given) and any(
            tf.io.gfile.exists(os.path.join(given, n)) for n in (hub_format.TF1_MODULE_FILE, "saved_model.pb"))):
        return resolve(given, hub=True)
    try:
        return resolve_tf1(given)
    except (FileNotFoundError, ValueError):
        pass
    state = tf2_state_prefix(given)
    return ModelSource(TF2_STATE, given, state) if state else None


def resolve_tf1(path: str | os.PathLike) -> ModelSource:
    """`path` as an official-layout checkpoint (prefix, release or run folder; see
    `tf1.resolve_checkpoint_path`), whatever else the folder holds."""
    given = os.fspath(path)
    return ModelSource(TF1, given, tf1.resolve_checkpoint_path(given))


def as_source(path_or_source: str | os.PathLike | ModelSource) -> ModelSource:
    """`path_or_source` itself when already resolved, else `resolve(path_or_source)`."""
    return path_or_source if isinstance(path_or_source, ModelSource) else resolve(path_or_source)
