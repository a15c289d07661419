"""The one geometry module: every face crop in Visage is computed here.

`face_transform(landmarks68, face_type, size)` gives the 2x3 affine from frame space to an
aligned face of `size` pixels. Extraction, the sampler's re-crop, the merger, the faceset
resizer and XSeg apply all call it; nothing else derives a crop.

Method (DeepFaceLab's): a least-squares similarity (Umeyama) from iBUG points 17..48 and
54 to DeepFaceLab's mean face in a unit square; the square's centre and diagonals are
taken back to frame space; the half-diagonal is scaled by (padding*sqrt(2) + 0.5); whole
face moves the centre 7 % of the side up, head moves it sideways by the damped yaw and
50 % up; *_no_align types replace the rotated square by an upright one of equal area.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.facelib.face_type import SPECS, FaceType
from core.types import Affine, Landmarks68

_REFERENCE = Path(__file__).resolve().parent / "data" / "dfl_mean_face.json"


@lru_cache(maxsize=1)
def mean_face() -> tuple[np.ndarray, np.ndarray]:
    """(iBUG indices, unit-square mean-face points) used as the alignment target."""
    data = json.loads(_REFERENCE.read_text())
    return np.array(data["ibug_indices"]), np.array(data["points"], np.float64)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking src to dst, as 3x3."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    cov = dc.T @ sc / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    scale = (s * d).sum() / sc.var(0).sum()
    m = np.eye(3)
    m[:2, :2] = scale * rot
    m[:2, 2] = mu_d - scale * rot @ mu_s
    return m


def transform_points(points: np.ndarray, mat: np.ndarray, invert: bool = False) -> np.ndarray:
    """Apply a 2x3 (or 3x3) affine to (N, 2) points."""
    m = np.eye(3)
    m[:2] = np.asarray(mat, np.float64)[:2]
    if invert:
        m = np.linalg.inv(m)
    pts = np.asarray(points, np.float64)
    return (pts @ m[:2, :2].T + m[:2, 2]).astype(np.float32)


def invert_affine(mat: np.ndarray) -> np.ndarray:
    m = np.eye(3)
    m[:2] = mat
    return np.linalg.inv(m)[:2].astype(np.float32)


def estimate_yaw(aligned_landmarks: np.ndarray) -> float:
    """Signed yaw from the jaw-to-nose-bridge spans (DeepFaceLab's averaged estimate)."""
    lm = aligned_landmarks
    left = ((lm[27, 0] - lm[0, 0]) + (lm[28, 0] - lm[1, 0]) + (lm[29, 0] - lm[2, 0])) / 3.0
    right = ((lm[16, 0] - lm[27, 0]) + (lm[15, 0] - lm[28, 0]) + (lm[14, 0] - lm[29, 0])) / 3.0
    return float(right - left)


def face_transform(landmarks: Landmarks68, face_type: FaceType, size: int, scale: float = 1.0) -> Affine:
    """2x3 affine mapping frame pixels to an aligned `size` x `size` face of `face_type`."""
    face_type = FaceType(face_type)
    if face_type == FaceType.MARK_ONLY:
        raise ValueError("mark_only faces are not cropped")
    lm = np.asarray(landmarks, np.float64)
    idx, target = mean_face()
    to_unit = umeyama(lm[idx], target)
    corners = transform_points(np.array([(0, 0), (1, 0), (1, 1), (0, 1), (0.5, 0.5)]), to_unit, invert=True)
    corners = corners.astype(np.float64)
    centre = corners[4].copy()
    diag_tb = corners[2] - corners[0]
    diag_bt = corners[1] - corners[3]
    diag_len = np.linalg.norm(diag_tb)
    diag_tb /= diag_len
    diag_bt /= np.linalg.norm(diag_bt)
    spec = SPECS[face_type]
    half_diag = diag_len * (spec.padding * math.sqrt(2.0) + 0.5) / scale

    up = corners[0] - corners[3]              # unit square's top edge is the forehead side
    if face_type == FaceType.WHOLE_FACE:
        centre += up * 0.07
    elif face_type in (FaceType.HEAD, FaceType.HEAD_NO_ALIGN):
        yaw = estimate_yaw(transform_points(lm, to_unit))
        yaw *= abs(math.tanh(yaw * 2))        # damp near zero
        centre -= (corners[0] - corners[1]) * (yaw / 2.0)
        centre += up * 0.50

    if spec.align:
        src = np.array([centre - diag_tb * half_diag, centre + diag_bt * half_diag, centre + diag_tb * half_diag])
    else:
        side = half_diag / math.sqrt(2.0)     # upright square with the same area
        src = np.array([centre + (-side, -side), centre + (side, -side), centre + (side, side)])
    dst = np.array([(0, 0), (size, 0), (size, size)], np.float64)
    return _affine_from_3(src, dst)


def _affine_from_3(src: np.ndarray, dst: np.ndarray) -> Affine:
    a = np.hstack([src, np.ones((3, 1))])
    return np.linalg.solve(a, dst).T.astype(np.float32)


def crop_rect_in_frame(mat: Affine, size: int) -> np.ndarray:
    """The aligned crop's four corners in frame space (for debug drawing and re-crops)."""
    return transform_points(np.array([(0, 0), (size, 0), (size, size), (0, size)], np.float32), mat, invert=True)


def _span(lm: np.ndarray, a: tuple[int, ...], b: tuple[int, ...], axis: int) -> float:
    return float(np.mean(lm[list(b), axis] - lm[list(a), axis]))


def estimate_pose(aligned_landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in rough radians from 2-D landmark proportions.

    Yaw: estimate_yaw is (nose-to-right-jaw span) - (left-jaw-to-nose span); over
    the jaw width that is -(d/r)·tan(yaw) for a head of radius r whose nose stands d out,
    so atan of the ratio gives an angle (d/r > 1 makes it overstate slightly; only the
    ordering matters for uniform-yaw bins). Pitch uses the same idea vertically: how far
    the nose tip sits between the eye line and the chin, centred on a frontal face (~0.45).
    It is scale-free, so aligned faces of any size give the same values.
    """
    lm = np.asarray(aligned_landmarks, np.float64)
    jaw_width = _span(lm, (0, 1, 2), (16, 15, 14), 0)
    yaw = math.atan2(-estimate_yaw(lm), max(jaw_width, 1e-6))
    eye_y = lm[36:48, 1].mean()
    upper, lower = lm[30, 1] - eye_y, lm[8, 1] - lm[30, 1]
    ratio = upper / max(upper + lower, 1e-6)
    pitch = math.atan2(ratio - 0.45, 0.5)
    return yaw, pitch
