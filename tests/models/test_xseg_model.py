"""XSeg model: the network's shapes, and that training on occluder labels teaches it to exclude them."""
from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest

from core.facelib.face_meta import read_meta
from core.imagelib.masks import decode_xseg_mask
from main import main
from tests.support.xseg_support import label_faces


def test_network_shapes_and_resolution_rule():
    from core.nn.xseg_archi import build_xseg
    net = build_xseg(64)
    out = np.asarray(net(np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)))
    assert out.shape == (2, 64, 64, 1) and np.isfinite(out).all()
    names = {w.path for w in net.weights}
    assert any("dense1" in n for n in names) and any("frn" in n and "tau" in n for n in names)
    with pytest.raises(ValueError, match="multiple of 64"):
        build_xseg(96)


def test_fused_kernels_compute_the_keras_ops_network(src_faceset, monkeypatch):
    """The TensorFlow fast path (fused FRN + TLU, BlurPool's gradient) gives the keras.ops network's logits and
    gradients on real faces, with the same weights.

    The two differ by float rounding, which the ~30 layers and TLU's threshold (an element next to it may
    fall either side) amplify: in fp32 by about as much as changing the input by 1e-6 does; a wrong
    gradient term would be off by the gradient's own size. In bf16 both are compared with the fp32
    gradients: the fast path must be no farther from them than the keras.ops path in bf16 is.
    """
    import keras
    import tensorflow as tf
    from core.facelib.face_meta import read_face
    from core.nn import xseg_archi
    from core.nn.backend import set_precision
    from models.xseg import mask_logits_loss
    faces = np.stack([cv2.resize(read_face(p)[0], (64, 64)) for p in sorted(src_faceset.glob("*.jpg"))[:2]])
    x = tf.constant(faces.astype(np.float32) / 255.0)
    masks = tf.constant((x.numpy().mean(-1, keepdims=True) > 0.4).astype(np.float32))
    paths: list[str] = []

    def run(precision: str, fused: bool):
        set_precision(precision)
        monkeypatch.setattr(xseg_archi, "FUSED_TF", fused)
        keras.utils.set_random_seed(3)
        net = xseg_archi.build_xseg(64)
        for v in net.trainable_variables:           # FRN's scale, shift, epsilon and threshold away from their init
            if "frn" in v.path:
                v.assign(v + np.random.default_rng(len(v.path)).normal(0, 0.3, v.shape).astype(np.float32))
        with tf.GradientTape() as tape:
            logits = tf.cast(net(x, training=True), tf.float32)
            loss = tf.reduce_mean(mask_logits_loss(masks, logits))
        paths[:] = [v.path for v in net.trainable_variables]
        return logits.numpy(), [g.numpy() for g in tape.gradient(loss, net.trainable_variables)]

    def worst(grads, ref):
        """The largest relative error of one variable's gradient; FRN's learned epsilons (one scalar per
        layer, a sum over the whole activation with much cancellation) count together as one vector."""
        assert len(grads) == len(ref) > 50 and all(np.abs(g).max() > 0 for g in ref)
        eps = [i for i, v in enumerate(paths) if v.endswith("/eps")]
        assert len(eps) == 36                       # one per FRN (conv and up-conv block), as DFL's
        pairs = [(a, b) for i, (a, b) in enumerate(zip(grads, ref)) if i not in eps]
        pairs.append((np.concatenate([grads[i] for i in eps]), np.concatenate([ref[i] for i in eps])))
        return max(np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in pairs)

    try:
        runs = {(p, f): run(p, f) for p in ("fp32", "bf16") for f in (True, False)}
    finally:
        set_precision("fp32")
    logits, grads = runs[("fp32", False)]
    assert np.abs(logits).max() > 0.1
    assert np.abs(runs[("fp32", True)][0] - logits).max() < 1e-4 * np.abs(logits).max()
    assert worst(runs[("fp32", True)][1], grads) < 0.05
    fused_bf16, ops_bf16 = worst(runs[("bf16", True)][1], grads), worst(runs[("bf16", False)][1], grads)
    assert fused_bf16 < 1.25 * ops_bf16, (fused_bf16, ops_bf16)


def test_sampler_keeps_labels_aligned_with_pixels(src_faceset, dst_faceset, tmp_path):
    """Augmented pairs: the mask is binary, and where the label says occluder the pixels are the occluder's."""
    from core.facelib.face_type import FaceType
    from samplelib.xseg_sampler import XSegBatches
    tex = [cv2.imread(str(p)) for p in sorted(dst_faceset.glob("*.jpg"))[:2]]
    label_faces(sorted(src_faceset.glob("*.jpg"))[:3], tex, tmp_path / "l", seed=3)
    batches = XSegBatches([tmp_path / "l"], FaceType.WHOLE_FACE, 64, 4, seed=1)
    try:
        b = next(batches)
        assert b.images.shape == (4, 64, 64, 3) and b.masks.shape == (4, 64, 64, 1)
        assert set(np.unique(b.masks)) <= {0.0, 1.0} and 0.1 < b.masks.mean() < 0.9
        prev = batches.preview_batch(8)
        assert len(prev.src.target) == 3 and batches.wait_seconds >= 0
    finally:
        batches.close()


