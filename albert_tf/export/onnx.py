"""ONNX export of ALBERT serving functions (tf2onnx), its ONNX Runtime forms, and an ONNX Runtime runner.

Needs the `onnx` extra (`tf2onnx`, `onnx`, `onnxruntime`; see the README for the pins).

- `to_onnx(function, input_specs)`: the float32 ONNX model of a serving function, inputs and outputs
  named as its TensorSpecs and output keys. ALBERT's shared layer weights are one set of variables read
  once per layer; freezing turns each variable into one initializer that every layer's nodes use, so
  the file holds the weights once (measured: 0.998x the float32 parameter bytes for ALBERT-base at
  seq 128; `initializer_bytes` checks it).
- `optimize(model, num_heads, hidden_size)`: ONNX Runtime's transformer optimizer (model type "bert"); `fused_operators`
  says what it fused.
- `quantize_int8(model)`: ONNX Runtime's dynamic quantization (int8 weights of MatMul / Gather,
  activations quantized at run time).
- `to_float16(model)`: float16 weights and compute, float32 inputs and outputs kept.
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from albert_tf.export.tflite import quiet_stderr


OPSET = 17  # LayerNormalization is a standard op from 17 on

# The ops ONNX Runtime's optimizer reports as fused, for `fused_operators`.
_FUSED = ("Attention", "MultiHeadAttention", "LayerNormalization", "SkipLayerNormalization",
          "EmbedLayerNormalization", "Gelu", "FastGelu", "BiasGelu")


def to_onnx(function: Callable, input_specs: Sequence[tf.TensorSpec]) -> "onnx.ModelProto":  # noqa: F821
    """The ONNX model of a `tf.function` traced at `input_specs` (constant-folded by tf2onnx)."""
    import tf2onnx

    with quiet_stderr():
        model, _ = tf2onnx.convert.from_function(function, input_signature=list(input_specs), opset=OPSET)
    return model


def initializer_bytes(model: "onnx.ModelProto") -> int:  # noqa: F821
    """Bytes of the model's stored constants (initializers)."""
    from onnx import numpy_helper

    return sum(numpy_helper.to_array(init).nbytes for init in model.graph.initializer)


def fuse_layer_norms(model: "onnx.ModelProto") -> int:  # noqa: F821
    """Rewrites, in place, each LayerNorm of our graph as one ONNX `LayerNormalization` (opset 17); returns
    how many. tf2onnx writes `albert_tf.modeling.layers.LayerNorm` (the TF1 contrib formula) as
    `mean = ReduceMean(x); c = x - mean; r = Reciprocal(Sqrt(ReduceMean(c * c) + eps));
    y = c * (r * gamma) + beta`, which ONNX Runtime's optimizer does not recognise; as one op it fuses it
    (with the residual Add, into `SkipLayerNormalization`). Same formula, so the outputs stay within float
    rounding."""
    from onnx import helper, numpy_helper

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in dict.fromkeys(node.input):  # once per node, also for Mul(c, c)
            consumers.setdefault(name, []).append(node)
    constants = {init.name: init for init in graph.initializer}
    means = ("ReduceMean", "GlobalAveragePool")

    def only(name: str, op: str):
        """The single consumer of `name` when it is an `op`, else None."""
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op else None

    def other(node, name: str) -> str:
        return node.input[1] if node.input[0] == name else node.input[0]

    fused, removed = 0, set()
    for sub in list(graph.node):
        mean = producer.get(sub.input[1]) if sub.op_type == "Sub" else None
        if mean is None or mean.op_type not in means or mean.input[0] != sub.input[0]:
            continue
        centered = sub.output[0]
        users = consumers.get(centered, [])
        square = next((n for n in users if n.op_type == "Mul" and list(n.input) == [centered, centered]), None)
        if len(users) != 2 or square is None:
            continue
        chain = [square]
        for op in (mean.op_type, "Add", "Sqrt", "Reciprocal", "Mul", "Mul", "Add"):
            following = only(chain[-1].output[0], op)
            if following is None:
                break
            chain.append(following)
        if len(chain) != 8:
            continue
        variance, add_eps, sqrt, reciprocal, scale, normed, shift = chain[1:]
        if other(normed, scale.output[0]) != centered:
            continue
        eps, gamma, beta = (other(add_eps, variance.output[0]), other(scale, reciprocal.output[0]),
                            other(shift, normed.output[0]))
        if not {eps, gamma, beta} <= set(constants) or numpy_helper.to_array(constants[eps]).size != 1:
            continue
        epsilon = float(numpy_helper.to_array(constants[eps]).reshape(()))
        chain = [mean, sub, *chain]
        if any(node.name in removed for node in chain):
            continue
        removed.update(node.name for node in chain)
        layer_norm = helper.make_node("LayerNormalization", [sub.input[0], gamma, beta], [shift.output[0]],
                                      name=f"{shift.name}/LayerNormalization", axis=-1, epsilon=epsilon)
        graph.node.insert(list(graph.node).index(shift), layer_norm)
        fused += 1
    kept = [node for node in graph.node if node.name not in removed]
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]  # e.g. epsilon constants
    for init in unused:
        graph.initializer.remove(init)
    return fused


