"""Helpers of the sort tests: tagged copies of real faces and their variants.

Each face gets a tag in its metadata (`extra["tag"]`, written with update_meta so the
image stays byte-identical); a sort renames files, so the tags read back in file order
are the new order. Variants (blurred, darkened, mirrored, tilted, bordered copies) are
re-encoded with write_face, so they stay valid faces with the right landmarks. The fixtures
`woman` and `mixed` built from these are in conftest.py.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np

from core.facelib.face_meta import read_face, read_meta, update_meta, write_face
from core.fileio import list_images
from core.sorting.methods import SortOptions
from mainscripts.sorter import sort_folder

# iBUG-68 index of each point's mirror image (left/right swapped)
MIRROR_68 = ([*range(16, -1, -1)] + [*range(26, 16, -1)] + [27, 28, 29, 30] + [*range(35, 30, -1)]
             + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
             + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


def tag(path: Path, name: str) -> None:
    meta = read_meta(path)
    meta.extra["tag"] = name
    update_meta(path, meta)


def copy_tagged(src_dir: Path, dst: Path, prefix: str, limit: int = 0) -> list[Path]:
    """Copy the faces of src_dir into dst as <prefix><stem>.jpg, tagged with that stem."""
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for p in list_images(src_dir)[:limit or None]:
        q = dst / f"{prefix}{p.stem}.jpg"
        shutil.copyfile(p, q)
        tag(q, q.stem)
        out.append(q)
    return out


def variant(src: Path, name: str, image_fn=None, meta_fn=None) -> Path:
    """A re-encoded copy of face `src` beside it, tagged `name`, image/meta changed by the functions."""
    image, meta = read_face(src)
    if image_fn is not None:
        image = image_fn(image)
    if meta_fn is not None:
        meta = meta_fn(meta)
    meta.extra["tag"] = name
    out = src.parent / f"{name}.jpg"
    write_face(out, image, meta, jpeg_quality=95)
    return out


def tags(folder: Path) -> list[str]:
    files = list_images(folder)
    assert [p.name for p in files] == [f"{i:05d}.jpg" for i in range(len(files))]
    return [read_meta(p).extra["tag"] for p in files]


def sort(folder: Path, method: str, workers: int = 1, **opts):
    return sort_folder(folder, method, SortOptions(**opts), workers=workers)


def gaussian(image):
    return cv2.GaussianBlur(image, (0, 0), 2.0)


def motion(image):
    k = np.zeros((9, 9), np.float32)
    k[4, :] = 1 / 9
    return cv2.filter2D(image, -1, k)


def mirror(image_meta_size: int):
    def fn(meta):
        lm = meta.landmarks.copy()
        lm[:, 0] = image_meta_size - 1 - lm[:, 0]
        meta.landmarks = lm[MIRROR_68]
        return meta
    return fn


def tilt_homography(size: int, degrees: float, focal: float = 1.2) -> np.ndarray:
    """Perspective of the face plane turned about its horizontal axis; > 0 moves the top away."""
    c, f, t = (size - 1) / 2, focal * size, np.radians(degrees)
    corners = np.float32([[0, 0], [size - 1, 0], [size - 1, size - 1], [0, size - 1]])
    out = []
    for x, y in corners:
        u, v = x - c, y - c
        z = f - v * np.sin(t)          # top (v < 0) farther when t > 0
        out.append([c + f * u / z, c + f * v * np.cos(t) / z])
    return cv2.getPerspectiveTransform(corners, np.float32(out))


def tilt(size: int, degrees: float):
    h = tilt_homography(size, degrees)

    def image_fn(image):
        return cv2.warpPerspective(image, h, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def meta_fn(meta):
        meta.landmarks = cv2.perspectiveTransform(meta.landmarks[None].astype(np.float32), h)[0]
        return meta
    return image_fn, meta_fn


def file_hashes(*folders: Path) -> list[str]:
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for d in folders if d.is_dir()
                  for p in d.iterdir() if p.is_file())


def hsv_mean(path: Path, channel: int) -> float:
    image, _ = read_face(path)
    return float(cv2.cvtColor(image, cv2.COLOR_BGR2HSV)[..., channel].mean())
