"""`run_squad.py`'s settings (and `run_squad_v1.py` / `run_squad_v2.py`'s): the original flags, names and
defaults (TensorFlow-free)."""
from __future__ import annotations

import dataclasses
from typing import Optional

from albert_tf.core.settings import UNFLAGGED, ModelSettings, RunSettings, TextSettings, setting

V1, V2 = "v1.1", "v2.0"
VERSIONS = (V1, V2)


@dataclasses.dataclass(kw_only=True)
class SquadRun(RunSettings, ModelSettings, TextSettings):
    """Everything `run_squad.py` needs; names and defaults are the original flags'.

    `squad_version` selects v1.1 (`run_squad_v1.py`) or v2.0 (`run_squad_v2.py`); the scripts fill it (a
    required enum flag of `run_squad.py`, fixed by the other two). `null_score_diff_threshold` (v2.0, None:
    tune on the predict file as the original) is an addition. `use_einsum` and `predict_feature_left_file`
    are accepted and unused (the TFLite conversion needs no matmul switch; the side information lives next
    to the predict features). SQuAD evaluates with `predict_batch_size`, as the original (no
    `--eval_batch_size`).
    """

    train_file: Optional[str] = setting(None, "SQuAD json for training, e.g. train-v1.1.json.")
    predict_file: Optional[str] = setting(None, "SQuAD json for evaluation and predictions, e.g. dev-v1.1.json.")
    train_feature_file: Optional[str] = setting(
        None, "Training TFRecord; built when missing (default <output_dir>/train.tf_record).")
    predict_feature_file: Optional[str] = setting(
        None, "Predict TFRecord (+ its side file F.features.json); used as is when it exists, else built (default "
        "<output_dir>/predict.tf_record).")
    predict_feature_left_file: Optional[str] = setting(
        None, "Original flag, unused: the post-processing side information is written next to "
        "--predict_feature_file.")
    vocab_file: Optional[str] = setting(
        None, "Unused: SQuAD features need --spm_model_file (kept for compatibility).")
    do_lower_case: bool = setting(True, "Lower-case the input text.")
    max_seq_length: int = setting(384, "Sequence length (question + context window).")
    doc_stride: int = setting(128, "How far apart the context windows start, in pieces.")
    max_query_length: int = setting(64, "Question pieces beyond this are cut.")
    num_train_epochs: float = setting(3.0, "Training epochs (over questions).")
    warmup_proportion: float = setting(0.1, "Share of the steps with linear warmup.")
    n_best_size: int = setting(20, "Size of the n-best lists.")
    max_answer_length: int = setting(30, "Longest answer, in pieces.")
    start_n_top: int = setting(5, "v2.0: beam size of the start positions.")
    end_n_top: int = setting(5, "v2.0: end positions kept per start.")
    dropout_prob: float = setting(0.1, "v2.0: dropout of the answerability layer.")
    use_einsum: bool = setting(True, "Original v1 flag (False for the TFLite export).")
    squad_version: str = setting(V1, kind=UNFLAGGED)
    null_score_diff_threshold: Optional[float] = setting(
        None, "v2.0: answer \"\" where the null score is >= this. Default: tuned on --predict_file for "
        "evaluation, as the original.")
    eval_batch_size: int = setting(8, kind=UNFLAGGED)
    # The original run_squad_v1.py / run_squad_v2.py evaluated every checkpoint with `--do_train --do_predict`
    # on a predict file with answers (see `SquadTask.resolve_settings`); run_squad.py asks for `--do_eval`.
    eval_with_train_predict: bool = setting(False, kind=UNFLAGGED)
