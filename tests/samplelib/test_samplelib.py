"""samplelib: loading, the per-sample pipeline and the multi-process batch generator, on real faces."""
from __future__ import annotations

import multiprocessing as mp
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import VisageError
from core.facelib.face_meta import read_face, update_meta
from core.facelib.face_type import FaceType
from core.facelib.geometry import face_transform, transform_points
from core.fileio import read_image
from samplelib.generator import TrainingBatches
from samplelib.sample import Sample, SamplePicker, load_samples, yaw_bins
from core.facelib.recrop import check_face_type, crop_matrix
from samplelib.sample_processor import SampleConfig, decode_reduction, load_image, process_sample

RES = 64
WF = SampleConfig(RES, FaceType.WHOLE_FACE, random_warp=True, random_flip=True)


def _clean(cfg: SampleConfig) -> SampleConfig:
    """No affine (zero ranges): only the flip and the warp grid remain random."""
    return replace(cfg, rotation_range=(0.0, 0.0), scale_range=(0.0, 0.0), shift_range=(0.0, 0.0))


@pytest.fixture(scope="module")
def src_samples(src_faceset) -> list[Sample]:
    return load_samples(src_faceset)


# ---------------------------------------------------------------- loading

def test_load_samples_reads_metadata(src_faceset, src_samples):
    files = sorted(src_faceset.glob("*.jpg"))
    assert len(src_samples) == len(files) == 12
    s = src_samples[0]
    img, meta = read_face(s.path)
    assert s.face_type == FaceType.WHOLE_FACE and s.image_size == img.shape[0] == 128
    assert np.array_equal(s.landmarks, meta.landmarks) and s.landmarks.shape == (68, 2)
    assert not s.has_xseg and s.eyebrows_expand_mod == meta.eyebrows_expand_mod
    assert all(-1.2 < x.yaw < 1.2 and -1.2 < x.pitch < 1.2 for x in src_samples)


