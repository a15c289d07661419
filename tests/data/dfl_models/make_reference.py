"""DeepFaceLab's own predictions on faces.npz, for tests/mainscripts/test_dfl_model_import.py.

RUN INSIDE DEEPFACELAB'S VENV (not Visage's), with DFL's checkout on the path:
    DFL_DIR=/path/to/DeepFaceLab <dfl>/venv/bin/python make_reference.py MODEL_DIR MODEL NAME OUT.npz
e.g. `... make_reference.py tests/data/dfl_models/saehd_df SAEHD df tests/data/dfl_models/saehd_df/reference.npz`.

The model is opened by DeepFaceLab's own model class exactly as its merger opens it
(is_training=False, CPU), and its merge graph (AE_merge) runs on the faces at the model's
resolution, BGR float 0..1 (AMP: at morph values 1.0 and 0.5). Saved under DeepFaceLab's .dfm output names. No DeepFaceLab code
is copied here; this only calls it.
"""
import os
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    model_dir, model_class, name, out = sys.argv[1:5]
    dfl = Path(os.environ.get("DFL_DIR", "DeepFaceLab")).resolve()
    faces_path = Path(__file__).resolve().with_name("faces.npz")
    model_dir, out = Path(model_dir).resolve(), Path(out).resolve()
    sys.path.insert(0, str(dfl))
    os.chdir(dfl)
    from core.leras import nn
    nn.initialize_main_env()                                 # as DFL's main.py does first
    import models
    model = models.import_model(model_class)(is_training=False, saved_models_path=model_dir,
                                             force_model_name=name, cpu_only=True, silent_start=True)
    res = model.resolution
    faces = np.load(faces_path)[f"faces{res}"].astype(np.float32) / 255.0
    names = ("out_celeb_face", "out_face_mask", "out_celeb_face_mask")   # AE_merge's order
    fmt = model.model_data_format        # AMP builds its graph NCHW even on the CPU
    feed = nn.to_data_format(faces, fmt, "NHWC")

    def nhwc(outs):
        return [nn.to_data_format(x, "NHWC", fmt) for x in outs]
    if model_class == "AMP":      # the merge-time morph value: 1.0 (DFL's default) and halfway
        arrays = {f"{n}_morph{m:g}": a for m in (1.0, 0.5) for n, a in zip(names, nhwc(model.AE_merge(feed, m)))}
    else:
        arrays = dict(zip(names, nhwc(model.AE_merge(feed))))
    np.savez(out, **arrays)
    print(out, {k: v.shape for k, v in arrays.items()})


if __name__ == "__main__":
    main()
