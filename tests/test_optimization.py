"""Tests of albert_tf.optimization against independent numpy restatements of the original formulas."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from albert_tf import optimization

B1, B2, EPS = 0.9, 0.999, 1e-6

# Variables named like the model's, with whether the original decays them / applies LAMB's trust ratio
# (decided by hand from the original exclusion list, not by the code under test).
KERNEL = "transformer/group_0/inner_group_0/ffn_1/intermediate/dense/kernel"
GAMMA = "transformer/group_0/inner_group_0/LayerNorm_1/gamma"
BIAS = "cls/predictions/output_bias"
EMBEDDING = "embeddings/word_embeddings"
DECAYED = {KERNEL: True, GAMMA: False, BIAS: False, EMBEDDING: True}
SHAPES = {KERNEL: (3, 4), GAMMA: (4,), BIAS: (5,), EMBEDDING: (5, 3)}
# The embedding gets a sparse gradient on these rows (one repeated, as tf.gather gradients can be).
EMBEDDING_ROWS = np.array([1, 3, 1])


def _initial_values(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape).astype(np.float32) for name, shape in SHAPES.items()}


def _gradients(num_steps: int, scale: float = 1.0, seed: int = 1) -> list[dict[str, np.ndarray]]:
    """Per step: a dense gradient per variable; the embedding's entry holds the sparse rows' values."""
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(num_steps):
        grads = {name: (scale * rng.normal(size=shape)).astype(np.float32) for name, shape in SHAPES.items()}
        grads[EMBEDDING] = (scale * rng.normal(size=(len(EMBEDDING_ROWS), 3))).astype(np.float32)
        steps.append(grads)
    return steps


def _dense(name: str, grad: np.ndarray) -> np.ndarray:
    if name != EMBEDDING:
        return grad.astype(np.float64)
    dense = np.zeros(SHAPES[EMBEDDING])
    np.add.at(dense, EMBEDDING_ROWS, grad)
    return dense


def _reference_lr(step: int, init_lr: float, total: int, warmup: int, power: float = 1.0, start: int = 0) -> float:
    """Restatement of the original schedule in plain Python."""
    lr = init_lr * (1.0 - min(step, total) / total) ** power
    if warmup > 0 and step - start < warmup:
        lr = init_lr * (step - start) / warmup
    return lr


def _reference_run(
    init: dict[str, np.ndarray],
    steps: list[dict[str, np.ndarray]],
    lrs: list[float],
    wd: float,
    lamb: bool,
    clip_norm: float | None = None,
    adapted: dict[str, bool] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Numpy AdamW/LAMB without bias correction. Returns the final weights and first moments."""
    w = {k: v.astype(np.float64) for k, v in init.items()}
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v2 = {k: np.zeros_like(v) for k, v in w.items()}
    adapted = adapted if adapted is not None else DECAYED
    for grads, lr in zip(steps, lrs):
        dense = {k: _dense(k, g) for k, g in grads.items()}
        if clip_norm is not None:
            # tf.clip_by_global_norm (TF1 and TF2) measures a sparse gradient by its values as given, before
            # duplicate rows are summed.
            global_norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads.values()))
            dense = {k: g * clip_norm / max(global_norm, clip_norm) for k, g in dense.items()}
        for k, g in dense.items():
            m[k] = B1 * m[k] + (1 - B1) * g
            v2[k] = B2 * v2[k] + (1 - B2) * g**2
            update = m[k] / (np.sqrt(v2[k]) + EPS)
            if DECAYED[k]:
                update = update + wd * w[k]
            ratio = 1.0
            if lamb and adapted[k]:
                w_norm, u_norm = np.linalg.norm(w[k]), np.linalg.norm(update)
                ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
            w[k] = w[k] - ratio * lr * update
    return w, m


def _make_variables(init: dict[str, np.ndarray]) -> dict[str, tf.Variable]:
    return {name: tf.Variable(value, name=name) for name, value in init.items()}


def _grads_and_vars(variables: dict[str, tf.Variable], grads: dict[str, np.ndarray]) -> list:
    pairs = []
    for name, var in variables.items():
        if name == EMBEDDING:
            grad = tf.IndexedSlices(
                tf.constant(grads[name]), tf.constant(EMBEDDING_ROWS), tf.constant(SHAPES[EMBEDDING])
            )
        else:
            grad = tf.constant(grads[name])
        pairs.append((grad, var))
    return pairs


