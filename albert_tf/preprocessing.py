"""In-graph ALBERT input preprocessing: raw text (or text pairs) -> padded model inputs.

:class:`AlbertPreprocessor` is a ``tf_keras`` layer built from graph ops only, so it can be part of a
SavedModel that serves raw strings. It packs ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]`` like the
original fine-tuning feature writers (``classifier_utils.convert_single_example``):

* pairs are truncated by repeatedly dropping the last token of the longer segment (of ``b`` on a
  tie) until ``len(a) + len(b) <= seq_length - 3`` (the original ``_truncate_seq_pair``);
* a single segment is cut to ``seq_length - 2``;
* ``input_type_ids`` are 0 for ``[CLS]``, ``a`` and the first ``[SEP]``, 1 for ``b`` and its ``[SEP]``;
* everything is zero-padded to ``seq_length`` (the pad id ``<pad>`` is 0 in the released models).

:func:`export_preprocessing_savedmodel` writes such a layer as a standalone SavedModel.
"""
from __future__ import annotations

import base64
import os
from typing import Sequence

import tensorflow as tf
import tf_keras as keras

from albert_tf.tokenization import InGraphTokenizer, PathLike

SERVING_SINGLE = "serving_default"
SERVING_PAIR = "serving_pair"
TOKENIZATION_INFO = "tokenization_info"


