"""Helpers of the hostile-input and fuzz tests: real faces and paks with hand-made contents.

`embed_raw_meta` puts any bytes where a face's metadata JSON goes (through face_meta's own
segment writer, so only the JSON is hostile); `split_pak`/`make_pak` rebuild a faceset.pak
around any index. `assert_one_error` is what every hostile case must print.
"""
from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import main
from core.facelib import face_meta as fm
from core.faceset_pak import _HEADER, MAGIC, VERSION

HUGE_INT = "1" + "0" * 400          # 10**400: overflows every float


def run(*argv) -> int:
    """main.main; argparse's own exit (a bad flag) comes back as its exit code."""
    try:
        return main.main([str(a) for a in argv])
    except SystemExit as e:
        return e.code


def deep_json(levels: int) -> str:
    return "[" * levels + "]" * levels


def embed_raw_meta(jpeg: bytes, blob: bytes) -> bytes:
    """`jpeg` with `blob` as its Visage metadata, byte for byte (no validation, no JSON encoding)."""
    with mock.patch.object(fm, "_encode", return_value=blob):
        return fm.embed(jpeg, None)


def meta_text(jpeg: bytes) -> str:
    """The JSON text of a real face's metadata, for editing as text."""
    return json.dumps(fm.extract(jpeg).to_dict())


def split_pak(raw: bytes) -> tuple[bytes, bytes]:
    """(index JSON bytes, data bytes) of a pak."""
    _, _, index_len = _HEADER.unpack(raw[:_HEADER.size])
    return raw[_HEADER.size:_HEADER.size + index_len], raw[_HEADER.size + index_len:]


def make_pak(index: bytes, data: bytes, version: int = VERSION) -> bytes:
    return _HEADER.pack(MAGIC, version, len(index)) + index + data


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes): 'nothing changed' is equality."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_error(err: str, *words: str) -> str:
    """Exactly one `error:` line (progress bars aside), no traceback; returns that line."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]
