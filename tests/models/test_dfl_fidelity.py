"""Training-recipe fidelity to DeepFaceLab (issue 15 part 6).

Each test pins one detail of DeepFaceLab's recipe against a NumPy re-derivation of its
formula (written from DFL's documented maths, not its code): the DSSIM window, the
optimizers' update with their epsilon, the batch-summed loss the gradient is taken of,
Quick96's loss mask and the augmentation's scale draw. Faces are real (the sample clips).
"""
from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest

from core.facelib.face_type import FaceType
from core.imagelib.warp import gen_warp_params
from core.nn import losses, optimizers
from samplelib.sample import load_samples
from samplelib.sample_processor import SampleConfig, load_image, process_sample


def real_faces(folder, res: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, masks) of the first n faces of a set, clean crops at `res`, full_face."""
    cfg = SampleConfig(resolution=res, face_type=FaceType.FULL)
    outs = [process_sample(s, load_image(s)[0], cfg, np.random.default_rng(0), augment=False)
            for s in load_samples(folder)[:n]]
    return np.stack([o.target for o in outs]), np.stack([o.mask for o in outs])


# ---------------------------------------------------------------- DSSIM
def dfl_dssim_reference(a: np.ndarray, b: np.ndarray, size: int, sigma: float = 1.5) -> np.ndarray:
    """(1 - SSIM)/2 per sample: a 2-D Gaussian window (softmax of -(dx²+dy²)/2σ²), 'valid'
    positions, c1 = 0.01², c2 = 0.03², averaged over positions and then over channels."""
    d = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    logits = -0.5 * (d[:, None] ** 2 + d[None, :] ** 2) / sigma ** 2
    k = np.exp(logits) / np.exp(logits).sum()
    win = np.lib.stride_tricks.sliding_window_view

    def blur(x):      # (N, H, W, C) -> (N, H-size+1, W-size+1, C)
        return np.einsum("nhwcij,ij->nhwc", win(x.astype(np.float64), (size, size), axis=(1, 2)), k)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ma, mb = blur(a), blur(b)
    lum = (2 * ma * mb + c1) / (ma ** 2 + mb ** 2 + c1)
    cs = (2 * (blur(a * b) - ma * mb) + c2) / (blur(a * a) - ma ** 2 + blur(b * b) - mb ** 2 + c2)
    ssim = (lum * cs).mean(axis=(1, 2))              # per channel, as DFL reduces
    return ((1.0 - ssim) / 2.0).mean(axis=1)         # then the model's mean over channels


@pytest.mark.parametrize("res", [64, 96])
def test_dssim_matches_the_reference_on_real_faces(src_faceset, dst_faceset, res):
    woman, _ = real_faces(src_faceset, res, 2)
    man, _ = real_faces(dst_faceset, res, 2)
    size = int(res / 11.6)                           # SAEHD/Quick96's window: 5 at 64, 8 (even) at 96
    got = np.asarray(keras.ops.convert_to_numpy(losses.dssim(woman, man, size)))
    want = dfl_dssim_reference(woman, man, size)
    assert want.min() > 0.05                         # two different people: far from identical
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6)


# ---------------------------------------------------------------- optimizers
def dfl_reference_steps(name: str, w: np.ndarray, grads: list[np.ndarray], lr: float) -> np.ndarray:
    """DFL's update rules in NumPy: no bias correction, epsilon 1e-6 outside the square root."""
    eps = 1e-6
    a = m = v = np.zeros_like(w)
    for g in grads:
        if name == "rmsprop":
            a = 0.9 * a + 0.1 * g * g
            w = w - lr * g / (np.sqrt(a) + eps)
        else:
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * (g - m) ** 2
            w = w - lr * m / (np.sqrt(v) + eps)
    return w


@pytest.mark.parametrize("name", ["rmsprop", "adabelief"])
def test_optimizer_steps_match_dfl_update_rule(name):
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((64,)).astype(np.float32)
    # gradients of ~1e-4: the size where the epsilon is a noticeable part of the step
    grads = [(rng.standard_normal((64,)) * 1e-4).astype(np.float32) for _ in range(3)]
    var = keras.Variable(w0)
    opt = (optimizers.RMSprop if name == "rmsprop" else optimizers.AdaBelief)(learning_rate=1e-3)
    opt.build([var])
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(g)], [var])
    got = np.asarray(keras.ops.convert_to_numpy(var))
    want = dfl_reference_steps(name, w0.astype(np.float64), [g.astype(np.float64) for g in grads], 1e-3)
    np.testing.assert_allclose(got - w0, want - w0, rtol=1e-3, atol=1e-8)


# ---------------------------------------------------------------- loss reduction
def test_gradient_is_taken_of_the_batch_summed_loss(src_faceset, dst_faceset, tmp_path):
    """DFL differentiates the [batch] loss vector, i.e. its sum, and prints the means."""
    from tests.support.train_support import make_model
    model = make_model(src_faceset, dst_faceset, tmp_path / "m", {**dict(o.split("=") for o in (
        "archi=liae-ud", "resolution=64", "ae_dims=32", "e_dims=16", "d_dims=16", "d_mask_dims=16")),
        "batch_size": 3, "precision": "fp32"})
    try:
        s, sm = real_faces(src_faceset, 64, 3)
        d, dm = real_faces(dst_faceset, 64, 3)
        total, src, dst = (float(keras.ops.convert_to_numpy(x)) for x in model.losses((s, s, sm, sm, d, d, dm, dm)))
    finally:
        model.close()
    assert src > 0.1 and dst > 0.1
    assert total == pytest.approx(3 * (src + dst), rel=1e-5)


