"""RACE exports: the served outputs of a multiple-choice model and its serving module."""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from albert_tf.export import serving
from albert_tf.tasks.race import data as race


def choice_outputs(logits: tf.Tensor) -> dict[str, tf.Tensor]:
    """The served outputs of logits [B,4]: `logits` (float32), `probabilities` (softmax [B,4]) and
    `predictions` (argmax [B], int32)."""
    logits = tf.cast(logits, tf.float32)
    return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1),
            "predictions": tf.argmax(logits, axis=-1, output_type=tf.int32)}


class MultipleChoiceServingModule(serving.ModelServing):
    """`serving_default(input_word_ids, input_mask, input_type_ids: int32 [B,C,S])` and
    `serve_examples(serialized_example: string [B])` (records with `input_ids`, `input_mask`,
    `segment_ids` int64 [C*S]), both -> `choice_outputs`.

    Args:
      model: a multiple-choice model ([B,C,S] inputs -> `logits` [B,C]).
      seq_length: S, the length of one choice.
      num_choices: C.
    """

    def __init__(self, model: keras.Model, seq_length: int, num_choices: int = race.NUM_CHOICES):
        super().__init__(model, lambda outputs: choice_outputs(outputs["logits"]), None, name="race_serving")
        self.seq_length = seq_length
        self.num_choices = num_choices
        spec = {name: tf.io.FixedLenFeature([num_choices * seq_length], tf.int64)
                for name in ("input_ids", "input_mask", "segment_ids")}
        self._parse = serving.example_parser(spec, reshape=lambda t: tf.reshape(t, [-1, num_choices, seq_length]))

    def serve(self, input_word_ids: tf.Tensor, input_mask: tf.Tensor, input_type_ids: tf.Tensor
              ) -> dict[str, tf.Tensor]:
        """The model inputs, int32 [B,C,S] each -> served outputs."""
        return self._serve({"input_word_ids": input_word_ids, "input_mask": input_mask,
                            "input_type_ids": input_type_ids})

    def serve_examples(self, serialized_example: tf.Tensor) -> dict[str, tf.Tensor]:
        """string [B] of serialized feature records -> served outputs."""
        return self._serve(self._parse(serialized_example))

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """The concrete functions to save, by signature key."""
        specs = [tf.TensorSpec([None, self.num_choices, self.seq_length], tf.int32, name=name)
                 for name in ("input_word_ids", "input_mask", "input_type_ids")]
        example = tf.TensorSpec([None], tf.string, name="serialized_example")
        return {"serving_default": tf.function(self.serve).get_concrete_function(*specs),
                "serve_examples": tf.function(self.serve_examples).get_concrete_function(example)}
