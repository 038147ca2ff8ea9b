"""Tokenization identical to the original ALBERT release, in Python and inside the TensorFlow graph.

Two paths, as in the original ``tokenization.py``:

* SentencePiece (the released English models, ``30k-clean.model``): callers run
  :func:`preprocess_text` (whitespace collapse, NFKD, accent removal, optional lowercasing; no quote
  normalisation), then :func:`encode_pieces` / :func:`encode_ids`, which split "digits," pieces into
  digit pieces plus a separate ``,`` piece. ``FullTokenizer.tokenize`` does *not* preprocess.
* WordPiece (``vocab.txt``, the Chinese models): BERT's :class:`BasicTokenizer` then greedy
  longest-match :class:`WordpieceTokenizer`.

The comma rule follows the original's *intended* behaviour (what it does under Python 2): when a piece
like ``90,`` that does not start a word is re-encoded, the leading ``▁`` that SentencePiece adds is
dropped. Under Python 3 the original compares ``str`` with ``bytes`` and never drops it (upstream
issue #85); albert-tf deliberately does not reproduce that bug.

:class:`InGraphTokenizer` is a ``tf_keras`` layer doing ``preprocess_text`` + ``encode_ids`` with
TensorFlow / tensorflow-text graph ops only, so it can live inside a SavedModel. It is defined in
``albert_tf.in_graph_tokenizer`` and loaded on first use of ``tokenization.InGraphTokenizer``, so that
the Python tokenizers (and the tools built on them, such as the pretraining-data writer) do not import
TensorFlow.
"""
from __future__ import annotations

import collections
import os
import unicodedata
from typing import Any, Iterable, Mapping

import sentencepiece as spm

from albert_tf import fileio
from albert_tf.sentencepiece_rules import (SPIECE_UNDERLINE, SPM_FLAG_HINT, PathLike,  # noqa: F401 (public here)
                                          ends_with_digit_comma, load_spm_model, read_spm_model,
                                          split_digit_comma)

_PREFERRED_SPM_MODEL = "30k-clean.model"
_WORDPIECE_VOCAB = "vocab.txt"



# ----------------------------------------------------------------------------------------------
# Text helpers
# ----------------------------------------------------------------------------------------------

def convert_to_unicode(text: str | bytes) -> str:
    """Returns ``text`` as ``str``; bytes are decoded as UTF-8 with invalid bytes *ignored* (original)."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")
    raise ValueError(f"Unsupported string type: {type(text).__name__} (expected str or bytes).")


def printable_text(text: str | bytes) -> str:
    """Returns ``text`` in a form suitable for printing or logging (on Python 3: ``str``)."""
    return convert_to_unicode(text)


def _decode_strict(text: str | bytes, what: str) -> str:
    """Decodes bytes as UTF-8, raising a ValueError that names ``what`` and the bad byte offset."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{what} is not valid UTF-8 (byte {err.start}: {text[err.start:err.start + 4]!r}). "
                "Decode the input yourself (e.g. with the right encoding, or errors='replace') "
                "and pass a str.") from err
    raise ValueError(f"{what} must be str or bytes, got {type(text).__name__}.")


def preprocess_text(inputs: str | bytes, remove_space: bool = True, lower: bool = False,
                    keep_accents: bool = False) -> str:
    """Normalises text before SentencePiece, exactly as the original ``preprocess_text``.

    Args:
      inputs: one text (``str``, or UTF-8 ``bytes``).
      remove_space: strip and collapse every whitespace run (``str.split``) into one space.
      lower: apply ``str.lower()`` at the end.
      keep_accents: skip the NFKD normalisation and accent removal (Hugging Face's ``keep_accents``;
        the original always removes them).

    Returns:
      The text after NFKD normalisation with every character of non-zero canonical combining class
      (``unicodedata.combining``) removed, i.e. accents dropped (unless ``keep_accents``). No quote
      normalisation.

    Raises:
      ValueError: bytes that are not valid UTF-8.
    """
    outputs = _decode_strict(inputs, "preprocess_text input")
    if remove_space:
        outputs = " ".join(outputs.strip().split())
    if not keep_accents:
        outputs = unicodedata.normalize("NFKD", outputs)
        outputs = "".join(c for c in outputs if not unicodedata.combining(c))
    if lower:
        outputs = outputs.lower()
    return outputs


