"""TF-Hub handles as encoders: `from_hub(handle)` and `hub_tokenizer(handle)`.

A handle is a local (or `tf.io.gfile`) directory, or a URL that `tensorflow_hub` resolves (downloaded
once into its cache). Two formats are recognised, by their files:

- **TF1 Hub module** (the original release's `google/albert_*` 1-3, `export_to_tfhub.py`): the
  directory has `tfhub_module.pb`. TF2 cannot fine-tune this format through `hub.load`, so its
  variables are read from `variables/variables` and copied into an `AlbertModel` through the
  official name map, strictly (the module's own name prefix, if any, e.g. `module/`, is found from
  `.../bert/embeddings/word_embeddings` and stripped). The config is the module's
  `assets/albert_config.json` (the original export registers it as an asset); without it, it is
  inferred from the variable shapes by matching the released configurations (`PRESETS`), or given
  as `config=`. The tokenizer comes from the `tokenization_info` signature (the SentencePiece model
  in `assets/` and `do_lower_case`), read from the module's graph without running it.
- **TF2 SavedModel** with the Model Garden / TF-Hub encoder interface (`tensorflow/albert_en_*`, or
  `albert_tf.export_encoder`): `saved_model.pb` and no `tfhub_module.pb`. Loaded as a trainable
  `hub.KerasLayer` and checked by one call on a dummy batch: dict inputs `input_word_ids`,
  `input_mask`, `input_type_ids` (int32 [B,S]); dict outputs with `sequence_output` [B,S,H] and
  `pooled_output` [B,H] (and `encoder_outputs`). The tokenizer comes from its `tokenization_info`
  function, or Model Garden's `sp_model_file` / `vocab_file` and `do_lower_case` attributes.

Either result can be passed as `encoder=` to every task model, and carries `.tokenizer` (a
`FullTokenizer` with `.do_lower_case` set from the module, or None when the module has none).
The formats themselves are read by `albert_tf.checkpoints.hub_format`.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

import tensorflow as tf
import tf_keras as keras
from absl import logging

from albert_tf.checkpoints import source as model_source
from albert_tf.checkpoints.hub_format import (_EXPECTED, _FLAG, hub_format, hub_module_config,  # noqa: F401
                                              infer_config, resolve_handle)
from albert_tf.checkpoints.tf1 import LoadReport, load_variables
from albert_tf.configs import AlbertConfig
from albert_tf.modeling.encoder import AlbertModel, dummy_inputs
from albert_tf.tokenization import FullTokenizer


def load_tf1_hub_module(model, handle: str | os.PathLike | model_source.ModelSource) -> LoadReport:
    """Copies a TF1 Hub module's variables into `model` (anything with `tf1_variables()`), strictly.

    The module's name prefix is stripped; its pretraining heads (`cls/*`) load into an
    `AlbertPretrainer` and are ignored (with a message) by an encoder. Raises
    `CheckpointMismatchError` as `load_original_checkpoint` does.
    """
    src = handle if isinstance(handle, model_source.ModelSource) else model_source.resolve(handle, hub=True)
    return load_variables(model, src.variable_shapes(), src.get_tensor, os.path.join(src.location, "variables", "variables"))


def _load_tf2_encoder(directory: str, trainable: bool) -> keras.layers.Layer:
    import tensorflow_hub as hub  # local: only TF2 handles need it
    import tensorflow_text  # noqa: F401  (registers text ops, for SavedModels that bundle preprocessing)

    try:
        layer = hub.KerasLayer(directory, trainable=trainable, name="hub_encoder")
        outputs = layer(dummy_inputs(), training=False)
    except (ValueError, TypeError, tf.errors.OpError, AttributeError) as err:
        lines = [line for line in str(err).splitlines() if line.strip() and "Exception encountered" not in line]
        detail = lines[0].strip()[:300] if lines else type(err).__name__
        raise ValueError(f"{_FLAG} {directory} is a TF2 SavedModel that cannot be called as an encoder ({detail}); "
                         f"{_EXPECTED}: dict inputs input_word_ids, input_mask, input_type_ids (int32 [B,S]) -> "
                         "dict outputs sequence_output, pooled_output, encoder_outputs.") from None
    keys = sorted(outputs) if isinstance(outputs, Mapping) else type(outputs).__name__
    if not isinstance(outputs, Mapping) or not {"sequence_output", "pooled_output"} <= set(outputs):
        raise ValueError(f"{_FLAG} {directory}: the SavedModel returns {keys}; {_EXPECTED}, whose outputs are a dict "
                         "with sequence_output [B,S,H] and pooled_output [B,H].")
    return layer



def hub_tokenizer(handle: str | os.PathLike, use_spm: bool = True) -> FullTokenizer:
    """The tokenizer of a hub handle (both formats), with `.do_lower_case` set from the module.

    As the original `FullTokenizer.from_hub_module`: the module's `vocab_file` (the SentencePiece
    model for ALBERT) becomes `spm_model_file` when `use_spm`, else the WordPiece `vocab_file`.
    Callers lower-case the text (`preprocess_text(..., lower=tokenizer.do_lower_case)`).

    Raises:
      ValueError: the module carries no tokenizer, naming the flags to use.
    """
    return FullTokenizer.from_spec(model_source.resolve(handle, hub=True).tokenizer_spec(use_spm))


def from_hub(handle: str | os.PathLike | model_source.ModelSource, trainable: bool = True,
             config: Optional[AlbertConfig] = None) -> keras.layers.Layer:
    """An encoder from a TF-Hub handle, for `encoder=` of any task model (see the module docstring).

    Args:
      handle: a directory or a URL tensorflow_hub resolves (`--albert_hub_module_handle`).
      trainable: whether fine-tuning updates the encoder's weights.
      config: for a TF1 module, the model config (default: its `assets/albert_config.json`, else
        inferred from its shapes); ignored for a TF2 SavedModel.

    Returns:
      TF1 module: an `AlbertModel` holding the module's weights (official names, so checkpoints
      written from it load anywhere). TF2 SavedModel: a `hub.KerasLayer`. Either has `.tokenizer`
      (a `FullTokenizer` with `.do_lower_case`, or None if the module has none).

    Raises:
      FileNotFoundError / ValueError: the handle is neither format (the message says what was
        found and what was expected); `CheckpointMismatchError`: a TF1 module's variables do not
        match the config.
    """
    src = handle if isinstance(handle, model_source.ModelSource) else model_source.resolve(handle, hub=True)
    if src.kind == model_source.HUB_TF1:
        encoder = AlbertModel(config or src.config())
        load_tf1_hub_module(encoder, src)
        encoder.trainable = trainable
        loaded = None
    else:
        encoder = _load_tf2_encoder(src.location, trainable)
        loaded = encoder.resolved_object
    try:
        encoder.tokenizer = FullTokenizer.from_spec(src.tokenizer_spec(loaded=loaded))
    except (ValueError, FileNotFoundError) as err:
        logging.warning("No tokenizer from %s (%s)", src.location, err)
        encoder.tokenizer = None
    return encoder
