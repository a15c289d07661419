"""468-point face mesh (MediaPipe) through ai-edge-litert, mapped to the 68 iBUG points.

The mesh sees a 192x192 crop of an eye-line-rotated square 1.5x the face box; the crop is
then re-centred on the mesh's own points and run again (`passes`), which removes most of
the detector box's offset and scale error. The model's face-presence score rejects
detections that are not human faces (drawings, cartoons).

The 68 points are the mesh's vertices listed in mesh_to_68.json. With `ibug68=True` (extract
`--landmarks ibug68`) they are refined by dlib's iBUG-trained shape predictor started from
the mesh (core/facelib/ibug68.py), which follows the iBUG annotation conventions (jaw
silhouette, brows) that fixed mesh vertices cannot. It is not the default because that
model's training data forbids commercial use (DESIGN.md, Face models).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from core.facelib.detector import Detection
from core.facelib.model_registry import load_interpreter

INPUT = 192
ROI_SCALE = 1.5
PRESENCE_THRESHOLD = 0.5
RIGHT_EYE, LEFT_EYE = 33, 263       # mesh indices of the outer eye corners
MAX_PASSES = 4
SETTLED_DEGREES = 3.0               # eye-line turn below which the crop counts as settled


@lru_cache(maxsize=1)
def mesh_to_68() -> np.ndarray:
    return np.array(json.loads((Path(__file__).parent / "data" / "mesh_to_68.json").read_text()))


@dataclass
class FaceLandmarks:
    points68: np.ndarray   # (68, 2) float32 frame pixels
    mesh: np.ndarray       # (468, 2) float32 frame pixels
    presence: float        # face-presence probability from the mesh model


def roi_affine(center: np.ndarray, side: float, eye_vec: np.ndarray) -> np.ndarray:
    """2x3 affine taking a square ROI (rotated so the eye line is level) to the 192 input."""
    angle = np.arctan2(eye_vec[1], eye_vec[0])
    c, s = np.cos(angle), np.sin(angle)
    k = INPUT / side
    lin = k * np.array([[c, s], [-s, c]])
    t = np.array([INPUT / 2, INPUT / 2]) - lin @ center
    return np.hstack([lin, t[:, None]]).astype(np.float32)


def roi_from_points(points: np.ndarray, eye_vec: np.ndarray, scale: float = ROI_SCALE) -> tuple[np.ndarray, float]:
    """Centre and side of the square around `points`, measured in the eye-aligned frame."""
    angle = np.arctan2(eye_vec[1], eye_vec[0])
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, s], [-s, c]])
    p = points @ rot.T
    lo, hi = p.min(0), p.max(0)
    centre = rot.T @ ((lo + hi) / 2)
    return centre, float((hi - lo).max() * scale)


class FaceLandmarker:
    """One interpreter per process; `from_detection(frame, det)` returns landmarks or None."""

    def __init__(self, threads: int = 1, passes: int = 2, ibug68: bool = False):
        self.interp = load_interpreter("face_mesh", threads)
        self.input_index = self.interp.get_input_details()[0]["index"]
        outs = sorted(self.interp.get_output_details(), key=lambda d: d["shape"][-1])
        self.presence_index, self.mesh_index = outs[0]["index"], outs[1]["index"]
        self.passes = passes
        self.ibug68 = None
        if ibug68:
            from core.facelib.ibug68 import Ibug68Refiner
            self.ibug68 = Ibug68Refiner()

    def _run(self, img: np.ndarray, mat: np.ndarray) -> tuple[np.ndarray, float]:
        crop = cv2.warpAffine(img, mat, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        x = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) * (1 / 255.0)
        self.interp.set_tensor(self.input_index, x[None])
        self.interp.invoke()
        mesh = self.interp.get_tensor(self.mesh_index).reshape(-1, 3)[:, :2]
        logit = float(self.interp.get_tensor(self.presence_index).ravel()[0])
        inv = cv2.invertAffineTransform(mat)
        pts = mesh @ inv[:, :2].T + inv[:, 2]
        return pts.astype(np.float32), 1 / (1 + np.exp(-logit))

    def from_detection(self, img: np.ndarray, det: Detection) -> FaceLandmarks | None:
        eye_vec = det.keypoints[1] - det.keypoints[0]
        box = det.box
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        side = max(box[2] - box[0], box[3] - box[1]) * ROI_SCALE
        return self.refine(img, centre, side, eye_vec)

    def from_mesh(self, img: np.ndarray, mesh: np.ndarray) -> FaceLandmarks | None:
        """Track: start from a previous frame's mesh instead of a detection."""
        eye_vec = mesh[LEFT_EYE] - mesh[RIGHT_EYE]
        centre, side = roi_from_points(mesh, eye_vec)
        return self.refine(img, centre, side, eye_vec)

    def refine(self, img: np.ndarray, centre: np.ndarray, side: float, eye_vec: np.ndarray) -> FaceLandmarks | None:
        """Run the mesh `passes` times, each crop re-centred on the last result; keep going
        (up to MAX_PASSES) while the eye line still turns, as when the start was far off."""
        mesh, presence = self._run(img, roi_affine(centre, side, eye_vec))
        for n in range(1, MAX_PASSES):
            new_vec = mesh[LEFT_EYE] - mesh[RIGHT_EYE]
            cross = eye_vec[0] * new_vec[1] - eye_vec[1] * new_vec[0]
            turn = abs(np.degrees(np.arctan2(cross, np.dot(eye_vec, new_vec))))
            if presence < PRESENCE_THRESHOLD or (n >= self.passes and turn < SETTLED_DEGREES):
                break
            eye_vec = new_vec
            centre, side = roi_from_points(mesh, eye_vec)
            mesh, presence = self._run(img, roi_affine(centre, side, eye_vec))
        if presence < PRESENCE_THRESHOLD:
            return None
        points68 = mesh[mesh_to_68()]
        if self.ibug68 is not None:
            points68 = self.ibug68(img, points68)
        return FaceLandmarks(points68, mesh, presence)
