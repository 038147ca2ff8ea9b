"""The SentencePiece model of an exported SavedModel: an asset, and how consumers find it and the casing.

Every albert_tf SavedModel that tokenizes or is tokenized for (the raw-text serving export, the
preprocessing export, the TF-Hub encoder export) carries the same three things, so that each
consumer's lookup works:

- ``tokenization_info()``, a function and a signature, as the original TF1 Hub modules had: outputs
  ``vocab_file`` (string: the path of the SentencePiece ``.model`` asset, named so in the original)
  and ``do_lower_case`` (bool). Read by ``FullTokenizer.from_hub_module``.
- ``sp_model_file`` (a ``tf.saved_model.Asset``) and ``do_lower_case`` (a non-trainable bool
  ``tf.Variable``), the attributes Model Garden's ALBERT exports have (read as
  ``obj.sp_model_file.asset_path`` and ``obj.do_lower_case.numpy()``).
- the file itself under ``assets/`` of the SavedModel directory, with its original base name.
"""
from __future__ import annotations

import os

import tensorflow as tf

TOKENIZATION_INFO = "tokenization_info"


def attach_spm_asset(obj: tf.Module, spm_model_file: str | os.PathLike,
                     do_lower_case: bool) -> tf.types.experimental.ConcreteFunction:
    """Adds the SentencePiece asset, the casing and ``tokenization_info`` to ``obj`` before saving.

    Args:
      obj: the object passed to ``tf.saved_model.save`` (any trackable: ``tf.Module``,
        ``tf.train.Checkpoint``); gets the attributes ``sp_model_file``, ``do_lower_case`` and
        ``tokenization_info``.
      spm_model_file: the SentencePiece ``.model`` file.
      do_lower_case: whether the text is lower-cased before SentencePiece.

    Returns:
      The concrete ``tokenization_info`` function: pass it to ``tf.saved_model.save`` as
      ``signatures[TOKENIZATION_INFO]``.

    Raises:
      FileNotFoundError: the model file does not exist.
    """
    path = os.fspath(spm_model_file)
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise FileNotFoundError(f"--spm_model_file {path} not found; pass the SentencePiece .model the model "
                                "was trained with.")
    obj.sp_model_file = tf.saved_model.Asset(path)
    obj.do_lower_case = tf.Variable(bool(do_lower_case), trainable=False, name="do_lower_case")
    asset, casing = obj.sp_model_file, obj.do_lower_case

    def tokenization_info() -> dict[str, tf.Tensor]:
        """{} -> ``vocab_file`` (string scalar: the asset's path) and ``do_lower_case`` (bool scalar)."""
        return {"vocab_file": tf.identity(asset.asset_path), "do_lower_case": casing.read_value()}

    obj.tokenization_info = tf.function(tokenization_info, input_signature=[], autograph=False)
    return obj.tokenization_info.get_concrete_function()
