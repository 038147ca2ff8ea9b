"""Building blocks shared by the ALBERT layers: the original's GELU, activations, initialiser, the TF1
LayerNorm, optional dropout, and the helpers that name a layer's weights with official TF1 names.

Every layer of `albert_tf.modeling` keeps its weights in the layout of the official TF1 checkpoints
(2-D Q/K/V kernels [H, N*D], `output_weights` stored [num_classes, H]), so loading a checkpoint is a
plain copy and `tf1_variables()` names each weight with its official variable name.

Shapes: B batch, S sequence length, E embedding size, H hidden size, N heads, D = H/N head size,
I intermediate size, V vocabulary size, P masked positions.
"""
from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf
import tf_keras as keras

from albert_tf.configs import LAYER_NORM_EPSILON

# The original masks padded keys by adding this constant (not -inf) to the attention scores.
ATTENTION_MASK_ADDER = -10000.0


def gelu(x: tf.Tensor) -> tf.Tensor:
    """GELU with the tanh approximation: `x * 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`.

    `tf.nn.gelu(approximate=True)` computes exactly the original's expression (the factor 0.5 moves, which
    is exact in binary floating point), and its op pattern is the one TensorFlow's graph optimiser fuses
    with the preceding MatMul + BiasAdd into one kernel on CPU (oneDNN) and GPU.
    """
    return tf.nn.gelu(x, approximate=True)


def _gelu_backward(x: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
    """dy * gelu'(x): `0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)`,
    t = tanh(sqrt(2/pi) (x + 0.044715 x^3))."""
    c = math.sqrt(2.0 / math.pi)
    x2 = x * x
    t = tf.tanh(c * (x + 0.044715 * x2 * x))
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * (c * (1.0 + 3.0 * 0.044715 * x2)))


# The backward passes below are small XLA clusters inside the otherwise uncompiled graph: without XLA,
# TensorFlow runs each element-wise op as its own pass over memory (about 18 passes over [T, I] for the
# GELU derivative, 4 over [B,N,S,S] for the softmax's), while XLA fuses each into one loop (measured
# 8x faster for the GELU derivative at [2048, 3072] on CPU). The matmuls stay oneDNN/cuBLAS kernels.
# Under a fully XLA-compiled step they are simply inlined. Values agree with the unfused ops to float
# rounding (XLA's tanh/exp approximations are within a few ulp).
_fused_gelu_backward = tf.function(_gelu_backward, jit_compile=True, autograph=False)


@tf.function(jit_compile=True, autograph=False)
def _fused_softmax_backward(probs: tf.Tensor, dprobs: tf.Tensor) -> tf.Tensor:
    """The softmax's input gradient `(dp - sum(dp * p)) * p` over the last axis, in one fused pass."""
    return (dprobs - tf.reduce_sum(dprobs * probs, axis=-1, keepdims=True)) * probs


@tf.function(jit_compile=True, autograph=False)
def _fused_layer_norm_backward(centered: tf.Tensor, rstd: tf.Tensor, gamma: tf.Tensor,
                               dy: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Gradients of `centered * rstd * gamma + beta` (centered = x - mean(x), rstd = rsqrt(var + eps), over
    the last axis) for x, gamma and beta, in one fused pass: with x_hat = centered * rstd and g = dy * gamma,
    dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat)); dgamma = sum(dy * x_hat), dbeta = sum(dy) over
    every axis but the last. Shapes: centered, dy [..., C]; rstd [..., 1]; gamma [C]."""
    x_hat = centered * rstd
    g = dy * gamma
    dx = rstd * (g - tf.reduce_mean(g, axis=-1, keepdims=True)
                 - x_hat * tf.reduce_mean(g * x_hat, axis=-1, keepdims=True))
    axes = list(range(dy.shape.rank - 1))
    return dx, tf.reduce_sum(dy * x_hat, axis=axes), tf.reduce_sum(dy, axis=axes)


def layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: float) -> tf.Tensor:
    """`(x - mean) * rsqrt(var + epsilon) * gamma + beta` over the last axis (biased variance), in the
    inputs' dtype (`LayerNorm` passes float32). Shapes: x [..., C]; gamma, beta [C]."""
    mean = tf.reduce_mean(x, axis=-1, keepdims=True)
    centered = x - mean
    variance = tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True)
    return centered * tf.math.rsqrt(variance + epsilon) * gamma + beta


