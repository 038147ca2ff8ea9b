"""The training path's fused backward passes (GELU derivative, softmax gradient) against TensorFlow's own
gradients of the plain ops."""
import numpy as np
import tensorflow as tf

from albert_tf.modeling import layers


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
