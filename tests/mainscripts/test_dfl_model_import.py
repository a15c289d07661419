"""util --import-dfl-model on models made by DeepFaceLab itself (tests/data/dfl_models, see its scripts).

Each converted model must redraw eight real faces exactly as DeepFaceLab's own merge graph
did (its predictions are stored beside the model), keep DFL's options and iteration, and
train on; hostile pickles in data.dat or a part's .npy are refused with nothing executed.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from mainscripts.dfl_model_import import load_dfl_file
from tests.support.hostile_support import assert_one_error, run, tree_bytes
from tests.support.train_support import train_cli

DATA = Path(__file__).resolve().parents[1] / "data" / "dfl_models"
MODELS = {"df": ("saehd_df", "df"), "liae-ud": ("saehd_liae", "liae")}
MARKER = "pwned"


def dfl_copy(tmp_path: Path, key: str) -> tuple[Path, str]:
    folder, name = MODELS[key]
    dest = tmp_path / folder
    shutil.copytree(DATA / folder, dest, ignore=shutil.ignore_patterns("reference.npz"))
    return dest, name


def import_model(model_dir: Path, out: Path | None = None) -> int:
    return run("util", "--import-dfl-model", "--model-dir", model_dir, *(["--output-dir", out] if out else []))


@pytest.mark.parametrize("key", list(MODELS))
def test_dfl_model_converts_and_predicts_as_deepfacelab(tmp_path, capsys, key):
    from keras.ops import convert_to_numpy
    from models.model_base import INFERENCE_OUTPUTS
    from models.trained import load_trained
    model_dir, name = dfl_copy(tmp_path, key)
    assert import_model(model_dir) == 0
    out = capsys.readouterr().out
    assert f"{name}_SAEHD: converted iteration" in out and "src_dst_opt" not in out

    dfl = load_dfl_file(model_dir / f"{name}_SAEHD_data.dat")
    saved = json.loads((model_dir / f"{name}_SAEHD_data.json").read_text())
    assert saved["iter"] == dfl["iter"] > 0 and len(saved["loss_history"]) == dfl["iter"]
    for k in ("archi", "resolution", "ae_dims", "e_dims", "d_dims", "d_mask_dims", "face_type", "batch_size"):
        assert saved["options"][k] == dfl["options"][k], k
    assert saved["options"]["archi"] == key

    model = load_trained(model_dir, "SAEHD", name, precision="fp32")
    try:
        faces = np.load(DATA / "faces.npz")["faces64"].astype(np.float32) / 255.0
        outputs = model.inference()(faces)
    finally:
        model.release()
    ref = np.load(DATA / MODELS[key][0] / "reference.npz")
    for n, o in zip(INFERENCE_OUTPUTS, outputs):
        o = convert_to_numpy(o)
        assert o.shape == ref[n].shape
        # the issue asks for 1e-3; these barely trained models vary from face to face by only ~1e-3
        # (df) to 1e-2 (liae), so hold them to float round-off, where a misplaced weight shows
        assert np.abs(o - ref[n]).max() <= 1e-5, n
        assert np.abs(ref[n] - ref[n].mean(0)).max() > 1e-4, n        # outputs depend on the face


def test_converted_model_trains_on(src_faceset, dst_faceset, tmp_path, capsys):
    model_dir, name = dfl_copy(tmp_path, "df")
    out = tmp_path / "visage"
    assert import_model(model_dir, out) == 0
    before = json.loads((out / f"{name}_SAEHD_data.json").read_text())
    with np.load(out / f"{name}_SAEHD_encoder.npz") as z:
        enc_before = {k: z[k] for k in z.files if k != "__iter__"}
    it = before["iter"]
    assert train_cli(src_faceset, dst_faceset, out, name=name, opts=[f"target_iter={it + 1}", "batch_size=2"]) == 0
    after = json.loads((out / f"{name}_SAEHD_data.json").read_text())
    assert after["iter"] == it + 1 and np.isfinite(after["loss_history"][-1]).all()
    assert after["options"]["archi"] == "df" and after["options"]["ae_dims"] == before["options"]["ae_dims"]
    with np.load(out / f"{name}_SAEHD_encoder.npz") as z:
        assert any(not np.array_equal(z[k], v) for k, v in enc_before.items())     # it learned


class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("target", ["data.dat", "encoder.npy"])
def test_hostile_pickle_in_a_dfl_model_is_refused_unexecuted(tmp_path, capsys, target):
    model_dir, name = dfl_copy(tmp_path, "df")
    marker = tmp_path / MARKER
    path = model_dir / f"{name}_SAEHD_{target}"
    live = pickle.dumps({"iter": 1, "options": {}, "x": _Reduce(os.system, (f"touch {marker}",))}, protocol=4)
    pickle.loads(live)                                   # the payload is live under plain pickle
    assert marker.exists()
    marker.unlink()
    path.write_bytes(live)
    before = tree_bytes(model_dir)

    assert import_model(model_dir) == 2
    line = assert_one_error(capsys.readouterr().err, path.name, "posix.system", "refused, nothing was executed")
    assert "Traceback" not in line
    assert not marker.exists()
    assert tree_bytes(model_dir) == before               # nothing written, nothing changed


def test_damaged_or_missing_parts_give_one_line(tmp_path, capsys):
    model_dir, name = dfl_copy(tmp_path, "df")
    (model_dir / f"{name}_SAEHD_inter.npy").unlink()
    assert import_model(model_dir) == 2
    assert_one_error(capsys.readouterr().err, f"{name}_SAEHD_inter.npy is missing")
    cut = model_dir / f"{name}_SAEHD_encoder.npy"
    shutil.copy(DATA / MODELS["df"][0] / f"{name}_SAEHD_inter.npy", model_dir)
    cut.write_bytes(cut.read_bytes()[:1000])
    assert import_model(model_dir) == 2
    assert_one_error(capsys.readouterr().err, cut.name, "truncated or damaged")
    assert not list(model_dir.glob("*.json"))
    assert import_model(tmp_path / "nothing") == 2
    assert_one_error(capsys.readouterr().err, "model folder not found")


def test_dfl_amp_model_converts_and_morphs_as_deepfacelab(tmp_path, capsys):
    """DeepFaceLab's AMP (res 64, morph_factor 0.5): the same three outputs at morph 1.0 and 0.5."""
    from keras.ops import convert_to_numpy
    from models.model_base import INFERENCE_OUTPUTS
    from models.trained import load_trained
    model_dir = tmp_path / "amp"
    shutil.copytree(DATA / "amp", model_dir, ignore=shutil.ignore_patterns("reference.npz"))
    assert import_model(model_dir) == 0
    assert "amp_AMP: converted iteration" in capsys.readouterr().out
    saved = json.loads((model_dir / "amp_AMP_data.json").read_text())
    dfl = load_dfl_file(model_dir / "amp_AMP_data.dat")
    assert saved["iter"] == dfl["iter"] > 0
    for k in ("resolution", "ae_dims", "inter_dims", "e_dims", "d_dims", "d_mask_dims", "morph_factor"):
        assert saved["options"][k] == dfl["options"][k], k
    model = load_trained(model_dir, "AMP", "amp", precision="fp32")
    try:
        faces = np.load(DATA / "faces.npz")["faces64"].astype(np.float32) / 255.0
        graph = model.inference()
        ref = np.load(DATA / "amp" / "reference.npz")
        for morph in (1, 0.5):
            outputs = graph([faces, np.array([morph], np.float32)])
            for n, o in zip(INFERENCE_OUTPUTS, outputs):
                want = ref[f"{n}_morph{morph}"]
                assert np.abs(convert_to_numpy(o) - want).max() <= 1e-5, (n, morph)
                assert np.abs(want - want.mean(0)).max() > 1e-4, n            # outputs depend on the face
        # the morph value reaches the face: DFL's own outputs at 1.0 and 0.5 differ, and so do ours
        assert np.abs(ref["out_celeb_face_morph1"] - ref["out_celeb_face_morph0.5"]).max() > 1e-4
    finally:
        model.release()


