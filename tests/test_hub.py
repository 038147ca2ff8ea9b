"""TF-Hub in and out: `from_hub` (TF1 Hub modules, TF2 SavedModels), `export_encoder`, the preprocessing
SavedModel, and both exports in a fresh process with only tensorflow + tensorflow_text."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras as keras
from tensorflow.core.protobuf import saved_model_pb2

import albert_tf
from albert_tf import tokenization
from albert_tf.checkpoints import CheckpointMismatchError
from albert_tf.checkpoints import hub as hub_lib
from albert_tf.export import tfhub
from conftest import FIXTURES

TINY_MODEL = os.path.join(FIXTURES, "tokenization", "tiny-clean.model")
CLS, SEP = 2, 3
SEQ = 12


def tiny_config(**overrides) -> albert_tf.AlbertConfig:
    fields = dict(vocab_size=1000, embedding_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=32, max_position_embeddings=32, type_vocab_size=2)
    return albert_tf.AlbertConfig(**{**fields, **overrides})


def random_arrays(model, seed: int) -> dict[str, np.ndarray]:
    """Random values for every official variable of `model` (LayerNorms and biases included, so a
    swapped or skipped variable shows)."""
    rng = np.random.RandomState(seed)
    return {name: (0.3 * rng.standard_normal(v.shape)).astype(np.float32) for name, v in model.tf1_variables().items()}


def batch(seed: int = 0, batch_size: int = 3, length: int = SEQ) -> dict[str, tf.Tensor]:
    rng = np.random.RandomState(seed)
    ids = rng.randint(5, 1000, [batch_size, length]).astype(np.int32)
    mask = np.ones_like(ids)
    mask[0, length - 4:] = 0
    types = np.zeros_like(ids)
    types[:, length // 2:] = 1
    return {"input_word_ids": tf.constant(ids), "input_mask": tf.constant(mask), "input_type_ids": tf.constant(types)}


def finetune(classifier: keras.Model, steps: int = 3) -> tuple[float, float, dict[str, float]]:
    """A few SGD steps (dropout on, seeded) on a fixed batch. Returns the inference-mode loss before
    and after, and the encoder's gradient norms before training by variable name, without the
    attention key bias (its gradient is zero in exact arithmetic: it adds the same score to every
    key of a query, which softmax ignores)."""
    tf.random.set_seed(0)
    inputs, labels = batch(1), tf.constant([0, 1, 1])
    encoder_vars = classifier.encoder.trainable_variables
    assert encoder_vars

    def loss_fn(training: bool) -> tf.Tensor:
        logits = classifier(inputs, training=training)["logits"]
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))

    with tf.GradientTape() as tape:
        before = loss_fn(False)
    norms = {v.name: float(tf.norm(tf.convert_to_tensor(g)))
             for v, g in zip(encoder_vars, tape.gradient(before, encoder_vars)) if "/key/bias" not in v.name}
    assert len(norms) == len(encoder_vars) - 1
    optimizer = keras.optimizers.SGD(0.1)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = loss_fn(True)
        optimizer.apply_gradients(zip(tape.gradient(loss, classifier.trainable_variables),
                                      classifier.trainable_variables))
    return float(before), float(loss_fn(False)), norms


# ----------------------------------------------------------------------------------------------
# Shared exports (one per module)
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pretrainer():
    model = albert_tf.AlbertPretrainer(tiny_config())
    for name, value in random_arrays(model, 0).items():
        model.tf1_variables()[name].assign(value)
    return model


@pytest.fixture(scope="module")
def exports(pretrainer, tmp_path_factory):
    """export_tfhub.py's work on the pretrainer's checkpoint in the official layout: the encoder (+mlm)
    and preprocessing SavedModels."""
    root = tmp_path_factory.mktemp("hub_exports")
    checkpoint = albert_tf.save_original_checkpoint(pretrainer, str(root / "release" / "model.ckpt-best"))
    pretrainer.config.to_json_file(str(root / "release" / "albert_config.json"))
    return tfhub.export_from_checkpoint(str(root / "encoder"), str(root / "release" / "albert_config.json"),
                                        checkpoint, spm_model_file=TINY_MODEL, do_lower_case=True,
                                        preprocessing_export_path=str(root / "preprocess"), seq_length=SEQ)


def graph_ops(saved_model_dir: str) -> set[str]:
    """Every op type in a SavedModel's graph and function library."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    ops = set()
    for meta_graph in proto.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


# ----------------------------------------------------------------------------------------------
# Export -> hub.KerasLayer
# ----------------------------------------------------------------------------------------------

