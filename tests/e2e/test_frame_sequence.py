"""Only frames are frames: contact sheets and stray pictures never become faces, merged frames or video."""
from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

import main
from core import video
from core.facelib.face_meta import read_meta
from core.fileio import write_image
from core.frame_sequence import contact_sheet_path, split_frames
from core.sample_media import sample_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("names, sequence, frames", [
    (["00001.png", "00002.png", "aligned_contact_sheet.jpg", "cover.jpg"], True, ["00001.png", "00002.png"]),
    (["00001.png", "00002.png", "aligned_contact_sheet.jpg", "me.jpg"], False, ["00001.png", "00002.png", "me.jpg"]),
    (["IMG_1.jpg", "me.png", "aligned_contact_sheet.jpg"], True, ["IMG_1.jpg", "me.png"]),     # photos: all kept
    (["00001.png", "holiday.jpg", "beach.jpg"], True, ["00001.png", "holiday.jpg", "beach.jpg"]),
    (["data_src_aligned_contact_sheet.jpg"], False, []),
])
def test_split_frames(names, sequence, frames):
    got, ignored = split_frames([Path(n) for n in names], sequence)
    assert [p.name for p in got] == frames
    assert sorted(p.name for p in ignored) == sorted(set(names) - set(frames))


def test_contact_sheet_never_goes_into_a_frame_folder(tmp_path):
    (tmp_path / "data_src" / "aligned").mkdir(parents=True)
    assert contact_sheet_path(tmp_path / "data_src" / "aligned") == tmp_path / "data_src_aligned_contact_sheet.jpg"
    (tmp_path / "faces").mkdir()
    assert contact_sheet_path(tmp_path / "faces") == tmp_path / "faces_contact_sheet.jpg"


def script_argv(name: str, ws: Path, *extra: str) -> list[str]:
    """The argv that scripts/<name>.sh gives main.py, with its $WORKSPACE (and data_dst.*) filled in."""
    line = (ROOT / "scripts" / f"{name}.sh").read_text().splitlines()[-1]
    assert line.startswith('"$PY" "$MAIN" ') and line.endswith('"$@"')
    words = shlex.split(line.replace('"$PY" "$MAIN" ', "").replace('"$@"', "").replace("$WORKSPACE", str(ws)))
    words = [str(next(Path(w).parent.glob(Path(w).name))) if "*" in w else w for w in words]
    return words + list(extra)


def test_steps_5_to_8_ignore_contact_sheets(frames, tiny_model, tmp_path, capsys):
    ws = tmp_path / "workspace"
    dst = ws / "data_dst"
    dst.mkdir(parents=True)
    clip = frames("single_face.mp4", every=6)
    names = sorted(p.name for p in clip.glob("*.png"))
    for n in names:
        os.link(clip / n, dst / n)
    shutil.copy(sample_path("single_face.mp4"), ws / "data_dst.mp4")
    shutil.copytree(tiny_model, ws / "model")
    run = lambda name, *extra: main.main(script_argv(name, ws, "--non-interactive", *extra))  # noqa: E731

    assert run("5) data_dst faceset extract", "--image-size", "128") == 0
    assert run("5.1) data_dst view aligned results") == 0
    sheet = ws / "data_dst_aligned_contact_sheet.jpg"
    assert sheet.is_file() and sorted(p.name for p in dst.iterdir() if p.is_file()) == names
    # a sheet an older version left in the frame folder (it shows faces) and a stray picture
    shutil.copy(sheet, dst / "aligned_contact_sheet.jpg")
    write_image(dst / "cover.jpg", np.full((64, 64, 3), 128, np.uint8))
    capsys.readouterr()
    assert run("5) data_dst faceset extract", "--image-size", "128") == 0       # step 5 again
    assert "Ignoring 1 image(s)" in capsys.readouterr().out            # the sheet; cover.jpg has no face
    sources = {read_meta(p).source_filename for p in (dst / "aligned").glob("*.jpg")}
    assert sources and sources <= set(names)

    assert run("7) merge SAEHD") == 0
    assert f"Ignoring 2 image(s) in {dst}" in capsys.readouterr().out    # neither is a frame of the sequence
    merged = dst / "merged"
    assert sorted(p.name for p in merged.iterdir() if not p.name.startswith(".")) == names
    shutil.copy(sheet, merged / "merged_contact_sheet.jpg")      # even one put into merged/ stays out
    assert run("8) merged to mp4", "--bitrate", "4") == 0
    assert video.count_frames(ws / "result.mp4") == len(names)
