"""`xseg generic-apply`: a whole-face mask for every face, with no labels and no downloaded model.

DeepFaceLab ships a pretrained generic XSeg model for this step; Visage ships no weights it
did not make, so the mask comes from the 468-point face mesh (the same installed model
extraction uses), run again on the aligned face: the mesh's face-oval silhouette, with the
part above the eye line stretched upward by HAIRLINE_STRETCH because the mesh stops at
the upper forehead, short of the hairline a whole-face swap should reach. Where the mesh
finds no face (a blurred or extreme profile crop), the 68-point landmark hull with raised
brows is used instead. Occluders (hands, hair, glasses) are NOT excluded: that needs
labels and a trained XSeg model (`xseg editor`, `train --model XSeg`, `xseg apply`).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core import interact
from core.imagelib.masks import hull_mask

# MediaPipe face mesh FACE_OVAL vertices, in order around the face (forehead top first)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
             149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
HAIRLINE_STRETCH = 1.3          # oval height above the eye line x this = estimated hairline
FALLBACK_BROW_RAISE = 2.0       # eyebrows_expand_mod for the landmark-hull fallback


def encode_mask(mask: np.ndarray) -> bytes:
    """A float mask in [0, 1] as the 8-bit grey PNG stored in `xseg_mask`."""
    m = np.round(np.clip(np.asarray(mask, np.float32).reshape(mask.shape[:2]), 0, 1) * 255).astype(np.uint8)
    return cv2.imencode(".png", m)[1].tobytes()


def oval_polygon(mesh: np.ndarray, stretch: float = HAIRLINE_STRETCH) -> np.ndarray:
    """The mesh's face oval, with every point above the eye line moved up to `stretch` x its height."""
    from core.facelib.landmarker import LEFT_EYE, RIGHT_EYE
    mesh = np.asarray(mesh, np.float64)
    a, b = mesh[RIGHT_EYE], mesh[LEFT_EYE]
    across = (b - a) / max(np.linalg.norm(b - a), 1e-6)
    up = np.array([across[1], -across[0]])            # perpendicular to the eye line, toward the forehead
    mid = (a + b) / 2
    oval = mesh[list(FACE_OVAL)]
    height = (oval - mid) @ up
    lift = np.where(height > 0, height * (stretch - 1.0), 0.0)
    return (oval + lift[:, None] * up).astype(np.float32)


def generic_mask(img: np.ndarray, landmarks68: np.ndarray, landmarker) -> tuple[np.ndarray, bool]:
    """(float32 (H, W) whole-face mask, whether the mesh made it) for one aligned face."""
    from core.facelib.landmarker import roi_from_points
    lm = np.asarray(landmarks68, np.float32)
    eye_vec = lm[45] - lm[36]
    centre, side = roi_from_points(lm, eye_vec)
    found = landmarker.refine(img, centre, side, eye_vec)
    h, w = img.shape[:2]
    if found is None:
        return hull_mask((h, w), lm, FALLBACK_BROW_RAISE)[..., 0], False
    mask = np.zeros((h, w), np.float32)
    pts = np.round(oval_polygon(found.mesh) * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1.0, lineType=cv2.LINE_AA, shift=4)
    return mask, True


def generic_apply(folder: Path) -> dict[str, int]:
    """Write the generic whole-face mask as every face's `xseg_mask`; returns how many came from each source."""
    from core.facelib.face_meta import read_face, update_meta
    from core.facelib.landmarker import FaceLandmarker
    from mainscripts.xseg.xseg import faces_in, progress
    faces = faces_in(folder)
    landmarker = FaceLandmarker(passes=2)
    counts = {"mesh": 0, "hull": 0}
    for p, _ in progress(faces, "Generic mask"):
        img, meta = read_face(p)
        mask, by_mesh = generic_mask(img, meta.landmarks, landmarker)
        counts["mesh" if by_mesh else "hull"] += 1
        meta.xseg_mask = encode_mask(mask)
        update_meta(p, meta)
    interact.log_info(f"Wrote a whole-face mask into {len(faces)} faces in {folder} ({counts['mesh']} from the face "
                      f"mesh, {counts['hull']} from the landmark hull where the mesh found no face)")
    return counts
