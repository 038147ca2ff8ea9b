"""In-graph ALBERT input preprocessing: raw text (or text pairs) -> padded model inputs.

:class:`AlbertPreprocessor` is a ``tf_keras`` layer built from graph ops only, so it can be part of a
SavedModel that serves raw strings. It packs ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]`` like the
original fine-tuning feature writers (``classifier_utils.convert_single_example``):

* pairs are truncated by repeatedly dropping the last token of the longer segment (of ``b`` on a
  tie) until ``len(a) + len(b) <= seq_length - 3`` (the original ``_truncate_seq_pair``);
* a single segment is cut to ``seq_length - 2``;
* ``input_type_ids`` are 0 for ``[CLS]``, ``a`` and the first ``[SEP]``, 1 for ``b`` and its ``[SEP]``;
* everything is zero-padded to ``seq_length`` (the pad id ``<pad>`` is 0 in the released models).

:func:`export_preprocessing_savedmodel` writes such a layer as a standalone SavedModel with the
TF-Hub preprocessing interface (``tokenize``, ``bert_pack_inputs`` for any ``seq_length``).
"""
from __future__ import annotations

import base64
import os
from typing import Sequence

import tensorflow as tf
import tf_keras as keras

from albert_tf.export.spm_asset import TOKENIZATION_INFO, attach_spm_asset
from albert_tf.tokenization import InGraphTokenizer, PathLike

SERVING_SINGLE = "serving_default"
SERVING_PAIR = "serving_pair"
SeqLength = int | tf.Tensor  # a Python int, or a scalar integer tensor (traced for any length)


