"""Per-sample pipeline: aligned face -> the arrays one training step needs.

Declarative on purpose: a side (src or dst) is described once by a `SampleConfig`, and
`process_sample` always produces the same four outputs, so the model code never builds
its own augmentation chain. The order is DeepFaceLab's:
1. crop the aligned image to the model's face type and resolution (one affine, computed
   by the geometry module, so a whole_face set can feed a full_face model);
2. colour transfer toward a reference face (src side, `ct_mode`);
3. one random affine + flip shared by every output, the warp grid on the input only;
4. HSV jitter on the input only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from core.errors import VisageError
from core.facelib.face_meta import extract
from core.facelib.face_type import FaceType
from core.facelib.geometry import transform_points
from core.facelib.recrop import crop_matrix, resample
from core.imagelib.color_transfer import MODES as CT_MODES
from core.imagelib.color_transfer import color_transfer
from core.imagelib.hsv import random_hsv_shift
from core.imagelib.masks import decode_xseg_mask, eyes_mouth_mask, hull_mask
from core.imagelib.warp import WarpParams, gen_warp_params, identity_params, warp_by_params
from samplelib.sample import Sample, read_sample_bytes


@dataclass(frozen=True)
class SampleConfig:
    """How one side's samples are made. Ranges follow DeepFaceLab's SAEHD/AMP defaults."""
    resolution: int
    face_type: FaceType
    random_warp: bool = True
    random_flip: bool = False
    ct_mode: str = "none"                         # 'none', 'rct', 'lct', 'mkl', 'idt', 'sot'
    random_hsv_power: float = 0.0
    scale_range: tuple[float, float] = (-0.15, 0.15)
    rotation_range: tuple[float, float] = (-10.0, 10.0)
    shift_range: tuple[float, float] = (-0.05, 0.05)
    masks: bool = True                            # False: mask/em_mask are all ones (cheaper)

    def __post_init__(self) -> None:
        object.__setattr__(self, "face_type", FaceType(self.face_type))
        if self.resolution < 16:
            raise VisageError(f"sample resolution {self.resolution} is too small (16 px at least)")
        if self.ct_mode not in CT_MODES or self.ct_mode.endswith("-m"):
            raise VisageError(f"unknown ct_mode '{self.ct_mode}'; choose none, rct, lct, mkl, idt or sot")


class SampleOutput(NamedTuple):
    warped: np.ndarray     # (R, R, 3) float32 [0, 1] augmented network input
    target: np.ndarray     # (R, R, 3) same affine and flip, no warp grid, no HSV
    mask: np.ndarray       # (R, R, 1) XSeg mask if the face has one, else the landmark hull
    em_mask: np.ndarray    # (R, R, 1) eyes + mouth inside the binarised mask


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


def decode_reduction(sample: Sample, cfg: SampleConfig) -> int:
    """Largest JPEG decode reduction (1, 2, 4, 8) that still leaves at least the crop's pixels.

    libjpeg can decode at 1/2, 1/4 or 1/8 size in the DCT domain, several times faster than
    a full decode plus a resize; a 512 px face for a 96 px model decodes at 128 px.
    """
    m = crop_matrix(sample, cfg.face_type, cfg.resolution).astype(np.float64)
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
    return max(r for r in _REDUCED if r * scale <= 1.0 + 1e-6 or r == 1)


def load_image(sample: Sample, reduce: int = 1) -> tuple[np.ndarray, bytes | None]:
    """Decode a sample's BGR image at 1/`reduce` size (and its XSeg PNG when it has one).

    The file is read once: the pixels and, for XSeg faces, the metadata come from the same
    bytes.
    """
    data = read_sample_bytes(sample)
    xseg = None
    if sample.has_xseg:
        meta = extract(data, name=sample.path)
        xseg = meta.xseg_mask if meta is not None else None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED[reduce]) if data else None
    if img is None:
        raise VisageError(f"{sample.path} cannot be read or decoded; remove or re-extract this face")
    return img, xseg


def crop_face(sample: Sample, image: np.ndarray, cfg: SampleConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float32 image, landmarks, aligned -> crop matrix) of the sample in the model's crop.

    `image` may be a reduced decode (see load_image): the matrix is then composed with the
    reduced -> full pixel mapping x = r*x' + (r-1)/2 of libjpeg's scaled decode.
    """
    mat = crop_matrix(sample, cfg.face_type, cfg.resolution)
    m = mat.astype(np.float64)
    r = sample.image_size / image.shape[1]
    if abs(r - 1.0) > 1e-9:
        r = float(min(_REDUCED, key=lambda v: abs(v - r)))
        c = (r - 1.0) / 2.0
        m = np.vstack([m, [0, 0, 1]]) @ np.array([[r, 0, c], [0, r, c], [0, 0, 1]])
    img = resample(image, m[:2], cfg.resolution, border_replicate=True)
    img = np.clip(img.astype(np.float32) / 255.0, 0.0, 1.0)
    return img, transform_points(sample.landmarks, mat), mat


