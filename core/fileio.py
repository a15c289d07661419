"""Atomic writes, safe JSON, unicode-safe image I/O and folder listing.

Every file Visage writes goes through `atomic_write_bytes`: the data lands in a temporary
file in the same folder, is fsynced, then renamed over the target, so a crash, Ctrl-C or
full disk never leaves a half-written file behind.
"""
from __future__ import annotations

import contextlib
import json
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


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A file to write `path` through: readers see the old file or the whole new one, never a part.

    The data goes to a temporary file in the same folder, is fsynced, then renamed over the
    target; on any error (Ctrl-C, full disk) the temporary file is removed and the target
    is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=path.suffix, dir=path.parent)
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
        if isinstance(e, OSError) and e.errno == 28:
            raise VisageError(f"disk full while writing {path}; free some space and run again "
                              "(nothing was half-written)") from e
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the new one."""
    with atomic_writer(path) as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, ensure_ascii=False).encode("utf-8"))


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise VisageError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from e


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
