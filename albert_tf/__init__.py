"""albert-tf: ALBERT (A Lite BERT) for TensorFlow 2 / tf_keras, faithful to the original release.

    import albert_tf
    config = albert_tf.AlbertConfig.from_json_file("albert_config.json")
    pretrainer = albert_tf.AlbertPretrainer(config)
    albert_tf.load_original_checkpoint(pretrainer, "albert_base")   # prefix or release directory
"""
from albert_tf.configs import PRESETS, AlbertConfig
from albert_tf.modeling import AlbertClassifier, AlbertModel, AlbertPretrainer
from albert_tf.checkpoints import LoadReport, load_original_checkpoint, save_original_checkpoint

__version__ = "0.1.0"

__all__ = ["AlbertConfig", "PRESETS", "AlbertModel", "AlbertPretrainer", "AlbertClassifier",
           "load_original_checkpoint", "save_original_checkpoint", "LoadReport", "tokenization"]


def __getattr__(name: str):
    # `albert_tf.tokenization` is imported on first use so that `import albert_tf` stays light.
    if name == "tokenization":
        import importlib

        return importlib.import_module("albert_tf.tokenization")
    raise AttributeError(f"module 'albert_tf' has no attribute {name!r}")