# ---------------------------------------------------------------- XSeg

XSEG = DATA / "xseg"


def test_xseg_network_is_deepfacelabs_layer_for_layer():
    """Visage's XSeg weights, mapped to DFL's names, are the keys of a model DeepFaceLab trained, in its
    order and with its shapes (dfl_xseg_256_layout.json: the 222 keys of that model's XSeg_256.npy)."""
    from core.nn.xseg_archi import build_xseg
    from mainscripts.dfl_xseg_import import dfl_xseg_key
    layout = json.loads((XSEG / "dfl_xseg_256_layout.json").read_text())
    net = build_xseg(256)
    assert [[dfl_xseg_key(v.path), list(v.shape)] for v in net.weights] == layout
    assert list(load_dfl_file(XSEG / "XSeg_256.npy")) == [k for k, _ in layout]     # the narrow one: same keys


@pytest.mark.parametrize("pretrain", [False, True])
def test_dfl_xseg_weights_predict_as_deepfacelab(pretrain):
    """DeepFaceLab's own nn.XSeg (narrow: base width 4, every FRN / TLU parameter moved off its init; see
    make_xseg_reference.py) on eight real whole faces at 256 px: Visage's network with the converted
    weights gives DFL's masks, and with pretrain DFL's pretraining forward (skips zeroed)."""
    from core.nn.xseg_archi import build_xseg
    from mainscripts.dfl_xseg_import import convert_xseg_weights
    import keras
    net = build_xseg(256, base_ch=4, pretrain=pretrain)
    net.set_weights(convert_xseg_weights(net, load_dfl_file(XSEG / "XSeg_256.npy")))
    faces = np.load(DATA / "faces.npz")["faces_wf256"].astype(np.float32) / 255.0
    got = keras.ops.convert_to_numpy(keras.ops.sigmoid(net(faces, training=False)))
    ref = np.load(XSEG / "reference.npz")["mask_pretrain" if pretrain else "mask"]
    assert got.shape == ref.shape == (8, 256, 256, 1)
    diff = np.abs(got - ref)
    print(f"XSeg pretrain={pretrain}: max {diff.max():.2e}, mean {diff.mean():.2e}")
    # the 1e-3 at the worst pixel (TLU's threshold amplifies float rounding in a few), and on
    # average float round-off, where a misplaced weight would be off by ~0.1
    assert diff.max() <= 1e-3 and diff.mean() <= 1e-5
    assert np.abs(ref - ref.mean(0)).max() > 0.1                # the masks depend on the face