def test_load_samples_errors(tmp_path, src_faceset):
    with pytest.raises(VisageError, match="faceset folder not found"):
        load_samples(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VisageError, match="no aligned faces in .*empty; run extract first"):
        load_samples(tmp_path / "empty")
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(next(src_faceset.glob("*.jpg")), plain / "a.jpg")
    cv2.imwrite(str(plain / "b.jpg"), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(VisageError, match="b.jpg has no Visage face metadata"):
        load_samples(plain)


# ---------------------------------------------------------------- sample processor

def test_unaugmented_target_is_the_resized_aligned_image(src_samples):
    s = src_samples[3]
    img, _ = load_image(s)
    out = process_sample(s, img, WF, np.random.default_rng(0), augment=False)
    expected = cv2.resize(img, (RES, RES), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    assert np.abs(out.target - expected).max() < 1e-6
    assert np.array_equal(out.warped, out.target)
    # the workers decode at reduced size (here 1/2) when the crop needs no more pixels
    assert decode_reduction(s, WF) == 2
    small, _ = load_image(s, 2)
    fast = process_sample(s, small, WF, np.random.default_rng(0), augment=False)
    assert small.shape == (64, 64, 3) and np.abs(fast.target - expected).mean() < 0.01
    assert np.abs(fast.mask - out.mask).max() < 1e-6
    assert decode_reduction(s, replace(WF, face_type=FaceType.FULL)) == 1
    for a, c in zip(out, (3, 3, 1, 1)):
        assert a.shape == (RES, RES, c) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1


def test_warped_equals_target_without_warp_grid(src_samples):
    cfg = replace(WF, random_warp=False)
    s = src_samples[0]
    img, _ = load_image(s)
    for seed in range(4):
        out = process_sample(s, img, cfg, np.random.default_rng(seed))
        assert np.array_equal(out.warped, out.target)
    warped = process_sample(s, img, WF, np.random.default_rng(0))
    assert not np.array_equal(warped.warped, warped.target)
    assert np.abs(warped.warped - warped.target).mean() < 0.1      # same pose, local distortion


def test_flip_moves_image_and_mask_together(src_samples):
    s = src_samples[5]
    img, _ = load_image(s)
    clean = process_sample(s, img, WF, np.random.default_rng(0), augment=False)
    seen = set()
    for seed in range(16):
        out = process_sample(s, img, _clean(WF), np.random.default_rng(seed))
        flipped = np.abs(out.target - clean.target[:, ::-1]).max() < 1e-4
        assert flipped or np.abs(out.target - clean.target).max() < 1e-4
        ref = clean.mask[:, ::-1] if flipped else clean.mask
        assert np.abs(out.mask - ref).max() < 1e-4
        assert np.abs(out.em_mask - (clean.em_mask[:, ::-1] if flipped else clean.em_mask)).max() < 1e-4
        seen.add(flipped)
    assert seen == {True, False}


def test_mask_covers_face_and_em_mask_inside_it(src_samples):
    s = src_samples[2]
    img, _ = load_image(s)
    out = process_sample(s, img, WF, np.random.default_rng(0), augment=False)
    lm = np.round(transform_points(s.landmarks, crop_matrix(s, WF.face_type, RES))).astype(int)
    inner = lm[17:68]
    assert (out.mask[inner[:, 1], inner[:, 0], 0] > 0.5).all()
    assert out.mask[[0, 0, -1, -1], [0, -1, 0, -1], 0].max() == 0
    assert out.em_mask.max() > 0.9
    assert out.em_mask[out.mask <= 0.5].max() == 0


def test_recrop_whole_face_set_to_full_face_model(src_samples, frames):
    s = src_samples[4]
    img, meta = read_face(s.path)
    wf = process_sample(s, img, WF, np.random.default_rng(0), augment=False)
    f = process_sample(s, img, replace(WF, face_type=FaceType.FULL), np.random.default_rng(0), augment=False)
    lm_wf = transform_points(s.landmarks, crop_matrix(s, FaceType.WHOLE_FACE, RES))
    lm_f = transform_points(s.landmarks, crop_matrix(s, FaceType.FULL, RES))
    span = lambda lm: np.ptp(lm, axis=0).max() / RES                     # noqa: E731
    assert span(lm_f) > 1.2 * span(lm_wf)                                # a tighter crop
    assert f.mask.mean() > wf.mask.mean()                                # the face fills more of it
    # the same crop as face_transform computed from the frame's landmarks directly...
    direct = face_transform(s.source_landmarks, FaceType.FULL, RES)
    assert np.abs(transform_points(s.source_landmarks, direct) - lm_f).max() < 1.0
    # ...and the same pixels as cropping the original frame (up to resampling differences)
    frame = read_image(frames("WolfgangLanger_Pexels.mp4", every=40) / meta.source_filename)
    small = cv2.resize(frame, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    m = direct.astype(np.float64) @ np.diag([2.0, 2.0, 1.0])             # crop from the half-size frame
    straight = cv2.warpAffine(small, m, (RES, RES), flags=cv2.INTER_LINEAR).astype(np.float32) / 255
    assert np.abs(straight - f.target).mean() < 0.03


def test_narrower_faceset_is_refused(full_faceset, src_faceset):
    full = load_samples(full_faceset)
    check_face_type(full[0], FaceType.FULL)
    check_face_type(full[0], FaceType.HALF)
    with pytest.raises(VisageError, match="full_face face, but the model needs whole_face"):
        check_face_type(full[0], FaceType.WHOLE_FACE)
    with pytest.raises(VisageError, match="needs head"):
        check_face_type(load_samples(src_faceset)[0], FaceType.HEAD)
    with pytest.raises(VisageError, match="full_face face, but the model needs whole_face"):
        TrainingBatches(full_faceset, src_faceset, WF, WF, batch_size=2, workers=1)
    assert not mp.active_children()


def test_xseg_mask_replaces_the_hull(src_samples, tmp_path):
    s = src_samples[1]
    path = tmp_path / Path(s.path).name
    shutil.copy(s.path, path)
    img, meta = read_face(path)
    m = np.zeros((128, 128), np.uint8)
    m[32:96, 16:80] = 255
    meta.xseg_mask = cv2.imencode(".png", m)[1].tobytes()
    update_meta(path, meta)
    xs = load_samples(tmp_path)[0]
    assert xs.has_xseg
    image, png = load_image(xs)
    out = process_sample(xs, image, WF, np.random.default_rng(0), xseg_png=png, augment=False)
    expected = cv2.resize(m, (RES, RES), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255
    assert np.abs(out.mask - expected).max() < 0.02


def test_ct_moves_src_colours_toward_reference(src_samples, dst_faceset):
    dst = load_samples(dst_faceset)
    s = src_samples[0]
    img, _ = load_image(s)
    ref = process_sample(dst[0], load_image(dst[0])[0], WF, np.random.default_rng(0), augment=False).target
    plain = process_sample(s, img, WF, np.random.default_rng(0), augment=False).target
    ct = process_sample(s, img, replace(WF, ct_mode="rct"), np.random.default_rng(0), ct_ref=ref,
                        augment=False).target
    dist = lambda a: np.linalg.norm(a.reshape(-1, 3).mean(0) - ref.reshape(-1, 3).mean(0))  # noqa: E731
    assert dist(ct) < 0.5 * dist(plain)
    with pytest.raises(VisageError, match="unknown ct_mode"):
        SampleConfig(RES, FaceType.FULL, ct_mode="bogus")


# ---------------------------------------------------------------- sampling

def _synthetic(yaws: list[float]) -> list[Sample]:
    z = np.zeros((68, 2), np.float32)
    return [Sample(f"{i}.jpg", FaceType.FULL, z, 64, z, np.zeros((2, 3), np.float32), yaw=y)
            for i, y in enumerate(yaws)]


def test_uniform_yaw_draws_bins_evenly():
    yaws = [0.0] * 900 + [0.5] * 90 + [-0.8] * 10 + [3.0] * 5          # 3.0 lands in the last bin
    samples = _synthetic(yaws)
    assert [g.size for g in yaw_bins(yaws)] == [10, 900, 90, 5]
    picker = SamplePicker(samples, np.random.default_rng(0), uniform_yaw=True)
    drawn = np.array([yaws[picker.next()] for _ in range(4000)])
    counts = [np.sum(drawn == y) for y in (0.0, 0.5, -0.8, 3.0)]
    assert all(850 < c < 1150 for c in counts), counts


def test_shuffled_epochs_visit_every_sample_once():
    picker = SamplePicker(_synthetic([0.0] * 50), np.random.default_rng(1))
    first, second = [picker.next() for _ in range(50)], [picker.next() for _ in range(50)]
    assert sorted(first) == sorted(second) == list(range(50)) and first != second


# ---------------------------------------------------------------- generator

def test_training_batches(src_faceset, dst_faceset):
    cfg_src = replace(WF, ct_mode="rct", random_hsv_power=0.1)
    cfg_dst = replace(WF, face_type=FaceType.FULL)
    with TrainingBatches(src_faceset, dst_faceset, cfg_src, cfg_dst, batch_size=4, workers=1, seed=3) as tb:
        assert len(tb.processes) == 2 and all(p.is_alive() for p in tb.processes)
        for _ in range(3):
            batch = next(tb)
            for side in (batch.src, batch.dst):
                for name, c in (("warped", 3), ("target", 3), ("mask", 1), ("em_mask", 1)):
                    a = getattr(side, name)
                    assert a.shape == (4, RES, RES, c) and a.dtype == np.float32, name
                    assert 0 <= a.min() and a.max() <= 1 and a.flags.c_contiguous
                assert side.mask.mean() > 0.2 and side.em_mask.max() > 0.5
        # the first batches come while the workers are still starting: the consumer waited
        assert tb.wait_seconds > 0 and tb.batches == 3
        before = batch.src.target.copy()
        again = tb.next(reuse=batch)                # overwrite the old arrays instead of allocating
        assert again.src.target is batch.src.target and not np.array_equal(again.src.target, before)
        p1, p2 = tb.preview_batch(3), tb.preview_batch(3)
        assert p1.src.target.shape == (3, RES, RES, 3)
        assert np.array_equal(p1.src.target, p2.src.target) and np.array_equal(p1.dst.mask, p2.dst.mask)
        assert np.array_equal(p1.src.warped, p1.src.target)
        procs = tb.processes
    assert not any(p.is_alive() for p in procs)
    assert not mp.active_children()
    with pytest.raises(VisageError, match="already closed"):
        tb.next()


def _corrupt_pixels(path: Path) -> None:
    """Make the image undecodable (bad sample precision) while its metadata stays readable."""
    data = bytearray(path.read_bytes())
    pos = 2
    while data[pos + 1] not in (0xC0, 0xC1, 0xC2):                     # walk segments to SOF
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    data[pos + 4] = 13
    path.write_bytes(bytes(data))


def test_worker_error_reaches_the_trainer(src_faceset, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    face = next(src_faceset.glob("*.jpg"))
    shutil.copy(face, bad / face.name)
    _corrupt_pixels(bad / face.name)
    with TrainingBatches(bad, src_faceset, WF, WF, batch_size=2, workers=1, seed=0) as tb:
        with pytest.raises(VisageError, match="cannot be read or decoded"):
            tb.next()
    assert not mp.active_children()


def test_close_with_full_queues_and_options(src_faceset, dst_faceset):
    """Workers blocked on a full queue still stop promptly; uniform_yaw and masks=False run."""
    import time
    cfg = replace(WF, masks=False, random_warp=False)
    tb = TrainingBatches(src_faceset, dst_faceset, cfg, cfg, batch_size=2, workers=1, seed=1,
                         uniform_yaw=True, prefetch=1)
    batch = tb.next()
    assert (batch.src.mask == 1).all() and (batch.dst.em_mask == 1).all()
    assert np.array_equal(batch.src.warped, batch.src.target)
    time.sleep(1.0)                                  # let both workers block on their full queues
    t0 = time.monotonic()
    tb.close()
    assert time.monotonic() - t0 < 5.0
    assert not mp.active_children()