def test_xseg_learns_the_labelled_occluders(src_faceset, dst_faceset, tmp_path, capsys):
    """Train (real trainer, 200 iterations at 64 px) on faces whose occluders are excluded, then apply.

    A model that ignored the exclude polygons would keep the occluders (they lie inside the
    face); one that ignored the labels altogether would not match the face outline.
    """
    tex = [cv2.imread(str(p)) for p in sorted(dst_faceset.glob("*.jpg"))[:4]]
    labelled = label_faces(sorted(src_faceset.glob("*.jpg")), tex, tmp_path / "faces", seed=5)
    model = tmp_path / "model"
    assert main(["train", "--model", "XSeg", "--training-data-src-dir", str(tmp_path / "faces"),
                 "--training-data-dst-dir", str(tmp_path / "faces"), "--model-dir", str(model),
                 "--force-model-name", "x", "--no-preview", "--silent-start", "--opt", "resolution=64",
                 "--opt", "target_iter=200"]) == 0
    first = re.search(r"\[#000001\]\[(?:\d+ms|\d+\.\d+s)\](.*)", capsys.readouterr().out).group(1)
    assert re.match(r"\[\d+\.\d{4}\](?!\[\d)", first), first          # its one loss, once (not as src and dst)
    data = json.loads((model / "x_XSeg_data.json").read_text())
    assert data["iter"] == 200 and data["options"]["face_type"] == "wf"
    assert (model / "x_XSeg_preview.jpg").is_file() and (model / "x_XSeg_loss.png").is_file()
    assert np.mean([h[0] for h in data["loss_history"][-20:]]) < 0.6 * np.mean([h[0] for h in data["loss_history"][:5]])

    assert main(["xseg", "apply", "--input-dir", str(tmp_path / "faces"), "--model-dir", str(model),
                 "--force-model-name", "x"]) == 0
    ious, excluded = [], []
    for path, truth, occ in labelled:
        pred = decode_xseg_mask(read_meta(path).xseg_mask, truth.shape[0])[..., 0] > 0.5
        t, o = truth > 0.5, occ > 0.5
        ious.append((pred & t).sum() / (pred | t).sum())
        excluded.append((~pred & o).sum() / o.sum())
    assert np.mean(ious) > 0.7, ious
    assert np.mean(excluded) > 0.5, excluded


def test_pretrain_trains_on_the_pretraining_faces_with_the_reconstruction_loss(src_faceset, tmp_path):
    """pretrain on: the batches are pretraining faces (no polygons anywhere) and their greyscale, and the
    step's loss is DFL's DSSIM + MSE of the skip-less network's output against it (not the mask loss)."""
    import keras
    from core.nn.xseg_archi import build_xseg
    from models.xseg import XSegModel, mask_logits_loss, pretrain_loss
    from samplelib.xseg_pretrain_sampler import grey
    model = XSegModel(tmp_path / "m", src_faceset, src_faceset, "x", {"pretrain": True, "resolution": 64,
                      "batch_size": 3}, silent_start=True, workers=1, pretraining_dir=src_faceset)
    try:
        batch = next(model.batches)
        images, targets = model.step_inputs(batch)
        assert images.shape == (3, 64, 64, 3) and targets.shape == (3, 64, 64, 1)
        assert np.allclose(targets, grey(images), atol=1e-6) and targets.std() > 0.05
        loss = float(keras.ops.convert_to_numpy(model.losses((images, targets))[0]))
        plain = build_xseg(64)                             # the same weights, skips kept
        plain.set_weights(model.parts["XSeg"].get_weights())
        skipless = build_xseg(64, pretrain=True)
        skipless.set_weights(model.parts["XSeg"].get_weights())
        want = np.mean(keras.ops.convert_to_numpy(
            pretrain_loss(targets, keras.ops.sigmoid(skipless(images, training=True)), 64)))
        assert loss == pytest.approx(float(want), rel=1e-5)
        with_skips = np.mean(keras.ops.convert_to_numpy(
            pretrain_loss(targets, keras.ops.sigmoid(plain(images, training=True)), 64)))
        assert abs(loss - with_skips) > 1e-4 * loss            # the skips really are cut
        ce = np.mean(keras.ops.convert_to_numpy(mask_logits_loss(targets, skipless(images, training=True))))
        assert abs(loss - ce) > 0.01
    finally:
        model.batches.close()
        model.lock.release()


