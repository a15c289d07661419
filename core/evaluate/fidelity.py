"""Does the merged face keep the dst's expression and head pose?

The 68 landmarks are found again on the merged frame and, the same way, on the dst frame:
the face mesh starts from the square around the dst face's stored landmarks and re-centres
on its own points (as extraction does), so both sides are measured by one method and a
frame compared with itself gives exactly 0. Comparing against the stored landmarks instead
would count extraction's own settings (temporal smoothing, `--landmarks ibug68`) as error.
Errors are in units of the dst's outer-eye distance (points 36-45), as in the landmark test.
"""
from __future__ import annotations

import math

import numpy as np

from core.evaluate.regions import outer_eye_distance

SEED_SCALE = 1.8        # the mesh's square around 68 points (no forehead), a little wider than extraction's


class Relandmarker:
    """The face mesh, seeded from known landmarks instead of a detection (no detector run)."""

    def __init__(self, threads: int = 1):
        from core.facelib.landmarker import FaceLandmarker
        self._mesh = FaceLandmarker(threads=threads, passes=2)

    def __call__(self, img: np.ndarray, seed: np.ndarray) -> np.ndarray | None:
        """(68, 2) float32 landmarks of the face near `seed` (68 points), None when the mesh sees no face."""
        from core.facelib.landmarker import roi_from_points
        seed = np.asarray(seed, np.float64)
        eye_vec = seed[45] - seed[36]
        centre, side = roi_from_points(seed, eye_vec, SEED_SCALE)
        found = self._mesh.refine(img, centre, side, eye_vec)
        return None if found is None else found.points68.astype(np.float32)


def landmark_error(merged: np.ndarray, dst: np.ndarray) -> float:
    """Mean point-to-point distance over the 68 points / the dst's outer-eye distance."""
    return float(np.linalg.norm(np.asarray(merged, np.float64) - dst, axis=1).mean() / outer_eye_distance(dst))


def pose_degrees(landmarks: np.ndarray, frame_to_face: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees: yaw/pitch from the landmarks' proportions in the aligned face
    (geometry.estimate_pose, rough but consistent), roll from the outer-eye line in the frame."""
    from core.facelib.geometry import estimate_pose, transform_points
    lm = np.asarray(landmarks, np.float64)
    yaw, pitch = estimate_pose(transform_points(lm, frame_to_face))
    eye = lm[45] - lm[36]
    roll = math.atan2(eye[1], eye[0])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def pose_difference(merged: np.ndarray, dst: np.ndarray, frame_to_face: np.ndarray) -> tuple[float, float, float]:
    """|yaw|, |pitch|, |roll| differences (degrees) between the merged and the dst landmarks."""
    a, b = pose_degrees(merged, frame_to_face), pose_degrees(dst, frame_to_face)
    roll = (a[2] - b[2] + 180.0) % 360.0 - 180.0
    return abs(a[0] - b[0]), abs(a[1] - b[1]), abs(roll)
