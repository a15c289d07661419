"""Colour transfer between faces: DeepFaceLab's `ct_mode` choices.

The trainer recolours each src face toward a random dst face so the model does not learn
"src lighting = src identity"; the merger recolours the predicted face toward the frame.
All functions take float32 BGR images in [0, 1] of shape (H, W, 3) and return the same
shape, clipped to [0, 1]. Optional masks (H, W[, 1]) choose which pixels the statistics
come from (pixels with mask > 0.5); the mapping is then applied to every src pixel so the
merger can blend without seams.

Modes: rct (Reinhard: LAB mean/std), lct (linear covariance match, PCA square roots), mkl
(Monge-Kantorovich linear map), idt (iterative distribution transfer: 1-D histogram
matching along 20 random rotations, 256 bins), sot (sliced optimal transport: 10 steps of
5 random directions, then a bilateral-filtered smoothing of the colour change). A "-m"
suffix ('mkl-m', ...) requires masks; plain names use masks if given.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from core.errors import VisageError
from core.types import Image, Mask

_MIN_PIXELS = 16     # fewer masked pixels than this: statistics from the whole image
_EPS = 1e-6


def _pixels(img: np.ndarray, mask: Mask | None) -> np.ndarray:
    """(N, C) float64 pixels that statistics are computed from."""
    flat = img.reshape(-1, img.shape[-1]).astype(np.float64)
    if mask is None:
        return flat
    sel = np.asarray(mask).reshape(-1) > 0.5
    if sel.size != flat.shape[0]:
        raise ValueError(f"mask of {sel.size} pixels for an image of {flat.shape[0]}")
    return flat[sel] if sel.sum() >= _MIN_PIXELS else flat


def _finish(flat: np.ndarray, shape: tuple[int, ...]) -> Image:
    return np.clip(flat.reshape(shape), 0.0, 1.0).astype(np.float32)


def _sqrtm(cov: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Symmetric (inverse) square root of a covariance via its eigen-decomposition."""
    vals, vecs = np.linalg.eigh(cov)
    vals = np.maximum(vals, _EPS)
    root = np.sqrt(vals)
    return (vecs / root if inverse else vecs * root) @ vecs.T


