"""Hugging Face checkpoints in and out.

The Hugging Face directories here are written by the tests themselves from the parameter names and
shapes of transformers' `modeling_albert.py` (nn.Linear weights [out, in], y = x W^T + b), never by
`save_transformers`; what they compute is checked against the independent numpy forward pass of
`numpy_reference.py`.
"""
import importlib.util
import json
import os

import numpy as np
import pytest
import safetensors.numpy
import tensorflow as tf
import tf_keras as keras

import albert_tf
import numpy_reference
from albert_tf.checkpoints import transformers as hf
from albert_tf.checkpoints.tf1 import CheckpointMismatchError
from albert_tf.configs import AlbertConfig
from albert_tf.export import convert as convert_checkpoint
from albert_tf.tokenization import FullTokenizer
from conftest import FIXTURES

SPM_MODEL = os.path.join(FIXTURES, "tokenization", "tiny-clean.model")
# 4 layers over 2 groups of 2 inner layers, E != H. type_vocab_size, layer_norm_eps and
# initializer_range are left out, as transformers writes them when they have its defaults.
HF_CONFIG = dict(model_type="albert", vocab_size=1000, embedding_size=8, hidden_size=16, num_hidden_layers=4,
                 num_hidden_groups=2, num_attention_heads=2, intermediate_size=24, inner_group_num=2,
                 hidden_act="gelu_new", max_position_embeddings=16, classifier_dropout_prob=0.2)
ARCHS = {  # architecture -> (prefix of the encoder's names, pooler, heads)
    "AlbertModel": ("", True, ()),
    "AlbertForPreTraining": ("albert.", True, ("mlm", "sop")),
    "AlbertForMaskedLM": ("albert.", False, ("mlm",)),
    "AlbertForSequenceClassification": ("albert.", True, ("classifier",)),
    "AlbertForQuestionAnswering": ("albert.", False, ("qa",)),
    "AlbertForMultipleChoice": ("albert.", True, ("choice",)),
}
NUM_LABELS = 3


def _hf_state(cfg, rng, prefix, pooler, heads):
    """Random weights under transformers' parameter names and shapes."""
    V, E, H, I = cfg["vocab_size"], cfg["embedding_size"], cfg["hidden_size"], cfg["intermediate_size"]
    state = {}

    def param(name, shape, offset=0.0):
        state[name] = (rng.normal(0.0, 0.25, shape) + offset).astype(np.float32)

    def linear(name, out, inp):
        param(f"{name}.weight", [out, inp])
        param(f"{name}.bias", [out])

    def norm(name, width):
        param(f"{name}.weight", [width], 1.0)
        param(f"{name}.bias", [width])

    param(f"{prefix}embeddings.word_embeddings.weight", [V, E])
    param(f"{prefix}embeddings.position_embeddings.weight", [cfg["max_position_embeddings"], E])
    param(f"{prefix}embeddings.token_type_embeddings.weight", [cfg.get("type_vocab_size", 2), E])
    norm(f"{prefix}embeddings.LayerNorm", E)
    linear(f"{prefix}encoder.embedding_hidden_mapping_in", H, E)
    for g in range(cfg["num_hidden_groups"]):
        for k in range(cfg["inner_group_num"]):
            layer = f"{prefix}encoder.albert_layer_groups.{g}.albert_layers.{k}"
            for name in ("query", "key", "value", "dense"):
                linear(f"{layer}.attention.{name}", H, H)
            norm(f"{layer}.attention.LayerNorm", H)
            linear(f"{layer}.ffn", I, H)
            linear(f"{layer}.ffn_output", H, I)
            norm(f"{layer}.full_layer_layer_norm", H)
    if pooler:
        linear(f"{prefix}pooler", H, H)
    if "mlm" in heads:
        linear("predictions.dense", E, H)
        norm("predictions.LayerNorm", E)
        param("predictions.bias", [V])
    if "sop" in heads:
        linear("sop_classifier.classifier", 2, H)
    if "classifier" in heads:
        linear("classifier", NUM_LABELS, H)
    if "choice" in heads:
        linear("classifier", 1, H)
    if "qa" in heads:
        linear("qa_outputs", 2, H)
    return state


