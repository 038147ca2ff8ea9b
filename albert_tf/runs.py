"""Whole runs as library calls: what the task programs do after parsing their flags.

These sit above the tasks and the driver (the tasks never import the driver): build a task from its
settings and run it through `albert_tf.core.driver.run`.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import tensorflow as tf

from albert_tf.core import driver
from albert_tf.tasks.glue.settings import ClassifierRun
from albert_tf.tasks.glue.task import GlueTask
from albert_tf.tasks.pretraining.settings import PretrainingRun
from albert_tf.tasks.pretraining.task import PretrainingTask


def run_classifier(run: ClassifierRun, strategy: Optional[tf.distribute.Strategy] = None) -> dict[str, Any]:
    """GLUE / XNLI: trains / evaluates / predicts / exports through the driver; returns its summary."""
    return driver.run(GlueTask(run), strategy)


def run_pretraining(run: PretrainingRun, strategy: Optional[tf.distribute.Strategy] = None) -> dict[str, Any]:
    """Pretraining: trains and/or evaluates through the driver; returns its summary (`train`, `eval`, ...)."""
    return driver.run(PretrainingTask(run), strategy)


def export_classifier_checkpoint(albert_config_file: str, task_name: str, export_dir: str, *,
                                 output_dir: Optional[str] = None, init_checkpoint: Optional[str] = None,
                                 max_seq_length: int = 512, spm_model_file: Optional[str] = None,
                                 do_lower_case: bool = True, threshold: Optional[float] = None,
                                 export_formats: str = "savedmodel", export_quantize: str = "") -> dict[str, str]:
    """Exports a fine-tuned classifier without training (`export_savedmodel.py`), through the driver:
    the checkpoint is `output_dir`'s best (else newest), else the fine-tuned `init_checkpoint`.
    Returns the SavedModel directories of `export_classifier` and the files of `--export_formats` /
    `--export_quantize` (see `GlueTask.export`)."""
    run = ClassifierRun(task_name=task_name, output_dir=output_dir or export_dir, albert_config_file=albert_config_file,
                        init_checkpoint=init_checkpoint, max_seq_length=max_seq_length, spm_model_file=spm_model_file,
                        do_lower_case=do_lower_case, export_dir=export_dir, export_formats=export_formats,
                        export_quantize=export_quantize, threshold_to_export=math.nan if threshold is None else threshold)
    return driver.run(GlueTask(run))["export"]
