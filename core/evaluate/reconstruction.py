"""How well the model redraws the src person: SSIM and PSNR of src -> src.

The merger's predictor decodes its input with the src decoder (DF: decoder_src after the
shared inter; LIAE: the decoder on inter_AB twice), which is exactly the src -> src path of
training, so src faces sent through it give the src reconstruction. dst -> dst (DF's
decoder_dst, LIAE's inter_B path) is not reachable through the predictor and is not
measured. Faces are cropped to the model's face type and resolution as the trainer crops
them; both figures are taken over the face's landmark hull, on B, G, R in [0, 1].
Pass faces the model never trained on (`--holdout-dir`) for a held-out figure.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

MAX_FACES = 32
BATCH = 8
SSIM_C1, SSIM_C2 = 0.01 ** 2, 0.03 ** 2     # Wang et al. 2004, for data in [0, 1]


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM (11x11 Gaussian window, sigma 1.5), averaged over the channels: (H, W)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5)
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)
    den = (mu_a ** 2 + mu_b ** 2 + SSIM_C1) * (var_a + var_b + SSIM_C2)
    s = num / den
    return s.mean(-1) if s.ndim == 3 else s


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """PSNR in dB of images in [0, 1] over the `where` pixels."""
    mse = float(((a.astype(np.float64) - b) ** 2)[where].mean())
    return float(10 * np.log10(1.0 / max(mse, 1e-10)))


def model_crops(faces: list, face_type, resolution: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(crop float32 BGR [0, 1], hull bool) of each (name, image, meta) at the model's face type and size."""
    from core.facelib.geometry import transform_points
    from core.imagelib.masks import hull_mask
    from samplelib.sample import sample_from_meta
    from samplelib.sample_processor import check_face_type, crop_matrix, resample
    out = []
    for name, img, meta in faces:
        sample = sample_from_meta(name, meta, img.shape[0])
        check_face_type(sample, face_type)
        mat = crop_matrix(sample, face_type, resolution)
        crop = resample(img, mat, resolution, border_replicate=True).astype(np.float32) / 255.0
        hull = hull_mask((resolution, resolution), transform_points(meta.landmarks, mat),
                         meta.eyebrows_expand_mod)[..., 0] > 0.5
        out.append((crop, hull))
    return out


def src_reconstruction(predictor, folder: str | Path, held_out: bool, limit: int = MAX_FACES) -> dict:
    """reconstruction.* figures: mean SSIM and PSNR of src -> src over up to `limit` faces of `folder`."""
    from core.evaluate.identity import read_faces
    crops = model_crops(read_faces(folder, limit), predictor.face_type, predictor.resolution)
    ssims, psnrs = [], []
    for i in range(0, len(crops), BATCH):
        chunk = crops[i:i + BATCH]
        for (crop, hull), (face, _, _) in zip(chunk, predictor.predict_batch([c for c, _ in chunk])):
            face = np.clip(face, 0.0, 1.0)
            ssims.append(float(ssim_map(face, crop)[hull].mean()))
            psnrs.append(psnr(face, crop, hull))
    return {"model": predictor.title, "iteration": int(predictor.iteration), "faces": len(crops),
            "faces_dir": str(folder), "held_out": held_out,
            "src_ssim": float(np.mean(ssims)), "src_psnr_db": float(np.mean(psnrs)),
            "dst": "not measured: the merge predictor has no dst -> dst path"}
