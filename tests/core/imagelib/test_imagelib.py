"""core/imagelib: augmentation warp, colour transfer, masks and HSV jitter, on real faces."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import VisageError
from core.facelib.face_meta import read_face
from core.imagelib.color_transfer import MODES, color_transfer, rct
from core.imagelib.hsv import random_hsv_shift
from core.imagelib.masks import decode_xseg_mask, expand_eyebrows, eyes_mouth_mask, hull_mask
from core.imagelib.warp import WarpParams, gen_warp_params, identity_params, warp_by_params

RES = 96


def _face(folder: Path, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A real aligned face resized to RES as float32 [0, 1], and its landmarks at RES."""
    img, meta = read_face(sorted(folder.glob("*.jpg"))[index])
    scale = RES / img.shape[0]
    img = cv2.resize(img, (RES, RES), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return img, meta.landmarks * scale


@pytest.fixture(scope="module")
def faces(src_faceset, dst_faceset):
    return _face(src_faceset), _face(dst_faceset)


# ---------------------------------------------------------------- warp

def test_warp_params_reproducible_and_in_range():
    a = gen_warp_params(RES, True, np.random.default_rng(7))
    b = gen_warp_params(RES, True, np.random.default_rng(7))
    assert np.array_equal(a.mapx, b.mapx) and np.array_equal(a.affine, b.affine) and a.flip == b.flip
    for seed in range(20):
        p = gen_warp_params(RES, False, np.random.default_rng(seed))
        assert not p.flip
        assert p.mapx.shape == p.mapy.shape == (RES, RES) and p.mapx.dtype == np.float32
        # the grid's border nodes are pinned: the first row/column of the map is the identity
        assert np.allclose(p.mapx[:, 0], 0) and np.allclose(p.mapy[0, :], 0)
        dx = p.mapx - np.arange(RES)[None, :]
        assert 0 < np.abs(dx).max() < RES / 4       # jittered, but gently
        scale = np.sqrt(abs(np.linalg.det(p.affine[:, :2].astype(np.float64))))
        assert 0.85 - 1e-6 <= scale <= 1.15 + 1e-6


def test_flip_odds_are_deepfacelabs_40_percent():
    rng = np.random.default_rng(0)
    flips = sum(gen_warp_params(32, True, rng).flip for _ in range(2000))
    assert 0.36 < flips / 2000 < 0.44


def test_shared_params_give_same_affine_and_flip(faces):
    (img, _), _ = faces
    p = gen_warp_params(RES, True, np.random.default_rng(3))
    target = warp_by_params(p, img, can_warp=False, can_transform=True, can_flip=True)
    again = warp_by_params(p, img, can_warp=False, can_transform=True, can_flip=True)
    warped = warp_by_params(p, img, can_warp=True, can_transform=True, can_flip=True)
    assert np.array_equal(target, again)
    assert not np.array_equal(warped, target)
    # the warp grid is a small local distortion on top of the same pose
    assert np.abs(warped - target).mean() < 0.08
    flipped = WarpParams(p.size, p.mapx, p.mapy, p.affine, not p.flip)
    assert np.array_equal(warp_by_params(flipped, img, False, True, True), target[:, ::-1])


def test_identity_params_change_nothing(faces):
    (img, _), _ = faces
    p = identity_params(RES)
    assert np.abs(warp_by_params(p, img, True, True, True) - img).max() < 1e-4


def test_masks_get_constant_border_images_replicate(faces):
    (img, lm), _ = faces
    shift = np.array([[1, 0, 20], [0, 1, 0]], np.float32)          # move 20 px right
    ident = identity_params(RES)
    p = WarpParams(RES, ident.mapx, ident.mapy, shift, False)
    mask = np.ones((RES, RES, 1), np.float32)
    out_mask = warp_by_params(p, mask, False, True, False, border_replicate=False,
                              interpolation=cv2.INTER_LINEAR)
    out_img = warp_by_params(p, img, False, True, False)
    assert out_mask.shape == (RES, RES, 1)
    assert out_mask[:, :19].max() == 0 and out_mask[:, 21:].min() == 1
    assert np.allclose(out_img[:, :20], img[:, :1], atol=1e-5)       # edge column repeated


# ---------------------------------------------------------------- colour transfer

def _mean_colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.reshape(-1, 3).mean(0) - b.reshape(-1, 3).mean(0)))


def test_rct_matches_lab_statistics(faces):
    (src, src_lm), (ref, ref_lm) = faces
    src_mask, ref_mask = hull_mask(src.shape, src_lm), hull_mask(ref.shape, ref_lm)

    def lab_stats(img, mask):
        px = cv2.cvtColor(img, cv2.COLOR_BGR2LAB)[mask[..., 0] > 0.5]
        return px.mean(0), px.std(0)
    # Inside the faces (no out-of-gamut colours) the match is exact up to rounding.
    out = rct(src, ref, src_mask, ref_mask)
    (m_out, s_out), (m_ref, s_ref) = lab_stats(out, src_mask), lab_stats(ref, ref_mask)
    assert np.allclose(m_out, m_ref, atol=0.5) and np.allclose(s_out, s_ref, rtol=0.03, atol=0.2)
    # Whole images: the bright dst background pushes some colours out of the BGR gamut, and
    # clipping them back moves the statistics a little, so the tolerance is wider.
    everything = np.ones_like(src_mask)
    out = rct(src, ref)
    (m_out, s_out), (m_ref, s_ref) = lab_stats(out, everything), lab_stats(ref, everything)
    m_src, _ = lab_stats(src, everything)
    assert np.abs(m_out - m_ref).max() < 3.5 < np.abs(m_src - m_ref).max()
    assert np.allclose(s_out, s_ref, rtol=0.3)


