"""The training path's fused backward passes (GELU derivative, softmax gradient, LayerNorm) against TensorFlow's own
gradients of the plain ops."""
import numpy as np
import tensorflow as tf

from albert_tf.modeling import layers
from albert_tf.modeling.transformer import AlbertTransformerBlock


def _grads(fn, x: tf.Tensor, upstream: tf.Tensor) -> tuple[np.ndarray, np.ndarray]:
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return y.numpy(), tape.gradient(y, x, output_gradients=upstream).numpy()


def test_gelu_saving_input_matches_the_exact_derivative():
    rng = np.random.default_rng(0)
    x64 = rng.normal(0, 3, (4, 37))
    upstream = rng.normal(size=(4, 37))
    value, grad = _grads(layers.gelu_saving_input, tf.constant(x64, tf.float32), tf.constant(upstream, tf.float32))
    np.testing.assert_array_equal(value, layers.gelu(tf.constant(x64, tf.float32)).numpy())  # forward untouched
    # The tanh-GELU derivative in float64; float32 cancels near t = -1 (x around -3), where TensorFlow's
    # own autodiff of `gelu` is also a few 1e-6 off, hence the absolute tolerance.
    c = np.sqrt(2 / np.pi)
    t = np.tanh(c * (x64 + 0.044715 * x64 ** 3))
    exact = upstream * (0.5 * (1 + t) + 0.5 * x64 * (1 - t * t) * c * (1 + 3 * 0.044715 * x64 ** 2))
    np.testing.assert_allclose(grad, exact, rtol=1e-5, atol=5e-6)


def test_softmax_fused_backward_matches_autodiff_of_softmax():
    rng = np.random.default_rng(1)
    scores = rng.normal(0, 4, (2, 3, 5, 9))
    scores[..., -2:] += -10000.0  # masked keys, as the encoder's attention bias makes them
    scores = tf.constant(scores, tf.float32)
    upstream = tf.constant(rng.normal(size=(2, 3, 5, 9)), tf.float32)
    value, grad = _grads(layers.softmax_fused_backward, scores, upstream)
    ref_value, ref_grad = _grads(lambda s: tf.nn.softmax(s, axis=-1), scores, upstream)
    np.testing.assert_array_equal(value, ref_value)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-6)


def test_layer_norm_fused_backward_matches_float64_autodiff():
    rng = np.random.default_rng(2)
    x, gamma, beta = rng.normal(1, 3, (3, 4, 16)), rng.normal(1, 0.5, 16), rng.normal(0, 0.5, 16)
    upstream = rng.normal(size=(3, 4, 16))

    def grads(fn, dtype):
        args = [tf.constant(a, dtype) for a in (x, gamma, beta)]
        with tf.GradientTape() as tape:
            tape.watch(args)
            y = fn(*args, 1e-12)
        return [y.numpy()] + [g.numpy() for g in tape.gradient(y, args, output_gradients=tf.constant(upstream, dtype))]

    fused = grads(layers.layer_norm_fused_backward, tf.float32)
    plain = grads(layers.layer_norm, tf.float32)
    reference = grads(layers.layer_norm, tf.float64)  # TensorFlow's autodiff of the plain ops, float64
    np.testing.assert_array_equal(fused[0], plain[0])  # forward untouched
    for got, want in zip(fused[1:], reference[1:]):  # d/dx, d/dgamma, d/dbeta
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_layer_norm_layer_takes_the_fused_path_in_training_and_its_variable_gradients_hold(monkeypatch):
    rng = np.random.default_rng(3)
    calls = []
    fused = layers.layer_norm_fused_backward
    monkeypatch.setattr(layers, "layer_norm_fused_backward", lambda *a: calls.append(1) or fused(*a))
    # The encoder block calls its LayerNorms without `training`: Keras hands down the block's own.
    block = AlbertTransformerBlock(hidden_size=16, num_heads=2, intermediate_size=32, activation="gelu",
                                   hidden_dropout=0.0, attention_dropout=0.0, initializer_range=0.02)
    x, bias = tf.constant(rng.normal(size=(2, 5, 16)), tf.float32), tf.zeros([2, 1, 1, 5])
    block(x, bias, training=False)
    assert calls == []
    block(x, bias, training=True)
    assert len(calls) == 2  # attention and FFN LayerNorm

    # In a graph, on the block's [T, H] rows: gradients for the input and the layer's own gamma / beta
    # against TensorFlow's autodiff of the plain ops in float64.
    layer = layers.LayerNorm()
    rows = rng.normal(2, 3, (7, 16))
    layer(tf.constant(rows, tf.float32))
    layer.gamma.assign(rng.normal(1, 0.5, 16))
    layer.beta.assign(rng.normal(0, 0.5, 16))
    upstream = rng.normal(size=(7, 16))

    @tf.function
    def layer_grads(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = layer(inputs, training=True)
        return tape.gradient(y, [inputs, layer.gamma, layer.beta], output_gradients=tf.constant(upstream, tf.float32))

    got = layer_grads(tf.constant(rows, tf.float32))
    args = [tf.constant(a, tf.float64) for a in (rows, layer.gamma.numpy(), layer.beta.numpy())]
    with tf.GradientTape() as tape:
        tape.watch(args)
        y = layers.layer_norm(*args, 1e-12)
    want = tape.gradient(y, args, output_gradients=tf.constant(upstream, tf.float64))
    assert len(calls) == 3
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-5)
