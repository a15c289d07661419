"""The merge mask: choose it by mask_mode, then erode/dilate and feather it at 4x resolution.

Why 4x: erode and blur steps of a few pixels at the model's resolution (e.g. 96) would be
coarse and visibly stepped once the crop is scaled up into a large frame; DeepFaceLab does
this work on a 4x upscaled mask for the same reason. The mask is zero-padded first so that
dilation and blur can run past the crop square and the blur then fades the mask to zero at
the crop's edge (after clipping to the predicted area) instead of being cut off there.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import cv2
import numpy as np

from core.errors import VisageError
from core.types import Mask

WORK_SCALE = 4      # mask processing resolution = WORK_SCALE x model resolution


class MaskSources(NamedTuple):
    """Every mask a mask mode can combine, all in the merge crop's pixels."""
    hull: Mask                      # the dst landmark hull
    prd: Mask                       # learned-prd: the model's mask of its predicted face
    dst: Mask                       # learned-dst: the model's mask of the dst face
    xseg_prd: Mask | None = None    # XSeg-prd: the XSeg model run on the predicted face
    xseg_dst: Mask | None = None    # XSeg-dst: the XSeg model run on the dst face


# mask_mode -> MaskSources -> mask, in DeepFaceLab's order (its mask_mode 0..9). One table.
MASK_BUILDERS: dict[str, Callable[[MaskSources], Mask]] = {
    "full": lambda s: np.ones_like(s.hull),
    "dst": lambda s: s.hull,
    "learned-prd": lambda s: s.prd,
    "learned-dst": lambda s: s.dst,
    "learned-prd*learned-dst": lambda s: s.prd * s.dst,
    "learned-prd+learned-dst": lambda s: np.clip(s.prd + s.dst, 0.0, 1.0),
    "XSeg-prd": lambda s: s.xseg_prd,
    "XSeg-dst": lambda s: s.xseg_dst,
    "XSeg-prd*XSeg-dst": lambda s: s.xseg_prd * s.xseg_dst,
    "learned-prd*learned-dst*XSeg-prd*XSeg-dst": lambda s: s.prd * s.dst * s.xseg_prd * s.xseg_dst,
}
XSEG_MASK_MODES = tuple(m for m in MASK_BUILDERS if "XSeg" in m)


def xseg_needs(mask_mode: str) -> tuple[bool, bool]:
    """(needs XSeg-prd, needs XSeg-dst): read from the mode's DeepFaceLab name, the one declaration."""
    return "XSeg-prd" in mask_mode, "XSeg-dst" in mask_mode


def build_mask(mask_mode: str, sources: MaskSources) -> Mask:
    """The crop-space mask named by `mask_mode`, float32 (res, res, 1) in [0, 1]."""
    want_prd, want_dst = xseg_needs(mask_mode)
    if (want_prd and sources.xseg_prd is None) or (want_dst and sources.xseg_dst is None):
        raise VisageError(f"mask mode {mask_mode} needs a trained XSeg model (merge --xseg-model-dir); "
                          "none was loaded")
    mask = MASK_BUILDERS[mask_mode](sources)
    mask = np.clip(np.asarray(mask, np.float32), 0.0, 1.0)
    mask[mask < 1.0 / 255.0] = 0.0          # model noise would leak through seamless/overlay
    return mask.reshape(sources.hull.shape[0], sources.hull.shape[1], 1)


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
