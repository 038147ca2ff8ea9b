"""ONNX and TFLite deployment files (albert_tf.export.deploy, .onnx, .tflite): every task model converts,
loads in ONNX Runtime / LiteRT and answers like the TF model; the shared layer weights are stored once;
the quantized forms load, answer and shrink; the export flags fail early with one clear line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from albert_tf import checkpoints
from albert_tf.configs import AlbertConfig
from albert_tf.export import deploy, serving
from albert_tf.tasks.squad.export import SquadFeatureServing
from albert_tf.modeling import (AlbertClassifier, AlbertModel, AlbertMultipleChoice, AlbertPretrainer,
                                AlbertQuestionAnswering, AlbertSquadV2)
from albert_tf.tasks.glue.task import head_outputs
from albert_tf.tasks.race.task import choice_outputs

onnx = pytest.importorskip("onnx", reason="the onnx extra (tf2onnx, onnx, onnxruntime) is not installed")
pytest.importorskip("tf2onnx", reason="the onnx extra (tf2onnx, onnx, onnxruntime) is not installed")
pytest.importorskip("onnxruntime", reason="the onnx extra (tf2onnx, onnx, onnxruntime) is not installed")

from albert_tf.export import onnx as onnx_export  # noqa: E402
from albert_tf.export.onnx import OnnxRunner  # noqa: E402
from albert_tf.export.tflite import LiteRunner  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEQ = 16
# Three layers of one shared group whose weights outweigh the embeddings: a file holding a copy per
# layer would be about twice the parameter bytes or more.
CONFIG = dict(vocab_size=64, embedding_size=8, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
              intermediate_size=64, max_position_embeddings=SEQ, initializer_range=0.1)
TOLERANCE = 1e-4  # float32 ONNX / TFLite vs the TF model


def _config() -> AlbertConfig:
    return AlbertConfig.from_dict(CONFIG)


def _inputs(shape, rng) -> list[np.ndarray]:
    """Real-looking features: [CLS]-like ids, padding at the end of some rows, two segments."""
    ids = rng.integers(5, CONFIG["vocab_size"], shape).astype(np.int32)
    lengths = rng.integers(SEQ // 2, SEQ + 1, shape[:-1])
    mask = (np.arange(SEQ) < lengths[..., None]).astype(np.int32)
    types = (np.arange(SEQ) >= lengths[..., None] // 2).astype(np.int32) * mask
    return [ids * mask, mask, types]


def _reference(module: serving.FeatureServing, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in module.concrete_function()(*[tf.constant(x) for x in inputs]).items()}


def _check_close(reference, outputs, atol):
    assert set(outputs) == set(reference)
    for name, ref in reference.items():
        value = np.asarray(outputs[name])
        assert value.shape == ref.shape, name
        assert np.isfinite(value).all() if value.dtype.kind == "f" else True, name
        if ref.dtype.kind == "f":
            np.testing.assert_allclose(value, ref, atol=atol, rtol=0, err_msg=name)


def _run(path, inputs_by_name):
    return (OnnxRunner if path.endswith(".onnx") else LiteRunner)(path)(inputs_by_name)


def _model(name: str):
    """(feature-serving module, input shape) of the encoder or a task model, its weights built."""
    config = _config()
    shape = (2, 4, SEQ) if name == "race" else (3, SEQ)
    if name == "encoder":
        module = serving.FeatureServing(AlbertModel(config), lambda o: {k: o[k] for k in ("sequence_output",
                                                                                         "pooled_output")}, [SEQ])
    elif name == "classifier":
        module = serving.FeatureServing(AlbertClassifier(config, 3),
                                        lambda o: dict(head_outputs(o["logits"], False), logits=o["logits"]), [SEQ])
    elif name == "squad_v1":
        module = SquadFeatureServing(AlbertQuestionAnswering(config), "v1.1", SEQ)
    elif name == "squad_v2":
        module = SquadFeatureServing(AlbertSquadV2(config, start_n_top=3, end_n_top=2), "v2.0", SEQ)
    elif name == "race":
        module = serving.FeatureServing(AlbertMultipleChoice(config, num_choices=4),
                                        lambda o: choice_outputs(o["logits"]), [4, SEQ])
    else:
        module = serving.FeatureServing(AlbertPretrainer(config),
                                        lambda o: {k: o[k] for k in ("mlm_logits", "sop_logits")}, [SEQ])
    return module, shape


MODELS = ("encoder", "classifier", "squad_v1", "squad_v2", "race", "pretrainer")


@pytest.mark.parametrize("name", MODELS)
def test_every_model_in_every_format(tmp_path, name):
    """Float ONNX and TFLite give the TF outputs within 1e-4 at a batch size other than the traced one
    (the classifier also through ONNX Runtime's optimizer); the quantized forms (all for the classifier,
    int8 for SQuAD v1.1: conversion is the slow part) load and answer close to them. (Their sizes are
    measured at the base size by benchmarks/bench_deploy.py: at this size the graph, not the weights,
    fills the file.)"""
    seed = MODELS.index(name)
    tf.keras.utils.set_random_seed(seed)
    module, shape = _model(name)
    rng = np.random.default_rng(seed)
    inputs = _inputs(shape, rng)
    if name == "squad_v2":  # p_mask: 1 marks the positions that cannot hold an answer (the query, padding)
        inputs.append(1 - inputs[1])
    reference = _reference(module, inputs)
    config = _config()
    quantize = {"classifier": ("float16", "int8"), "squad_v1": ("int8",)}.get(name, ())
    heads_hidden = (config.num_attention_heads, config.hidden_size) if name == "classifier" else None
    paths = deploy.write_deployment(module, str(tmp_path), ["onnx", "tflite"], quantize, heads_hidden)
    if name == "classifier":
        assert "onnx_optimized" in paths
    assert os.path.basename(os.path.dirname(paths["onnx"])).endswith(deploy.DEPLOY)
    assert not [p for p in os.listdir(tmp_path) if p.startswith("temp-")]
    by_name = dict(zip(module.input_names, inputs))
    for kind in ("onnx", "onnx_optimized", "tflite"):
        if kind in paths:
            _check_close(reference, _run(paths[kind], by_name), TOLERANCE)
    model = onnx.load(paths["onnx"])
    assert [i.name for i in model.graph.input] == list(module.input_names)
    for kind, path in paths.items():
        outputs = _run(path, by_name)
        if "float16" in kind:
            _check_close(reference, outputs, 2e-2)
        elif "int8" in kind:
            scale = max(1.0, max(float(np.abs(v).max()) for v in reference.values() if v.dtype.kind == "f"))
            _check_close(reference, outputs, 0.25 * scale)


def test_onnx_stores_the_shared_layer_weights_once():
    """The ONNX initializers of a 3-layer shared-weight model are at most 1.05x its float32 parameters."""
    tf.keras.utils.set_random_seed(0)
    config = _config()
    encoder = AlbertModel(config)
    module = serving.FeatureServing(encoder, lambda o: {"pooled_output": o["pooled_output"]}, [SEQ])
    _reference(module, _inputs((1, SEQ), np.random.default_rng(0)))  # builds the weights
    parameter_bytes = sum(int(np.prod(v.shape)) * 4 for v in encoder.variables)
    layer_bytes = sum(int(np.prod(v.shape)) * 4 for v in encoder.variables if "transformer" in v.name or "group" in v.name)
    assert layer_bytes > 0.5 * parameter_bytes  # a copy per layer would break the bound below several times
    model = onnx_export.to_onnx(tf.function(module.serve, autograph=False), module.input_specs())
    assert onnx_export.initializer_bytes(model) <= 1.05 * parameter_bytes


def test_optimizer_fuses_layer_norm_and_gelu():
    """Our LayerNorm rewrite and ONNX Runtime's optimizer give one LayerNormalization per LayerNorm (the
    embeddings' and two per layer) and one FastGelu per layer, and keep the outputs. LayerNorm scales and
    biases are randomised like trained ones (tf2onnx folds away a scale of ones)."""
    tf.keras.utils.set_random_seed(0)
    config = _config()
    encoder = AlbertModel(config)
    module = serving.FeatureServing(encoder, lambda o: {k: o[k] for k in ("sequence_output", "pooled_output")},
                                    [SEQ])
    inputs = _inputs((2, SEQ), np.random.default_rng(0))
    _reference(module, inputs)  # builds the weights
    for variable in encoder.variables:
        variable.assign(tf.random.normal(variable.shape, stddev=0.2) + (1.0 if "gamma" in variable.name else 0.0))
    reference = _reference(module, inputs)
    model = onnx_export.to_onnx(tf.function(module.serve, autograph=False), module.input_specs())
    assert not onnx_export.fused_operators(model)
    optimized, fused = onnx_export.optimize(model, config.num_attention_heads, config.hidden_size)
    layers = config.num_hidden_layers
    assert fused == {"LayerNormalization": 2 * layers + 1, "FastGelu": layers}
    assert not onnx_export.fused_operators(model)  # the input model is left as it was
    _check_close(reference, OnnxRunner.from_model(optimized)(dict(zip(module.input_names, inputs))), TOLERANCE)


def test_full_integer_tflite_is_kept_only_when_accurate(tmp_path):
    """full_int8 either writes a file whose predictions agree with the float model's on the calibration
    features (>= 99%, checked here independently), or refuses with one clear error and leaves nothing."""
    tf.keras.utils.set_random_seed(1)
    module = serving.FeatureServing(AlbertClassifier(_config(), 2), lambda o: {"logits": o["logits"]}, [SEQ])
    batches = [_inputs((4, SEQ), np.random.default_rng(i)) for i in range(3)]
    try:
        paths = deploy.write_deployment(module, str(tmp_path), ["tflite"], ["full_int8"], calibration=lambda: batches)
    except ValueError as error:
        assert "Full-integer TFLite refused" in str(error) and "--export_quantize=int8" in str(error)
        assert os.listdir(tmp_path) == []
        return
    runner = LiteRunner(paths["tflite_full_int8"])
    for batch in batches:
        got = runner(dict(zip(module.input_names, batch)))["logits"]
        assert np.mean(np.argmax(got, -1) == np.argmax(_reference(module, batch)["logits"], -1)) >= 0.99


def test_agreement():
    ref = {"logits": np.array([[1.0, 0.0], [0.0, 1.0]], np.float32), "predictions": np.array([0, 1])}
    assert deploy.agreement(ref, {"logits": np.array([[2.0, 0.0], [1.0, 0.0]], np.float32)}) == 0.5
    assert deploy.agreement(ref, {"logits": np.array([[np.nan, 0.0], [0.0, 1.0]], np.float32)}) == 0.0


@pytest.mark.parametrize("formats,quantize,message", [
    ("savedmodel,pytorch", "", "--export_formats: unknown pytorch"),
    ("", "", "--export_formats is empty"),
    ("savedmodel", "int8", "add onnx and/or tflite"),
    ("onnx", "full_int8", "add tflite"),
    ("onnx", "int4", "--export_quantize: unknown int4"),
])
def test_export_settings_fail_early(formats, quantize, message):
    with pytest.raises(ValueError, match=message):
        deploy.check_export_settings(formats, quantize)


def test_export_savedmodel_script_writes_every_format(tmp_path):
    """export_savedmodel.py --export_formats=savedmodel,onnx,tflite --export_quantize=int8 writes the
    SavedModel and the ONNX / TFLite files, whose probabilities match the reloaded SavedModel's."""
    tf.keras.utils.set_random_seed(2)
    config_file = tmp_path / "albert_config.json"
    config_file.write_text(json.dumps(CONFIG))
    model = AlbertClassifier(_config(), 2)
    inputs = _inputs((3, SEQ), np.random.default_rng(2))
    model(dict(zip(serving.INPUT_NAMES, map(tf.constant, inputs))), training=False)
    checkpoints.save_original_checkpoint(model, str(tmp_path / "run" / "model.ckpt-best"))
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "export_savedmodel.py"), "--task_name=SST-2",
         f"--albert_config_file={config_file}", f"--output_dir={tmp_path / 'run'}", f"--max_seq_length={SEQ}",
         f"--export_dir={tmp_path / 'exports'}", "--export_formats=savedmodel,onnx,tflite", "--export_quantize=int8"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout.split()
    suffixes = sorted(os.path.basename(p).split(".", 1)[-1] for p in printed if "_deploy" in p)
    assert suffixes == ["int8.onnx", "int8.tflite", "onnx", "optimized.onnx", "tflite"]
    assert "TFLiteConverter" not in proc.stderr and "mlir" not in proc.stderr.lower()  # the converter is quiet
    expected = head_outputs(model(dict(zip(serving.INPUT_NAMES, map(tf.constant, inputs))), training=False)["logits"],
                            False)["probabilities"].numpy()
    by_name = dict(zip(serving.INPUT_NAMES, inputs))
    for path in printed:
        if path.endswith("model.onnx") or path.endswith("model.tflite"):
            np.testing.assert_allclose(_run(path, by_name)["probabilities"], expected, atol=TOLERANCE)


