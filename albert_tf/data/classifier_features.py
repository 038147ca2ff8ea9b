"""Sentence(-pair) classification features, as the original `classifier_utils.py` builds them.

An `InputExample` (already normalised text, see `albert_tf.tasks.glue.data`) becomes
``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` piece ids, zero-padded to ``max_seq_length``:

- a pair is truncated longest-first, always dropping the last piece of the longer side (the second
  side on ties) until it fits in ``max_seq_length - 3``;
- a single sentence is cut to ``max_seq_length - 2``;
- segment ids are 0 for ``[CLS] A [SEP]`` and 1 for ``B [SEP]``.

On disk every example is a ``tf.train.Example`` with ``input_ids``, ``input_mask``, ``segment_ids``
(int64 [S]), ``label_ids`` (int64 [1], float32 [1] for regression) and ``is_real_example``
(int64 [1]). `classifier_dataset` reads such files back as model-ready batches.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable, Sequence

import tensorflow as tf
from absl import logging

from albert_tf.data import parallel, records


@dataclasses.dataclass(frozen=True)
class InputExample:
    """One classification example.

    Attributes:
      guid: unique id (the GLUE submission file is keyed by it).
      text_a: first text, already normalised by the processor.
      text_b: second text of a pair task, or None. An empty string is treated like None, as the
        original does.
      label: label string of a classification task, or a float score for regression.
    """
    guid: str
    text_a: str
    text_b: str | None = None
    label: str | float | None = None


@dataclasses.dataclass(frozen=True)
class InputFeatures:
    """Encoded example: three int lists of length ``max_seq_length`` plus the label id."""
    input_ids: list[int]
    input_mask: list[int]
    segment_ids: list[int]
    label_id: int | float
    is_real_example: bool = True


def truncate_seq_pair(tokens_a: list[Any], tokens_b: list[Any], max_length: int) -> None:
    """Truncates two token lists in place until ``len(a) + len(b) <= max_length``.

    One token at a time is popped from the end of the longer list (from ``tokens_b`` on ties), so a
    short sequence keeps its tokens, which likely carry more information each.
    """
    while len(tokens_a) + len(tokens_b) > max_length:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


def label_map_for(label_list: Sequence[str | None], is_regression: bool) -> dict[str, int] | None:
    """Maps each label string to its index; None for regression (labels are used as floats)."""
    if is_regression:
        return None
    return {label: i for i, label in enumerate(label_list)}


def convert_single_example(example: InputExample, label_map: dict[str, int] | None,
                           max_seq_length: int, tokenizer: Any) -> InputFeatures:
    """Encodes one example.

    Args:
      example: the example; its texts are tokenized with ``tokenizer.tokenize``.
      label_map: label string -> id, or None for regression (``example.label`` is a float).
      max_seq_length: S, the padded length (at least 3 for a pair, 2 for a single text).
      tokenizer: an object with ``tokenize(text) -> pieces`` and ``convert_tokens_to_ids(pieces)``,
        e.g. ``albert_tf.tokenization.FullTokenizer``.

    Returns:
      InputFeatures with lists of length S.

    Raises:
      ValueError: the label is not in ``label_map``.
    """
    tokens_a = list(tokenizer.tokenize(example.text_a))
    tokens_b = list(tokenizer.tokenize(example.text_b)) if example.text_b else []
    if tokens_b:
        truncate_seq_pair(tokens_a, tokens_b, max_seq_length - 3)
    else:
        tokens_a = tokens_a[:max_seq_length - 2]

    tokens = ["[CLS]", *tokens_a, "[SEP]"]
    segment_ids = [0] * len(tokens)
    if tokens_b:
        tokens += [*tokens_b, "[SEP]"]
        segment_ids += [1] * (len(tokens_b) + 1)
    input_ids = list(tokenizer.convert_tokens_to_ids(tokens))
    input_mask = [1] * len(input_ids)
    padding = [0] * (max_seq_length - len(input_ids))

    if label_map is None:
        label_id: int | float = float(example.label)
    else:
        if example.label not in label_map:
            raise ValueError(f"Example {example.guid!r} has label {example.label!r}, which is not one "
                             f"of the task's labels {list(label_map)}.")
        label_id = label_map[example.label]
    return InputFeatures(input_ids=input_ids + padding, input_mask=input_mask + padding,
                         segment_ids=segment_ids + padding, label_id=label_id)


def _example_encoder(label_list: Sequence[str | None], max_seq_length: int, tokenizer: Any,
                     is_regression: bool) -> Callable[[InputExample], InputFeatures]:
    if max_seq_length < 3:
        raise ValueError(f"max_seq_length must be at least 3 ([CLS] A [SEP]), got {max_seq_length}.")
    return functools.partial(convert_single_example, label_map=label_map_for(label_list, is_regression),
                             max_seq_length=max_seq_length, tokenizer=tokenizer)


def convert_examples_to_features(examples: Sequence[InputExample], label_list: Sequence[str | None],
                                 max_seq_length: int, tokenizer: Any, is_regression: bool,
                                 num_workers: int | None = None) -> list[InputFeatures]:
    """Encodes every example, in order.

    Args:
      examples: the examples to encode.
      label_list: the task's labels (ids are their positions); ignored for regression.
      max_seq_length: S.
      tokenizer: see `convert_single_example`.
      is_regression: labels are floats (STS-B).
      num_workers: processes to tokenize with (forked); None: all CPUs for >= 5000 examples, else 1.
        The result does not depend on it.
    """
    encode = _example_encoder(label_list, max_seq_length, tokenizer, is_regression)
    return list(parallel.map_items(encode, examples, num_workers))


def serialize_features(features: InputFeatures, is_regression: bool) -> bytes:
    """Serializes features as the original's ``tf.train.Example`` (float32 label for regression)."""
    label = (records.float_feature([features.label_id]) if is_regression
             else records.int64_feature([features.label_id]))
    return records.to_example({
        "input_ids": records.int64_feature(features.input_ids),
        "input_mask": records.int64_feature(features.input_mask),
        "segment_ids": records.int64_feature(features.segment_ids),
        "label_ids": label,
        "is_real_example": records.int64_feature([int(features.is_real_example)]),
    }).SerializeToString(deterministic=True)  # map order fixed: the same bytes in every process


