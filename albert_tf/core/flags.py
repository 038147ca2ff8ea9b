"""absl flags generated from the settings dataclasses (`albert_tf.core.settings`), and what is built from them.

`define_flags(cls)` defines one flag per `setting` field of `cls` (name, type, default, help, enum
choices); `run_config_from_flags(cls)` builds `cls` back from the parsed flags through a strict table;
`define_runtime_flags()` defines the TF2 runtime and original TPU flags (`RuntimeSettings`), and
`strategy_from_flags` / `runtime_settings_from_flags` turn them into a strategy and run settings.
TensorFlow-free: flag errors answer before TensorFlow loads.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, TypeVar

from absl import flags, logging

from albert_tf.core import settings

if TYPE_CHECKING:
    import tensorflow as tf



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
    """Defines the runtime flags (`RuntimeSettings`) on `flag_values`; safe to call more than once."""
    define_flags(settings.RuntimeSettings, flag_values)


def _flag_type(hint: Any) -> Any:
    """The value type of a field's type hint (`Optional[int]` -> int)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1 else hint


def define_flags(cls: type, flag_values: flags.FlagValues = flags.FLAGS, skip: Iterable[str] = ()) -> None:
    """Defines a flag for every `setting` field of the dataclass `cls` that has one (`settings.FLAG`),
    with the field's name, type, default, help text and choices. A flag that already exists is left as it
    is (a script may define one itself); `skip` leaves fields out.

    Raises:
      TypeError: a field type no absl flag represents (a bug in the settings class).
    """
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if settings.field_kind(field) != settings.FLAG or field.name in skip or field.name in flag_values:
            continue
        default = None if field.default is dataclasses.MISSING else field.default
        kind = _flag_type(hints[field.name])
        help_text, choices = field.metadata["help"], field.metadata["choices"]
        if choices:
            flags.DEFINE_enum(field.name, default, list(choices), help_text, flag_values=flag_values)
        elif kind in _DEFINE:
            _DEFINE[kind](field.name, default, help_text, flag_values=flag_values)
        else:
            raise TypeError(f"{cls.__name__}.{field.name}: no flag type for {hints[field.name]}.")


_DEFINE = {str: flags.DEFINE_string, bool: flags.DEFINE_bool, int: flags.DEFINE_integer,
           float: flags.DEFINE_float, list: flags.DEFINE_list}


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


def _computed_runtime_fields(flag_values: flags.FlagValues) -> dict[str, Any]:
    """The `RunSettings` runtime fields computed from the runtime flags rather than copied from one flag.

    Returns:
      ``{"steps_per_loop", "log_steps", "jit_compile", "eval_jit_compile", "write_summaries"}``: `--jit_compile`
      sets both XLA choices (training; evaluation and prediction); unset, each takes its measured default.

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
    jit = flag_values.jit_compile
    return {
        "steps_per_loop": steps_per_loop,
        "log_steps": flag_values.log_steps,
        "jit_compile": jit if jit is not None else default_jit_compile(training=True),
        "eval_jit_compile": jit if jit is not None else default_jit_compile(training=False),
        "write_summaries": flag_values.tensorboard,
    }


def default_jit_compile(*, training: bool) -> bool:
    """The measured faster path on this machine's device kind, for training or for evaluation and prediction:
    `albert_tf.modeling.fast_path.default_jit_compile`, whose docstring has the measurements."""
    import tensorflow as tf  # only after the cheap flag checks

    from albert_tf.modeling.fast_path import default_jit_compile as fastest

    device = next((kind for kind in ("TPU", "GPU") if tf.config.list_physical_devices(kind)), "CPU")
    return fastest(device, training=training)


def runtime_settings_from_flags(flag_values: flags.FlagValues = flags.FLAGS, *,
                                own_defaults: Iterable[str] = ()) -> dict[str, Any]:
    """The `RunSettings` fields the runtime flags set (its `settings.RUNTIME` fields), for a program that
    builds its run settings itself (the demo) rather than through `run_config_from_flags`.

    Args:
      flag_values: parsed flags holding the runtime flags (`define_runtime_flags`).
      own_defaults: fields the program chooses itself unless their flag is on the command line
        (`steps_per_loop` also counts `--iterations_per_loop`); such a field is left out when not given.

    Returns:
      {field: value}: `steps_per_loop`, `log_steps`, `jit_compile`, `eval_jit_compile`, `write_summaries`
      from `_computed_runtime_fields`, the others from the flag of the same name.
    """
    given = {name for name in flag_values if flag_values[name].present}
    if "iterations_per_loop" in given:
        given.add("steps_per_loop")
    computed = _computed_runtime_fields(flag_values)
    values = {}
    for field in dataclasses.fields(settings.RunSettings):
        name = field.name
        if settings.field_kind(field) != settings.RUNTIME or (name in own_defaults and name not in given):
            continue
        values[name] = computed[name] if name in _COMPUTED_FIELDS else flag_values[name].value
    return values


_Run = TypeVar("_Run")
# Run-config fields filled from `_computed_runtime_fields` (validated there) rather than a same-named flag.
_COMPUTED_FIELDS = ("steps_per_loop", "log_steps", "jit_compile", "eval_jit_compile", "write_summaries")


def run_config_from_flags(cls: type[_Run], flag_values: flags.FlagValues = flags.FLAGS, *,
                          renames: Optional[Mapping[str, str]] = None, unflagged: Iterable[str] = (),
                          **overrides: Any) -> _Run:
    """Builds a task's run dataclass (e.g. `PretrainingRun`) from the flags, through one explicit table.

    Every field of `cls` must be accounted for, so a misspelt or forgotten flag fails instead of silently
    keeping a default: a field takes the flag of its own name, or the flag `renames[field]`, or the
    runtime settings of `_computed_runtime_fields` (`steps_per_loop`, `log_steps`, `jit_compile`,
    `eval_jit_compile`, `write_summaries`), or a value in `overrides`; a field declared `settings.UNFLAGGED`
    or listed in `unflagged` keeps its default.

    Raises:
      ValueError: a field with no flag that is not listed in `unflagged`, or a `renames` / `unflagged`
        entry naming no field (a typo in the table).
    """
    renames = dict(renames or {})
    unflagged = set(unflagged)
    names = [field.name for field in dataclasses.fields(cls)]
    declared = {f.name for f in dataclasses.fields(cls) if settings.field_kind(f) == settings.UNFLAGGED}
    typos = sorted((set(renames) | unflagged | set(overrides)) - set(names))
    if typos:
        raise ValueError(f"{cls.__name__} has no field(s) {', '.join(typos)} (named in the flag table).")
    computed = _computed_runtime_fields(flag_values)
    values: dict[str, Any] = {}
    missing = []
    for name in names:
        flag = renames.get(name, name)
        if name in overrides:
            values[name] = overrides[name]
        elif name in _COMPUTED_FIELDS:
            values[name] = computed[name]
        elif flag in flag_values:
            values[name] = flag_values[flag].value
        elif name not in unflagged | declared:
            missing.append(name)
    if missing:
        raise ValueError(f"{cls.__name__} field(s) {', '.join(missing)} have no flag: define the flag(s) or "
                         "list the field(s) as unflagged.")
    return cls(**values)
