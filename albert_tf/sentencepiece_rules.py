"""SentencePiece model files and the original's piece and character rules, shared by the Python tokenizer
(`albert_tf.tokenization`) and the in-graph one (`albert_tf.in_graph_tokenizer`), so that both apply exactly
the same definitions and neither imports the other.
"""
from __future__ import annotations

import os
import unicodedata

import sentencepiece as spm

from albert_tf import fileio

SPIECE_UNDERLINE = "\u2581"
SPM_FLAG_HINT = "--spm_model_file"
PathLike = str | os.PathLike


def ends_with_digit_comma(piece: str) -> bool:
    """The original's trigger for the comma rule: len > 1, last char ``,``, second-to-last a digit."""
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


def split_digit_comma(sp_model: spm.SentencePieceProcessor, piece: str) -> list[str]:
    """Re-encodes a "digits," piece as digit pieces plus ``,`` (the intended comma rule).

    Args:
      sp_model: the SentencePiece processor.
      piece: a piece for which :func:`ends_with_digit_comma` holds, e.g. ``"▁1990,"`` or ``"90,"``.

    Returns:
      The replacement pieces, e.g. ``["▁", "1990", ","]`` for ``"▁1990,"`` (model-dependent).
    """
    cur_pieces = sp_model.EncodeAsPieces(piece[:-1].replace(SPIECE_UNDERLINE, ""))
    # SentencePiece prefixes the re-encoded text with "▁"; a piece in the middle of a word must not
    # gain a word boundary, so that "▁" goes (the original meant to do this; py3 never did).
    if piece[0] != SPIECE_UNDERLINE and cur_pieces[0].startswith(SPIECE_UNDERLINE):
        if len(cur_pieces[0]) == 1:
            cur_pieces = cur_pieces[1:]
        else:
            cur_pieces[0] = cur_pieces[0][1:]
    cur_pieces.append(piece[-1])
    return cur_pieces


def read_spm_model(spm_model_file: PathLike) -> bytes:
    """Reads a SentencePiece model file (local or any ``tf.io.gfile`` path) and returns its bytes.

    Raises:
      FileNotFoundError: naming the path and the ``--spm_model_file`` flag.
    """
    path = os.fspath(spm_model_file)
    if not fileio.exists(path) or fileio.isdir(path):
        raise FileNotFoundError(
            f"SentencePiece model file not found: {path!r}. Pass the release's 30k-clean.model with "
            f"{SPM_FLAG_HINT}.")
    with fileio.open_file(path, "rb") as reader:
        return reader.read()


def load_spm_model(model_proto: bytes, source: str = "the given bytes") -> spm.SentencePieceProcessor:
    """Builds a SentencePiece processor from serialized model bytes; ``source`` names them in errors."""
    sp_model = spm.SentencePieceProcessor()
    try:
        sp_model.LoadFromSerializedProto(model_proto)
    except (RuntimeError, OSError, TypeError) as err:
        raise ValueError(f"{source} is not a SentencePiece model ({err}). {SPM_FLAG_HINT} expects a "
                         ".model file such as 30k-clean.model (not the .vocab file).") from err
    return sp_model


def char_class(predicate) -> str:
    """An RE2 character class (without brackets) of every code point for which ``predicate`` holds.

    Built from Python's ``unicodedata`` so that the graph uses exactly the Python definitions.
    """
    ranges: list[list[int]] = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or not predicate(chr(cp)):
            continue
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(f"\\x{{{lo:x}}}" if lo == hi else f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in ranges)


_REGEX_CLASSES: tuple[str, str, str] | None = None


def regex_classes() -> tuple[str, str, str]:
    """RE2 classes of ``str.isspace`` characters, of those except " ", and of the characters with
    ``unicodedata.combining(c) != 0`` (computed once; about 0.3 s)."""
    global _REGEX_CLASSES
    if _REGEX_CLASSES is None:
        _REGEX_CLASSES = (char_class(str.isspace), char_class(lambda c: c.isspace() and c != " "),
                          char_class(unicodedata.combining))
    return _REGEX_CLASSES
