"""Fingerprints of cached feature files, so that a cache is never reused for other inputs.

Every cached TFRecord (GLUE, SQuAD, RACE, pretraining eval) gets a sidecar
``<feature file>.fingerprint.json`` recording what it was built from:

- ``feature_code_version``: `FEATURE_CODE_VERSION`, raised whenever a feature writer's output changes;
- ``tokenizer``: the SentencePiece model (or WordPiece vocabulary) file's name, size and SHA-256;
- ``sources``: every input file's name, size and SHA-256;
- any other settings the caller passes (casing, lengths, task, split, ...).

`ensure_features` compares the sidecar with the fingerprint of the current inputs before the cache is
used: a fresh cache is reused, a stale one is rebuilt (logging what differs) or refused with a message
(``rebuild=False``). A cache without a sidecar (written by an older version, or by other code) has an
unknown provenance and is refused with a message naming the file and the fix. A build that was
interrupted leaves a sidecar marked ``"complete": false`` and is rebuilt.

    expected = cache.fingerprint(tokenizer_file=spm_model_file, sources=[tsv_path], task="rte",
                                 split="train", do_lower_case=True, max_seq_length=128)
    cache.ensure_features(path, expected, lambda: write_the_records(path))
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Callable, Mapping, Optional, Sequence

import tensorflow as tf
from absl import logging

# Raise whenever any feature writer (GLUE, SQuAD, RACE, pretraining) changes the bytes it writes.
FEATURE_CODE_VERSION = 1
SIDECAR_SUFFIX = ".fingerprint.json"
_HASH_CHUNK = 1 << 22


_FIX = "Delete the file (it will be rebuilt) or point the cache flag to another folder."


class StaleCacheError(ValueError):
    """A cached feature file built from other inputs or settings (or of unknown provenance).

    Args:
      path: the feature file.
      reason: what is wrong with it (the message adds the file and the fix).
    """

    def __init__(self, path: str, reason: str):
        super().__init__(f"Cached features {path} {reason}. {_FIX}")
        self.path = path
        self.reason = reason


def sidecar_path(path: str) -> str:
    """The fingerprint file of the feature file ``path``."""
    return path + SIDECAR_SUFFIX


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes (local or any `tf.io.gfile` path).

    Raises:
      FileNotFoundError: the file does not exist.
    """
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: file not found.")
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _file_facts(path: str) -> dict[str, Any]:
    return {"name": os.path.basename(path), "size": tf.io.gfile.stat(path).length,
            "sha256": file_sha256(path)}


def tokenizer_file(tokenizer: Any) -> str:
    """The file a `FullTokenizer` was built from: its SentencePiece model, else its vocabulary.

    Raises:
      ValueError: the tokenizer names no file (then its cache cannot be fingerprinted).
    """
    path = getattr(tokenizer, "spm_model_file", None) or getattr(tokenizer, "vocab_file", None)
    if not path:
        raise ValueError("The tokenizer was not built from a file (spm_model_file or vocab_file), so "
                         "feature caches built with it cannot be fingerprinted.")
    return os.fspath(path)


def fingerprint(*, tokenizer_file: Optional[str] = None, sources: Sequence[str] = (),
                **settings: Any) -> dict[str, Any]:
    """What a feature file is built from, as a JSON-ready dict.

    Args:
      tokenizer_file: the SentencePiece model or WordPiece vocabulary (hashed).
      sources: the input files (each hashed).
      **settings: every other input of the writer (``do_lower_case``, ``max_seq_length``, ``task``,
        ``split``, ...); JSON-serialisable values.

    Raises:
      FileNotFoundError: the tokenizer file or a source file is missing.
    """
    facts: dict[str, Any] = {"feature_code_version": FEATURE_CODE_VERSION}
    if tokenizer_file is not None:
        facts["tokenizer"] = _file_facts(tokenizer_file)
    facts["sources"] = [_file_facts(p) for p in sources]
    # A JSON round trip so that tuples, numpy scalars and the like compare equal to what is read back.
    facts.update(json.loads(json.dumps(settings, sort_keys=True, default=str)))
    return facts