def _reference_weights(cfg, state, prefix):
    """The same weights under the original's names for numpy_reference (kernel = W^T). A pooler and SOP
    head the file lacks are zeros (the outputs they feed are not compared)."""
    H = cfg["hidden_size"]
    w = {}

    def dense(scope, name):
        w[f"{scope}/kernel"] = state[f"{name}.weight"].T
        w[f"{scope}/bias"] = state[f"{name}.bias"]

    def norm(scope, name):
        w[f"{scope}/gamma"] = state[f"{name}.weight"]
        w[f"{scope}/beta"] = state[f"{name}.bias"]

    for kind in ("word", "position", "token_type"):
        w[f"bert/embeddings/{kind}_embeddings"] = state[f"{prefix}embeddings.{kind}_embeddings.weight"]
    norm("bert/embeddings/LayerNorm", f"{prefix}embeddings.LayerNorm")
    if cfg["embedding_size"] != cfg["hidden_size"]:
        dense("bert/encoder/embedding_hidden_mapping_in", f"{prefix}encoder.embedding_hidden_mapping_in")
    for g in range(cfg["num_hidden_groups"]):
        for k in range(cfg["inner_group_num"]):
            scope = f"bert/encoder/transformer/group_{g}/inner_group_{k}"
            layer = f"{prefix}encoder.albert_layer_groups.{g}.albert_layers.{k}"
            for name in ("query", "key", "value"):
                dense(f"{scope}/attention_1/self/{name}", f"{layer}.attention.{name}")
            dense(f"{scope}/attention_1/output/dense", f"{layer}.attention.dense")
            norm(f"{scope}/LayerNorm", f"{layer}.attention.LayerNorm")
            dense(f"{scope}/ffn_1/intermediate/dense", f"{layer}.ffn")
            dense(f"{scope}/ffn_1/intermediate/output/dense", f"{layer}.ffn_output")
            norm(f"{scope}/LayerNorm_1", f"{layer}.full_layer_layer_norm")
    if f"{prefix}pooler.weight" in state:
        dense("bert/pooler/dense", f"{prefix}pooler")
    else:
        w["bert/pooler/dense/kernel"], w["bert/pooler/dense/bias"] = np.zeros([H, H]), np.zeros([H])
    if "predictions.bias" in state:
        dense("cls/predictions/transform/dense", "predictions.dense")
        norm("cls/predictions/transform/LayerNorm", "predictions.LayerNorm")
        w["cls/predictions/output_bias"] = state["predictions.bias"]
        w["cls/seq_relationship/output_weights"] = state.get("sop_classifier.classifier.weight", np.zeros([2, H]))
        w["cls/seq_relationship/output_bias"] = state.get("sop_classifier.classifier.bias", np.zeros([2]))
    return w