def write_dfl_xseg(folder: Path, seed: int = 0) -> dict:
    """A full-size model in DeepFaceLab's XSeg files: DFL's data.dat (its preview samples dropped), and weights
    and RMSprop state of DFL's layout (names, order, shapes of a DFL-trained model) with made-up values."""
    folder.mkdir(parents=True)
    shutil.copy(XSEG / "XSeg_data.dat", folder)
    rng = np.random.default_rng(seed)
    weights = {}
    for key, shape in json.loads((XSEG / "dfl_xseg_256_layout.json").read_text()):
        kind = key.split("/")[-1]
        if len(shape) > 1:
            v = rng.normal(0, 1 / np.sqrt(np.prod(shape[:-1])), shape)
        elif kind == "eps:0":
            v = np.full(shape, 1e-5)
        else:
            v = float("frn/weight" in key) + 0.1 * rng.normal(size=shape)
        weights[key] = v.astype(np.float32)
    opt = {"iters:0": np.int64(7)}
    opt.update({f"acc_XSeg/{k.replace(':', '_')}:0": (1e-6 * rng.random(v.shape)).astype(np.float32)
                for k, v in weights.items()})
    (folder / "XSeg_256.npy").write_bytes(pickle.dumps(weights, 4))
    (folder / "XSeg_256_opt.npy").write_bytes(pickle.dumps(opt, 4))
    return {"weights": weights, "opt": opt}