def layer_norm_fused_backward(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: float) -> tf.Tensor:
    """`layer_norm` (the same values) whose backward pass keeps only `x - mean` and the [..., 1] inverse
    standard deviation, and is one fused kernel (differentiating op by op keeps more [..., C] tensors and
    runs about a dozen element-wise passes without XLA)."""

    @tf.custom_gradient
    def forward(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor):
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        centered = x - mean
        variance = tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True)
        rstd = tf.math.rsqrt(variance + epsilon)

        def grad(dy: tf.Tensor):
            return _fused_layer_norm_backward(centered, rstd, gamma, dy)

        return centered * rstd * gamma + beta, grad

    return forward(x, gamma, beta)


@tf.custom_gradient
def gelu_saving_input(x: tf.Tensor):
    """`gelu` whose backward pass keeps only `x` (one [..., I] tensor) and recomputes the derivative.

    Differentiating `gelu`'s expression op by op keeps about four [..., I] intermediates per layer until
    the backward pass (x^3, tanh, 0.5 x, 1 + tanh), the largest activation cost of a training step.
    Forward values are `gelu`'s exactly; the derivative is one fused kernel (see above).
    """
    def grad(dy: tf.Tensor) -> tf.Tensor:
        return _fused_gelu_backward(x, dy)

    return gelu(x), grad


@tf.custom_gradient
def softmax_fused_backward(scores: tf.Tensor):
    """`tf.nn.softmax(scores, axis=-1)` (the same values) whose gradient is one fused kernel; keeps only
    the probabilities for the backward pass, as the built-in gradient does. Shapes: any, softmax over -1."""
    probs = tf.nn.softmax(scores, axis=-1)

    def grad(dprobs: tf.Tensor) -> tf.Tensor:
        return _fused_softmax_backward(probs, dprobs)

    return probs, grad


def get_activation(name: str | None | Callable) -> Callable | None:
    """Maps an activation name to a function like the original `get_activation` (None = linear).

    `gelu`/`gelu_new` are the tanh approximation; `gelu_exact` is the erf form (not used by any release).
    """
    if name is None or callable(name):
        return name
    key = name.lower()
    table: dict[str, Callable | None] = {
        "": None, "linear": None, "relu": tf.nn.relu, "gelu": gelu, "gelu_new": gelu, "tanh": tf.tanh,
        "gelu_exact": lambda x: tf.nn.gelu(x, approximate=False), "swish": tf.nn.silu, "silu": tf.nn.silu,
    }
    if key not in table:
        raise ValueError(f"Unsupported activation {name!r}; supported: {', '.join(k for k in table if k)}.")
    return table[key]


def truncated_normal(stddev: float) -> keras.initializers.Initializer:
    """The original initialiser: truncated at two standard deviations."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


class LayerNorm(keras.layers.Layer):
    """Layer normalisation over the last axis with TF1 contrib semantics.

    Computes `(x - mean) * rsqrt(var + 1e-12) * gamma + beta` with the biased variance, which is what
    `contrib.layers.layer_norm` computes (to float rounding: it went through `tf.nn.batch_normalization`,
    which costs more element-wise passes without XLA); Keras' own layer may switch to a fused kernel that
    clamps epsilon to 1e-5. Under mixed precision the statistics are computed in float32.
    Input and output: [..., C]. Weights: `gamma` [C] (ones), `beta` [C] (zeros).
    """

    def __init__(self, epsilon: float = LAYER_NORM_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        width = input_shape[-1]
        self.beta = self.add_weight("beta", shape=[width], initializer="zeros")
        self.gamma = self.add_weight("gamma", shape=[width], initializer="ones")
        super().build(input_shape)

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        # In training, the same values with a fused backward pass (`layer_norm_fused_backward`).
        norm = layer_norm_fused_backward if training is True else layer_norm
        y = norm(tf.cast(x, tf.float32), tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32),
                 self.epsilon)
        return tf.cast(y, x.dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def optional_dropout(rate: float) -> keras.layers.Layer | None:
    # The original's dropout() is a no-op for probability 0, so no layer is created then.
    return keras.layers.Dropout(rate) if rate and rate > 0 else None


def apply_dropout(layer: keras.layers.Layer | None, x: tf.Tensor, training) -> tf.Tensor:
    return layer(x, training=training) if layer is not None else x


def layer_norm_variables(scope: str, layer: LayerNorm) -> dict[str, tf.Variable]:
    """`{scope}/beta`, `{scope}/gamma` of a `LayerNorm`."""
    return {f"{scope}/beta": layer.beta, f"{scope}/gamma": layer.gamma}


def dense_variables(scope: str, layer: keras.layers.Dense) -> dict[str, tf.Variable]:
    """`{scope}/kernel` (and `{scope}/bias` when it has one) of a Dense layer."""
    out = {f"{scope}/kernel": layer.kernel}
    if layer.use_bias:
        out[f"{scope}/bias"] = layer.bias
    return out