def _write_hf_dir(directory, cfg, state, architecture=None, tokenizer_config=None, spm=True):
    os.makedirs(directory, exist_ok=True)
    config = dict(cfg, **({"architectures": [architecture]} if architecture else {}))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    safetensors.numpy.save_file(state, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    if spm:
        with open(SPM_MODEL, "rb") as src, open(os.path.join(directory, "spiece.model"), "wb") as dst:
            dst.write(src.read())
    if tokenizer_config is not None:
        with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
            json.dump(tokenizer_config, f)
    return str(directory)


def _inputs(rng, shape, mask_from=None):
    ids = rng.integers(0, HF_CONFIG["vocab_size"], shape).astype(np.int32)
    types = rng.integers(0, 2, shape).astype(np.int32)
    mask = np.ones(shape, np.int32)
    if mask_from is not None:
        mask[..., 1, mask_from:] = 0
    return ids, mask, types


def _reference_config(cfg):
    """numpy_reference's config: transformers' gelu_new is the original's (tanh) gelu."""
    return dict(cfg, hidden_act={"gelu_new": "gelu"}.get(cfg["hidden_act"], cfg["hidden_act"]))


@pytest.mark.parametrize("architecture", sorted(ARCHS))
def test_documented_layout_loads_matches_reference_and_saves_back_unchanged(tmp_path, architecture):
    prefix, pooler, heads = ARCHS[architecture]
    rng = np.random.default_rng(sorted(ARCHS).index(architecture))
    state = _hf_state(HF_CONFIG, rng, prefix, pooler, heads)
    labels = {"0": "neg", "1": "neutral", "2": "pos"} if "classifier" in heads else None
    cfg = dict(HF_CONFIG, **({"id2label": labels} if labels else {}))
    directory = _write_hf_dir(tmp_path / "in", cfg, state, architecture,
                              tokenizer_config={"do_lower_case": True, "remove_space": True, "keep_accents": False})
    model = albert_tf.from_transformers(directory)
    assert isinstance(model.tokenizer, FullTokenizer)

    w = _reference_weights(HF_CONFIG, state, prefix)
    ref_cfg = _reference_config(dict(HF_CONFIG, type_vocab_size=2))
    if "choice" in heads:
        ids, mask, types = _inputs(rng, (2, 4, 7))
        out = model({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}, training=False)
        ref = numpy_reference.forward(ref_cfg, w, ids.reshape(8, 7), mask.reshape(8, 7), types.reshape(8, 7))
        expected = (ref["pooled_output"] @ state["classifier.weight"].T + state["classifier.bias"]).reshape(2, 4)
        np.testing.assert_allclose(out["logits"].numpy(), expected, atol=1e-5, rtol=1e-5)
    else:
        ids, mask, types = _inputs(rng, (3, 7), mask_from=5)
        positions = rng.integers(0, 7, (3, 2)).astype(np.int32)
        inputs = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}
        if "mlm" in heads:
            inputs["masked_lm_positions"] = positions
        out = model(inputs, training=False)
        ref = numpy_reference.forward(ref_cfg, w, ids, mask, types, positions)
        np.testing.assert_allclose(out["sequence_output"].numpy(), ref["sequence_output"], atol=1e-5, rtol=1e-5)
        compared = {"mlm_logits": ref.get("mlm_logits")} if "mlm" in heads else {}
        if pooler:
            compared["pooled_output"] = ref["pooled_output"]
        if "sop" in heads:
            compared["sop_logits"] = ref["sop_logits"]
        if "classifier" in heads:
            compared["logits"] = ref["pooled_output"] @ state["classifier.weight"].T + state["classifier.bias"]
        if "qa" in heads:
            span = ref["sequence_output"] @ state["qa_outputs.weight"].T + state["qa_outputs.bias"]
            compared.update(start_logits=span[..., 0], end_logits=span[..., 1])
        for key, value in compared.items():
            np.testing.assert_allclose(out[key].numpy(), value, atol=1e-5, rtol=1e-5, err_msg=key)
    if labels:
        assert model.id2label == {0: "neg", 1: "neutral", 2: "pos"}

    # Written back: the same names, the same values, a config transformers reads the same way.
    out_dir = hf.save_transformers(model, str(tmp_path / "out"), architecture=architecture)
    saved = safetensors.numpy.load_file(os.path.join(out_dir, "model.safetensors"))
    assert sorted(saved) == sorted(state)
    for name, value in state.items():
        np.testing.assert_array_equal(saved[name], value, err_msg=name)
    with open(os.path.join(out_dir, "config.json")) as f:
        written = json.load(f)
    assert written["architectures"] == [architecture] and written["model_type"] == "albert"
    assert written["hidden_act"] == "gelu_new" and written["layer_norm_eps"] == 1e-12
    for key in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
                "num_attention_heads", "intermediate_size", "inner_group_num", "max_position_embeddings"):
        assert written[key] == HF_CONFIG[key], key
    if "classifier" in heads or "choice" in heads:
        assert written["classifier_dropout_prob"] == 0.2
    if labels:
        assert written["id2label"] == labels and written["label2id"] == {"neg": 0, "neutral": 1, "pos": 2}
    with open(os.path.join(out_dir, "spiece.model"), "rb") as a, open(SPM_MODEL, "rb") as b:
        assert a.read() == b.read()