def _encode_and_serialize(example: InputExample, encode: Callable[[InputExample], InputFeatures],
                          is_regression: bool) -> bytes:
    return serialize_features(encode(example), is_regression)


def file_based_convert_examples_to_features(
        examples: Sequence[InputExample], label_list: Sequence[str | None], max_seq_length: int,
        tokenizer: Any, output_file: str, is_regression: bool, num_workers: int | None = None) -> int:
    """Encodes ``examples`` (see `convert_examples_to_features`) into one TFRecord file, in order.

    The workers also serialize, so only finished records travel back. The directory of
    ``output_file`` is created. Progress (examples done, rate, ETA) is logged every 10 s. Returns the
    number of records written.
    """
    encode = _example_encoder(label_list, max_seq_length, tokenizer, is_regression)
    logging.info("Writing %d examples to %s", len(examples), output_file)
    for example in examples[:3]:
        features = encode(example)
        length = sum(features.input_mask)
        logging.info("guid: %s\n  input_ids: %s\n  segment_ids: %s\n  label: %r (id %r)",
                     example.guid, features.input_ids[:length], features.segment_ids[:length],
                     example.label, features.label_id)
    serialize = functools.partial(_encode_and_serialize, encode=encode, is_regression=is_regression)
    with records.RoundRobinWriter([output_file]) as writer:
        for record in parallel.progress(parallel.map_items(serialize, examples, num_workers), len(examples),
                                        "examples", label=f"{os.path.basename(output_file)}: "):
            writer.write(record)
        return writer.count


def classifier_feature_spec(seq_length: int, is_regression: bool) -> dict[str, tf.io.FixedLenFeature]:
    """Parsing spec of the on-disk features: [S] int64 ids and scalar label/is_real_example."""
    return {
        "input_ids": records.fixed_len_int(seq_length),
        "input_mask": records.fixed_len_int(seq_length),
        "segment_ids": records.fixed_len_int(seq_length),
        "label_ids": tf.io.FixedLenFeature([], tf.float32 if is_regression else tf.int64),
        "is_real_example": tf.io.FixedLenFeature([], tf.int64),
    }


def classifier_dataset(path: str | Sequence[str], seq_length: int, batch_size: int, is_training: bool,
                       is_regression: bool, input_context: tf.distribute.InputContext | None = None,
                       drop_remainder: bool | None = None, shuffle_buffer_size: int = 100,
                       seed: int | None = None) -> tf.data.Dataset:
    """Reads classification TFRecords as batches of model inputs.

    Args:
      path: a TFRecord file (or list / comma-separated globs) written by
        `file_based_convert_examples_to_features`.
      seq_length: S, the ``max_seq_length`` the file was written with.
      batch_size: the global batch size; with ``input_context`` each input pipeline gets its
        per-replica share.
      is_training: shard by ``input_context``, repeat forever and shuffle (buffer 100 as the original).
        Otherwise every example is read once, in file order.
      is_regression: labels are float32 (STS-B) instead of int64.
      input_context: from ``strategy.distribute_datasets_from_function``.
      drop_remainder: defaults to ``is_training``; eval and predict keep the final partial batch.
      shuffle_buffer_size: shuffle buffer when training.
      seed: shuffle seed (None: nondeterministic).

    Returns:
      A dataset of dicts: ``input_word_ids``, ``input_mask``, ``input_type_ids`` int32 [B, S];
      ``label_ids`` [B] int32 (float32 for regression); ``is_real_example`` [B] int32.
    """
    return records.finetuning_dataset(path, classifier_feature_spec(seq_length, is_regression), batch_size, is_training, input_context,
                                      drop_remainder, shuffle_buffer_size, seed)
