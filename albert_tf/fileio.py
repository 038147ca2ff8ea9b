"""File access that imports TensorFlow only for paths that need it.

Local paths go through Python's own `os`/`glob`/`open`; a URL-style path (``gs://``, ``hdfs://``,
``s3://``, ... any ``scheme://``) goes through ``tf.io.gfile``, which is imported on first such use. Tools
that only touch local files (tokenizers, the pretraining-data writer) therefore start without the
TensorFlow import (about 4 CPU-seconds), with the same results as ``tf.io.gfile`` on local files.
"""
from __future__ import annotations

import glob as _glob
import os
from typing import IO, Callable, Sequence


def is_local(path: str | os.PathLike) -> bool:
    """Whether `path` is a plain local path (no ``scheme://`` prefix; ``file://`` counts as remote)."""
    return "://" not in os.fspath(path)


def _gfile():
    import tensorflow as tf  # noqa: PLC0415  (only for non-local paths)

    return tf.io.gfile


def exists(path: str | os.PathLike) -> bool:
    return os.path.exists(path) if is_local(path) else _gfile().exists(os.fspath(path))


def isdir(path: str | os.PathLike) -> bool:
    return os.path.isdir(path) if is_local(path) else _gfile().isdir(os.fspath(path))


def listdir(path: str | os.PathLike) -> list[str]:
    return os.listdir(path) if is_local(path) else _gfile().listdir(os.fspath(path))


def makedirs(path: str | os.PathLike) -> None:
    """Creates `path` and its parents; an existing directory is fine."""
    if is_local(path):
        os.makedirs(path, exist_ok=True)
    else:
        _gfile().makedirs(os.fspath(path))


def glob(pattern: str) -> list[str]:
    """Paths matching `pattern`, sorted (hidden files included, as ``tf.io.gfile.glob``)."""
    if is_local(pattern):
        return sorted(_glob.glob(pattern, include_hidden=True))
    return sorted(_gfile().glob(pattern))


def open_file(path: str | os.PathLike, mode: str = "rb") -> IO:
    """Opens `path` (binary modes ``rb``/``wb``, or text ``r``/``w`` as UTF-8)."""
    if is_local(path):
        return open(path, mode) if "b" in mode else open(path, mode, encoding="utf-8")
    return _gfile().GFile(os.fspath(path), mode)


def expand_file_patterns(patterns: str | Sequence[str], what: str = "input_file",
                         match: Callable[[str], list[str]] = glob) -> list[str]:
    """Expands comma-separated glob patterns into a sorted, de-duplicated file list.

    `match` lists the paths of one pattern (default: `glob`; the Beam pipeline passes Beam's filesystems).

    Raises:
      FileNotFoundError: naming every pattern that matched nothing, so a typo never yields an empty run.
    """
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p.strip()]
    files: list[str] = []
    missing = []
    for pattern in patterns:
        matched = sorted(match(pattern.strip()))
        if not matched:
            missing.append(pattern)
        files.extend(m for m in matched if m not in files)
    if missing:
        raise FileNotFoundError(
            f"--{what}: no file matches {', '.join(repr(m) for m in missing)}. "
            "Check the path or glob pattern.")
    return files
