"""Memory and speed options: gradient accumulation, recomputed blocks, XLA over the whole step, mixed
precision, and loop-only timing."""
from __future__ import annotations

import logging
import os
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import distributed_child as toy  # noqa: E402

import albert_tf  # noqa: E402
from albert_tf import optimization  # noqa: E402
from albert_tf.core import distribute, trainer as training  # noqa: E402
from albert_tf.modeling import layers  # noqa: E402
from albert_tf.tasks.pretraining.task import pretraining_loss  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Input dict contained keys")

SCHEDULE_STEPS = 10
INIT_LR = 0.5


@pytest.fixture(scope="module")
def strategy() -> tf.distribute.Strategy:
    return distribute.get_strategy("one_device")


def _sgd_with_decay() -> keras.optimizers.Optimizer:
    # Plain SGD exposes a wrong gradient scale (Adam would hide it); the schedule exposes a step count
    # that counts micro-batches: lr(step) = 0.5 * (1 - step / 10).
    return keras.optimizers.SGD(
        learning_rate=keras.optimizers.schedules.PolynomialDecay(INIT_LR, SCHEDULE_STEPS, 0.0))


def _micro_batches(micro: int):
    """The toy examples in order, in per-replica batches of `micro`: k of them make one global batch."""

    def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(toy.toy_examples()).repeat().batch(micro, drop_remainder=True)

    return dataset_fn


