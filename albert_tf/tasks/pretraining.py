"""The pretraining task (original `run_pretraining.py`): MLM + sentence-order-prediction losses and
metrics, and the train / evaluate driver on top of the shared training loop.

Outputs in `output_dir`: TF2 training state in `tf2_checkpoints/` (resume), the official TF1 layout
`model.ckpt-<step>` at every save (the last `keep_checkpoint_max` kept) and `model.ckpt-best` (best
`masked_lm_accuracy` when evaluating during training), `eval_results.txt`, TensorBoard summaries.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

import tensorflow as tf
from absl import logging

from albert_tf import checkpoints
from albert_tf.core import distribute, trainer as training
from albert_tf.configs import AlbertConfig
from albert_tf.data.pretraining import pretraining_dataset
from albert_tf.modeling import AlbertPretrainer
from albert_tf.optimization import create_optimizer

EVAL_KEYS = ("global_step", "loss", "masked_lm_accuracy", "masked_lm_loss", "sentence_order_accuracy",
             "sentence_order_loss")


def _masked_lm_cross_entropy(features, outputs) -> tf.Tensor:
    """Per-position MLM loss [B,P] (labels `masked_lm_ids`)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=features["masked_lm_ids"],
                                                          logits=outputs["mlm_logits"])


def _sentence_order_labels(features) -> tf.Tensor:
    return tf.reshape(features["next_sentence_labels"], [-1])


def _sentence_order_cross_entropy(features, outputs) -> tf.Tensor:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=_sentence_order_labels(features),
                                                          logits=outputs["sop_logits"])


def pretraining_loss(features, outputs) -> tf.Tensor:
    """Original total loss: weighted MLM loss `sum(w*l)/(sum(w)+1e-5)` plus mean SOP cross-entropy."""
    weights = features["masked_lm_weights"]
    per_position = _masked_lm_cross_entropy(features, outputs)
    mlm = tf.reduce_sum(weights * per_position) / (tf.reduce_sum(weights) + 1e-5)
    return mlm + tf.reduce_mean(_sentence_order_cross_entropy(features, outputs))


def _accuracy(labels, logits) -> tf.Tensor:
    return tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels), tf.float32)


# name -> fn(features, outputs) -> (values, weights); weighted means as the original tf.metrics.
PRETRAINING_METRICS = {
    "masked_lm_accuracy": lambda f, o: (_accuracy(f["masked_lm_ids"], o["mlm_logits"]), f["masked_lm_weights"]),
    "masked_lm_loss": lambda f, o: (_masked_lm_cross_entropy(f, o), f["masked_lm_weights"]),
    "sentence_order_accuracy": lambda f, o: _accuracy(_sentence_order_labels(f), o["sop_logits"]),
    "sentence_order_loss": _sentence_order_cross_entropy,
}


@dataclasses.dataclass
class PretrainingRun:
    """Everything `run_pretraining.py` needs; field names and defaults are the original flags'."""

    albert_config_file: str
    input_file: str
    output_dir: str
    init_checkpoint: Optional[str] = None
    eval_input_file: Optional[str] = None  # TF2 addition; the original evaluated on `input_file`
    do_train: bool = True
    do_eval: bool = False
    train_batch_size: int = 4096
    eval_batch_size: int = 64
    max_seq_length: int = 512
    max_predictions_per_seq: int = 20
    optimizer: str = "lamb"
    learning_rate: float = 0.00176
    poly_power: float = 1.0
    num_train_steps: int = 125000
    num_warmup_steps: int = 3125
    start_warmup_step: int = 0
    save_checkpoints_steps: int = 5000
    keep_checkpoint_max: int = 5
    max_eval_steps: int = 100
    init_from_group0: bool = False
    steps_per_loop: int = 1000
    log_steps: Optional[int] = None
    jit_compile: bool = False
    write_summaries: bool = True


def load_init_checkpoint(model: AlbertPretrainer, path: str, init_from_group0: bool = False):
    """Initialises a pretrainer from an official-layout checkpoint.

    A checkpoint with pretraining heads (`cls/*`) is loaded strictly into the whole pretrainer; one without
    (an encoder-only export) is loaded strictly into the encoder and the heads keep their fresh
    initialisation, which is logged.
    """
    prefix = checkpoints.resolve_checkpoint_path(path)
    names = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    if any(n.startswith("cls/") for n in names):
        return checkpoints.load_original_checkpoint(model, path, init_from_group0=init_from_group0)
    logging.warning("%s has no pretraining heads (cls/*): loading the encoder only; the MLM and SOP "
                    "heads start from their random initialisation.", prefix)
    return checkpoints.load_original_checkpoint(model.encoder, path, init_from_group0=init_from_group0)


def write_eval_results(path: str, results: dict[str, Any], mode: str = "a") -> None:
    """Appends `key = value` lines (sorted), as the original `eval_results.txt`."""
    with tf.io.gfile.GFile(path, mode) as f:
        for key in sorted(results):
            f.write(f"{key} = {results[key]}\n")


