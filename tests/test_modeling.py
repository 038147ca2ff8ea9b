"""The encoder and pretraining heads against the original release's outputs and an independent
numpy implementation of the original forward pass."""
import os

import numpy as np
import pytest
import tensorflow as tf

import albert_tf
from albert_tf.configs import AlbertConfig
from conftest import FIXTURES
import numpy_reference

TINY_V2 = os.path.join(FIXTURES, "original_release", "tiny_v2")


def _reference_inputs(ref):
    return dict(input_word_ids=ref["input_ids"], input_mask=ref["input_mask"],
                input_type_ids=ref["token_type_ids"], masked_lm_positions=ref["masked_lm_positions"])


def test_parity_with_original_release_fixture():
    config = albert_tf.AlbertConfig.from_json_file(os.path.join(TINY_V2, "albert_config.json"))
    pretrainer = albert_tf.AlbertPretrainer(config)
    albert_tf.load_original_checkpoint(pretrainer, TINY_V2)
    ref = np.load(os.path.join(TINY_V2, "reference.npz"))
    out = pretrainer(_reference_inputs(ref), training=False)
    for key in ("embedding_output", "sequence_output", "pooled_output", "mlm_logits", "sop_logits"):
        assert out[key].shape == ref[key].shape, key
        np.testing.assert_allclose(out[key].numpy(), ref[key], atol=1e-5, rtol=0, err_msg=key)
    layers = np.stack([t.numpy() for t in out["encoder_outputs"]])
    assert len(out["encoder_outputs"]) == config.num_hidden_layers * config.inner_group_num
    np.testing.assert_allclose(layers, ref["all_encoder_layers"], atol=1e-5, rtol=0)


def test_bare_encoder_loads_release_and_returns_four_outputs():
    config = albert_tf.AlbertConfig.from_json_file(os.path.join(TINY_V2, "albert_config.json"))
    encoder = albert_tf.AlbertModel(config)
    report = albert_tf.load_original_checkpoint(encoder, os.path.join(TINY_V2, "model.ckpt-0"))
    assert any(n.startswith("cls/") for n in report.ignored)
    ref = np.load(os.path.join(TINY_V2, "reference.npz"))
    inputs = _reference_inputs(ref)
    inputs.pop("masked_lm_positions")
    out = encoder(inputs, training=False)
    assert set(out) == {"embedding_output", "sequence_output", "pooled_output", "encoder_outputs"}
    np.testing.assert_allclose(out["pooled_output"].numpy(), ref["pooled_output"], atol=1e-5, rtol=0)


def _randomize(model, rng, scale):
    weights = {}
    for name, var in model.tf1_variables().items():
        value = rng.normal(0.0, scale, var.shape.as_list()).astype(np.float32)
        if name.endswith("/gamma"):
            value += 1.0
        var.assign(value)
        weights[name] = value
    return weights


CONFIGS = {
    "groups_and_inner_groups": dict(num_hidden_layers=5, num_hidden_groups=2, inner_group_num=2),
    "no_factorization_relu": dict(embedding_size=32, hidden_act="relu"),
    "many_unshared_layers_tanh_types16": dict(num_hidden_layers=6, num_hidden_groups=6, hidden_act="tanh",
                                              type_vocab_size=16),
    "float_group_index_L22_G22": dict(num_hidden_layers=22, num_hidden_groups=22, hidden_size=16,
                                      num_attention_heads=2, intermediate_size=24, embedding_size=8),
    "linear_activation": dict(hidden_act="linear", num_hidden_layers=3, num_hidden_groups=3),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_general_configurations_match_numpy_reference(name):
    base = dict(vocab_size=50, embedding_size=16, hidden_size=32, num_hidden_layers=3, num_hidden_groups=1,
                num_attention_heads=4, intermediate_size=48, inner_group_num=1, hidden_act="gelu",
                hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, max_position_embeddings=24,
                type_vocab_size=2, initializer_range=0.02)
    base.update(CONFIGS[name])
    config = AlbertConfig.from_dict(base)
    model = albert_tf.AlbertPretrainer(config)
    rng = np.random.default_rng(0)
    # Large weights make small deviations (gelu form, LayerNorm epsilon, a skipped step) visible.
    weights = _randomize(model, rng, 0.25)
    B, S = 3, 11
    ids = rng.integers(0, config.vocab_size, (B, S)).astype(np.int32)
    types = rng.integers(0, config.type_vocab_size, (B, S)).astype(np.int32)
    mask = np.ones((B, S), np.int32)
    mask[1, 7:] = 0
    positions = rng.integers(0, S, (B, 4)).astype(np.int32)
    out = model(dict(input_word_ids=ids, input_mask=mask, input_type_ids=types, masked_lm_positions=positions),
                training=False)
    expected = numpy_reference.forward(base, weights, ids, mask, types, positions)
    for key in ("embedding_output", "sequence_output", "pooled_output", "mlm_logits", "sop_logits"):
        np.testing.assert_allclose(out[key].numpy(), expected[key], atol=1e-4, rtol=1e-4, err_msg=key)
    assert len(out["encoder_outputs"]) == config.num_hidden_layers * config.inner_group_num
    for got, want in zip(out["encoder_outputs"], expected["encoder_outputs"]):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-4, rtol=1e-4)


