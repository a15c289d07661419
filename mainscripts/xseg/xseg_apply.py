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


from core import interact


def load_predictor(model_dir: Path, force_name: str | None):
    from models.xseg import XSegPredictor
    return XSegPredictor(model_dir, force_name)


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
            meta.xseg_mask = encode_mask(predictor.mask_for_face(img, meta) >= 0.5)
            update_meta(p, meta)
    finally:
        predictor.close()
    interact.log_info(f"Applied XSeg model {predictor.title} (iteration {predictor.iteration}, "
                      f"{predictor.face_type.name.lower()} {predictor.resolution} px) to {len(faces)} faces in {folder}")
    return len(faces)