def _slot(optimizer: keras.optimizers.Optimizer, slot_name: str, var_name: str) -> np.ndarray:
    matches = [v for v in optimizer.variables if f"{slot_name}/{var_name}:" in v.name]
    assert len(matches) == 1, [v.name for v in optimizer.variables]
    return matches[0].numpy()


def _assert_matches(variables, optimizer, expected_w, expected_m, rtol=1e-5, atol=1e-6):
    for name, var in variables.items():
        np.testing.assert_allclose(var.numpy(), expected_w[name], rtol=rtol, atol=atol, err_msg=name)
        np.testing.assert_allclose(
            _slot(optimizer, "adam_m", name), expected_m[name], rtol=rtol, atol=atol, err_msg=name
        )


# ----------------------------------------------------------------------------------------------------------
# Learning-rate schedule


def test_schedule_known_values_warmup_jump_and_end():
    schedule = optimization.WarmupPolynomialDecay(init_lr=1.0, num_train_steps=100, num_warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 5, 9, 10, 50, 100, 150)]
    # Step 0 is exactly 0; after warmup the lr jumps to 1 - 10/100, not 1.0; it stays 0 after T.
    np.testing.assert_allclose(values, [0.0, 0.5, 0.9, 0.9, 0.5, 0.0, 0.0], atol=1e-7)
    assert values[0] == 0.0


