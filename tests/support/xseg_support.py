"""Labelled faces for the XSeg tests: real sample-clip faces with occluders pasted over them.

Each occluder (a crop of another photo or a solid colour, shaped as an ellipse, a turned
rectangle or a random convex polygon) is painted into the face image, and the face gets two
polygons: include = the landmark hull with raised brows, exclude = the occluder's outline.
The truth mask is exactly what those polygons rasterise to.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from core.facelib.face_meta import read_face, write_face
from core.facelib.xseg_polys import polys_mask
from core.imagelib.masks import expand_eyebrows


def face_outline(landmarks: np.ndarray) -> np.ndarray:
    lm = expand_eyebrows(landmarks, 1.0)
    pts = np.concatenate([lm[0:17], lm[17:27]]).astype(np.float32)
    return cv2.convexHull(pts)[:, 0]


def occluder_polygon(landmarks: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    centre = landmarks[int(rng.choice([30, 33, 51, 57, 8, 3, 13, 62, 5, 11]))] + rng.normal(0, size * 0.03, 2)
    r = size * rng.uniform(0.10, 0.20)
    kind = rng.integers(3)
    if kind == 0:
        pts = cv2.ellipse2Poly((int(centre[0]), int(centre[1])), (int(r), int(r * rng.uniform(0.5, 1.0))),
                               int(rng.uniform(0, 180)), 0, 360, 20).astype(np.float32)
    elif kind == 1:
        pts = cv2.boxPoints(((float(centre[0]), float(centre[1])), (2 * r, 2 * r * rng.uniform(0.4, 1.0)),
                             float(rng.uniform(0, 180))))
    else:
        ang = np.sort(rng.uniform(0, 2 * np.pi, 7))
        rad = r * rng.uniform(0.6, 1.2, 7)
        pts = cv2.convexHull((centre + np.stack([np.cos(ang) * rad, np.sin(ang) * rad], 1)).astype(np.float32))[:, 0]
    return np.clip(pts, 0, size - 1).astype(np.float32)


def paste_occluder(img: np.ndarray, poly: np.ndarray, texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    shape = polys_mask((h, w), [{"type": "include", "points": poly.tolist()}]) > 0.5
    if rng.random() < 0.5:
        fill = cv2.resize(texture, (w, h))
        fill = np.roll(fill, (int(rng.integers(h)), int(rng.integers(w))), axis=(0, 1))
    else:
        fill = np.empty_like(img)
        fill[:] = rng.integers(0, 256, 3)
    out = img.copy()
    out[shape] = fill[shape]
    return out


def label_faces(faces: list[Path], textures: list[np.ndarray], out: Path, seed: int) -> list[tuple[Path, np.ndarray,
                                                                                                   np.ndarray]]:
    """Copy `faces` into `out` with an occluder pasted and polygons set; returns (path, truth mask, occluder mask)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    result = []
    for i, p in enumerate(faces):
        img, meta = read_face(p)
        size = img.shape[0]
        occ = occluder_polygon(meta.landmarks, size, rng)
        img = paste_occluder(img, occ, textures[i % len(textures)], rng)
        meta.seg_ie_polys = [{"type": "include", "points": face_outline(meta.landmarks).tolist()},
                             {"type": "exclude", "points": occ.tolist()}]
        dst = out / p.name
        write_face(dst, img, meta, 95)
        truth = polys_mask((size, size), meta.seg_ie_polys)
        occluder = polys_mask((size, size), [{"type": "include", "points": occ.tolist()}])
        result.append((dst, truth, occluder))
    return result


def copy_faces(faces: list[Path], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, out / p.name)) for p in faces]


def occlusion_experiment(faces: list[Path], textures: list[np.ndarray], work: Path, n_train: int, n_test: int,
                         resolution: int, iterations: int, minutes: float = 0.0, batch_size: int = 4,
                         options: dict | None = None) -> dict:
    """Label `n_train` faces with pasted occluders, train XSeg on them, score it on `n_test` other faces.

    Returns iterations, minutes, mean / min IoU against the truth on the held-out faces, and the
    share of each held-out occluder's area the mask excludes (mean, min, faces with >= 80 %).
    """
    import time
    from core.facelib.face_meta import read_face
    from models.xseg import XSegModel, XSegPredictor
    train = label_faces(faces[:n_train], textures, work / "train", seed=1)
    test = label_faces(faces[n_train:n_train + n_test], textures[::-1], work / "test", seed=2)
    model = XSegModel(work / "model", work / "train", work / "train", "occl",
                      {"resolution": str(resolution), "batch_size": str(batch_size), **(options or {})},
                      silent_start=True)
    t0 = time.monotonic()
    try:
        while model.iter < iterations and not (minutes and time.monotonic() - t0 > minutes * 60):
            model.train_iteration()
        model.save()
    finally:
        model.close()
    spent = (time.monotonic() - t0) / 60
    predictor = XSegPredictor(work / "model", "occl")
    ious, excluded, per_face = [], [], []
    try:
        for path, truth, occ in test:
            img, meta = read_face(path)
            soft = predictor.mask_for_face(img, meta)
            pred = soft >= 0.5
            t = truth > 0.5
            ious.append(float((pred & t).sum() / max((pred | t).sum(), 1)))
            o = occ > 0.5
            excluded.append(float((~pred & o).sum() / max(o.sum(), 1)))
            inside = o & (polys_mask(t.shape, meta.seg_ie_polys[:1]) > 0.5)     # the occluder's part on the face
            per_face.append({"face": path.name, "iou": round(ious[-1], 3), "excluded": round(excluded[-1], 3),
                             "occluder_px": int(o.sum()), "on_face": round(float(inside.sum() / max(o.sum(), 1)), 2),
                             "mean_mask_on_occluder": round(float(soft[o].mean()), 3)})
    finally:
        predictor.close()
    return {"iterations": predictor.iteration, "minutes": round(spent, 2), "options": options or {},
            "train_faces": len(train),
            "test_faces": len(test), "iou_mean": float(np.mean(ious)), "iou_min": float(np.min(ious)),
            "excluded_mean": float(np.mean(excluded)), "excluded_min": float(np.min(excluded)),
            "faces_80pct_excluded": int(sum(e >= 0.8 for e in excluded)), "per_face": per_face}


if __name__ == "__main__":      # python -m tests.support.xseg_support FACES TEXTURES WORK RES ITERS MIN [name=value ...]
    import json
    import sys
    faces_dir, tex_dir, work_dir = (Path(a) for a in sys.argv[1:4])
    res, iters, mins = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    opts = dict(a.split("=", 1) for a in sys.argv[7:])       # XSeg options, e.g. paste_occluders=n
    tex = [cv2.imread(str(p)) for p in sorted(tex_dir.glob("*.png"))[::20]]
    print(json.dumps(occlusion_experiment(sorted(faces_dir.glob("*.jpg")), tex, work_dir, 40, 20, res, iters, mins,
                                          options=opts), indent=1))
