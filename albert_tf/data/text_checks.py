"""Is this input text? The check every text reader runs before it tokenizes a file.

A file is taken for binary (an executable, an archive, a UTF-16 file, a TFRecord passed as text) when,
in its first `SAMPLE_BYTES`, more than `MAX_SUSPICIOUS_SHARE` of the bytes are NUL or other control
characters (tab, line ends, form feed and vertical tab excepted) or are not valid UTF-8. Real text with
a few stray Latin-1 bytes or control characters passes (those are handled line by line by the readers).
"""
from __future__ import annotations

# Bytes never found in text files, apart from rare strays: C0 controls except \t \n \v \f \r, and DEL.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13)) + b"\x7f"
SAMPLE_BYTES = 1 << 20
MAX_SUSPICIOUS_SHARE = 0.3


class NotTextError(ValueError):
    """An input that should be text is binary or mostly undecodable; the message names it and the fix."""


def suspicious_share(data: bytes) -> float:
    """The share of control bytes and of bytes that are not valid UTF-8 in ``data[:SAMPLE_BYTES]``.

    Every maximal invalid UTF-8 sequence counts once (Python's ``errors="replace"``), which for random
    high bytes is about one per byte. Returns 0.0 for empty data.
    """
    sample = data[:SAMPLE_BYTES]
    if not sample:
        return 0.0
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    undecodable = sample.decode("utf-8", errors="replace").count("\ufffd") - sample.count(
        "\ufffd".encode("utf-8"))
    return (controls + undecodable) / len(sample)


def check_text(data: bytes, source: str, opt_out: str | None = None) -> None:
    """Raises `NotTextError` when ``data`` looks binary (see the module docstring).

    Args:
      data: the file's bytes.
      source: names the input in the message (e.g. ``"--input_file /bin/ls"``).
      opt_out: the flag that skips this check, mentioned in the message (None: none exists).
    """
    share = suspicious_share(data)
    if share <= MAX_SUSPICIOUS_SHARE:
        return
    nul = b"\x00" in data[:SAMPLE_BYTES]
    hint = (" It contains NUL bytes: is it a binary file, or UTF-16 text (re-save it as UTF-8)?"
            if nul else " Re-save it as UTF-8 text.")
    escape = f" Pass {opt_out} if you really mean to read it as text." if opt_out else ""
    raise NotTextError(f"{source} does not look like text: {share:.0%} of its first "
                       f"{min(len(data), SAMPLE_BYTES):,} bytes are control characters or not valid "
                       f"UTF-8.{hint}{escape}")
