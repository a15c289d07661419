"""Per-face measurements for the sort methods, computed in worker processes.

Each sort method names the features it needs; `load_faces` reads every face once (the
metadata alone when no pixels are needed), in both cores' worker processes, and returns
one `FaceRecord` per readable face plus a line for every file it could not use. Files
without Visage metadata are reported and left alone, never sorted or trashed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

# Features computed from pixels; everything else comes from the metadata.
PIXEL_FEATURES = frozenset({"sharpness", "motion_blur", "hist_bgr", "hist_gray_masked", "hist_gray",
                            "brightness", "hue", "black", "thumb", "embedding"})
THUMB_SIZE = 32             # absdiff compares faces as 32x32 grey thumbnails
CHUNK = 32                  # at most this many faces per worker job: fewer round trips

_encoder = None             # per-worker identity encoder (built once, in the pool initializer)


@dataclass
class FaceRecord:
    path: Path
    source_filename: str
    source_rect: tuple[int, int, int, int]
    yaw: float                  # rough radians, DeepFaceLab's sign (see _load_one)
    pitch: float
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def rect_area(self) -> float:
        l, t, r, b = self.source_rect
        return float(abs(r - l) * abs(b - t))


def _bhattacharyya_ready(hist: np.ndarray) -> np.ndarray:
    """Square root of the normalised histogram: Bhattacharyya distances become dot products."""
    h = np.asarray(hist, np.float64).ravel()
    s = h.sum()
    return np.sqrt(h / s if s > 0 else h).astype(np.float32)


def measure(image: np.ndarray, meta, wanted: Sequence[str]) -> dict[str, Any]:
    """The pixel features in `wanted` for one decoded face (BGR uint8) and its metadata."""
    import cv2
    from core.imagelib.masks import hull_mask
    from core.sorting.sharpness import cpbd_sharpness, face_region, laplacian_sharpness
    out: dict[str, Any] = {}
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if "sharpness" in wanted or "motion_blur" in wanted:
        region = face_region(gray.shape, meta.landmarks, meta.eyebrows_expand_mod)
        if "sharpness" in wanted:
            out["sharpness"] = cpbd_sharpness(gray, region)
        if "motion_blur" in wanted:
            out["motion_blur"] = laplacian_sharpness(gray, region)
    if "hist_bgr" in wanted:
        out["hist_bgr"] = np.concatenate([_bhattacharyya_ready(
            cv2.calcHist([image], [c], None, [256], [0, 256])) for c in range(3)])
    if "hist_gray_masked" in wanted:
        mask = hull_mask(gray.shape, meta.landmarks, meta.eyebrows_expand_mod)[..., 0]
        masked = (gray * mask).astype(np.uint8)
        out["hist_gray_masked"] = _bhattacharyya_ready(cv2.calcHist([masked], [0], None, [256], [0, 256]))
    if "hist_gray" in wanted:
        out["hist_gray"] = _bhattacharyya_ready(cv2.calcHist([gray], [0], None, [256], [0, 256]))
    if "brightness" in wanted or "hue" in wanted:
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        out["brightness"] = float(hsv[..., 2].mean())
        out["hue"] = float(hsv[..., 0].mean())
    if "black" in wanted:
        out["black"] = int(np.count_nonzero(image == 0))
    if "thumb" in wanted:
        out["thumb"] = cv2.resize(gray, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA).ravel()
    if "embedding" in wanted:
        out["embedding"] = _encoder.embed(image, meta.landmarks)
    return out


def init_worker(wanted: Sequence[str]) -> None:
    """Pool initializer: build the identity network once per worker when it is needed."""
    global _encoder
    if "embedding" in wanted and _encoder is None:
        from core.facelib.identity import IdentityEncoder
        _encoder = IdentityEncoder()


def _load_one(path: str, wanted: Sequence[str]) -> FaceRecord | str:
    from core.errors import VisageError
    from core.facelib.face_meta import read_face, read_meta
    from core.facelib.geometry import estimate_pose
    try:
        if PIXEL_FEATURES.intersection(wanted):
            image, meta = read_face(path)
        else:
            image, meta = None, read_meta(path)
    except VisageError as e:
        return str(e)
    except Exception as e:   # noqa: BLE001 - one broken file must not stop the sort
        return f"{path}: cannot be read ({type(e).__name__}: {e})"
    yaw, pitch = estimate_pose(meta.landmarks)
    # DeepFaceLab's signs (checked against its solvePnP estimate on real faces): yaw > 0 when
    # the face turns toward the image's left, pitch > 0 when it looks up.
    record = FaceRecord(Path(path), meta.source_filename, tuple(meta.source_rect), -yaw, -pitch)
    if image is not None:
        record.values = measure(image, meta, wanted)
    return record


def load_chunk(job: tuple[Sequence[str], Sequence[str]]) -> list[tuple[str, FaceRecord | str]]:
    """Worker job: a chunk of paths -> (path, FaceRecord or the reason it was skipped) for each."""
    paths, wanted = job
    return [(p, _load_one(p, wanted)) for p in paths]


def load_faces(paths: Sequence[Path], wanted: Sequence[str], workers: int,
               desc: str = "Loading faces") -> tuple[list[FaceRecord], list[str]]:
    """Records of the usable faces (in the order of `paths`) and one line per skipped file."""
    from core.workers import run_pool
    wanted = tuple(sorted(set(wanted)))
    chunk = max(1, min(CHUNK, -(-len(paths) // (4 * max(workers, 1)))))   # >= 4 jobs per worker
    jobs = [([str(p) for p in paths[i:i + chunk]], wanted) for i in range(0, len(paths), chunk)]
    by_path: dict[str, FaceRecord | str] = {}
    for results in run_pool(load_chunk, jobs, workers, initializer=init_worker, initargs=(wanted,),
                            desc=desc, total=len(paths), weight=len):
        by_path.update(results)
    records, skipped = [], []
    for p in paths:
        r = by_path[str(p)]
        if isinstance(r, FaceRecord):
            records.append(r)
        else:
            skipped.append(r)
    return records, skipped
