"""TFRecord helpers shared by every feature writer and reader (pretraining, GLUE, SQuAD, RACE).

The original release writes int64 features as ``tf.train.Int64List`` and weights as ``tf.train.FloatList``;
readers parse them with ``FixedLenFeature`` and cast int64 to int32 (TPUs have no int64 ops).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import tensorflow as tf

# The writers and the file-pattern expansion are TensorFlow-free; they live in `tfrecord` / `fileio`.
from albert_tf.data.tfrecord import RoundRobinWriter  # noqa: F401  (re-exported)
from albert_tf.fileio import expand_file_patterns


def int64_feature(values: Iterable[int]) -> tf.train.Feature:
    """Wraps a sequence of ints as an Int64List feature."""
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def float_feature(values: Iterable[float]) -> tf.train.Feature:
    """Wraps a sequence of floats as a FloatList feature (float32 on disk)."""
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def to_example(features: Mapping[str, tf.train.Feature]) -> tf.train.Example:
    """Builds a ``tf.train.Example`` from named features (insertion order is kept)."""
    return tf.train.Example(features=tf.train.Features(feature=dict(features)))


def fixed_len_int(length: int) -> tf.io.FixedLenFeature:
    """Parsing spec for an int64 feature of fixed length."""
    return tf.io.FixedLenFeature([length], tf.int64)


def fixed_len_float(length: int) -> tf.io.FixedLenFeature:
    """Parsing spec for a float32 feature of fixed length."""
    return tf.io.FixedLenFeature([length], tf.float32)


def parse_and_cast(serialized: tf.Tensor, spec: Mapping[str, tf.io.FixedLenFeature]) -> dict[str, tf.Tensor]:
    """Parses one serialized example (or a batch) and casts every int64 tensor to int32."""
    parsed = tf.io.parse_example(serialized, dict(spec))
    return {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in parsed.items()}


# Feature names in the original TFRecords -> the model's (TF-Hub / Model Garden) input names.
MODEL_INPUT_NAMES = {"input_ids": "input_word_ids", "segment_ids": "input_type_ids"}


def finetuning_dataset(patterns: str | Sequence[str], spec: Mapping[str, tf.io.FixedLenFeature], batch_size: int,
                       is_training: bool, input_context: tf.distribute.InputContext | None = None,
                       drop_remainder: bool | None = None, shuffle_buffer_size: int = 100,
                       seed: int | None = None) -> tf.data.Dataset:
    """The input pipeline shared by the fine-tuning readers (GLUE, SQuAD, RACE).

    Training shards records over input pipelines, repeats and shuffles (buffer 100, as the original);
    otherwise every record is read once, in file order. `batch_size` is global: with an `input_context`
    each pipeline yields its per-replica share. Records are parsed with `spec` after batching, int64 is
    cast to int32 and `input_ids` / `segment_ids` are renamed `input_word_ids` / `input_type_ids`.
    `drop_remainder` defaults to `is_training` (prediction keeps the last partial batch).
    """
    files = expand_file_patterns(patterns, what="input_file")
    if drop_remainder is None:
        drop_remainder = is_training
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    dataset = tf.data.TFRecordDataset(files)
    if is_training:
        if input_context is not None and input_context.num_input_pipelines > 1:
            dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        dataset = dataset.repeat().shuffle(shuffle_buffer_size, seed=seed)

    def to_inputs(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = parse_and_cast(serialized, spec)
        return {MODEL_INPUT_NAMES.get(name, name): value for name, value in parsed.items()}

    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


REBUILD_HINT = "Delete it to have it rebuilt, or pass the feature file written for these settings."


def first_record_features(path: str) -> Mapping[str, tf.train.Feature] | None:
    """The features of the first record of the TFRecord file `path`, None when it holds no record."""
    first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    return None if first is None else tf.train.Example.FromString(first.numpy()).features.feature


def check_sequence_length(path: str, max_seq_length: int, multiple: int = 1,
                          features: Mapping[str, tf.train.Feature] | None = None,
                          error: type[Exception] = ValueError) -> None:
    """Refuses an existing feature file whose `input_ids` length is not `max_seq_length` (times `multiple`
    choices, for multiple-choice features); `features`: its first record's, when the caller has read them.
    An empty file passes (there is nothing to check)."""
    features = first_record_features(path) if features is None else features
    if features is None:
        return
    length = len(features["input_ids"].int64_list.value)
    if length != max_seq_length * multiple:
        raise error(f"{path} was written with max_seq_length={length // multiple}, but --max_seq_length="
                    f"{max_seq_length}. {REBUILD_HINT}")

