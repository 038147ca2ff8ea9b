"""Deployment files beside the SavedModels: ONNX and TFLite, float32 and quantized (`--export_formats`,
`--export_quantize`).

`write_deployment(module, export_dir, formats, quantize)` writes, for a `serving.FeatureServing`-like module
(tensors in: `input_word_ids`, `input_mask`, `input_type_ids` int32 [B, ...]; its served tensors out),
one folder `export_dir/<timestamp>_deploy/` (written under a temporary name, then renamed):

- with "onnx": `albert_model.onnx` (float32), `albert_model.optimized.onnx` (ONNX Runtime's transformer
  fusions, when any fused), and per `--export_quantize` variant `albert_model.float16.onnx`,
  `albert_model.int8.onnx` (dynamic quantization);
- with "tflite": `albert_model.tflite` (float32, batch dimension dynamic) and `albert_model.float16.tflite`,
  `albert_model.int8.tflite` (dynamic range), `albert_model.full_int8.tflite` (full integer, calibrated
  on the task's features; refused when it does not reproduce the float model, see `check_full_int8`).
"""
from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from albert_tf.configs import AlbertConfig
from albert_tf.export import serving

FORMATS = ("savedmodel", "onnx", "tflite")
QUANTIZE = ("float16", "int8", "full_int8")
DEPLOY = "_deploy"  # suffix of the deployment folder
STEM = "albert_model"
# Python packages each format needs (the `onnx` extra).
_EXTRAS = {"onnx": ("tf2onnx", "onnx", "onnxruntime")}
# full_int8 is kept only when its outputs agree with the float model's on the calibration features this well.
FULL_INT8_MIN_AGREEMENT = 0.99


def parse_list(text: Optional[str], allowed: Sequence[str], flag: str) -> tuple[str, ...]:
    """A comma list flag value (`--export_formats=onnx,tflite`) -> its names, checked against `allowed`.

    Raises:
      ValueError: an unknown name, or a format whose optional packages are not installed.
    """
    names = tuple(dict.fromkeys(name.strip().lower() for name in (text or "").split(",") if name.strip()))
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ValueError(f"--{flag}: unknown {', '.join(unknown)}; use a comma list of {', '.join(allowed)}.")
    for name in names:
        missing = [pkg for pkg in _EXTRAS.get(name, ()) if importlib.util.find_spec(pkg) is None]
        if missing:
            raise ValueError(f"--{flag}={name} needs {', '.join(missing)}: pip install 'albert-tf[onnx]' "
                             "(see the README's install line).")
    return names


def check_export_settings(export_formats: str, export_quantize: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(formats, quantize variants) of the flags, checked before any work.

    Raises:
      ValueError: unknown names, missing extras, or quantize variants without an ONNX/TFLite format.
    """
    formats = parse_list(export_formats, FORMATS, "export_formats")
    quantize = parse_list(export_quantize, QUANTIZE, "export_quantize")
    if not formats:
        raise ValueError("--export_formats is empty; use a comma list of " + ", ".join(FORMATS) + ".")
    if quantize and not {"onnx", "tflite"} & set(formats):
        raise ValueError("--export_quantize writes ONNX/TFLite variants: add onnx and/or tflite to --export_formats.")
    if "full_int8" in quantize and "tflite" not in formats:
        raise ValueError("--export_quantize=full_int8 is a TFLite form: add tflite to --export_formats.")
    return formats, quantize


def calibration_batches(make_dataset: Callable[[], tf.data.Dataset], input_names: Sequence[str],
                        num_batches: int = 8) -> Callable[[], list[list[np.ndarray]]]:
    """The full_int8 calibration set: the first `num_batches` batches of a task's feature dataset (dicts
    holding the model inputs; built by `make_dataset` only when first asked), as lists of int32 arrays in
    `input_names` order."""
    cache: list[list[np.ndarray]] = []

    def batches() -> list[list[np.ndarray]]:
        if not cache:
            for features in make_dataset().take(num_batches):
                features = features[0] if isinstance(features, tuple) else features
                cache.append([np.asarray(features[name], np.int32) for name in input_names])
        return cache

    return batches


def export_task(module: serving.FeatureServing, settings: Any, config: Optional[AlbertConfig],
                calibration: Optional[Callable[[], Iterable[list[np.ndarray]]]] = None) -> dict[str, str]:
    """What a task's `export` adds to its SavedModels: the files of `--export_formats` / `--export_quantize`
    (`settings.export_formats`, `settings.export_quantize`) under `settings.export_dir` (`write_deployment`),
    with ONNX Runtime's optimizer set from `config` (skipped without one)."""
    formats, quantize = check_export_settings(settings.export_formats, settings.export_quantize)
    heads_hidden = None if config is None else (config.num_attention_heads, config.hidden_size)
    return write_deployment(module, settings.export_dir, formats, quantize, heads_hidden, calibration)


def wants_saved_model(settings: Any) -> bool:
    """Whether `--export_formats` lists savedmodel."""
    return "savedmodel" in parse_list(settings.export_formats, FORMATS, "export_formats")


def agreement(reference: Mapping[str, np.ndarray], other: Mapping[str, np.ndarray]) -> float:
    """The fraction of rows whose argmax over the last axis agrees, over every float output of rank >= 2
    (1.0 when there is none). A NaN anywhere gives 0."""
    fractions = []
    for name, ref in reference.items():
        if not np.issubdtype(ref.dtype, np.floating):
            continue
        value = np.asarray(other[name])
        if np.isnan(value).any():
            return 0.0
        if ref.ndim >= 2 and ref.shape[-1] > 1:
            fractions.append(float(np.mean(np.argmax(ref, -1) == np.argmax(value, -1))))
    return min(fractions) if fractions else 1.0


