"""Ctrl-C in the middle of a real extraction loses nothing, and the next run finishes the job."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.facelib.face_meta import read_face
from core.facelib.face_type import FaceType
from core.fileio import read_json
from mainscripts.extract.extractor import STATE_FILE, extract

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_ctrl_c_mid_extraction_keeps_whole_files_and_resumes(frames, tmp_path):
    src = frames("WolfgangLanger_Pexels.mp4", count=160)
    out = tmp_path / "aligned"
    cmd = [sys.executable, "main.py", "extract", "--input-dir", str(src), "--output-dir", str(out),
           "--face-type", "whole_face", "--image-size", "256", "--max-faces-from-image", "0",
           "--jpeg-quality", "90", "--no-output-debug", "--non-interactive", "--workers", "2"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120

    def finished():                              # not the .tmp_ files of writes in progress
        return [p for p in out.glob("*.jpg") if not p.name.startswith(".tmp_")]
    while len(finished()) < 30 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "extraction finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err

    assert not list(out.glob(".tmp_*")), "temporary files of the interrupted writes were not removed"
    written = sorted(out.glob("*.jpg"))
    assert 30 <= len(written) < 160
    for path in written:                       # every face file on disk is complete
        img, meta = read_face(path)
        assert img.shape == (256, 256, 3) and meta.source_filename == path.stem[:-2] + ".png"
    done = read_json(out / STATE_FILE)["done"]
    assert 0 < len(done) < 160

    report = extract(src, out, FaceType.WHOLE_FACE, 256, 90, workers=2)
    assert report.frames == 160 - len(done)    # only what was left is redone
    assert len(list(out.glob("*.jpg"))) == 160
    assert not list(out.glob(".tmp_*"))


def test_unreadable_frame_is_retried_once_fixed(frames, tmp_path):
    src = tmp_path / "frames"
    src.mkdir()
    good = sorted(frames("WolfgangLanger_Pexels.mp4", count=6).glob("*.png"))
    for f in good:
        shutil.copy(f, src / f.name)
    (src / good[2].name).write_bytes(b"not an image")
    out = tmp_path / "aligned"
    first = extract(src, out, FaceType.FULL, 128, 90, workers=1)
    assert first.corrupt == [good[2].name] and first.faces == 5
    shutil.copy(good[2], src / good[2].name)   # the user replaces the broken frame
    second = extract(src, out, FaceType.FULL, 128, 90, workers=1)
    assert (second.frames, second.faces, second.corrupt) == (1, 1, [])
