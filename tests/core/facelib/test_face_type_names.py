"""DeepFaceLab's short face type names and the long ones work in every command, as flags and as prompt answers."""
from __future__ import annotations

import json
import os

import pytest

import main
from core import interact
from core.facelib.face_meta import read_meta
from tests.support.train_support import TINY

# command -> (short name, long name, saved/written spelling)
EXPECT = {"extract": "whole_face", "facesettool": "midfull_face", "train": "wf"}
SPELLINGS = {"extract": ("wf", "whole_face"), "facesettool": ("mf", "midfull_face"), "train": ("wf", "whole_face")}
CASES = [(cmd, how, name) for cmd, names in SPELLINGS.items() for how, name in
         [("flag", names[0]), ("flag", names[1]), ("prompt", names[0]), ("prompt", names[1])]]


def _argv(cmd: str, tmp_path, frames, faces, src_faceset, dst_faceset) -> list[str]:
    if cmd == "extract":
        one = tmp_path / "frames"
        one.mkdir()
        first = sorted(frames("single_face.mp4", every=6).glob("*.png"))[0]
        os.link(first, one / first.name)
        return ["extract", "--input-dir", str(one), "--output-dir", str(tmp_path / "aligned_out"), "--workers", "1",
                "--image-size", "64", "--max-faces-from-image", "0", "--jpeg-quality", "90", "--no-output-debug"]
    if cmd == "facesettool":
        return ["facesettool", "resize", "--input-dir", str(faces), "--workers", "1", "--image-size", "128",
                "--no-merge-back"]
    argv = ["train", "--training-data-src-dir", str(src_faceset), "--training-data-dst-dir", str(dst_faceset),
            "--model-dir", str(tmp_path / "model"), "--model", "SAEHD", "--force-model-name", "t", "--no-preview",
            "--workers", "1"]
    for o in TINY + ["target_iter=1"]:
        argv += ["--opt", o]
    return argv


def _result(cmd: str, tmp_path, faces) -> str:
    if cmd == "extract":
        return read_meta(next((tmp_path / "aligned_out").glob("*.jpg"))).face_type
    if cmd == "facesettool":
        return read_meta(next((faces.parent / "aligned_resized").glob("*.jpg"))).face_type
    return json.loads((tmp_path / "model" / "t_SAEHD_data.json").read_text())["options"]["face_type"]


@pytest.mark.parametrize("cmd, how, name", CASES)
def test_face_type_spellings(cmd, how, name, tmp_path, frames, faces, src_faceset, dst_faceset, monkeypatch):
    argv = _argv(cmd, tmp_path, frames, faces, src_faceset, dst_faceset)
    if how == "flag":
        argv += ["--opt", f"face_type={name}"] if cmd == "train" else ["--face-type", name]
        argv.append("--non-interactive")
    else:
        asked: list[str] = []
        monkeypatch.setattr(interact, "is_interactive", lambda: True)
        monkeypatch.setattr("builtins.input", lambda prompt="": asked.append(prompt) or (
            name if "face type" in prompt.lower() else ""))
    assert main.main(argv) == 0
    if how == "prompt":
        assert any("face type" in q.lower() for q in asked)
    assert _result(cmd, tmp_path, faces) == EXPECT[cmd]


@pytest.mark.parametrize("cmd", ["extract", "facesettool", "train"])
def test_unknown_face_type_is_one_line_naming_both_spellings(cmd, tmp_path, frames, faces, src_faceset, dst_faceset,
                                                             capsys):
    argv = _argv(cmd, tmp_path, frames, faces, src_faceset, dst_faceset) + ["--non-interactive"]
    argv += ["--opt", "face_type=wide"] if cmd == "train" else ["--face-type", "wide"]
    try:
        code = main.main(argv)
    except SystemExit as e:             # the flag's own check: argparse exits with the same one line
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'wide'" in err and ("wf" in err or "whole_face" in err)
