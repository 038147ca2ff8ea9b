"""The pretraining task (original `run_pretraining.py`): MLM + sentence-order prediction, as a `Task`
of the one driver.

Outputs in `output_dir` (written by the driver): TF2 training state in `tf2_checkpoints/` (resume), the
official TF1 layout `model.ckpt-<step>` at every save (the last `keep_checkpoint_max` kept),
`model.ckpt-best` (best held-out `masked_lm_accuracy` when evaluating), `eval_results.txt` with the
original's six keys, `best_trial.txt`, TensorBoard summaries.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras

from albert_tf.core.context import RunContext
from albert_tf.core.task import TRAIN_SHUFFLE_SEED, EvalSet, ServingCheckpoint, Task, check_seq_length
from albert_tf.tasks.pretraining.data import pretraining_dataset
from albert_tf.modeling import AlbertPretrainer
from albert_tf.tasks.pretraining.settings import PretrainingRun

EVAL_KEYS = ("global_step", "loss", "masked_lm_accuracy", "masked_lm_loss", "sentence_order_accuracy",
             "sentence_order_loss")


def _masked_lm_cross_entropy(features: dict, outputs: dict) -> tf.Tensor:
    """Per-position MLM loss [B,P] (labels `masked_lm_ids`)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=features["masked_lm_ids"],
                                                          logits=outputs["mlm_logits"])


def _sentence_order_labels(features: dict) -> tf.Tensor:
    return tf.reshape(features["next_sentence_labels"], [-1])


def _sentence_order_cross_entropy(features: dict, outputs: dict) -> tf.Tensor:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=_sentence_order_labels(features),
                                                          logits=outputs["sop_logits"])


def pretraining_loss(features: dict, outputs: dict) -> tf.Tensor:
    """Original total loss: weighted MLM loss `sum(w*l)/(sum(w)+1e-5)` plus mean SOP cross-entropy."""
    weights = features["masked_lm_weights"]
    per_position = _masked_lm_cross_entropy(features, outputs)
    mlm = tf.reduce_sum(weights * per_position) / (tf.reduce_sum(weights) + 1e-5)
    return mlm + tf.reduce_mean(_sentence_order_cross_entropy(features, outputs))


def _correct(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels), tf.float32)


# name -> fn(features, outputs) -> (values, weights): weighted means, as the original tf.metrics.
PRETRAINING_METRICS = {
    "masked_lm_accuracy": lambda f, o: (_correct(f["masked_lm_ids"], o["mlm_logits"]), f["masked_lm_weights"]),
    "masked_lm_loss": lambda f, o: (_masked_lm_cross_entropy(f, o), f["masked_lm_weights"]),
    "sentence_order_accuracy": lambda f, o: _correct(_sentence_order_labels(f), o["sop_logits"]),
    "sentence_order_loss": _sentence_order_cross_entropy,
}


