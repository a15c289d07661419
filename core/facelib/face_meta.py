"""Metadata embedded in every aligned face JPEG.

An aligned face carries everything later steps need (landmarks, where it came from in the
frame, the frame-to-face transform, XSeg polygons and mask), so sort, train, merge and
resize work from the face files alone, with no side file to lose or get out of sync.

It is stored as UTF-8 JSON in JPEG APP15 segments, never as executable serialisation, so a
shared faceset cannot run code on the reader's machine. One segment holds at most 65533
bytes, so the JSON is split into numbered parts, each starting with `SIGNATURE` + part index
+ part count; other tools' segments (EXIF, ICC, ...) are left byte-for-byte untouched.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from core.errors import VisageError
from core.facelib.face_type import NAMES
from core.fileio import atomic_write_bytes, parse_json

META_VERSION = 1
VERSION_KEY = "visage_meta_version"
FACE_TYPES = NAMES
SIGNATURE = b"VISAGE\x00"
META_BYTES_LIMIT = 16 * 1024 * 1024   # far above any real face; guards against runaway masks
MAX_FACE_SIDE = 8192                  # extract and resize make faces of at most 2048 px
_APP15 = 0xEF
_MAX_PAYLOAD = 65533                  # segment length field (≤ 65535) counts its own 2 bytes
_PART_HEADER = len(SIGNATURE) + 4
_PART_DATA = _MAX_PAYLOAD - _PART_HEADER
_STANDALONE = {0x01, *range(0xD0, 0xD8)}   # TEM and RSTn carry no length field
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Keys DeepFaceLab writes into its APP15 dict; their presence marks a legacy face.
_DFL_KEYS = (b"face_type", b"landmarks", b"source_filename", b"image_to_face_mat")
_KNOWN_KEYS = ("face_type", "landmarks", "source_filename", "source_rect", "source_landmarks",
               "image_to_face_mat", "eyebrows_expand_mod", "seg_ie_polys", "xseg_mask")
_REQUIRED_KEYS = _KNOWN_KEYS[:6]
_COORD_LIMIT = 2 ** 31                # source_rect: pixel coordinates of a frame


def _coerce(convert: Callable[[Any], Any], value: Any) -> Any:
    """Best-effort conversion; input that does not convert is left for validate() to report."""
    try:
        return convert(value)
    except (TypeError, ValueError, KeyError, OverflowError):
        return value


def _float_list(arr: np.ndarray) -> list:
    """Nested lists of the shortest decimals that read back as the exact same float32.

    str(np.float32) is the shortest float32 round-trip text; parsing it as float64 and
    rounding again could (very rarely) land one ulp off, so those values keep full float64.
    """
    def one(v: np.float32) -> float:
        short = float(str(v))
        return short if np.float32(short) == v else float(v)
    return [[one(v) for v in row] for row in arr]


@dataclass(eq=False)
class FaceMeta:
    """One aligned face's metadata; arrays are float32, `extra` keeps keys newer Visage added."""
    face_type: str
    landmarks: np.ndarray            # (68, 2) in aligned-face pixels
    source_filename: str
    source_rect: tuple[int, int, int, int]   # l, t, r, b in the source frame
    source_landmarks: np.ndarray     # (68, 2) in frame pixels
    image_to_face_mat: np.ndarray    # (2, 3) affine, frame -> aligned face
    eyebrows_expand_mod: float = 1.0
    seg_ie_polys: list[dict] = field(default_factory=list)
    xseg_mask: bytes | None = None   # PNG bytes
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Normalise to what a JSON round trip gives back, so `==` holds after write + read.
        f32 = lambda a: np.array(a, dtype=np.float32)  # noqa: E731  (overflow -> inf, refused by validate)
        with np.errstate(over="ignore"):
            self.landmarks = _coerce(f32, self.landmarks)
            self.source_landmarks = _coerce(f32, self.source_landmarks)
            self.image_to_face_mat = _coerce(f32, self.image_to_face_mat)
        self.source_rect = _coerce(lambda r: tuple(int(round(float(v))) for v in r), self.source_rect)
        self.eyebrows_expand_mod = _coerce(float, self.eyebrows_expand_mod)
        self.seg_ie_polys = _coerce(lambda polys: [
            {**p, "points": [[float(x), float(y)] for x, y in p["points"]]} for p in polys],
            self.seg_ie_polys)
        if isinstance(self.xseg_mask, (bytearray, memoryview, np.ndarray)):
            self.xseg_mask = bytes(self.xseg_mask)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FaceMeta):
            return NotImplemented
        arrays = ("landmarks", "source_landmarks", "image_to_face_mat")
        return (all(np.array_equal(getattr(self, a), getattr(other, a)) for a in arrays)
                and all(getattr(self, k) == getattr(other, k)
                        for k in (*_KNOWN_KEYS, "extra") if k not in arrays))

    def validate(self) -> None:
        """Raise VisageError naming the first bad field, so bad data never reaches a file."""
        if self.face_type not in FACE_TYPES:
            raise VisageError(f"face metadata: unknown face_type {self.face_type!r} "
                              f"(expected one of {', '.join(FACE_TYPES)})")
        for name, shape in (("landmarks", (68, 2)), ("source_landmarks", (68, 2)),
                            ("image_to_face_mat", (2, 3))):
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.shape != shape:
                got = arr.shape if isinstance(arr, np.ndarray) else type(arr).__name__
                raise VisageError(f"face metadata: {name} must be a {shape[0]}x{shape[1]} "
                                  f"array of numbers, got {got}")
            if not np.isfinite(arr).all():
                raise VisageError(f"face metadata: {name} contains NaN or infinite values")
        if not isinstance(self.source_filename, str):
            raise VisageError("face metadata: source_filename must be a string")
        rect = self.source_rect
        if not (isinstance(rect, tuple) and len(rect) == 4
                and all(isinstance(v, int) and abs(v) < _COORD_LIMIT for v in rect)):
            raise VisageError(f"face metadata: source_rect must be 4 integers l,t,r,b, got {rect!r}")
        if not isinstance(self.eyebrows_expand_mod, float) or not math.isfinite(self.eyebrows_expand_mod):
            raise VisageError("face metadata: eyebrows_expand_mod must be a finite number")
        _validate_polys(self.seg_ie_polys)
        if self.xseg_mask is not None and not (isinstance(self.xseg_mask, bytes)
                                               and self.xseg_mask.startswith(_PNG_SIGNATURE)):
            raise VisageError("face metadata: xseg_mask must be PNG-encoded bytes or None")
        if not isinstance(self.extra, dict) or not all(isinstance(k, str) for k in self.extra):
            raise VisageError("face metadata: extra must be a dict with string keys")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: arrays as nested lists, the mask as base64 text."""
        d: dict[str, Any] = {VERSION_KEY: META_VERSION}
        d.update({k: v for k, v in self.extra.items() if k not in _KNOWN_KEYS and k != VERSION_KEY})
        d.update(face_type=self.face_type,
                 landmarks=_float_list(self.landmarks),
                 source_filename=self.source_filename,
                 source_rect=list(self.source_rect),
                 source_landmarks=_float_list(self.source_landmarks),
                 image_to_face_mat=_float_list(self.image_to_face_mat),
                 eyebrows_expand_mod=float(self.eyebrows_expand_mod),
                 seg_ie_polys=self.seg_ie_polys,
                 xseg_mask=None if self.xseg_mask is None
                 else base64.b64encode(self.xseg_mask).decode("ascii"))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaceMeta:
        """Inverse of to_dict(); validates, and refuses data from a newer format version."""
        if not isinstance(d, dict):
            raise VisageError("face metadata is not a JSON object")
        version = d.get(VERSION_KEY)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise VisageError(f"face metadata has no valid {VERSION_KEY} (got {version!r})")
        if version > META_VERSION:
            raise VisageError(f"face metadata is format version {version}, newer than this Visage "
                              f"understands ({META_VERSION}); update Visage")
        missing = [k for k in _REQUIRED_KEYS if d.get(k) is None]
        if missing:
            raise VisageError(f"face metadata is missing {', '.join(missing)}")
        fields = {k: d[k] for k in _KNOWN_KEYS if d.get(k) is not None}   # null -> default
        if "xseg_mask" in fields:
            try:
                fields["xseg_mask"] = base64.b64decode(fields["xseg_mask"], validate=True)
            except (binascii.Error, TypeError, ValueError) as e:
                raise VisageError("face metadata: xseg_mask is not valid base64") from e
        meta = cls(**fields, extra={k: v for k, v in d.items()
                                    if k not in _KNOWN_KEYS and k != VERSION_KEY})
        meta.validate()
        return meta


def _validate_polys(polys: Any) -> None:
    if not isinstance(polys, list):
        raise VisageError("face metadata: seg_ie_polys must be a list of polygons")
    for i, poly in enumerate(polys):
        ok = (isinstance(poly, dict) and poly.get("type") in ("include", "exclude")
              and isinstance(poly.get("points"), list))
        if ok:
            pts = poly["points"]
            ok = all(isinstance(p, (list, tuple)) and len(p) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in p) for p in pts)
        if not ok:
            raise VisageError(f"face metadata: seg_ie_polys[{i}] must be "
                              '{"type": "include"|"exclude", "points": [[x, y], ...]} '
                              "with finite numbers")


# ---------------------------------------------------------------- JPEG segments

class _Segment(NamedTuple):
    marker: int
    raw: bytes       # exactly as in the file: fill bytes, marker, length, payload
    payload: bytes


def _split_jpeg(data: bytes, name: str) -> tuple[list[_Segment], bytes]:
    """Header segments up to (not including) SOS, and the rest of the file from SOS on.

    Joining every `raw` plus the tail gives back `data` unchanged, which is what lets
    update_meta() keep the entropy-coded image byte-identical.
    """
    if data[:2] != b"\xff\xd8":
        raise VisageError(f"{name} is not a JPEG file")
    segments: list[_Segment] = []
    pos, n = 2, len(data)
    while pos < n:
        start = pos
        if data[pos] != 0xFF:
            raise VisageError(f"{name} is a corrupt JPEG (bad marker at byte {pos})")
        while pos < n and data[pos] == 0xFF:   # fill bytes before a marker are legal
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xDA:
            return segments, data[start:]
        if marker in _STANDALONE:
            segments.append(_Segment(marker, data[start:pos], b""))
            continue
        if marker in (0x00, 0xD8, 0xD9):
            raise VisageError(f"{name} is a corrupt JPEG (marker 0x{marker:02X} "
                              f"before the image data)")
        if pos + 2 > n:
            break
        length = int.from_bytes(data[pos:pos + 2], "big")
        if length < 2 or pos + length > n:
            raise VisageError(f"{name} is a corrupt or truncated JPEG (bad segment length)")
        segments.append(_Segment(marker, data[start:pos + length], data[pos + 2:pos + length]))
        pos += length
    raise VisageError(f"{name} is a truncated JPEG (no image data)")


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}   # frame headers (not DHT/JPG/DAC)


def _frame_size(segments: list[_Segment], name: str) -> tuple[int, int]:
    for seg in segments:
        if seg.marker in _SOF_MARKERS and len(seg.payload) >= 5:
            return int.from_bytes(seg.payload[1:3], "big"), int.from_bytes(seg.payload[3:5], "big")
    raise VisageError(f"{name} is a corrupt JPEG (no frame header); re-extract this face")


def jpeg_size(jpeg_bytes: bytes, *, name: str = "JPEG data") -> tuple[int, int]:
    """(height, width) from the JPEG frame header, without decoding any pixels."""
    return _frame_size(_split_jpeg(jpeg_bytes, name)[0], name)


def _is_visage(seg: _Segment) -> bool:
    return seg.marker == _APP15 and seg.payload.startswith(SIGNATURE)


def _is_legacy_dfl(seg: _Segment) -> bool:
    """DeepFaceLab's APP15 holds a binary Python dict (protocol byte 0x80) with its keys."""
    return (seg.marker == _APP15 and not seg.payload.startswith(SIGNATURE)
            and (seg.payload[:1] == b"\x80" or any(k in seg.payload for k in _DFL_KEYS)))


