"""`evaluate` on constructed merges of the real sample faces, where the right answer is known.

The dst is the man (the first 12 frames of single_face.mp4), the src the woman (12 faces of
WolfgangLanger_Pexels.mp4, the session's src_faceset). A "merge" is built by hand: the dst frames themselves
(nothing swapped), or src aligned faces pasted into the dst frames through the inverse of
the dst face's frame->face matrix, with a feathered or hard-edged mask, sharp or blurred,
still or shaking by one pixel from frame to frame.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core.errors import VisageError
from core.evaluate.reconstruction import psnr, ssim_map
from core.facelib.face_meta import read_face
from core.facelib.geometry import invert_affine
from core.fileio import write_image
from core.imagelib.masks import hull_mask
from mainscripts.evaluate import evaluate


def _faces(folder: Path) -> list[tuple[np.ndarray, object]]:
    return [read_face(p) for p in sorted(folder.glob("*.jpg"))]


def paste_merge(frames_dir: Path, dst_aligned: Path, src_aligned: Path, out: Path, *, feather: bool = True,
                blur: float = 0.0, shake: bool = False, one_src: bool = False) -> Path:
    """Merged frames (out/) and masks (out_mask/): a src face pasted over each dst face.

    The src aligned face is put where the dst aligned face came from (inverse of the dst's
    frame->face matrix, scaled to the src face's size), inside the src face's landmark hull,
    feathered (Gaussian, sigma 4 px of the aligned face) or hard-edged. `shake` moves the
    paste 1 px right on every other frame; `one_src` pastes the same src face everywhere.
    """
    srcs = _faces(src_aligned)
    masks = out.with_name(out.name + "_mask")
    out.mkdir(parents=True)
    masks.mkdir()
    for i, (dst_face, meta) in enumerate(_faces(dst_aligned)):
        frame = cv2.imread(str(frames_dir / meta.source_filename))
        src_img, src_meta = srcs[0 if one_src else i % len(srcs)]
        size = src_img.shape[0]
        to_face = np.asarray(meta.image_to_face_mat, np.float64) * (size / dst_face.shape[0])
        back = invert_affine(to_face)
        back[0, 2] += 1.0 if shake and i % 2 else 0.0
        face = cv2.GaussianBlur(src_img, (0, 0), blur) if blur else src_img
        hull = hull_mask((size, size), src_meta.landmarks, src_meta.eyebrows_expand_mod)[..., 0]
        hull = cv2.erode(hull, np.ones((5, 5), np.uint8))
        mask = cv2.GaussianBlur(hull, (0, 0), 4.0) if feather else (hull > 0.5).astype(np.float32)
        h, w = frame.shape[:2]
        face_f = cv2.warpAffine(face, back, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mask_f = cv2.warpAffine(mask, back, (w, h), flags=cv2.INTER_LINEAR if feather else cv2.INTER_NEAREST)[..., None]
        merged = mask_f * face_f.astype(np.float32) + (1 - mask_f) * frame.astype(np.float32)
        name = Path(meta.source_filename).stem + ".png"
        write_image(out / name, np.clip(merged + 0.5, 0, 255).astype(np.uint8))
        write_image(masks / name, np.clip(mask_f[..., 0] * 255 + 0.5, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def dst(frames, tmp_path_factory):
    """(frames folder, aligned folder) of the man: the first 12 frames of single_face.mp4, in a row
    (jitter and flicker are about neighbouring frames), one whole_face 128 px face each."""
    from core.facelib.face_type import FaceType
    from mainscripts.extract.extractor import extract
    frames_dir = frames("single_face.mp4", count=12)
    aligned = tmp_path_factory.mktemp("evaluate_dst") / "aligned"
    assert extract(frames_dir, aligned, face_type=FaceType.WHOLE_FACE, image_size=128, workers=1).faces == 12
    return frames_dir, aligned


@pytest.fixture(scope="module")
def build(dst, src_faceset, tmp_path_factory):
    """build(name, **paste options) -> the evaluation of that constructed merge (made once per name)."""
    done: dict[str, object] = {}

    def get(name: str, **opts):
        if name not in done:
            frames_dir, aligned = dst
            merged = tmp_path_factory.mktemp(name) / "merged"
            if name == "identity":
                shutil.copytree(frames_dir, merged)
            else:
                paste_merge(frames_dir, aligned, src_faceset, merged, **opts)
            done[name] = evaluate(merged, frames_dir, src_faceset, dst_aligned_dir=aligned)
        return done[name]
    return get


def test_dst_frames_as_merged_score_as_no_swap(build):
    result = build("identity")
    s = result.summary
    assert s["frames"] == s["faces"] == 12
    assert s["identity"]["swap_rate"] == 0.0
    assert s["identity"]["mean_distance_to_src"] > s["identity"]["mean_distance_to_dst"] + 0.2
    assert s["fidelity"]["refound_share"] == 1.0
    assert s["fidelity"]["landmark_error"] < 1e-6                      # found the same way on the same pixels
    assert s["fidelity"]["yaw_difference_deg"] < 1e-6
    assert s["stability"]["pairs"] == 11 and s["stability"]["flicker_ratio"] == pytest.approx(1.0, abs=1e-9)
    assert s["stability"]["jitter_ratio"] == pytest.approx(1.0, abs=1e-9) and s["stability"]["wobble"] < 1e-9
    assert s["sharpness"]["ratio"] == pytest.approx(1.0) and s["seam"]["ratio"] == pytest.approx(1.0)
    assert any("landmark hulls stand in" in n for n in s["notes"])     # no merged_mask folder given
    written = json.loads(result.json_path.read_text())
    assert written["identity"]["swap_rate"] == 0.0 and len(written["per_face"]) == 12
    assert written["stability"]["flicker_ratio"] == pytest.approx(1.0)
    page = cv2.imread(str(result.png_path))
    assert page is not None and page.shape[1] == 1200 and page.shape[0] > 600


def test_src_faces_pasted_into_the_dst_frames_score_as_swapped(build):
    s = build("paste", feather=True).summary
    assert s["identity"]["swap_rate"] >= 0.9
    assert s["identity"]["mean_distance_to_src"] < s["identity"]["mean_distance_to_dst"]
    assert s["fidelity"]["refound_share"] == 1.0
    assert s["fidelity"]["landmark_error"] > 0.01          # the woman's features, not the man's
    assert all(f["mask"] == "merge" for f in build("paste").faces)


def test_one_pixel_shake_has_clearly_higher_jitter(build):
    still = build("still", one_src=True).summary["stability"]
    shaking = build("shaking", one_src=True, shake=True).summary["stability"]
    assert shaking["jitter_merged"] > 2 * still["jitter_merged"]      # measured: 0.0089 vs 0.0032
    assert shaking["jitter_ratio"] > 2 * still["jitter_ratio"]
    assert shaking["wobble"] > 2 * still["wobble"]
    assert shaking["flicker_ratio"] > still["flicker_ratio"]


def test_hard_edged_paste_has_a_higher_seam_figure_than_a_feathered_one(build):
    feathered = build("paste", feather=True).summary["seam"]["ratio"]
    hard = build("hard", feather=False).summary["seam"]["ratio"]
    assert hard > 1.5 * feathered                                        # measured: 2.85 vs 1.02


def test_blurred_paste_has_a_lower_sharpness_ratio(build):
    sharp = build("paste", feather=True).summary
    blurred = build("blurred", feather=True, blur=2.5).summary
    assert blurred["sharpness"]["ratio"] < 0.5 * sharp["sharpness"]["ratio"]   # measured: 0.02 vs 1.08
    assert blurred["identity"]["swap_rate"] >= 0.9 * sharp["identity"]["swap_rate"]   # identity alone forgives it


def test_ssim_and_psnr_on_known_images():
    rng = np.random.default_rng(0)
    a = rng.random((64, 64, 3)).astype(np.float32)
    everywhere = np.ones((64, 64), bool)
    assert ssim_map(a, a).mean() == pytest.approx(1.0)
    assert abs(ssim_map(a, rng.random(a.shape)).mean()) < 0.1                  # unrelated images
    flat = ssim_map(np.full((32, 32, 3), 0.5), np.full((32, 32, 3), 0.25))        # luminance term only
    assert flat == pytest.approx((2 * 0.5 * 0.25 + 1e-4) / (0.5 ** 2 + 0.25 ** 2 + 1e-4))
    assert psnr(a, a + 0.1, everywhere) == pytest.approx(20.0, abs=1e-4)   # MSE 0.01


def _run(*args: str) -> int:
    return main.main(["evaluate", *args, "--non-interactive"])


def test_bad_input_is_one_clear_line(dst, src_faceset, tmp_path, capsys):
    frames_dir, aligned = dst
    common = ["--dst-dir", str(frames_dir), "--dst-aligned-dir", str(aligned), "--src-aligned-dir", str(src_faceset)]
    assert _run("--merged-dir", str(tmp_path / "nope"), *common) == 2
    assert "merged folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert _run("--merged-dir", str(tmp_path / "empty"), *common) == 2
    assert "no merged frames" in capsys.readouterr().err
    strangers = tmp_path / "strangers"
    shutil.copytree(frames_dir, strangers)
    shutil.copy(next(strangers.glob("*.png")), strangers / "99999.png")
    assert _run("--merged-dir", str(strangers), *common) == 2
    err = capsys.readouterr().err
    assert "99999.png" in err and "no dst frame" in err
    assert _run("--merged-dir", str(frames_dir), *common[:4], "--src-aligned-dir", str(tmp_path / "none")) == 2
    assert "src aligned folder not found" in capsys.readouterr().err
    assert _run("--merged-dir", str(strangers), *common, "--output-dir", str(frames_dir)) == 2
    assert "holds frames" in capsys.readouterr().err                    # evaluate.png must not become a frame
    small = tmp_path / "small"
    small.mkdir()
    for p in frames_dir.glob("*.png"):
        cv2.imwrite(str(small / p.name), cv2.resize(cv2.imread(str(p)), (320, 180)))
    with pytest.raises(VisageError, match="do not match"):
        evaluate(small, frames_dir, src_faceset, dst_aligned_dir=aligned, output_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "evaluate.json").exists()


TINY = ["archi=df-ud", "resolution=64", "ae_dims=32", "e_dims=16", "d_dims=16", "d_mask_dims=16", "batch_size=2",
        "target_iter=2"]


def test_command_with_a_model_adds_src_and_dst_reconstruction(dst, src_faceset, tmp_path, capsys):
    """The whole command through main.py, with a tiny SAEHD trained for 2 iterations on the two facesets."""
    frames_dir, aligned = dst
    model_dir = tmp_path / "model"
    train = ["train", "--training-data-src-dir", str(src_faceset), "--training-data-dst-dir", str(aligned),
             "--model-dir", str(model_dir), "--model", "SAEHD", "--force-model-name", "m", "--no-preview",
             "--silent-start", "--workers", "1", "--non-interactive"]
    for o in TINY:
        train += ["--opt", o]
    assert main.main(train) == 0
    out = tmp_path / "report"
    assert _run("--merged-dir", str(frames_dir), "--dst-dir", str(frames_dir), "--dst-aligned-dir", str(aligned),
                "--src-aligned-dir", str(src_faceset), "--model-dir", str(model_dir), "--holdout-dir",
                str(src_faceset), "--output-dir", str(out)) == 0
    printed = capsys.readouterr().out
    assert "swap rate 0 %" in printed and "reconstruction (m_SAEHD iter 2" in printed
    r = json.loads((out / "evaluate.json").read_text())["reconstruction"]
    assert r["faces"] == 12 and r["held_out"] is True and r["iteration"] == 2
    assert 0.0 < r["src_ssim"] < 0.9 and 5.0 < r["src_psnr_db"] < 40.0      # 2 iterations: far from the faces
    assert r["dst_faces"] == 12 and r["dst_faces_dir"] == str(aligned)              # dst -> dst on the dst faces
    assert 0.0 < r["dst_ssim"] < 0.9 and 5.0 < r["dst_psnr_db"] < 40.0 and r["dst_ssim"] != r["src_ssim"]
    assert "12 dst faces: SSIM" in printed
    assert (out / "evaluate.png").is_file()


def test_step9_scripts_run_evaluate_on_the_workspace():
    root = Path(__file__).resolve().parents[3] / "scripts"
    sh, bat = root / "9) evaluate.sh", root / "9) evaluate.bat"
    text, raw = sh.read_text(), bat.read_bytes()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -e\n" in text and "\r" not in text
    assert os.access(sh, os.X_OK) and text.rstrip().endswith('"$@"')
    assert raw.count(b"\n") == raw.count(b"\r\n") > 0 and raw.endswith(b"\r\n")
    body = raw.decode()
    assert body.startswith("@echo off") and 'call "%~dp0_env.bat" || exit /b 1' in body and body.rstrip().endswith("pause")
    want = ('"$PY" "$MAIN" evaluate --merged-dir "$WORKSPACE/data_dst/merged" --dst-dir "$WORKSPACE/data_dst" '
            '--dst-aligned-dir "$WORKSPACE/data_dst/aligned" --src-aligned-dir "$WORKSPACE/data_src/aligned" '
            '--merged-mask-dir "$WORKSPACE/data_dst/merged_mask" --model-dir "$WORKSPACE/model" "$@"')
    bat_line = body.splitlines()[-2].replace("%PY%", "$PY").replace("%MAIN%", "$MAIN").replace("%WORKSPACE%", "$WORKSPACE")
    assert text.splitlines()[-1] == want == bat_line.replace("\\", "/").replace("%*", '"$@"')
    args = main.build_parser().parse_args(["evaluate", "--merged-dir", "m", "--dst-dir", "d", "--src-aligned-dir", "s"])
    assert args.output_dir is None and args.model_dir is None        # the parser takes what the scripts pass