def optimize(model: "onnx.ModelProto", num_heads: int, hidden_size: int  # noqa: F821
             ) -> tuple["onnx.ModelProto", dict[str, int]]:  # noqa: F821
    """ONNX Runtime's transformer optimizer for a BERT-like graph (attention, LayerNorm, GELU fusion), given
    the config's `num_attention_heads` and `hidden_size`, after `fuse_layer_norms`.

    Returns:
      (the optimized model, {fused operator: count} for the operators that fused).
    """
    import onnx
    from onnxruntime.transformers import optimizer

    source = onnx.ModelProto()
    source.CopyFrom(model)  # the optimizer rewrites the graph it is given in place
    fuse_layer_norms(source)
    with quiet_stderr():  # it warns that the graph does not come from PyTorch
        optimized = optimizer.optimize_model(source, model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                                             opt_level=0)
    return optimized.model, fused_operators(optimized.model)


def fused_operators(model: "onnx.ModelProto") -> dict[str, int]:  # noqa: F821
    """{fused operator type: count} in the graph."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in _FUSED:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def quantize_int8(model: "onnx.ModelProto") -> "onnx.ModelProto":  # noqa: F821
    """ONNX Runtime's dynamic int8 quantization (weights int8; activations quantized per batch)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:  # quantize_dynamic works on files
        source, target = os.path.join(tmp, "float.onnx"), os.path.join(tmp, "int8.onnx")
        onnx.save(model, source)
        with quiet_stderr():  # its advice to run its pre-processing first (shape inference, no speed-up here)
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        return onnx.load(target)


def to_float16(model: "onnx.ModelProto") -> "onnx.ModelProto":  # noqa: F821
    """float16 weights and compute; the inputs and outputs keep their types."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=True)


def write(model: "onnx.ModelProto", path: str) -> str:  # noqa: F821
    """Saves `model` to `path` through a temporary name."""
    temp = path + ".tmp"
    with tf.io.gfile.GFile(temp, "wb") as f:
        f.write(model.SerializeToString())
    tf.io.gfile.rename(temp, path, overwrite=True)
    return path


class OnnxRunner:
    """Runs an ONNX file with ONNX Runtime on the CPU: `runner(inputs)` {name: array} -> {output: array}.

    Args:
      path: the `.onnx` file (or its bytes).
      num_threads: intra-op threads (None: the runtime's default).
    """

    def __init__(self, path: str | bytes, num_threads: Optional[int] = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._outputs = [output.name for output in self._session.get_outputs()]

    @classmethod
    def from_model(cls, model: "onnx.ModelProto", num_threads: Optional[int] = None) -> "OnnxRunner":  # noqa: F821
        """A runner of an in-memory model."""
        return cls(model.SerializeToString(), num_threads)

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._outputs, self._session.run(self._outputs, dict(inputs))))
