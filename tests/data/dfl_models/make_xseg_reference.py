"""DeepFaceLab's own XSeg mask predictions on faces.npz's whole faces, for tests/mainscripts/test_dfl_model_import.py.

RUN INSIDE DEEPFACELAB'S VENV (not Visage's), with DFL's checkout on the path:

    DFL_DIR=/path/to/DeepFaceLab <dfl>/venv/bin/python make_xseg_reference.py model MODEL_DIR OUT.npz
        A DFL XSeg model folder (XSeg_data.dat, XSeg_256.npy) opened by DFL's facelib.XSegNet exactly
        as its `XSeg apply` opens it (training=False, CPU, NHWC); its predicted masks (the sigmoid
        before DFL's clip and 0.1 cut) go to OUT.npz as `mask`.
    ... make_xseg_reference.py narrow OUT_DIR
        DFL's own network class nn.XSeg at base width 4 instead of XSegNet's 32 (the test data must
        stay small: a real XSeg model is 70 MB), its weights drawn by DFL's initialisers and then every
        FRN scale / shift / epsilon, TLU threshold and bias moved off its initial value (so a weight
        put in the wrong place shows), saved by DFL's own save_weights as OUT_DIR/XSeg_256.npy, and
        its predictions in OUT_DIR/reference.npz: `mask` (DFL's forward) and `mask_pretrain`
        (its pretrain forward, skip connections zeroed).

Faces: `faces_wf256` of faces.npz, BGR float 0..1. No DeepFaceLab code is copied here; this only calls it.

The other files of xseg/ come from an XSeg model DeepFaceLab trained itself (main.py train --model XSeg,
answers wf / 4 / n, 7 iterations on a make_faceset.py set, by shared/tools/dfl-baseline/bench.py):
XSeg_data.dat is its data.dat re-pickled without `sample_for_preview` (10 MB of preview faces), and
dfl_xseg_256_layout.json the [key, shape] of each array of its XSeg_256.npy, in the file's order.
That model's 70 MB of weights are not kept; `model` above measured it once (README, "Bring your
DeepFaceLab model").
"""
import os
import sys
from pathlib import Path

import numpy as np


def dfl_env():
    dfl = Path(os.environ.get("DFL_DIR", "DeepFaceLab")).resolve()
    sys.path.insert(0, str(dfl))
    os.chdir(dfl)
    from core.leras import nn
    nn.initialize_main_env()
    nn.initialize(nn.DeviceConfig.CPU(), data_format="NHWC")
    return nn


def faces() -> np.ndarray:
    return np.load(Path(__file__).resolve().with_name("faces.npz"))["faces_wf256"].astype(np.float32) / 255.0


def from_model(model_dir: Path, out: Path) -> None:
    x = faces()
    nn = dfl_env()
    from facelib import XSegNet
    net = XSegNet(name="XSeg", resolution=256, load_weights=True, weights_file_root=model_dir, training=False,
                  place_model_on_cpu=True, run_on_cpu=True, raise_on_no_model_files=True)
    mask = np.concatenate([net.net_run(x[i:i + 2]) for i in range(0, len(x), 2)])
    np.savez(out, mask=mask)
    print(out, mask.shape, float(mask.min()), float(mask.max()), nn.data_format)


def narrow(out_dir: Path) -> None:
    x = faces()
    nn = dfl_env()
    tf = nn.tf
    out_dir.mkdir(parents=True, exist_ok=True)
    model = nn.XSeg(3, 4, 1, name="XSeg")
    inp = tf.placeholder(nn.floatx, (None, 256, 256, 3))
    _, pred = model(inp)
    _, pred_pre = model(inp, pretrain=True)
    model.init_weights()
    rng = np.random.default_rng(14)
    moved = []
    for w in model.get_weights():
        v = nn.tf_sess.run(w)
        kind = w.name.split("/")[-1].split(":")[0]
        if kind == "eps":
            v = np.abs(rng.normal(0, 0.05, v.shape)).astype(np.float32)
        elif kind in ("tau", "bias") or "frn/weight" in w.name:
            v = (v + rng.normal(0, 0.2, v.shape)).astype(np.float32)
        moved.append((w, v))
    nn.batch_set_value(moved)
    model.save_weights(out_dir / "XSeg_256.npy")
    arrays = {"mask": nn.tf_sess.run(pred, {inp: x}), "mask_pretrain": nn.tf_sess.run(pred_pre, {inp: x})}
    np.savez(out_dir / "reference.npz", **arrays)
    print(out_dir, {k: (v.shape, float(v.min()), float(v.max())) for k, v in arrays.items()})


if __name__ == "__main__":
    if sys.argv[1] == "model":
        from_model(Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve())
    elif sys.argv[1] == "narrow":
        narrow(Path(sys.argv[2]).resolve())
    else:
        raise SystemExit(__doc__)