# The original's normalisation options; a tokenizer from a Hugging Face directory may ask for others.
DEFAULT_TEXT_OPTIONS = {"remove_space": True, "keep_accents": False}


def text_options(tokenizer: Any) -> dict[str, bool]:
    """The ``preprocess_text`` options of ``tokenizer`` that differ from the original's (``remove_space``,
    ``keep_accents``; see ``FullTokenizer.from_transformers``): empty for a release's tokenizer, for
    WordPiece, and for anything without those attributes. Pass them on with ``**``; they also go into
    feature-cache fingerprints, which stay unchanged for the original's options."""
    if getattr(tokenizer, "sp_model", None) is None:
        return {}
    return {k: bool(getattr(tokenizer, k, v)) for k, v in DEFAULT_TEXT_OPTIONS.items()
            if bool(getattr(tokenizer, k, v)) != v}


def in_graph_spm_model(tokenizer: Any, spm_model_file: str | None, what: str) -> str | None:
    """``spm_model_file`` for a raw-text export (``InGraphTokenizer``, which normalises text as the
    original), or None, with a warning naming ``what`` is not exported, when ``tokenizer`` asks for other
    ``preprocess_text`` options (a Hugging Face model with ``keep_accents`` / ``remove_space=False``)."""
    options = text_options(tokenizer)
    if spm_model_file and options:
        from absl import logging

        logging.warning("%s is not exported: its in-graph tokenizer removes accents and collapses spaces as "
                        "the original, but this model's tokenizer asks for %s.", what, options)
        return None
    return spm_model_file


def encode_pieces(sp_model: spm.SentencePieceProcessor, text: str | bytes,
                  return_unicode: bool = True, sample: bool = False) -> list[str]:
    """Splits (already preprocessed) text into SentencePiece pieces, applying the comma rule.

    Args:
      sp_model: a loaded ``sentencepiece.SentencePieceProcessor``.
      text: the text (``str`` or UTF-8 ``bytes``); it is *not* preprocessed here.
      return_unicode: kept for the original signature; on Python 3 the original always returns ``str``
        pieces whatever this says, and so does this function.
      sample: use subword regularisation (``SampleEncodeAsPieces(text, 64, 0.1)``), as the original.

    Returns:
      The list of pieces (``str``).
    """
    del return_unicode  # Python 3 pieces are always str, as in the original under Python 3.
    text = _decode_strict(text, "encode_pieces input")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate, e.g. from json "\ud800": not valid Unicode
        raise ValueError(f"encode_pieces input has a lone surrogate (U+{ord(text[e.start]):04X}) at character "
                         f"{e.start}: it is not valid Unicode text; fix or drop that input.") from None
    pieces = sp_model.SampleEncodeAsPieces(text, 64, 0.1) if sample else sp_model.EncodeAsPieces(text)
    new_pieces: list[str] = []
    for piece in pieces:
        if ends_with_digit_comma(piece):
            new_pieces.extend(split_digit_comma(sp_model, piece))
        else:
            new_pieces.append(piece)
    return new_pieces


def encode_ids(sp_model: spm.SentencePieceProcessor, text: str | bytes, sample: bool = False) -> list[int]:
    """Ids of :func:`encode_pieces` (``PieceToId`` per piece; unknown pieces give the unk id)."""
    pieces = encode_pieces(sp_model, text, return_unicode=False, sample=sample)
    return [sp_model.PieceToId(piece) for piece in pieces]