@pytest.mark.parametrize(
    "init_lr,total,warmup,power,start",
    [(2e-5, 1000, 100, 1.0, 0), (1e-3, 50, 7, 2.0, 0), (0.1, 40, 5, 1.0, 3), (0.5, 30, 0, 1.5, 0)],
)
def test_schedule_matches_formula(init_lr, total, warmup, power, start):
    schedule = optimization.WarmupPolynomialDecay(init_lr, total, warmup, poly_power=power, start_warmup_step=start)
    steps = sorted({0, 1, start, max(start - 1, 0), warmup - 1, warmup, start + warmup - 1, start + warmup,
                    total // 2, total - 1, total, total + 10})
    steps = [s for s in steps if s >= 0]
    got = [float(schedule(tf.constant(step, tf.int64))) for step in steps]
    want = [_reference_lr(step, init_lr, total, warmup, power, start) for step in steps]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)  # float32 math


def test_schedule_before_start_warmup_step_is_negative_like_the_original():
    schedule = optimization.WarmupPolynomialDecay(1.0, 100, num_warmup_steps=4, start_warmup_step=2)
    np.testing.assert_allclose([float(schedule(s)) for s in (0, 2, 3)], [-0.5, 0.0, 0.25], atol=1e-7)


def test_schedule_config_round_trip():
    schedule = optimization.WarmupPolynomialDecay(3e-4, 200, 20, poly_power=2.0, start_warmup_step=5)
    rebuilt = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(rebuilt, optimization.WarmupPolynomialDecay)
    assert rebuilt.get_config() == schedule.get_config()
    for step in (0, 10, 25, 150):
        assert float(rebuilt(step)) == float(schedule(step))


@pytest.mark.parametrize(
    "kwargs", [dict(num_train_steps=0), dict(num_train_steps=10.5), dict(num_warmup_steps=-1), dict(poly_power=-1.0)]
)
def test_schedule_rejects_bad_arguments(kwargs):
    args = dict(init_lr=1e-3, num_train_steps=10, num_warmup_steps=2) | kwargs
    with pytest.raises(ValueError):
        optimization.WarmupPolynomialDecay(**args)


# ----------------------------------------------------------------------------------------------------------
# Optimizer updates


@pytest.mark.parametrize("num_steps", [1, 4])
@pytest.mark.parametrize("optimizer_class", [optimization.AdamWeightDecay, optimization.LAMB])
def test_updates_match_numpy(optimizer_class, num_steps):
    init, steps = _initial_values(), _gradients(num_steps)
    variables = _make_variables(init)
    optimizer = optimizer_class(learning_rate=0.05, weight_decay_rate=0.1)
    for grads in steps:
        optimizer.apply_gradients(_grads_and_vars(variables, grads))
    lamb = optimizer_class is optimization.LAMB
    want_w, want_m = _reference_run(init, steps, [0.05] * num_steps, wd=0.1, lamb=lamb)
    _assert_matches(variables, optimizer, want_w, want_m)
    assert int(optimizer.iterations) == num_steps


def test_lamb_under_xla_matches_numpy():
    # On a GPU tf_keras compiles update_step with XLA by default; force that path on the CPU.
    init, steps = _initial_values(), _gradients(2)
    variables = _make_variables(init)
    optimizer = optimization.LAMB(learning_rate=0.05, weight_decay_rate=0.1)
    optimizer.jit_compile = True
    for grads in steps:
        optimizer.apply_gradients(_grads_and_vars(variables, grads))
    want_w, want_m = _reference_run(init, steps, [0.05, 0.05], wd=0.1, lamb=True)
    _assert_matches(variables, optimizer, want_w, want_m)


def test_lamb_trust_ratio_exclusion_list_can_differ_from_decay_list():
    init, steps = _initial_values(), _gradients(2)
    variables = _make_variables(init)
    optimizer = optimization.LAMB(learning_rate=0.05, weight_decay_rate=0.1, exclude_from_layer_adaptation=[])
    for grads in steps:
        optimizer.apply_gradients(_grads_and_vars(variables, grads))
    want_w, want_m = _reference_run(
        init, steps, [0.05, 0.05], wd=0.1, lamb=True, adapted={name: True for name in SHAPES}
    )
    _assert_matches(variables, optimizer, want_w, want_m)


def test_lamb_zero_norms_use_ratio_one():
    zero_weight = tf.Variable(np.zeros(3, np.float32), name="dense/kernel")
    still_weight = tf.Variable(np.array([1.0, -2.0, 3.0], np.float32), name="dense_1/kernel")
    optimizer = optimization.LAMB(learning_rate=0.1, weight_decay_rate=0.0)
    grad = np.array([0.5, -1.0, 2.0], np.float32)
    optimizer.apply_gradients([(tf.constant(grad), zero_weight), (tf.zeros(3), still_weight)])
    # ||w|| = 0: plain AdamW step. ||u|| = 0 (no gradient, no decay): the weight must stay finite and unchanged.
    m = (1 - B1) * grad.astype(np.float64)
    v = (1 - B2) * grad.astype(np.float64) ** 2
    np.testing.assert_allclose(zero_weight.numpy(), -0.1 * m / (np.sqrt(v) + EPS), rtol=1e-5)
    np.testing.assert_array_equal(still_weight.numpy(), [1.0, -2.0, 3.0])


def test_exclusion_predicates_follow_original_names():
    adamw = optimization.AdamWeightDecay()
    lamb = optimization.LAMB()
    decayed = ["bert/embeddings/word_embeddings", "bert/encoder/transformer/group_0/inner_group_0/"
               "attention_1/self/query/kernel", "cls/squad/output_weights", "output_weights"]
    excluded = ["bert/embeddings/LayerNorm/gamma", "albert/encoder/layer_norm/beta", "cls/predictions/output_bias",
                "bert/pooler/dense/bias"]
    for optimizer in (adamw, lamb):
        assert all(optimizer.weight_decay_applies(name) for name in decayed)
        assert not any(optimizer.weight_decay_applies(name) for name in excluded)
    assert all(lamb.layer_adaptation_applies(name) for name in decayed)
    assert not any(lamb.layer_adaptation_applies(name) for name in excluded)
    assert not optimization.AdamWeightDecay(weight_decay_rate=0.0).weight_decay_applies(decayed[0])


def test_name_fn_decides_exclusions():
    values = np.array([1.0, -1.0], np.float32)
    grad = np.array([0.5, 0.25], np.float32)
    variable = tf.Variable(values, name="dense/kernel")
    optimizer = optimization.AdamWeightDecay(0.1, weight_decay_rate=0.5, name_fn=lambda v: "cls/output_bias")
    optimizer.apply_gradients([(tf.constant(grad), variable)])
    g = grad.astype(np.float64)
    expected_without_decay = values - 0.1 * (0.1 * g) / (np.sqrt(0.001 * g**2) + EPS)
    np.testing.assert_allclose(variable.numpy(), expected_without_decay, rtol=1e-5)


def test_original_optimization_test():
    w = tf.Variable([0.1, -0.2, -0.1], name="w")
    x = tf.constant([0.4, 0.2, -0.5])
    optimizer = optimization.AdamWeightDecay(learning_rate=0.2, weight_decay_rate=0.0)
    for _ in range(100):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(x - w))
        optimizer.apply_gradients([(tape.gradient(loss, w), w)])
    np.testing.assert_allclose(w.numpy(), x.numpy(), rtol=1e-2, atol=1e-2)


def test_optimizer_config_round_trip():
    optimizer = optimization.create_optimizer(1e-3, 100, 10, optimizer="lamb", weight_decay_rate=0.02)
    rebuilt = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer), use_legacy_optimizer=False)
    assert isinstance(rebuilt, optimization.LAMB)
    config = rebuilt.get_config()
    assert config == optimizer.get_config()
    assert config["global_clipnorm"] == 1.0 and config["weight_decay_rate"] == 0.02 and config["epsilon"] == 1e-6


