"""Runtime absl flags shared by every training script, and the objects built from them.

Two families of flags are defined:

- TF2 runtime flags: ``--strategy_type``, ``--tpu``, ``--num_gpus``, ``--all_reduce_alg``,
  ``--mixed_precision``, ``--jit_compile``, ``--steps_per_loop``, ``--log_steps``, ``--tensorboard``.
- The original release's TPU flags with their original defaults: ``--use_tpu`` (False), ``--tpu_name``,
  ``--tpu_zone``, ``--gcp_project``, ``--master``, ``--num_tpu_cores`` (8), ``--iterations_per_loop``
  (1000). ``--use_tpu --tpu_name=x`` selects the TPU strategy on TPU ``x``, as the original did.

``--steps_per_loop`` defaults to None, meaning "use ``--iterations_per_loop``": the number of train steps
run inside one ``tf.function`` call between host round trips, like ``TPUConfig.iterations_per_loop``.
The loop is also cut at checkpoint and log boundaries, so saves land exactly on multiples of
``--save_checkpoints_steps``. ``--log_steps`` defaults to None: one progress line per loop.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, TypeVar

from absl import flags, logging

if TYPE_CHECKING:
    import tensorflow as tf

_PRECISIONS = ("none", "float16", "bfloat16")
# The strategies of `albert_tf.core.distribute.get_strategy` (kept here so flags load without TensorFlow).
STRATEGY_TYPES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")


def _definitions() -> list[tuple[Callable[..., Any], str, Any, str, dict]]:
    """(absl define function, name, default, help, extra kwargs) for every runtime flag."""
    return [
        (flags.DEFINE_enum, "strategy_type", "one_device",
         "Distribution strategy: one_device (GPU:0, else CPU:0), mirrored (all local GPUs, else all "
         "logical CPUs), multi_worker_mirrored (cluster from TF_CONFIG) or tpu.",
         {"enum_values": list(STRATEGY_TYPES)}),
        (flags.DEFINE_string, "tpu", None,
         "TPU name or grpc address for --strategy_type=tpu (falls back to --tpu_name, then --master).", {}),
        (flags.DEFINE_integer, "num_gpus", None,
         "GPUs for --strategy_type=mirrored (default: all visible).", {}),
        (flags.DEFINE_string, "all_reduce_alg", None,
         "Cross-device all-reduce: nccl|hierarchical_copy (mirrored), auto|ring|nccl (multi-worker).",
         {}),
        (flags.DEFINE_enum, "mixed_precision", "none",
         "Mixed precision: none (float32), float16 (mixed_float16 with dynamic loss scaling) or "
         "bfloat16 (mixed_bfloat16).", {"enum_values": list(_PRECISIONS)}),
        (flags.DEFINE_bool, "jit_compile", None,
         "XLA-compile each whole train step and the eval/predict forward pass. Default: on where it "
         "measured faster: with a GPU/TPU, and on CPUs from --max_seq_length=512 on "
         "(albert_tf/modeling/fast_path.py).", {}),
        (flags.DEFINE_integer, "steps_per_loop", None,
         "Train steps per tf.function call (host round trip). Default: --iterations_per_loop.", {}),
        (flags.DEFINE_integer, "log_steps", None,
         "Log progress (and write summaries) every this many steps. Default: once per loop.", {}),
        (flags.DEFINE_bool, "tensorboard", True,
         "Write TensorBoard summaries under <output_dir>/summaries/train (chief only).", {}),
        (flags.DEFINE_integer, "gradient_accumulation_steps", 1,
         "Accumulate the gradients of this many micro-batches (each train_batch_size / k examples) per "
         "optimizer step: the recipe's batch size on small hardware.", {}),
        (flags.DEFINE_bool, "overwrite_output_dir", False,
         "Empty an --output_dir that holds an earlier, incompatible run instead of stopping.", {}),
        (flags.DEFINE_bool, "recompute_grad", False,
         "Recompute each encoder block's activations in the backward pass (less memory, more compute).", {}),
        (flags.DEFINE_bool, "use_tpu", False, "Original flag: whether to use a TPU.", {}),
        (flags.DEFINE_string, "tpu_name", None,
         "Original flag: the Cloud TPU to use (name or grpc://address).", {}),
        (flags.DEFINE_string, "tpu_zone", None, "Original flag: GCE zone of the Cloud TPU.", {}),
        (flags.DEFINE_string, "gcp_project", None, "Original flag: GCP project of the Cloud TPU.", {}),
        (flags.DEFINE_string, "master", None, "Original flag: TensorFlow master URL.", {}),
        (flags.DEFINE_integer, "num_tpu_cores", 8,
         "Original flag: TPU cores (informational; the TPU strategy uses every core it finds).", {}),
        (flags.DEFINE_integer, "iterations_per_loop", 1000,
         "Original flag: steps per TPU loop; the default for --steps_per_loop.", {}),
    ]


def define_driver_flags(*, do_train: bool = False, do_eval: bool = False, train_batch_size: int = 32,
                        eval_batch_size: int = 8, predict_batch_size: int = 8, learning_rate: float = 5e-5,
                        optimizer: str = "adamw", save_checkpoints_steps: int = 1000, keep_checkpoint_max: int = 5,
                        skip: Iterable[str] = (), flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the flags every task script shares (`RunSettings`' fields), with the script's original
    defaults, plus the runtime flags. `skip` leaves out flags the script's original did not have (or defines
    itself, e.g. with its own help text).

    The keyword defaults are `RunSettings`' (a test keeps them equal).
    """
    definitions = [
        (flags.DEFINE_string, "output_dir", None, "Where checkpoints, evaluation and prediction results are written."),
        (flags.DEFINE_string, "init_checkpoint", None,
         "Initial checkpoint: official TF1 layout (prefix or directory) or a Hugging Face directory; a pretrained "
         "one (the task's head starts fresh) or one fine-tuned on this task (to continue, evaluate or predict)."),
        (flags.DEFINE_string, "albert_hub_module_handle", None,
         "A TF-Hub encoder (the original's TF1 module or a TF2 SavedModel; local directory or URL) to use instead "
         "of --albert_config_file's AlbertModel."),
        (flags.DEFINE_bool, "do_train", do_train, "Whether to train."),
        (flags.DEFINE_bool, "do_eval", do_eval, "Whether to evaluate every checkpoint (alongside training, or the "
         "saved ones without --do_train)."),
        (flags.DEFINE_bool, "do_predict", False, "Whether to predict with model.ckpt-best."),
        (flags.DEFINE_integer, "train_batch_size", train_batch_size, "Global training batch size."),
        (flags.DEFINE_integer, "eval_batch_size", eval_batch_size, "Global evaluation batch size."),
        (flags.DEFINE_integer, "predict_batch_size", predict_batch_size, "Global prediction batch size."),
        (flags.DEFINE_float, "learning_rate", learning_rate, "The initial learning rate."),
        (flags.DEFINE_integer, "save_checkpoints_steps", save_checkpoints_steps,
         "How often to save (and evaluate) a checkpoint."),
        (flags.DEFINE_integer, "keep_checkpoint_max", keep_checkpoint_max, "How many model.ckpt-<step> to keep (0: all)."),
        (flags.DEFINE_string, "export_dir", None, "Export SavedModels of model.ckpt-best under this folder."),
        (flags.DEFINE_string, "export_formats", "savedmodel",
         "With --export_dir: comma list of savedmodel, onnx (needs the onnx extra), tflite."),
        (flags.DEFINE_string, "export_quantize", "",
         "With --export_dir: quantized ONNX/TFLite files written beside the float ones, comma list of float16, "
         "int8 (dynamic range), full_int8 (TFLite, calibrated on the task's data; refused when inaccurate)."),
        (flags.DEFINE_bool, "continuous_eval", False,
         "With --do_eval and without --do_train: a side-car evaluator beside the training job (same flags, same "
         "--output_dir) that evaluates each new model.ckpt-<step> until the final step."),
        (flags.DEFINE_integer, "eval_timeout", 3600,
         "--continuous_eval stops after this many seconds without a new checkpoint."),
    ]
    skip = set(skip)
    if "export_dir" in skip:  # the export settings come with --export_dir
        skip |= {"export_formats", "export_quantize"}
    for define, name, default, help_text in definitions:
        if name not in skip:
            define(name, default, help_text, flag_values=flag_values)
    if "optimizer" not in skip:
        flags.DEFINE_enum("optimizer", optimizer, ["adamw", "lamb"], "The optimizer for training.",
                          flag_values=flag_values)
    define_runtime_flags(flag_values)