class _Evaluator:
    """Evaluates the pretrainer for `max_eval_steps` batches and keeps `model.ckpt-best` up to date."""

    def __init__(self, run: PretrainingRun, strategy: tf.distribute.Strategy):
        self.run, self.strategy = run, strategy
        self.best: Optional[float] = None
        self.path = os.path.join(run.output_dir, "eval_results.txt")
        eval_files = run.eval_input_file or run.input_file

        def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
            # The original eval input repeats; `max_eval_steps` bounds it.
            return pretraining_dataset(eval_files, run.max_seq_length, run.max_predictions_per_seq,
                                       ctx.get_per_replica_batch_size(run.eval_batch_size), is_training=False,
                                       input_context=ctx, repeat=True)

        self.dataset_fn = dataset_fn

    def __call__(self, model: AlbertPretrainer, step: int) -> dict[str, Any]:
        results = training.evaluate(self.strategy, model, self.dataset_fn, metrics=PRETRAINING_METRICS,
                                    loss_fn=pretraining_loss, num_steps=self.run.max_eval_steps,
                                    jit_compile=self.run.jit_compile)
        results = {k: float(v) for k, v in results.items()}
        results["global_step"] = step
        logging.info("Eval at step %d: %s", step,
                     ", ".join(f"{k}={results[k]:.4f}" for k in EVAL_KEYS if k != "global_step"))
        write_eval_results(self.path, results)
        if self.best is None or results["masked_lm_accuracy"] > self.best:
            self.best = results["masked_lm_accuracy"]
            checkpoints.save_original_checkpoint(model, os.path.join(self.run.output_dir, "model.ckpt-best"))
        return results


def run_pretraining(run: PretrainingRun, strategy: Optional[tf.distribute.Strategy] = None) -> dict[str, Any]:
    """Trains and/or evaluates; returns `{"train": trainer summary, "eval": [eval results...]}`."""
    strategy = strategy or distribute.get_strategy("one_device")
    config = AlbertConfig.from_json_file(run.albert_config_file)
    if run.max_seq_length > config.max_position_embeddings:
        raise ValueError(f"--max_seq_length={run.max_seq_length} exceeds max_position_embeddings="
                         f"{config.max_position_embeddings} of {run.albert_config_file}.")
    if not (run.do_train or run.do_eval):
        raise ValueError("Nothing to do: set --do_train and/or --do_eval.")
    tf.io.gfile.makedirs(run.output_dir)
    multi_worker = distribute.is_multi_worker(strategy)
    evaluator = _Evaluator(run, strategy) if run.do_eval else None
    evals: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}

    if run.do_train:
        def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
            return pretraining_dataset(run.input_file, run.max_seq_length, run.max_predictions_per_seq,
                                       ctx.get_per_replica_batch_size(run.train_batch_size), is_training=True,
                                       input_context=ctx)

        def on_checkpoint(step: int, _path: str) -> None:
            checkpoints.save_original_checkpoint(trainer.model, os.path.join(run.output_dir, "model.ckpt"), step)
            checkpoints.prune_checkpoints(run.output_dir, run.keep_checkpoint_max)
            # Evaluation runs collectives, which the chief cannot run alone in a multi-worker job.
            if evaluator is not None and not multi_worker:
                evals.append(evaluator(trainer.model, step))

        init_fn = (lambda model: load_init_checkpoint(model, run.init_checkpoint, run.init_from_group0)
                   ) if run.init_checkpoint else None
        trainer = training.Trainer(
            strategy=strategy, model_fn=lambda: AlbertPretrainer(config),
            optimizer_fn=lambda: create_optimizer(run.learning_rate, run.num_train_steps, run.num_warmup_steps,
                                                  run.optimizer, run.poly_power, run.start_warmup_step),
            dataset_fn=dataset_fn, loss_fn=pretraining_loss, metrics=PRETRAINING_METRICS,
            global_batch_size=run.train_batch_size, num_train_steps=run.num_train_steps, model_dir=run.output_dir,
            steps_per_loop=run.steps_per_loop, log_steps=run.log_steps,
            save_checkpoints_steps=run.save_checkpoints_steps, keep_checkpoint_max=run.keep_checkpoint_max,
            jit_compile=run.jit_compile, write_summaries=run.write_summaries, init_fn=init_fn,
            on_checkpoint=on_checkpoint)
        summary = trainer.train()
    elif evaluator is not None:
        evals.append(_evaluate_saved(run, strategy, config, evaluator))
    return {"train": summary, "eval": evals}


def _evaluate_saved(run: PretrainingRun, strategy, config: AlbertConfig, evaluator: _Evaluator) -> dict[str, Any]:
    """`--do_eval` alone: the newest training state in `output_dir`, else `--init_checkpoint`."""
    with strategy.scope():
        model = AlbertPretrainer(config)
    latest = tf.train.latest_checkpoint(os.path.join(run.output_dir, training.CHECKPOINT_SUBDIR))
    if latest:
        tf.train.Checkpoint(model=model).restore(latest).expect_partial().assert_existing_objects_matched()
        step = training.checkpoint_global_step(latest) or 0
    elif run.init_checkpoint:
        report = load_init_checkpoint(model, run.init_checkpoint, run.init_from_group0)
        step = training.checkpoint_global_step(report.path) or 0
    else:
        raise ValueError(f"--do_eval without --do_train needs a trained model: none in {run.output_dir} "
                         "and no --init_checkpoint given.")
    return evaluator(model, step)
