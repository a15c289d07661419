"""The merge engine on a real frame and its real landmarks, with a model-free stand-in predictor.

The stand-in returns the dst crop shifted +0.2 in blue as the "predicted face" and the dst
landmark hull as both learned masks, so every property is measurable: the swap is
visible, colour transfer should undo the blue shift, and masks have a known footprint.
"""
from __future__ import annotations

import subprocess
from dataclasses import replace
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from core.errors import VisageError
from core.facelib.face_type import FaceType
from core.facelib.geometry import crop_rect_in_frame, face_transform, transform_points
from core.imagelib.masks import hull_mask
from core.merge.config import (COLOR_TRANSFER_MODES, MASK_MODES, MODES, SCHEMA, MergerConfig, adjust, cycle,
                               toggle)
from core.merge.compose import merge_face, merge_frame

RES, FT = 96, FaceType.WHOLE_FACE
BASE = MergerConfig(mode="overlay", mask_mode="dst", color_transfer_mode="none")


@pytest.fixture(scope="module")
def scene():
    """Frame 10 of single_face.mp4 and the man's 68 landmarks."""
    from imageio_ffmpeg import get_ffmpeg_exe

    from core.facelib.face_finder import FaceFinder
    from core.sample_media import sample_path
    cmd = [get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(sample_path("single_face.mp4")),
           "-vf", r"select=eq(n\,10)", "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"]
    png = subprocess.run(cmd, capture_output=True, check=True).stdout
    frame = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    lm = FaceFinder().find(frame)[0].landmarks
    return frame, SimpleNamespace(source_landmarks=lm)


def shifted_predict(face, lm):
    """Stand-in model: the dst crop +0.2 blue; the hull as learned-prd and learned-dst."""
    hull = hull_mask((RES, RES), transform_points(lm, face_transform(lm, FT, RES)))

    def predict(crop):
        out = crop.copy()
        out[..., 0] = np.clip(out[..., 0] + 0.2, 0, 1)
        return out, hull, hull
    return predict


def run(scene, cfg=BASE, motion=None):
    frame, face = scene
    return merge_face(frame, face, shifted_predict(face, face.source_landmarks), RES, FT, cfg, motion)


def changed(a, b):
    return np.any(a != b, axis=-1)


def lab_mean(img, region):
    return cv2.cvtColor(img, cv2.COLOR_BGR2LAB)[region].astype(np.float64).mean(0)


# ------------------------------------------------------------------ modes

def test_original_returns_frame_and_empty_mask(scene):
    out, mask = run(scene, replace(BASE, mode="original", image_denoise_power=200))
    assert np.array_equal(out, scene[0]) and mask.shape == (*scene[0].shape[:2], 1) and not mask.any()


def test_overlay_changes_only_inside_mask(scene):
    out, mask = run(scene, replace(BASE, blur_mask_modifier=40))
    diff = changed(out, scene[0])
    assert diff.sum() > 2000                                    # the face was swapped
    assert not diff[mask[..., 0] == 0].any()                    # nothing outside the (blurred) mask
    assert diff[mask[..., 0] > 0.5].mean() > 0.95


def test_erode_shrinks_and_dilate_grows(scene):
    areas = [changed(run(scene, replace(BASE, erode_mask_modifier=e))[0], scene[0]).sum() for e in (40, 0, -40)]
    assert areas[0] < 0.9 * areas[1] and areas[2] > 1.1 * areas[1]


def test_blur_widens_soft_edge(scene):
    soft = [((m > 0.02) & (m < 0.98)).sum() for m in
            (run(scene, replace(BASE, blur_mask_modifier=b))[1] for b in (0, 60))]
    assert soft[1] > 3 * soft[0]


@pytest.mark.parametrize("mask_mode", MASK_MODES)
def test_mask_modes(scene, mask_mode):
    if "XSeg" in mask_mode:                                     # the stand-in gives no XSeg masks: one clear line
        with pytest.raises(VisageError, match="needs a trained XSeg model"):
            run(scene, replace(BASE, mask_mode=mask_mode))
        return
    _, mask = run(scene, replace(BASE, mask_mode=mask_mode))
    _, hull = run(scene, BASE)
    area, hull_area = (mask > 0.5).sum(), (hull > 0.5).sum()
    if mask_mode == "full":                                     # the whole crop square
        assert area > 1.3 * hull_area
    else:                                                       # the stand-in's learned masks are the hull
        assert abs(area - hull_area) < 0.05 * hull_area