def test_exported_encoder_matches_keras_model_and_finetunes(pretrainer, exports):
    inputs = batch(0)
    layer = hub.KerasLayer(exports["encoder"], trainable=True)
    got, want = layer(inputs, training=False), pretrainer.encoder(inputs, training=False)
    for name in ("sequence_output", "pooled_output", "embedding_output"):
        np.testing.assert_allclose(got[name], want[name], atol=1e-5)
    assert len(got["encoder_outputs"]) == 2
    for got_layer, want_layer in zip(got["encoder_outputs"], want["encoder_outputs"]):
        np.testing.assert_allclose(got_layer, want_layer, atol=1e-5)
    assert len(layer.trainable_weights) == len(pretrainer.encoder.trainable_weights)

    positions = tf.constant([[1, 4], [0, 2], [3, 3]])
    loaded = hub.load(exports["encoder"])
    mlm = hub.KerasLayer(loaded.mlm, trainable=True)
    np.testing.assert_allclose(mlm({**inputs, "masked_lm_positions": positions})["mlm_logits"],
                               pretrainer({**inputs, "masked_lm_positions": positions})["mlm_logits"], atol=1e-5)
    signature = loaded.signatures["mlm"](masked_lm_positions=positions, **inputs)
    assert signature["mlm_logits"].shape == (3, 2, 1000)
    # No op that other runtimes lack (the original's v2 hub modules broke users on Einsum).
    assert not graph_ops(exports["encoder"]) & {"Einsum", "Erf", "PyFunc", "EagerPyFunc"}

    # from_hub on the export: a trainable encoder for any task model, with the tokenizer of the export.
    encoder = albert_tf.from_hub(exports["encoder"])
    assert encoder.tokenizer.do_lower_case is True
    assert encoder.tokenizer.spm_model_file == os.path.join(exports["encoder"], "assets", "tiny-clean.model")
    classifier = albert_tf.AlbertClassifier(None, 2, encoder=encoder)
    weights = {v.name: v.numpy() for v in encoder.trainable_variables}
    before, after, norms = finetune(classifier)
    assert after < before
    assert min(norms.values()) > 1e-6, norms
    assert all(not np.array_equal(weights[v.name], v.numpy()) for v in encoder.trainable_variables if v.name in norms)


def test_export_errors(pretrainer, exports, tmp_path):
    release = os.path.dirname(exports["encoder"])
    config_file = os.path.join(release, "release", "albert_config.json")
    encoder_only = albert_tf.save_original_checkpoint(pretrainer.encoder, str(tmp_path / "encoder" / "model.ckpt"))
    with pytest.raises(ValueError, match="has no MLM head.*--nowith_mlm"):
        tfhub.export_from_checkpoint(str(tmp_path / "e"), config_file, encoder_only)
    with pytest.raises(FileNotFoundError, match="--albert_config_file"):
        tfhub.export_from_checkpoint(str(tmp_path / "e"), str(tmp_path / "none.json"), encoder_only)
    with pytest.raises(ValueError, match="--preprocessing_export_path needs"):
        tfhub.export_from_checkpoint(str(tmp_path / "e"), config_file, encoder_only, with_mlm=False,
                                     preprocessing_export_path=str(tmp_path / "p"))
    with pytest.raises(ValueError, match="with_mlm=True needs the MLM head"):
        tfhub.export_encoder(pretrainer.encoder, str(tmp_path / "e"), with_mlm=True)
    with pytest.raises(ValueError, match="needs an AlbertModel"):
        tfhub.export_encoder(keras.Sequential([keras.layers.Dense(2)]), str(tmp_path / "e"), with_mlm=False)
    with pytest.raises(FileNotFoundError, match="--spm_model_file"):
        tfhub.export_encoder(pretrainer.encoder, str(tmp_path / "e"), with_mlm=False,
                             spm_model_file=str(tmp_path / "missing.model"))


# ----------------------------------------------------------------------------------------------
# TF1 Hub modules (the original release's format), built here in its layout
# ----------------------------------------------------------------------------------------------