@pytest.mark.parametrize("mode", ["rct", "lct", "mkl", "idt", "sot"])
def test_every_mode_moves_colours_toward_reference(faces, mode):
    (src, _), (ref, _) = faces
    out = color_transfer(mode, src, ref)
    assert out.shape == src.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    before, after = _mean_colour_distance(src, ref), _mean_colour_distance(out, ref)
    assert after < 0.5 * before, (mode, before, after)
    # ...and keeps the face: the result still correlates with the source's structure
    g_src = cv2.cvtColor(src, cv2.COLOR_BGR2GRAY).ravel()
    g_out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY).ravel()
    assert np.corrcoef(g_src, g_out)[0, 1] > 0.8


def test_masked_modes_use_mask_statistics(faces):
    (src, lm), (ref, _) = faces
    mask = hull_mask(src.shape, lm)
    ref_mask = np.zeros_like(mask)
    ref_mask[:48] = 1.0                                     # statistics from the top half only
    for mode in ("mkl-m", "idt-m", "sot-m"):
        out = color_transfer(mode, src, ref, mask, ref_mask)
        inside = out[mask[..., 0] > 0.5].mean(0)
        assert np.linalg.norm(inside - ref[:48].reshape(-1, 3).mean(0)) < \
            np.linalg.norm(src[mask[..., 0] > 0.5].mean(0) - ref[:48].reshape(-1, 3).mean(0)), mode
        with pytest.raises(VisageError, match="needs a mask"):
            color_transfer(mode, src, ref)


def test_color_transfer_modes_and_errors(faces):
    (src, _), (ref, _) = faces
    assert "rct" in MODES and "sot-m" in MODES
    assert np.array_equal(color_transfer("none", src, ref), src)
    with pytest.raises(VisageError, match="unknown colour transfer mode 'xyz'"):
        color_transfer("xyz", src, ref)
    with pytest.raises(VisageError, match="unknown"):
        color_transfer("rct-m", src, ref, src[..., :1], ref[..., :1])
    # deterministic by default, so the merger does not flicker between frames
    assert np.array_equal(color_transfer("idt", src, ref), color_transfer("idt", src, ref))


# ---------------------------------------------------------------- masks and HSV

def test_hull_mask_covers_face_not_corners(faces):
    (img, lm), _ = faces
    mask = hull_mask(img.shape, lm)
    assert mask.shape == (RES, RES, 1) and mask.dtype == np.float32
    inner = np.round(lm[17:68]).astype(int)                # brows, nose, eyes, mouth
    assert (mask[inner[:, 1], inner[:, 0], 0] > 0.5).all()
    for y, x in ((0, 0), (0, RES - 1), (RES - 1, 0), (RES - 1, RES - 1)):
        assert mask[y, x, 0] == 0
    # raising the eyebrows grows the mask upward only
    bigger = hull_mask(img.shape, lm, eyebrows_expand_mod=2.0)
    assert bigger.sum() > mask.sum() and (bigger >= mask - 1e-6).all()
    up = expand_eyebrows(lm, 1.0)
    assert (up[17:27, 1] < lm[17:27, 1]).all() and np.array_equal(up[:17], lm[:17])


def test_eyes_mouth_mask(faces):
    (img, lm), _ = faces
    em = eyes_mouth_mask(img.shape, lm)
    assert em.shape == (RES, RES, 1) and em.min() >= 0 and em.max() <= 1
    for part in (slice(36, 42), slice(42, 48), slice(48, 60)):
        x, y = np.round(lm[part].mean(0)).astype(int)
        assert em[y, x, 0] > 0.5
    assert em[0, 0, 0] == 0
    x, y = np.round(lm[8]).astype(int)                     # chin
    assert em[min(y, RES - 1), x, 0] < 0.5


def test_decode_xseg_mask_round_trip():
    m = np.zeros((64, 64), np.uint8)
    m[16:48, 8:40] = 255
    png = cv2.imencode(".png", m)[1].tobytes()
    out = decode_xseg_mask(png, 128)
    assert out.shape == (128, 128, 1) and out.dtype == np.float32
    assert out[64, 40, 0] == 1.0 and out[5, 5, 0] == 0.0
    with pytest.raises(VisageError, match="XSeg mask"):
        decode_xseg_mask(b"not a png", 64)


def test_random_hsv_shift(faces):
    (img, _), _ = faces
    assert random_hsv_shift(img, 0.0, np.random.default_rng(0)) is img
    a = random_hsv_shift(img, 0.3, np.random.default_rng(1))
    b = random_hsv_shift(img, 0.3, np.random.default_rng(1))
    assert np.array_equal(a, b) and a.shape == img.shape and a.dtype == np.float32
    assert 0 <= a.min() and a.max() <= 1 and np.abs(a - img).mean() > 0.005
