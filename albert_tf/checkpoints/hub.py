"""TF-Hub handles as encoders: `from_hub(handle)` and `hub_tokenizer(handle)`.

A handle is a local (or `tf.io.gfile`) directory, or a URL that `tensorflow_hub` resolves (downloaded
once into its cache). Two formats are recognised, by their files:

- **TF1 Hub module** (the original release's `google/albert_*` 1-3, `export_to_tfhub.py`): the
  directory has `tfhub_module.pb`. TF2 cannot fine-tune this format through `hub.load`, so its
  variables are read from `variables/variables` and copied into an `AlbertModel` through the
  official name map, strictly (the module's own name prefix, if any, e.g. `module/`, is found from
  `.../bert/embeddings/word_embeddings` and stripped). The config is the module's
  `assets/albert_config.json` (the original export registers it as an asset); without it, it is
  inferred from the variable shapes by matching the released configurations (`PRESETS`), or given
  as `config=`. The tokenizer comes from the `tokenization_info` signature (the SentencePiece model
  in `assets/` and `do_lower_case`), read from the module's graph without running it.
- **TF2 SavedModel** with the Model Garden / TF-Hub encoder interface (`tensorflow/albert_en_*`, or
  `albert_tf.export_encoder`): `saved_model.pb` and no `tfhub_module.pb`. Loaded as a trainable
  `hub.KerasLayer` and checked by one call on a dummy batch: dict inputs `input_word_ids`,
  `input_mask`, `input_type_ids` (int32 [B,S]); dict outputs with `sequence_output` [B,S,H] and
  `pooled_output` [B,H] (and `encoder_outputs`). The tokenizer comes from its `tokenization_info`
  function, or Model Garden's `sp_model_file` / `vocab_file` and `do_lower_case` attributes.

Either result can be passed as `encoder=` to every task model, and carries `.tokenizer` (a
`FullTokenizer` with `.do_lower_case` set from the module, or None when the module has none).
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping, Optional, Sequence

import tensorflow as tf
import tf_keras as keras
from absl import logging

from albert_tf.checkpoints.tf1 import CheckpointMismatchError, LoadReport, load_variables, open_checkpoint
from albert_tf.configs import PRESETS, AlbertConfig
from albert_tf.modeling.encoder import AlbertModel, dummy_inputs
from albert_tf.tokenization import FullTokenizer

TF1_MODULE_FILE = "tfhub_module.pb"
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
CONFIG_ASSET = "albert_config.json"
_ANCHOR = "bert/embeddings/word_embeddings"
_FLAG = "--albert_hub_module_handle"
_EXPECTED = (f"expected a TF1 Hub module ({TF1_MODULE_FILE}, saved_model.pb, variables/, assets/) or a TF2 "
             "SavedModel (saved_model.pb) with the TF-Hub ALBERT encoder interface")


def resolve_handle(handle: str | os.PathLike) -> str:
    """The local (or gfile) directory of `handle`: the directory itself, or `tensorflow_hub.resolve(URL)`
    for an http(s) URL (tfhub.dev, Kaggle Models; downloaded once into tensorflow_hub's cache).

    Raises:
      FileNotFoundError: `handle` is neither an existing directory nor a URL.
    """
    path = os.fspath(handle)
    if tf.io.gfile.isdir(path):
        return path
    if re.match(r"^https?://", path):
        import tensorflow_hub as hub  # local: only URL handles need it

        return hub.resolve(path)
    raise FileNotFoundError(f"{_FLAG} {path}: no such directory, and not a URL that tensorflow_hub resolves; "
                            f"{_EXPECTED}.")


def hub_format(directory: str) -> str:
    """`"tf1"` or `"tf2"` for a resolved handle directory; an error saying what was found otherwise."""
    names = sorted(tf.io.gfile.listdir(directory))
    if TF1_MODULE_FILE in names:
        return "tf1"
    if any(n in names for n in SAVED_MODEL_FILES):
        return "tf2"
    hint = ""
    if any(n.endswith(".index") for n in names):
        hint = " It holds a TF1 checkpoint: pass the directory (or prefix) as --init_checkpoint instead."
    elif "config.json" in names:
        hint = " It looks like a Hugging Face directory: pass it as --init_checkpoint instead."
    raise ValueError(f"{_FLAG} {directory} holds neither {TF1_MODULE_FILE} nor saved_model.pb (found: "
                     f"{', '.join(names[:12]) or 'nothing'}); {_EXPECTED}.{hint}")


# ----------------------------------------------------------------------------------------------
# TF1 Hub modules
# ----------------------------------------------------------------------------------------------

def _module_variables(directory: str) -> tuple[Any, dict[str, list[int]], dict[str, str], str]:
    """(reader, {official name: shape}, {official name: name in the module}, checkpoint prefix) of a
    TF1 module's variables."""
    prefix = os.path.join(directory, "variables", "variables")
    reader = open_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    anchors = sorted(n for n in shapes if n == _ANCHOR or n.endswith("/" + _ANCHOR))
    if len(anchors) != 1:
        raise CheckpointMismatchError(
            f"{prefix} is not an ALBERT Hub module: expected exactly one '<prefix>{_ANCHOR}' variable, found "
            f"{anchors or 'none'} among {len(shapes)} variables.")
    scope = anchors[0][: -len(_ANCHOR)]
    names = {n[len(scope):] if n.startswith(scope) else n: n for n in shapes}
    return reader, {name: shapes[original] for name, original in names.items()}, names, prefix


def load_tf1_hub_module(model: Any, handle: str | os.PathLike) -> LoadReport:
    """Copies a TF1 Hub module's variables into `model` (anything with `tf1_variables()`), strictly.

    The module's name prefix is stripped; its pretraining heads (`cls/*`) load into an
    `AlbertPretrainer` and are ignored (with a message) by an encoder. Raises
    `CheckpointMismatchError` as `load_original_checkpoint` does.
    """
    reader, shapes, names, prefix = _module_variables(resolve_handle(handle))
    return load_variables(model, shapes, lambda name: reader.get_tensor(names[name]), prefix)


def infer_config(shapes: Mapping[str, Sequence[int]]) -> AlbertConfig:
    """The released configuration whose variable shapes are `shapes` (official names, no prefix).

    The shapes give V, E, H, I, P, T and the numbers of parameter groups and inner groups, but not
    the number of layers, heads, the activation or dropout: those come from the matching preset of
    `albert_tf.configs.PRESETS`. Where v1 and v2 share every shape (they differ in dropout: 0.1 vs
    0), the v2 preset is used and a warning says so.

    Raises:
      ValueError: no preset has these shapes (pass the config explicitly).
    """
    def shape(name: str) -> list[int]:
        if name not in shapes:
            raise ValueError(f"Cannot infer the config: the module has no {name}.")
        return list(shapes[name])

    vocab_size, embedding_size = shape("bert/embeddings/word_embeddings")
    hidden_size = shape("bert/pooler/dense/kernel")[1]
    groups = {int(m.group(1)) for n in shapes for m in [re.search(r"/group_(\d+)/", n)] if m}
    inner = {int(m.group(1)) for n in shapes for m in [re.search(r"/inner_group_(\d+)/", n)] if m}
    found = {
        "vocab_size": vocab_size, "embedding_size": embedding_size, "hidden_size": hidden_size,
        "intermediate_size": shape("bert/encoder/transformer/group_0/inner_group_0/ffn_1/intermediate/dense/kernel")[1],
        "max_position_embeddings": shape("bert/embeddings/position_embeddings")[0],
        "type_vocab_size": shape("bert/embeddings/token_type_embeddings")[0],
        "num_hidden_groups": len(groups), "inner_group_num": len(inner)}
    matches = sorted(name for name, preset in PRESETS.items()
                     if all(preset.get(k) == v for k, v in found.items()))
    if not matches:
        raise ValueError(f"The module has no {CONFIG_ASSET} in assets/ and its shapes ({found}) match no released "
                         "configuration, so the number of layers and heads is unknown: pass config= (from_hub) or "
                         f"put the model's {CONFIG_ASSET} into the module's assets/ directory.")
    chosen = next((m for m in matches if m.endswith("_v2")), matches[0])
    if len(matches) > 1:
        logging.warning("The module has no %s; its shapes match the presets %s, which differ only in dropout. "
                        "Using %s; pass config= for another.", CONFIG_ASSET, matches, chosen)
    return AlbertConfig.from_preset(chosen)


def hub_module_config(handle: str | os.PathLike) -> AlbertConfig:
    """A TF1 Hub module's config: `assets/albert_config.json`, else `infer_config` on its shapes."""
    directory = resolve_handle(handle)
    path = os.path.join(directory, "assets", CONFIG_ASSET)
    if tf.io.gfile.exists(path):
        return AlbertConfig.from_json_file(path)
    _, shapes, _, _ = _module_variables(directory)
    return infer_config(shapes)


def _saved_model_proto(directory: str):
    from tensorflow.core.protobuf import saved_model_pb2  # local: only TF1 modules need the proto

    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(directory, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return proto


def _constant(graph_def, tensor_name: str) -> Any:
    """The value of a graph tensor that is a constant (through Identity ops), else None."""
    nodes = {node.name: node for node in graph_def.node}
    node = nodes.get(tensor_name.split(":")[0].lstrip("^"))
    while node is not None and node.op == "Identity" and node.input:
        node = nodes.get(node.input[0].split(":")[0])
    if node is None or node.op != "Const":
        return None
    return tf.make_ndarray(node.attr["value"].tensor)


def _asset_files(meta_graph) -> dict[str, str]:
    """Graph node name -> file name in `assets/`, for the asset constants of a meta graph (the
    `saved_model_assets` collection that hub and the TF1 builder write, or `asset_file_def`)."""
    from tensorflow.core.protobuf import meta_graph_pb2  # local: only TF1 modules need the proto

    definitions = list(meta_graph.asset_file_def)
    collection = meta_graph.collection_def.get(tf.compat.v1.saved_model.ASSETS_KEY)
    if collection is not None:
        for packed in collection.any_list.value:
            definition = meta_graph_pb2.AssetFileDef()
            packed.Unpack(definition)
            definitions.append(definition)
    return {d.tensor_info.name.split(":")[0]: d.filename for d in definitions}


def _tf1_tokenization_info(directory: str) -> tuple[str, bool]:
    """(SentencePiece model path, do_lower_case) from a TF1 module's `tokenization_info` signature.

    Its outputs are graph constants: `vocab_file` is an asset constant (hub replaces its value by a
    placeholder and records the file name in the meta graph's asset list), `do_lower_case` a bool.
    """
    for meta_graph in _saved_model_proto(directory).meta_graphs:
        signature = meta_graph.signature_def.get("tokenization_info")
        if signature is None or not {"vocab_file", "do_lower_case"} <= set(signature.outputs):
            continue
        vocab_tensor = signature.outputs["vocab_file"].name
        casing = _constant(meta_graph.graph_def, signature.outputs["do_lower_case"].name)
        name = _asset_files(meta_graph).get(vocab_tensor.split(":")[0])
        if name is None:  # Not a registered asset: the constant's own path.
            vocab = _constant(meta_graph.graph_def, vocab_tensor)
            name = None if vocab is None else os.path.basename(tf.compat.as_str(vocab.item()))
        if name is None or casing is None:
            continue
        path = os.path.join(directory, "assets", name)
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"The module's tokenization_info names {name}, which is not in {directory}/assets.")
        return path, bool(casing.item())
    raise ValueError(f"The TF1 Hub module {directory} has no tokenization_info signature with constant vocab_file "
                     "and do_lower_case outputs; pass --spm_model_file and --do_lower_case instead.")


# ----------------------------------------------------------------------------------------------
# TF2 SavedModels
# ----------------------------------------------------------------------------------------------

def _tf2_tokenization_info(obj: Any, directory: str) -> tuple[str, bool, bool]:
    """(model or vocab path, do_lower_case, is_sentencepiece) of a loaded TF2 SavedModel."""
    if hasattr(obj, "tokenization_info"):
        info = obj.tokenization_info()
        path = info["vocab_file"].numpy().decode("utf-8")
        return path, bool(info["do_lower_case"].numpy()), path.endswith(".model")
    casing = getattr(obj, "do_lower_case", None)
    for attribute, is_spm in (("sp_model_file", True), ("vocab_file", False)):
        asset = getattr(obj, attribute, None)
        if asset is not None:
            if casing is None and not is_spm:
                raise ValueError(f"The SavedModel {directory} has a vocab_file but no do_lower_case.")
            # Model Garden: "All public ALBERTs do it" (lower-case) when do_lower_case is absent.
            lower = True if casing is None else bool(casing.numpy())
            return asset.asset_path.numpy().decode("utf-8"), lower, is_spm
    raise ValueError(f"The SavedModel {directory} carries no tokenizer (no tokenization_info, sp_model_file or "
                     "vocab_file); pass --spm_model_file and --do_lower_case instead.")


def _load_tf2_encoder(directory: str, trainable: bool) -> keras.layers.Layer:
    import tensorflow_hub as hub  # local: only TF2 handles need it
    import tensorflow_text  # noqa: F401  (registers text ops, for SavedModels that bundle preprocessing)

    try:
        layer = hub.KerasLayer(directory, trainable=trainable, name="hub_encoder")
        outputs = layer(dummy_inputs(), training=False)
    except (ValueError, TypeError, tf.errors.OpError, AttributeError) as err:
        lines = [line for line in str(err).splitlines() if line.strip() and "Exception encountered" not in line]
        detail = lines[0].strip()[:300] if lines else type(err).__name__
        raise ValueError(f"{_FLAG} {directory} is a TF2 SavedModel that cannot be called as an encoder ({detail}); "
                         f"{_EXPECTED}: dict inputs input_word_ids, input_mask, input_type_ids (int32 [B,S]) -> "
                         "dict outputs sequence_output, pooled_output, encoder_outputs.") from None
    keys = sorted(outputs) if isinstance(outputs, Mapping) else type(outputs).__name__
    if not isinstance(outputs, Mapping) or not {"sequence_output", "pooled_output"} <= set(outputs):
        raise ValueError(f"{_FLAG} {directory}: the SavedModel returns {keys}; {_EXPECTED}, whose outputs are a dict "
                         "with sequence_output [B,S,H] and pooled_output [B,H].")
    return layer


# ----------------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------------

def hub_tokenizer(handle: str | os.PathLike, use_spm: bool = True) -> FullTokenizer:
    """The tokenizer of a hub handle (both formats), with `.do_lower_case` set from the module.

    As the original `FullTokenizer.from_hub_module`: the module's `vocab_file` (the SentencePiece
    model for ALBERT) becomes `spm_model_file` when `use_spm`, else the WordPiece `vocab_file`.
    Callers lower-case the text (`preprocess_text(..., lower=tokenizer.do_lower_case)`).

    Raises:
      ValueError / FileNotFoundError: the module carries no tokenizer, naming the flags to use.
    """
    directory = resolve_handle(handle)
    loaded = tf.saved_model.load(directory) if hub_format(directory) == "tf2" else None
    return _tokenizer(directory, loaded, use_spm)


def _tokenizer(directory: str, loaded: Any, use_spm: bool) -> FullTokenizer:
    """`hub_tokenizer` for a TF1 module (`loaded` None) or a loaded TF2 SavedModel."""
    if loaded is None:
        path, lower = _tf1_tokenization_info(directory)
        is_spm = True
    else:
        path, lower, is_spm = _tf2_tokenization_info(loaded, directory)
    if use_spm and is_spm:
        return FullTokenizer(do_lower_case=lower, spm_model_file=path)
    return FullTokenizer(vocab_file=path, do_lower_case=lower)


def from_hub(handle: str | os.PathLike, trainable: bool = True,
             config: Optional[AlbertConfig] = None) -> keras.layers.Layer:
    """An encoder from a TF-Hub handle, for `encoder=` of any task model (see the module docstring).

    Args:
      handle: a directory or a URL tensorflow_hub resolves (`--albert_hub_module_handle`).
      trainable: whether fine-tuning updates the encoder's weights.
      config: for a TF1 module, the model config (default: its `assets/albert_config.json`, else
        inferred from its shapes); ignored for a TF2 SavedModel.

    Returns:
      TF1 module: an `AlbertModel` holding the module's weights (official names, so checkpoints
      written from it load anywhere). TF2 SavedModel: a `hub.KerasLayer`. Either has `.tokenizer`
      (a `FullTokenizer` with `.do_lower_case`, or None if the module has none).

    Raises:
      FileNotFoundError / ValueError: the handle is neither format (the message says what was
        found and what was expected); `CheckpointMismatchError`: a TF1 module's variables do not
        match the config.
    """
    directory = resolve_handle(handle)
    if hub_format(directory) == "tf1":
        encoder = AlbertModel(config or hub_module_config(directory))
        load_tf1_hub_module(encoder, directory)
        encoder.trainable = trainable
        loaded = None
    else:
        encoder = _load_tf2_encoder(directory, trainable)
        loaded = encoder.resolved_object
    try:
        encoder.tokenizer = _tokenizer(directory, loaded, use_spm=True)
    except (ValueError, FileNotFoundError) as err:
        logging.warning("No tokenizer from %s (%s)", directory, err)
        encoder.tokenizer = None
    return encoder
