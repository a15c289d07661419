"""TensorBoard event files without TensorFlow: scalars and images, as TFRecords of Event protobufs.

Training may run under PyTorch or JAX, so the trainer cannot lean on `tf.summary`. The
format is small: each record is `length (u64) | masked CRC-32C of length | Event bytes |
masked CRC-32C of the bytes`, and an Event is a protobuf with `wall_time` (1, double),
`step` (2, int64), `file_version` (3, string) or `summary` (5) holding `Summary.Value`s of
`tag` (1) and `simple_value` (2, float) or `image` (4: height 1, width 2, colorspace 3,
encoded PNG/JPEG 4). Records are only ever appended, and TensorBoard reads a file whose
last record was cut short by a kill up to that record, so a crash loses at most the tail.
"""
from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

import numpy as np


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum TFRecord uses (zlib's crc32 is a different polynomial)."""
    crc, table = 0xFFFFFFFF, _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    """One TFRecord around `data`."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked(crc32c(length))) + data + struct.pack("<I", _masked(crc32c(data)))


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1                       # negative int64s as protobuf writes them
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _field(number, 2) + _varint(len(data)) + data


def _event(step: int, wall_time: float, body: bytes) -> bytes:
    return _field(1, 1) + struct.pack("<d", wall_time) + _field(2, 0) + _varint(step) + body


def scalar_value(tag: str, value: float) -> bytes:
    return _bytes_field(1, tag.encode()) + _field(2, 5) + struct.pack("<f", value)


def image_value(tag: str, bgr: np.ndarray) -> bytes:
    import cv2
    ok, png = cv2.imencode(".png", bgr)                 # OpenCV writes a BGR array as a true-colour PNG
    if not ok:
        raise ValueError(f"could not encode the {tag} image")
    h, w = bgr.shape[:2]
    image = (_field(1, 0) + _varint(h) + _field(2, 0) + _varint(w) + _field(3, 0) + _varint(3)
             + _bytes_field(4, png.tobytes()))
    return _bytes_field(1, tag.encode()) + _bytes_field(4, image)


class EventWriter:
    """Appends events to one new `events.out.tfevents.*` file in `folder` (one per training run)."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"events.out.tfevents.{time.time():.0f}.{socket.gethostname()}.{os.getpid()}.visage"
        self._file = open(self.path, "ab")
        self._pending: list[bytes] = []
        self._pending.append(record(_event(0, time.time(), _bytes_field(3, b"brain.Event:2"))))
        self.flush()

    def add(self, step: int, values: list[bytes], wall_time: float | None = None) -> None:
        """Summary values (scalar_value / image_value) at `step`; written at the next flush."""
        summary = b"".join(_bytes_field(1, v) for v in values)
        self._pending.append(record(_event(step, wall_time or time.time(), _bytes_field(5, summary))))

    def scalars(self, step: int, figures: dict[str, float]) -> None:
        self.add(step, [scalar_value(k, float(v)) for k, v in figures.items()])

    def flush(self) -> None:
        if self._pending:
            self._file.write(b"".join(self._pending))
            self._pending.clear()
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            os.fsync(self._file.fileno())
            self._file.close()
