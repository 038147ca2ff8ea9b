"""GLUE classifier exports: the original serving outputs and the SavedModels (Example in, raw text in)."""
from __future__ import annotations

from typing import Any, Optional

import tensorflow as tf
import tf_keras as keras
from absl import logging

from albert_tf.export import serving
from albert_tf.tasks.glue import data as glue


def head_outputs(logits: tf.Tensor, is_regression: bool) -> dict[str, tf.Tensor]:
    """The original PREDICT outputs from logits [B,C]: `probabilities` (softmax [B,C] float32; the raw
    [B,1] score for regression) and `predictions` (argmax [B] int32; the score [B] for regression)."""
    if is_regression:
        return {"probabilities": logits, "predictions": tf.squeeze(logits, -1)}
    return {"probabilities": tf.nn.softmax(logits, axis=-1),
            "predictions": tf.argmax(logits, axis=-1, output_type=tf.int32)}


def export_classifier(model: keras.Model, export_dir_base: str, *, task_name: str, max_seq_length: int,
                      spm_model_file: Optional[str] = None, do_lower_case: bool = True,
                      threshold: Optional[float] = None) -> dict[str, str]:
    """Exports a GLUE classifier as SavedModels (see `albert_tf.export.serving`).

    `export_dir_base/<timestamp>/`, as the original: `serving_default(serialized_example)` ->
    `probabilities` float32 [None, C] ([None, 1] raw score for sts-b), `predictions` ([None] int32
    label ids; float32 scores for sts-b) and, when `threshold` is given, a constant float32 `threshold`.
    `export_dir_base/<timestamp>_text/` (only with `spm_model_file`): `serving_default(text_a)` for
    single-sentence tasks, `serving_default(text_a, text_b)` for pair tasks -> the same outputs plus
    `labels` (string [None], the predicted label) for classification tasks.

    Returns:
      {"": original-style SavedModel dir, "_text": raw-text SavedModel dir (when exported)}.
    """
    processor = glue.get_processor(task_name)

    def outputs_fn(outputs: dict) -> dict[str, tf.Tensor]:
        return head_outputs(tf.cast(outputs["logits"], tf.float32), processor.is_regression)

    modules: dict[str, Any] = {serving.EXAMPLES: serving.ExampleServingModule(
        model, serving.classifier_example_parser(max_seq_length), outputs_fn, threshold)}
    if spm_model_file:
        modules[serving.TEXT] = serving.TextServingModule(
            model, outputs_fn, spm_model_file, do_lower_case, max_seq_length,
            text_inputs=("text_a",) if processor.single_sentence else ("text_a", "text_b"),
            label_strings=None if processor.is_regression else processor.get_labels(), threshold=threshold)
    else:
        logging.warning("No --spm_model_file: the raw-text SavedModel is not exported.")
    return serving.export_saved_models(modules, export_dir_base)
