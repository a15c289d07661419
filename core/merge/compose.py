"""DeepFaceLab's masked merge: put a model's predicted face back into a dst frame.

Per face: crop the dst face with the one geometry function (`crop_face`), predict, then
`compose_face`: build and process the mask (masks.py), recolour / hist-match / filter the predicted face in crop space, warp face
and mask back with the inverse affine and composite by mode. Each choice (mode, mask mode,
colour transfer, sharpen filter) is one dispatch table, so the interactive merger, batch
merge and the bench all run exactly this code. NumPy/OpenCV only: the merge runs in worker
processes that must not load TensorFlow; the model is reached only through `predict`.

Where this differs from DeepFaceLab: sharpening, motion blur and the face degradations are
applied to the predicted crop before it is composited (DeepFaceLab re-crops the composited
frame first); inside the mask the result is the same for overlay-type modes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

import cv2
import numpy as np

from core.facelib.face_type import FaceType
from core.facelib.geometry import face_transform, transform_points
from core.imagelib.color_transfer import color_transfer
from core.imagelib.masks import hull_mask
from core.merge.masks import WORK_SCALE, MaskSources, build_mask, process_mask
from core.types import Face, Frame, Mask

if TYPE_CHECKING:                   # config takes its choice lists from the tables here
    from core.merge.config import MergerConfig

Predict = Callable[[Face], tuple[Face, Mask, Mask]]   # dst crop -> (face, learned-prd, learned-dst)
# A prediction is (face, learned-prd, learned-dst), optionally followed by (XSeg-prd, XSeg-dst)
# masks in the same crop (core/merge/xseg_masks.py adds them; None where not computed).
Motion = tuple[float, float]                           # (dx, dy) of the face between frames, frame px


class FaceLike(Protocol):
    source_landmarks: np.ndarray    # (68, 2) frame pixels (FaceMeta has it)


# ---------------------------------------------------------------- face filters (crop space)

def _mix_m(prd: Face, dst: Face, mask: Mask) -> Face:
    """mix-m: lightness by a mean/std match of LAB L, chroma by masked sliced OT (sot-m).

    Splitting them keeps the predicted face's shading (only its brightness level and
    contrast follow the dst), while sot moves the full chroma distribution toward the dst
    skin, which a mean/std match on a and b cannot do.
    """
    lab_p, lab_d = cv2.cvtColor(prd, cv2.COLOR_BGR2LAB), cv2.cvtColor(dst, cv2.COLOR_BGR2LAB)
    sel = mask[..., 0] > 0.5
    if sel.sum() < 16:
        sel = np.ones(sel.shape, bool)
    lp, ld = lab_p[..., 0][sel], lab_d[..., 0][sel]
    light = (lab_p[..., 0] - lp.mean()) * (ld.std() / max(lp.std(), 1e-6)) + ld.mean()

    def flat(lab: np.ndarray) -> Face:                 # same colour at one fixed lightness
        out = lab.copy()
        out[..., 0] = 50.0
        return np.clip(cv2.cvtColor(out, cv2.COLOR_LAB2BGR), 0.0, 1.0)
    chroma = cv2.cvtColor(color_transfer("sot-m", flat(lab_p), flat(lab_d), mask, mask), cv2.COLOR_BGR2LAB)
    chroma[..., 0] = np.clip(light, 0.0, 100.0)
    return np.clip(cv2.cvtColor(chroma, cv2.COLOR_LAB2BGR), 0.0, 1.0)


def _library_ct(mode: str) -> Callable[[Face, Face, Mask], Face]:
    return lambda prd, dst, mask: color_transfer(mode, prd, dst, mask, mask)


COLOR_TRANSFERS: dict[str, Callable[[Face, Face, Mask], Face]] = {
    **{m: _library_ct(m) for m in ("none", "rct", "lct", "mkl", "mkl-m", "idt", "idt-m", "sot-m")},
    "mix-m": _mix_m,
}


def hist_match(src: Face, ref: Face, threshold: int, mask: Mask | None = None) -> Face:
    """Per-channel histogram matching of `src` to `ref` (256 levels), optionally inside `mask`.

    `threshold` < 255 compresses the source's CDF to the lower `threshold/255` of the
    reference's, pulling the brightest tones down (DeepFaceLab's hist_match_threshold).
    """
    s = np.clip(src * 255.0 + 0.5, 0, 255).astype(np.uint8)
    r = np.clip(ref * 255.0 + 0.5, 0, 255).astype(np.uint8)
    sel = slice(None) if mask is None or (mask > 0.5).sum() < 16 else (mask[..., 0] > 0.5)
    out = np.empty(src.shape, np.float32)
    levels = np.arange(256, dtype=np.float64)
    for c in range(3):                                  # 3 LUTs, each applied to the whole channel
        cdf_s = np.cumsum(np.bincount(s[..., c][sel].ravel(), minlength=256)).astype(np.float64)
        cdf_r = np.cumsum(np.bincount(r[..., c][sel].ravel(), minlength=256)).astype(np.float64)
        lut = np.interp(cdf_s / cdf_s[-1] * (threshold / 255.0), cdf_r / cdf_r[-1], levels)
        out[..., c] = lut[s[..., c]] / 255.0
    return out


BLURS: dict[str, Callable[[Face, int], Face]] = {
    "box": lambda img, k: cv2.blur(img, (k, k)),
    "gaussian": lambda img, k: cv2.GaussianBlur(img, (k, k), 0),
}


def blursharpen(face: Face, sharpen_mode: str, amount: int) -> Face:
    """amount > 0: unsharp mask with a 3-px filter; amount < 0: blend toward a wide blur."""
    if sharpen_mode == "none" or amount == 0:
        return face
    blur = BLURS[sharpen_mode]
    if amount > 0:
        return np.clip(face + (amount / 50.0) * (face - blur(face, 3)), 0.0, 1.0)
    k = max(3, face.shape[0] // 16) | 1
    t = -amount / 100.0
    return face * (1.0 - t) + blur(face, k) * t


def motion_blur(face: Face, mat: np.ndarray, motion: Motion | None, power: int) -> Face:
    """Linear blur along the face's motion (mapped into crop space); length scales with power."""
    if not motion or power == 0:
        return face
    v = np.asarray(mat, np.float64)[:, :2] @ np.asarray(motion, np.float64)
    k = int(np.hypot(*v) * power / 100.0)
    if k < 1:
        return face
    k = int(np.clip(k + 1, 2, 50))
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((k - 1) / 2.0, (k - 1) / 2.0), -np.degrees(np.arctan2(v[1], v[0])), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    return cv2.filter2D(face, -1, kernel / max(float(kernel.sum()), 1e-6))


