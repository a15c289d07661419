"""DeepFaceLab-style training augmentation: one random affine, a random warp grid, a flip.

A training pair is (warped input, clean target). The network must learn to undo the warp
grid but not the pose, so the input and the target share the SAME affine and flip: draw
one `WarpParams` per sample and apply it to every output of that sample, with
`can_warp=True` only for the input. Masks use the same params with a constant (black)
border so that nothing outside the face becomes "face" after a shift.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class WarpParams:
    """Everything needed to augment one sample identically across its outputs."""
    size: int
    mapx: np.ndarray        # (size, size) float32 source x for each output pixel (warp grid)
    mapy: np.ndarray        # (size, size) float32 source y
    affine: np.ndarray      # (2, 3) float32 rotation/scale about the centre + shift
    flip: bool


def _interp_matrix(size: int, cells: int, cell: float) -> np.ndarray:
    """(size, cells+1) weights that linearly interpolate grid nodes at multiples of `cell`.

    Node k sits at pixel k*cell; a dense map is W @ grid @ W.T, which is exact at the
    nodes, unlike a resize whose pixel-centre convention shifts the grid by half a pixel.
    """
    pos = np.arange(size, dtype=np.float64) / cell
    lo = np.clip(np.floor(pos).astype(int), 0, cells - 1)
    frac = pos - lo
    w = np.zeros((size, cells + 1), np.float64)
    rows = np.arange(size)
    w[rows, lo] = 1.0 - frac
    w[rows, lo + 1] = frac
    return w


# DeepFaceLab jitters each inner grid node by 0.24 of a cell times a normal draw truncated to
# ±2.5 and divided by 2.5: a standard deviation of about 0.093 of a cell, not 0.24
WARP_JITTER = 0.24
WARP_TRUNCATION = 2.5


def truncated_unit_normal(rng: np.random.Generator, shape: tuple[int, ...], trunc: float = WARP_TRUNCATION) -> np.ndarray:
    """Normal draws redrawn until inside ±trunc, then divided by trunc: values in [-1, 1], std ≈ 0.39 at 2.5."""
    x = rng.standard_normal(shape)
    bad = np.abs(x) > trunc
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) > trunc
    return x / trunc


def _warp_grid(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random smooth displacement map: coarse grid jittered inside, borders pinned."""
    cell = size / (2 ** int(rng.integers(1, 4)))           # size/2, size/4 or size/8
    cells = int(round(size / cell))
    nodes = np.arange(cells + 1, dtype=np.float64) * cell
    gx = np.broadcast_to(nodes, (cells + 1, cells + 1)).copy()
    gy = gx.T.copy()
    jitter = truncated_unit_normal(rng, (2, cells - 1, cells - 1)) * (WARP_JITTER * cell)
    gx[1:-1, 1:-1] += jitter[0]
    gy[1:-1, 1:-1] += jitter[1]
    w = _interp_matrix(size, cells, cell)
    mapx = (w @ gx @ w.T).astype(np.float32)
    mapy = (w @ gy @ w.T).astype(np.float32)
    return mapx, mapy


def gen_warp_params(size: int, flip: bool, rng: np.random.Generator,
                    rotation_range: tuple[float, float] = (-10, 10),
                    scale_range: tuple[float, float] = (-0.15, 0.15),
                    tx_range: tuple[float, float] = (-0.05, 0.05),
                    ty_range: tuple[float, float] = (-0.05, 0.05)) -> WarpParams:
    """Draw one sample's augmentation: rotation in degrees, scale uniform in
    [1/(1-lo), 1+hi] for scale_range (lo, hi) as DeepFaceLab draws it (zoom-out and zoom-in
    equally likely in ratio), shifts as a fraction of `size`; with `flip`, a horizontal flip
    40 % of the time (DeepFaceLab's odds)."""
    rotation = rng.uniform(*rotation_range)
    scale = rng.uniform(1.0 / (1.0 - scale_range[0]), 1.0 + scale_range[1])
    tx, ty = rng.uniform(*tx_range), rng.uniform(*ty_range)
    affine = cv2.getRotationMatrix2D((size / 2.0, size / 2.0), rotation, scale)
    affine[:, 2] += (tx * size, ty * size)
    mapx, mapy = _warp_grid(size, rng)
    do_flip = bool(flip) and rng.integers(10) < 4
    return WarpParams(size, mapx, mapy, affine.astype(np.float32), do_flip)


def identity_params(size: int) -> WarpParams:
    """Params that leave an image unchanged (previews, tests)."""
    grid = np.arange(size, dtype=np.float32)
    return WarpParams(size, np.broadcast_to(grid, (size, size)).copy(),
                      np.broadcast_to(grid[:, None], (size, size)).copy(),
                      np.array([[1, 0, 0], [0, 1, 0]], np.float32), False)


def warp_by_params(params: WarpParams, img: np.ndarray, can_warp: bool, can_transform: bool,
                   can_flip: bool, border_replicate: bool = True,
                   interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """Apply the warp grid (if `can_warp`), then the affine, then the flip, keeping img's shape.

    Images want `border_replicate=True` (no black wedges for the net to learn); masks want
    False so that the border stays outside the face.
    """
    size = params.size
    if img.shape[0] != size or img.shape[1] != size:
        raise ValueError(f"warp params are for {size}x{size}, image is {img.shape[1]}x{img.shape[0]}")
    squeeze = img.ndim == 3 and img.shape[2] == 1      # OpenCV drops a single channel axis
    out = img
    border = cv2.BORDER_REPLICATE if border_replicate else cv2.BORDER_CONSTANT
    if can_warp:
        out = cv2.remap(out, params.mapx, params.mapy, interpolation, borderMode=border)
    if can_transform:
        out = cv2.warpAffine(out, params.affine, (size, size), flags=interpolation, borderMode=border)
    if can_flip and params.flip:
        out = out[:, ::-1]
    out = np.ascontiguousarray(out)
    if squeeze and out.ndim == 2:
        out = out[..., None]
    return out
