"""`main.py videoed ...` end to end, and the numbered scripts that call it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import main
from core import video
from core.errors import VisageError
from core.sample_media import sample_path
from mainscripts.videoed import resolve_input_file

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("1) clear workspace", "2) extract images from video data_src", "3) cut video (drop video on me)",
           "3) extract images from video data_dst FULL FPS", "3.optional) denoise data_dst images")


@pytest.fixture
def run(monkeypatch):
    """main.main with only this command registered (other commands are built elsewhere)."""
    monkeypatch.setattr(main, "COMMAND_MODULES", ("videoed",))
    return lambda *argv: main.main(["videoed", *map(str, argv)])


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "workspace ünï_视频"
    ws.mkdir()
    shutil.copy(sample_path("single_face.mp4"), ws / "data_dst.mp4")
    return ws


def test_resolve_input_file_star(workspace):
    (workspace / "data_src.txt").write_text("x")
    assert resolve_input_file(workspace / "data_dst.*") == workspace / "data_dst.mp4"
    assert resolve_input_file(workspace / "data_src.*") == workspace / "data_src.txt"
    with pytest.raises(VisageError, match="no file matches"):
        resolve_input_file(workspace / "nothing.*")
    with pytest.raises(VisageError, match="input file not found"):
        resolve_input_file(workspace / "data_dst.mov")


def test_missing_input_is_one_line_exit_2(run, workspace, capsys):
    code = run("extract-video", "--input-file", workspace / "data_src.*", "--output-dir", workspace / "data_src")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no file matches" in err and "Traceback" not in err
    assert run("denoise-image-sequence", "--input-dir", workspace / "missing", "--factor", "7") == 2
    assert "input folder not found" in capsys.readouterr().err


def test_extract_takes_prompt_defaults_when_not_a_terminal(run, workspace, capsys):
    assert run("extract-video", "--input-file", workspace / "data_dst.*", "--output-dir", workspace / "data_dst") == 0
    frames = sorted((workspace / "data_dst").iterdir())
    assert len(frames) == 72 and frames[0].name == "00001.png"   # png at full fps, DeepFaceLab's defaults
    assert "Extracted 72 frames" in capsys.readouterr().out


def test_cut_then_encode_without_audio(run, workspace):
    assert run("cut-video", "--input-file", workspace / "data_dst.mp4", "--from-time", "0.5",
               "--to-time", "00:00:01.500", "--audio-track-id", "0", "--bitrate", "4") == 0
    cut = workspace / "data_dst_cut.mp4"
    assert video.probe(cut).duration == pytest.approx(1.0, abs=0.1)
    assert run("extract-video", "--input-file", cut, "--output-dir", workspace / "f",
               "--output-ext", "jpg", "--fps", "0") == 0
    count = len(list((workspace / "f").glob("*.jpg")))
    assert run("video-from-sequence", "--input-dir", workspace / "f", "--output-file", workspace / "out.mp4",
               "--reference-file", workspace / "data_dst.*", "--ext", "jpg", "--no-include-audio",
               "--no-lossless", "--bitrate", "2") == 0
    info = video.probe(workspace / "out.mp4")
    assert info.frame_count == count and info.fps == 30.0 and not info.has_audio
    assert run("video-from-sequence", "--input-dir", workspace / "f", "--output-file", workspace / "x.gif",
               "--ext", "jpg", "--fps", "5") == 2


# ----------------------------------------------------------------------------- scripts
def _stub_scripts(tmp_path: Path, workspace: Path) -> Path:
    """Copies of the scripts beside an _env.sh that points at this checkout without installing."""
    folder = tmp_path / "scripts"
    folder.mkdir()
    for name in SCRIPTS:
        shutil.copy(ROOT / "scripts" / f"{name}.sh", folder)
    (folder / "_env.sh").write_text(f'PY="{sys.executable}"\nMAIN="{ROOT / "main.py"}"\nWORKSPACE="{workspace}"\n')
    return folder


def test_scripts_exist_and_follow_the_pattern():
    for name in SCRIPTS:
        sh, bat = ROOT / "scripts" / f"{name}.sh", ROOT / "scripts" / f"{name}.bat"
        text = sh.read_text()
        assert text.startswith("#!/usr/bin/env bash\n") and "set -e\n" in text and os.access(sh, os.X_OK)
        assert 'source "$(dirname "$0")/_env.sh"' in text
        body = bat.read_text()
        assert body.startswith("@echo off") and 'call "%~dp0_env.bat"' in body and body.rstrip().endswith("pause")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_scripts_run(tmp_path, workspace):
    folder = _stub_scripts(tmp_path, workspace)
    env = {**os.environ, "VISAGE_NON_INTERACTIVE": "1"}
    shutil.copy(sample_path("single_face.mp4"), workspace / "data_src.mp4")

    def sh(name, *args, stdin=""):
        return subprocess.run(["bash", str(folder / f"{name}.sh"), *map(str, args)], input=stdin, env=env,
                              capture_output=True, text=True, timeout=120)
    assert sh(SCRIPTS[1], "--fps", "5", "--output-ext", "jpg").returncode == 0
    assert 11 <= len(list((workspace / "data_src").glob("*.jpg"))) <= 13
    assert sh(SCRIPTS[3], "--output-ext", "jpg").returncode == 0
    assert len(list((workspace / "data_dst").glob("*.jpg"))) == 72
    assert sh(SCRIPTS[4], "--factor", "3").returncode == 0
    assert sh(SCRIPTS[2]).returncode == 1                                    # nothing dropped on it
    assert sh(SCRIPTS[2], workspace / "data_src.mp4", "--from-time", "0", "--to-time", "0.5").returncode == 0
    assert (workspace / "data_src_cut.mp4").is_file()
    assert "Nothing deleted" in sh(SCRIPTS[0], stdin="").stdout             # no answer = keep everything
    assert (workspace / "data_dst" / "00001.jpg").is_file()
    assert sh(SCRIPTS[0], stdin="y\nn\n").returncode == 0
    assert not list((workspace / "data_dst").glob("*.jpg")) and (workspace / "data_src.mp4").is_file()
    assert (workspace / "data_dst" / "aligned").is_dir() and (workspace / "model").is_dir()
