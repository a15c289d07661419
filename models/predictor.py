"""A trained model's swap path for the merger: dst face crops in, src-looking faces and masks out.

Rebuilt from the model's saved options and weight files alone: no optimizer, no sample
workers, nothing asked but which model (DeepFaceLab's picker) when several are saved.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from core.errors import VisageError

Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]   # face (res,res,3), learned-prd, learned-dst (res,res,1)


class FacePredictor:
    def __init__(self, model_dir: str | Path, model: str, force_name: str | None = None, cpu_only: bool = False,
                 gpu_idxs: list[int] | None = None):
        from core.facelib.face_type import face_type_from_str
        from core.nn.archis import build_parts, swap
        from core.nn.backend import make_predict, select_devices, set_precision
        from models import model_class
        from models.model_files import ModelFiles, list_models, pick_model
        cls = model_class(model)
        model_dir = Path(model_dir)
        names = list_models(model_dir, cls.CLASS_NAME) if model_dir.is_dir() else []
        if not names:
            raise VisageError(f"no trained {cls.CLASS_NAME} model in {model_dir}; train one first (step 6)")
        name = pick_model(model_dir, cls.CLASS_NAME, force_name)
        if name not in names:
            raise VisageError(f"no {cls.CLASS_NAME} model named '{name}' in {model_dir}; "
                              f"saved models: {', '.join(names)}")
        self.devices = select_devices(cpu_only, gpu_idxs)
        files = ModelFiles(model_dir, name, cls.CLASS_NAME)
        self.lock = files.lock(exclusive=False, what="merge")   # released when the predictor goes
        generation = files.load_generation()
        if generation is None:
            raise VisageError(f"model {name}_{cls.CLASS_NAME} in {model_dir} has no complete save; train it first")
        data = generation.data
        options = cls.saved_options(data, files.data_path)
        s = cls.settings_from_options(options)
        self.precision = set_precision(options.get("precision", "auto"))
        parts = build_parts(s["archi"], s["resolution"], s["ae_dims"], s["e_dims"], s["d_dims"], s["d_mask_dims"])
        missing = files.load_parts(parts)
        if missing:
            raise VisageError(f"model {name}_{cls.CLASS_NAME} has no saved weights for {', '.join(missing)}; "
                              f"train it first (step 6)")
        self.name, self.model_class = name, cls.CLASS_NAME
        self.iteration = data.get("iter", 0)
        self.resolution = int(s["resolution"])
        self.face_type = face_type_from_str(s["face_type"])
        self._swap = make_predict(lambda x: swap(s["kind"], parts, x))

    @property
    def title(self) -> str:
        return f"{self.name}_{self.model_class}"

    def predict_batch(self, crops: Sequence[np.ndarray]) -> list[Prediction]:
        """Predict several dst crops (each (res, res, 3) float32 BGR in [0, 1]) in one call.

        A prediction that is not finite stops the merge: composited, it would silently give
        back the dst face (or garbage) in every frame.
        """
        if not len(crops):
            return []
        faces, prd, dst = (np.asarray(a, np.float32) for a in self._swap(np.stack(crops).astype(np.float32)))
        if not all(np.isfinite(a).all() for a in (faces, prd, dst)):
            raise VisageError(f"model {self.title} predicts values that are not finite (NaN/Inf): its weights are "
                              f"damaged or training diverged; restore an autobackup or train again")
        return [(faces[i], prd[i], dst[i]) for i in range(len(crops))]

    def __call__(self, crop: np.ndarray) -> Prediction:
        return self.predict_batch([crop])[0]