def run_task(make_task: Callable[[Any], Any], run_cls: type, flag_values: flags.FlagValues = flags.FLAGS, *,
             renames: Optional[Mapping[str, str]] = None, unflagged: Iterable[str] = (),
             **overrides: Any) -> dict[str, Any]:
    """What every task script's `main` does: precision and strategy from the runtime flags, the run settings
    through the strict flag table (`run_config_from_flags`), then the one driver on `make_task(settings)`."""
    from albert_tf.core import distribute, driver  # imports TensorFlow

    distribute.configure_precision(flag_values.mixed_precision)
    strategy = strategy_from_flags(flag_values)
    run = run_config_from_flags(run_cls, flag_values, renames=renames, unflagged=unflagged, **overrides)
    return driver.run(make_task(run), strategy)


def define_runtime_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the runtime flags on ``flag_values``.

    Safe to call more than once (scripts and tests both import it): a flag that already exists is left as
    it is, so a script that defines one of the original flags itself keeps its own definition.
    """
    for define, name, default, help_text, kwargs in _definitions():
        if name not in flag_values:
            define(name, default, help=help_text, flag_values=flag_values, **kwargs)


def strategy_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> tf.distribute.Strategy:
    """Builds the strategy the flags ask for (see :func:`albert_tf.core.distribute.get_strategy`).

    ``--use_tpu`` implies ``--strategy_type=tpu``; the TPU address is ``--tpu``, else ``--tpu_name``, else
    ``--master``.

    Raises:
      ValueError: ``--use_tpu`` together with a non-TPU ``--strategy_type``.
    """
    strategy_type = flag_values.strategy_type
    if flag_values.use_tpu and strategy_type not in ("one_device", "tpu"):
        raise ValueError(
            f"--use_tpu conflicts with --strategy_type={strategy_type}; drop one of them "
            "(--use_tpu alone selects the TPU strategy)."
        )
    if flag_values.use_tpu:
        strategy_type = "tpu"
    from albert_tf.core import distribute  # imports TensorFlow

    strategy = distribute.get_strategy(
        strategy_type,
        tpu=flag_values.tpu or flag_values.tpu_name or flag_values.master,
        num_gpus=flag_values.num_gpus,
        all_reduce_alg=flag_values.all_reduce_alg,
        tpu_zone=flag_values.tpu_zone,
        gcp_project=flag_values.gcp_project,
    )
    logging.info("%s", distribute.describe(strategy))
    return strategy


def trainer_kwargs_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> dict[str, Any]:
    """The :class:`albert_tf.core.trainer.Trainer` keyword arguments the runtime flags control.

    Returns:
      ``{"steps_per_loop", "log_steps", "jit_compile", "write_summaries"}``.

    Raises:
      ValueError: a non-positive ``--steps_per_loop``/``--iterations_per_loop`` or ``--log_steps``.
    """
    steps_per_loop = flag_values.steps_per_loop
    if steps_per_loop is None:
        steps_per_loop = flag_values.iterations_per_loop
    if steps_per_loop is None or steps_per_loop < 1:
        raise ValueError(
            f"--steps_per_loop (or --iterations_per_loop) must be >= 1, got {steps_per_loop}."
        )
    if flag_values.log_steps is not None and flag_values.log_steps < 1:
        raise ValueError(f"--log_steps must be >= 1 when set, got {flag_values.log_steps}.")
    return {
        "steps_per_loop": steps_per_loop,
        "log_steps": flag_values.log_steps,
        "jit_compile": (flag_values.jit_compile if flag_values.jit_compile is not None else default_jit_compile(
            flag_values["max_seq_length"].value if "max_seq_length" in flag_values else None)),
        "write_summaries": flag_values.tensorboard,
    }


def default_jit_compile(seq_length: Optional[int] = None) -> bool:
    """The measured faster path for this machine's device kind and `seq_length` (--max_seq_length):
    `albert_tf.modeling.fast_path.default_jit_compile`, whose docstring has the measurements."""
    import tensorflow as tf  # only after the cheap flag checks

    from albert_tf.modeling.fast_path import default_jit_compile as fastest

    device = next((kind for kind in ("TPU", "GPU") if tf.config.list_physical_devices(kind)), "CPU")
    return fastest(device, seq_length)


_Run = TypeVar("_Run")
# Run-config fields filled from `trainer_kwargs_from_flags` (validated there) rather than a same-named flag.
_TRAINER_FIELDS = ("steps_per_loop", "log_steps", "jit_compile", "write_summaries")


def run_config_from_flags(cls: type[_Run], flag_values: flags.FlagValues = flags.FLAGS, *,
                          renames: Optional[Mapping[str, str]] = None, unflagged: Iterable[str] = (),
                          **overrides: Any) -> _Run:
    """Builds a task's run dataclass (e.g. `PretrainingRun`) from the flags, through one explicit table.

    Every field of `cls` must be accounted for, so a misspelt or forgotten flag fails instead of silently
    keeping a default: a field takes the flag of its own name, or the flag `renames[field]`, or the
    runtime settings of `trainer_kwargs_from_flags` (`steps_per_loop`, `log_steps`, `jit_compile`,
    `write_summaries`), or a value in `overrides`; a field listed in `unflagged` keeps its default.

    Raises:
      ValueError: a field with no flag that is not listed in `unflagged`, or a `renames` / `unflagged`
        entry naming no field (a typo in the table).
    """
    renames = dict(renames or {})
    unflagged = set(unflagged)
    names = [field.name for field in dataclasses.fields(cls)]
    typos = sorted((set(renames) | unflagged | set(overrides)) - set(names))
    if typos:
        raise ValueError(f"{cls.__name__} has no field(s) {', '.join(typos)} (named in the flag table).")
    trainer = trainer_kwargs_from_flags(flag_values)
    values: dict[str, Any] = {}
    missing = []
    for name in names:
        flag = renames.get(name, name)
        if name in overrides:
            values[name] = overrides[name]
        elif name in _TRAINER_FIELDS:
            values[name] = trainer[name]
        elif flag in flag_values:
            values[name] = flag_values[flag].value
        elif name not in unflagged:
            missing.append(name)
    if missing:
        raise ValueError(f"{cls.__name__} field(s) {', '.join(missing)} have no flag: define the flag(s) or "
                         "list the field(s) as unflagged.")
    return cls(**values)
