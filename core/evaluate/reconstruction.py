"""How well the model redraws each person: SSIM and PSNR of src -> src and dst -> dst.

The merger's predictor decodes its input with the src decoder (DF: decoder_src after the
shared inter; LIAE: the decoder on inter_AB twice), which is exactly the src -> src path of
training, so src faces sent through it give the src reconstruction. dst -> dst (DF's
decoder_dst, LIAE's decoder on inter_B + inter_AB) comes from the model's `reconstruct`
hook, on the dst aligned faces (ones it trained on; the trainer's held-out validation
faces give the held-out dst figure while training). Faces are cropped to the model's face type and resolution as the trainer crops
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
    from core.facelib.recrop import aligned_face, check_face_type, crop_matrix, resample
    out = []
    for name, img, meta in faces:
        face = aligned_face(name, meta, img.shape[0])
        check_face_type(face, face_type)
        mat = crop_matrix(face, face_type, resolution)
        crop = resample(img, mat, resolution, border_replicate=True).astype(np.float32) / 255.0
        hull = hull_mask((resolution, resolution), transform_points(meta.landmarks, mat),
                         meta.eyebrows_expand_mod)[..., 0] > 0.5
        out.append((crop, hull))
    return out


def _figures(pairs) -> tuple[float, float]:
    """Mean SSIM and PSNR over the hull of each (prediction, (crop, hull))."""
    ssims, psnrs = [], []
    for face, (crop, hull) in pairs:
        face = np.clip(face, 0.0, 1.0)
        ssims.append(float(ssim_map(face, crop)[hull].mean()))
        psnrs.append(psnr(face, crop, hull))
    return float(np.mean(ssims)), float(np.mean(psnrs))


def _predicted(predict, crops: list) -> list:
    out = []
    for i in range(0, len(crops), BATCH):
        out += predict([c for c, _ in crops[i:i + BATCH]])
    return out


def reconstruction(predictor, src_folder: str | Path, held_out: bool, dst_folder: str | Path | None = None,
                   limit: int = MAX_FACES) -> dict:
    """reconstruction.* figures: mean SSIM and PSNR of src -> src over up to `limit` faces of
    `src_folder`, and of dst -> dst over `dst_folder` where the model has a dst path."""
    from core.evaluate.identity import read_faces
    crops = model_crops(read_faces(src_folder, limit), predictor.face_type, predictor.resolution)
    src_ssim, src_psnr = _figures(zip([f for f, _, _ in _predicted(predictor.predict_batch, crops)], crops))
    out = {"model": predictor.title, "iteration": int(predictor.iteration), "faces": len(crops),
           "faces_dir": str(src_folder), "held_out": held_out, "src_ssim": src_ssim, "src_psnr_db": src_psnr}
    dst = model_crops(read_faces(dst_folder, limit), predictor.face_type, predictor.resolution) if dst_folder else []
    redrawn = _predicted(predictor.reconstruct_dst_batch, dst) if dst else None
    if redrawn is None:
        out["dst"] = "not measured: " + ("no dst faces given" if not dst else "the model has no dst -> dst path")
    else:
        dst_ssim, dst_psnr = _figures(zip(redrawn, dst))
        out.update(dst_faces=len(dst), dst_faces_dir=str(dst_folder), dst_ssim=dst_ssim, dst_psnr_db=dst_psnr)
    return out
