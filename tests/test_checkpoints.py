"""Strict loading and lossless saving in the official TF1 checkpoint layout."""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import albert_tf
from albert_tf.checkpoints import read_original_checkpoint, resolve_checkpoint_path
from albert_tf.configs import AlbertConfig
from conftest import FIXTURES

TINY_V2 = os.path.join(FIXTURES, "original_release", "tiny_v2")


def _config(**overrides):
    values = dict(vocab_size=30, embedding_size=8, hidden_size=16, num_hidden_layers=2,
                  num_attention_heads=2, intermediate_size=24, max_position_embeddings=16)
    values.update(overrides)
    return AlbertConfig(**values)


def _write(prefix, tensors):
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    return prefix


def test_saved_names_and_shapes_are_the_official_ones(tmp_path):
    config = AlbertConfig.from_json_file(os.path.join(TINY_V2, "albert_config.json"))
    prefix = albert_tf.save_original_checkpoint(albert_tf.AlbertPretrainer(config), str(tmp_path / "model.ckpt"))
    with open(os.path.join(TINY_V2, "variables.json")) as f:
        official = json.load(f)  # written by the original release's code
    saved = {n: list(v.shape) for n, v in read_original_checkpoint(prefix).items()}
    assert saved == official


def test_round_trip_is_lossless_and_writes_global_step(tmp_path):
    source = albert_tf.AlbertPretrainer(_config())
    prefix = albert_tf.save_original_checkpoint(source, str(tmp_path / "out" / "model.ckpt"), global_step=7)
    assert prefix.endswith("model.ckpt-7")
    for suffix in (".index", ".data-00000-of-00001"):
        assert os.path.exists(prefix + suffix)
    assert tf.train.get_checkpoint_state(str(tmp_path / "out")).model_checkpoint_path.endswith("model.ckpt-7")
    values = read_original_checkpoint(prefix)
    assert values["global_step"] == 7 and values["global_step"].dtype == np.int64
    target = albert_tf.AlbertPretrainer(_config())
    report = albert_tf.load_original_checkpoint(target, str(tmp_path / "out"))
    assert report.ignored == ["global_step"]
    for name, var in target.tf1_variables().items():
        np.testing.assert_array_equal(var.numpy(), source.tf1_variables()[name].numpy())


def test_optimizer_slots_are_ignored(tmp_path):
    tensors = read_original_checkpoint(TINY_V2)
    for name in list(tensors):
        tensors[name + "/adam_m"] = np.zeros_like(tensors[name])
        tensors[name + "/adam_v"] = np.zeros_like(tensors[name])
    tensors["global_step"] = np.int64(100)
    prefix = _write(str(tmp_path / "slots" / "model.ckpt-100"), tensors)
    model = albert_tf.AlbertPretrainer(AlbertConfig.from_json_file(os.path.join(TINY_V2, "albert_config.json")))
    report = albert_tf.load_original_checkpoint(model, prefix)
    assert sorted(report.ignored) == sorted(n for n in tensors if n.endswith(("/adam_m", "/adam_v"))) + ["global_step"]
    for name, var in model.tf1_variables().items():
        np.testing.assert_array_equal(var.numpy(), tensors[name])


def test_missing_weight_raises_and_names_it(tmp_path):
    model = albert_tf.AlbertPretrainer(_config())
    tensors = {n: v.numpy() for n, v in model.tf1_variables().items()}
    del tensors["bert/pooler/dense/kernel"]
    prefix = _write(str(tmp_path / "m" / "model.ckpt"), tensors)
    with pytest.raises(ValueError, match="bert/pooler/dense/kernel"):
        albert_tf.load_original_checkpoint(albert_tf.AlbertPretrainer(_config()), prefix)
    # Explicit partial loading loads the rest and reports the missing weight.
    target = albert_tf.AlbertPretrainer(_config())
    before = target.encoder.pooler.kernel.numpy().copy()
    report = albert_tf.load_original_checkpoint(target, prefix, allow_partial=True)
    assert report.missing == ["bert/pooler/dense/kernel"]
    np.testing.assert_array_equal(target.encoder.pooler.kernel.numpy(), before)
    np.testing.assert_array_equal(target.encoder.embeddings.word_embeddings.numpy(),
                                  tensors["bert/embeddings/word_embeddings"])


def test_unexpected_variable_raises(tmp_path):
    tensors = {n: v.numpy() for n, v in albert_tf.AlbertModel(_config()).tf1_variables().items()}
    tensors["bert/encoder/some_other_layer/kernel"] = np.zeros([2, 2], np.float32)
    prefix = _write(str(tmp_path / "u" / "model.ckpt"), tensors)
    with pytest.raises(ValueError, match="some_other_layer"):
        albert_tf.load_original_checkpoint(albert_tf.AlbertModel(_config()), prefix)


def test_shape_mismatch_names_both_shapes(tmp_path):
    prefix = albert_tf.save_original_checkpoint(albert_tf.AlbertModel(_config()), str(tmp_path / "a" / "model.ckpt"))
    with pytest.raises(ValueError, match=r"word_embeddings: checkpoint \[30, 8\] vs model \[31, 8\]"):
        albert_tf.load_original_checkpoint(albert_tf.AlbertModel(_config(vocab_size=31)), prefix)