def truncated_lengths(lengths: Sequence[tf.Tensor], seq_length: SeqLength) -> list[tf.Tensor]:
    """Segment lengths after the original truncation, for one or two segments.

    Args:
      lengths: one or two int64 tensors [batch] (token counts of ``a`` and optionally ``b``).
      seq_length: the packed length, including ``[CLS]`` and the ``[SEP]`` tokens (an int, checked
        here, or an int64 scalar tensor, checked by the caller).

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
    if isinstance(seq_length, int) and seq_length < 3:
        raise ValueError(f"seq_length={seq_length} leaves no room for [CLS] a [SEP] b [SEP]; use >= 3.")
    budget = seq_length - 3
    len_a, len_b = lengths
    return [tf.minimum(len_a, tf.maximum(budget - len_b, (budget + 1) // 2)),
            tf.minimum(len_b, tf.maximum(budget - len_a, budget // 2))]


def pack_segments(segments: Sequence[tf.RaggedTensor], seq_length: SeqLength, cls_id: int,
                  sep_id: int) -> dict[str, tf.Tensor]:
    """Truncates and packs token ids as ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]``, zero-padded.

    Args:
      segments: one or two int ragged tensors [batch, (tokens)].
      seq_length: output length, an int or an integer scalar tensor (at least 2, 3 for pairs; a
        tensor is checked when the graph runs).
      cls_id / sep_id: ids of ``[CLS]`` and ``[SEP]``.

    Returns:
      ``input_word_ids``, ``input_mask`` and ``input_type_ids``, int32 [batch, seq_length].
    """
    if not isinstance(seq_length, int):
        need = 2 if len(segments) == 1 else 3
        seq_length = tf.cast(seq_length, tf.int64)
        check = tf.debugging.assert_greater_equal(
            seq_length, tf.constant(need, tf.int64),
            message=f"seq_length leaves no room for [CLS] and {len(segments)} [SEP] tokens")
        with tf.control_dependencies([check]):
            seq_length = tf.identity(seq_length)
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
    word_ids = tf.where(column == a_end, sep_id, _shifted(segments[0], 1, column, seq_length))
    end = a_end + 1
    type_ids = tf.zeros_like(word_ids)
    if len(segments) == 2:
        b_end = a_end + 1 + keep[1][:, tf.newaxis]  # Column of the final [SEP].
        in_b = (column > a_end) & (column < b_end)
        word_ids = tf.where(in_b, _shifted(segments[1], a_end + 1, column, seq_length), word_ids)
        word_ids = tf.where((column == b_end) & is_pair[:, tf.newaxis], sep_id, word_ids)
        end = tf.where(is_pair[:, tf.newaxis], b_end + 1, end)
        type_ids = tf.cast((column > a_end) & (column < end), tf.int64)
    mask = column < end
    word_ids = tf.where(column == 0, cls_id, tf.where(mask, word_ids, tf.zeros_like(word_ids)))
    return {"input_word_ids": tf.cast(word_ids, tf.int32),
            "input_mask": tf.cast(mask, tf.int32),
            "input_type_ids": tf.cast(type_ids, tf.int32)}


def _shifted(segment: tf.RaggedTensor, start: tf.Tensor | int, column: tf.Tensor,
             seq_length: SeqLength) -> tf.Tensor:
    """[batch, seq_length] int64: token ``column - start`` of each row (clipped; callers mask)."""
    # A static width where there is one (the outputs keep it); else a shape tensor.
    if isinstance(seq_length, int):
        shape = [None, seq_length]
    else:
        shape = tf.stack([tf.cast(segment.nrows(), tf.int64), seq_length])
    dense = tf.cast(segment.to_tensor(0, shape=shape), tf.int64)
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
    """What :func:`export_preprocessing_savedmodel` saves: the layer, its model file as an asset
    (``albert_tf.export.spm_asset``), the serving functions and the TF-Hub sub-objects."""

    def __init__(self, spm_model_file: PathLike, do_lower_case: bool, seq_length: int):
        super().__init__(name="albert_preprocessing")
        self.preprocessor = AlbertPreprocessor(spm_model_file, do_lower_case, seq_length)
        self.tokenization_info_signature = attach_spm_asset(self, spm_model_file, do_lower_case)
        text_spec = tf.TensorSpec([None], tf.string)
        # No autograph: the code is plain graph ops, and converting tensorflow-text is slow.
        self.serve_single = tf.function(self._serve_single, input_signature=[text_spec], autograph=False)
        self.serve_pair = tf.function(self._serve_pair, input_signature=[text_spec, text_spec],
                                      autograph=False)
        # TF-Hub preprocessing interface: the root is callable on one text segment, `tokenize` and
        # `bert_pack_inputs` are callable sub-objects (as tf.train.Checkpoint, like Model Garden's).
        self.__call__ = self.serve_single
        tokenizer = self.preprocessor.tokenizer
        self.tokenize = tf.train.Checkpoint()
        self.tokenize.__call__ = tf.function(tokenizer.call, input_signature=[text_spec], autograph=False)
        special = {"start_of_sequence_id": self.preprocessor.cls_id, "end_of_segment_id": self.preprocessor.sep_id,
                   "padding_id": 0, "mask_id": tokenizer.token_id("[MASK]"),
                   "vocab_size": tokenizer.sp_model.GetPieceSize()}
        self.tokenize.get_special_tokens_dict = tf.train.Checkpoint()
        self.tokenize.get_special_tokens_dict.__call__ = tf.function(
            lambda: {k: tf.constant(v, tf.int32) for k, v in special.items()}, input_signature=[], autograph=False)
        self.bert_pack_inputs = tf.train.Checkpoint()
        self.bert_pack_inputs.__call__ = tf.function(self._bert_pack_inputs, autograph=False)
        # Traced for 1 or 2 segments of ragged rank 1 or 2, with any seq_length or the default.
        for ragged_rank in (1, 2):
            for num_segments in (1, 2):
                specs = [tf.RaggedTensorSpec([None] * (ragged_rank + 1), tf.int32) for _ in range(num_segments)]
                for seq_length_spec in (tf.TensorSpec([], tf.int32), None):
                    self.bert_pack_inputs.__call__.get_concrete_function(specs, seq_length=seq_length_spec)

    def _serve_single(self, text_a: tf.Tensor) -> dict[str, tf.Tensor]:
        return self.preprocessor(text_a)

    def _serve_pair(self, text_a: tf.Tensor, text_b: tf.Tensor) -> dict[str, tf.Tensor]:
        return self.preprocessor((text_a, text_b))

    def _bert_pack_inputs(self, segments: Sequence[tf.RaggedTensor], seq_length=None) -> dict[str, tf.Tensor]:
        """One or two ragged int32 id tensors [batch, (tokens)] or [batch, (words), (pieces)] ->
        the packed inputs, int32 [batch, seq_length] (default: the export's ``seq_length``)."""
        if seq_length is None:
            seq_length = self.preprocessor.seq_length
        flat = [s.merge_dims(1, -1) if s.ragged_rank > 1 else s for s in segments]
        return pack_segments(flat, seq_length, self.preprocessor.cls_id, self.preprocessor.sep_id)


def export_preprocessing_savedmodel(export_dir: PathLike, spm_model_file: PathLike,
                                    do_lower_case: bool = True, seq_length: int = 128) -> str:
    """Writes a SavedModel that turns raw strings into ALBERT inputs, without Python at serving time.

    It follows the TF-Hub preprocessing convention (Model Garden's ``*_preprocess`` models) with
    exactly the tokenization and packing of this package (the original truncation, not Model
    Garden's round-robin trimming). The loaded object ``p = tf.saved_model.load(export_dir)``
    (or ``hub.KerasLayer``) has:

      ``p(text)``: string [batch] -> ``input_word_ids``, ``input_mask``, ``input_type_ids`` int32
        [batch, seq_length] for ``[CLS] a [SEP]``;
      ``p.tokenize(text)``: string [batch] -> ragged int32 ids [batch, (tokens)] (no special
        tokens), and ``p.tokenize.get_special_tokens_dict()`` (``start_of_sequence_id``,
        ``end_of_segment_id``, ``padding_id``, ``mask_id``, ``vocab_size``);
      ``p.bert_pack_inputs([ids_a(, ids_b)], seq_length=N)``: one or two ragged int32 tensors
        [batch, (tokens)] or [batch, (words), (pieces)] -> the three inputs, int32 [batch, N], for
        any ``N`` (default ``seq_length``);
      ``p.sp_model_file`` (asset), ``p.do_lower_case`` (bool variable), ``p.tokenization_info()``.

    Signatures (for TF Serving): ``serving_default(text_a: string [batch])`` and
    ``serving_pair(text_a, text_b)`` -> the three inputs [batch, seq_length];
    ``tokenization_info()`` -> ``vocab_file`` (the ``.model`` asset's path) and ``do_lower_case``,
    as the original TF-Hub module. The model file is stored under ``assets/`` (see
    ``FullTokenizer.from_saved_model_assets``). Loading needs ``import tensorflow_text``.

    Returns:
      ``export_dir`` as a string.
    """
    module = _PreprocessingModule(spm_model_file, do_lower_case, seq_length)
    export_dir = os.fspath(export_dir)
    tf.saved_model.save(module, export_dir, signatures={
        SERVING_SINGLE: module.serve_single.get_concrete_function(),
        SERVING_PAIR: module.serve_pair.get_concrete_function(),
        TOKENIZATION_INFO: module.tokenization_info_signature,
    })
    return export_dir
