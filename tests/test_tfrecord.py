"""The TensorFlow-free TFRecord writer and Example class against TensorFlow's own, and the local file helpers."""
from __future__ import annotations

import math
import os
import random

import pytest
import tensorflow as tf

from albert_tf import fileio
from albert_tf.data import tfrecord


def random_features(rng: random.Random) -> dict[str, tuple[str, list]]:
    """A random feature map: int64 lists (negative, huge, empty), float lists (inf, nan, -0.0, values that
    round to float32) and bytes lists."""
    features = {}
    for k in range(rng.randint(1, 8)):
        kind = rng.choice(["int64_list", "float_list", "bytes_list"])
        n = rng.choice([0, 1, rng.randint(2, 300)])
        if kind == "int64_list":
            values = [rng.choice([0, 1, 127, 128, 16383, 16384, -1, -(2 ** 63), 2 ** 63 - 1,
                                  rng.randint(-2 ** 40, 2 ** 40), rng.randint(0, 30000)]) for _ in range(n)]
        elif kind == "float_list":
            values = [rng.choice([0.0, -0.0, 1.0, math.inf, -math.inf, math.nan, 1e-40, rng.uniform(-1e6, 1e6)])
                      for _ in range(n)]
        else:
            values = [bytes(rng.randrange(256) for _ in range(rng.randint(0, 20))) for _ in range(n)]
        features[f"f{k}_{rng.randint(0, 99)}"] = (kind, values)
    return features


def build(example_class, features: dict[str, tuple[str, list]]):
    example = example_class()
    for name, (kind, values) in features.items():
        getattr(example.features.feature[name], kind).value.extend(values)
    return example


def test_example_bytes_equal_tensorflow_examples():
    rng = random.Random(0)
    for _ in range(300):
        features = random_features(rng)
        ours = build(tfrecord.Example, features).SerializeToString(deterministic=True)
        theirs = build(tf.train.Example, features).SerializeToString(deterministic=True)
        assert ours == theirs
        # And TensorFlow parses ours back to the same message.
        assert tf.train.Example.FromString(ours).SerializeToString(deterministic=True) == ours


def test_writer_bytes_equal_tf_io_tfrecordwriter_and_read_back(tmp_path):
    rng = random.Random(1)
    records = [b"", b"x", bytes(range(256)) * 400] + [
        build(tf.train.Example, random_features(rng)).SerializeToString(deterministic=True) for _ in range(50)]
    ours, theirs = str(tmp_path / "ours.tfrecord"), str(tmp_path / "theirs.tfrecord")
    with tfrecord.TFRecordWriter(ours) as writer:
        for record in records:
            writer.write(record)
    with tf.io.TFRecordWriter(theirs) as writer:
        for record in records:
            writer.write(record)
    with open(ours, "rb") as f, open(theirs, "rb") as g:
        assert f.read() == g.read()
    assert [r.numpy() for r in tf.data.TFRecordDataset(ours)] == records
    assert tfrecord.read_records(ours) == records


def test_crc32c_check_value_and_corruption_detected(tmp_path):
    # The CRC-32C check value (RFC 3720, B.4): CRC of the ASCII digits "123456789".
    import google_crc32c

    assert google_crc32c.value(b"123456789") == 0xE3069283
    path = tmp_path / "r.tfrecord"
    with tfrecord.TFRecordWriter(str(path)) as writer:
        writer.write(b"hello world")
    data = bytearray(path.read_bytes())
    data[14] ^= 1  # a data byte
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"r\.tfrecord: CRC mismatch in TFRecord 0"):
        tfrecord.read_records(str(path))
    path.write_bytes(bytes(data[:-2]))
    with pytest.raises(ValueError, match="truncated"):
        tfrecord.read_records(str(path))


def test_round_robin_writer_and_shard_names(tmp_path):
    paths = tfrecord.sharded_names(str(tmp_path / "sub" / "out"), 3)
    assert [os.path.basename(p) for p in paths] == ["out-00000-of-00003", "out-00001-of-00003", "out-00002-of-00003"]
    with tfrecord.RoundRobinWriter(paths) as writer:
        for i in range(7):
            writer.write(bytes([i]))
    assert [tfrecord.read_records(p) for p in paths] == [[b"\0", b"\3", b"\6"], [b"\1", b"\4"], [b"\2", b"\5"]]


def test_local_glob_matches_tf_gfile(tmp_path):
    for name in ("a.txt", "b.txt", ".hidden.txt", "c.dat"):
        (tmp_path / name).write_text("x")
    (tmp_path / "d").mkdir()
    for pattern in ("*.txt", "*", "?.txt", "[ab].txt", "missing*"):
        assert fileio.glob(str(tmp_path / pattern)) == sorted(tf.io.gfile.glob(str(tmp_path / pattern))), pattern
    assert fileio.exists(str(tmp_path / "a.txt")) and fileio.isdir(str(tmp_path / "d"))
    assert sorted(fileio.listdir(str(tmp_path))) == sorted(tf.io.gfile.listdir(str(tmp_path)))