def test_equal_sizes_relu_tied_decoder_and_buffers(tmp_path):
    """E == H with the identity projection transformers always has, relu, a file that keeps the tied
    decoder copies and the position_ids buffer of older transformers versions."""
    cfg = dict(HF_CONFIG, embedding_size=16, hidden_act="relu", num_hidden_layers=3, num_hidden_groups=1,
               inner_group_num=1)
    rng = np.random.default_rng(7)
    state = _hf_state(cfg, rng, "albert.", True, ("mlm", "sop"))
    state["albert.encoder.embedding_hidden_mapping_in.weight"] = np.eye(16, dtype=np.float32)
    state["albert.encoder.embedding_hidden_mapping_in.bias"] = np.zeros([16], np.float32)
    state["predictions.decoder.weight"] = state["albert.embeddings.word_embeddings.weight"].copy()
    state["predictions.decoder.bias"] = state.pop("predictions.bias")
    state["albert.embeddings.position_ids"] = np.arange(16, dtype=np.int64)[None]
    directory = _write_hf_dir(tmp_path / "in", cfg, state, "AlbertForPreTraining")
    model = albert_tf.from_transformers(directory)
    assert model.encoder.embedding_projection is None
    assert model.config.hidden_act == "relu"

    state["predictions.bias"] = state["predictions.decoder.bias"]
    w = _reference_weights(cfg, state, "albert.")
    ids, mask, types = _inputs(rng, (2, 6), mask_from=4)
    positions = np.array([[1, 3], [0, 2]], np.int32)
    out = model({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types,
                 "masked_lm_positions": positions}, training=False)
    ref = numpy_reference.forward(dict(cfg, type_vocab_size=2), w, ids, mask, types, positions)
    for key in ("sequence_output", "pooled_output", "mlm_logits", "sop_logits"):
        np.testing.assert_allclose(out[key].numpy(), ref[key], atol=1e-5, rtol=1e-5, err_msg=key)

    saved = safetensors.numpy.load_file(os.path.join(hf.save_transformers(model, str(tmp_path / "out")),
                                                     "model.safetensors"))
    np.testing.assert_array_equal(saved["albert.encoder.embedding_hidden_mapping_in.weight"], np.eye(16))
    assert not np.any(saved["albert.encoder.embedding_hidden_mapping_in.bias"])
    assert "predictions.decoder.weight" not in saved and "predictions.decoder.bias" not in saved


def test_config_defaults_and_activation_names_follow_transformers(tmp_path):
    # A key the file leaves out takes transformers' default (hidden_act gelu_new = the tanh gelu).
    config = hf.albert_config_from_transformers({"model_type": "albert", "hidden_size": 16, "num_attention_heads": 2})
    assert (config.hidden_act, config.vocab_size, config.intermediate_size, config.embedding_size) == (
        "gelu", 30000, 16384, 128)
    # transformers' "gelu" is the erf form.
    assert hf.albert_config_from_transformers({"model_type": "albert", "hidden_act": "gelu"}).hidden_act == "gelu_exact"


def test_pretrainer_round_trip_is_lossless(tmp_path):
    config = AlbertConfig(vocab_size=1000, embedding_size=8, hidden_size=16, num_hidden_layers=3,
                          num_hidden_groups=3, num_attention_heads=2, intermediate_size=24, max_position_embeddings=16,
                          hidden_act="gelu_exact")
    model = albert_tf.AlbertPretrainer(config)
    hf.save_transformers(model, str(tmp_path), spm_model_file=SPM_MODEL, do_lower_case=False)
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["hidden_act"] == "gelu"
    with open(tmp_path / "tokenizer_config.json") as f:
        assert json.load(f)["do_lower_case"] is False
    loaded = albert_tf.from_transformers(str(tmp_path))
    assert loaded.config.hidden_act == "gelu_exact" and loaded.tokenizer.do_lower_case is False
    before, after = model.tf1_variables(), loaded.tf1_variables()
    assert sorted(before) == sorted(after)
    for name in before:
        np.testing.assert_array_equal(before[name].numpy(), after[name].numpy(), err_msg=name)


def test_encoder_initialisation_keeps_missing_head_and_pooler(tmp_path):
    """An AlbertForMaskedLM file (no pooler) initialising a classifier: the encoder loads, the pooler and
    the classifier head keep their values; a model of another config is refused."""
    state = _hf_state(HF_CONFIG, np.random.default_rng(3), "albert.", False, ("mlm",))
    directory = _write_hf_dir(tmp_path / "mlm", HF_CONFIG, state, "AlbertForMaskedLM")
    config = hf.transformers_albert_config(directory)
    classifier = albert_tf.AlbertClassifier(config, 2)
    kept = {n: classifier.tf1_variables()[n].numpy() for n in ("bert/pooler/dense/kernel", "output_weights")}
    report = hf.initialize_from_transformers(classifier, directory)
    variables = classifier.tf1_variables()
    assert len(report.loaded) == len(variables) - 4  # all but pooler kernel/bias and the head's two weights
    np.testing.assert_array_equal(variables["bert/embeddings/word_embeddings"].numpy(),
                                  state["albert.embeddings.word_embeddings.weight"])
    np.testing.assert_array_equal(
        variables["bert/encoder/transformer/group_1/inner_group_1/ffn_1/intermediate/dense/kernel"].numpy(),
        state["albert.encoder.albert_layer_groups.1.albert_layers.1.ffn.weight"].T)
    for name, value in kept.items():
        np.testing.assert_array_equal(variables[name].numpy(), value)

    other = albert_tf.AlbertClassifier(AlbertConfig.from_dict(dict(config.to_dict(), intermediate_size=32)), 2)
    with pytest.raises(ValueError, match="intermediate_size: file 24 vs model 32"):
        hf.initialize_from_transformers(other, directory)


