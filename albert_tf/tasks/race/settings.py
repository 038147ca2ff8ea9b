"""`run_race.py`'s settings: the original flags, names and defaults (TensorFlow-free)."""
from __future__ import annotations

import dataclasses
from typing import Optional

from albert_tf.core.settings import ModelSettings, RunSettings, TextSettings, setting


@dataclasses.dataclass(kw_only=True)
class RaceRun(RunSettings, ModelSettings, TextSettings):
    """Everything `run_race.py` needs; names and defaults are the original flags' (note `do_train` and
    `do_eval` default to True, as in the original). `train_step` / `warmup_step` are the schedule."""

    data_dir: Optional[str] = setting(
        None, "The folder holding RACE/{train,dev,test}/{middle,high}/ (one JSON article per *.txt, or all.txt "
        "with one per line); RACE/ itself also works.")
    task_name: str = setting("race", "The task: race.")
    train_file: Optional[str] = setting(
        None, "Training features (TFRecord); built from the train split when missing. Default: "
        "<output_dir>/train.tf_record.")
    eval_file: Optional[str] = setting(
        None, "Dev features; built from the dev split when missing. Default: <output_dir>/eval.tf_record.")
    predict_file: Optional[str] = setting(
        None, "Test features; used as is when it exists, else built from the test split. Default: "
        "<output_dir>/predict.tf_record.")
    dropout_prob: float = setting(0.1, "Dropout on the pooled output in training.")
    max_seq_length: int = setting(512, "Length of [CLS] article [SEP] question+option [SEP], per choice.")
    max_qa_length: int = setting(128, "Question+option pieces kept (the last ones).")
    high_only: bool = setting(False, "Only the high-school questions.")
    middle_only: bool = setting(False, "Only the middle-school questions.")
    do_train: bool = setting(True, "Whether to train.")
    do_eval: bool = setting(
        True, "Whether to evaluate every checkpoint (alongside training, or the saved ones without --do_train).")
    learning_rate: float = setting(1e-5, "The initial learning rate.")
    train_step: int = setting(12000, "Total number of training steps.")
    warmup_step: int = setting(1000, "Number of linear warmup steps.")
    save_checkpoints_steps: int = setting(100, "How often to save (and evaluate) a checkpoint.")
