"""`AlbertConfig`: the hyper-parameters of an ALBERT model, read from and written to `albert_config.json`.

The JSON layout is the original release's: every key of a released `albert_config.json` round-trips,
including keys the model never reads (`net_structure_type`, `gap_size`, `num_memory_blocks`,
`down_scale_factor`, `layers_to_keep`). Unlike the original, values are validated when the config is built,
so a bad config fails with a message that names the field instead of deep inside the graph.
"""
from __future__ import annotations

import copy
import json
import os
from typing import Any, Mapping

# TF1 `contrib.layers.layer_norm` hard-codes this variance epsilon for float32 (every LayerNorm of ALBERT).
LAYER_NORM_EPSILON = 1e-12
# Activation names understood by the original `get_activation` (case-insensitive), plus common extras.
# "gelu" is the tanh approximation, as in the original.
ACTIVATIONS = ("gelu", "gelu_new", "gelu_exact", "relu", "tanh", "linear", "swish", "silu")

# Constructor defaults of the original `AlbertConfig` (those of albert_xxlarge).
_DEFAULTS: dict[str, Any] = dict(
    vocab_size=None,
    embedding_size=128,
    hidden_size=4096,
    num_hidden_layers=12,
    num_hidden_groups=1,
    num_attention_heads=64,
    intermediate_size=16384,
    inner_group_num=1,
    down_scale_factor=1,
    hidden_act="gelu",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    max_position_embeddings=512,
    type_vocab_size=2,
    initializer_range=0.02,
)


class AlbertConfig:
    """Configuration of an ALBERT encoder.

    Fields (see the original `modeling.AlbertConfig`): `vocab_size` V, `embedding_size` E, `hidden_size` H,
    `num_hidden_layers` L (applications of a block), `num_hidden_groups` G (distinct parameter groups),
    `num_attention_heads` N, `intermediate_size` I, `inner_group_num` K (blocks per layer),
    `hidden_act`, `hidden_dropout_prob`, `attention_probs_dropout_prob`, `max_position_embeddings`,
    `type_vocab_size`, `initializer_range`, `down_scale_factor` (stored, unused).
    Any other keyword (e.g. `net_structure_type`, `gap_size`, `num_memory_blocks`, `layers_to_keep`) is
    stored as an attribute and written back by `to_dict`, as the original's `from_dict` does.
    """

    def __init__(self, vocab_size: int | None = None, **kwargs: Any):
        values = dict(_DEFAULTS)
        values["vocab_size"] = vocab_size
        values.update(kwargs)
        self.__dict__.update(values)
        self.validate()

    # ----------------------------------------------------------------------------------------- I/O
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AlbertConfig":
        """Builds a config from a dict; missing keys take the original (xxlarge) defaults."""
        if not isinstance(data, Mapping):
            raise TypeError(f"An ALBERT config must be a JSON object / dict, got {type(data).__name__}.")
        return cls(**dict(data))

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "AlbertConfig":
        """Reads an `albert_config.json` (local path or any `tf.io.gfile` URL such as gs://)."""
        path = os.fspath(path)
        text = _read_text(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); expected an albert_config.json.") from e
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Invalid ALBERT config {path}: {e}") from e

    @classmethod
    def from_preset(cls, name: str) -> "AlbertConfig":
        """Returns the config of a released model, e.g. `base_v2`, `xxlarge_v1`, `large_zh` (see PRESETS)."""
        key = name.lower().replace("albert_", "").replace("-", "_")
        if key not in PRESETS:
            raise ValueError(f"Unknown ALBERT preset {name!r}; choose one of {', '.join(sorted(PRESETS))}.")
        return cls.from_dict(PRESETS[key])

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.__dict__)

    def to_json_string(self) -> str:
        """JSON with indent 2, sorted keys and a trailing newline, like the original."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str | os.PathLike) -> None:
        import tensorflow as tf  # local: keeps `configs` importable without initialising TensorFlow

        path = os.fspath(path)
        parent = os.path.dirname(path)
        if parent:
            tf.io.gfile.makedirs(parent)
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(self.to_json_string())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AlbertConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"AlbertConfig({self.to_json_string().strip()})"

    # ---------------------------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raises ValueError naming the field when the config cannot describe a working model."""
        positive = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
                    "num_attention_heads", "intermediate_size", "inner_group_num", "max_position_embeddings",
                    "type_vocab_size")
        if self.vocab_size is None:
            raise ValueError("vocab_size is required (it is the number of rows of the word-embedding table).")
        for field in positive:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{field} must be a positive integer, got {value!r}.")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}).")
        if self.num_hidden_groups > self.num_hidden_layers:
            raise ValueError(
                f"num_hidden_groups ({self.num_hidden_groups}) cannot exceed num_hidden_layers "
                f"({self.num_hidden_layers}): every group must be used by at least one layer.")
        act = self.hidden_act
        if not (act is None or (isinstance(act, str) and (act == "" or act.lower() in ACTIVATIONS))):
            raise ValueError(f"Unknown hidden_act {act!r}; supported: {', '.join(ACTIVATIONS)}.")
        for field in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            p = getattr(self, field)
            if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
                raise ValueError(f"{field} must be a probability in [0, 1), got {p!r}.")
        if not isinstance(self.initializer_range, (int, float)) or self.initializer_range <= 0:
            raise ValueError(f"initializer_range must be > 0, got {self.initializer_range!r}.")

    # ------------------------------------------------------------------------------- derived facts
    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def group_index(self, layer_idx: int) -> int:
        """Parameter group used by layer `layer_idx`, with the original's floating-point expression.

        `int(i / L * G)` differs from `i * G // L` for a few (L, G) pairs (e.g. L=G=22, layer 15 -> 14);
        checkpoints written by the original follow the float form, so we do too.
        """
        return int(layer_idx / self.num_hidden_layers * self.num_hidden_groups)

    def used_groups(self) -> list[int]:
        """Sorted indices of the groups that at least one layer uses (only these have variables)."""
        return sorted({self.group_index(i) for i in range(self.num_hidden_layers)})