def test_refusals(tmp_path):
    # Layer -> group: transformers' int(i / (L / G)) differs from the original's at layer 15 of L = G = 22.
    odd = AlbertConfig(vocab_size=50, embedding_size=8, hidden_size=8, num_hidden_layers=22, num_hidden_groups=22,
                       num_attention_heads=1, intermediate_size=8, max_position_embeddings=8)
    with pytest.raises(ValueError, match=r"differ at layers \[15\]"):
        hf.save_transformers(albert_tf.AlbertModel(odd), str(tmp_path / "odd"))
    assert not os.path.exists(tmp_path / "odd")
    with pytest.raises(ValueError, match=r"differ at layers \[15\]"):
        hf.albert_config_from_transformers(dict(model_type="albert", **{
            k: v for k, v in odd.to_dict().items() if k in ("num_hidden_layers", "num_hidden_groups")}))
    # transformers' layer group gives each inner layer one of int(L / G) head-mask entries.
    with pytest.raises(ValueError, match="inner_group_num=2 exceeds"):
        hf.check_transformers_compatible(AlbertConfig(vocab_size=50, num_hidden_layers=3, num_hidden_groups=2,
                                                      inner_group_num=2, hidden_size=8, num_attention_heads=1))
    with pytest.raises(ValueError, match="model_type 'bert'"):
        hf.albert_config_from_transformers({"model_type": "bert"})
    with pytest.raises(ValueError, match="layer_norm_eps"):
        hf.albert_config_from_transformers({"model_type": "albert", "layer_norm_eps": 1e-5})

    # No weights file.
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps(HF_CONFIG))
    assert not hf.is_transformers_dir(str(empty))
    with pytest.raises(FileNotFoundError, match="expected model.safetensors"):
        albert_tf.from_transformers(str(empty))
    # Names of another model.
    state = _hf_state(HF_CONFIG, np.random.default_rng(0), "albert.", True, ())
    state["albert.encoder.layer.0.attention.self.query.weight"] = np.zeros([16, 16], np.float32)
    with pytest.raises(CheckpointMismatchError, match=r"albert\.encoder\.layer\.0\.attention\.self\.query"):
        albert_tf.from_transformers(_write_hf_dir(tmp_path / "bert", HF_CONFIG, state))
    # A learned projection when E == H; an untied decoder.
    cfg = dict(HF_CONFIG, embedding_size=16)
    state = _hf_state(cfg, np.random.default_rng(0), "albert.", False, ("mlm",))
    with pytest.raises(ValueError, match="learned embedding_hidden_mapping_in"):
        albert_tf.from_transformers(_write_hf_dir(tmp_path / "proj", cfg, state))
    state = _hf_state(HF_CONFIG, np.random.default_rng(0), "albert.", False, ("mlm",))
    state["predictions.decoder.weight"] = np.zeros([1000, 8], np.float32)
    with pytest.raises(ValueError, match="untied output layer"):
        albert_tf.from_transformers(_write_hf_dir(tmp_path / "untied", HF_CONFIG, state))


