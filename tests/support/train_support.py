"""Helpers of the training tests: a tiny SAEHD through the CLI or as an object, and its data.json."""
from __future__ import annotations

import json
from pathlib import Path

import main

TINY = ["archi=liae-ud", "resolution=64", "ae_dims=32", "e_dims=16", "d_dims=16", "d_mask_dims=16", "batch_size=2"]
REPO = Path(__file__).resolve().parents[2]


def train_cli(src, dst, model_dir, model="SAEHD", opts=(), extra=(), name="t"):
    args = ["train", "--training-data-src-dir", str(src), "--training-data-dst-dir", str(dst), "--model-dir",
            str(model_dir), "--model", model, "--force-model-name", name, "--no-preview", "--silent-start",
            "--workers", "1"]
    for o in opts:
        args += ["--opt", o]
    return main.main(args + list(extra))


def data(model_dir, cls="SAEHD"):
    return json.loads((Path(model_dir) / f"t_{cls}_data.json").read_text())


def make_model(src, dst, model_dir, given=None):
    from models.saehd import SAEHDModel
    return SAEHDModel(Path(model_dir), Path(src), Path(dst), "t", given or {}, silent_start=True, workers=1)


def tiny_given(**more) -> dict:
    return {**dict(o.split("=") for o in TINY), **more}


def train_tiny(src, dst, model_dir, iterations: int = 2) -> Path:
    """A tiny SAEHD liae-ud 64 named `t`, trained and saved at `iterations`."""
    opts = TINY + [f"target_iter={iterations}"]
    assert train_cli(src, dst, model_dir, opts=opts) == 0
    return Path(model_dir)


def model_faces(folder, predictor, count: int = 8):
    """`count` real faces of an aligned folder, cropped as the predictor's model sees them, stacked."""
    import numpy as np
    from core.evaluate.identity import read_faces
    from core.evaluate.reconstruction import model_crops
    crops = model_crops(read_faces(folder, count), predictor.face_type, predictor.resolution)
    assert len(crops) == count
    return np.stack([c for c, _ in crops])
