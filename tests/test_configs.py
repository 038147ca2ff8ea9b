"""AlbertConfig: JSON round trip, validation and the released presets."""
import json

import numpy as np
import pytest

import albert_tf
from albert_tf.configs import PRESETS, AlbertConfig

RELEASED_XXLARGE_V1 = {
    "attention_probs_dropout_prob": 0, "hidden_act": "gelu", "hidden_dropout_prob": 0, "embedding_size": 128,
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 16384, "max_position_embeddings": 512,
    "num_attention_heads": 64, "num_hidden_layers": 12, "num_hidden_groups": 1, "net_structure_type": 0,
    "layers_to_keep": [], "gap_size": 0, "num_memory_blocks": 0, "inner_group_num": 1, "down_scale_factor": 1,
    "type_vocab_size": 2, "vocab_size": 30000}


def test_every_key_round_trips(tmp_path):
    path = tmp_path / "albert_config.json"
    path.write_text(json.dumps(RELEASED_XXLARGE_V1))
    config = AlbertConfig.from_json_file(str(path))
    assert config.layers_to_keep == [] and config.gap_size == 0
    out = tmp_path / "sub" / "written.json"
    config.to_json_file(str(out))
    assert json.loads(out.read_text()) == RELEASED_XXLARGE_V1
    text = out.read_text()
    assert text.endswith("}\n") and text.index('"attention_probs') < text.index('"vocab_size')  # sorted keys
    assert AlbertConfig.from_json_file(str(out)) == config


def test_missing_keys_take_the_original_xxlarge_defaults():
    config = AlbertConfig.from_dict({"vocab_size": 99, "hidden_size": 64, "num_attention_heads": 4})
    assert (config.embedding_size, config.num_hidden_layers, config.intermediate_size) == (128, 12, 16384)


@pytest.mark.parametrize("overrides, message", [
    (dict(hidden_size=30, num_attention_heads=4), "divisible"),
    (dict(num_hidden_groups=5, num_hidden_layers=4), "num_hidden_groups"),
    (dict(hidden_act="gelu_fancy"), "hidden_act"),
    (dict(vocab_size=None), "vocab_size"),
    (dict(hidden_dropout_prob=1.5), "hidden_dropout_prob"),
    (dict(num_hidden_layers=0), "num_hidden_layers"),
])
def test_validation_errors_name_the_field(overrides, message):
    values = dict(vocab_size=10, hidden_size=32, num_attention_heads=4, num_hidden_layers=4)
    values.update(overrides)
    with pytest.raises(ValueError, match=message):
        AlbertConfig(**values)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="albert_config_file"):
        AlbertConfig.from_json_file(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        AlbertConfig.from_json_file(str(bad))
    with pytest.raises(ValueError, match="Unknown ALBERT preset"):
        AlbertConfig.from_preset("huge_v9")


def test_presets_cover_the_releases():
    assert {"base_v1", "large_v1", "xlarge_v1", "xxlarge_v1", "base_v2", "large_v2", "xlarge_v2", "xxlarge_v2",
            "base_zh", "large_zh", "xlarge_zh", "xxlarge_zh"} <= set(PRESETS)
    assert AlbertConfig.from_preset("albert_base_v2").hidden_dropout_prob == 0
    assert AlbertConfig.from_preset("base_v1").hidden_dropout_prob == 0.1
    assert AlbertConfig.from_preset("large_zh").hidden_act == "relu"


@pytest.mark.parametrize("preset, encoder_params, all_params", [
    ("base_v2", 11_683_584, 11_813_810),   # original_release.md §1.9, counted from the original shapes
    ("large_v2", 17_683_968, 17_847_474),
])
def test_parameter_counts_match_the_original(preset, encoder_params, all_params):
    config = AlbertConfig.from_preset(preset)
    pretrainer = albert_tf.AlbertPretrainer(config)
    count = lambda variables: int(sum(np.prod(v.shape) for v in variables))
    assert count(pretrainer.encoder.tf1_variables().values()) == encoder_params
    assert count(pretrainer.tf1_variables().values()) == all_params
    assert count(pretrainer.trainable_variables) == all_params