def truncated_lengths(lengths: Sequence[tf.Tensor], seq_length: int) -> list[tf.Tensor]:
    """Segment lengths after the original truncation, for one or two segments.

    Args:
      lengths: one or two int64 tensors [batch] (token counts of ``a`` and optionally ``b``).
      seq_length: the packed length, including ``[CLS]`` and the ``[SEP]`` tokens.

    Returns:
      The kept lengths, int64 [batch] each. One segment keeps ``min(len, seq_length - 2)``. Two
      segments give the result of the original ``_truncate_seq_pair`` loop "while len(a) + len(b) > m:
      drop the last token of the longer one (of b on a tie)", with ``m = seq_length - 3``, in closed
      form: a segment keeps ``min(len, max(m - len(other), half))`` where ``half`` is ``ceil(m / 2)``
      for ``a`` and ``floor(m / 2)`` for ``b``.
    """
    if len(lengths) == 1:
        return [tf.minimum(lengths[0], seq_length - 2)]
    if len(lengths) != 2:
        raise ValueError(f"Expected one or two text segments, got {len(lengths)}.")
    if seq_length < 3:
        raise ValueError(f"seq_length={seq_length} leaves no room for [CLS] a [SEP] b [SEP]; use >= 3.")
    budget = seq_length - 3
    len_a, len_b = lengths
    return [tf.minimum(len_a, tf.maximum(budget - len_b, (budget + 1) // 2)),
            tf.minimum(len_b, tf.maximum(budget - len_a, budget // 2))]


def pack_segments(segments: Sequence[tf.RaggedTensor], seq_length: int, cls_id: int,
                  sep_id: int) -> dict[str, tf.Tensor]:
    """Truncates and packs token ids as ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]``, zero-padded.

    Args:
      segments: one or two int ragged tensors [batch, (tokens)].
      seq_length: output length; cls_id / sep_id: ids of ``[CLS]`` and ``[SEP]``.

    Returns:
      ``input_word_ids``, ``input_mask`` and ``input_type_ids``, int32 [batch, seq_length].
    """
    lengths = [s.row_lengths() for s in segments]
    keep = truncated_lengths(lengths, seq_length)
    cls_id, sep_id = tf.constant(cls_id, tf.int64), tf.constant(sep_id, tf.int64)
    if len(segments) == 2:
        # A `b` with no tokens (its preprocessed text is empty) makes a single-sentence row, as in the
        # Python feature code (`if example.text_b:`): no second [SEP] and the single-text truncation.
        is_pair = lengths[1] > 0
        keep = [tf.where(is_pair, keep[0], truncated_lengths(lengths[:1], seq_length)[0]), keep[1]]
    # Column j of row i, and the columns where each part starts / the packed row ends.
    column = tf.range(seq_length, dtype=tf.int64)[tf.newaxis, :]
    a_end = keep[0][:, tf.newaxis] + 1  # Column of the first [SEP].
    word_ids = tf.where(column == a_end, sep_id, _shifted(segments[0], 1, column))
    end = a_end + 1
    type_ids = tf.zeros_like(word_ids)
    if len(segments) == 2:
        b_end = a_end + 1 + keep[1][:, tf.newaxis]  # Column of the final [SEP].
        in_b = (column > a_end) & (column < b_end)
        word_ids = tf.where(in_b, _shifted(segments[1], a_end + 1, column), word_ids)
        word_ids = tf.where((column == b_end) & is_pair[:, tf.newaxis], sep_id, word_ids)
        end = tf.where(is_pair[:, tf.newaxis], b_end + 1, end)
        type_ids = tf.cast((column > a_end) & (column < end), tf.int64)
    mask = column < end
    word_ids = tf.where(column == 0, cls_id, tf.where(mask, word_ids, tf.zeros_like(word_ids)))
    return {"input_word_ids": tf.cast(word_ids, tf.int32),
            "input_mask": tf.cast(mask, tf.int32),
            "input_type_ids": tf.cast(type_ids, tf.int32)}


def _shifted(segment: tf.RaggedTensor, start: tf.Tensor | int, column: tf.Tensor) -> tf.Tensor:
    """[batch, seq_length] int64: token ``column - start`` of each row (clipped; callers mask)."""
    seq_length = int(column.shape[-1])
    dense = tf.cast(segment.to_tensor(0, shape=[None, seq_length]), tf.int64)
    index = tf.clip_by_value(column - start, 0, seq_length - 1)
    index = tf.broadcast_to(index, tf.shape(dense, out_type=tf.int64))
    return tf.gather(dense, index, batch_dims=1)


@keras.utils.register_keras_serializable(package="albert_tf")
class AlbertPreprocessor(keras.layers.Layer):
    """Raw text -> ALBERT inputs, in the graph.

    Call with a rank-1 ``tf.string`` tensor [batch] (single segment) or a pair ``(text_a, text_b)`` of
    such tensors. Returns a dict of int32 [batch, seq_length] tensors: ``input_word_ids``,
    ``input_mask`` (1 on real tokens), ``input_type_ids``. Token ids are those of
    :class:`~albert_tf.tokenization.InGraphTokenizer` (``preprocess_text`` + ``encode_ids``), with
    ``[CLS]`` / ``[SEP]`` ids looked up in the SentencePiece model.
    """

    def __init__(self, spm_model_file: PathLike | None = None, do_lower_case: bool = True,
                 seq_length: int = 128, *, spm_model_proto: bytes | None = None, **kwargs):
        """Args:
          spm_model_file: path of the SentencePiece ``.model`` (or give ``spm_model_proto``).
          do_lower_case: lowercase the text (True for the released English models).
          seq_length: length of every output row; at least 2 (3 for pairs).
          spm_model_proto: the serialized model bytes instead of a path.
        """
        kwargs.pop("trainable", None)  # Present in configs; the layer has nothing to train.
        super().__init__(trainable=False, **kwargs)
        if seq_length < 2:
            raise ValueError(f"seq_length={seq_length} leaves no room for [CLS] and [SEP]; use >= 2.")
        self.seq_length = int(seq_length)
        self.tokenizer = InGraphTokenizer(spm_model_file, do_lower_case, spm_model_proto=spm_model_proto,
                                          name="tokenizer")
        self.cls_id = self.tokenizer.token_id("[CLS]")
        self.sep_id = self.tokenizer.token_id("[SEP]")

    def call(self, inputs: tf.Tensor | Sequence[tf.Tensor]) -> dict[str, tf.Tensor]:
        """One string tensor [batch] or a pair of them -> dict of int32 [batch, seq_length]."""
        texts = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(texts) not in (1, 2):
            raise ValueError(f"Expected one or two text segments, got {len(texts)}.")
        return pack_segments([self.tokenizer(t) for t in texts], self.seq_length, self.cls_id, self.sep_id)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(do_lower_case=self.tokenizer.do_lower_case, seq_length=self.seq_length,
                      spm_model_proto=base64.b64encode(self.tokenizer.spm_model_proto).decode("ascii"))
        return config

    @classmethod
    def from_config(cls, config: dict) -> "AlbertPreprocessor":
        config = dict(config)
        config["spm_model_proto"] = base64.b64decode(config["spm_model_proto"])
        return cls(**config)


class _PreprocessingModule(tf.Module):
    """What :func:`export_preprocessing_savedmodel` saves: the layer, its model file as an asset,
    and the serving functions."""

    def __init__(self, spm_model_file: PathLike, do_lower_case: bool, seq_length: int):
        super().__init__(name="albert_preprocessing")
        self.preprocessor = AlbertPreprocessor(spm_model_file, do_lower_case, seq_length)
        self.spm_model_file = tf.saved_model.Asset(os.fspath(spm_model_file))
        self._do_lower_case = bool(do_lower_case)
        text_spec = tf.TensorSpec([None], tf.string)
        # No autograph: the code is plain graph ops, and converting tensorflow-text is slow.
        self.serve_single = tf.function(self._serve_single, input_signature=[text_spec], autograph=False)
        self.serve_pair = tf.function(self._serve_pair, input_signature=[text_spec, text_spec],
                                      autograph=False)
        self.tokenize = tf.function(self.preprocessor.tokenizer.call, input_signature=[text_spec],
                                    autograph=False)
        self.tokenization_info = tf.function(self._tokenization_info, input_signature=[], autograph=False)

    def _serve_single(self, text_a: tf.Tensor) -> dict[str, tf.Tensor]:
        return self.preprocessor(text_a)

    def _serve_pair(self, text_a: tf.Tensor, text_b: tf.Tensor) -> dict[str, tf.Tensor]:
        return self.preprocessor((text_a, text_b))

    def _tokenization_info(self) -> dict[str, tf.Tensor]:
        # Like the original TF-Hub module: "vocab_file" is the path of the SentencePiece model asset.
        return {"vocab_file": self.spm_model_file.asset_path,
                "do_lower_case": tf.constant(self._do_lower_case)}


def export_preprocessing_savedmodel(export_dir: PathLike, spm_model_file: PathLike,
                                    do_lower_case: bool = True, seq_length: int = 128) -> str:
    """Writes a SavedModel that turns raw strings into ALBERT inputs, without Python at serving time.

    Signatures (all outputs int32 [batch, seq_length] unless said otherwise):
      ``serving_default(text_a: string [batch])`` -> ``input_word_ids``, ``input_mask``,
        ``input_type_ids`` for ``[CLS] a [SEP]``;
      ``serving_pair(text_a, text_b: string [batch])`` -> the same for ``[CLS] a [SEP] b [SEP]``;
      ``tokenization_info()`` -> ``vocab_file`` (string: path of the ``.model`` asset) and
        ``do_lower_case`` (bool), as the original TF-Hub module.
    The loaded object also has ``tokenize(text)`` -> ragged int32 ids [batch, (tokens)]. The model
    file is stored under ``assets/`` (see ``FullTokenizer.from_saved_model_assets``).

    Returns:
      ``export_dir`` as a string.
    """
    module = _PreprocessingModule(spm_model_file, do_lower_case, seq_length)
    export_dir = os.fspath(export_dir)
    tf.saved_model.save(module, export_dir, signatures={
        SERVING_SINGLE: module.serve_single.get_concrete_function(),
        SERVING_PAIR: module.serve_pair.get_concrete_function(),
        TOKENIZATION_INFO: module.tokenization_info.get_concrete_function(),
    })
    return export_dir