def _encode(meta: FaceMeta) -> bytes:
    meta.validate()
    try:     # UnicodeEncodeError (a ValueError): a lone surrogate, e.g. from an undecodable file name
        blob = json.dumps(meta.to_dict(), ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise VisageError(f"face metadata cannot be stored as JSON: {e}") from e
    if len(blob) > META_BYTES_LIMIT:
        raise VisageError(f"face metadata is {len(blob) / 2**20:.1f} MB, over the "
                          f"{META_BYTES_LIMIT // 2**20} MB limit (is the XSeg mask far too large?)")
    return blob


def _decode(segments: list[_Segment], name: str) -> FaceMeta | None:
    parts = [s.payload for s in segments if _is_visage(s)]
    if not parts:
        if any(_is_legacy_dfl(s) for s in segments):
            raise VisageError(f"{name} is a DeepFaceLab faceset image (old, unsafe metadata format); "
                              "import the faceset with `main.py util --import-dfl-faceset` first")
        return None
    numbered = {}
    for p in parts:
        head = p[len(SIGNATURE):_PART_HEADER]
        index, count = int.from_bytes(head[:2], "big"), int.from_bytes(head[2:], "big")
        if count != len(parts) or index >= count or index in numbered:
            raise VisageError(f"{name} has damaged Visage metadata (segment parts missing or "
                              "duplicated); re-extract this face")
        numbered[index] = p[_PART_HEADER:]
    blob = b"".join(numbered[i] for i in range(len(parts)))
    try:
        d = parse_json(blob, "it", META_BYTES_LIMIT)
    except VisageError as e:
        raise VisageError(f"{name} has corrupt Visage metadata ({e}); re-extract this face") from e
    try:
        return FaceMeta.from_dict(d)
    except VisageError as e:
        raise VisageError(f"{name}: {e}") from e


def embed(jpeg_bytes: bytes, meta: FaceMeta, *, name: str = "JPEG data") -> bytes:
    """Return `jpeg_bytes` with `meta` as its Visage segments (old ones replaced).

    The new segments go just before the first non-APPn segment, i.e. after the last APPn
    of the header, where DeepFaceLab also puts APP15; nothing else changes.
    """
    blob = _encode(meta)
    segments, tail = _split_jpeg(jpeg_bytes, name)
    segments = [s for s in segments if not _is_visage(s)]
    at = next((i for i, s in enumerate(segments) if not 0xE0 <= s.marker <= 0xEF), len(segments))
    chunks = [blob[i:i + _PART_DATA] for i in range(0, len(blob), _PART_DATA)] or [b""]
    new = []
    for i, chunk in enumerate(chunks):
        payload = SIGNATURE + i.to_bytes(2, "big") + len(chunks).to_bytes(2, "big") + chunk
        new.append(b"\xff\xef" + (len(payload) + 2).to_bytes(2, "big") + payload)
    raws = [s.raw for s in segments]
    return b"".join((b"\xff\xd8", *raws[:at], *new, *raws[at:], tail))


def legacy_dfl_payload(jpeg_bytes: bytes, *, name: str = "JPEG data") -> bytes | None:
    """The raw APP15 payload of a DeepFaceLab face, or None; it is never decoded here.

    Only core/facelib/dfl_import.py decodes it, through its restricted loader.
    """
    segments, _ = _split_jpeg(jpeg_bytes, name)
    return next((s.payload for s in segments if _is_legacy_dfl(s)), None)


def strip_metadata(jpeg_bytes: bytes, *, name: str = "JPEG data") -> bytes:
    """`jpeg_bytes` without Visage and DeepFaceLab face metadata; everything else unchanged."""
    segments, tail = _split_jpeg(jpeg_bytes, name)
    kept = [s.raw for s in segments if not (_is_visage(s) or _is_legacy_dfl(s))]
    return b"".join((b"\xff\xd8", *kept, tail))


def extract(jpeg_bytes: bytes, *, name: str = "JPEG data") -> FaceMeta | None:
    """The Visage metadata in `jpeg_bytes`, or None if it has none.

    Raises VisageError for a non-JPEG, damaged metadata, or a legacy DeepFaceLab face
    (returning None there would send the user to re-extract instead of to the importer).
    """
    segments, _ = _split_jpeg(jpeg_bytes, name)
    return _decode(segments, name)


# ---------------------------------------------------------------- files

def _read_bytes(path: str | os.PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as e:
        raise VisageError(f"face file not found: {path}") from e
    except OSError as e:
        raise VisageError(f"could not read face file {path}: {e.strerror or e}") from e


def _require(meta: FaceMeta | None, path: str | os.PathLike) -> FaceMeta:
    if meta is None:
        raise VisageError(f"{path} has no Visage face metadata; extract faces with "
                          "`main.py extract` first")
    return meta


def read_meta(path: str | os.PathLike) -> FaceMeta:
    """Metadata of an aligned face file, without decoding its pixels."""
    return _require(extract(_read_bytes(path), name=str(path)), path)


def read_face(path: str | os.PathLike) -> tuple[np.ndarray, FaceMeta]:
    """Decoded BGR image and metadata of an aligned face file."""
    import cv2
    data = _read_bytes(path)
    segments, tail = _split_jpeg(data, str(path))
    meta = _require(_decode(segments, str(path)), path)
    # Entropy-coded data escapes 0xFF bytes, so EOI appears in the tail only if the file is whole.
    if b"\xff\xd9" not in tail:
        raise VisageError(f"{path} is a truncated JPEG; re-extract this face")
    h, w = _frame_size(segments, str(path))
    if not 0 < max(h, w) <= MAX_FACE_SIDE:          # a damaged header would make the decoder allocate GBs
        raise VisageError(f"{path} claims to be {w}x{h} pixels, not an aligned face size; it is damaged")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise VisageError(f"{path} is a corrupt JPEG (the image cannot be decoded)")
    return image, meta


def write_face(path: str | os.PathLike, image_bgr: np.ndarray, meta: FaceMeta,
               jpeg_quality: int = 90) -> None:
    """Encode `image_bgr` as JPEG with `meta` embedded and write it atomically."""
    import cv2
    meta.validate()
    try:
        ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    except cv2.error:
        ok = False
    if not ok:
        raise VisageError(f"could not encode the face image for {path} as JPEG")
    atomic_write_bytes(path, embed(buf.tobytes(), meta, name=str(path)))


def update_meta(path: str | os.PathLike, meta: FaceMeta) -> None:
    """Replace the metadata of `path` in place; the image data is kept byte-identical."""
    atomic_write_bytes(path, embed(_read_bytes(path), meta, name=str(path)))
