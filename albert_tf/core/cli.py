"""Command-line conventions shared by every script: clean errors, a quiet console, cheap checks first.

A script does three things with this module, in this order:

    from albert_tf.core import cli            # before anything that imports TensorFlow
    cli.quiet_tensorflow()                    # hides TF's C++ start-up lines (CUDA probing on CPUs)
    from absl import flags
    ...define flags...
    def main(argv):
        cli.check_choice("task_name", FLAGS.task_name, task_names.GLUE_TASKS)  # cheap checks first
        from albert_tf.tasks import glue      # heavy imports only after them
        ...
    if __name__ == "__main__":
        cli.run_main(main)                    # instead of absl's app.run(main)

`run_main` turns user errors (`ValueError` and its subclasses: every error class of this project,
`OSError`s such as `FileNotFoundError`, TensorFlow's file errors, `app.UsageError`) into ONE line
``error: <message>`` on stderr and exit status 2. Any other exception is a bug and keeps its traceback.
``--verbose`` shows tracebacks for every error and keeps TensorFlow's console messages.
"""
from __future__ import annotations

import logging as std_logging
import os
import sys
import warnings
from typing import Any, Callable, Iterable, Optional, Sequence

from absl import app, flags
from absl import logging

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
# Device files present on machines with an NVIDIA GPU (Linux, and WSL's /dev/dxg).
_GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/proc/driver/nvidia")
# Packages whose INFO log lines are internal chatter (e.g. "Sharding callback duration" at every save).
_CHATTY_PACKAGES = (f"{os.sep}tensorflow{os.sep}", f"{os.sep}tf_keras{os.sep}", f"{os.sep}keras{os.sep}")

flags.DEFINE_bool("verbose", False, "Show tracebacks for every error, TensorFlow's own console messages "
                  "and deprecation warnings.")


class UserError(ValueError):
    """A problem with the command line or the inputs; `run_main` prints its message as one line."""


def verbose_requested(argv: Optional[Sequence[str]] = None) -> bool:
    """Whether ``--verbose`` is on the command line (read before absl parses the flags)."""
    argv = sys.argv if argv is None else argv
    value = None
    for arg in argv[1:]:
        if arg in ("--verbose", "--verbose=true", "--verbose=True", "--verbose=1"):
            value = True
        elif arg in ("--noverbose", "--verbose=false", "--verbose=False", "--verbose=0"):
            value = False
    return bool(value)


def has_gpu_device() -> bool:
    """Whether this machine shows an NVIDIA GPU device (checked without importing TensorFlow)."""
    return any(os.path.exists(path) for path in _GPU_DEVICE_FILES)


class _DropLibraryInfo(std_logging.Filter):
    """Drops log records below WARNING emitted from TensorFlow's and Keras' own source files."""

    def filter(self, record: std_logging.LogRecord) -> bool:
        return record.levelno >= std_logging.WARNING or not any(
            package in record.pathname for package in _CHATTY_PACKAGES)


def quiet_tensorflow(argv: Optional[Sequence[str]] = None) -> None:
    """Keeps the console readable; call it before TensorFlow is imported. Nothing changes with --verbose.

    - ``TF_CPP_MIN_LOG_LEVEL`` (unless the user set it): 2 hides TensorFlow's C++ INFO and WARNING lines
      (oneDNN, CPU features, ...); on a machine without a GPU device it is 3, which also hides the
      ``failed call to cuInit`` ERROR line that TensorFlow prints when it probes for CUDA.
    - INFO lines logged from TensorFlow's and Keras' Python sources are dropped (ours stay).
    - Deprecation and future warnings raised inside TensorFlow and Keras are ignored.
    """
    if verbose_requested(argv):
        return
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2" if has_gpu_device() else "3"
    logging.get_absl_handler().addFilter(_DropLibraryInfo())
    std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(tensorflow|tf_keras|keras)(\.|$)")


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception types that mean "bad input or flags", not "bug" (an ImportError: a missing optional
    package, named with its install command)."""
    types: list[type[BaseException]] = [ValueError, OSError, ImportError, app.UsageError, flags.Error]
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        types += [tf.errors.NotFoundError, tf.errors.PermissionDeniedError, tf.errors.AlreadyExistsError,
                  tf.errors.FailedPreconditionError, tf.errors.DataLossError]
    return tuple(types)


def error_line(error: BaseException) -> str:
    """``error: <message>`` on one line (the message's lines joined, TensorFlow's op context dropped)."""
    message = getattr(error, "message", None)  # TensorFlow's OpError: the message without op context
    text = (message if isinstance(message, str) else str(error)).strip() or type(error).__name__
    return "error: " + " ".join(line.strip() for line in text.splitlines() if line.strip())


def run_main(main: Callable[[list[str]], Any], argv: Optional[list[str]] = None) -> None:
    """`absl.app.run(main)` with this project's error convention (see the module docstring).

    Exits 2 after a user error, 130 after Ctrl-C, with ``main``'s return value otherwise.
    """

    def guarded(args: list[str]) -> Any:
        try:
            return main(args)
        except KeyboardInterrupt:
            if flags.FLAGS.verbose:
                raise
            print("error: interrupted", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        except user_error_types() as error:
            if flags.FLAGS.verbose:
                raise
            print(error_line(error), file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)

    _list_flags_in_help(getattr(main, "func", main).__module__)
    try:
        app.run(guarded, argv=argv)
    except SystemExit as done:
        # absl exits 1 after printing the help; asking for help is not a failure.
        if done.code == 1 and any(a in _HELP_FLAGS for a in (argv or sys.argv)[1:]):
            sys.exit(0)
        raise


_HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml")


# The module that defines the flags generated from settings dataclasses (`define_flags`).
_GENERATED_FLAGS_MODULE = "albert_tf.core.flags"


def _list_flags_in_help(module_name: str) -> None:
    """Makes `--help` list the flags of `module_name` (the program's module in `albert_tf.scripts`) and the
    ones generated for it from its settings (absl attributes those to `albert_tf.core.flags`).

    absl's `--help` lists the key flags of the file that was started (`sys.argv[0]`): the root wrapper
    scripts and the console commands only import the module that defines the flags.
    """
    started = sys.argv[0]
    for module in (module_name, _GENERATED_FLAGS_MODULE):
        for flag in flags.FLAGS.get_key_flags_for_module(module):
            flags.FLAGS.register_key_flag_for_module(started, flag)


def check_choice(flag: str, value: Optional[str], choices: Iterable[str],
                 aliases: Optional[dict[str, str]] = None) -> str:
    """Returns the canonical (lower-case) choice for ``--flag=value``, before any heavy import.

    Raises:
      UserError: a missing or unknown value, listing the valid ones.
    """
    choices = list(choices)
    key = (value or "").strip().lower()
    key = (aliases or {}).get(key, key)
    if key not in choices:
        alias_text = f" (aliases: {', '.join(aliases)})" if aliases else ""
        raise UserError(f"--{flag} must be one of {', '.join(choices)}{alias_text}; got {value!r}.")
    return key