def whitespace_tokenize(text: str) -> list[str]:
    """Strips ``text`` and splits it on whitespace runs (``str.split``)."""
    text = text.strip()
    if not text:
        return []
    return text.split()


def is_start_piece(piece: str, spm_mode: bool) -> bool:
    """Whether ``piece`` starts a new word for whole-word masking (original ``_is_start_piece_*``).

    SentencePiece mode (``_is_start_piece_sp``): a start if the piece begins with ``▁`` or ``<``, is one
    of the special punctuation characters ``!"#$%&()*+,-./:;?@[\\]^_`{|}~``, or contains any
    character that, lowercased, is neither an ASCII letter nor such a special character. (The
    original also adds € and £ as *bytes*, which never equal a ``str`` on Python 3; they are therefore
    not special here, so "€" is a start only through the last rule.)
    WordPiece mode (``_is_start_piece_bert``): a start unless it begins with ``##``.
    """
    if not spm_mode:
        return not piece.startswith("##")
    if piece.startswith(SPIECE_UNDERLINE) or piece.startswith("<") or piece in _SPECIAL_PIECES:
        return True
    return not all(c.lower() in _ENGLISH_OR_SPECIAL for c in piece)


_SPECIAL_PIECES = frozenset('!"#$%&()*+,-./:;?@[\\]^_`{|}~')
_ENGLISH_OR_SPECIAL = frozenset("abcdefghijklmnopqrstuvwxyz") | _SPECIAL_PIECES


# ----------------------------------------------------------------------------------------------
# Vocabularies and the full tokenizer
# ----------------------------------------------------------------------------------------------

def load_vocab(vocab_file: PathLike) -> "collections.OrderedDict[str, int]":
    """Loads a WordPiece vocabulary: one token per line, id = order of first appearance.

    Each line keeps its first whitespace-separated field; a blank line stands for ``" "``; duplicates
    keep their first id (ids stay consecutive, as in the original's ``vocab[token] = len(vocab)``).

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: the file is not a text vocabulary (invalid UTF-8 or binary control bytes, e.g. a
        SentencePiece ``.model`` passed as ``--vocab_file``); the message names the file and line.
    """
    path = os.fspath(vocab_file)
    if not fileio.exists(path):
        raise FileNotFoundError(f"Vocabulary file not found: {path!r} (--vocab_file).")
    with fileio.open_file(path, "rb") as reader:
        raw = reader.read()
    vocab: collections.OrderedDict[str, int] = collections.OrderedDict()
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # The text after the final newline is not a line.
    for line_no, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _not_a_vocab_error(path, line_no, f"invalid UTF-8 at byte {err.start}") from err
        binary = [c for c in text if unicodedata.category(c) == "Cc" and c not in "\t\r\x0b\x0c"]
        if binary:
            raise _not_a_vocab_error(path, line_no, f"control character {binary[0]!r}")
        token = text.strip().split()[0] if text.strip() else " "
        if token not in vocab:
            vocab[token] = len(vocab)
    return vocab


def _not_a_vocab_error(path: str, line_no: int, reason: str) -> ValueError:
    hint = (" It looks like a SentencePiece model: pass it as --spm_model_file instead."
            if path.endswith(".model") or "control character" in reason else "")
    return ValueError(f"{path!r} is not a text vocabulary (line {line_no}: {reason}); a vocab file has "
                      f"one UTF-8 token per line.{hint}")


def convert_by_vocab(vocab: Mapping, items: Iterable) -> list:
    """Maps each item through ``vocab`` (token->id or id->token); unknown items raise KeyError."""
    output = []
    for item in items:
        if item not in vocab:
            raise KeyError(f"{item!r} is not in the vocabulary ({len(vocab)} entries).")
        output.append(vocab[item])
    return output


