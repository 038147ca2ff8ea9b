"""TFRecord files and ``tf.train.Example`` messages without importing TensorFlow.

`Example` is the ``tensorflow.Example`` message class built from its schema (TensorFlow's
``feature.proto`` / ``example.proto``) in a private protobuf descriptor pool, so it needs only the
``protobuf`` package and does not clash with TensorFlow's own class when both are loaded. The same
protobuf runtime serializes both, so ``Example.SerializeToString(deterministic=True)`` gives the same
bytes as ``tf.train.Example``'s (the tests check that).

A TFRecord file is a sequence of records, each framed as (TensorFlow's ``record_writer.cc``)::

    uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)

where ``masked_crc32c(x) = ((crc >> 15 | crc << 17) + 0xa282ead8) mod 2**32`` of the CRC-32C
(Castagnoli) of x, computed by ``google-crc32c`` (hardware-accelerated where the CPU has it).
`TFRecordWriter` writes them (uncompressed, as ``tf.io.TFRecordWriter`` by default).
"""
from __future__ import annotations

import os
import struct
from typing import Sequence

import google_crc32c
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from albert_tf import fileio

_MASK_DELTA = 0xA282EAD8


def _example_classes() -> dict[str, type]:
    """The message classes of TensorFlow's feature.proto and example.proto, from a private pool."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="albert_tf/example.proto", package="tensorflow",
                                               syntax="proto3")

    def message(name: str, *fields: tuple, nested: Sequence[descriptor_pb2.DescriptorProto] = (),
                oneof: str | None = None, map_entry: bool = False) -> descriptor_pb2.DescriptorProto:
        msg = descriptor_pb2.DescriptorProto(name=name, nested_type=list(nested))
        if oneof:
            msg.oneof_decl.add(name=oneof)
        if map_entry:
            msg.options.map_entry = True
        for name_, number, type_, label, type_name in fields:
            f = msg.field.add(name=name_, number=number, type=type_, label=label)
            if type_name:
                f.type_name = type_name
            if oneof:
                f.oneof_index = 0
        return msg

    repeated, optional = field.LABEL_REPEATED, field.LABEL_OPTIONAL
    proto.message_type.extend([
        message("BytesList", ("value", 1, field.TYPE_BYTES, repeated, None)),
        message("FloatList", ("value", 1, field.TYPE_FLOAT, repeated, None)),  # proto3: packed
        message("Int64List", ("value", 1, field.TYPE_INT64, repeated, None)),
        message("Feature", ("bytes_list", 1, field.TYPE_MESSAGE, optional, ".tensorflow.BytesList"),
                ("float_list", 2, field.TYPE_MESSAGE, optional, ".tensorflow.FloatList"),
                ("int64_list", 3, field.TYPE_MESSAGE, optional, ".tensorflow.Int64List"), oneof="kind"),
        message("Features", ("feature", 1, field.TYPE_MESSAGE, repeated, ".tensorflow.Features.FeatureEntry"),
                nested=[message("FeatureEntry", ("key", 1, field.TYPE_STRING, optional, None),
                                ("value", 2, field.TYPE_MESSAGE, optional, ".tensorflow.Feature"),
                                map_entry=True)]),
        message("Example", ("features", 1, field.TYPE_MESSAGE, optional, ".tensorflow.Features")),
    ])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.{name}"))
            for name in ("Example", "Feature")}


# ``tf.train.Example``, TensorFlow-free (same fields, same wire format).
Example = _example_classes()["Example"]


_UINT64 = struct.Struct("<Q")
_UINT32 = struct.Struct("<I")


def masked_crc32c(data: bytes) -> int:
    """TensorFlow's masked CRC-32C of `data` (``crc32c::Mask``)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, `data`, its masked CRC."""
    length = _UINT64.pack(len(data))
    return b"".join((length, _UINT32.pack(masked_crc32c(length)), data, _UINT32.pack(masked_crc32c(data))))


class TFRecordWriter:
    """Writes records to one uncompressed TFRecord file (the bytes of ``tf.io.TFRecordWriter``).

    Local paths are written with Python's file I/O; other filesystems through ``tf.io.gfile``.
    Use as a context manager, or call `close`.
    """

    def __init__(self, path: str):
        self._file = fileio.open_file(path, "wb")

    def write(self, record: bytes) -> None:
        self._file.write(frame(record))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "TFRecordWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_records(path: str) -> list[bytes]:
    """Every record of an uncompressed TFRecord file, CRCs checked (a small reader for tools and tests).

    Raises:
      ValueError: a truncated file or a CRC mismatch, naming the file and the record.
    """
    with fileio.open_file(path, "rb") as f:
        data = f.read()
    out, pos = [], 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"{path}: truncated TFRecord header at byte {pos}.")
        length_bytes = data[pos:pos + 8]
        (length,), (length_crc,) = _UINT64.unpack(length_bytes), _UINT32.unpack(data[pos + 8:pos + 12])
        end = pos + 12 + length + 4
        if length_crc != masked_crc32c(length_bytes) or end > len(data):
            raise ValueError(f"{path}: corrupt or truncated TFRecord {len(out)} at byte {pos}.")
        record = data[pos + 12:pos + 12 + length]
        if _UINT32.unpack(data[end - 4:end])[0] != masked_crc32c(record):
            raise ValueError(f"{path}: CRC mismatch in TFRecord {len(out)} at byte {pos}.")
        out.append(record)
        pos = end
    return out


def sharded_names(output_file: str, num_shards: int) -> list[str]:
    """``<output_file>-SSSSS-of-NNNNN`` for every shard (Beam's default shard naming)."""
    return [f"{output_file}-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]


class RoundRobinWriter:
    """Writes serialized examples round-robin over several TFRecord files, like the original scripts.

    Use as a context manager; ``write`` takes a serialized ``tf.train.Example``. Parent directories
    are created.
    """

    def __init__(self, output_files: Sequence[str]):
        if not output_files:
            raise ValueError("No output file given: pass at least one path to write TFRecords to.")
        for path in output_files:
            fileio.makedirs(os.path.dirname(os.path.abspath(path)) if fileio.is_local(path)
                            else path.rsplit("/", 1)[0])
        self._writers = [TFRecordWriter(p) for p in output_files]
        self._next = 0
        self.count = 0

    def write(self, serialized: bytes) -> None:
        self._writers[self._next].write(serialized)
        self._next = (self._next + 1) % len(self._writers)
        self.count += 1

    def close(self) -> None:
        for writer in self._writers:
            writer.close()

    def __enter__(self) -> "RoundRobinWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
