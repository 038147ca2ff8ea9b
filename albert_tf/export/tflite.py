"""TFLite conversion, quiet, in the precisions ALBERT deploys in, and a LiteRT runner.

`convert(function, trackable, precision)` turns a traced serving function into TFLite flatbuffer bytes:

- "float32": the plain conversion (TFLite builtin ops);
- "float16": weights stored as float16, computed in float32 (half the size);
- "int8": dynamic-range quantization (weights int8, activations float; about a quarter of the size);
- "full_int8": full-integer quantization, activations calibrated on `calibration` batches of the task's
  own features. Callers check its accuracy before keeping it (see `albert_tf.export.deploy`).

The converter writes pages of MLIR and TOCO log lines straight to the process's stderr file descriptor
(C++ logging, not Python's); `quiet_stderr` holds them back and shows them only when conversion fails.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Callable, Iterable, Iterator, Mapping, Optional

import numpy as np
import tensorflow as tf

PRECISIONS = ("float32", "float16", "int8", "full_int8")


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Sends file descriptor 2 to a temporary file and mutes Python's logging up to warnings for the
    block (converters and optimizers log advice through both); on an exception the captured text is
    printed (so a failed conversion still explains itself), otherwise it is dropped."""
    sys.stderr.flush()
    saved = os.dup(2)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            logging.disable(previous)


def convert(function: tf.types.experimental.ConcreteFunction, trackable: tf.Module, precision: str = "float32",
            calibration: Optional[Callable[[], Iterable[list[np.ndarray]]]] = None) -> bytes:
    """TFLite flatbuffer bytes of `function` (a traced serving function of `trackable`).

    Args:
      function: the concrete function to convert; its input names and output keys become the TFLite
        signature's.
      trackable: the module owning the function's variables.
      precision: one of `PRECISIONS`.
      calibration: for "full_int8": a callable returning batches, each the function's inputs in order.

    Raises:
      ValueError: an unknown precision, or "full_int8" without calibration data.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown TFLite precision {precision!r}; use one of {', '.join(PRECISIONS)}.")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], trackable)
    if precision != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "full_int8":
        if calibration is None:
            raise ValueError("full_int8 TFLite needs calibration features from the task's data.")
        converter.representative_dataset = calibration
        # Integer kernels wherever TFLite has them; the int32 ids and the float outputs stay as they are.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    with quiet_stderr():
        return converter.convert()


def write(data: bytes, path: str) -> str:
    """Writes `data` to `path` through a temporary name (a half-written file never looks complete)."""
    temp = path + ".tmp"
    with tf.io.gfile.GFile(temp, "wb") as f:
        f.write(data)
    tf.io.gfile.rename(temp, path, overwrite=True)
    return path


def _interpreter_class() -> type:
    """LiteRT's interpreter (`ai-edge-litert`), else TensorFlow's deprecated `tf.lite.Interpreter`."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return tf.lite.Interpreter
    return Interpreter


class LiteRunner:
    """Runs a TFLite file's default signature: `runner(inputs)` with {name: array [B, ...]} -> {output: array}.

    Args:
      path: the `.tflite` file.
      num_threads: interpreter threads (None: the runtime's default).
    """

    def __init__(self, path: str, num_threads: Optional[int] = None):
        with quiet_stderr():  # LiteRT prints its delegate set-up to stderr
            self._interpreter = _interpreter_class()(model_path=path, num_threads=num_threads)
            self._runner = self._interpreter.get_signature_runner()

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(self._runner(**inputs))
