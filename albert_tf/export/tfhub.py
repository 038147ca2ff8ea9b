"""Export for TF-Hub: an encoder SavedModel (+ its `mlm` sub-object) and a preprocessing SavedModel,
with the interfaces of Model Garden's TF2 ALBERT models on tfhub.dev / Kaggle Models.

Encoder (`export_encoder`), loaded as `encoder = hub.KerasLayer(path, trainable=True)`:

    outputs = encoder(dict(input_word_ids=ids, input_mask=mask, input_type_ids=types))  # int32 [B,S]
    outputs["pooled_output"]    # [B,H]
    outputs["sequence_output"]  # [B,S,H]
    outputs["encoder_outputs"]  # list of L*K tensors [B,S,H]
    outputs["embedding_output"] # [B,S,E] (also returned by albert_tf's encoder)
    mlm = hub.KerasLayer(hub.load(path).mlm, trainable=True)   # when exported with_mlm
    mlm(dict(..., masked_lm_positions=positions))["mlm_logits"]  # [B,P,V]

The root and `mlm` objects are reusable SavedModels (`__call__` with a `training` argument, traced
for both values; `variables`, `trainable_variables`, `regularization_losses`), so Keras fine-tunes
them. Signatures for TF Serving: `serving_default` (the three inputs -> `sequence_output`,
`pooled_output`), `mlm` (+ `masked_lm_positions` -> `mlm_logits`) and, when a SentencePiece model
is given, `tokenization_info` (see `albert_tf.export.spm_asset`).

The graphs use MatMul/BatchMatMul, Softmax, Tanh, Gather and elementwise ops only (no Einsum, no
Erf, no tensorflow_text): they load in a process with plain TensorFlow, and convert to TFLite with
builtin ops. Preprocessing (`export_preprocessing`, which is
`albert_tf.preprocessing.export_preprocessing_savedmodel`) needs `import tensorflow_text`.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional

import tensorflow as tf
import tf_keras as keras

from albert_tf.export import deploy, serving
from albert_tf.export.spm_asset import TOKENIZATION_INFO, attach_spm_asset
from albert_tf.modeling.encoder import ENCODER_INPUTS, AlbertModel
from albert_tf.preprocessing import export_preprocessing_savedmodel as export_preprocessing

__all__ = ["export_encoder", "export_preprocessing"]

MLM = "mlm"


def _input_specs(with_positions: bool) -> dict[str, tf.TensorSpec]:
    names = ENCODER_INPUTS + (("masked_lm_positions",) if with_positions else ())
    return {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in names}


def _reusable(call: Callable[..., dict[str, Any]], variables: list[tf.Variable],
              with_positions: bool) -> tf.train.Checkpoint:
    """A reusable-SavedModel object: `__call__(inputs, training=False)` traced for both `training`
    values, and the variable lists hub.KerasLayer reads."""
    obj = tf.train.Checkpoint()
    obj.variables = variables
    obj.trainable_variables = [v for v in variables if v.trainable]
    obj.regularization_losses = []
    obj.__call__ = tf.function(call, autograph=False)
    for training in (False, True):
        obj.__call__.get_concrete_function(_input_specs(with_positions), training=training)
    return obj


def _unique(variables: list[tf.Variable]) -> list[tf.Variable]:
    seen, out = set(), []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            out.append(variable)
    return out


def export_encoder(model: keras.Model, path: str | os.PathLike, with_mlm: Optional[bool] = None, *,
                   spm_model_file: Optional[str | os.PathLike] = None, do_lower_case: bool = True) -> str:
    """Writes `model`'s encoder (and MLM head) as a TF-Hub encoder SavedModel (see the module docstring).

    Args:
      model: an `AlbertModel`, an `AlbertPretrainer`, or any task model whose `encoder` is an
        `AlbertModel` (its head is not exported).
      path: the SavedModel directory to write.
      with_mlm: also export the `mlm` sub-object and signature. None (default): when `model` has the
        MLM head (an `AlbertPretrainer`); True requires it; False exports the encoder alone.
      spm_model_file: optional SentencePiece model stored with the export (`sp_model_file`,
        `tokenization_info`), so `from_hub` / `hub_tokenizer` find the tokenizer.
      do_lower_case: the casing recorded with `spm_model_file`.

    Returns:
      `path` as a string.

    Raises:
      ValueError: `model` has no `AlbertModel` encoder, or `with_mlm` without an MLM head.
    """
    encoder = model if isinstance(model, AlbertModel) else getattr(model, "encoder", None)
    if not isinstance(encoder, AlbertModel):
        raise ValueError(f"export_encoder needs an AlbertModel or a model whose .encoder is one; got "
                         f"{type(model).__name__}.")
    masked_lm = getattr(model, "masked_lm", None)
    if with_mlm is None:
        with_mlm = masked_lm is not None
    if with_mlm and masked_lm is None:
        raise ValueError(f"with_mlm=True needs the MLM head of an AlbertPretrainer; {type(model).__name__} has "
                         "none. Pass an AlbertPretrainer (e.g. loaded from a pretraining checkpoint) or "
                         "with_mlm=False.")

    def call_encoder(inputs: dict[str, tf.Tensor], training: bool = False) -> dict[str, Any]:
        outputs = encoder({k: inputs[k] for k in ENCODER_INPUTS}, training=training)
        return {k: outputs[k] for k in ("sequence_output", "pooled_output", "encoder_outputs", "embedding_output")}

    root = _reusable(call_encoder, list(encoder.variables), with_positions=False)
    serving = tf.function(lambda inputs: {k: v for k, v in call_encoder(inputs).items()
                                          if k in ("sequence_output", "pooled_output")}, autograph=False)
    signatures = {"serving_default": serving.get_concrete_function(_input_specs(False))}
    if with_mlm:
        def call_mlm(inputs: dict[str, tf.Tensor], training: bool = False) -> dict[str, Any]:
            outputs = call_encoder(inputs, training)
            logits = masked_lm(outputs["sequence_output"], inputs["masked_lm_positions"])
            return {**outputs, "mlm_logits": tf.cast(logits, tf.float32)}

        root.mlm = _reusable(call_mlm, _unique(list(encoder.variables) + list(masked_lm.variables)),
                             with_positions=True)
        serving_mlm = tf.function(lambda inputs: {"mlm_logits": call_mlm(inputs)["mlm_logits"]}, autograph=False)
        signatures[MLM] = serving_mlm.get_concrete_function(_input_specs(True))
    if spm_model_file is not None:
        signatures[TOKENIZATION_INFO] = attach_spm_asset(root, spm_model_file, do_lower_case)
    path = os.fspath(path)
    tf.saved_model.save(root, path, signatures=signatures)
    return path


def export_from_checkpoint(export_path: str, albert_config_file: str, init_checkpoint: str,
                           spm_model_file: Optional[str] = None, do_lower_case: bool = True, with_mlm: bool = True,
                           preprocessing_export_path: Optional[str] = None, seq_length: int = 128,
                           deploy_dir: Optional[str] = None, deploy_formats: str = "",
                           deploy_quantize: str = "") -> dict[str, str]:
    """`export_tfhub.py`: a checkpoint in the official TF1 layout -> encoder (+ preprocessing) SavedModels
    (+ the encoder's ONNX / TFLite files).

    Args:
      export_path: the encoder SavedModel directory.
      albert_config_file: the model's `albert_config.json`.
      init_checkpoint: checkpoint prefix or directory (a release, a pretraining or fine-tuning run).
      spm_model_file: the SentencePiece model, stored with the encoder (and needed for preprocessing).
      do_lower_case: the casing recorded with it and used by the preprocessing model.
      with_mlm: export the `mlm` sub-object; the checkpoint must hold the pretraining heads (`cls/*`).
      preprocessing_export_path: also write the preprocessing SavedModel there.
      seq_length: the preprocessing model's default `seq_length`, and the ONNX / TFLite files' sequence length.
      deploy_dir, deploy_formats, deploy_quantize: with `deploy_formats` (comma list of onnx, tflite), the
        encoder (`sequence_output`, `pooled_output`) as `albert_tf.export.deploy` files in
        `deploy_dir/<timestamp>_deploy/`, with the quantized variants of `deploy_quantize`.

    Returns:
      {"encoder": path(, "preprocessing": path)(, "onnx", "tflite", ...: deployment file paths)}.

    Raises:
      FileNotFoundError / ValueError: a missing file or a checkpoint without the MLM head, named with
        the flag to fix, before any model is built.
    """
    from albert_tf.checkpoints import source as model_source
    from albert_tf.checkpoints.loading import load_original_checkpoint
    from albert_tf.configs import AlbertConfig
    from albert_tf.modeling.models import AlbertPretrainer

    if not tf.io.gfile.exists(albert_config_file):
        raise FileNotFoundError(f"--albert_config_file {albert_config_file} not found.")
    if spm_model_file is not None and not tf.io.gfile.exists(spm_model_file):
        raise FileNotFoundError(f"--spm_model_file {spm_model_file} not found.")
    if preprocessing_export_path and spm_model_file is None:
        raise ValueError("--preprocessing_export_path needs the SentencePiece model (--spm_model_file).")
    formats = deploy.parse_list(deploy_formats, ("onnx", "tflite"), "deploy_formats")
    quantize = deploy.parse_list(deploy_quantize, ("float16", "int8"), "deploy_quantize")
    if (formats or quantize) and not (formats and deploy_dir):
        raise ValueError("--deploy_quantize needs --deploy_formats, and --deploy_formats needs --deploy_dir.")
    checkpoint = model_source.resolve_tf1(init_checkpoint)
    if with_mlm and not checkpoint.has_variables(["cls/predictions/output_bias"]):
        raise ValueError(f"{checkpoint.location} has no MLM head (cls/predictions/*), e.g. a fine-tuned checkpoint: "
                         "pass --nowith_mlm to export the encoder alone.")
    config = AlbertConfig.from_json_file(albert_config_file)
    model = AlbertPretrainer(config) if with_mlm else AlbertModel(config)
    load_original_checkpoint(model, checkpoint)
    paths = {"encoder": export_encoder(model, export_path, with_mlm, spm_model_file=spm_model_file,
                                       do_lower_case=do_lower_case)}
    if preprocessing_export_path:
        paths["preprocessing"] = export_preprocessing(preprocessing_export_path, spm_model_file, do_lower_case,
                                                      seq_length)
    if formats:
        encoder = model.encoder if with_mlm else model
        module = serving.FeatureServing(
            encoder, lambda outputs: {k: outputs[k] for k in ("sequence_output", "pooled_output")}, [seq_length])
        paths.update(deploy.write_deployment(module, deploy_dir, formats, quantize,
                                             (config.num_attention_heads, config.hidden_size)))
    return paths
