"""The TF-Hub handle formats, read without building a model: resolution, format, variables, config and
tokenizer facts (`albert_tf.checkpoints.hub` builds encoders from them). Two formats are recognised, by
their files:

- **TF1 Hub module** (the original release's `google/albert_*` 1-3, `export_to_tfhub.py`): the
  directory has `tfhub_module.pb`; variables in `variables/variables` under the module's own name prefix
  (e.g. `module/`, found from `.../bert/embeddings/word_embeddings`); config in
  `assets/albert_config.json`, else inferred from the shapes (`PRESETS`); the tokenizer named by the
  `tokenization_info` signature, read from the graph without running it.
- **TF2 SavedModel** with the Model Garden / TF-Hub encoder interface: `saved_model.pb` and no
  `tfhub_module.pb`; the tokenizer from its `tokenization_info` function, or Model Garden's
  `sp_model_file` / `vocab_file` and `do_lower_case` attributes.
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping, Sequence

import tensorflow as tf
from absl import logging

from albert_tf.checkpoints.tf1 import CheckpointMismatchError, open_checkpoint
from albert_tf.configs import PRESETS, AlbertConfig

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



def module_variables(directory: str) -> tuple[Any, dict[str, list[int]], dict[str, str], str]:
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
    _, shapes, _, _ = module_variables(directory)
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



def tokenization_info(directory: str, loaded: Any = None) -> tuple[str, bool, bool]:
    """(model or vocabulary path, do_lower_case, is_sentencepiece) of a resolved handle directory, either
    format; `loaded` is the TF2 SavedModel when the caller has it loaded already.

    Raises:
      ValueError / FileNotFoundError: the module carries no tokenizer, naming the flags to use.
    """
    if hub_format(directory) == "tf1":
        path, lower = _tf1_tokenization_info(directory)
        return path, lower, True
    return _tf2_tokenization_info(loaded if loaded is not None else tf.saved_model.load(directory), directory)