def _mean_std(img: np.ndarray, mask: Mask | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over the masked pixels (cv2.meanStdDev: fast, no copies)."""
    m = None
    if mask is not None:
        m = (np.asarray(mask).reshape(img.shape[:2]) > 0.5).astype(np.uint8)
        if int(m.sum()) < _MIN_PIXELS:
            m = None
    mean, std = cv2.meanStdDev(img, mask=m)
    return mean.ravel(), std.ravel()


def rct(src: Image, ref: Image, src_mask: Mask | None = None, ref_mask: Mask | None = None) -> Image:
    """Reinhard et al. 2001: match per-channel mean and std in LAB (decorrelated for faces)."""
    s_lab = cv2.cvtColor(np.clip(src, 0, 1).astype(np.float32), cv2.COLOR_BGR2LAB)
    r_lab = cv2.cvtColor(np.clip(ref, 0, 1).astype(np.float32), cv2.COLOR_BGR2LAB)
    s_mean, s_std = _mean_std(s_lab, src_mask)
    r_mean, r_std = _mean_std(r_lab, ref_mask)
    gain = (r_std / np.maximum(s_std, _EPS)).astype(np.float32)
    lab = (s_lab - s_mean.astype(np.float32)) * gain + r_mean.astype(np.float32)
    np.clip(lab[..., 0], 0, 100, out=lab[..., 0])
    np.clip(lab[..., 1:], -127, 127, out=lab[..., 1:])
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2BGR), 0, 1)


def _linear(src: Image, ref: Image, src_mask: Mask | None, ref_mask: Mask | None,
            make_map: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Image:
    """Shared affine colour map x -> (x - mu_s) @ T.T + mu_r with T from the covariances."""
    s_px, r_px = _pixels(src, src_mask), _pixels(ref, ref_mask)
    mu_s, mu_r = s_px.mean(0), r_px.mean(0)
    cov_s = np.cov(s_px, rowvar=False) + np.eye(3) * _EPS
    cov_r = np.cov(r_px, rowvar=False) + np.eye(3) * _EPS
    t = make_map(cov_s, cov_r)
    flat = src.reshape(-1, 3).astype(np.float64)
    return _finish((flat - mu_s) @ t.T + mu_r, src.shape)


def lct(src: Image, ref: Image, src_mask: Mask | None = None, ref_mask: Mask | None = None) -> Image:
    """Linear colour transfer: whiten with the src covariance, colour with the ref's (PCA roots)."""
    return _linear(src, ref, src_mask, ref_mask, lambda cs, cr: _sqrtm(cr) @ _sqrtm(cs, inverse=True))


def _mkl_map(cov_s: np.ndarray, cov_r: np.ndarray) -> np.ndarray:
    """Pitie & Kokaram 2007: the linear map with least displacement that turns cov_s into cov_r."""
    s_half, s_inv_half = _sqrtm(cov_s), _sqrtm(cov_s, inverse=True)
    return s_inv_half @ _sqrtm(s_half @ cov_r @ s_half) @ s_inv_half


def mkl(src: Image, ref: Image, src_mask: Mask | None = None, ref_mask: Mask | None = None) -> Image:
    """Monge-Kantorovich linear colour transfer."""
    return _linear(src, ref, src_mask, ref_mask, _mkl_map)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly random 3x3 orthonormal basis (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def _hist_match_1d(values: np.ndarray, sample: np.ndarray, ref: np.ndarray, bins: int) -> np.ndarray:
    """Map `values` (columns) so `sample`'s histogram matches `ref`'s, per column, via CDFs."""
    out = np.empty_like(values)
    for c in range(values.shape[1]):          # 3 columns: a loop over axes, not pixels
        lo = min(sample[:, c].min(), ref[:, c].min())
        hi = max(sample[:, c].max(), ref[:, c].max()) + _EPS
        edges = np.linspace(lo, hi, bins + 1)
        cdf_s = np.concatenate([[0.0], np.cumsum(np.histogram(sample[:, c], edges)[0])])
        cdf_r = np.concatenate([[0.0], np.cumsum(np.histogram(ref[:, c], edges)[0])])
        cdf_s /= cdf_s[-1]
        cdf_r /= cdf_r[-1]
        # x -> its quantile in src -> the ref value at that quantile (cdf_r may be flat: use
        # the strictly increasing part so the inverse is well defined).
        keep = np.concatenate([[True], np.diff(cdf_r) > 0])
        out[:, c] = np.interp(np.interp(values[:, c], edges, cdf_s), cdf_r[keep], edges[keep])
    return out


def idt(src: Image, ref: Image, src_mask: Mask | None = None, ref_mask: Mask | None = None,
        iterations: int = 20, bins: int = 256, rng: np.random.Generator | None = None) -> Image:
    """Pitie et al. 2005: repeat 1-D histogram matching along randomly rotated colour axes.

    The default rng is seeded, so the merger gets the same mapping for the same inputs
    (no frame-to-frame flicker from the random axes).
    """
    rng = rng or np.random.default_rng(0)
    flat = src.reshape(-1, 3).astype(np.float64)
    sel = _selector(src_mask, flat.shape[0])
    r_px = _pixels(ref, ref_mask)
    for _ in range(iterations):
        rot = _random_rotation(rng)
        proj = flat @ rot
        matched = _hist_match_1d(proj, proj[sel], r_px @ rot, bins)
        flat = flat + (matched - proj) @ rot.T
    return _finish(flat, src.shape)


def _selector(mask: Mask | None, n: int) -> np.ndarray | slice:
    """Index of the src pixels whose distribution is matched (all of them without a mask)."""
    if mask is None:
        return slice(None)
    sel = np.asarray(mask).reshape(-1) > 0.5
    return sel if sel.sum() >= _MIN_PIXELS else slice(None)


def _quantiles(values: np.ndarray, n: int) -> np.ndarray:
    """Each column's sorted values resampled to n evenly spaced quantile levels."""
    srt = np.sort(values, axis=0)
    if srt.shape[0] == n:
        return srt
    pos = np.linspace(0, srt.shape[0] - 1, n)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, srt.shape[0] - 1)
    frac = (pos - lo)[:, None]
    return srt[lo] * (1 - frac) + srt[hi] * frac


def sot(src: Image, ref: Image, src_mask: Mask | None = None, ref_mask: Mask | None = None,
        steps: int = 10, batch_size: int = 5, reg_sigma_xy: float = 16.0, reg_sigma_v: float = 5.0,
        rng: np.random.Generator | None = None) -> Image:
    """Sliced optimal transport: move the src colours along random 1-D projections toward
    the ref's sorted projections, averaging `batch_size` directions per step. The colour
    change is then smoothed with a bilateral filter (sigma_xy pixels) so neighbouring pixels
    of the same colour move together, as DeepFaceLab regularises it."""
    rng = rng or np.random.default_rng(0)
    flat = src.reshape(-1, 3).astype(np.float64)
    sel = _selector(src_mask, flat.shape[0])
    r_px = _pixels(ref, ref_mask)
    for _ in range(steps):
        dirs = rng.standard_normal((3, batch_size))
        dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
        proj = flat @ dirs                                   # (N, B)
        sample = proj[sel]
        srt = np.sort(sample, axis=0)
        target = _quantiles(r_px @ dirs, srt.shape[0])
        shift = np.empty_like(proj)
        for b in range(batch_size):                         # a loop over directions
            shift[:, b] = np.interp(proj[:, b], srt[:, b], target[:, b]) - proj[:, b]
        flat = flat + shift @ dirs.T / batch_size
    out = flat.reshape(src.shape)
    if reg_sigma_xy > 0:
        delta = (out - src).astype(np.float32)
        delta = cv2.bilateralFilter(delta, 0, reg_sigma_v, reg_sigma_xy)
        out = src.astype(np.float64) + delta
    return _finish(out, src.shape)


_MODES: dict[str, Callable[..., Image]] = {"rct": rct, "lct": lct, "mkl": mkl, "idt": idt, "sot": sot}
MODES = ("none", *_MODES, *(f"{m}-m" for m in ("mkl", "idt", "sot")))


def color_transfer(mode: str, src: Image, ref: Image, src_mask: Mask | None = None,
                   ref_mask: Mask | None = None) -> Image:
    """Recolour `src` toward `ref` with the named method ('none' returns a copy)."""
    if mode == "none":
        return np.array(src, np.float32, copy=True)
    base, masked = (mode[:-2], True) if mode.endswith("-m") else (mode, False)
    func = _MODES.get(base)
    if func is None or (masked and mode not in MODES):
        raise VisageError(f"unknown colour transfer mode '{mode}'; choose one of {', '.join(MODES)}")
    if masked and (src_mask is None or ref_mask is None):
        raise VisageError(f"colour transfer '{mode}' needs a mask for both faces")
    if src.shape[-1] != 3 or ref.shape[-1] != 3:
        raise ValueError("colour transfer needs 3-channel BGR images")
    return func(src.astype(np.float32, copy=False), ref.astype(np.float32, copy=False), src_mask, ref_mask)