def test_unsupported_architecture_and_encoder_override(tmp_path):
    state = _hf_state(HF_CONFIG, np.random.default_rng(1), "albert.", False, ())
    state["classifier.weight"] = np.zeros([5, 16], np.float32)  # token classification: no pooler, [C,H] head
    state["classifier.bias"] = np.zeros([5], np.float32)
    directory = _write_hf_dir(tmp_path, HF_CONFIG, state, "AlbertForTokenClassification")
    with pytest.raises(ValueError, match="'AlbertForTokenClassification' is not supported"):
        albert_tf.from_transformers(directory)
    encoder = albert_tf.from_transformers(directory, architecture="AlbertModel")
    np.testing.assert_array_equal(encoder.tf1_variables()["bert/embeddings/LayerNorm/gamma"].numpy(),
                                  state["albert.embeddings.LayerNorm.weight"])
    with pytest.raises(ValueError, match="written as AlbertModel, not 'AlbertForMaskedLM'"):
        hf.save_transformers(encoder, str(tmp_path / "out"), architecture="AlbertForMaskedLM")


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_pytorch_file_without_torch_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(HF_CONFIG))
    (tmp_path / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not read")
    assert hf.is_transformers_dir(str(tmp_path))
    with pytest.raises(ImportError, match="pytorch_model.bin is a PyTorch file and reading it needs torch"):
        albert_tf.from_transformers(str(tmp_path))


def test_tokenizer_options_from_tokenizer_config(tmp_path):
    directory = tmp_path / "tok"
    directory.mkdir()
    with open(SPM_MODEL, "rb") as f:
        (directory / "spiece.model").write_bytes(f.read())
    plain = FullTokenizer.from_transformers(str(directory))
    assert (plain.do_lower_case, plain.remove_space, plain.keep_accents) == (True, True, False)
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": False, "remove_space": False, "keep_accents": True, "tokenizer_class": "AlbertTokenizer"}))
    tokenizer = FullTokenizer.from_transformers(str(directory))
    assert (tokenizer.do_lower_case, tokenizer.remove_space, tokenizer.keep_accents) == (False, False, True)
    assert tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]", "[MASK]"]) == [2, 3, 4]
    (directory / "spiece.model").unlink()
    with pytest.raises(FileNotFoundError, match="No spiece.model or vocab.txt"):
        FullTokenizer.from_transformers(str(directory))


def test_convert_tf1_to_transformers_and_back_and_tf2_state(tmp_path):
    config = AlbertConfig(vocab_size=1000, embedding_size=8, hidden_size=16, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=24, max_position_embeddings=16)
    model = albert_tf.AlbertClassifier(config, 2)
    release = tmp_path / "run"
    albert_tf.save_original_checkpoint(model, str(release / "model.ckpt"), global_step=7)
    config.to_json_file(str(release / "albert_config.json"))

    out = convert_checkpoint.convert(str(release), "transformers", str(tmp_path / "hf"), spm_model_file=SPM_MODEL,
                                     label_names=["no", "yes"])
    with open(os.path.join(out, "config.json")) as f:
        written = json.load(f)
    assert written["architectures"] == ["AlbertForSequenceClassification"]
    assert written["id2label"] == {"0": "no", "1": "yes"}
    back = convert_checkpoint.convert(out, "tf1", str(tmp_path / "tf1"))
    assert back == str(tmp_path / "tf1" / "model.ckpt-best")
    restored = albert_tf.checkpoints.read_original_checkpoint(back)
    assert sorted(restored) == sorted(model.tf1_variables())
    for name, variable in model.tf1_variables().items():
        np.testing.assert_array_equal(restored[name], variable.numpy(), err_msg=name)
    assert AlbertConfig.from_json_file(str(tmp_path / "tf1" / "albert_config.json")) == config
    assert os.path.exists(tmp_path / "tf1" / "spiece.model")

    # The TF2 training state of a run (model and optimizer, as the Trainer writes it).
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    state = tf.train.Checkpoint(model=model, optimizer=optimizer)
    tf.train.CheckpointManager(state, str(release / "tf2_checkpoints"), 1, checkpoint_name="ckpt").save(7)
    with pytest.raises(ValueError, match="--model_kind is required"):
        convert_checkpoint.convert(str(release), "transformers", str(tmp_path / "x"), input_format="tf2_state",
                                   albert_config_file=str(release / "albert_config.json"))
    out = convert_checkpoint.convert(str(release), "transformers", str(tmp_path / "hf2"), input_format="tf2_state",
                                     albert_config_file=str(release / "albert_config.json"), model_kind="classifier",
                                     num_labels=2)
    saved = safetensors.numpy.load_file(os.path.join(out, "model.safetensors"))
    np.testing.assert_array_equal(saved["classifier.weight"], model.tf1_variables()["output_weights"].numpy())

    with pytest.raises(ValueError, match="Cannot tell the format"):
        convert_checkpoint.convert(str(tmp_path / "missing"), "tf1", str(tmp_path / "y"))
