"""The shared ALBERT block: post-LN self-attention + feed-forward (the original `attention_ffn_block`)."""
from __future__ import annotations

import math

import tensorflow as tf
import tf_keras as keras

from albert_tf.modeling.layers import (LayerNorm, apply_dropout, dense_variables, gelu, gelu_saving_input,
                                       get_activation, layer_norm_variables, optional_dropout, softmax_fused_backward,
                                       truncated_normal)


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertTransformerBlock(keras.layers.Layer):
    """One post-LN attention + FFN block; one instance is applied by every layer of its parameter group.

    Computes `y = LN(x + Dropout(Attn(x)))` then `LN_1(y + Dropout(FFN(y)))`.
    Inputs: `x` [B,S,H] and the additive attention bias [B,1,1,S] (0 for real keys, -10000 for padding).
    Output: [B,S,H].

    Args:
      hidden_size: H.
      num_heads: N; H must be divisible by N (head size D = H/N).
      intermediate_size: I, the FFN width.
      activation: FFN activation name (`gelu` is the original's tanh form).
      hidden_dropout: dropout after the attention output and after the FFN output.
      attention_dropout: dropout on the attention probabilities.
      initializer_range: stddev of the truncated-normal initialiser.
    """

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, activation: str,
                 hidden_dropout: float, attention_dropout: float, initializer_range: float, **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_heads}.")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.intermediate_size = intermediate_size
        self.activation = activation
        self.hidden_dropout_rate = hidden_dropout
        self.attention_dropout_rate = attention_dropout
        self.initializer_range = initializer_range

        def dense(units: int, name: str, activation=None) -> keras.layers.Dense:
            # A fresh initializer per weight: a reused unseeded Keras initializer repeats its values.
            return keras.layers.Dense(units, activation=activation, name=name,
                                      kernel_initializer=truncated_normal(initializer_range))

        # Q/K/V kernels keep the checkpoint's 2-D [H, N*D] layout (column n*D + d is head n, dim d).
        self.query = dense(hidden_size, "query")
        self.key = dense(hidden_size, "key")
        self.value = dense(hidden_size, "value")
        self.attention_output = dense(hidden_size, "attention_output")
        self.attention_layer_norm = LayerNorm(name="LayerNorm")
        self.intermediate = dense(intermediate_size, "intermediate", activation=get_activation(activation))
        self.ffn_output = dense(hidden_size, "ffn_output")
        self.ffn_layer_norm = LayerNorm(name="LayerNorm_1")
        self.attention_dropout = optional_dropout(attention_dropout)
        self.hidden_dropout = optional_dropout(hidden_dropout)

    def build(self, input_shape):
        # Q/K/V are never called as layers (see `fused_qkv_weights`), so their weights are created here.
        for layer in (self.query, self.key, self.value):
            with tf.name_scope(layer.name):
                layer.build(tf.TensorShape([None, self.hidden_size]))
        super().build(input_shape)

    def fused_qkv_weights(self) -> tuple[tf.Tensor, tf.Tensor]:
        """The three projections as one: (kernel [H,3H], bias [3H]), columns Q, K, V.

        Concatenated in the graph from the three official [H,H] kernels, so the checkpoint layout is
        unchanged. The attention scale 1/sqrt(D) is folded into the query part: for D = 64 (every released
        model) the scale is a power of two and the scores equal the original's scale-after-product to
        the last bit; otherwise they agree to float rounding. The encoder computes them once per forward
        pass for all the layers that share this block.
        """
        scale = 1.0 / math.sqrt(float(self.head_size))
        kernel = tf.concat([self.query.kernel * scale, self.key.kernel, self.value.kernel], axis=1)
        bias = tf.concat([self.query.bias * scale, self.key.bias, self.value.bias], axis=0)
        return kernel, bias

    def call(self, x: tf.Tensor, attention_bias: tf.Tensor, training=None,
             qkv_weights: tuple[tf.Tensor, tf.Tensor] | None = None) -> tf.Tensor:
        """`qkv_weights`: this block's `fused_qkv_weights()` when the caller already has them."""
        kernel, bias = qkv_weights if qkv_weights is not None else self.fused_qkv_weights()
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        # Rows of [B*S, H] throughout (the original's `reshape_to_matrix`): every dense layer is then a
        # plain MatMul + BiasAdd (+ GELU) that the CPU/GPU kernels fuse, with no reshapes in between.
        rows = tf.reshape(x, [-1, self.hidden_size])
        qkv = tf.nn.bias_add(tf.matmul(rows, kernel), bias)  # one [T,H] x [H,3H] product
        qkv = tf.reshape(qkv, [batch, length, 3, self.num_heads, self.head_size])
        q, k, v = tf.unstack(tf.transpose(qkv, [2, 0, 3, 1, 4]))  # 3 x [B,N,S,D], one transpose
        scores = tf.matmul(q, k, transpose_b=True)  # [B,N,S,S], already scaled (see fused_qkv_weights)
        scores = scores + tf.cast(attention_bias, scores.dtype)
        # Softmax in float32: float16 scores with a -10000 bias lose the small probabilities otherwise.
        # In training, the same values with a fused backward pass (`softmax_fused_backward`).
        softmax = softmax_fused_backward if training is True else tf.nn.softmax
        probs = tf.cast(softmax(tf.cast(scores, tf.float32)), v.dtype)
        probs = apply_dropout(self.attention_dropout, probs, training)
        context = tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3])  # [B,S,N,D]
        context = tf.reshape(context, [-1, self.hidden_size])
        attention = apply_dropout(self.hidden_dropout, self.attention_output(context), training)
        y = self.attention_layer_norm(attention + rows)
        if training is True and self.intermediate.activation is gelu:
            # Training: the same values, but the backward pass keeps only the pre-activation.
            hidden = tf.nn.bias_add(tf.matmul(y, self.intermediate.kernel), self.intermediate.bias)
            hidden = gelu_saving_input(hidden)
        else:  # MatMul + BiasAdd + GELU, one fused kernel
            hidden = self.intermediate(y)
        ffn = apply_dropout(self.hidden_dropout, self.ffn_output(hidden), training)
        out = self.ffn_layer_norm(ffn + y)
        return tf.reshape(out, [batch, length, self.hidden_size])

    def tf1_variables(self, scope: str) -> dict[str, tf.Variable]:
        """Official names of this block's weights under `scope` (e.g. `.../group_0/inner_group_0`)."""
        attention = f"{scope}/attention_1"
        names = {
            f"{attention}/self/query": self.query, f"{attention}/self/key": self.key,
            f"{attention}/self/value": self.value, f"{attention}/output/dense": self.attention_output,
            f"{scope}/ffn_1/intermediate/dense": self.intermediate,
            f"{scope}/ffn_1/intermediate/output/dense": self.ffn_output,
        }
        out = {}
        for prefix, layer in names.items():
            out.update(dense_variables(prefix, layer))
        out.update(layer_norm_variables(f"{scope}/LayerNorm", self.attention_layer_norm))
        out.update(layer_norm_variables(f"{scope}/LayerNorm_1", self.ffn_layer_norm))
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_size": self.hidden_size, "num_heads": self.num_heads,
                "intermediate_size": self.intermediate_size, "activation": self.activation,
                "hidden_dropout": self.hidden_dropout_rate, "attention_dropout": self.attention_dropout_rate,
                "initializer_range": self.initializer_range}