# ---------------------------------------------------------------- Quick96's mask and scale
def numpy_gaussian_blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    """DFL's gaussian_blur: kernel max(3, int(4σ)) made odd, normalised, zero padding."""
    size = max(3, int(4 * sigma))
    size += 1 - size % 2
    g = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    p = size // 2
    x = np.pad(mask[..., 0].astype(np.float64), ((0, 0), (p, p), (p, p)))
    x = np.apply_along_axis(lambda r: np.convolve(r, g, "valid"), 1, x)
    x = np.apply_along_axis(lambda r: np.convolve(r, g, "valid"), 2, x)
    return x[..., None]


def test_quick96_weights_its_loss_by_the_plainly_blurred_mask(src_faceset):
    from models.quick96 import Quick96Model
    from models.saehd import SAEHDModel
    faces, masks = real_faces(src_faceset, 96, 2)
    fake = SimpleNamespace(net={"resolution": 96}, train_opts={"masked_training": True})
    got = np.asarray(keras.ops.convert_to_numpy(Quick96Model.masked_target(fake, faces, masks)))
    np.testing.assert_allclose(got, faces * numpy_gaussian_blur(masks, 3), atol=2e-5)
    # inside the face edge the plain blur fades, where SAEHD's clipped-and-doubled mask is still 1
    saehd = np.asarray(keras.ops.convert_to_numpy(SAEHDModel.masked_target(fake, faces, masks)))
    blur = numpy_gaussian_blur(masks, 3)[..., 0]
    edge = (masks[..., 0] > 0.5) & (blur >= 0.5) & (blur < 0.75)
    assert edge.sum() > 50
    np.testing.assert_allclose(saehd[edge], faces[edge], atol=2e-5)
    assert np.all(got[edge] <= 0.75 * faces[edge] + 1e-5)


def draw_scales(scale_range: tuple[float, float], n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(5)
    mats = [gen_warp_params(64, False, rng, scale_range=scale_range).affine for _ in range(n)]
    return np.array([np.sqrt(abs(np.linalg.det(m[:, :2].astype(np.float64)))) for m in mats])


@pytest.mark.parametrize("lo_hi", [(-0.15, 0.15), (-0.05, 0.05)])
def test_scale_is_drawn_in_dfl_range(lo_hi):
    scales = draw_scales(lo_hi)
    low, high = 1.0 / (1.0 - lo_hi[0]), 1.0 + lo_hi[1]
    assert scales.min() >= low - 1e-5 and scales.max() <= high + 1e-5
    assert scales.min() < low + 0.01 * (high - low) and scales.max() > high - 0.01 * (high - low)


def test_quick96_samples_use_dfl_default_scale_jitter():
    from models.quick96 import FIXED, Quick96Model
    model = Quick96Model.__new__(Quick96Model)         # sample_config reads only these two
    model.train_opts, model.net = dict(FIXED), {"resolution": 96, "face_type": "full_face"}
    assert model.sample_config("src").scale_range == (-0.05, 0.05)
    assert model.sample_config("dst").scale_range == (-0.05, 0.05)


# ---------------------------------------------------------------- random warp strength
def node_jitter(n: int = 3000) -> np.ndarray:
    """Displacement of the warp grid's centre node (pixel 32 of 64, a node for every cell size)
    over n draws, in pixels: DFL draws it as 0.24·cell·N(0,1) truncated to ±2.5 and divided by 2.5."""
    rng = np.random.default_rng(11)
    return np.array([[p.mapx[32, 32] - 32.0, p.mapy[32, 32] - 32.0]
                     for p in (gen_warp_params(64, False, rng) for _ in range(n))]).ravel()


def test_warp_grid_jitter_has_dfl_strength():
    d = node_jitter()
    # cells of 32, 16 or 8 px, equally likely: std = 0.24·0.38·sqrt(mean(cell²)) ≈ 1.94 px
    # (a plain normal, as before, gives 5.1 px); the truncation bounds it by 0.24 of the largest cell
    assert np.abs(d).max() <= 0.24 * 32 + 1e-4
    assert 1.75 < d.std() < 2.15


def test_random_warp_distorts_real_faces_as_mildly_as_dfl(src_faceset):
    """Mean |warped − target| over the sample faces: DFL's jitter keeps the distortion local and small."""
    from dataclasses import replace
    cfg = SampleConfig(resolution=64, face_type=FaceType.FULL, random_warp=True, random_flip=False)
    rng = np.random.default_rng(0)
    diffs = []
    for s in load_samples(src_faceset)[:16]:
        img = load_image(s)[0]
        for _ in range(4):
            o = process_sample(s, img, cfg, rng)
            diffs.append(float((np.abs(o.warped - o.target) * o.mask).sum() / (3 * o.mask.sum())))
        plain = process_sample(s, img, replace(cfg, random_warp=False), rng)
        assert np.array_equal(plain.warped, plain.target)
    # measured on these faces: 0.049 with DFL's jitter, 0.097 with the plain-normal jitter of before
    assert 0.035 < np.mean(diffs) < 0.07
