"""Atomic writes, safe JSON, unicode-safe image I/O and folder listing.

Every file Visage writes goes through `atomic_write_bytes`: the data lands in a temporary
file in the same folder, is fsynced, then renamed over the target, so a crash, Ctrl-C or
full disk never leaves a half-written file behind. A folder or file that cannot be written
(read-only, no permission, a file where a folder should be, disk full) is one VisageError
line naming the path (`write_error`).

Every JSON document that comes from a file (face metadata, pak index, meta.json, state and
model files) is read by `parse_json`: bounded size and nesting depth (checked without
recursion before parsing), finite numbers only, and every failure one VisageError line.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

import numpy as np

from core.errors import VisageError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _default_file_mode() -> int:
    """What open() would give a new file (0o666 minus the umask); mkstemp makes them 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _default_file_mode()        # read once, at import, before any worker threads exist
JSON_BYTES_LIMIT = 256 * 1024 * 1024    # far above any state, index or model file Visage writes
JSON_DEPTH_LIMIT = 64                   # Visage's own documents nest fewer than 10 levels
JSON_INT_LIMIT = 2 ** 63                # offsets, sizes and counts fit in 64 bits
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")   # may start a lone surrogate, which no path takes
_NO_PERMISSION = "permission denied; choose a folder you may write to, or change its permissions"
_WRITE_ADVICE = {
    errno.ENOSPC: "disk full; free some space and run again",
    errno.EDQUOT: "the disk quota is used up; free some space and run again",
    errno.EROFS: "the file system is read-only; choose a folder on a writable disk",
    errno.EACCES: _NO_PERMISSION,
    errno.EPERM: _NO_PERMISSION,
    errno.EISDIR: "a folder of that name is in the way; move it away or choose another name",
}


def write_error(path: str | os.PathLike, e: OSError) -> VisageError:
    """One line for an OSError met while writing `path`: what went wrong there and what to do."""
    if e.errno in (errno.EEXIST, errno.ENOTDIR):
        blocker = next((p for p in (Path(path), *Path(path).parents) if p.exists() and not p.is_dir()), path)
        return VisageError(f"cannot write {path}: {blocker} is a file, not a folder; "
                           "move it away or choose another folder (nothing was written)")
    advice = _WRITE_ADVICE.get(e.errno, e.strerror or str(e))
    return VisageError(f"cannot write {path}: {advice} (nothing was half-written)")


def ensure_dir(path: str | os.PathLike) -> Path:
    """`path` as an existing folder (created with its parents), or one VisageError line."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path, e) from e
    return path


def writable_dir(path: str | os.PathLike) -> Path:
    """ensure_dir(), then proof that a file can be created in it (a tool like ffmpeg will write there)."""
    path = ensure_dir(path)
    try:
        fd, probe = tempfile.mkstemp(prefix=".tmp_", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise write_error(path, e) from e
    return path


def remove_file(path: str | os.PathLike) -> None:
    """Delete `path` if it exists; a folder that refuses it is one VisageError line."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as e:
        raise write_error(path, e) from e


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A file to write `path` through: readers see the old file or the whole new one, never a part.

    The data goes to a temporary file in the same folder, is fsynced, then renamed over the
    target; on any error (Ctrl-C, full disk) the temporary file is removed and the target
    is untouched.
    """
    path = Path(path)
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=path.suffix, dir=path.parent)
    except OSError as e:
        raise write_error(path, e) from e
    try:
        os.chmod(tmp, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise write_error(path, e) from e
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the new one."""
    with atomic_writer(path) as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, ensure_ascii=False).encode("utf-8"))


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    if abs(value) >= JSON_INT_LIMIT:
        raise ValueError(f"the number {text[:20]}... is too large")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a finite number")


def json_depth(blob: bytes) -> int:
    """Deepest nesting of arrays and objects, strings skipped; counted without recursion."""
    skeleton = np.frombuffer(_JSON_STRING.sub(b'""', blob), np.uint8)
    opens = (skeleton == ord("[")) | (skeleton == ord("{"))
    brackets = opens | (skeleton == ord("]")) | (skeleton == ord("}"))
    return int(np.cumsum(opens[brackets].astype(np.int64) * 2 - 1).max(initial=0))


def parse_json(blob: bytes, what: str, max_bytes: int = JSON_BYTES_LIMIT) -> Any:
    """Decode UTF-8 JSON from an untrusted file; `what` starts the error line ("x.json").

    Refused, each as one VisageError line: more than `max_bytes`, nesting deeper than
    JSON_DEPTH_LIMIT, bytes that are not UTF-8, lone surrogate escapes (text no file name or
    terminal takes), invalid JSON, NaN/Infinity, floats that overflow and integers of
    JSON_INT_LIMIT or more.
    """
    if len(blob) > max_bytes:
        raise VisageError(f"{what} is {len(blob) / 2**20:.1f} MB, over the {max_bytes // 2**20} MB limit")
    if json_depth(blob) > JSON_DEPTH_LIMIT:
        raise VisageError(f"{what} nests deeper than {JSON_DEPTH_LIMIT} levels; it is damaged or not from Visage")
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        raise VisageError(f"{what} is not UTF-8 text (binary or damaged data)") from None
    try:
        value = json.loads(text, parse_float=_finite_float, parse_int=_bounded_int, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise VisageError(f"{what} is not valid JSON ({e.msg} at line {e.lineno})") from e
    except (ValueError, RecursionError) as e:
        raise VisageError(f"{what} is not valid JSON ({e})") from e
    if _SURROGATE_ESCAPE.search(blob):          # rare: then check exactly that every string is real text
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            raise VisageError(f"{what} holds a broken \\u escape (a lone UTF-16 surrogate); it is damaged") from e
    return value


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file Visage wrote, read through parse_json; a file that cannot be read is one line too."""
    try:
        blob = Path(path).read_bytes()
    except OSError as e:
        raise VisageError(f"could not read {path}: {e.strerror or e}") from e
    return parse_json(blob, str(path))


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def natural_key(name: str) -> list:
    """Sort key that puts frame_2 before frame_10."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_images(folder: str | os.PathLike, exts: Iterable[str] = IMAGE_EXTS) -> list[Path]:
    """Image files directly in `folder`, in natural order; a clear error if the folder is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VisageError(f"input folder not found: {folder}")
    exts = tuple(exts)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts
             and not p.name.startswith(".tmp_")]
    return sorted(files, key=lambda p: natural_key(p.name))


def read_image(path: str | os.PathLike) -> np.ndarray | None:
    """Decode an image as BGR uint8 (works with unicode paths on every OS); None if corrupt."""
    import cv2
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return img


def encode_image(img: np.ndarray, ext: str, jpeg_quality: int = 95) -> bytes:
    import cv2
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if ext.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise VisageError(f"could not encode image as {ext}")
    return buf.tobytes()


def write_image(path: str | os.PathLike, img: np.ndarray, jpeg_quality: int = 95) -> None:
    atomic_write_bytes(path, encode_image(img, Path(path).suffix, jpeg_quality))