def convert_tokens_to_ids(vocab: Mapping[str, int], tokens: Iterable[str]) -> list[int]:
    """Plain dictionary lookup of tokens (the WordPiece path)."""
    return convert_by_vocab(vocab, tokens)


def convert_ids_to_tokens(inv_vocab: Mapping[int, str], ids: Iterable[int]) -> list[str]:
    """Plain dictionary lookup of ids (the WordPiece path)."""
    return convert_by_vocab(inv_vocab, ids)


class FullTokenizer:
    """The original ``FullTokenizer``: SentencePiece when ``spm_model_file`` is given, else WordPiece.

    Attributes:
      vocab: dict piece -> id. inv_vocab: dict id -> piece.
      sp_model: the SentencePiece processor, or None in WordPiece mode.
      remove_space, keep_accents: the ``preprocess_text`` options of this model's text (True, False
        as the original; a Hugging Face directory may set others, see ``from_transformers``).
    """

    def __init__(self, vocab_file: PathLike | None = None, do_lower_case: bool = True,
                 spm_model_file: PathLike | None = None):
        self.vocab_file = vocab_file
        self.spm_model_file = spm_model_file
        self.do_lower_case = do_lower_case  # Ignored in SentencePiece mode, as in the original.
        self.remove_space = DEFAULT_TEXT_OPTIONS["remove_space"]
        self.keep_accents = DEFAULT_TEXT_OPTIONS["keep_accents"]
        self.sp_model: spm.SentencePieceProcessor | None = None
        if spm_model_file:
            self.sp_model = load_spm_model(read_spm_model(spm_model_file), repr(os.fspath(spm_model_file)))
            self.vocab = {self.sp_model.IdToPiece(i): i for i in range(self.sp_model.GetPieceSize())}
        elif vocab_file:
            self.vocab = load_vocab(vocab_file)
            self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
            self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)
        else:
            raise ValueError(f"FullTokenizer needs a SentencePiece model ({SPM_FLAG_HINT}) or a "
                             "WordPiece vocab (--vocab_file); neither was given.")
        self.inv_vocab = {v: k for k, v in self.vocab.items()}

    @classmethod
    def from_release(cls, directory: PathLike, do_lower_case: bool = True) -> "FullTokenizer":
        """Tokenizer of an unpacked release directory.

        Uses ``30k-clean.model``, else the only ``*.model`` file, else ``vocab.txt`` (WordPiece).
        """
        return cls._from_directory(os.fspath(directory), do_lower_case)

    @classmethod
    def from_saved_model_assets(cls, directory: PathLike, do_lower_case: bool = True) -> "FullTokenizer":
        """Tokenizer of a SavedModel / TF-Hub module directory, from the model file in its ``assets/``."""
        return cls._from_directory(os.path.join(os.fspath(directory), "assets"), do_lower_case)

    @classmethod
    def from_spec(cls, spec: Any) -> "FullTokenizer":
        """The tokenizer a model source describes (an `albert_tf.checkpoints.source.TokenizerSpec`: model or
        vocabulary file, casing, ``preprocess_text`` options)."""
        if spec is None:
            raise ValueError("The model carries no tokenizer; pass --spm_model_file (or --vocab_file) and "
                             "--do_lower_case.")
        tokenizer = cls(vocab_file=spec.vocab_file, do_lower_case=spec.do_lower_case,
                        spm_model_file=spec.spm_model_file)
        tokenizer.remove_space, tokenizer.keep_accents = spec.remove_space, spec.keep_accents
        if text_options(tokenizer):
            from absl import logging

            logging.info("%s: normalising text with %s (the original: remove_space=True, keep_accents=False).",
                         spec.origin, text_options(tokenizer))
        return tokenizer

    @classmethod
    def from_hub_module(cls, hub_module: PathLike, use_spm: bool = True) -> "FullTokenizer":
        """The original ``from_hub_module``: the tokenizer named by a TF-Hub module's
        ``tokenization_info`` (``vocab_file``, the SentencePiece model for ALBERT, and ``do_lower_case``,
        kept as ``.do_lower_case``). Works for TF1 Hub modules and TF2 SavedModels, local or by URL.

        Raises:
          ValueError / FileNotFoundError: the module carries no tokenizer, naming the flags to use.
        """
        from albert_tf.checkpoints import source  # the formats are read there

        return cls.from_spec(source.resolve(hub_module, hub=True).tokenizer_spec(use_spm))

    @classmethod
    def from_transformers(cls, directory: PathLike) -> "FullTokenizer":
        """Tokenizer of a Hugging Face model directory: ``spiece.model`` (``AlbertTokenizer``), else
        ``vocab.txt`` (WordPiece), with the options of its ``tokenizer_config.json``.

        Sets ``do_lower_case``, ``remove_space`` and ``keep_accents`` from that file (Hugging Face's
        defaults when absent: True, True, False); ``preprocess`` and the feature writers of GLUE, SQuAD
        and RACE normalise with them (:func:`text_options`), as Hugging Face's slow ``AlbertTokenizer``
        does; the in-graph tokenizer of the raw-text exports does not, so those exports are skipped for
        other options (with a warning). One known difference: that tokenizer also rewrites `````` and
        ``''`` to ``"`` before SentencePiece, which the original does not (albert-tf keeps the
        original's behaviour).

        Raises:
          FileNotFoundError: the directory has neither file.
        """
        from albert_tf.checkpoints import source  # the format is read there

        spec = source.transformers_tokenizer_spec(os.fspath(directory))
        if spec is None:
            raise FileNotFoundError(f"No spiece.model or {_WORDPIECE_VOCAB} in the Hugging Face directory "
                                    f"{os.fspath(directory)!r}.")
        return cls.from_spec(spec)

    @classmethod
    def _from_directory(cls, directory: str, do_lower_case: bool) -> "FullTokenizer":
        if not fileio.isdir(directory):
            raise FileNotFoundError(f"Directory not found: {directory!r}.")
        names = sorted(fileio.listdir(directory))
        models = [n for n in names if n.endswith(".model")]
        if _PREFERRED_SPM_MODEL in models:
            return cls(do_lower_case=do_lower_case,
                       spm_model_file=os.path.join(directory, _PREFERRED_SPM_MODEL))
        if len(models) == 1:
            return cls(do_lower_case=do_lower_case, spm_model_file=os.path.join(directory, models[0]))
        if len(models) > 1:
            raise ValueError(f"Several SentencePiece models in {directory!r}: {models}; pass the one to "
                             f"use with {SPM_FLAG_HINT}.")
        if _WORDPIECE_VOCAB in names:
            return cls(vocab_file=os.path.join(directory, _WORDPIECE_VOCAB), do_lower_case=do_lower_case)
        raise FileNotFoundError(f"No {_PREFERRED_SPM_MODEL}, *.model or {_WORDPIECE_VOCAB} in "
                                f"{directory!r} (found: {names}).")

    def preprocess(self, text: str | bytes) -> str:
        """``preprocess_text`` with this tokenizer's casing and options (SentencePiece mode), i.e. the
        text ``tokenize`` expects."""
        return preprocess_text(text, lower=self.do_lower_case, **text_options(self))

    def tokenize(self, text: str | bytes) -> list[str]:
        """Pieces of ``text``. In SentencePiece mode the text is NOT preprocessed (call preprocess_text)."""
        if self.sp_model is not None:
            return encode_pieces(self.sp_model, text, return_unicode=False)
        split_tokens = []
        for token in self.basic_tokenizer.tokenize(text):
            split_tokens.extend(self.wordpiece_tokenizer.tokenize(token))
        return split_tokens

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        """Ids of pieces; in SentencePiece mode unknown pieces map to the unk id."""
        if self.sp_model is not None:
            return [self.sp_model.PieceToId(printable_text(token)) for token in tokens]
        return convert_by_vocab(self.vocab, tokens)

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Pieces of ids."""
        if self.sp_model is not None:
            return [self.sp_model.IdToPiece(int(i)) for i in ids]
        return convert_by_vocab(self.inv_vocab, ids)


# ----------------------------------------------------------------------------------------------
# WordPiece (BERT) path
# ----------------------------------------------------------------------------------------------

class BasicTokenizer:
    """BERT's basic tokenizer: cleanup, CJK splitting, optional lowercasing and accent stripping,
    punctuation split."""

    def __init__(self, do_lower_case: bool = True):
        self.do_lower_case = do_lower_case

    def tokenize(self, text: str | bytes) -> list[str]:
        """Returns the list of basic tokens (words and single punctuation characters)."""
        text = self._clean_text(convert_to_unicode(text))
        text = self._tokenize_chinese_chars(text)
        split_tokens = []
        for token in whitespace_tokenize(text):
            if self.do_lower_case:
                token = self._run_strip_accents(token.lower())
            split_tokens.extend(self._run_split_on_punc(token))
        return whitespace_tokenize(" ".join(split_tokens))

    @staticmethod
    def _run_strip_accents(text: str) -> str:
        text = unicodedata.normalize("NFD", text)
        return "".join(c for c in text if unicodedata.category(c) != "Mn")

    @staticmethod
    def _run_split_on_punc(text: str) -> list[str]:
        output: list[list[str]] = []
        start_new_word = True
        for char in text:
            if _is_punctuation(char):
                output.append([char])
                start_new_word = True
            else:
                if start_new_word:
                    output.append([])
                start_new_word = False
                output[-1].append(char)
        return ["".join(x) for x in output]

    @staticmethod
    def _tokenize_chinese_chars(text: str) -> str:
        return "".join(f" {c} " if _is_chinese_char(ord(c)) else c for c in text)

    @staticmethod
    def _clean_text(text: str) -> str:
        output = []
        for char in text:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            output.append(" " if _is_whitespace(char) else char)
        return "".join(output)


def _is_chinese_char(cp: int) -> bool:
    """Whether code point ``cp`` is in a CJK Unified Ideographs block (BERT's ranges; not kana/hangul)."""
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece with ``##`` continuation pieces."""

    def __init__(self, vocab: Mapping[str, int], unk_token: str = "[UNK]",
                 max_input_chars_per_word: int = 200):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text: str | bytes) -> list[str]:
        """Splits each whitespace token into vocabulary pieces; a word that cannot be split (or has
        more than ``max_input_chars_per_word`` characters) becomes ``unk_token``."""
        output_tokens = []
        for token in whitespace_tokenize(convert_to_unicode(text)):
            if len(token) > self.max_input_chars_per_word:
                output_tokens.append(self.unk_token)
                continue
            sub_tokens = []
            start = 0
            while start < len(token):
                end = len(token)
                cur_substr = None
                while start < end:
                    substr = token[start:end]
                    if start > 0:
                        substr = "##" + substr
                    if substr in self.vocab:
                        cur_substr = substr
                        break
                    end -= 1
                if cur_substr is None:
                    sub_tokens = [self.unk_token]
                    break
                sub_tokens.append(cur_substr)
                start = end
            output_tokens.extend(sub_tokens)
        return output_tokens


def _is_whitespace(char: str) -> bool:
    """Space, tab, newline, carriage return, or Unicode category Zs."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    """Unicode categories Cc and Cf, except tab, newline and carriage return (treated as whitespace)."""
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    """Every non-alphanumeric printable ASCII character, plus Unicode categories P*."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def __getattr__(name: str):
    # InGraphTokenizer needs TensorFlow and tf_keras: imported only when it is asked for.
    if name == "InGraphTokenizer":
        from albert_tf.in_graph_tokenizer import InGraphTokenizer

        return InGraphTokenizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