def test_optimizer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="weight_decay_rate"):
        optimization.AdamWeightDecay(weight_decay=0.1)
    with pytest.raises(ValueError, match="beta_1"):
        optimization.LAMB(beta_1=1.0)
    with pytest.raises(TypeError, match="list"):
        optimization.AdamWeightDecay(exclude_from_weight_decay="bias")


# ----------------------------------------------------------------------------------------------------------
# create_optimizer: schedule, clipping, mixed precision, checkpoints, tf.distribute


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_create_optimizer_schedule_and_global_norm_clipping(name):
    init, steps = _initial_values(), _gradients(4, scale=10.0)  # Global norm well above 1.
    variables = _make_variables(init)
    optimizer = optimization.create_optimizer(init_lr=0.1, num_train_steps=10, num_warmup_steps=2, optimizer=name)
    assert isinstance(optimizer, optimization.LAMB if name == "lamb" else optimization.AdamWeightDecay)
    for grads in steps:
        optimizer.apply_gradients(_grads_and_vars(variables, grads))
    lrs = [_reference_lr(step, 0.1, 10, 2) for step in range(4)]  # 0, 0.05, 0.08, 0.07
    want_w, want_m = _reference_run(init, steps, lrs, wd=0.01, lamb=name == "lamb", clip_norm=1.0)
    _assert_matches(variables, optimizer, want_w, want_m)
    # The lr of the last update (step 3), driven by the optimizer's iterations.
    assert float(optimizer.learning_rate) == pytest.approx(0.07)


def test_create_optimizer_rejects_unknown_name_and_bad_clip():
    with pytest.raises(ValueError, match="adamw, lamb"):
        optimization.create_optimizer(1e-3, 10, 1, optimizer="adam")
    with pytest.raises(ValueError, match="clip_norm"):
        optimization.create_optimizer(1e-3, 10, 1, clip_norm=0.0)


def test_loss_scale_optimizer_step_equals_unwrapped_step():
    x = tf.constant([[1.0, -2.0, 0.5], [4.0, 1.0, -1.0]])
    y = tf.constant([[3.0, -1.0], [0.5, 2.0]])
    kernel = np.array([[0.5, -0.25], [1.0, 0.125], [-0.75, 2.0]], np.float32)

    def make(dtype: str) -> keras.layers.Dense:
        layer = keras.layers.Dense(2, dtype=dtype, name="dense")
        layer.build((None, 3))
        layer.set_weights([kernel, np.array([0.25, -0.5], np.float32)])
        return layer

    plain_layer, mixed_layer = make("float32"), make("mixed_float16")
    assert mixed_layer.compute_dtype == "float16"
    plain = optimization.create_optimizer(0.1, 10, 1, optimizer="lamb")
    # A dynamic loss scale starting at 2**8 keeps the float16 gradients finite, so no step is skipped.
    wrapped = keras.mixed_precision.LossScaleOptimizer(
        optimization.create_optimizer(0.1, 10, 1, optimizer="lamb"), initial_scale=2**8
    )

    def loss_of(layer):
        return tf.reduce_sum(tf.square(tf.cast(layer(x), tf.float32) - y))  # Gradient norm > 1: clipped.

    @tf.function
    def mixed_step():
        with tf.GradientTape() as tape:
            scaled = wrapped.get_scaled_loss(loss_of(mixed_layer))
        grads = wrapped.get_unscaled_gradients(tape.gradient(scaled, mixed_layer.trainable_variables))
        wrapped.apply_gradients(zip(grads, mixed_layer.trainable_variables))

    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = loss_of(plain_layer)
        plain.apply_gradients(zip(tape.gradient(loss, plain_layer.trainable_variables), plain_layer.trainable_variables))
        mixed_step()
    assert int(wrapped.iterations) == int(plain.iterations) == 3
    for got, want in zip(mixed_layer.get_weights(), plain_layer.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
    for got, want in zip(wrapped.inner_optimizer.variables[1:], plain.variables[1:]):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-2, atol=1e-4)


