"""The one export base: SavedModels of fine-tuned models, as the original `estimator.export_saved_model`
did, plus raw-text SavedModels with in-graph SentencePiece preprocessing.

A task supplies its model (taking the ALBERT input dict, returning its outputs dict), a parse function
(the serving inputs -> the model's input dict) and an outputs function (the model's whole outputs dict
-> the served tensors). `ModelServing` is the base every task's serving module builds on;
`export_saved_models` writes, under one timestamp:

- `export_dir_base/<timestamp>/` (`ExampleServingModule`), the original serving input: signature
  `serving_default(serialized_example: string [None])`, `tf.train.Example`s holding `input_ids`,
  `input_mask`, `segment_ids` (int64 [seq_length]). Plain TensorFlow ops only: it loads with
  `tf.saved_model.load` (or TF Serving) without albert_tf or tensorflow_text;
- `export_dir_base/<timestamp>_text/` (`TextServingModule`): `serving_default(text_a[, text_b]: string
  [None])` encodes raw UTF-8 text in-graph as `[CLS] a [SEP] (b [SEP])` like the Python feature
  code (up to the input classes listed in `InGraphTokenizer`), and `tokenization_info()` ->
  `vocab_file` (the SentencePiece `.model`, stored as an asset) and
  `do_lower_case`. Its ops come from tensorflow_text: `import tensorflow_text` before loading it.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Mapping, Optional, Sequence

import tensorflow as tf
import tf_keras as keras
from absl import logging

from albert_tf.data.classifier_features import classifier_feature_spec
from albert_tf.data.records import parse_and_cast
from albert_tf.export.spm_asset import TOKENIZATION_INFO, attach_spm_asset
from albert_tf.preprocessing import AlbertPreprocessor

# The model's outputs dict -> the served tensors (each with a leading batch dimension).
OutputsFn = Callable[[Mapping[str, tf.Tensor]], Mapping[str, tf.Tensor]]
# Serialized tf.train.Examples (string [B]) -> the model's input dict.
ParseFn = Callable[[tf.Tensor], dict[str, tf.Tensor]]
EXAMPLES = ""  # suffix of the original-style SavedModel directory
TEXT = "_text"  # suffix of the raw-text SavedModel directory
INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")  # the model's int32 inputs


# On-disk feature names -> model input names.
_FEATURE_TO_INPUT = {"input_ids": "input_word_ids", "input_mask": "input_mask", "segment_ids": "input_type_ids"}


def example_parser(spec: Mapping[str, tf.io.FixedLenFeature],
                   reshape: Optional[Callable[[tf.Tensor], tf.Tensor]] = None) -> ParseFn:
    """A `ParseFn` for `tf.train.Example`s with the features of `spec` (int64 cast to int32); `input_ids`,
    `input_mask`, `segment_ids` are renamed to the model's input names, other features keep theirs.
    `reshape` (e.g. [B, 4*S] -> [B, 4, S] for multiple choice) is applied to every parsed tensor."""

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = parse_and_cast(serialized, spec)
        return {_FEATURE_TO_INPUT.get(k, k): (reshape(v) if reshape else v) for k, v in parsed.items()}

    return parse


def classifier_example_parser(seq_length: int) -> ParseFn:
    """The original classifier serving input: `input_ids`, `input_mask`, `segment_ids` int64 [seq_length]."""
    spec = classifier_feature_spec(seq_length, is_regression=False)
    return example_parser({name: spec[name] for name in _FEATURE_TO_INPUT})


class ModelServing(tf.Module):
    """The base of every serving module: a model, the task function that turns its outputs into served
    tensors, and an optional constant `threshold` output (the original `--threshold_to_export`).

    Args:
      model: a tf_keras model taking the ALBERT input dict and returning its outputs dict.
      outputs_fn: the task's `OutputsFn`.
      threshold: served as a constant float32 scalar `threshold` when given.
      name: the module name.
    """

    def __init__(self, model: keras.Model, outputs_fn: OutputsFn, threshold: Optional[float], name: str):
        super().__init__(name=name)
        # Only the variables are tracked, not the tf_keras model: saving a tracked Keras model also runs
        # Keras' own SavedModel serialization (tracing every layer's call), which nearly doubles the
        # export time and adds nothing the served functions need.
        self.model_variables = list(model.variables)
        self._call_model = model.__call__
        self._outputs_fn = outputs_fn
        self._threshold = threshold

    def _serve(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        outputs = dict(self._outputs_fn(self._call_model(inputs, training=False)))
        if self._threshold is not None:
            outputs["threshold"] = tf.constant(self._threshold, tf.float32)
        return outputs


class ExampleServingModule(ModelServing):
    """The original serving input: `serving_default(serialized_example: string [B])`.

    Args:
      model, outputs_fn, threshold: as for `ModelServing`.
      parse_fn: serialized examples -> the model's inputs (e.g. `classifier_example_parser(seq_length)`).
    """

    def __init__(self, model: keras.Model, parse_fn: ParseFn, outputs_fn: OutputsFn,
                 threshold: Optional[float] = None):
        super().__init__(model, outputs_fn, threshold, name="example_serving")
        self._parse = parse_fn

    def serve(self, serialized_example: tf.Tensor) -> dict[str, tf.Tensor]:
        """string [B] of serialized examples -> served outputs."""
        return self._serve(self._parse(serialized_example))

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """The concrete functions to save, by signature key."""
        spec = tf.TensorSpec([None], tf.string, name="serialized_example")
        return {"serving_default": tf.function(self.serve).get_concrete_function(spec)}


class TextServingModule(ModelServing):
    """Raw text in: `serving_default(text_a[, text_b]: string [B])` and `tokenization_info()`.

    Args:
      model, outputs_fn, threshold: as for `ExampleServingModule`.
      spm_model_file: the SentencePiece model; tokenized in-graph by
        `albert_tf.preprocessing.AlbertPreprocessor` and also stored as an asset.
      do_lower_case: lower-case the text (and report it in `tokenization_info`).
      seq_length: length the texts are packed and padded to.
      text_inputs: ("text_a",) for single-text tasks, ("text_a", "text_b") for pairs.
      label_strings: when given, a `labels` output (string [B]) maps `outputs["predictions"]` to them.
    """

    def __init__(self, model: keras.Model, outputs_fn: OutputsFn, spm_model_file: str, do_lower_case: bool,
                 seq_length: int, text_inputs: Sequence[str] = ("text_a",),
                 label_strings: Optional[Sequence[str]] = None, threshold: Optional[float] = None):
        super().__init__(model, outputs_fn, threshold, name="text_serving")
        if tuple(text_inputs) not in (("text_a",), ("text_a", "text_b")):
            raise ValueError(f"text_inputs must be ('text_a',) or ('text_a', 'text_b'), got {text_inputs!r}.")
        # The model file as an asset, `sp_model_file` / `do_lower_case` and `tokenization_info`.
        self._tokenization_info = attach_spm_asset(self, spm_model_file, do_lower_case)
        # Untracked for the same reason as the model (it has no variables; its SentencePiece model is
        # a constant of the traced graph).
        self._preprocess = AlbertPreprocessor(spm_model_file, do_lower_case, seq_length).__call__
        self.text_inputs = tuple(text_inputs)
        self._label_strings = None if label_strings is None else [str(label) for label in label_strings]

    def serve(self, *texts: tf.Tensor) -> dict[str, tf.Tensor]:
        """Raw strings [B] (one or two segments) -> served outputs (+ `labels`)."""
        outputs = self._serve(self._preprocess(tuple(texts) if len(texts) > 1 else texts[0]))
        if self._label_strings is not None:
            outputs["labels"] = tf.gather(tf.constant(self._label_strings), outputs["predictions"])
        return outputs

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """The concrete functions to save, by signature key."""
        specs = [tf.TensorSpec([None], tf.string, name=name) for name in self.text_inputs]
        if len(specs) == 1:
            serve = tf.function(lambda text_a: self.serve(text_a))
        else:
            serve = tf.function(lambda text_a, text_b: self.serve(text_a, text_b))
        return {"serving_default": serve.get_concrete_function(*specs),
                TOKENIZATION_INFO: self._tokenization_info}


class FeatureServing(ModelServing):
    """A model served on feature tensors: `serve(input_word_ids, input_mask, input_type_ids)` (int32
    [B, *input_shape] each) -> `outputs_fn(model outputs)`. The common form ONNX and TFLite convert.

    Args:
      model: a tf_keras model taking the ALBERT input dict.
      outputs_fn: the model's outputs dict -> the served tensors.
      input_shape: the shape after the batch dimension ([S], or [C, S] for multiple choice).
      input_names: the int32 inputs, in signature order.
      name: the module name.
    """

    def __init__(self, model: keras.Model, outputs_fn: OutputsFn, input_shape: Sequence[int],
                 input_names: Sequence[str] = INPUT_NAMES, name: str = "feature_serving"):
        super().__init__(model, outputs_fn, None, name=name)
        self.input_shape = tuple(input_shape)
        self.input_names = tuple(input_names)

    def input_specs(self, batch_size: Optional[int] = None) -> list[tf.TensorSpec]:
        """int32 [batch_size, *input_shape] specs named as the inputs (batch_size None: any)."""
        return [tf.TensorSpec([batch_size, *self.input_shape], tf.int32, name=name) for name in self.input_names]

    def serve(self, *inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        """The inputs, in `input_names` order -> the served tensors."""
        return self._serve(dict(zip(self.input_names, inputs)))

    def concrete_function(self, batch_size: Optional[int] = None) -> tf.types.experimental.ConcreteFunction:
        """`serve` traced for `input_specs(batch_size)`."""
        return tf.function(self.serve, autograph=False).get_concrete_function(*self.input_specs(batch_size))

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """The concrete functions to save, by signature key."""
        return {"serving_default": self.concrete_function()}


def free_stamp(export_dir_base: str, suffixes: Sequence[str]) -> str:
    """Unix seconds, moved on while `export_dir_base/<stamp><suffix>` exists for any suffix."""
    stamp = int(time.time())
    while any(tf.io.gfile.exists(os.path.join(export_dir_base, f"{stamp}{s}")) for s in suffixes):
        stamp += 1
    return str(stamp)


def export_saved_models(modules: Mapping[str, ModelServing],
                        export_dir_base: str) -> dict[str, str]:
    """Saves each module as a SavedModel in `export_dir_base/<timestamp><suffix>/` (one timestamp).

    Each is written under a temporary name and renamed, so a half-written export never looks complete.

    Args:
      modules: {directory suffix: module}, e.g. {EXAMPLES: ExampleServingModule, TEXT: TextServingModule}.
      export_dir_base: created if missing.

    Returns:
      {suffix: SavedModel directory}.
    """
    tf.io.gfile.makedirs(export_dir_base)
    stamp = free_stamp(export_dir_base, list(modules))
    paths = {}
    for suffix, module in modules.items():
        final = os.path.join(export_dir_base, f"{stamp}{suffix}")
        temp = os.path.join(export_dir_base, f"temp-{stamp}{suffix}")
        signatures = module.signatures()
        tf.saved_model.save(module, temp, signatures=signatures)
        tf.io.gfile.rename(temp, final)
        logging.info("Exported a SavedModel with signatures %s to %s", sorted(signatures), final)
        paths[suffix] = final
    return paths
