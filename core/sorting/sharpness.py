"""How sharp a face is: the `blur` and `motion-blur` sort keys.

`cpbd_sharpness` follows DeepFaceLab's `estimate_sharpness`, the CPBD metric (Narvekar &
Karam, "A no-reference image blur metric based on the cumulative probability of blur
detection", IEEE TIP 2011): find edges, measure each edge's width along the row, turn the
width into a probability that the eye sees it as blurred given the local contrast, and
report the share of edges that look sharp. Two changes, both on purpose:
- it is vectorised (DeepFaceLab walks every pixel in Python, seconds per face);
- only edges inside the face hull count. DeepFaceLab multiplies the image by the hull
  mask first, which adds the mask outline as a perfectly sharp edge to every face, so a
  blurred face could still score as sharp; here the outline (an eroded band) is left out.
`laplacian_sharpness` is DeepFaceLab's motion-blur key (variance of an 11-tap Laplacian),
with the same hull restriction.
"""
from __future__ import annotations

import cv2
import numpy as np

from core.imagelib.masks import hull_mask

BETA = 3.6                  # CPBD's psychometric slope
BLOCK = 64                  # CPBD block side (pixels)
EDGE_BLOCK_SHARE = 0.002    # a block with fewer edge pixels than this share is skipped
MAX_WIDTH_STEPS = 100       # as the reference code: widths stop growing after 100 steps
SHARP_PROB = 0.63           # P(blur detection) at or below this counts as a sharp edge


def face_region(shape: tuple[int, ...], landmarks: np.ndarray, eyebrows_expand_mod: float = 1.0) -> np.ndarray:
    """bool (H, W): inside the landmark hull, eroded by ~3 % of the size so its outline is not counted."""
    mask = hull_mask(shape, landmarks, eyebrows_expand_mod)[..., 0] > 0.5
    k = max(3, (shape[0] * 3) // 100) | 1
    return cv2.erode(mask.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)


def _runs(step_ok: np.ndarray, reverse: bool) -> np.ndarray:
    """For each column c: how many consecutive True in step_ok going left from c (or right)."""
    h, w = step_ok.shape
    out = np.zeros((h, w), np.int32)
    cols = range(w - 1, -1, -1) if reverse else range(w)
    prev = np.zeros(h, np.int32)
    for c in cols:
        prev = np.where(step_ok[:, c], prev + 1, 0)
        out[:, c] = prev
    return out


def _edge_widths(gray: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Marziliano edge widths at horizontal-gradient edge pixels (0 elsewhere).

    At an edge rising left-to-right the width is how far the intensity keeps falling to the
    left plus how far it keeps rising to the right (each side at least 1); mirrored for a
    falling edge. Vertical-gradient edges are not measured, as in the reference method.
    """
    h, w = gray.shape
    gy, gx = np.gradient(gray)
    angle = np.degrees(np.arctan2(gy, gx))
    quant = 45 * np.round(angle / 45)
    rising = (quant == 0) & (gx != 0)
    falling = (np.abs(quant) == 180)
    d = np.diff(gray, axis=1)                     # d[:, k] = g[k+1] - g[k]
    pad = np.zeros((h, 1), bool)
    widths = np.zeros((h, w), np.float64)
    for sign, where in ((1, rising), (-1, falling)):
        ok = np.concatenate([sign * d > 0, pad], axis=1)   # step k -> k+1 keeps the edge's direction
        # left side of column c looks at steps c-2, c-3, ...; right side at steps c+1, c+2, ...
        left_run = _runs(ok, reverse=False)
        right_run = _runs(ok, reverse=True)
        left = np.zeros((h, w), np.int32)
        left[:, 2:] = left_run[:, :-2]
        right = np.zeros((h, w), np.int32)
        right[:, :-1] = right_run[:, 1:]
        width = np.minimum(left, MAX_WIDTH_STEPS) + np.minimum(right, MAX_WIDTH_STEPS) + 2
        sel = where & edges
        widths[sel] = width[sel]
    widths[:, 0] = widths[:, -1] = 0
    widths[0, :] = widths[-1, :] = 0
    return widths


def _sobel_edges(gray: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Thinned vertical edges (horizontal gradient), threshold relative to the face's own gradients."""
    kernel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float64) / 8.0
    strength = cv2.filter2D(gray, cv2.CV_64F, kernel, borderType=cv2.BORDER_REFLECT) ** 2
    if not region.any():
        return np.zeros_like(region)
    thresh = 2 * np.sqrt(np.mean(strength[region]))
    strength[strength <= thresh] = 0
    left = np.zeros_like(strength)
    left[:, 1:] = strength[:, :-1]
    right = np.zeros_like(strength)
    right[:, :-1] = strength[:, 1:]
    up = np.zeros_like(strength)
    up[1:] = strength[:-1]
    down = np.zeros_like(strength)
    down[:-1] = strength[1:]
    return (((strength > left) & (strength > right)) | ((strength > up) & (strength > down))) & region


def cpbd_sharpness(gray: np.ndarray, region: np.ndarray) -> float:
    """CPBD sharpness in [0, 1] of the pixels of `gray` (uint8/float, H x W) inside `region`."""
    g = np.asarray(gray, np.float64)
    edges = _sobel_edges(g, region)
    widths = _edge_widths(g, edges)
    h, w = g.shape
    probs = []
    for y in range(0, h - BLOCK + 1 if h >= BLOCK else 1, BLOCK):
        for x in range(0, w - BLOCK + 1 if w >= BLOCK else 1, BLOCK):
            blk = (slice(y, y + BLOCK), slice(x, x + BLOCK))
            inside = region[blk]
            if edges[blk].sum() <= EDGE_BLOCK_SHARE * inside.size or not inside.any():
                continue
            vals = g[blk][inside]
            contrast = vals.max() - vals.min()
            jnb = 5.0 if contrast <= 50 else 3.0
            wb = widths[blk][edges[blk]]
            wb = wb[wb > 0]
            probs.append(1.0 - np.exp(-np.abs(wb / jnb) ** BETA))
    if not probs:
        return 0.0
    p = np.concatenate(probs)
    if p.size == 0:
        return 0.0
    return float(np.mean(np.round(p * 100) <= SHARP_PROB * 100))


def laplacian_sharpness(gray: np.ndarray, region: np.ndarray) -> float:
    """Variance of the 11-tap Laplacian inside `region` (DeepFaceLab's motion-blur key)."""
    lap = cv2.Laplacian(np.asarray(gray, np.float32), cv2.CV_32F, ksize=11)
    vals = lap[region]
    return float(vals.var()) if vals.size else 0.0
