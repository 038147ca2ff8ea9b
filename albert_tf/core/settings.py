"""Run settings: the one source of every task script's flags, their defaults and their help.

A setting is a dataclass field made with `setting(default, help)`; `albert_tf.core.flags.define_flags`
turns every such field into an absl flag of the same name, type and default, and
`run_config_from_flags` builds the dataclass back from the parsed flags through a strict table. So a
default exists once, here or in a task's settings class (`albert_tf.tasks.<task>.settings`), which
re-declares a field where its original script had another default, help text, or no flag at all.

This module imports neither TensorFlow nor absl: scripts parse their flags before TensorFlow loads.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

# How a settings field is filled from the command line (`metadata["flag"]`).
FLAG = "flag"  # a flag of the field's own name
UNFLAGGED = "unflagged"  # no flag: the field keeps its default (the original script had none)
RUNTIME = "runtime"  # computed from the runtime flags (`albert_tf.core.flags.runtime_settings_from_flags`)

# The strategies of `albert_tf.core.distribute.get_strategy` and the precisions of `configure_precision`.
STRATEGY_TYPES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")
PRECISIONS = ("none", "float16", "bfloat16")


def setting(default: Any = dataclasses.MISSING, help: str = "", *, choices: Optional[Sequence[str]] = None,
            kind: str = FLAG) -> Any:
    """A settings field: `default`, the flag's `help` text, allowed `choices` (an enum flag), and `kind`
    (`FLAG`, `UNFLAGGED` or `RUNTIME`). A field without a default is a required setting (its flag
    defaults to None and the script marks it required)."""
    if kind == FLAG and not help:
        raise ValueError("A flagged setting needs its help text.")
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "kind": kind})


def field_kind(field: dataclasses.Field) -> Optional[str]:
    """`FLAG`, `UNFLAGGED`, `RUNTIME`, or None for a plain field (declared without `setting`)."""
    return field.metadata.get("kind")


@dataclasses.dataclass(kw_only=True)
class RuntimeSettings:
    """The TF2 runtime flags of every training script, and the original release's TPU flags with their
    original defaults (`--use_tpu --tpu_name=x` selects the TPU strategy on TPU `x`, as the original did).

    `steps_per_loop` defaults to None, meaning "use `--iterations_per_loop`": train steps run inside one
    `tf.function` call between host round trips, like `TPUConfig.iterations_per_loop`; the loop is also cut
    at checkpoint and log boundaries, so saves land exactly on multiples of `--save_checkpoints_steps`.
    """

    strategy_type: str = setting(
        "one_device", "Distribution strategy: one_device (GPU:0, else CPU:0), mirrored (all local GPUs, else all "
        "logical CPUs), multi_worker_mirrored (cluster from TF_CONFIG) or tpu.", choices=STRATEGY_TYPES)
    tpu: Optional[str] = setting(
        None, "TPU name or grpc address for --strategy_type=tpu (falls back to --tpu_name, then --master).")
    num_gpus: Optional[int] = setting(None, "GPUs for --strategy_type=mirrored (default: all visible).")
    all_reduce_alg: Optional[str] = setting(
        None, "Cross-device all-reduce: nccl|hierarchical_copy (mirrored), auto|ring|nccl (multi-worker).")
    mixed_precision: str = setting(
        "none", "Mixed precision: none (float32), float16 (mixed_float16 with dynamic loss scaling) or bfloat16 "
        "(mixed_bfloat16).", choices=PRECISIONS)
    jit_compile: Optional[bool] = setting(
        None, "XLA-compile each whole train step and the eval/predict forward pass. Default: on where it "
        "measured faster: with a GPU/TPU; on CPUs never for training, and for eval/predict only on x86 CPUs "
        "with AVX2 and without AVX-512 (albert_tf/modeling/fast_path.py).")
    steps_per_loop: Optional[int] = setting(
        None, "Train steps per tf.function call (host round trip). Default: --iterations_per_loop.")
    log_steps: Optional[int] = setting(
        None, "Log progress (and write summaries) every this many steps. Default: once per loop.")
    tensorboard: bool = setting(True, "Write TensorBoard summaries under <output_dir>/summaries/train (chief only).")
    gradient_accumulation_steps: int = setting(
        1, "Accumulate the gradients of this many micro-batches (each train_batch_size / k examples) per "
        "optimizer step: the recipe's batch size on small hardware.")
    overwrite_output_dir: bool = setting(
        False, "Empty an --output_dir that holds an earlier, incompatible run instead of stopping.")
    recompute_grad: bool = setting(
        False, "Recompute each encoder block's activations in the backward pass (less memory, more compute).")
    use_tpu: bool = setting(False, "Original flag: whether to use a TPU.")
    tpu_name: Optional[str] = setting(None, "Original flag: the Cloud TPU to use (name or grpc://address).")
    tpu_zone: Optional[str] = setting(None, "Original flag: GCE zone of the Cloud TPU.")
    gcp_project: Optional[str] = setting(None, "Original flag: GCP project of the Cloud TPU.")
    master: Optional[str] = setting(None, "Original flag: TensorFlow master URL.")
    num_tpu_cores: int = setting(
        8, "Original flag: TPU cores (informational; the TPU strategy uses every core it finds).")
    iterations_per_loop: int = setting(1000, "Original flag: steps per TPU loop; the default for --steps_per_loop.")


@dataclasses.dataclass(kw_only=True)
class RunSettings:
    """What the driver needs from every task's settings. Task settings subclass this and add their own
    fields (named like the original flags). Task-specific names of the same facts (e.g. GLUE's
    `train_step`, pretraining's `num_train_steps`) are reported through `Task.num_train_steps()` /
    `Task.num_warmup_steps()`.

    `RUNTIME` fields come from the runtime flags (`RuntimeSettings`): `steps_per_loop`, `log_steps`,
    `jit_compile` (training), `eval_jit_compile` (evaluation and prediction) and `write_summaries` computed by
    `runtime_settings_from_flags`, the others from the runtime flag of the same name.
    """

    output_dir: str = setting(help="Where checkpoints, evaluation and prediction results are written.")
    init_checkpoint: Optional[str] = setting(
        None, "Initial checkpoint: official TF1 layout (prefix or directory) or a Hugging Face directory; a "
        "pretrained one (the task's head starts fresh) or one fine-tuned on this task (to continue, evaluate or "
        "predict).")
    albert_hub_module_handle: Optional[str] = setting(
        None, "A TF-Hub encoder (the original's TF1 module or a TF2 SavedModel; local directory or URL) to use "
        "instead of --albert_config_file's AlbertModel.")
    do_train: bool = setting(False, "Whether to train.")
    do_eval: bool = setting(
        False, "Whether to evaluate every checkpoint (alongside training, or the saved ones without --do_train).")
    do_predict: bool = setting(False, "Whether to predict with model.ckpt-best.")
    export_dir: Optional[str] = setting(None, "Export SavedModels of model.ckpt-best under this folder.")
    export_formats: str = setting(
        "savedmodel", "With --export_dir: comma list of savedmodel, onnx (needs the onnx extra), tflite.")
    export_quantize: str = setting(
        "", "With --export_dir: quantized ONNX/TFLite files written beside the float ones, comma list of float16, "
        "int8 (dynamic range), full_int8 (TFLite, calibrated on the task's data; refused when inaccurate).")
    train_batch_size: int = setting(32, "Global training batch size.")
    eval_batch_size: int = setting(8, "Global evaluation batch size.")
    predict_batch_size: int = setting(8, "Global prediction batch size.")
    optimizer: str = setting("adamw", "The optimizer for training.", choices=("adamw", "lamb"))
    learning_rate: float = setting(5e-5, "The initial learning rate.")
    poly_power: float = setting(1.0, kind=UNFLAGGED)
    start_warmup_step: int = setting(0, kind=UNFLAGGED)
    save_checkpoints_steps: int = setting(1000, "How often to save (and evaluate) a checkpoint.")
    keep_checkpoint_max: int = setting(5, "How many model.ckpt-<step> to keep (0: all).")
    init_from_group0: bool = setting(False, kind=UNFLAGGED)
    steps_per_loop: int = setting(1000, kind=RUNTIME)
    log_steps: Optional[int] = setting(None, kind=RUNTIME)
    jit_compile: bool = setting(False, kind=RUNTIME)
    eval_jit_compile: bool = setting(False, kind=RUNTIME)
    write_summaries: bool = setting(True, kind=RUNTIME)
    gradient_accumulation_steps: int = setting(1, kind=RUNTIME)
    recompute_grad: bool = setting(False, kind=RUNTIME)
    overwrite_output_dir: bool = setting(False, kind=RUNTIME)
    continuous_eval: bool = setting(
        False, "With --do_eval and without --do_train: a side-car evaluator beside the training job (same flags, "
        "same --output_dir) that evaluates each new model.ckpt-<step> until the final step.")
    eval_timeout: int = setting(3600, "--continuous_eval stops after this many seconds without a new checkpoint.")


@dataclasses.dataclass(kw_only=True)
class ModelSettings:
    """The model a task builds: `--albert_config_file` (else the config an init checkpoint or Hub module
    carries, see `albert_tf.core.context`)."""

    albert_config_file: Optional[str] = setting(None, "The albert_config.json of the pretrained model.")


@dataclasses.dataclass(kw_only=True)
class TextSettings:
    """How a task tokenizes its text (else the tokenizer an init checkpoint or Hub module carries)."""

    spm_model_file: Optional[str] = setting(None, "The SentencePiece model (e.g. 30k-clean.model).")
    vocab_file: Optional[str] = setting(None, "WordPiece vocabulary (used when --spm_model_file is not given).")
    do_lower_case: bool = setting(True, "Lower-case the input text (True for the released models).")