def write_tf1_hub_module(directory: str, arrays: dict[str, np.ndarray], do_lower_case: bool,
                         prefix: str = "module/", config: albert_tf.AlbertConfig | None = None) -> str:
    """A TF1 Hub module directory as `hub.create_module_spec(...).export` writes it: the variables
    (under `prefix`) in `variables/variables`, the SentencePiece model in `assets/`, a
    `tokenization_info` signature whose outputs are the asset constant (its value replaced by
    "SAVEDMODEL-ASSET", the file named in the `saved_model_assets` collection, as tensorflow_hub's
    saved_model_lib does) and the casing constant, `tfhub_module.pb` (a ModuleDef, format 3) and
    optionally `assets/albert_config.json`."""
    with tf.Graph().as_default():
        for name, value in arrays.items():
            tf.compat.v1.get_variable(prefix + name, initializer=tf.constant(value))
        vocab_file = tf.constant(TINY_MODEL)
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, vocab_file)
        casing = tf.constant(do_lower_case)
        tensor_info = tf.compat.v1.saved_model.build_tensor_info
        signature = tf.compat.v1.saved_model.build_signature_def(
            outputs={"vocab_file": tensor_info(vocab_file), "do_lower_case": tensor_info(casing)})
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(directory)
            builder.add_meta_graph_and_variables(
                session, [], signature_def_map={"tokenization_info": signature},
                assets_collection=tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS))
            builder.save()
    # As hub's exporter: the asset constant's value is replaced, the file is named by the asset list.
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(directory, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    node = next(n for n in proto.meta_graphs[0].graph_def.node if n.name == vocab_file.op.name)
    node.attr["value"].tensor.string_val[0] = b"SAVEDMODEL-ASSET"
    with open(os.path.join(directory, "saved_model.pb"), "wb") as f:
        f.write(proto.SerializeToString())
    with open(os.path.join(directory, "tfhub_module.pb"), "wb") as f:
        f.write(b"\x08\x03")  # ModuleDef{format: FORMAT_V3}
    if config is not None:
        config.to_json_file(os.path.join(directory, "assets", "albert_config.json"))
    return directory


def test_export_encoder_default_follows_the_model(pretrainer, tmp_path):
    """The default exports the `mlm` sub-object exactly when the model has the MLM head: a plain encoder
    exports without any flag, a pretrainer with its head."""
    plain = tf.saved_model.load(tfhub.export_encoder(pretrainer.encoder, str(tmp_path / "plain")))
    assert not hasattr(plain, "mlm") and tfhub.MLM not in plain.signatures
    ids = tf.constant([[2, 5, 6, 3]])
    out = plain.signatures["serving_default"](input_word_ids=ids, input_mask=tf.ones_like(ids),
                                              input_type_ids=tf.zeros_like(ids))
    expected = pretrainer.encoder(dict(input_word_ids=ids), training=False)["pooled_output"]
    np.testing.assert_allclose(out["pooled_output"].numpy(), expected.numpy(), atol=1e-6)
    full = tf.saved_model.load(tfhub.export_encoder(pretrainer, str(tmp_path / "full")))
    assert hasattr(full, "mlm") and tfhub.MLM in full.signatures


def test_tf1_hub_module_loads_strictly_and_finetunes(tmp_path):
    config = tiny_config()
    reference = albert_tf.AlbertPretrainer(config)
    arrays = random_arrays(reference, 1)  # encoder + the module's MLM and SOP heads
    module = write_tf1_hub_module(str(tmp_path / "albert_module"), arrays, do_lower_case=False, config=config)

    encoder = albert_tf.from_hub(module)
    assert isinstance(encoder, albert_tf.AlbertModel) and encoder.config == config
    variables = encoder.tf1_variables()
    assert len(variables) == len([n for n in arrays if n.startswith("bert/")])
    for name, variable in variables.items():
        np.testing.assert_array_equal(variable.numpy(), arrays[name], err_msg=name)
    # Casing and model file from the module's tokenization_info, as FullTokenizer.from_hub_module.
    assert encoder.tokenizer.do_lower_case is False
    assert encoder.tokenizer.spm_model_file == os.path.join(module, "assets", "tiny-clean.model")
    tok = tokenization.FullTokenizer.from_hub_module(module)
    assert tok.do_lower_case is False and tok.convert_tokens_to_ids(["[CLS]", "[SEP]"]) == [CLS, SEP]

    # The module's pretraining heads load into a pretrainer, strictly.
    pretrainer = albert_tf.AlbertPretrainer(config)
    report = hub_lib.load_tf1_hub_module(pretrainer, module)
    assert sorted(report.loaded) == sorted(arrays)
    np.testing.assert_array_equal(pretrainer.tf1_variables()["cls/predictions/output_bias"],
                                  arrays["cls/predictions/output_bias"])

    classifier = albert_tf.AlbertClassifier(encoder.config, 2, encoder=encoder)
    before, after, norms = finetune(classifier)
    assert after < before and min(norms.values()) > 1e-6, norms

    # Strict: a module variable the model does not use, or a config that does not match, is an error.
    extra = write_tf1_hub_module(str(tmp_path / "extra"), {**arrays, "bert/encoder/extra": np.zeros([2], np.float32)},
                                 True, prefix="", config=config)
    with pytest.raises(CheckpointMismatchError, match="bert/encoder/extra"):
        albert_tf.from_hub(extra)
    with pytest.raises(CheckpointMismatchError, match="shape mismatches"):
        albert_tf.from_hub(module, config=tiny_config(intermediate_size=24))

    # No albert_config.json: the shapes match no released config, so config= is needed.
    bare = write_tf1_hub_module(str(tmp_path / "bare"), arrays, True)
    with pytest.raises(ValueError, match="match no released configuration"):
        albert_tf.from_hub(bare)
    assert albert_tf.from_hub(bare, config=config).tokenizer.do_lower_case is True


def test_infer_config_from_release_shapes():
    # ALBERT-base as listed in the original's checkpoint (spec 1.9), without the config file.
    block = "bert/encoder/transformer/group_0/inner_group_0"
    shapes = {"bert/embeddings/word_embeddings": [30000, 128], "bert/embeddings/token_type_embeddings": [2, 128],
              "bert/embeddings/position_embeddings": [512, 128], "bert/pooler/dense/kernel": [768, 768],
              f"{block}/attention_1/self/query/kernel": [768, 768],
              f"{block}/ffn_1/intermediate/dense/kernel": [768, 3072]}
    config = hub_lib.infer_config(shapes)
    assert (config.num_hidden_layers, config.num_attention_heads, config.hidden_dropout_prob) == (12, 12, 0.0)
    assert hub_lib.infer_config({**shapes, "bert/embeddings/word_embeddings": [21128, 128]}).hidden_act == "relu"
    with pytest.raises(ValueError, match="match no released configuration"):
        hub_lib.infer_config({**shapes, "bert/pooler/dense/kernel": [640, 640]})


# ----------------------------------------------------------------------------------------------
# TF2 SavedModels of Model Garden, and handles of neither format
# ----------------------------------------------------------------------------------------------

def test_model_garden_savedmodel_as_encoder(tmp_path):
    # tf-models-official is an optional extra (requirements-test.txt).
    AlbertEncoder = pytest.importorskip("official.nlp.modeling.networks").AlbertEncoder
    network = AlbertEncoder(vocab_size=1000, embedding_width=8, hidden_size=16, num_layers=1, num_attention_heads=2,
                            max_sequence_length=16, type_vocab_size=2, intermediate_size=32, dict_outputs=True)
    # Model Garden's export_tfhub_lib: a Keras model with dict inputs keyed by input name.
    inputs = {x.name: x for x in network.inputs}
    core = keras.Model(inputs=inputs, outputs=network(inputs))
    # Its tokenizer attributes (no tokenization_info signature).
    core.sp_model_file = tf.saved_model.Asset(TINY_MODEL)
    core.do_lower_case = tf.Variable(False, trainable=False)
    path = str(tmp_path / "albert_en_tiny")
    core.save(path, include_optimizer=False, save_format="tf")

    encoder = albert_tf.from_hub(path)
    assert encoder.tokenizer.do_lower_case is False
    assert encoder.tokenizer.spm_model_file == os.path.join(path, "assets", "tiny-clean.model")
    classifier = albert_tf.AlbertClassifier(None, 3, encoder=encoder)
    out = classifier(batch(2), training=False)
    assert out["logits"].shape == (3, 3)
    np.testing.assert_allclose(out["pooled_output"], core(batch(2))["pooled_output"], atol=1e-5)
    assert len(classifier.trainable_variables) == len(core.trainable_variables) + 2


def test_handles_of_neither_format(tmp_path, exports):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        albert_tf.from_hub(str(tmp_path / "missing"))
    release = tmp_path / "release"
    release.mkdir()
    (release / "model.ckpt-best.index").write_bytes(b"")
    with pytest.raises(ValueError, match="neither tfhub_module.pb nor saved_model.pb.*--init_checkpoint"):
        albert_tf.from_hub(str(release))
    with pytest.raises(ValueError, match="cannot be called as an encoder"):
        albert_tf.from_hub(exports["preprocessing"])


# ----------------------------------------------------------------------------------------------
# Preprocessing export, and both exports in a fresh process
# ----------------------------------------------------------------------------------------------

CHILD = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the only other import the exports need)
args = json.loads(sys.argv[1])
pre = tf.saved_model.load(args["preprocessing"])
a, b = tf.constant(args["texts_a"]), tf.constant(args["texts_b"])
tok_a, tok_b = pre.tokenize(a), pre.tokenize(b)
out = {"single": pre(a)["input_word_ids"].numpy().tolist(),
       "tokens": tok_a.to_list(),
       "special": {k: int(v) for k, v in pre.tokenize.get_special_tokens_dict().items()},
       "info": pre.signatures["tokenization_info"]()["vocab_file"].numpy().decode()}