def test_float_group_index_skips_group_like_the_original():
    config = AlbertConfig(vocab_size=10, embedding_size=4, hidden_size=8, num_hidden_layers=22,
                          num_hidden_groups=22, num_attention_heads=2, intermediate_size=8)
    assert config.group_index(15) == 14  # int(15/22*22) in floating point
    names = albert_tf.AlbertModel(config).tf1_variables()
    assert not any("/group_15/" in n for n in names)
    assert any("/group_21/" in n for n in names)
    assert config.used_groups() == sorted(set(range(22)) - {15})


def test_no_projection_variable_when_embedding_equals_hidden():
    config = AlbertConfig(vocab_size=10, embedding_size=8, hidden_size=8, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=8)
    assert not any("embedding_hidden_mapping_in" in n for n in albert_tf.AlbertModel(config).tf1_variables())


def _small_config(**overrides):
    values = dict(vocab_size=40, embedding_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=24, max_position_embeddings=16)
    values.update(overrides)
    return AlbertConfig(**values)


def test_dropout_only_in_training():
    model = albert_tf.AlbertModel(_small_config(hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.3))
    ids = tf.constant([[3, 4, 5, 6, 7]])
    eval_a = model({"input_word_ids": ids}, training=False)["sequence_output"]
    eval_b = model({"input_word_ids": ids})["sequence_output"]
    np.testing.assert_array_equal(eval_a.numpy(), eval_b.numpy())
    train_a = model({"input_word_ids": ids}, training=True)["sequence_output"]
    train_b = model({"input_word_ids": ids}, training=True)["sequence_output"]
    assert not np.allclose(train_a.numpy(), eval_a.numpy())
    assert not np.allclose(train_a.numpy(), train_b.numpy())


def test_padding_does_not_change_real_positions():
    model = albert_tf.AlbertModel(_small_config())
    ids = np.array([[2, 11, 12, 13, 3]], np.int32)
    short = model({"input_word_ids": ids, "input_mask": np.ones_like(ids)}, training=False)
    padded_ids = np.array([[2, 11, 12, 13, 3, 17, 30, 9]], np.int32)  # garbage behind the mask
    mask = np.array([[1, 1, 1, 1, 1, 0, 0, 0]], np.int32)
    padded = model({"input_word_ids": padded_ids, "input_mask": mask}, training=False)
    np.testing.assert_allclose(padded["sequence_output"].numpy()[:, :5], short["sequence_output"].numpy(),
                               atol=1e-5)
    np.testing.assert_allclose(padded["pooled_output"].numpy(), short["pooled_output"].numpy(), atol=1e-5)


def test_defaults_for_mask_and_types_and_int64_inputs():
    model = albert_tf.AlbertModel(_small_config())
    ids = tf.constant([[5, 6, 7]], tf.int64)
    default = model({"input_word_ids": ids})["sequence_output"]
    explicit = model({"input_word_ids": ids, "input_mask": tf.ones_like(ids),
                      "input_type_ids": tf.zeros_like(ids)})["sequence_output"]
    np.testing.assert_array_equal(default.numpy(), explicit.numpy())


def test_sequence_longer_than_max_positions_is_a_clear_error():
    model = albert_tf.AlbertModel(_small_config(max_position_embeddings=4))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model({"input_word_ids": tf.zeros([1, 5], tf.int32)})


def test_pretrainer_without_positions_scores_every_position():
    model = albert_tf.AlbertPretrainer(_small_config())
    out = model({"input_word_ids": tf.constant([[1, 2, 3, 4]])})
    assert out["mlm_logits"].shape == (1, 4, 40) and out["sop_logits"].shape == (1, 2)
    assert model.encoder is not None and isinstance(model.encoder, albert_tf.AlbertModel)


def test_weights_are_not_all_identical():
    # A reused unseeded Keras initializer would give every matrix the same values.
    names = albert_tf.AlbertModel(_small_config(num_hidden_layers=1)).tf1_variables()
    q = names["bert/encoder/transformer/group_0/inner_group_0/attention_1/self/query/kernel"].numpy()
    k = names["bert/encoder/transformer/group_0/inner_group_0/attention_1/self/key/kernel"].numpy()
    assert not np.allclose(q, k)
    assert np.abs(q).max() <= 2 * 0.02 + 1e-6  # truncated at two standard deviations
