"""`run_classifier.py`'s settings: the original flags, names and defaults (TensorFlow-free)."""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

from albert_tf.core.settings import ModelSettings, RunSettings, TextSettings, setting


@dataclasses.dataclass(kw_only=True)
class ClassifierRun(RunSettings, ModelSettings, TextSettings):
    """Everything `run_classifier.py` needs; names and defaults are the original flags'.

    `classifier_dropout` and `xnli_language` are additions (the original hard-coded 0.1 and "zh").
    """

    data_dir: Optional[str] = setting(None, "The GLUE root folder (holding e.g. RTE/train.tsv).")
    task_name: str = setting(help="The task: cola, mnli, mismnli, mrpc, rte, sst-2, sts-b, qqp, qnli, wnli, ax "
                             "(predict only, with an MNLI model) or xnli.")
    cached_dir: Optional[str] = setting(
        None, "Where the cached <task>_{train,eval}.tf_record go (default: --output_dir).")
    max_seq_length: int = setting(512, "Maximum total sequence length after tokenization.")
    train_step: int = setting(1000, "Total number of training steps.")
    warmup_step: int = setting(0, "Number of linear warmup steps.")
    threshold_to_export: float = setting(
        math.nan, "A threshold served as a constant `threshold` output of the exported SavedModel (default NaN: "
        "none).")
    classifier_dropout: float = setting(0.1, "Dropout on the pooled output in training (the original's 0.1).")
    xnli_language: str = setting("zh", "Language of the xnli task.")
