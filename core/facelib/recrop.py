"""Re-cropping an aligned face to a model's face type and resolution.

Training samples (samplelib), the reconstruction figures of `evaluate` and XSeg all feed a
model the same crop of an aligned face, so the crop is computed here, once, from the
geometry module: core never reaches up into samplelib for it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.errors import VisageError
from core.facelib.face_type import FaceType, face_type_from_str, face_type_name
from core.facelib.geometry import face_transform
from core.types import Affine, Landmarks68


@dataclass
class AlignedFace:
    """What a re-crop needs to know of an aligned face (samplelib's Sample carries the same fields)."""
    path: str
    face_type: FaceType
    image_size: int                  # side of the aligned image in pixels
    source_landmarks: Landmarks68    # in frame pixels
    image_to_face_mat: Affine        # frame -> aligned image


def aligned_face(path: str | Path, meta, image_size: int) -> AlignedFace:
    """The re-crop facts of a FaceMeta whose aligned image is `image_size` pixels wide."""
    return AlignedFace(str(path), face_type_from_str(meta.face_type), int(image_size),
                       np.asarray(meta.source_landmarks, np.float32), np.asarray(meta.image_to_face_mat, np.float32))


def check_face_type(face: AlignedFace, model_type: FaceType) -> None:
    """Refuse a faceset cropped tighter than the model needs, as DeepFaceLab does.

    Types are ordered half < mid-full < full < full_no_align < whole_face < head: a set can
    be cropped down to any type at or below its own, never widened (the pixels are missing).
    """
    have = FaceType(face.face_type)
    if have == FaceType.MARK_ONLY or FaceType(model_type) > have:
        raise VisageError(f"{face.path} is a {face_type_name(have)} face, but the model needs "
                          f"{face_type_name(model_type)}; extract the faceset as "
                          f"{face_type_name(model_type)} (or wider) or choose a narrower face type")


def crop_matrix(face: AlignedFace, face_type: FaceType, resolution: int) -> Affine:
    """2x3 affine from the aligned image (pixel centres at integers) to the model crop.

    Same face type: a plain rescale, written in cv2.resize's pixel-centre convention so the
    landmarks line up with the resized image. Otherwise the model crop of the original
    frame (face_transform on the source landmarks) composed with the inverse of the frame
    -> aligned transform, so the re-crop is exactly the crop extraction would have made.
    """
    if FaceType(face_type) == face.face_type:
        k = resolution / face.image_size
        c = (k - 1.0) / 2.0
        return np.array([[k, 0, c], [0, k, c]], np.float32)
    model = np.eye(3)
    model[:2] = face_transform(face.source_landmarks, face_type, resolution)
    to_face = np.eye(3)
    to_face[:2] = face.image_to_face_mat
    return (model @ np.linalg.inv(to_face))[:2].astype(np.float32)


def _is_resize(m: np.ndarray, w: int, h: int, size: int) -> bool:
    """True when `m` is exactly what cv2.resize(img, (size, size)) does."""
    k = m[0, 0]
    return (w == h and abs(w * k - size) < 1e-6 and np.allclose(m, [[k, 0, (k - 1) / 2], [0, k, (k - 1) / 2]],
                                                                 rtol=0, atol=1e-6))


def resample(img: np.ndarray, mat: np.ndarray, size: int, border_replicate: bool,
             interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """warpAffine that stays alias-free when shrinking a lot (e.g. 512 px faces to 96).

    A pure rescale is a cv2.resize (INTER_AREA when shrinking); otherwise the image is first
    area-downscaled close to the output scale and the rest of the affine done by warpAffine.
    """
    channels = img.shape[2] if img.ndim == 3 else 0
    h, w = img.shape[:2]
    m = np.asarray(mat, np.float64)
    if _is_resize(m, w, h, size):
        interp = cv2.INTER_AREA if size < w else interpolation
        out = img.copy() if size == w else cv2.resize(img, (size, size), interpolation=interp)
    else:
        scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
        if scale < 0.75:
            k, kh = max(1, int(math.ceil(w * scale))), max(1, int(math.ceil(h * scale)))
            sx, sy = w / k, h / kh                     # resize pixel centres: x = sx*x' + (sx-1)/2
            m = m @ np.array([[sx, 0, (sx - 1) / 2], [0, sy, (sy - 1) / 2], [0, 0, 1]])
            img = cv2.resize(img, (k, kh), interpolation=cv2.INTER_AREA)
        border = cv2.BORDER_REPLICATE if border_replicate else cv2.BORDER_CONSTANT
        out = cv2.warpAffine(img, m[:2], (size, size), flags=interpolation, borderMode=border)
    if channels == 1 and out.ndim == 2:
        out = out[..., None]
    return out