def test_dfl_xseg_model_converts_with_its_optimizer_trains_on_and_applies(src_faceset, dst_faceset, tmp_path, capsys):
    from core.facelib.face_meta import read_meta
    from tests.support.xseg_support import label_faces
    model_dir = tmp_path / "dfl"
    dfl = write_dfl_xseg(model_dir)
    assert import_model(model_dir) == 0
    out = capsys.readouterr().out
    assert "XSeg: converted iteration 7, face type wf, resolution 256, pretrain off" in out
    assert "optimizer state converted (XSeg_256_opt.npy, 7 steps)" in out
    saved = json.loads((model_dir / "XSeg_XSeg_data.json").read_text())
    assert saved["iter"] == 7 and len(saved["loss_history"]) == 7
    assert {k: saved["options"][k] for k in ("face_type", "resolution", "batch_size", "pretrain")} == \
        {"face_type": "wf", "resolution": 256, "batch_size": 4, "pretrain": False}
    with np.load(model_dir / "XSeg_XSeg_XSeg.npz") as z:
        assert np.array_equal(z["0000"], dfl["weights"]["conv01/conv/weight:0"])
        assert np.array_equal(z["0004"], dfl["weights"]["conv01/frn/eps:0"])          # DFL's learned epsilon
    with np.load(model_dir / "XSeg_XSeg_optimizer.npz") as z:
        opt = {k: z[k] for k in z.files}
    assert int(next(v for k, v in opt.items() if k.endswith("iteration"))) == 7
    acc = next(v for k, v in opt.items() if k.endswith("conv01_conv_kernel_accumulator"))
    assert np.array_equal(acc, dfl["opt"]["acc_XSeg/conv01/conv/weight_0:0"])

    # trains on (one iteration on labelled faces) from DFL's state, then applies
    tex = [cv2.imread(str(p)) for p in sorted(dst_faceset.glob("*.jpg"))[:2]]
    label_faces(sorted(src_faceset.glob("*.jpg"))[:4], tex, tmp_path / "faces", seed=2)
    assert train_cli(tmp_path / "faces", tmp_path / "faces", model_dir, model="XSeg", name="XSeg",
                     opts=["target_iter=8", "batch_size=2"]) == 0
    after = json.loads((model_dir / "XSeg_XSeg_data.json").read_text())
    assert after["iter"] == 8 and np.isfinite(after["loss_history"][-1]).all()
    with np.load(model_dir / "XSeg_XSeg_XSeg.npz") as z:
        assert not np.array_equal(z["0000"], dfl["weights"]["conv01/conv/weight:0"])    # it learned
    assert run("xseg", "apply", "--input-dir", tmp_path / "faces", "--model-dir", model_dir) == 0
    assert all(read_meta(p).xseg_mask is not None for p in (tmp_path / "faces").glob("*.jpg"))


@pytest.mark.parametrize("target", ["XSeg_data.dat", "XSeg_256.npy", "XSeg_256_opt.npy"])
def test_hostile_pickle_in_a_dfl_xseg_model_is_refused_unexecuted(tmp_path, capsys, target):
    model_dir = tmp_path / "dfl"
    write_dfl_xseg(model_dir)
    marker = tmp_path / MARKER
    (model_dir / target).write_bytes(pickle.dumps({"iter": 1, "x": _Reduce(os.system, (f"touch {marker}",))}, 4))
    before = tree_bytes(model_dir)
    assert import_model(model_dir) == 2
    assert_one_error(capsys.readouterr().err, target, "posix.system", "refused, nothing was executed")
    assert not marker.exists()
    assert tree_bytes(model_dir) == before
