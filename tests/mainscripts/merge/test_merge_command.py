"""`merge` on real frames with a really trained (tiny) model: batch merge, faces, resume, errors.

The model (`model_dir`) and the frames (`dst`) come from this folder's conftest.py, shared with
test_merge_resume.py.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core.facelib.face_meta import read_meta
from core.synthetic_label import is_labelled_png

REPO = Path(__file__).resolve().parents[3]
def merge(frames_dir, aligned, model_dir, out, *opts, extra=()):
    args = ["merge", "--input-dir", str(frames_dir), "--output-dir", str(out), "--output-mask-dir",
            str(out) + "_mask", "--aligned-dir", str(aligned), "--model-dir", str(model_dir), "--model", "SAEHD",
            "--non-interactive", "--workers", "2", *extra]
    for o in opts:
        args += ["--opt", o]
    return main.main(args)


def load(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope="module")
def overlay(dst, model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("merged") / "merged"
    assert merge(*dst, model_dir, out, "mode=overlay", "mask_mode=dst", "color_transfer_mode=rct") == 0
    return out


def test_every_frame_merged_labelled_and_changed_only_inside_its_mask(dst, overlay):
    frames_dir, _ = dst
    inputs = sorted(frames_dir.glob("*.png"))
    assert sorted(p.name for p in overlay.glob("*.png")) == [p.name for p in inputs]
    for src in inputs:
        merged, mask, frame = load(overlay / src.name), load(Path(str(overlay) + "_mask") / src.name), load(src)
        assert is_labelled_png((overlay / src.name).read_bytes())
        assert merged.shape == frame.shape and mask.shape == frame.shape[:2]
        changed = np.any(merged != frame, axis=-1)
        assert changed.sum() > 2000                              # the face really was replaced
        assert not changed[mask == 0].any()                      # nothing outside the mask moved
        ys, xs = np.nonzero(mask)                                # the mask sits on the man's face
        meta = read_meta(next(dst[1].glob(src.stem + "_*.jpg")))
        left, top, right, bottom = meta.source_rect
        assert left - 20 <= np.median(xs) <= right + 20 and top - 20 <= np.median(ys) <= bottom + 20


def test_original_mode_returns_frames_unchanged(dst, model_dir, tmp_path):
    frames_dir, aligned = dst
    out = tmp_path / "merged"
    assert merge(frames_dir, aligned, model_dir, out, "mode=original") == 0
    for src in sorted(frames_dir.glob("*.png"))[:4]:
        assert np.array_equal(load(out / src.name), load(src))
        assert not load(Path(str(out) + "_mask") / src.name).any()


def test_frame_without_face_is_copied_with_empty_mask(dst, model_dir, tmp_path):
    frames_dir, aligned = dst
    partial = tmp_path / "aligned"
    shutil.copytree(aligned, partial)
    dropped = sorted(partial.glob("*.jpg"))[3]
    frame_name = read_meta(dropped).source_filename
    dropped.unlink()
    out = tmp_path / "merged"
    assert merge(frames_dir, partial, model_dir, out, "mode=overlay", "mask_mode=dst") == 0
    assert np.array_equal(load(out / frame_name), load(frames_dir / frame_name))
    assert is_labelled_png((out / frame_name).read_bytes())
    assert not load(Path(str(out) + "_mask") / frame_name).any()
    others = [p for p in sorted(frames_dir.glob("*.png")) if p.name != frame_name]
    assert all(load(Path(str(out) + "_mask") / p.name).any() for p in others)


def test_all_faces_of_a_frame_are_composited(model_dir, tmp_path):
    from core.sample_media import sample_path
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    shutil.copy(sample_path("multi_face.jpg"), frames_dir / "group.jpg")
    aligned = tmp_path / "aligned"
    assert main.main(["extract", "--input-dir", str(frames_dir), "--output-dir", str(aligned), "--face-type",
                      "whole_face", "--image-size", "128", "--max-faces-from-image", "0", "--no-output-debug",
                      "--non-interactive"]) == 0
    n_faces = len(list(aligned.glob("*.jpg")))
    assert n_faces == 5
    out = tmp_path / "merged"
    assert merge(frames_dir, aligned, model_dir, out, "mode=overlay", "mask_mode=dst", extra=["--workers", "1"]) == 0
    mask = (load(Path(str(out) + "_mask") / "group.png") > 127).astype(np.uint8)
    n_blobs = cv2.connectedComponents(mask)[0] - 1
    assert n_blobs == n_faces


def test_settings_from_config_file_and_prompt_defaults(dst, model_dir, tmp_path):
    from core.merge.config import batch_config
    cfg = batch_config({}, ask=False)
    assert (cfg.mode, cfg.mask_mode, cfg.hist_match_threshold) == ("overlay", "dst", 255)   # DFL's prompt defaults
    config = tmp_path / "merge.json"
    config.write_text(json.dumps({"mode": "seamless", "erode_mask_modifier": 30, "color_transfer_mode": "lct"}))
    cfg = batch_config(json.loads(config.read_text()), ask=False)
    assert (cfg.mode, cfg.erode_mask_modifier, cfg.color_transfer_mode) == ("seamless", 30, "lct")
    out = tmp_path / "merged"
    assert merge(*dst, model_dir, out, extra=["--config", str(config)]) == 0
    from core.merge.resume import MergeLog, settings_key
    log = MergeLog(out, Path(str(out) + "_mask"), settings_key("m_SAEHD", 2, cfg.to_dict()))
    assert all(log.merged(p.stem) for p in dst[0].glob("*.png"))        # merged with exactly these settings


@pytest.mark.parametrize("bad, message", [
    ("model", "no trained SAEHD model"),
    ("aligned", "aligned folder not found"),
    ("mismatch", "do not match"),
    ("option", "unknown option"),
    ("range", "out of range"),
])
def test_bad_input_gives_one_clear_line(bad, message, dst, model_dir, tmp_path, capsys):
    frames_dir, aligned = dst
    if bad == "model":
        model_dir = tmp_path / "empty_model"
        model_dir.mkdir()
    elif bad == "aligned":
        aligned = tmp_path / "nothing_here"
    elif bad == "mismatch":                                # re-extracted frames: not one name matches a face
        renamed = tmp_path / "renumbered"
        renamed.mkdir()
        for p in frames_dir.glob("*.png"):
            os.link(p, renamed / f"{int(p.stem) + 1000:05d}.png")
        frames_dir = renamed
    opts = {"option": ["no_such_option=1"], "range": ["erode_mask_modifier=999"]}.get(bad, [])
    assert merge(frames_dir, aligned, model_dir, tmp_path / "merged", *opts) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not list((tmp_path / "merged").glob("*.png")) if (tmp_path / "merged").exists() else True


def test_part_of_the_clip_merges_with_the_whole_aligned_folder(dst, model_dir, tmp_path, capsys):
    frames_dir, aligned = dst
    part = tmp_path / "first_frames"
    part.mkdir()
    names = sorted(p.name for p in frames_dir.glob("*.png"))[:4]
    for n in names:
        os.link(frames_dir / n, part / n)
    out = tmp_path / "merged"
    assert merge(part, aligned, model_dir, out, "mode=overlay") == 0
    assert sorted(p.name for p in out.glob("*.png")) == names
    ignored = len(list(aligned.glob("*.jpg"))) - len(names)
    assert f"Ignoring {ignored} face(s) in {aligned}" in capsys.readouterr().out
    for n in names:                                        # the faces of the given frames were swapped
        assert np.any(load(out / n) != load(part / n))


def test_interrupted_batch_merge_resumes_without_redoing_frames(frames, dst_faceset, model_dir, tmp_path):
    """A real SIGINT mid-merge (subprocess), then a second run: finished frames are not rewritten."""
    frames_dir = frames("single_face.mp4", every=6)
    out = tmp_path / "merged"
    cmd = [sys.executable, str(REPO / "main.py"), "merge", "--input-dir", str(frames_dir), "--output-dir", str(out),
           "--aligned-dir", str(dst_faceset), "--model-dir", str(model_dir), "--model", "SAEHD", "--non-interactive",
           "--workers", "1", "--opt", "mode=seamless", "--opt", "color_transfer_mode=sot-m"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    def finished():
        return [p for p in out.glob("*.png") if not p.name.startswith(".tmp_")]
    while time.monotonic() < deadline and len(finished()) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    done = {p.name: p.stat().st_mtime_ns for p in finished()}
    total = len(list(frames_dir.glob("*.png")))
    assert 2 <= len(done) < total                               # stopped part-way
    assert not list(out.glob(".tmp_*"))                         # nothing half-written
    for name in done:
        assert load(out / name) is not None
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert len(after) == total
    redone = [name for name, mtime in done.items() if after[name] != mtime]
    assert len(redone) <= 1         # finished frames were not redone; the Ctrl-C may land between a frame's
                                    # write and its record in the merge log: that one frame is merged again


def test_changed_settings_merge_every_frame_again(dst, model_dir, tmp_path):
    out = tmp_path / "merged"
    assert merge(*dst, model_dir, out, "mode=overlay", "mask_mode=dst") == 0
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert merge(*dst, model_dir, out, "mode=overlay", "mask_mode=dst") == 0     # same: nothing to do
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == first
    assert merge(*dst, model_dir, out, "mode=overlay", "mask_mode=dst", "erode_mask_modifier=20") == 0
    assert all(p.stat().st_mtime_ns != first[p.name] for p in out.glob("*.png"))


def test_motion_only_with_one_face_per_frame(dst, tmp_path):
    from core.merge.frames import load_frames
    frames_dir, aligned = dst
    plan = load_frames(frames_dir, aligned)
    assert all(len(f.faces) == 1 for f in plan)
    assert all(f.motions[0] is not None for f in plan)
    moving = max(np.hypot(*f.motions[0]) for f in plan)
    assert moving > 0.5                                          # the man moves between sampled frames
    doubled = tmp_path / "aligned"
    shutil.copytree(aligned, doubled)
    first = sorted(doubled.glob("*.jpg"))[0]
    shutil.copy(first, first.with_name(first.stem[:-1] + "9.jpg"))      # a second face in one frame
    assert all(m is None for f in load_frames(frames_dir, doubled) for m in f.motions)


def test_predictor_rebuilds_the_saved_model(model_dir):
    from core.facelib.face_type import FaceType
    from models.predictor import FacePredictor
    p = FacePredictor(model_dir, "SAEHD", "m")
    assert (p.resolution, p.face_type, p.iteration) == (64, FaceType.FULL, 2)
    crops = np.random.default_rng(0).random((3, 64, 64, 3), dtype=np.float32)
    out = p.predict_batch(list(crops))
    assert len(out) == 3 and out[0][0].shape == (64, 64, 3) and out[0][1].shape == (64, 64, 1)
    assert all(0.0 <= a.min() and a.max() <= 1.0 for a in out[0])
    single = p(crops[0])
    assert np.allclose(single[0], out[0][0], atol=0.02)
    with pytest.raises(Exception, match="no SAEHD model named"):
        FacePredictor(model_dir, "SAEHD", "other")


def test_interactive_merger_window_saves_and_restores_the_session(display, dst, model_dir, tmp_path, monkeypatch,
                                                                  capsys):
    """`merge --interactive` under Xvfb: DeepFaceLab's keys, Esc saves; a second run restores the session."""
    from core.merge.config import MergerConfig
    frames_dir, aligned = dst
    out = tmp_path / "merged"
    args = ["merge", "--input-dir", str(frames_dir), "--output-dir", str(out), "--aligned-dir", str(aligned),
            "--model-dir", str(model_dir), "--model", "SAEHD", "--interactive"]
    session = model_dir / "m_SAEHD_merger_session.json"
    session.unlink(missing_ok=True)
    keys = iter([ord(k) for k in "xW//"])
    monkeypatch.setattr(cv2, "waitKey", lambda delay=0: next(keys, 27))      # then Esc
    try:
        assert main.main(args) == 0
        saved = json.loads(session.read_text())
        tuned = {**MergerConfig().to_dict(), "mask_mode": "learned-prd+learned-dst", "erode_mask_modifier": 5}
        assert saved["index"] == 2 and saved["model_iter"] == 2
        assert saved["configs"][:3] == [tuned] * 3 and saved["configs"][3] == MergerConfig().to_dict()
        names = sorted(p.name for p in frames_dir.glob("*.png"))
        assert sorted(p.name for p in out.glob("*.png")) == names[:3]          # finished frames only
        assert all(is_labelled_png((out / n).read_bytes()) for n in names[:3])
        assert "Merger session restored" not in capsys.readouterr().out

        monkeypatch.setattr(cv2, "waitKey", lambda delay=0: 27)
        assert main.main(args) == 0
        assert "Merger session restored at frame 3 of" in capsys.readouterr().out
        assert json.loads(session.read_text())["configs"] == saved["configs"]
    finally:
        session.unlink(missing_ok=True)


def test_packed_aligned_faces_and_debug_images_merge_the_same(dst, model_dir, overlay, tmp_path):
    """dst faces packed into faceset.pak, with util's debug images beside it: the same merge."""
    frames_dir, aligned = dst
    packed = tmp_path / "aligned"
    shutil.copytree(aligned, packed)
    assert main.main(["util", "--input-dir", str(packed), "--add-landmarks-debug-images", "--non-interactive"]) == 0
    assert list(packed.glob("*_debug.jpg"))
    assert main.main(["util", "--input-dir", str(packed), "--pack-faceset", "--delete-originals",
                      "--non-interactive"]) == 0
    assert (packed / "faceset.pak").is_file() and not [p for p in packed.glob("*.jpg") if "_debug" not in p.name]
    out = tmp_path / "merged"
    assert merge(frames_dir, packed, model_dir, out, "mode=overlay", "mask_mode=dst", "color_transfer_mode=rct") == 0
    for p in sorted(overlay.glob("*.png")):
        assert np.array_equal(load(out / p.name), load(p))