def _masks(sample: Sample, xseg_png: bytes | None, lm: np.ndarray, mat: np.ndarray,
           cfg: SampleConfig) -> tuple[np.ndarray, np.ndarray]:
    res = cfg.resolution
    if not cfg.masks:
        ones = np.ones((res, res, 1), np.float32)
        return ones, ones
    if xseg_png is not None:
        full = decode_xseg_mask(xseg_png, sample.image_size)
        mask = np.clip(resample(full, mat, res, False, cv2.INTER_LINEAR), 0.0, 1.0)
    else:
        mask = hull_mask((res, res), lm, sample.eyebrows_expand_mod)
    em = np.clip(eyes_mouth_mask((res, res), lm) * (mask > 0.5), 0.0, 1.0).astype(np.float32)
    return mask.astype(np.float32), em


def process_sample(sample: Sample, image: np.ndarray, cfg: SampleConfig, rng: np.random.Generator,
                   ct_ref: np.ndarray | None = None, xseg_png: bytes | None = None,
                   augment: bool = True) -> SampleOutput:
    """Make one sample's outputs. `image` is the decoded aligned BGR uint8 image (full or
    reduced size, see load_image); `ct_ref` a float32 (R, R, 3) reference face for
    `cfg.ct_mode` (None: no transfer); `augment=False` gives the clean crop (previews),
    with warped == target."""
    img, lm, mat = crop_face(sample, image, cfg)
    mask, em = _masks(sample, xseg_png, lm, mat, cfg)
    if cfg.ct_mode != "none" and ct_ref is not None:
        img = color_transfer(cfg.ct_mode, img, ct_ref)
    if augment:
        params: WarpParams = gen_warp_params(cfg.resolution, cfg.random_flip, rng, cfg.rotation_range,
                                             cfg.scale_range, cfg.shift_range, cfg.shift_range)
    else:
        params = identity_params(cfg.resolution)
    target = np.clip(warp_by_params(params, img, False, augment, augment), 0.0, 1.0)
    if augment and cfg.random_warp:
        warped = np.clip(warp_by_params(params, img, True, True, True), 0.0, 1.0)
    else:
        warped = target.copy()
    if augment and cfg.random_hsv_power > 0:
        warped = random_hsv_shift(warped, cfg.random_hsv_power, rng)

    def mask_out(m: np.ndarray) -> np.ndarray:
        if not augment or not cfg.masks:
            return m
        return np.clip(warp_by_params(params, m, False, True, True, border_replicate=False,
                                      interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    return SampleOutput(warped.astype(np.float32), target.astype(np.float32),
                        mask_out(mask), mask_out(em))


def reference_face(sample: Sample, cfg: SampleConfig) -> np.ndarray:
    """A sample's clean crop at cfg's face type/resolution: the colour reference for ct_mode."""
    image, _ = load_image(sample, decode_reduction(sample, cfg))
    return crop_face(sample, image, cfg)[0]