@pytest.mark.parametrize("build_before_restore", [False, True])
@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_checkpoint_restore_continues_identically(name, build_before_restore, tmp_path):
    init, steps = _initial_values(), _gradients(5)

    def make():
        holder = tf.Module()
        holder.variables_list = list(_make_variables(init).values())
        optimizer = optimization.create_optimizer(0.1, 8, 4, optimizer=name)  # Warmup ends at step 4.
        return holder, optimizer, tf.train.Checkpoint(model=holder, optimizer=optimizer)

    def train(holder, optimizer, grads_list):
        variables = dict(zip(SHAPES, holder.variables_list))
        for grads in grads_list:
            optimizer.apply_gradients(_grads_and_vars(variables, grads))

    holder, optimizer, checkpoint = make()
    train(holder, optimizer, steps[:3])
    path = checkpoint.save(str(tmp_path / "ckpt"))
    train(holder, optimizer, steps[3:])

    restored_holder, restored_optimizer, restored_checkpoint = make()
    if build_before_restore:  # Slots exist already; otherwise the restore is deferred until they are created.
        restored_optimizer.build(restored_holder.variables_list)
    restored_checkpoint.restore(path).assert_existing_objects_matched()
    assert int(restored_optimizer.iterations) == 3
    train(restored_holder, restored_optimizer, steps[3:])

    assert int(restored_optimizer.iterations) == 5
    assert float(restored_optimizer.learning_rate) == float(optimizer.learning_rate)
    for got, want in zip(restored_holder.variables_list, holder.variables_list):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for got, want in zip(restored_optimizer.variables, optimizer.variables):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    # And the uninterrupted run is the numpy run.
    want_w, want_m = _reference_run(
        init, steps, [_reference_lr(s, 0.1, 8, 4) for s in range(5)], wd=0.01, lamb=name == "lamb", clip_norm=1.0
    )
    _assert_matches(dict(zip(SHAPES, holder.variables_list)), optimizer, want_w, want_m)


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from albert_tf import optimization
    args = json.loads(sys.argv[1])
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        kernel = tf.Variable(np.array(args["kernel"], np.float32), name="dense/kernel")
        bias = tf.Variable(np.array(args["bias"], np.float32), name="dense/bias")
        optimizer = optimization.create_optimizer(0.1, 10, 0, optimizer="lamb")
    per_replica = [[tf.constant(g, tf.float32) for g in grads] for grads in args["grads"]]

    @tf.function
    def step():
        def replica_fn():
            first = tf.equal(tf.distribute.get_replica_context().replica_id_in_sync_group, 0)
            grads = [tf.where(first, a, b) for a, b in zip(*per_replica)]
            optimizer.apply_gradients(zip(grads, [kernel, bias]))
        strategy.run(replica_fn)

    step()
    step()
    slots = {v.name: v.numpy().tolist() for v in optimizer.variables if "adam_m" in v.name}
    print(json.dumps({"kernel": kernel.numpy().tolist(), "bias": bias.numpy().tolist(),
                      "iterations": int(optimizer.iterations.numpy()), "m": slots}))
    """
)


def test_mirrored_strategy_clips_summed_gradients():
    kernel = np.array([[0.5, -1.0], [2.0, 0.25]])
    bias = np.array([0.1, -0.2])
    grads = [[[[3.0, -1.0], [0.5, 2.0]], [1.0, -4.0]], [[[-2.0, 5.0], [1.5, 0.0]], [2.0, 1.0]]]
    args = json.dumps({"kernel": kernel.tolist(), "bias": bias.tolist(), "grads": grads})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.path.dirname(os.path.dirname(
        os.path.abspath(optimization.__file__)))]), TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT, args], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    # Replica gradients are summed, then the sum is clipped to global norm 1, twice with lr 0.1*(1 - s/10).
    summed = [np.array(a) + np.array(b) for a, b in zip(*grads)]
    w = [kernel.copy(), bias.copy()]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    for lr in (0.1, 0.09):
        norm = np.sqrt(sum(np.sum(g**2) for g in summed))
        clipped = [g / max(norm, 1.0) for g in summed]
        for i, (g, decayed) in enumerate(zip(clipped, (True, False))):
            m[i] = B1 * m[i] + (1 - B1) * g
            v[i] = B2 * v[i] + (1 - B2) * g**2
            update = m[i] / (np.sqrt(v[i]) + EPS) + (0.01 * w[i] if decayed else 0.0)
            ratio = np.linalg.norm(w[i]) / np.linalg.norm(update) if decayed else 1.0
            w[i] = w[i] - ratio * lr * update
    assert result["iterations"] == 2
    np.testing.assert_allclose(result["kernel"], w[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["bias"], w[1], rtol=1e-5, atol=1e-6)
    m_by_name = {("bias" if "bias" in k else "kernel"): np.array(val) for k, val in result["m"].items()}
    np.testing.assert_allclose(m_by_name["kernel"], m[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(m_by_name["bias"], m[1], rtol=1e-5, atol=1e-7)
