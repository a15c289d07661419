"""Whose face is on the merged frame: dlib's identity embedding against the src and the dst person.

The src identity is the mean embedding of (up to MAX_SRC_FACES, evenly spread) src aligned
faces; the dst identity is the mean embedding of the dst faces in the evaluated dst frames.
Each merged face is embedded from the merged frame with its re-found landmarks, and counts
as swapped when it is closer to the src identity than to the dst identity. dlib's own
same-person threshold (0.6) is reported beside the distances for reading them.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.errors import VisageError

MAX_SRC_FACES = 48


def pick_evenly(items: list, limit: int) -> list:
    """At most `limit` items spread evenly over the list (all of them when there are fewer)."""
    if len(items) <= limit:
        return list(items)
    idx = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in idx]


def read_faces(folder: str | Path, limit: int) -> list[tuple[str, np.ndarray, object]]:
    """(name, BGR image, FaceMeta) of up to `limit` faces of an aligned folder (or its faceset.pak)."""
    from core.facelib.face_meta import extract
    from core.faceset_pak import is_aux_image, read_entry, read_faceset
    entries = [(path, entry) for path, _, entry in read_faceset(folder) if not is_aux_image(path)]
    out = []
    for path, entry in pick_evenly(entries, limit):
        data = read_entry(entry) if entry is not None else Path(path).read_bytes()
        meta = extract(data, name=str(path))
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if meta is None or img is None:
            continue
        out.append((Path(path).name, img, meta))
    if not out:
        raise VisageError(f"no aligned faces with Visage metadata in {folder}; extract the src faces first (step 4)")
    return out


def src_identity(encoder, folder: str | Path, limit: int = MAX_SRC_FACES) -> tuple[np.ndarray, int]:
    """(mean embedding (128,), number of faces used) of the src person."""
    faces = read_faces(folder, limit)
    embeddings = np.stack([encoder.embed(img, meta.landmarks) for _, img, meta in faces])
    return embeddings.mean(0), len(faces)


def distances(embeddings: np.ndarray, identity: np.ndarray) -> np.ndarray:
    """Euclidean distance of each (n, 128) embedding to one identity (128,): shape (n,)."""
    return np.linalg.norm(np.atleast_2d(embeddings) - identity[None, :], axis=1)


def summary(to_src: np.ndarray, to_dst: np.ndarray) -> dict:
    """identity.* figures from the per-face distances."""
    to_src, to_dst = np.asarray(to_src, np.float64), np.asarray(to_dst, np.float64)
    n = len(to_src)
    return {"faces": n,
            "swap_rate": float(np.mean(to_src < to_dst)) if n else None,
            "mean_distance_to_src": float(to_src.mean()) if n else None,
            "mean_distance_to_dst": float(to_dst.mean()) if n else None}