class PretrainingTask(Task):
    """MLM + SOP pretraining (see the module docstring)."""

    compatibility_fields = ("max_seq_length", "max_predictions_per_seq")

    name = "pretraining"
    metric_key = "masked_lm_accuracy"

    def __init__(self, settings: PretrainingRun, context: Optional[RunContext] = None):
        super().__init__(settings, context)
        self.settings: PretrainingRun = settings

    def validate(self) -> None:
        s = self.settings
        if s.do_predict:
            raise ValueError("--do_predict: pretraining has no prediction mode (neither had the original).")
        check_seq_length(s.max_seq_length, self.config, s.albert_config_file)
        if s.max_eval_steps < 1:
            raise ValueError(f"--max_eval_steps must be >= 1, got {s.max_eval_steps}.")

    def num_train_steps(self) -> int:
        return self.settings.num_train_steps

    def num_warmup_steps(self) -> int:
        return self.settings.num_warmup_steps

    def build_model(self, encoder: Optional[keras.layers.Layer] = None) -> AlbertPretrainer:
        return AlbertPretrainer(self.config, encoder=encoder, recompute_grad=self.settings.recompute_grad)

    def _dataset(self, files: str, batch_size: int, is_training: bool,
                 input_context: Optional[tf.distribute.InputContext] = None) -> tf.data.Dataset:
        s = self.settings
        # Seeded (files interleaved in a fixed order too): a resumed distributed run continues the stream.
        return pretraining_dataset(files, s.max_seq_length, s.max_predictions_per_seq, batch_size,
                                   is_training=is_training, input_context=input_context, repeat=True,
                                   seed=TRAIN_SHUFFLE_SEED)

    def train_dataset(self, input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        s = self.settings
        return self._dataset(s.input_file, input_context.get_per_replica_batch_size(self.micro_batch_size()),
                             is_training=True, input_context=input_context)

    def loss(self, features: dict, outputs: dict) -> tf.Tensor:
        return pretraining_loss(features, outputs)

    def train_metrics(self) -> dict:
        return PRETRAINING_METRICS

    def eval_sets(self) -> list[EvalSet]:
        # The original eval input repeats; `max_eval_steps` bounds it.
        s = self.settings
        return [EvalSet("", self._dataset(s.eval_input_file or s.input_file, s.eval_batch_size, is_training=False),
                        num_steps=s.max_eval_steps)]

    def export(self, model: keras.Model, export_dir: str, checkpoint: ServingCheckpoint) -> dict[str, str]:
        """`--export_dir` (a TF2 addition): the pretrainer served on `input_word_ids`, `input_mask`,
        `input_type_ids` int32 [B,S] -> `mlm_logits` [B,S,V] (every position) and `sop_logits` [B,2]; as a
        SavedModel (with savedmodel in `--export_formats`) and as the ONNX / TFLite files of
        `albert_tf.export.deploy` (full_int8 calibrated on the eval input)."""
        from albert_tf.export import deploy, serving

        s = self.settings
        module = serving.FeatureServing(
            model, lambda outputs: {name: tf.cast(outputs[name], tf.float32) for name in ("mlm_logits", "sop_logits")},
            [s.max_seq_length])
        paths = {}
        if deploy.wants_saved_model(s):
            paths.update(serving.export_saved_models({serving.EXAMPLES: module}, export_dir))
        calibration = deploy.calibration_batches(
            lambda: self._dataset(s.eval_input_file or s.input_file, s.eval_batch_size, is_training=False),
            module.input_names)
        paths.update(deploy.export_task(module, s, self.config, calibration))
        return paths

    def validation_outputs(self, features: dict, outputs: dict) -> dict[str, tf.Tensor]:
        batch_loss = pretraining_loss(features, outputs)
        return {"mlm_correct": _correct(features["masked_lm_ids"], outputs["mlm_logits"]),
                "mlm_loss": _masked_lm_cross_entropy(features, outputs),
                "mlm_weights": tf.cast(features["masked_lm_weights"], tf.float32),
                "sop_correct": _correct(_sentence_order_labels(features), outputs["sop_logits"]),
                "sop_loss": _sentence_order_cross_entropy(features, outputs),
                # The batch's total loss on every example: its example-weighted mean is the original's
                # mean of the per-batch losses (weighted by batch size for a final partial batch).
                "loss": tf.fill(tf.shape(features["next_sentence_labels"])[:1], batch_loss)}

    def reduce_validation(self, collected: dict[str, dict[str, np.ndarray]], step: int) -> dict[str, Any]:
        out = collected[""]
        weights = out["mlm_weights"].astype(np.float64)
        total = weights.sum()

        def weighted(values: np.ndarray) -> float:
            return float((values * weights).sum() / total) if total > 0 else 0.0

        return {"loss": float(np.mean(out["loss"], dtype=np.float64)),
                "masked_lm_accuracy": weighted(out["mlm_correct"]),
                "masked_lm_loss": weighted(out["mlm_loss"]),
                "sentence_order_accuracy": float(np.mean(out["sop_correct"], dtype=np.float64)),
                "sentence_order_loss": float(np.mean(out["sop_loss"], dtype=np.float64))}