def test_release_directory_config_must_match_model(tmp_path):
    release = tmp_path / "release"
    shutil.copytree(TINY_V2, release)
    other = AlbertConfig.from_json_file(os.path.join(TINY_V2, "albert_config.json")).to_dict()
    other["num_hidden_layers"] = 3
    with pytest.raises(ValueError, match="num_hidden_layers"):
        albert_tf.load_original_checkpoint(albert_tf.AlbertModel(AlbertConfig.from_dict(other)), str(release))


def test_directory_resolution(tmp_path):
    model = albert_tf.AlbertModel(_config())
    one = tmp_path / "one"
    prefix = albert_tf.save_original_checkpoint(model, str(one / "model.ckpt"), global_step=3)
    os.remove(one / "checkpoint")
    assert resolve_checkpoint_path(str(one)) == prefix  # the only prefix
    albert_tf.save_original_checkpoint(model, str(one / "model.ckpt"), global_step=4)
    os.remove(one / "checkpoint")
    with pytest.raises(ValueError, match="model.ckpt-3.*model.ckpt-4"):
        resolve_checkpoint_path(str(one))
    albert_tf.save_original_checkpoint(model, str(one / "model.ckpt-best"))
    os.remove(one / "checkpoint")
    assert resolve_checkpoint_path(str(one)).endswith("model.ckpt-best")
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        resolve_checkpoint_path(str(tmp_path / "nothing-here" / "model.ckpt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        resolve_checkpoint_path(str(tmp_path / "empty"))


def test_run_directory_resolves_through_model_subfolder(tmp_path):
    """A run folder such as the demo's output (config at the top, checkpoints in model/) loads as is."""
    config = _config()
    run = tmp_path / "albert_demo_output"
    (run / "model").mkdir(parents=True)
    config.to_json_file(str(run / "albert_config.json"))
    source = albert_tf.AlbertModel(config)
    albert_tf.save_original_checkpoint(source, str(run / "model" / "model.ckpt"), global_step=5)
    best = albert_tf.save_original_checkpoint(source, str(run / "model" / "model.ckpt-best"))
    os.remove(run / "model" / "checkpoint")
    assert resolve_checkpoint_path(str(run)) == best
    target = albert_tf.AlbertModel(config)
    report = albert_tf.load_original_checkpoint(target, str(run))
    assert report.path == best and not report.missing
    for a, b in zip(source.weights, target.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    (tmp_path / "run2" / "model").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"run2 or .*run2/model"):
        resolve_checkpoint_path(str(tmp_path / "run2"))


def test_init_from_group0_copies_group0_into_every_group(tmp_path):
    prefix = albert_tf.save_original_checkpoint(albert_tf.AlbertModel(_config(num_hidden_layers=4)),
                                                str(tmp_path / "g" / "model.ckpt"))
    grouped = albert_tf.AlbertModel(_config(num_hidden_layers=4, num_hidden_groups=2))
    with pytest.raises(ValueError, match="group_1"):
        albert_tf.load_original_checkpoint(grouped, prefix)
    report = albert_tf.load_original_checkpoint(grouped, prefix, init_from_group0=True)
    assert report.copied_from_group0 and all("/group_1/" in n for n in report.copied_from_group0)
    for name, var in grouped.tf1_variables().items():
        if "/group_1/" in name:
            np.testing.assert_array_equal(var.numpy(), grouped.tf1_variables()[name.replace("group_1", "group_0")].numpy())


def test_classifier_encoder_from_pretraining_checkpoint(tmp_path):
    config = AlbertConfig.from_json_file(os.path.join(TINY_V2, "albert_config.json"))
    classifier = albert_tf.AlbertClassifier(config, num_labels=3)
    albert_tf.load_original_checkpoint(classifier.encoder, TINY_V2)
    released = read_original_checkpoint(TINY_V2)
    for name, var in classifier.encoder.tf1_variables().items():
        np.testing.assert_array_equal(var.numpy(), released[name])
    prefix = albert_tf.save_original_checkpoint(classifier, str(tmp_path / "c" / "model.ckpt"))
    names = read_original_checkpoint(prefix)
    assert names["output_weights"].shape == (3, 32) and names["output_bias"].shape == (3,)


def test_report_counts_ignored_heads_and_optimizer_state_apart(tmp_path):
    """The report's line and the 'Ignored N head variables' log line give the same head count."""
    pretrainer = albert_tf.AlbertPretrainer(_config())
    prefix = albert_tf.save_original_checkpoint(pretrainer, str(tmp_path / "p" / "model.ckpt"), global_step=9)
    report = albert_tf.load_original_checkpoint(albert_tf.AlbertModel(_config()), prefix)
    heads = sorted(n for n in pretrainer.tf1_variables() if n.startswith("cls/"))
    assert report.ignored_heads == heads and sorted(report.ignored) == sorted(heads + ["global_step"])
    assert f"ignored {len(heads)} head variables of another model and 1 optimizer state variables" in str(report)