def test_rct_restores_lab_mean(scene):
    frame = scene[0]
    plain, mask = run(scene)
    fixed, _ = run(scene, replace(BASE, color_transfer_mode="rct"))
    region = mask[..., 0] > 0.99
    before = np.linalg.norm(lab_mean(plain, region) - lab_mean(frame, region))
    after = np.linalg.norm(lab_mean(fixed, region) - lab_mean(frame, region))
    assert before > 10 and after < 2.0


@pytest.mark.parametrize("ct", [m for m in COLOR_TRANSFER_MODES if m != "none"])
def test_color_transfer_modes_reduce_distance(scene, ct):
    frame = scene[0]
    plain, mask = run(scene)
    fixed, _ = run(scene, replace(BASE, color_transfer_mode=ct))
    region = mask[..., 0] > 0.99
    dist = lambda img: np.abs(img[region].astype(float) - frame[region]).mean()  # noqa: E731
    assert dist(fixed) < 0.5 * dist(plain)


def test_hist_match_threshold(scene):
    frame = scene[0]
    plain, mask = run(scene)
    region = mask[..., 0] > 0.99
    full, _ = run(scene, replace(BASE, mode="hist-match", hist_match_threshold=255))
    low, _ = run(scene, replace(BASE, mode="hist-match", hist_match_threshold=160))
    unmasked, _ = run(scene, replace(BASE, mode="hist-match", hist_match_threshold=255, masked_hist_match=False))
    dist = lambda img: np.abs(img[region].astype(float) - frame[region]).mean()  # noqa: E731
    assert dist(full) < 0.3 * dist(plain)
    assert lab_mean(low, region)[0] < lab_mean(full, region)[0] - 5     # lower threshold darkens
    assert not np.array_equal(unmasked, full)