def bicubic_degrade(face: Face, power: int) -> Face:
    """Lose detail by a bicubic down/up-scale (to match a soft dst), blended by power."""
    if power == 0:
        return face
    n = face.shape[0]
    small = max(4, int(n * (1.0 - power / 101.0)))
    soft = cv2.resize(cv2.resize(face, (small, small), interpolation=cv2.INTER_CUBIC), (n, n),
                      interpolation=cv2.INTER_CUBIC)
    t = power / 100.0
    return np.clip(face * (1.0 - t) + soft * t, 0.0, 1.0)


_LEVELS = np.array([8, 8, 4], np.float32)          # B, G, R: 8*8*4 = 256 colours


def color_degrade(face: Face, power: int) -> Face:
    """Reduce the face to 256 colours (3-3-2 bits, as palette-limited footage has), blended by power."""
    if power == 0:
        return face
    reduced = np.round(face * (_LEVELS - 1)) / (_LEVELS - 1)
    t = power / 100.0
    return face * (1.0 - t) + reduced * t


def denoise(frame: Frame, power: int) -> Frame:
    """Median-filter the dst frame: one full 5x5 pass per 100 of power, the rest blended."""
    full, part = divmod(int(power), 100)
    for _ in range(full):
        frame = cv2.medianBlur(frame, 5)
    if part:
        frame = cv2.addWeighted(frame, 1.0 - part / 100.0, cv2.medianBlur(frame, 5), part / 100.0, 0)
    return frame


# ---------------------------------------------------------------- compositing (frame space)

def _overlay(bg: np.ndarray, face: np.ndarray, mask: Mask, square: Mask) -> tuple[np.ndarray, Mask]:
    return bg * (1.0 - mask) + face * mask, mask


