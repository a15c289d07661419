"""Run in a subprocess per Keras backend (Keras fixes its backend at import): train, save, reload, predict.

`python -m tests.support.backend_support BACKEND JOB.json` reads a job, prints one JSON line:
- "train": for each model, build it fresh (fp32, tiny SAEHD dims from train_support), take 3
  steps of the compiled train step on one fixed batch of real faces, save, and write the
  merger's predictions on that batch's dst faces to `<model dir>/pred_<backend>.npz`; reports
  the losses.
- "predict": load each given model folder with the merger's FacePredictor and write its
  predictions on the same crops to `<model dir>/pred_<backend>.npz`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SAEHD_TINY = {"archi": "liae-ud", "resolution": "64", "ae_dims": "32", "e_dims": "16", "d_dims": "16",
              "d_mask_dims": "16", "batch_size": "2"}


def _predict(model_dir: Path, model: str, backend: str) -> None:
    from models.predictor import FacePredictor
    crops = np.load(model_dir / "crops.npy")
    predictor = FacePredictor(model_dir, model, force_name="t")
    try:
        out = predictor.predict_batch(list(crops))
    finally:
        predictor.lock.release()
    np.savez(model_dir / f"pred_{backend}.npz", *[np.stack([o[i] for o in out]) for i in range(3)])


def train(job: dict, backend: str) -> dict:
    from models import model_class
    from models.saehd import batch_tuple
    losses = {}
    for model, model_dir in job["models"]:
        given = {"precision": "fp32", **(SAEHD_TINY if model == "SAEHD" else {})}
        m = model_class(model)(Path(model_dir), Path(job["src"]), Path(job["dst"]), "t", given, silent_start=True,
                               workers=1)
        try:
            batch = next(m.batches)
            fixed = batch_tuple(batch)
            losses[model] = [[float(x) for x in m._step(fixed)] for _ in range(3)]
            m.iter = 3
            m.save()
            np.save(Path(model_dir) / "crops.npy", batch.dst.target)
        finally:
            m.close()
        _predict(Path(model_dir), model, backend)
    return {"losses": losses}


def predict(job: dict, backend: str) -> dict:
    for model, model_dir in job["models"]:
        _predict(Path(model_dir), model, backend)
    return {}


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from core.nn.backend import choose_backend
    name = choose_backend(sys.argv[1])
    job = json.loads(Path(sys.argv[2]).read_text())
    result = {"train": train, "predict": predict}[job["action"]](job, name)
    import keras
    print(json.dumps({"backend": keras.backend.backend(), **result}))
