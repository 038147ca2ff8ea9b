"""Model sources and checkpoint formats.

Two layers live here (see docs/architecture.md): the format readers, which import no model and no
tokenizer (`tf1` the official TF1 layout, `hf_format` Hugging Face folders, `hub_format` TF-Hub handles,
and `source`, the one resolution of what a path holds), and the loaders above the models (`loading`,
`transformers`, `hub`). The public names below are imported on first use, so that importing a format
reader does not import the models.
"""
from albert_tf.lazy_names import attach

attach(globals(), {
    "CheckpointMismatchError": "tf1", "CorruptCheckpointError": "tf1", "LoadReport": "tf1",
    "checkpoint_global_step": "tf1", "load_variables": "tf1", "open_checkpoint": "tf1",
    "prune_checkpoints": "tf1", "read_original_checkpoint": "tf1", "resolve_checkpoint_path": "tf1",
    "save_original_checkpoint": "tf1", "step_checkpoints": "tf1", "write_checkpoint_state": "tf1",
    "has_variables": "loading", "initialize_from_checkpoint": "loading", "load_original_checkpoint": "loading",
    "ModelSource": "source", "resolve": "source",
})
