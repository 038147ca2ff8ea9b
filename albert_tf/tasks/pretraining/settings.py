"""`run_pretraining.py`'s settings: the original flags, names and defaults (TensorFlow-free)."""
from __future__ import annotations

import dataclasses
from typing import Optional

from albert_tf.core.settings import UNFLAGGED, ModelSettings, RunSettings, setting


@dataclasses.dataclass(kw_only=True)
class PretrainingRun(RunSettings, ModelSettings):
    """Everything `run_pretraining.py` needs; field names and defaults are the original flags'."""

    albert_config_file: str = setting(help="The albert_config.json of the model to train.")
    input_file: str = setting(help="Input TFRecord files (comma-separated globs).")
    eval_input_file: Optional[str] = setting(
        None, "TFRecords for --do_eval (default: --input_file, as the original).")  # a TF2 addition
    do_train: bool = setting(True, "Whether to train.")
    do_predict: bool = setting(False, kind=UNFLAGGED)
    train_batch_size: int = setting(4096, "Global training batch size.")
    eval_batch_size: int = setting(64, "Global evaluation batch size.")
    predict_batch_size: int = setting(8, kind=UNFLAGGED)
    max_seq_length: int = setting(512, "Maximum sequence length; must match the TFRecords.")
    max_predictions_per_seq: int = setting(20, "Masked LM predictions per sequence; must match the TFRecords.")
    optimizer: str = setting("lamb", "The optimizer for training.", choices=("adamw", "lamb"))
    learning_rate: float = setting(0.00176, "The initial learning rate.")
    poly_power: float = setting(1.0, "The power of the polynomial decay.")
    num_train_steps: int = setting(125000, "Number of training steps.")
    num_warmup_steps: int = setting(3125, "Number of warmup steps.")
    start_warmup_step: int = setting(0, "The step at which warmup starts.")
    save_checkpoints_steps: int = setting(5000, "How often to save (and evaluate) a checkpoint.")
    max_eval_steps: int = setting(100, "Maximum number of eval batches.")
    init_from_group0: bool = setting(False, "Initialise every parameter group from group_0 of --init_checkpoint.")
