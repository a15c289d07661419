"""A trained model's swap path for the merger: dst face crops in, src-looking faces and masks out.

The graph is the model class's own `build_inference` over its saved weights (models/trained.py),
the same graph `exportdfm` writes, so merge and a live .dfm predict the same faces.
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
        from core.nn.backend import make_predict, select_devices
        from models.trained import load_trained
        self.devices = select_devices(cpu_only, gpu_idxs)
        trained = load_trained(model_dir, model, force_name, what="merge")
        self.lock = trained.lock                      # released when the predictor goes
        self.name, self.model_class, self.title = trained.name, trained.cls.CLASS_NAME, trained.title
        self.iteration, self.precision = trained.iteration, trained.precision
        resolution, face_type = trained.cls.face_crop(trained.options)
        self.resolution, self.face_type = int(resolution), face_type_from_str(face_type)
        graph = trained.inference()
        from models.model_base import MORPH_INPUT
        self.merge_options = trained.cls.MERGE_OPTIONS
        self.takes_morph = MORPH_INPUT in [t.name for t in graph.inputs]     # AMP: in_face + morph_value
        self._swap = make_predict(lambda x, m: graph([x, m], training=False)) if self.takes_morph else \
            make_predict(lambda x: graph(x, training=False))
        self._dst_dst = make_predict(lambda x: trained.cls.reconstruct(trained.options, trained.parts, x))

    def reconstruct_dst_batch(self, crops: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        """dst crops redrawn through the model's dst path (ModelBase.reconstruct); None if it has none."""
        out = self._dst_dst(np.stack(crops).astype(np.float32))
        return None if out is None else list(np.asarray(out, np.float32))

    def predict_batch(self, crops: Sequence[np.ndarray], morph: float = 1.0) -> list[Prediction]:
        """Predict several dst crops (each (res, res, 3) float32 BGR in [0, 1]) in one call; `morph`
        is the merger's morph factor, fed to a model that takes one (AMP) and unused otherwise.

        A prediction that is not finite stops the merge: composited, it would silently give
        back the dst face (or garbage) in every frame.
        """
        if not len(crops):
            return []
        x = np.stack(crops).astype(np.float32)
        out = self._swap(x, np.array([morph], np.float32)) if self.takes_morph else self._swap(x)
        dst, faces, prd = (np.asarray(a, np.float32) for a in out)
        if not all(np.isfinite(a).all() for a in (faces, prd, dst)):
            raise VisageError(f"model {self.title} predicts values that are not finite (NaN/Inf): its weights are "
                              f"damaged or training diverged; restore an autobackup or train again")
        return [(faces[i], prd[i], dst[i]) for i in range(len(crops))]

    def __call__(self, crop: np.ndarray, morph: float = 1.0) -> Prediction:
        return self.predict_batch([crop], morph)[0]
