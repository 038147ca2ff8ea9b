"""Keras layers that compute exactly what the original ALBERT `modeling.py` computes.

Every layer keeps its weights in the layout of the official TF1 checkpoints (2-D Q/K/V kernels
[H, N*D], `output_weights` stored [num_classes, H]), so loading a checkpoint is a plain copy and
`tf1_variables()` can name each weight with its official variable name.

Shapes: B batch, S sequence length, E embedding size, H hidden size, N heads, D = H/N head size,
I intermediate size, V vocabulary size, P masked positions.
"""
from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf
import tf_keras as keras

# The original masks padded keys by adding this constant (not -inf) to the attention scores.
ATTENTION_MASK_ADDER = -10000.0
# TF1 `contrib.layers.layer_norm` hard-codes this variance epsilon for float32.
LAYER_NORM_EPSILON = 1e-12


def gelu(x: tf.Tensor) -> tf.Tensor:
    """GELU with the tanh approximation, written in the same operation order as the original."""
    cdf = 0.5 * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * tf.pow(x, 3))))
    return x * cdf


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

    Uses the biased variance and `tf.nn.batch_normalization` with epsilon 1e-12, which is what
    `contrib.layers.layer_norm` computes; Keras' own layer may switch to a fused kernel that clamps
    epsilon to 1e-5. Under mixed precision the statistics are computed in float32.
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

    def call(self, x: tf.Tensor) -> tf.Tensor:
        dtype = x.dtype
        x = tf.cast(x, tf.float32)
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        y = tf.nn.batch_normalization(x, mean, variance, offset=tf.cast(self.beta, tf.float32),
                                      scale=tf.cast(self.gamma, tf.float32), variance_epsilon=self.epsilon)
        return tf.cast(y, dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def _dropout(rate: float) -> keras.layers.Layer | None:
    # The original's dropout() is a no-op for probability 0, so no layer is created then.
    return keras.layers.Dropout(rate) if rate and rate > 0 else None


def _apply_dropout(layer: keras.layers.Layer | None, x: tf.Tensor, training) -> tf.Tensor:
    return layer(x, training=training) if layer is not None else x


class AlbertEmbeddings(keras.layers.Layer):
    """Factorised embeddings at width E: word + token type + position, then LayerNorm and dropout.

    Inputs: `word_ids` [B,S] int, `type_ids` [B,S] int. Output: [B,S,E] (the original's
    `get_embedding_output()`). Positions are always 0..S-1 and S must not exceed
    `max_position_embeddings`.
    """

    def __init__(self, vocab_size: int, embedding_size: int, type_vocab_size: int,
                 max_position_embeddings: int, dropout_rate: float, initializer_range: float, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.type_vocab_size = type_vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.layer_norm = LayerNorm(name="LayerNorm")
        self.dropout = _dropout(dropout_rate)

    def build(self, input_shape):
        def table(name: str, rows: int) -> tf.Variable:
            return self.add_weight(name, shape=[rows, self.embedding_size],
                                   initializer=truncated_normal(self.initializer_range))

        self.word_embeddings = table("word_embeddings", self.vocab_size)
        self.token_type_embeddings = table("token_type_embeddings", self.type_vocab_size)
        self.position_embeddings = table("position_embeddings", self.max_position_embeddings)
        super().build(input_shape)

    def call(self, word_ids: tf.Tensor, type_ids: tf.Tensor, training=None) -> tf.Tensor:
        seq_length = word_ids.shape[1]
        if seq_length is not None and seq_length > self.max_position_embeddings:
            raise ValueError(
                f"Sequence length {seq_length} exceeds max_position_embeddings="
                f"{self.max_position_embeddings} of this config; use --max_seq_length <= "
                f"{self.max_position_embeddings} or truncate the inputs.")
        dynamic_length = tf.shape(word_ids)[1]
        tf.debugging.assert_less_equal(
            dynamic_length, self.max_position_embeddings,
            message="Sequence length exceeds max_position_embeddings of the ALBERT config.")
        x = tf.gather(self.word_embeddings, word_ids)
        x += tf.gather(self.token_type_embeddings, type_ids)
        x += tf.expand_dims(self.position_embeddings[:dynamic_length], 0)
        x = self.layer_norm(x)
        return _apply_dropout(self.dropout, x, training)


class AlbertTransformerBlock(keras.layers.Layer):
    """One post-LN attention + FFN block (the original `attention_ffn_block`); shared across layers.

    Computes `y = LN(x + Dropout(Attn(x)))` then `LN_1(y + Dropout(FFN(y)))`.
    Inputs: `x` [B,S,H] and the additive attention bias [B,1,1,S] (0 for real keys, -10000 for padding).
    Output: [B,S,H].
    """

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, activation: str,
                 hidden_dropout: float, attention_dropout: float, initializer_range: float, **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_heads}.")
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
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
        self.attention_dropout = _dropout(attention_dropout)
        self.hidden_dropout = _dropout(hidden_dropout)

    def _split_heads(self, x: tf.Tensor) -> tf.Tensor:
        """[B,S,N*D] -> [B,N,S,D]."""
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        x = tf.reshape(x, [batch, length, self.num_heads, self.head_size])
        return tf.transpose(x, [0, 2, 1, 3])

    def call(self, x: tf.Tensor, attention_bias: tf.Tensor, training=None) -> tf.Tensor:
        q = self._split_heads(self.query(x))
        k = self._split_heads(self.key(x))
        v = self._split_heads(self.value(x))
        # Scale after the product, as the original does, so results match to the last bits.
        scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(float(self.head_size)))
        scores = scores + tf.cast(attention_bias, scores.dtype)
        # Softmax in float32: float16 scores with a -10000 bias lose the small probabilities otherwise.
        probs = tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32), axis=-1), v.dtype)
        probs = _apply_dropout(self.attention_dropout, probs, training)
        context = tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3])  # [B,S,N,D]
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        context = tf.reshape(context, [batch, length, self.num_heads * self.head_size])
        attention = _apply_dropout(self.hidden_dropout, self.attention_output(context), training)
        y = self.attention_layer_norm(attention + x)
        ffn = _apply_dropout(self.hidden_dropout, self.ffn_output(self.intermediate(y)), training)
        return self.ffn_layer_norm(ffn + y)

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


