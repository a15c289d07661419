"""`bench train --model XSeg`'s training data: the bench faces, each labelled with its landmark hull.

XSeg trains only on faces with polygons; the bench measures speed, not quality, so an
include polygon around the landmark hull of every face is label enough.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def hull_labelled(faces_dir: Path, out: Path) -> Path:
    """`out` holding a copy of every face in `faces_dir` with its landmark hull as an include polygon."""
    from core.facelib.face_meta import update_meta
    from core.fileio import atomic_write_bytes
    from core.imagelib.masks import expand_eyebrows
    from mainscripts.xseg.xseg import faces_in
    out.mkdir(parents=True, exist_ok=True)
    for p, meta in faces_in(faces_dir):
        lm = expand_eyebrows(meta.landmarks, meta.eyebrows_expand_mod)
        hull = cv2.convexHull(np.concatenate([lm[:17], lm[17:27]]).astype(np.float32))[:, 0]
        meta.seg_ie_polys = [{"type": "include", "points": hull.tolist()}]
        atomic_write_bytes(out / p.name, p.read_bytes())
        update_meta(out / p.name, meta)
    return out