def _train(strategy, model_dir, k: int, steps: int = 3, jit: bool = False, **kwargs):
    trainer = training.Trainer(
        strategy=strategy, model_fn=toy.toy_model, optimizer_fn=_sgd_with_decay,
        dataset_fn=_micro_batches(toy.GLOBAL_BATCH // max(k, 1)), loss_fn=toy.toy_loss,
        global_batch_size=toy.GLOBAL_BATCH, num_train_steps=steps, model_dir=model_dir,
        steps_per_loop=2, jit_compile=jit, gradient_accumulation_steps=k, write_summaries=False, **kwargs)
    return trainer, trainer.train()


@pytest.mark.parametrize("k, jit", [(4, False), (2, True)])
def test_accumulated_micro_batches_give_the_update_of_one_big_batch(strategy, tmp_path, k, jit):
    big, big_summary = _train(strategy, str(tmp_path / "big"), k=1)
    accumulated, summary = _train(strategy, str(tmp_path / "acc"), k=k, jit=jit)
    # The schedule counts optimizer steps: the third update applied lr(2) = 0.5 * 0.8, not lr(3 * k - 1).
    assert summary["global_step"] == big_summary["global_step"] == 3
    assert summary["learning_rate"] == pytest.approx(INIT_LR * (1 - 2 / SCHEDULE_STEPS), rel=1e-6)
    start = toy.toy_model().get_weights()
    for after_big, after_acc, before in zip(big.model.get_weights(), accumulated.model.get_weights(), start):
        assert np.abs(after_big - before).max() > 1e-3  # the step did move the weights
        np.testing.assert_allclose(after_acc, after_big, rtol=0, atol=2e-6)
    # The logged loss is the mean of the micro-batch losses, i.e. the big batch's mean loss.
    assert summary["loss"] == pytest.approx(big_summary["loss"], rel=1e-5)
    assert summary["examples_per_second"] > 0


def test_wrong_micro_batch_size_and_bad_accumulation_are_clear_errors(strategy, tmp_path):
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        _train(strategy, str(tmp_path / "a"), k=3)  # 8 examples do not split into 3 micro-batches
    with pytest.raises(ValueError, match="gradient_accumulation_steps must be >= 1"):
        _train(strategy, str(tmp_path / "b"), k=0)
    trainer = training.Trainer(
        strategy=strategy, model_fn=toy.toy_model, optimizer_fn=_sgd_with_decay,
        dataset_fn=_micro_batches(toy.GLOBAL_BATCH),  # the full batch where micro-batches of 4 are due
        loss_fn=toy.toy_loss, global_batch_size=toy.GLOBAL_BATCH, num_train_steps=1,
        model_dir=str(tmp_path / "c"), gradient_accumulation_steps=2, write_summaries=False)
    with pytest.raises(ValueError, match="per-replica batches of 8 examples, expected 4"):
        trainer.train()


def test_rates_and_eta_exclude_on_checkpoint_time(strategy, tmp_path):
    pause = 1.5
    _, summary = _train(strategy, str(tmp_path / "t"), k=1, steps=4, save_checkpoints_steps=2,
                        on_checkpoint=lambda step, path: time.sleep(pause))
    assert summary["wall_seconds"] >= summary["train_seconds"] + 2 * pause
    assert summary["steps_per_second"] == pytest.approx(4 / summary["train_seconds"], rel=1e-6)


TINY = dict(vocab_size=64, embedding_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0)


def _pretraining_batch(batch: int, seq: int, predictions: int, seed: int = 0) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, seq), np.int32)
    mask[:, seq - 3:] = 0  # some padding, so the attention bias matters
    return {
        "input_word_ids": tf.constant(rng.integers(4, TINY["vocab_size"], (batch, seq)), tf.int32),
        "input_mask": tf.constant(mask),
        "input_type_ids": tf.constant(np.repeat([[0] * (seq // 2) + [1] * (seq - seq // 2)], batch, 0), tf.int32),
        "masked_lm_positions": tf.constant(rng.integers(1, seq - 3, (batch, predictions)), tf.int32),
        "masked_lm_ids": tf.constant(rng.integers(4, TINY["vocab_size"], (batch, predictions)), tf.int32),
        "masked_lm_weights": tf.ones((batch, predictions), tf.float32),
        "next_sentence_labels": tf.constant(rng.integers(0, 2, (batch, 1)), tf.int32),
    }


@pytest.mark.parametrize("use_function", [False, True])
def test_recompute_grad_gives_identical_gradients(use_function):
    config = albert_tf.AlbertConfig(**TINY)  # 2 layers sharing one block: the recomputed block is reused
    plain = albert_tf.AlbertPretrainer(config)
    recomputed = albert_tf.AlbertPretrainer(config, recompute_grad=True)
    recomputed.set_weights(plain.get_weights())
    features = _pretraining_batch(3, 12, 2)

    def gradients(model):
        with tf.GradientTape() as tape:
            loss = pretraining_loss(features, model(features, training=True))
        return loss, tape.gradient(loss, model.trainable_variables)

    if use_function:
        gradients = tf.function(gradients)
    loss, expected = gradients(plain)
    loss_r, actual = gradients(recomputed)
    assert float(loss_r) == pytest.approx(float(loss), rel=1e-6)
    assert len(actual) == len(expected) == len(plain.trainable_variables)
    for variable, a, e in zip(plain.trainable_variables, actual, expected):
        assert a is not None, variable.name
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(e).numpy(),
                                   rtol=1e-5, atol=1e-7, err_msg=variable.name)
    block_kernel = plain.encoder.blocks[0].query.kernel
    index = [v.ref() for v in plain.trainable_variables].index(block_kernel.ref())
    assert np.abs(tf.convert_to_tensor(expected[index]).numpy()).max() > 0


def test_gelu_saving_input_has_gelus_values_and_gradient():
    x = tf.constant(np.linspace(-6.0, 6.0, 241), tf.float32)
    x64 = tf.cast(x, tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, x64])
        lean = layers.gelu_saving_input(x)
        reference = tf.nn.gelu(x64, approximate=True)  # TF's op-by-op derivative in float64
    np.testing.assert_array_equal(lean.numpy(), tf.nn.gelu(x, approximate=True).numpy())
    np.testing.assert_allclose(tape.gradient(lean, x).numpy(), tape.gradient(reference, x64).numpy(),
                               rtol=0, atol=5e-6)


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("precision, jit, k", [("bfloat16", True, 1), ("float16", True, 1), ("float16", False, 2)])
def test_mixed_precision_steps_train_on_cpu(strategy, tmp_path, restore_policy, precision, jit, k):
    distribute.configure_precision(precision)
    config = albert_tf.AlbertConfig(**TINY)
    batch = 4
    examples = _pretraining_batch(batch * 2, 12, 2, seed=1)

    def dataset_fn(input_context):
        return tf.data.Dataset.from_tensor_slices(examples).repeat().batch(batch // k, drop_remainder=True)

    trainer = training.Trainer(
        strategy=strategy, model_fn=lambda: albert_tf.AlbertPretrainer(config, recompute_grad=k > 1),
        optimizer_fn=lambda: optimization.create_optimizer(1e-3, 3, 0, optimizer="lamb"),
        dataset_fn=dataset_fn, loss_fn=pretraining_loss, global_batch_size=batch, num_train_steps=3,
        model_dir=str(tmp_path), steps_per_loop=3, jit_compile=jit, gradient_accumulation_steps=k,
        write_summaries=False)
    before = [w.copy() for w in trainer.model.get_weights()]
    summary = trainer.train()
    assert summary["global_step"] == 3
    assert np.isfinite(summary["loss"]) and summary["loss"] > 0
    # Variables stay float32; the loss-scaled float16 run really updated them (no step skipped forever).
    assert all(v.dtype == tf.float32 for v in trainer.model.trainable_variables)
    moved = [np.abs(a - b).max() for a, b in zip(trainer.model.get_weights(), before)]
    assert max(moved) > 0 and all(np.isfinite(m) for m in moved)
    compute_dtype = trainer.model.dtype_policy.compute_dtype
    assert compute_dtype == {"bfloat16": "bfloat16", "float16": "float16"}[precision]
    assert isinstance(trainer.optimizer, keras.mixed_precision.LossScaleOptimizer) == (precision == "float16")


@pytest.mark.parametrize("k", [1, 2])
def test_variables_without_gradient_are_left_out_of_updates(strategy, tmp_path, k):
    """The SQuAD v1.1 model does not use the pooler: its variables get no gradient. The trainer leaves them
    out of every update (no Keras 'Gradients do not exist' warning, no weight decay on them, also with
    gradient accumulation) and says so once."""
    config = albert_tf.AlbertConfig(**TINY)
    seq = 8
    rng = np.random.default_rng(3)
    examples = {"input_word_ids": rng.integers(4, TINY["vocab_size"], (4, seq)).astype(np.int32),
                "start_positions": np.array([1, 2, 3, 4], np.int32),
                "end_positions": np.array([2, 3, 4, 5], np.int32)}

    def dataset_fn(input_context):
        return tf.data.Dataset.from_tensor_slices(examples).repeat().batch(4 // k, drop_remainder=True)

    def loss_fn(features, outputs):
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(features["start_positions"], outputs["start_logits"])
            + tf.nn.sparse_softmax_cross_entropy_with_logits(features["end_positions"], outputs["end_logits"]))

    def model_fn():
        keras.utils.set_random_seed(0)
        return albert_tf.AlbertQuestionAnswering(config)

    messages = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect()
    tf_logger, absl_logger = tf.get_logger(), logging.getLogger("absl")
    tf_logger.addHandler(handler)
    absl_logger.addHandler(handler)
    level = absl_logger.level
    absl_logger.setLevel(logging.INFO)
    try:
        trainer = training.Trainer(
            strategy=strategy, model_fn=model_fn,
            optimizer_fn=lambda: optimization.create_optimizer(0.1, 10, 0, optimizer="lamb"),
            dataset_fn=dataset_fn, loss_fn=loss_fn, global_batch_size=4, num_train_steps=2,
            model_dir=str(tmp_path / "m"), steps_per_loop=1, gradient_accumulation_steps=k, write_summaries=False)
        before = {v.name: v.numpy() for v in trainer.model.trainable_variables}
        trainer.train()
    finally:
        tf_logger.removeHandler(handler)
        absl_logger.removeHandler(handler)
        absl_logger.setLevel(level)
    after = {v.name: v.numpy() for v in trainer.model.trainable_variables}
    pooler = [n for n in before if "pooler" in n]
    assert len(pooler) == 2
    for name in before:
        moved = np.abs(after[name] - before[name]).max()
        assert (moved == 0) if name in pooler else (moved > 0), name
    assert not [m for m in messages if "Gradients do not exist" in m]
    assert len([m for m in messages if "get no gradient" in m]) == 1