@pytest.mark.parametrize("mode", ["seamless", "seamless-hist-match"])
def test_seamless_changes_face_keeps_far_pixels(scene, mode):
    out, mask = run(scene, replace(BASE, mode=mode))
    diff = changed(out, scene[0])
    assert diff[mask[..., 0] > 0.5].mean() > 0.5
    far = cv2.dilate((mask[..., 0] > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    assert far.sum() > 0 and not diff[far].any()


def _square(scene, shrink=3):
    frame, face = scene
    sq = np.zeros(frame.shape[:2], np.uint8)
    corners = crop_rect_in_frame(face_transform(face.source_landmarks, FT, RES), RES)
    cv2.fillConvexPoly(sq, np.round(corners).astype(np.int32), 1)
    return cv2.erode(sq, np.ones((2 * shrink + 1,) * 2, np.uint8)) > 0


def test_raw_rgb_changes_whole_square(scene):
    out, _ = run(scene, replace(BASE, mode="raw-rgb"))
    _, hull = run(scene, BASE)
    sq = _square(scene)
    outside_hull = sq & (hull[..., 0] == 0)
    assert outside_hull.sum() > 500 and changed(out, scene[0])[outside_hull].mean() > 0.95


def test_raw_predict_is_prediction_on_black(scene):
    out, _ = run(scene, replace(BASE, mode="raw-predict"))
    outside = ~cv2.dilate(_square(scene, 0).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert not out[outside].any() and out[_square(scene)].mean() > 30


def test_output_face_scale_changes_footprint(scene):
    areas = [(run(scene, replace(BASE, output_face_scale=s))[1] > 0.5).sum() for s in (30, 0, -30)]
    assert areas[0] < 0.9 * areas[1] < 0.9 * areas[2]          # DeepFaceLab: + scale = smaller footprint


def test_motion_blur(scene):
    still, _ = run(scene, replace(BASE, motion_blur_power=0), motion=(12.0, 3.0))
    blurred, _ = run(scene, replace(BASE, motion_blur_power=100), motion=(12.0, 3.0))
    plain, _ = run(scene)
    assert np.array_equal(still, plain) and not np.array_equal(blurred, plain)
    assert np.array_equal(run(scene, replace(BASE, motion_blur_power=100))[0], plain)   # no motion known


@pytest.mark.parametrize("changes", [{"image_denoise_power": 150}, {"bicubic_degrade_power": 60},
                                     {"color_degrade_power": 100},
                                     {"sharpen_mode": "box", "blursharpen_amount": 50},
                                     {"sharpen_mode": "box", "blursharpen_amount": -50},
                                     {"sharpen_mode": "gaussian", "blursharpen_amount": 50},
                                     {"sharpen_mode": "gaussian", "blursharpen_amount": -50}])
def test_filters_and_degradations_change_output(scene, changes):
    plain, _ = run(scene, replace(BASE, sharpen_mode=changes.get("sharpen_mode", "none")))
    out, _ = run(scene, replace(BASE, **changes))
    assert changed(out, plain).sum() > 500
    if "image_denoise_power" in changes:                      # the whole dst frame is denoised
        assert changed(out, plain)[:40].any()


def test_sharpen_amount_zero_is_a_no_op(scene):
    plain, _ = run(scene)
    assert np.array_equal(run(scene, replace(BASE, sharpen_mode="gaussian"))[0], plain)


def test_two_faces_in_one_frame(scene):
    frame, face = scene
    w = frame.shape[1]
    wide = np.concatenate([frame, frame], axis=1)
    lm = face.source_landmarks
    faces = [SimpleNamespace(source_landmarks=lm), SimpleNamespace(source_landmarks=lm + (w, 0))]
    out, mask = merge_frame(wide, faces, shifted_predict(face, lm), RES, FT, BASE)
    diff = changed(out, wide)
    assert diff[:, :w].sum() > 2000 and diff[:, w:].sum() > 2000
    assert not diff[mask[..., 0] == 0].any()
    same, empty = merge_frame(frame, [], shifted_predict(face, lm), RES, FT, BASE)
    assert np.array_equal(same, frame) and not empty.any()


# ------------------------------------------------------------------ config

def test_config_defaults_match_schema():
    assert list(MergerConfig().to_dict()) == [o.name for o in SCHEMA]
    assert all(getattr(MergerConfig(), o.name) == o.default for o in SCHEMA)
    assert MergerConfig().mode == "overlay" and MergerConfig().color_transfer_mode == "rct"


def test_adjust_clamps_cycle_wraps_toggle():
    cfg = MergerConfig()
    assert adjust(cfg, "erode_mask_modifier", 1000).erode_mask_modifier == 400
    assert adjust(cfg, "erode_mask_modifier", -1000).erode_mask_modifier == -400
    assert adjust(cfg, "blur_mask_modifier", -5).blur_mask_modifier == 0
    assert adjust(cfg, "hist_match_threshold", 50).hist_match_threshold == 255
    assert adjust(cfg, "output_face_scale", 5).output_face_scale == 5 and cfg.output_face_scale == 0
    last = replace(cfg, mode=MODES[-1])
    assert cycle(last, "mode").mode == MODES[0] and cycle(cfg, "sharpen_mode").sharpen_mode == "box"
    assert cycle(replace(cfg, color_transfer_mode="none"), "color_transfer_mode", -1).color_transfer_mode == "mix-m"
    assert toggle(cfg, "masked_hist_match").masked_hist_match is False
    with pytest.raises(VisageError):
        adjust(cfg, "mode", 1)
    with pytest.raises(VisageError):
        cycle(cfg, "erode_mask_modifier")


def test_dict_round_trip_and_resolve_with_dfl_names():
    import json
    cfg = MergerConfig(mode="seamless", mask_mode="learned-dst", erode_mask_modifier=-30,
                       color_transfer_mode="mix-m", masked_hist_match=False)
    assert MergerConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    got = MergerConfig.from_options({"mode": "overlay", "mask_mode": "dst", "color_transfer_mode": "rct",
                                     "erode_mask_modifier": "10"})
    assert (got.mode, got.mask_mode, got.color_transfer_mode, got.erode_mask_modifier) == \
        ("overlay", "dst", "rct", 10)
    for bad in ({"erode_mask_modifier": 401}, {"mode": "nope"}, {"blur_mask_modifier": -1}, {"bogus": 1}):
        with pytest.raises(VisageError):
            MergerConfig.from_options(bad)


def test_engine_does_not_load_tensorflow():
    import sys
    code = "import sys, core.merge.compose; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
