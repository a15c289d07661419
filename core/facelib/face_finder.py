"""Find faces in a frame (detector + face mesh) and cut aligned faces out of it.

`FaceFinder.find` is what every extraction path uses; `align_face` is the only place an
aligned face image is warped out of a frame (through geometry.face_transform).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from core.facelib.detector import FaceDetector
from core.facelib.face_type import FaceType
from core.facelib.geometry import face_transform, transform_points
from core.facelib.landmarker import FaceLandmarker


@dataclass
class FoundFace:
    rect: np.ndarray           # (4,) int l, t, r, b: the detector box in the frame
    landmarks: np.ndarray      # (68, 2) float32 frame pixels
    score: float


@dataclass
class StageTimes:
    """Seconds spent per stage, summed over frames (reported by `bench extract`)."""
    times: dict = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.times[stage] = self.times.get(stage, 0.0) + seconds


def inter_ocular(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0)))


class FaceFinder:
    def __init__(self, threads: int = 1, passes: int = 2, ibug68: bool = False):
        self.detector = FaceDetector(threads=threads)
        self.landmarker = FaceLandmarker(threads=threads, passes=passes, ibug68=ibug68)

    def find(self, img: np.ndarray, max_faces: int = 0, times: StageTimes | None = None) -> list[FoundFace]:
        """Faces in a BGR frame, largest first; at most `max_faces` (0 = all)."""
        import time
        t0 = time.perf_counter()
        detections = self.detector.detect(img)
        t1 = time.perf_counter()
        faces: list[FoundFace] = []
        for det in detections:
            lm = self.landmarker.from_detection(img, det)
            if lm is None:
                continue
            box_area = max(1.0, (det.box[2] - det.box[0]) * (det.box[3] - det.box[1]))
            span = lm.points68.max(0) - lm.points68.min(0)
            if span[0] * span[1] > 4 * box_area:      # landmarks ran off the detection (DFL's filter)
                continue
            if any(np.linalg.norm(lm.points68.mean(0) - f.landmarks.mean(0)) < 0.5 * inter_ocular(f.landmarks)
                   for f in faces):                   # two boxes on one face
                continue
            faces.append(FoundFace(np.round(det.box).astype(int), lm.points68.astype(np.float32), det.score))
            if max_faces and len(faces) >= max_faces:
                break
        if times is not None:
            times.add("detect", t1 - t0)
            times.add("landmarks", time.perf_counter() - t1)
        return faces


def align_face(img: np.ndarray, landmarks: np.ndarray, face_type: FaceType, size: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(aligned image, 2x3 frame->face matrix, landmarks in aligned space)."""
    if face_type == FaceType.MARK_ONLY:
        mat = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
        return img, mat, landmarks.astype(np.float32)
    mat = face_transform(landmarks, face_type, size)
    # Bicubic, not DeepFaceLab's Lanczos4: measured 3.4x faster here and indistinguishable
    # when faces are enlarged to the output size, which is the usual case.
    face = cv2.warpAffine(img, mat, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return face, mat, transform_points(landmarks, mat)