def _seamless(bg: np.ndarray, face: np.ndarray, mask: Mask, square: Mask) -> tuple[np.ndarray, Mask]:
    """Poisson clone with the mask's own bounding-box centre as the anchor.

    Anchoring on the box's centre makes cv2 place the clone exactly where the face is, so it
    does not drift frame to frame (DeepFaceLab's fixed-centre box); the result is blended by
    the soft mask again so the blur modifier still feathers the edge.
    """
    m8 = ((mask[..., 0] > 0.5) * 255).astype(np.uint8)
    m8[[0, -1], :] = 0
    m8[:, [0, -1]] = 0                                  # cv2 needs the box inside the frame
    if not m8.any():
        return bg, mask
    x, y, w, h = cv2.boundingRect(m8)
    to8 = lambda a: np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)  # noqa: E731
    cloned = cv2.seamlessClone(to8(face), to8(bg), m8, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    return _overlay(bg, cloned.astype(np.float32) / 255.0, mask, square)


def _raw_rgb(bg: np.ndarray, face: np.ndarray, mask: Mask, square: Mask) -> tuple[np.ndarray, Mask]:
    return np.where(square > 0, face, bg), square


def _raw_predict(bg: np.ndarray, face: np.ndarray, mask: Mask, square: Mask) -> tuple[np.ndarray, Mask]:
    return np.where(square > 0, face, 0.0), np.ones_like(square)


@dataclass(frozen=True)
class ModeSpec:
    hist: bool            # hist-match the predicted face first
    raw: bool             # paste the prediction as is: no colour transfer, filters or mask processing
    composite: Callable[[np.ndarray, np.ndarray, Mask, Mask], tuple[np.ndarray, Mask]]


COMPOSITES: dict[str, ModeSpec] = {
    "overlay": ModeSpec(False, False, _overlay),
    "hist-match": ModeSpec(True, False, _overlay),
    "seamless": ModeSpec(False, False, _seamless),
    "seamless-hist-match": ModeSpec(True, False, _seamless),
    "raw-rgb": ModeSpec(False, True, _raw_rgb),
    "raw-predict": ModeSpec(False, True, _raw_predict),
}   # 'original' never reaches the table: the frame is returned before the model runs


def _unwarp(img: np.ndarray, mat: np.ndarray, size: tuple[int, int], interp: int, border: int) -> np.ndarray:
    out = cv2.warpAffine(img, mat, size, flags=interp | cv2.WARP_INVERSE_MAP, borderMode=border, borderValue=0)
    return out if out.ndim == 3 else out[..., None]


def _shift(mat: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """The frame->crop affine re-based on a region whose top-left corner is (x0, y0)."""
    out = np.array(mat, np.float64)
    out[:, 2] += out[:, :2] @ np.array([x0, y0], np.float64)
    return out


def _region(mat: np.ndarray, res: int, w: int, h: int) -> tuple[int, int, int, int]:
    """Frame box (x0, y0, x1, y1) holding the crop square (plus 2 px), clipped to the frame."""
    inv = cv2.invertAffineTransform(np.asarray(mat, np.float64))
    corners = np.array([[0, 0], [res, 0], [0, res], [res, res]], np.float64) @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.floor(corners.min(0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


@dataclass(frozen=True)
class FaceCrop:
    """A dst face cut out of its frame at the model's resolution: the model's input."""
    landmarks: np.ndarray     # (68, 2) frame pixels
    face_type: int
    resolution: int
    mat: np.ndarray           # (2, 3) frame -> crop
    dst: Face                 # the crop, float32 BGR in [0, 1]
    hull: Mask                # the dst landmark hull in crop space


def crop_face(frame: Frame, face: FaceLike, model_resolution: int, model_face_type: FaceType | int) -> FaceCrop:
    res, lm = int(model_resolution), np.asarray(face.source_landmarks, np.float32)
    mat = face_transform(lm, model_face_type, res)
    dst = cv2.warpAffine(frame, mat, (res, res), flags=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    hull = hull_mask((res, res), transform_points(lm, mat), getattr(face, "eyebrows_expand_mod", 1.0))
    return FaceCrop(lm, int(model_face_type), res, mat, dst, hull)


def compose_face(frame: Frame, crop: FaceCrop, prediction: tuple[Face, Mask, Mask], cfg: MergerConfig,
                 motion: Motion | None = None) -> tuple[Frame, Mask]:
    """Composite one predicted face into `frame`: (merged uint8 frame, float32 (H, W, 1) mask).

    All frame-space work runs on the box around the face only; outside it the result is
    the (denoised) frame exactly, or black for raw-predict.
    """
    h, w = frame.shape[:2]
    if cfg.mode == "original":
        return frame.copy(), np.zeros((h, w, 1), np.float32)
    spec, res, lm, dst = COMPOSITES[cfg.mode], crop.resolution, crop.landmarks, crop.dst
    prd, *masks = (None if a is None else np.clip(np.asarray(a, np.float32), 0.0, 1.0).reshape(res, res, -1)
                   for a in prediction)
    mask = build_mask(cfg.mask_mode, MaskSources(crop.hull, *masks))

    if not spec.raw:
        prd = COLOR_TRANSFERS[cfg.color_transfer_mode](prd, dst, mask)
        if spec.hist:
            prd = hist_match(prd, dst, cfg.hist_match_threshold, mask if cfg.masked_hist_match else None)
        prd = motion_blur(prd, crop.mat, motion, cfg.motion_blur_power)
        prd = blursharpen(prd, cfg.sharpen_mode, cfg.blursharpen_amount)
        prd = color_degrade(bicubic_degrade(prd, cfg.bicubic_degrade_power), cfg.color_degrade_power)
        work_mask = process_mask(mask, cfg.erode_mask_modifier, cfg.blur_mask_modifier)
    else:
        work_mask = cv2.resize(mask, (res * WORK_SCALE,) * 2)[..., None]

    scale = 1.0 + 0.01 * cfg.output_face_scale
    out_mat = face_transform(lm, crop.face_type, res, scale=scale)
    work_mat = face_transform(lm, crop.face_type, res * WORK_SCALE, scale=scale)
    bg8 = denoise(frame, cfg.image_denoise_power)
    x0, y0, x1, y1 = _region(out_mat, res, w, h)
    merged = np.zeros_like(frame) if spec.composite is _raw_predict else bg8.copy()
    full_mask = np.zeros((h, w, 1), np.float32)
    if x1 > x0 and y1 > y0:
        size, om, wm = (x1 - x0, y1 - y0), _shift(out_mat, x0, y0), _shift(work_mat, x0, y0)
        bg = bg8[y0:y1, x0:x1].astype(np.float32) / 255.0
        face_f = _unwarp(prd, om, size, cv2.INTER_CUBIC, cv2.BORDER_REPLICATE)
        mask_f = np.clip(_unwarp(work_mask, wm, size, cv2.INTER_LINEAR, cv2.BORDER_CONSTANT), 0.0, 1.0)
        square = _unwarp(np.ones((res, res), np.float32), om, size, cv2.INTER_NEAREST, cv2.BORDER_CONSTANT)
        out, out_mask = spec.composite(bg, face_f, mask_f, square)
        out8 = np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if spec.composite is not _raw_predict:           # outside the mask: the (denoised) frame exactly
            out8 = np.where(out_mask > 0, out8, bg8[y0:y1, x0:x1])
        merged[y0:y1, x0:x1] = out8
        full_mask[y0:y1, x0:x1] = out_mask
    if spec.composite is _raw_predict:
        full_mask[:] = 1.0
    return merged, full_mask


def merge_face(frame: Frame, face: FaceLike, predict: Predict, model_resolution: int,
               model_face_type: FaceType | int, cfg: MergerConfig,
               motion: Motion | None = None) -> tuple[Frame, Mask]:
    """Swap one face into `frame`: crop, predict, composite (see compose_face)."""
    if cfg.mode == "original":
        return compose_face(frame, None, None, cfg)     # type: ignore[arg-type]
    crop = crop_face(frame, face, model_resolution, model_face_type)
    return compose_face(frame, crop, predict(crop.dst), cfg, motion)


def compose_frame(frame: Frame, crops: Sequence[FaceCrop], predictions: Sequence[tuple[Face, Mask, Mask]],
                  cfg: MergerConfig, motions: Sequence[Motion | None] | None = None) -> tuple[Frame, Mask]:
    """Composite every face of one frame in turn; the frame mask is the max of the face masks.

    A frame with no faces comes back unchanged with an empty mask. The frame is denoised
    once (with the first face), not once per face.
    """
    out = frame.copy()
    total = np.zeros((*frame.shape[:2], 1), np.float32)
    for i, (crop, prediction) in enumerate(zip(crops, predictions)):
        step_cfg = cfg if i == 0 else replace(cfg, image_denoise_power=0)
        motion = motions[i] if motions is not None else None
        out, mask = compose_face(out, crop, prediction, step_cfg, motion)
        total = np.maximum(total, mask)
    return out, total


def merge_frame(frame: Frame, faces: Sequence[FaceLike], predict: Predict, model_resolution: int,
                model_face_type: FaceType | int, cfg: MergerConfig,
                motions: Sequence[Motion | None] | None = None) -> tuple[Frame, Mask]:
    """Crop, predict and composite every face of one frame (see compose_frame)."""
    crops = [crop_face(frame, f, model_resolution, model_face_type) for f in faces]
    predictions = [predict(c.dst) for c in crops] if cfg.mode != "original" else [None] * len(crops)
    return compose_frame(frame, crops, predictions, cfg, motions)