def check_full_int8(path: str, module: serving.FeatureServing, batches: Sequence[list[np.ndarray]]) -> float:
    """The argmax agreement of a full-integer TFLite file with the float model on `batches`.

    Raises:
      ValueError: agreement below `FULL_INT8_MIN_AGREEMENT` (or NaNs): the file is deleted and refused.
    """
    from albert_tf.export.tflite import LiteRunner

    runner, function = LiteRunner(path), module.concrete_function()
    worst = 1.0
    for batch in batches:
        inputs = dict(zip(module.input_names, batch))
        reference = {k: v.numpy() for k, v in function(*[tf.constant(x) for x in batch]).items()}
        worst = min(worst, agreement(reference, runner(inputs)))
    if worst < FULL_INT8_MIN_AGREEMENT:
        tf.io.gfile.remove(path)
        raise ValueError(f"Full-integer TFLite refused: its predictions agree with the float model's on only "
                         f"{worst:.1%} of the calibration features (< {FULL_INT8_MIN_AGREEMENT:.0%}: int8 "
                         "activations lose too much). Use --export_quantize=int8 (dynamic range) instead.")
    return worst


def write_deployment(module: serving.FeatureServing, export_dir: str, formats: Iterable[str], quantize: Iterable[str],
                     num_heads_hidden: Optional[tuple[int, int]] = None,
                     calibration: Optional[Callable[[], Iterable[list[np.ndarray]]]] = None) -> dict[str, str]:
    """Writes the ONNX / TFLite files of `module` (see the module docstring).

    Args:
      module: the model in its feature-serving form.
      export_dir: `export_dir/<timestamp>_deploy/` is created in it.
      formats: names from `FORMATS` ("savedmodel" is written by the task, not here).
      quantize: names from `QUANTIZE`.
      num_heads_hidden: (attention heads, hidden size) for ONNX Runtime's transformer optimizer; None skips it.
      calibration: batches of the task's features (each the inputs in order) for "full_int8".

    Returns:
      {"onnx", "onnx_optimized", "onnx_float16", "onnx_int8", "tflite", "tflite_float16", ...: file path}
      for each file written.
    """
    formats, quantize = set(formats), list(quantize)
    if not {"onnx", "tflite"} & formats:
        return {}
    tf.io.gfile.makedirs(export_dir)
    stamp = serving.free_stamp(export_dir, [DEPLOY])
    final = os.path.join(export_dir, f"{stamp}{DEPLOY}")
    temp = os.path.join(export_dir, f"temp-{stamp}{DEPLOY}")
    tf.io.gfile.makedirs(temp)
    written: dict[str, str] = {}
    try:
        if "full_int8" in quantize:  # first: a refused model stops the export before the other files are made
            written["tflite_full_int8"] = _write_full_int8(module, temp, calibration)
        if "onnx" in formats:
            written.update(_write_onnx(module, temp, quantize, num_heads_hidden))
        if "tflite" in formats:
            written.update(_write_tflite(module, temp, [q for q in quantize if q != "full_int8"]))
    except BaseException:
        tf.io.gfile.rmtree(temp)  # nothing half-made is left behind
        raise
    tf.io.gfile.rename(temp, final)
    paths = {key: os.path.join(final, os.path.basename(path)) for key, path in written.items()}
    logging.info("Wrote %s", ", ".join(f"{key}: {path}" for key, path in paths.items()))
    return paths


def _write_onnx(module: serving.FeatureServing, folder: str, quantize: Sequence[str],
                num_heads_hidden: Optional[tuple[int, int]]) -> dict[str, str]:
    from albert_tf.export import onnx as onnx_export

    model = onnx_export.to_onnx(tf.function(module.serve, autograph=False), module.input_specs())
    paths = {"onnx": onnx_export.write(model, os.path.join(folder, f"{STEM}.onnx"))}
    if num_heads_hidden is not None:
        optimized, fused = onnx_export.optimize(model, *num_heads_hidden)
        logging.info("ONNX Runtime's optimizer fused %s", fused or "nothing")
        if fused:
            paths["onnx_optimized"] = onnx_export.write(optimized, os.path.join(folder, f"{STEM}.optimized.onnx"))
    if "float16" in quantize:
        paths["onnx_float16"] = onnx_export.write(onnx_export.to_float16(model),
                                                  os.path.join(folder, f"{STEM}.float16.onnx"))
    if "int8" in quantize:
        paths["onnx_int8"] = onnx_export.write(onnx_export.quantize_int8(model),
                                               os.path.join(folder, f"{STEM}.int8.onnx"))
    return paths


def _write_full_int8(module: serving.FeatureServing, folder: str,
                     calibration: Optional[Callable[[], Iterable[list[np.ndarray]]]]) -> str:
    from albert_tf.export import tflite

    if calibration is None:
        raise ValueError("--export_quantize=full_int8 needs the task's features for calibration and has none "
                         "here (GLUE: pass --data_dir); or use --export_quantize=int8.")
    data = tflite.convert(module.concrete_function(), module, "full_int8", calibration)
    path = tflite.write(data, os.path.join(folder, f"{STEM}.full_int8.tflite"))
    check_full_int8(path, module, list(calibration()))
    return path


def _write_tflite(module: serving.FeatureServing, folder: str, quantize: Sequence[str]) -> dict[str, str]:
    from albert_tf.export import tflite

    function = module.concrete_function()
    paths = {"tflite": tflite.write(tflite.convert(function, module), os.path.join(folder, f"{STEM}.tflite"))}
    for precision in quantize:
        paths[f"tflite_{precision}"] = tflite.write(tflite.convert(function, module, precision),
                                                    os.path.join(folder, f"{STEM}.{precision}.tflite"))
    return paths