def test_pretrain_needs_no_labels_and_switching_it_off_restarts_at_iteration_0(src_faceset, dst_faceset, tmp_path,
                                                                                capsys):
    """`train --opt pretrain=y --pretraining-data-dir` on faces without polygons (which the mask training
    refuses), then pretrain off on labelled faces: iteration and history restart at 0, the weights go on."""
    from tests.support.train_support import train_cli
    model = tmp_path / "model"
    opts = ["resolution=64", "batch_size=2"]
    assert train_cli(src_faceset, dst_faceset, model, model="XSeg", name="x", opts=opts + ["target_iter=2"]) == 2
    assert "no faces with XSeg polygons" in capsys.readouterr().err
    assert train_cli(src_faceset, dst_faceset, model, model="XSeg", name="x",
                     opts=opts + ["pretrain=y", "target_iter=3"], extra=["--pretraining-data-dir", str(src_faceset)]) == 0
    data = json.loads((model / "x_XSeg_data.json").read_text())
    assert data["iter"] == 3 and data["options"]["pretrain"] is True and len(data["loss_history"]) == 3
    with np.load(model / "x_XSeg_XSeg.npz") as z:
        pretrained = {k: z[k] for k in z.files if k != "__iter__"}

    tex = [cv2.imread(str(p)) for p in sorted(dst_faceset.glob("*.jpg"))[:2]]
    label_faces(sorted(src_faceset.glob("*.jpg"))[:4], tex, tmp_path / "faces", seed=4)
    capsys.readouterr()
    assert train_cli(tmp_path / "faces", tmp_path / "faces", model, model="XSeg", name="x",
                     opts=["pretrain=n", "target_iter=1"]) == 0
    assert "Pretraining is off: iteration reset to 0" in capsys.readouterr().out
    data = json.loads((model / "x_XSeg_data.json").read_text())
    assert data["iter"] == 1 and len(data["loss_history"]) == 1 and data["options"]["pretrain"] is False
    with np.load(model / "x_XSeg_XSeg.npz") as z:
        moved = max(np.abs(z[k] - v).max() for k, v in pretrained.items())
    assert 0 < moved < 0.01             # one RMSprop step (lr 1e-4) on; fresh weights would be ~0.1 away


def test_a_save_from_before_frns_learned_epsilon_still_loads(src_faceset, dst_faceset, tmp_path):
    """XSeg saves made before FRN gained DFL's learned epsilon (three weights per FRN) load with each epsilon
    at 1e-6, which is what those models computed with: the same masks, and training resumes."""
    from models.model_files import ModelFiles
    from models.xseg import PART, XSegModel, XSegPredictor
    tex = [cv2.imread(str(p)) for p in sorted(dst_faceset.glob("*.jpg"))[:2]]
    label_faces(sorted(src_faceset.glob("*.jpg"))[:3], tex, tmp_path / "faces", seed=6)
    faces = np.stack([cv2.imread(str(p)) for p in sorted((tmp_path / "faces").glob("*.jpg"))]).astype(np.float32)
    model = XSegModel(tmp_path / "m", tmp_path / "faces", tmp_path / "faces", "x", {"resolution": 64, "precision": "fp32"},
                      silent_start=True, workers=1)
    try:
        model.save()
        eps = [i for i, v in enumerate(model.parts[PART].weights) if v.path.endswith("/eps")]
    finally:
        model.batches.close()
        model.lock.release()
    pred = XSegPredictor(tmp_path / "m")
    want = pred.masks(cv2.resize(faces[0], (64, 64))[None] / 255.0)
    pred.close()

    files = ModelFiles(tmp_path / "m", "x", "XSeg")
    files.generation = files.load_generation()
    arrays = files.load_arrays(PART)
    kept = [arrays[k] for i, k in enumerate(sorted(arrays)) if i not in eps]
    state = {k: v for k, v in files.load_arrays("optimizer").items() if "_eps_" not in k}
    assert len(eps) == 36 and len(state) < len(files.load_arrays("optimizer"))
    files.save({PART: {f"{i:04d}": a for i, a in enumerate(kept)}, "optimizer": state}, files.generation.data)

    pred = XSegPredictor(tmp_path / "m")
    assert np.array_equal(pred.masks(cv2.resize(faces[0], (64, 64))[None] / 255.0), want)
    pred.close()
    model = XSegModel(tmp_path / "m", tmp_path / "faces", tmp_path / "faces", "x", {}, silent_start=True, workers=1)
    try:
        assert model.train_iteration() and model.iter == 1
    finally:
        model.batches.close()
        model.lock.release()


@pytest.mark.parametrize("given, expected", [({}, True), ({"paste_occluders": "n"}, False)])
def test_paste_occluders_option_reaches_the_sampler_and_is_saved(src_faceset, dst_faceset, tmp_path, given, expected):
    from models.xseg import XSegModel
    tex = [cv2.imread(str(p)) for p in sorted(dst_faceset.glob("*.jpg"))[:2]]
    label_faces(sorted(src_faceset.glob("*.jpg"))[:3], tex, tmp_path / "l", seed=3)
    model = XSegModel(tmp_path / "m", tmp_path / "l", tmp_path / "l", "x", {"resolution": "64", **given},
                      silent_start=True)
    try:
        assert model.options["paste_occluders"] is expected
        assert len(model.batches.donors) == (3 if expected else 0)
        model.save()
    finally:
        model.close()
    assert json.loads((tmp_path / "m" / "x_XSeg_data.json").read_text())["options"]["paste_occluders"] is expected
