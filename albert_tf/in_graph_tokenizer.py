"""The in-graph SentencePiece tokenizer: ``preprocess_text`` + ``encode_ids`` as TensorFlow graph ops.

Kept apart from ``albert_tf.tokenization`` (which re-exports it as ``tokenization.InGraphTokenizer``)
because it needs TensorFlow, tensorflow-text and tf_keras, which the Python tokenizers do not.
"""
from __future__ import annotations

import base64
import os

import numpy as np
import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text
import tf_keras as keras

from albert_tf.sentencepiece_rules import (SPM_FLAG_HINT, PathLike, ends_with_digit_comma, load_spm_model,
                                          read_spm_model, regex_classes, split_digit_comma)


@keras.utils.register_keras_serializable(package="albert_tf")
class InGraphTokenizer(keras.layers.Layer):
    """``preprocess_text`` + ``encode_ids`` as TensorFlow graph ops (a ``tf_keras`` layer).

    Call: a rank-1 ``tf.string`` tensor [batch] of raw UTF-8 texts -> ``tf.RaggedTensor`` int32
    [batch, (tokens)] with the ids of ``encode_ids(sp, preprocess_text(text, lower=do_lower_case))``
    (no ``[CLS]``/``[SEP]``). The SentencePiece model bytes live inside the layer (and its config),
    so it serializes and runs in a SavedModel without Python.

    How each step is done, and every known difference from the Python path (measured on 468,685
    texts of GLUE, SQuAD v1.1 dev, RACE and Gutenberg with ``tiny-clean.model``: 6 differ, all of the
    last kind below; a sweep over every code point found the Unicode-version ones):

    * Whitespace collapse and combining-mark removal use RE2 character classes generated from this
      Python's ``str.isspace`` and ``unicodedata.combining`` (exactly the Python sets).
    * NFKD is ICU's (``tensorflow_text.normalize_utf8``) and lowercasing is ICU's full lowercasing
      (``tf.strings.lower(encoding="utf-8")``, with the multi-character mappings and Greek final
      sigma, like ``str.lower``). ICU's Unicode tables are not Python's (Unicode 14.0 for 3.11): 40
      capital letters new in Unicode 14 (e.g. U+2C2F, U+A7C0, Vithkuqi U+10570..) are not lowercased,
      and about 120 code points unassigned in Python's tables are decomposed by ICU.
    * A NUL character (U+0000) ends the text for ICU's lowercasing: with ``do_lower_case`` the graph
      drops everything from the first NUL on; Python keeps it (and SentencePiece maps it to unk).
    * Segmentation uses ``tensorflow_text.FastSentencepieceTokenizer`` (the same optimized unigram
      Viterbi as pip ``sentencepiece`` 0.2). Exact score ties (``"000"`` = ``"0"+"00"`` = ``"00"+"0"``
      when ``"000"`` is not a piece) are broken by float rounding of the path score; after a
      user-defined piece such as ``£`` the two implementations can round differently and output the
      same ids in another order, e.g. ``£250,000`` -> ``, 00 0`` (Python) vs ``, 0 00`` (graph).
      (The older ``SentencepieceTokenizer`` op disagrees on such ties in ~0.3% of texts.)
    * The comma rule is a lookup table computed with the Python rule itself for every vocabulary
      piece, so it agrees for all known pieces (digits as ``str.isdigit``). An unknown-piece run can
      never end in "digit," because ``,`` must be a known piece (checked at construction).
    * A run of characters unknown to the model is one unk piece whose text is the run itself; the
      Python path maps it with ``PieceToId`` (as the original), so a run spelling a control piece,
      e.g. "[MASK]" with a model that knows none of ``[MASK]``'s characters, gets that piece's id
      there and the unk id in the graph. Models that know ASCII (30k-clean) never produce such runs.
    * Invalid UTF-8 input: ``preprocess_text`` raises; the graph never raises: ICU's NFKD replaces
      each invalid sequence by U+FFFD as ``bytes.decode("utf-8", "replace")`` does, and the ids then
      equal those of the Python path on the replaced text.
    """

    def __init__(self, spm_model_file: PathLike | None = None, do_lower_case: bool = True, *,
                 spm_model_proto: bytes | None = None, **kwargs):
        """Args:
          spm_model_file: path of the SentencePiece ``.model`` (or give ``spm_model_proto``).
          do_lower_case: lowercase after normalisation (the released English models: True).
          spm_model_proto: the serialized model bytes, instead of a path.
        """
        kwargs.pop("trainable", None)  # Present in configs; the layer has nothing to train.
        super().__init__(trainable=False, **kwargs)
        if (spm_model_file is None) == (spm_model_proto is None):
            raise ValueError("InGraphTokenizer needs exactly one of spm_model_file (a path, "
                             f"{SPM_FLAG_HINT}) and spm_model_proto (the model bytes).")
        if spm_model_proto is None:
            spm_model_proto = read_spm_model(spm_model_file)
            source = repr(os.fspath(spm_model_file))
        else:
            source = "spm_model_proto"
        self.spm_model_proto = bytes(spm_model_proto)
        self.do_lower_case = bool(do_lower_case)
        self.sp_model = load_spm_model(self.spm_model_proto, source)
        space, other_space, combining = regex_classes()
        # Only runs that change: two or more whitespace characters, or one that is not " ".
        self._whitespace_pattern = f"[{space}][{space}]+|[{other_space}]"
        self._combining_pattern = f"[{combining}]+"
        self._expansion_lengths, self._expansion_values = self._build_comma_table(self.sp_model, source)
        self._sp_tf = tf_text.FastSentencepieceTokenizer(self.spm_model_proto)

    @staticmethod
    def _build_comma_table(sp_model: spm.SentencePieceProcessor,
                           source: str) -> tuple[np.ndarray, np.ndarray]:
        """Row lengths and values of a ragged [vocab, (k)] table: id -> ids it becomes under the comma
        rule (itself for ordinary pieces)."""
        unk = sp_model.unk_id()
        if sp_model.PieceToId(",") == unk:
            raise ValueError(f"The SentencePiece model {source} has no ',' piece; the in-graph comma rule "
                             "needs one (every model trained on English text has it).")
        lengths, values = [], []
        for i in range(sp_model.GetPieceSize()):
            piece = sp_model.IdToPiece(i)
            if i != unk and ends_with_digit_comma(piece):
                ids = [sp_model.PieceToId(p) for p in split_digit_comma(sp_model, piece)]
            else:
                ids = [i]
            lengths.append(len(ids))
            values.extend(ids)
        return np.asarray(lengths, np.int64), np.asarray(values, np.int32)

    def preprocess(self, texts: tf.Tensor) -> tf.Tensor:
        """The graph version of ``preprocess_text(text, lower=do_lower_case)``: string [B] -> string [B]."""
        texts = tf.strings.regex_replace(texts, self._whitespace_pattern, " ")
        texts = tf.strings.strip(texts)  # Only single " " can be left at the ends.
        texts = tf_text.normalize_utf8(texts, "NFKD")
        texts = tf.strings.regex_replace(texts, self._combining_pattern, "")
        if self.do_lower_case:
            texts = tf.strings.lower(texts, encoding="utf-8")
        return texts

    def call(self, inputs: tf.Tensor) -> tf.RaggedTensor:
        """Raw strings [batch] -> ragged int32 ids [batch, (tokens)]."""
        texts = tf.convert_to_tensor(inputs, dtype=tf.string)
        if texts.shape.rank != 1:
            raise ValueError(f"InGraphTokenizer expects a rank-1 string tensor [batch], got shape "
                             f"{texts.shape}; reshape it (e.g. tf.reshape(x, [-1])).")
        ids = self._sp_tf.tokenize(self.preprocess(texts)).with_row_splits_dtype(tf.int64)
        table = tf.RaggedTensor.from_row_lengths(
            tf.constant(self._expansion_values), tf.constant(self._expansion_lengths), validate=False)
        expanded = tf.gather(table, ids.flat_values)
        return ids.with_flat_values(expanded).merge_dims(1, 2)

    def token_id(self, piece: str) -> int:
        """Id of a piece such as ``"[CLS]"``; raises ValueError if the model lacks it."""
        i = self.sp_model.PieceToId(piece)
        if i == self.sp_model.unk_id() and piece != self.sp_model.IdToPiece(i):
            raise ValueError(f"The SentencePiece model has no {piece!r} piece (train it with "
                             "--control_symbols=[CLS],[SEP],[MASK]).")
        return i

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(do_lower_case=self.do_lower_case,
                      spm_model_proto=base64.b64encode(self.spm_model_proto).decode("ascii"))
        return config

    @classmethod
    def from_config(cls, config: dict) -> "InGraphTokenizer":
        config = dict(config)
        config["spm_model_proto"] = base64.b64decode(config["spm_model_proto"])
        return cls(**config)
