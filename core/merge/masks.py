"""The merge mask: choose it by mask_mode, then erode/dilate and feather it at 4x resolution.

Why 4x: erode and blur steps of a few pixels at the model's resolution (e.g. 96) would be
coarse and visibly stepped once the crop is scaled up into a large frame; DeepFaceLab does
this work on a 4x upscaled mask for the same reason. The mask is zero-padded first so that
dilation and blur can run past the crop square and the blur then fades the mask to zero at
the crop's edge (after clipping to the predicted area) instead of being cut off there.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from core.types import Mask

WORK_SCALE = 4      # mask processing resolution = WORK_SCALE x model resolution

# mask_mode -> (hull of the dst landmarks, learned-prd, learned-dst) -> mask. One table.
MASK_BUILDERS: dict[str, Callable[[Mask, Mask, Mask], Mask]] = {
    "full": lambda hull, prd, dst: np.ones_like(hull),
    "dst": lambda hull, prd, dst: hull,
    "learned-prd": lambda hull, prd, dst: prd,
    "learned-dst": lambda hull, prd, dst: dst,
    "learned-prd*learned-dst": lambda hull, prd, dst: prd * dst,
    "learned-prd+learned-dst": lambda hull, prd, dst: np.clip(prd + dst, 0.0, 1.0),
}


def build_mask(mask_mode: str, hull: Mask, prd_mask: Mask, dst_mask: Mask) -> Mask:
    """The crop-space mask named by `mask_mode`, float32 (res, res, 1) in [0, 1]."""
    mask = MASK_BUILDERS[mask_mode](hull, prd_mask, dst_mask)
    mask = np.clip(np.asarray(mask, np.float32), 0.0, 1.0)
    mask[mask < 1.0 / 255.0] = 0.0          # model noise would leak through seamless/overlay
    return mask.reshape(hull.shape[0], hull.shape[1], 1)


def modifier_pixels(modifier: int, work_res: int) -> int:
    """Pixels at the work resolution for an erode/blur modifier: 400 = half the crop side."""
    return int(round(abs(modifier) * work_res / 800.0))


def process_mask(mask: Mask, erode_modifier: int, blur_modifier: int) -> Mask:
    """Upscale to WORK_SCALE x, erode (+) / dilate (-), clip to the crop, gaussian-blur.

    Returns float32 (work_res, work_res, 1), work_res = WORK_SCALE * mask side.
    """
    res = mask.shape[0]
    work = res * WORK_SCALE
    m = cv2.resize(mask[..., 0], (work, work), interpolation=cv2.INTER_LINEAR)
    pad = res                                # room for dilation and blur past the crop edge
    m = np.pad(m, pad)
    ero = modifier_pixels(erode_modifier, work)
    if ero:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ero + 1, 2 * ero + 1))
        m = (cv2.erode if erode_modifier > 0 else cv2.dilate)(m, kernel, borderValue=0)
    clipped = np.zeros_like(m)              # clip to the predicted area: the crop square only
    clipped[pad:pad + work, pad:pad + work] = m[pad:pad + work, pad:pad + work]
    blur = modifier_pixels(blur_modifier, work)
    if blur:
        clipped = cv2.GaussianBlur(clipped, (2 * blur + 1, 2 * blur + 1), 0)
    out = clipped[pad:pad + work, pad:pad + work]
    return np.clip(out, 0.0, 1.0)[..., None].astype(np.float32)
