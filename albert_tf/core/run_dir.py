"""Output directories: checked before any work, and never reused for an incompatible run.

`prepare_output_dir` runs first in every script that writes into (and resumes from) an output directory:

1. ``--output_dir`` must be a directory we can write (not a file, not read-only): checked at once.
2. The run's compatibility facts (model config, vocabulary hash, sequence length, task, ...) are kept in
   ``<output_dir>/run_settings.json``. A rerun with the same facts resumes; a rerun with other facts stops
   with a message naming what differs and saying to pick a new ``--output_dir`` (or to pass
   ``--overwrite_output_dir``, which empties the directory first).
3. A directory holding a previous run's outputs but no ``run_settings.json`` (an older version) cannot be
   checked: it is refused the same way.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Any, Mapping, Optional

SETTINGS_FILE = "run_settings.json"
# Outputs that show a directory holds a previous run (checkpoints in either layout, evaluation results).
_RUN_MARKERS = ("checkpoint", "tf2_checkpoints", "eval_results.txt", "best_trial.txt")


class OutputDirError(ValueError):
    """An unusable output directory, or one that holds an incompatible run."""


def _json_ready(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON round trip, so that tuples and the like compare equal to what is read back."""
    return json.loads(json.dumps(dict(settings), sort_keys=True, default=str))


def check_writable_dir(output_dir: str, flag: str = "--output_dir") -> None:
    """Creates ``output_dir`` if needed and checks that files can be written there.

    Raises:
      OutputDirError: it (or a parent) is a file, or it cannot be created or written.
    """
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputDirError(f"{flag}={output_dir} is a file, not a directory. Pass a directory path "
                             "(it is created if missing).")
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise OutputDirError(f"{flag}={output_dir} cannot be created ({e.strerror or e}). Pass a directory "
                             "you can write to.") from None
    probe = os.path.join(output_dir, f".write_test.{os.getpid()}")
    try:
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise OutputDirError(f"{flag}={output_dir} is not writable ({e.strerror or e}). Pass a directory "
                             "you can write to.") from None


def read_settings(output_dir: str) -> Optional[dict[str, Any]]:
    """The recorded settings of ``output_dir``, or None when it has none."""
    path = os.path.join(output_dir, SETTINGS_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            recorded = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise OutputDirError(f"{path} is damaged ({e}). Delete it only if you are sure the directory "
                             "holds a run with the current settings, or pick a new --output_dir.") from None
    return recorded if isinstance(recorded, dict) else None


def write_settings(output_dir: str, settings: Mapping[str, Any]) -> None:
    """Writes ``<output_dir>/run_settings.json`` atomically."""
    path = os.path.join(output_dir, SETTINGS_FILE)
    temp = f"{path}.tmp-{os.getpid()}"
    with open(temp, "w", encoding="utf-8") as f:
        json.dump(_json_ready(settings), f, indent=1, sort_keys=True)
    os.replace(temp, path)


def settings_differences(recorded: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    """``"key: recorded X, now Y"`` for every key present in both that differs (nested dicts by field)."""
    diffs = []
    for key in sorted(set(recorded) & set(settings)):
        old, new = recorded[key], settings[key]
        if isinstance(old, dict) and isinstance(new, dict):
            diffs += [f"{key}.{d}" for d in settings_differences(old, new)]
        elif old != new:
            diffs.append(f"{key}: recorded {old!r}, now {new!r}")
    return diffs


def _empty_dir(output_dir: str) -> None:
    for name in os.listdir(output_dir):
        path = os.path.join(output_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def prepare_output_dir(output_dir: str, settings: Mapping[str, Any], overwrite: bool = False,
                       flag: str = "--output_dir", overwrite_flag: str = "--overwrite_output_dir") -> bool:
    """Checks ``output_dir`` before any work and records ``settings`` there (see the module docstring).

    Args:
      output_dir: the run's output directory (created if missing). Remote paths (``gs://...``) are not
        checked (returns False): the checks use the local file system.
      settings: the facts a resumed run must share with the earlier one (JSON-serialisable): e.g.
        ``{"task": "rte", "albert_config": config.to_dict(), "vocab_sha256": ..., "max_seq_length": 128}``.
        Keys recorded earlier but absent now (or new now) are not compared.
      overwrite: empty a directory of an incompatible (or unrecorded) earlier run instead of stopping.
      flag, overwrite_flag: the flag names used in messages.

    Returns:
      True when the directory holds an earlier run with the same settings (the run resumes), else False.

    Raises:
      OutputDirError: not a writable directory, or an incompatible / unrecorded earlier run without
        ``overwrite``.
    """
    if "://" in output_dir:
        return False
    check_writable_dir(output_dir, flag)
    settings = _json_ready(settings)
    recorded = read_settings(output_dir)
    if recorded is None:
        earlier = [m for m in _RUN_MARKERS if os.path.exists(os.path.join(output_dir, m))]
        if earlier and not overwrite:
            raise OutputDirError(
                f"{flag}={output_dir} holds an earlier run ({', '.join(earlier)}) without {SETTINGS_FILE}, so "
                f"its settings cannot be checked. Pick a new {flag}, or pass {overwrite_flag} to delete its "
                "contents and start over.")
        if earlier:
            _empty_dir(output_dir)
        write_settings(output_dir, settings)
        return False
    diffs = settings_differences(recorded, settings)
    if not diffs:
        write_settings(output_dir, {**recorded, **settings})
        return True
    if not overwrite:
        shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        raise OutputDirError(
            f"{flag}={output_dir} holds a run with other settings ({shown}); resuming it would mix the two. "
            f"Pick a new {flag}, or pass {overwrite_flag} to delete its contents and start over.")
    _empty_dir(output_dir)
    write_settings(output_dir, settings)
    return False
