"""albert-tf: ALBERT (A Lite BERT) for TensorFlow 2 / tf_keras, faithful to the original release.

    import albert_tf
    config = albert_tf.AlbertConfig.from_json_file("albert_config.json")
    pretrainer = albert_tf.AlbertPretrainer(config)
    albert_tf.load_original_checkpoint(pretrainer, "albert_base")   # prefix or release directory
"""
import importlib

__version__ = "0.1.0"

# Public names and the module defining each. They are imported on first use, so that light tools
# (e.g. `python -m albert_tf.tasks.squad.evaluate`) do not pay for importing TensorFlow.
_EXPORTS = {
    "AlbertConfig": "albert_tf.configs", "PRESETS": "albert_tf.configs",
    "AlbertModel": "albert_tf.modeling", "AlbertPretrainer": "albert_tf.modeling",
    "AlbertClassifier": "albert_tf.modeling", "AlbertQuestionAnswering": "albert_tf.modeling",
    "AlbertMultipleChoice": "albert_tf.modeling", "AlbertSquadV2": "albert_tf.modeling",
    "load_original_checkpoint": "albert_tf.checkpoints", "save_original_checkpoint": "albert_tf.checkpoints",
    "LoadReport": "albert_tf.checkpoints",
    "from_transformers": "albert_tf.checkpoints.transformers",
    "save_transformers": "albert_tf.checkpoints.transformers",
    "from_hub": "albert_tf.checkpoints.hub", "export_encoder": "albert_tf.export.tfhub",
}
_SUBMODULES = ("tokenization", "preprocessing", "checkpoints", "configs", "modeling", "metrics", "optimization",
               "core", "tasks", "data", "export")

__all__ = sorted(_EXPORTS) + list(_SUBMODULES)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"albert_tf.{name}")
    raise AttributeError(f"module 'albert_tf' has no attribute {name!r}")


def __dir__():
    return __all__
