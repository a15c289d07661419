"""Sharpness inside the face and the step at the mask's edge, each relative to the dst frame.

Both are ratios against the very same pixels of the dst frame, so the frame's own focus,
noise and texture cancel out: 1.0 means "like the original footage".
- Sharpness: variance of the Laplacian (3x3, grey) over the face interior. An autoencoder
  face is usually softer than the footage (ratio < 1); a blurred face is what an identity
  network forgives and this figure does not.
- Seam: mean colour-gradient magnitude (3x3 Sobel, summed over B, G, R) on the ring across
  the mask's edge. A hard-edged or mis-coloured paste puts a step there (ratio > 1); a
  feathered, colour-matched one leaves the dst's own edges (≈ 1).
"""
from __future__ import annotations

import cv2
import numpy as np

EPS = 1e-6


def laplacian(img: np.ndarray) -> np.ndarray:
    """float32 (H, W) Laplacian of the grey image (0..255 scale)."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return cv2.Laplacian(grey, cv2.CV_32F, ksize=3)


def gradient(img: np.ndarray) -> np.ndarray:
    """float32 (H, W) colour gradient magnitude: sqrt of the summed squared Sobel x/y of each channel."""
    f = img.astype(np.float32)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt((gx * gx + gy * gy).reshape(*img.shape[:2], -1).sum(-1))


def sharpness(lap: np.ndarray, interior: np.ndarray) -> float:
    """Variance of the Laplacian over the interior pixels (nan when there are none)."""
    values = lap[interior]
    return float(values.var()) if values.size > 1 else float("nan")


def seam_step(grad: np.ndarray, ring: np.ndarray) -> float:
    """Mean gradient magnitude on the ring (nan when it is empty)."""
    values = grad[ring]
    return float(values.mean()) if values.size else float("nan")


def ratio(merged: float, dst: float) -> float:
    """merged / dst, nan when either is missing."""
    if not (np.isfinite(merged) and np.isfinite(dst)):
        return float("nan")
    return float(merged / max(dst, EPS))