def _read_text(path: str) -> str:
    if "://" in path:
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"Config file not found: {path} (check --albert_config_file).")
        with tf.io.gfile.GFile(path, "r") as f:
            return f.read()
    if not os.path.exists(path):
        raise FileNotFoundError(f"Config file not found: {path} (check --albert_config_file).")
    with open(path, encoding="utf-8") as f:
        return f.read()


def _released(hidden: int, layers: int, heads: int, intermediate: int, dropout: float, act: str = "gelu",
              vocab: int = 30000, **extra: Any) -> dict[str, Any]:
    config = dict(
        attention_probs_dropout_prob=dropout, hidden_dropout_prob=dropout, hidden_act=act,
        embedding_size=128, hidden_size=hidden, initializer_range=0.02, intermediate_size=intermediate,
        max_position_embeddings=512, num_attention_heads=heads, num_hidden_layers=layers,
        num_hidden_groups=1, net_structure_type=0, gap_size=0, num_memory_blocks=0, inner_group_num=1,
        down_scale_factor=1, type_vocab_size=2, vocab_size=vocab)
    config.update(extra)
    return config


# The released configurations (original_release.md §11.3). v2 models train without dropout; v1 xxlarge
# also has no dropout and carries `layers_to_keep`. The Chinese models use relu and a 21128-piece
# WordPiece vocabulary.
PRESETS: dict[str, dict[str, Any]] = {
    "base_v1": _released(768, 12, 12, 3072, 0.1),
    "large_v1": _released(1024, 24, 16, 4096, 0.1),
    "xlarge_v1": _released(2048, 24, 16, 8192, 0.1),
    "xxlarge_v1": _released(4096, 12, 64, 16384, 0.0, layers_to_keep=[]),
    "base_v2": _released(768, 12, 12, 3072, 0.0),
    "large_v2": _released(1024, 24, 16, 4096, 0.0),
    "xlarge_v2": _released(2048, 24, 16, 8192, 0.0),
    "xxlarge_v2": _released(4096, 12, 64, 16384, 0.0),
    "base_zh": _released(768, 12, 12, 3072, 0.0, act="relu", vocab=21128),
    "large_zh": _released(1024, 24, 16, 4096, 0.0, act="relu", vocab=21128),
    "xlarge_zh": _released(2048, 24, 16, 8192, 0.0, act="relu", vocab=21128),
    "xxlarge_zh": _released(4096, 12, 64, 16384, 0.0, act="relu", vocab=21128),
}
