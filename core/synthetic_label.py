"""The machine-readable synthetic-media label carried by every merged frame and video.

Frames: PNG text chunks (iTXt, UTF-8) inserted right after IHDR, so any PNG reader
(`exiftool`, Pillow's `info`, browsers' metadata panels) sees them. Videos: container
metadata passed to ffmpeg (`-metadata`, with mp4/mov `use_metadata_tags`). The label uses
IPTC's digital-source-type vocabulary, the term content-provenance tools look for.
"""
from __future__ import annotations

import struct
import zlib

from core.errors import VisageError

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
LABEL = {
    "synthetic_media": "true",
    "DigitalSourceType": DIGITAL_SOURCE_TYPE,
    "Description": "Synthetic media: a face in this image was replaced by Visage, a face-swapping tool.",
    "Software": "Visage",
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _itxt(key: str, text: str) -> bytes:
    # keyword \0 compression-flag compression-method language \0 translated-keyword \0 text
    return _chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8"))


def _chunks(png: bytes):
    if not png.startswith(_PNG_SIGNATURE):
        raise VisageError("not a PNG image")
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        end = pos + 12 + length
        if end > len(png):
            raise VisageError("PNG image is truncated")
        yield kind, png[pos + 8:pos + 8 + length], pos, end
        pos = end


def label_png(png: bytes, extra: dict[str, str] | None = None) -> bytes:
    """The same PNG with the label's text chunks after IHDR (existing label chunks replaced)."""
    keys = {**LABEL, **(extra or {})}
    out, inserted = [png[:len(_PNG_SIGNATURE)]], False
    for kind, data, start, end in _chunks(png):
        if kind in (b"iTXt", b"tEXt") and data.split(b"\0", 1)[0].decode("latin-1") in keys:
            continue
        out.append(png[start:end])
        if kind == b"IHDR" and not inserted:
            out.extend(_itxt(k, v) for k, v in keys.items())
            inserted = True
    return b"".join(out)


def read_png_text(png: bytes) -> dict[str, str]:
    """Text chunks (tEXt and uncompressed iTXt) of a PNG as a dict."""
    found: dict[str, str] = {}
    for kind, data, _, _ in _chunks(png):
        if kind == b"tEXt":
            key, _, value = data.partition(b"\0")
            found[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":
            key, _, rest = data.partition(b"\0")
            if rest[:1] == b"\0":                      # uncompressed
                text = rest[2:].split(b"\0", 2)[-1]
                found[key.decode("latin-1")] = text.decode("utf-8")
    return found


def is_labelled_png(png: bytes) -> bool:
    return read_png_text(png).get("DigitalSourceType") == DIGITAL_SOURCE_TYPE


def video_metadata() -> dict[str, str]:
    """Container tags for core.video.video_from_sequence(metadata=...)."""
    return {"comment": LABEL["Description"], "description": LABEL["Description"],
            "synthetic_media": "true", "digital_source_type": DIGITAL_SOURCE_TYPE, "encoder_app": "Visage"}
