"""Where a face was replaced: its mask in the frame, the interior inside it and the ring on its edge.

The merge writes the mask it composited with (`merged_mask/`); that is the region every
pixel figure looks at. Without it (a folder of frames made some other way, or a frame the
merge copied unchanged), the dst face's landmark hull stands in, so a figure is never taken
over the whole frame. Sizes scale with the face (its outer-eye distance), not with the frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.imagelib.masks import hull_mask

MIN_MASK_SHARE = 0.05     # a merge mask covering less of the hull than this is taken as absent
INTERIOR_ERODE = 0.08     # interior: mask > 0.5 eroded by this share of the outer-eye distance
RING_HALF_WIDTH = 0.03    # seam ring: this share of the outer-eye distance either side of the edge


def outer_eye_distance(landmarks: np.ndarray) -> float:
    """Distance between iBUG points 36 and 45, the unit of every landmark figure (as the landmark test)."""
    lm = np.asarray(landmarks, np.float64)
    return float(max(np.linalg.norm(lm[36] - lm[45]), 1.0))


@dataclass
class FaceRegion:
    mask: np.ndarray        # float32 (H, W) in [0, 1]: the face's compositing mask (or its hull)
    interior: np.ndarray    # bool (H, W): well inside the mask
    ring: np.ndarray        # bool (H, W): a thin band across the mask's 0.5 edge
    source: str             # "merge" or "hull"


def _box(landmarks: np.ndarray, shape: tuple[int, ...], grow: float = 0.6) -> tuple[int, int, int, int]:
    """The landmarks' bounding box grown by `grow` of its size on every side, clipped to the frame."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    pad = (hi - lo) * grow
    x0, y0 = np.floor(lo - pad).astype(int)
    x1, y1 = np.ceil(hi + pad).astype(int)
    h, w = shape[:2]
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def face_region(merge_mask: np.ndarray | None, shape: tuple[int, ...], landmarks: np.ndarray,
                eyebrows_expand_mod: float = 1.0) -> FaceRegion:
    """The region of one face: the merge mask near it, else its landmark hull.

    `merge_mask` is the frame's mask as uint8 (H, W), or None; only the part around this
    face (its landmark box, grown) counts, so the neighbours' faces in a group shot stay out.
    """
    lm = np.asarray(landmarks, np.float32)
    hull = hull_mask(shape[:2], lm, eyebrows_expand_mod)[..., 0]
    if merge_mask is not None:
        x0, y0, x1, y1 = _box(lm, shape)
        mask = np.zeros(shape[:2], np.float32)
        mask[y0:y1, x0:x1] = merge_mask[y0:y1, x0:x1].astype(np.float32) / 255.0
        if (mask > 0.5).sum() >= MIN_MASK_SHARE * max(1.0, float((hull > 0.5).sum())):
            return _finish(mask, lm, "merge")
    return _finish(hull, lm, "hull")


def _finish(mask: np.ndarray, landmarks: np.ndarray, source: str) -> FaceRegion:
    iod = outer_eye_distance(landmarks)
    inside = (mask > 0.5).astype(np.uint8)
    interior = cv2.erode(inside, _disk(max(1, round(INTERIOR_ERODE * iod)))).astype(bool)
    r = _disk(max(1, round(RING_HALF_WIDTH * iod)))
    ring = (cv2.dilate(inside, r) > 0) & ~(cv2.erode(inside, r) > 0)
    return FaceRegion(mask.astype(np.float32), interior, ring, source)
