"""`xseg apply`: write a trained XSeg model's mask into every face of a folder.

Each face is re-cropped to the model's face type and resolution through the one crop
function (recrop.crop_matrix: a plain resize when the types match, else the crop
extraction would have made, e.g. a whole-face model on a head set), the mask predicted,
mapped back into the face's own pixels with the inverse of that affine and binarised at
0.5 as DeepFaceLab does, then stored as the face's `xseg_mask` (PNG) with an atomic
in-place update that keeps the image bytes identical.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core import interact


def load_predictor(model_dir: Path, force_name: str | None):
    from models.xseg import XSegPredictor
    return XSegPredictor(model_dir, force_name)


def face_mask(predictor, face_bgr: np.ndarray, meta) -> np.ndarray:
    """float32 (H, W) soft mask of one aligned face, in the face's own pixels."""
    from samplelib.sample import sample_from_meta
    from samplelib.sample_processor import crop_matrix, resample
    h, w = face_bgr.shape[:2]
    res = predictor.resolution
    mat = crop_matrix(sample_from_meta("face", meta, w), predictor.face_type, res)
    crop = resample(face_bgr, mat, res, border_replicate=True).astype(np.float32) / 255.0
    m = predictor.masks(np.clip(crop, 0, 1)[None])[0, ..., 0]
    return cv2.warpAffine(m, mat, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def apply_model(folder: Path, model_dir: Path, force_name: str | None = None) -> int:
    """Store the model's binarised mask as `xseg_mask` in every face of `folder`; returns the count."""
    from core.facelib.face_meta import read_face, update_meta
    from mainscripts.xseg.xseg import faces_in, progress
    from mainscripts.xseg.xseg_generic import encode_mask
    faces = faces_in(folder)
    predictor = load_predictor(model_dir, force_name)
    try:
        for p, _ in progress(faces, "Applying XSeg"):
            img, meta = read_face(p)
            meta.xseg_mask = encode_mask(face_mask(predictor, img, meta) >= 0.5)
            update_meta(p, meta)
    finally:
        predictor.close()
    interact.log_info(f"Applied XSeg model {predictor.title} (iteration {predictor.iteration}, "
                      f"{predictor.face_type.name.lower()} {predictor.resolution} px) to {len(faces)} faces in {folder}")
    return len(faces)
