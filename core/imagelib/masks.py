"""Face masks from landmarks, and decoding of stored XSeg masks.

The landmark hull is the default training mask when a face has no XSeg mask: the jaw line
plus the eyebrows pushed up toward the forehead (DeepFaceLab's `eyebrows_expand_mod`,
stored per face), because 68-point landmarks stop at the brows and a mask ending there
would cut the forehead off every whole-face crop. The eyes-and-mouth mask drives the
`eyes_mouth_prio` loss.
"""
from __future__ import annotations

import cv2
import numpy as np

from core.errors import VisageError

_JAW = slice(0, 17)
_BROW_L, _BROW_R = slice(17, 22), slice(22, 27)
_EYE_L, _EYE_R = slice(36, 42), slice(42, 48)
_MOUTH = slice(48, 60)          # outer lip contour


def expand_eyebrows(landmarks68: np.ndarray, eyebrows_expand_mod: float = 1.0) -> np.ndarray:
    """Landmarks with each brow point moved away from the eye below it.

    A brow point travels `0.5 * mod` times its distance from an anchor on the upper eye
    lid (the outer ends use a point between the eye corner and the jaw's first point), so
    mod 1.0 raises the brows by half the eye-to-brow gap, roughly the forehead hairline
    band a whole-face crop should keep.
    """
    lm = np.asarray(landmarks68, np.float32).copy()
    outer_l = lm[0] + (lm[36] - lm[0]) * 0.25
    outer_r = lm[16] + (lm[45] - lm[16]) * 0.25
    anchor_l = np.stack([outer_l, lm[36], lm[37], lm[38], lm[39]])
    anchor_r = np.stack([lm[42], lm[43], lm[44], lm[45], outer_r])
    lm[_BROW_L] += eyebrows_expand_mod * 0.5 * (lm[_BROW_L] - anchor_l)
    lm[_BROW_R] += eyebrows_expand_mod * 0.5 * (lm[_BROW_R] - anchor_r)
    return lm


def _fill_hulls(shape: tuple[int, ...], parts: list[np.ndarray]) -> np.ndarray:
    h, w = shape[:2]
    mask = np.zeros((h, w), np.float32)
    for pts in parts:
        hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))   # 4 fractional bits
        cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_AA, shift=4)
    return mask


def hull_mask(shape: tuple[int, ...], landmarks68: np.ndarray, eyebrows_expand_mod: float = 1.0) -> np.ndarray:
    """float32 (H, W, 1) mask: convex hull of the jaw and the raised eyebrows."""
    lm = expand_eyebrows(landmarks68, eyebrows_expand_mod)
    pts = np.concatenate([lm[_JAW], lm[_BROW_L], lm[_BROW_R]])
    return _fill_hulls(shape, [pts])[..., None]


def _soften(mask: np.ndarray, h: int) -> np.ndarray:
    """Dilate by ~h/32 and blur by ~h/16 so the priority region includes the surroundings."""
    d = max(1, h // 32)
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d)))
    k = max(1, h // 16) | 1                                      # odd kernel size
    return cv2.GaussianBlur(mask, (k, k), 0)


def eyes_mouth_mask(shape: tuple[int, ...], landmarks68: np.ndarray) -> np.ndarray:
    """float32 (H, W, 1) soft mask of both eyes and the mouth, each dilated and blurred."""
    lm = np.asarray(landmarks68, np.float32)
    h = shape[0]
    eyes = _soften(_fill_hulls(shape, [lm[_EYE_L], lm[_EYE_R]]), h)
    mouth = _soften(_fill_hulls(shape, [lm[_MOUTH]]), h)
    return np.clip(eyes + mouth, 0.0, 1.0)[..., None]


def decode_xseg_mask(png_bytes: bytes, size: int) -> np.ndarray:
    """float32 (size, size, 1) mask in [0, 1] from the PNG stored in a face's metadata."""
    img = cv2.imdecode(np.frombuffer(png_bytes, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise VisageError("the face's stored XSeg mask cannot be decoded; re-apply XSeg to this faceset")
    if img.ndim == 3:
        img = img[..., 0]
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    mask = img.astype(np.float32) / scale
    if mask.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if mask.shape[0] > size else cv2.INTER_LINEAR
        mask = cv2.resize(mask, (size, size), interpolation=interp)
    return np.clip(mask, 0.0, 1.0)[..., None]