def read_fingerprint(path: str) -> Optional[dict[str, Any]]:
    """The sidecar of feature file ``path``, or None when there is none (or it cannot be parsed)."""
    side = sidecar_path(path)
    if not tf.io.gfile.exists(side):
        return None
    try:
        with tf.io.gfile.GFile(side, "r") as f:
            recorded = json.load(f)
    except (ValueError, UnicodeDecodeError):
        return None
    return recorded if isinstance(recorded, dict) else None


def write_fingerprint(path: str, facts: Mapping[str, Any], complete: bool = True) -> None:
    """Writes the sidecar of feature file ``path`` atomically (temp file, then rename)."""
    side = sidecar_path(path)
    temp = f"{side}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(temp, "w") as f:
        json.dump({**facts, "complete": complete}, f, indent=1, sort_keys=True)
    tf.io.gfile.rename(temp, side, overwrite=True)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def differences(recorded: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """``"key: cached X, now Y"`` for every fact that differs (keys of either side)."""
    diffs = []
    for key in sorted(set(recorded) | set(expected)):
        if key == "complete":
            continue
        old, new = recorded.get(key), expected.get(key)
        if old != new:
            if key in ("tokenizer", "sources"):
                diffs.append(f"{key}: cached {_short(old)}, now {_short(new)}")
            else:
                diffs.append(f"{key}: cached {old!r}, now {new!r}")
    return diffs


def check_cache(path: str, expected: Mapping[str, Any]) -> str:
    """Whether the cached feature file ``path`` may be reused for inputs fingerprinted as ``expected``.

    Returns:
      "fresh" (built from exactly these inputs) or "missing" (no feature file).

    Raises:
      StaleCacheError: the file was built from other inputs, its build was interrupted, or it has no
        fingerprint (provenance unknown); the message names the file, what differs and the fix.
    """
    if not tf.io.gfile.exists(path):
        return "missing"
    recorded = read_fingerprint(path)
    if recorded is None:
        raise StaleCacheError(path, f"have no fingerprint ({os.path.basename(sidecar_path(path))}): they were "
                              "written by an older version or other code, so it is unknown which tokenizer, "
                              "casing, lengths and data they hold")
    if not recorded.get("complete", False):
        raise StaleCacheError(path, "are incomplete: their build was interrupted")
    diffs = differences(recorded, expected)
    if diffs:
        raise StaleCacheError(path, f"were built from other inputs ({'; '.join(diffs)})")
    return "fresh"


def ensure_features(path: str, expected: Mapping[str, Any], build_fn: Callable[[], Any],
                    rebuild: bool = True, log: Callable[[str], None] = logging.info) -> str:
    """Makes sure ``path`` holds features of the inputs fingerprinted as ``expected``.

    Args:
      path: the cached feature file.
      expected: `fingerprint(...)` of the current inputs.
      build_fn: writes the feature file at ``path`` (called at most once).
      rebuild: rebuild a stale or interrupted cache (logging what differs); False raises instead. A file
        without any fingerprint is always refused (its provenance is unknown).
      log: receives the "reusing" / "rebuilding" messages.

    Returns:
      "fresh" (reused), "built" (there was none) or "rebuilt" (it was stale).

    Raises:
      StaleCacheError: see `check_cache`; with ``rebuild=True`` only for a file without a fingerprint.
    """
    try:
        state = check_cache(path, expected)
    except StaleCacheError as e:
        if not rebuild or read_fingerprint(path) is None:
            raise
        log(f"Rebuilding cached features {path}: they {e.reason}.")
        state = "stale"
    if state == "fresh":
        log(f"Using cached features {path} (fingerprint matches).")
        return "fresh"
    build_with_fingerprint(path, expected, build_fn)
    return "built" if state == "missing" else "rebuilt"


def build_with_fingerprint(path: str, facts: Mapping[str, Any], build_fn: Callable[[], Any]) -> Any:
    """Runs ``build_fn`` (which writes feature file ``path``) and records ``facts`` as its fingerprint.

    The sidecar is marked incomplete while ``build_fn`` runs, so an interrupted build is never taken for a
    finished one. Returns what ``build_fn`` returns.
    """
    write_fingerprint(path, facts, complete=False)
    result = build_fn()
    write_fingerprint(path, facts, complete=True)
    return result