def layer_norm_variables(scope: str, layer: LayerNorm) -> dict[str, tf.Variable]:
    return {f"{scope}/beta": layer.beta, f"{scope}/gamma": layer.gamma}


def dense_variables(scope: str, layer: keras.layers.Dense) -> dict[str, tf.Variable]:
    out = {f"{scope}/kernel": layer.kernel}
    if layer.use_bias:
        out[f"{scope}/bias"] = layer.bias
    return out


class MaskedLMHead(keras.layers.Layer):
    """The original MLM decoder: dense H->E (config activation), LayerNorm(E), logits against the tied
    word-embedding table plus an output-only bias.

    Inputs: `sequence_output` [B,S,H], `positions` [B,P] int (or None for every position).
    Output: logits [B,P,V] (float32).
    """

    def __init__(self, embedding_table: tf.Variable, activation: str, initializer_range: float, **kwargs):
        super().__init__(**kwargs)
        self.embedding_table = embedding_table
        vocab_size, embedding_size = embedding_table.shape
        self.vocab_size = int(vocab_size)
        self.dense = keras.layers.Dense(int(embedding_size), activation=get_activation(activation),
                                        kernel_initializer=truncated_normal(initializer_range), name="dense")
        self.layer_norm = LayerNorm(name="LayerNorm")

    def build(self, input_shape):
        self.output_bias = self.add_weight("output_bias", shape=[self.vocab_size], initializer="zeros")
        super().build(input_shape)

    def call(self, sequence_output: tf.Tensor, positions: tf.Tensor | None = None) -> tf.Tensor:
        x = sequence_output if positions is None else tf.gather(sequence_output, positions, batch_dims=1)
        x = self.layer_norm(self.dense(x))
        table = tf.cast(self.embedding_table, x.dtype)
        logits = tf.matmul(x, table, transpose_b=True)
        return tf.cast(logits, tf.float32) + tf.cast(self.output_bias, tf.float32)

    def tf1_variables(self, scope: str = "cls/predictions") -> dict[str, tf.Variable]:
        out = dense_variables(f"{scope}/transform/dense", self.dense)
        out.update(layer_norm_variables(f"{scope}/transform/LayerNorm", self.layer_norm))
        out[f"{scope}/output_bias"] = self.output_bias
        return out


class ClassificationHead(keras.layers.Layer):
    """Linear head `x @ output_weights^T + output_bias`, with weights stored [num_classes, H] as the
    original keeps them (SOP: `cls/seq_relationship`; GLUE/RACE: root `output_weights`).

    Optional dropout on the input (active only in training), as the fine-tuning heads apply.
    Input [..., H] -> logits [..., num_classes] (float32).
    """

    def __init__(self, num_classes: int, initializer_range: float, dropout_rate: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.initializer_range = initializer_range
        self.dropout = _dropout(dropout_rate)

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.output_weights = self.add_weight("output_weights", shape=[self.num_classes, width],
                                              initializer=truncated_normal(self.initializer_range))
        self.output_bias = self.add_weight("output_bias", shape=[self.num_classes], initializer="zeros")
        super().build(input_shape)

    def call(self, x: tf.Tensor, training=None) -> tf.Tensor:
        x = _apply_dropout(self.dropout, x, training)
        logits = tf.matmul(x, tf.cast(self.output_weights, x.dtype), transpose_b=True)
        return tf.cast(logits, tf.float32) + tf.cast(self.output_bias, tf.float32)

    def tf1_variables(self, scope: str = "") -> dict[str, tf.Variable]:
        prefix = f"{scope}/" if scope else ""
        return {f"{prefix}output_weights": self.output_weights, f"{prefix}output_bias": self.output_bias}
