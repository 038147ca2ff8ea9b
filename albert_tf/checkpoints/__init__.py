"""Checkpoint formats: the official TF1 layout (`tf1`)."""
from albert_tf.checkpoints.tf1 import (CheckpointMismatchError, CorruptCheckpointError, LoadReport,
                                       checkpoint_global_step, has_variables,
                                       initialize_from_checkpoint, load_original_checkpoint, load_variables,
                                       open_checkpoint, prune_checkpoints, read_original_checkpoint,
                                       resolve_checkpoint_path, save_original_checkpoint, step_checkpoints,
                                       write_checkpoint_state)

__all__ = ["CheckpointMismatchError", "CorruptCheckpointError", "LoadReport", "checkpoint_global_step", "has_variables",
           "initialize_from_checkpoint", "load_original_checkpoint", "load_variables", "open_checkpoint",
           "prune_checkpoints", "read_original_checkpoint", "resolve_checkpoint_path", "save_original_checkpoint",
           "step_checkpoints", "write_checkpoint_state"]