def test_bad_export_format_fails_before_work(tmp_path):
    config_file = tmp_path / "albert_config.json"
    config_file.write_text(json.dumps(CONFIG))
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "export_savedmodel.py"), "--task_name=SST-2",
         f"--albert_config_file={config_file}", f"--output_dir={tmp_path}",
         f"--export_dir={tmp_path / 'exports'}", "--export_formats=savedmodel,onnx,tflight"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert "--export_formats: unknown tflight" in proc.stderr


def test_encoder_from_checkpoint(tmp_path):
    """export_tfhub.py's library path writes the encoder's ONNX and TFLite files (--deploy_formats) from a
    TF1-layout checkpoint; they give the checkpoint's encoder outputs."""
    from albert_tf.export import tfhub

    tf.keras.utils.set_random_seed(4)
    config_file = tmp_path / "albert_config.json"
    config_file.write_text(json.dumps(CONFIG))
    encoder = AlbertModel(_config())
    inputs = _inputs((2, SEQ), np.random.default_rng(4))
    expected = encoder(dict(zip(serving.INPUT_NAMES, map(tf.constant, inputs))), training=False)
    checkpoints.save_original_checkpoint(encoder, str(tmp_path / "model.ckpt-1"))
    paths = tfhub.export_from_checkpoint(str(tmp_path / "hub"), str(config_file), str(tmp_path / "model.ckpt-1"),
                                         with_mlm=False, seq_length=SEQ, deploy_dir=str(tmp_path / "deploy"),
                                         deploy_formats="onnx,tflite")
    assert {"encoder", "onnx", "onnx_optimized", "tflite"} <= set(paths)
    for key in ("onnx", "tflite"):
        outputs = _run(paths[key], dict(zip(serving.INPUT_NAMES, inputs)))
        for name in ("sequence_output", "pooled_output"):
            np.testing.assert_allclose(outputs[name], expected[name].numpy(), atol=TOLERANCE, err_msg=name)
    with pytest.raises(ValueError, match="--deploy_formats needs --deploy_dir"):
        tfhub.export_from_checkpoint(str(tmp_path / "hub2"), str(config_file), str(tmp_path / "model.ckpt-1"),
                                     with_mlm=False, deploy_formats="onnx")
