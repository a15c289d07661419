"""XSeg masks for merge: a trained XSeg model run on the predicted face and on the dst face.

Each runs at the XSeg model's own face type and resolution, re-cropped from the frame through
the one geometry function (`face_transform`), so a whole-face XSeg model masks a full-face or
head merge correctly:
- XSeg-dst: the dst face cut out of the frame at the XSeg crop;
- XSeg-prd: the same crop with the model's predicted face painted over the part the merge
  crop covers (the frame stays the context around it, where the model predicted nothing).
Values under 0.1 are zeroed (DeepFaceLab's XSeg noise floor: a faint mask over an occluder
would blend a little of the swap into it); each mask is then mapped back into the merge crop
(zero outside the XSeg crop) and appended to the prediction, so the compositing workers
(which load no model) only combine masks.
NumPy/OpenCV here; the XSeg network is reached only through `xseg.masks`.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import cv2
import numpy as np

from core.facelib.face_type import FaceType
from core.facelib.geometry import face_transform
from core.merge.compose import Face, FaceCrop, Frame, Mask
from core.merge.masks import xseg_needs

NOISE_FLOOR = 0.1


class XSegMasks(Protocol):        # models.xseg.XSegPredictor
    resolution: int
    face_type: FaceType

    def masks(self, crops: np.ndarray) -> np.ndarray: ...


def _merge_to_xseg(crop: FaceCrop, xseg_mat: np.ndarray) -> np.ndarray:
    """Affine from the merge crop's pixels to the XSeg crop's: xseg_mat after the inverse of crop.mat."""
    inv = cv2.invertAffineTransform(np.asarray(crop.mat, np.float64))
    rows = np.array([[0.0, 0.0, 1.0]])
    return (np.vstack([np.asarray(xseg_mat, np.float64), rows]) @ np.vstack([inv, rows]))[:2]


def _xseg_inputs(frame: Frame, crop: FaceCrop, face: Face, xseg: XSegMasks) -> tuple[Face, Face, np.ndarray]:
    """(dst XSeg crop, predicted-face XSeg crop, merge crop -> XSeg crop affine) of one face."""
    res = int(xseg.resolution)
    xmat = face_transform(crop.landmarks, xseg.face_type, res)
    dst = cv2.warpAffine(frame, xmat, (res, res), flags=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    to_x = _merge_to_xseg(crop, xmat)
    prd = cv2.warpAffine(np.asarray(face, np.float32), to_x, (res, res), flags=cv2.INTER_CUBIC)
    inside = cv2.warpAffine(np.ones(crop.dst.shape[:2], np.float32), to_x, (res, res), flags=cv2.INTER_LINEAR)
    prd = dst * (1.0 - inside[..., None]) + np.clip(prd, 0.0, 1.0) * inside[..., None]
    return dst, prd, to_x


def add_xseg_masks(frames: Sequence[Frame], crops: Sequence[FaceCrop], predictions: Sequence[tuple],
                   xseg: XSegMasks, mask_mode: str | None = None) -> list[tuple]:
    """Each prediction (face, learned-prd, learned-dst) + (XSeg-prd, XSeg-dst) in its merge crop.

    `frames[i]` is the frame of `crops[i]`. With a `mask_mode`, only the masks it uses are
    computed (None for the other); without one, both (the interactive merger switches modes).
    All faces go through the XSeg model in one call.
    """
    want_prd, want_dst = xseg_needs(mask_mode) if mask_mode else (True, True)
    if not crops or not (want_prd or want_dst):
        return [(*p[:3], None, None) for p in predictions]
    inputs = [_xseg_inputs(f, c, p[0], xseg) for f, c, p in zip(frames, crops, predictions)]
    batch = [x[0] for x in inputs if want_dst] + [x[1] for x in inputs if want_prd]
    masks = np.asarray(xseg.masks(np.stack(batch)), np.float32)
    masks[masks < NOISE_FLOOR] = 0.0
    out = iter(masks)
    dst_masks = [next(out) for _ in inputs] if want_dst else [None] * len(inputs)
    prd_masks = [next(out) for _ in inputs] if want_prd else [None] * len(inputs)

    def back(mask: Mask | None, crop: FaceCrop, to_x: np.ndarray) -> Mask | None:
        if mask is None:
            return None
        res = crop.dst.shape[0]
        m = cv2.warpAffine(np.asarray(mask, np.float32).reshape(mask.shape[0], mask.shape[1]), to_x, (res, res),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return np.clip(m, 0.0, 1.0)[..., None]
    return [(*p[:3], back(pm, c, x[2]), back(dm, c, x[2]))
            for p, c, x, pm, dm in zip(predictions, crops, inputs, prd_masks, dst_masks)]