for n in args["lengths"]:
    packed = pre.bert_pack_inputs([tok_a, tok_b], seq_length=n)
    out[f"pair_{n}"] = {k: v.numpy().tolist() for k, v in packed.items()}
words = tf.RaggedTensor.from_row_lengths(tok_a, tf.ones_like(tok_a.row_lengths()))  # [B, (words), (pieces)]
out["words_single"] = pre.bert_pack_inputs([words])["input_word_ids"].numpy().tolist()
packed = pre.signatures["serving_pair"](text_a=a, text_b=b)
encoder = tf.saved_model.load(args["encoder"])
outputs = encoder(dict(packed), training=False)
served = encoder.signatures["serving_default"](**packed)
out["pooled"] = outputs["pooled_output"].numpy().tolist()
out["served_pooled"] = served["pooled_output"].numpy().tolist()
out["albert_tf_imported"] = any(m.startswith("albert_tf") for m in sys.modules)
print(json.dumps(out))
"""


def python_pack(a: list[int], b: list[int], seq_length: int) -> list[int]:
    """The original classifier_utils packing, written out: _truncate_seq_pair, then [CLS] a [SEP] b [SEP]."""
    a, b = list(a), list(b)
    while len(a) + len(b) > seq_length - 3:
        (a if len(a) > len(b) else b).pop()
    ids = [CLS] + a + [SEP] + b + [SEP]
    return ids + [0] * (seq_length - len(ids))


def test_exports_in_a_fresh_process(pretrainer, exports):
    texts_a = ["Héllo THERE, General Kenobi!", "A much longer first segment with many many words in it, 1,000 of them",
               "x"]
    texts_b = ["short", "and a second segment which is long as well, surely too long", "Ünïcödé   spaces\tand tabs"]
    lengths = [8, 20]
    args = {"preprocessing": exports["preprocessing"], "encoder": exports["encoder"], "texts_a": texts_a,
            "texts_b": texts_b, "lengths": lengths}
    env = {**os.environ, "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True,
                            env=env, cwd="/", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["albert_tf_imported"] is False

    tokenizer = tokenization.FullTokenizer(spm_model_file=TINY_MODEL)

    def ids(text: str) -> list[int]:
        return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(tokenization.preprocess_text(text, lower=True)))

    assert got["tokens"] == [ids(t) for t in texts_a]
    assert got["single"] == [([CLS] + ids(t)[:SEQ - 2] + [SEP] + [0] * SEQ)[:SEQ] for t in texts_a]
    assert got["words_single"] == got["single"]
    for n in lengths:
        assert got[f"pair_{n}"]["input_word_ids"] == [python_pack(ids(a), ids(b), n) for a, b in zip(texts_a, texts_b)]
        packed = got[f"pair_{n}"]
        assert packed["input_mask"] == [[int(i != 0) for i in row] for row in packed["input_word_ids"]]
    assert got["special"] == {"start_of_sequence_id": CLS, "end_of_segment_id": SEP, "padding_id": 0, "mask_id": 4,
                              "vocab_size": 1000}
    assert got["info"] == os.path.join(exports["preprocessing"], "assets", "tiny-clean.model")

    inputs = {k: tf.constant(v, tf.int32) for k, v in python_inputs(texts_a, texts_b, ids).items()}
    want = pretrainer.encoder(inputs, training=False)["pooled_output"]
    np.testing.assert_allclose(got["pooled"], want, atol=1e-5)
    np.testing.assert_allclose(got["served_pooled"], want, atol=1e-5)

    # The same preprocessing model as a hub.KerasLayer in this process.
    layer = hub.KerasLayer(exports["preprocessing"])
    assert layer(tf.constant(texts_a))["input_word_ids"].numpy().tolist() == got["single"]


def python_inputs(texts_a: list[str], texts_b: list[str], ids) -> dict[str, list[list[int]]]:
    """The three model inputs of the pairs at SEQ, from the Python tokenizer and packing."""
    words, masks, types = [], [], []
    for a, b in zip(texts_a, texts_b):
        row = python_pack(ids(a), ids(b), SEQ)
        first_sep = row.index(SEP)
        words.append(row)
        masks.append([int(i != 0) for i in row])
        types.append([int(first_sep < j and row[j] != 0) for j in range(SEQ)])
    return {"input_word_ids": words, "input_mask": masks, "input_type_ids": types}
