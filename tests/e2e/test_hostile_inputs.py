"""Damaged and hostile input, end to end (issue 12, items 6-10).

Each case must end in one `error:` line (no traceback) with a non-zero exit code, and leave
every file it should not touch byte-identical: unwritable outputs, unbounded numbers, deep or
huge JSON, a pak whose index repeats the same bytes, and a truncated video.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import fileio
from core.errors import VisageError
from core.faceset_pak import PAK_NAME, PakReader, pack
from core.fileio import atomic_write_bytes, read_json
from core.sample_media import sample_path
from tests.support.hostile_support import (HUGE_INT, assert_one_error, run, deep_json, embed_raw_meta, make_pak, meta_text,
                                   split_pak, tree_bytes)

ROOT = Path(__file__).resolve().parents[2]
CLIP = "single_face.mp4"                       # 72 frames at 30 fps; its container promises 73


@pytest.fixture
def one_frame(tmp_path) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "00001.png"), np.zeros((64, 64, 3), np.uint8))
    return folder


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(sample_path(CLIP), ws / CLIP)
    return ws


@pytest.fixture
def faces(src_faceset, tmp_path) -> Path:
    folder = tmp_path / "aligned"
    folder.mkdir()
    for p in sorted(src_faceset.glob("*.jpg"))[:2]:
        shutil.copy(p, folder / p.name)
    return folder


# ---------------------------------------------------------------- 6: unwritable outputs

@pytest.mark.parametrize("command", ["extract", "extract-below", "videoed"])
def test_a_file_where_the_output_folder_belongs(command, one_frame, tmp_path, capsys):
    blocker = tmp_path / "aligned"
    blocker.write_bytes(b"my notes, not a folder")
    out = blocker / "faces" if command == "extract-below" else blocker
    if command == "videoed":
        argv = ["videoed", "extract-video", "--input-file", sample_path(CLIP), "--output-dir", out, "--fps", "0",
                "--output-ext", "png"]
    else:
        argv = ["extract", "--input-dir", one_frame, "--output-dir", out, "--non-interactive"]
    assert run(*argv) == 2
    assert_one_error(capsys.readouterr().err, f"{blocker} is a file, not a folder")
    assert blocker.read_bytes() == b"my notes, not a folder"


def _run_read_only(ro: Path, *argv) -> subprocess.CompletedProcess:
    """`main.py argv` in a private mount namespace where `ro` is a read-only bind mount (root
    ignores permission bits, so chmod would prove nothing); skips where mounts are not allowed."""
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" || exit 77; shift; exec "$@"'
    if not shutil.which("unshare"):
        pytest.skip("no unshare here to make a read-only mount")
    proc = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", str(ro), sys.executable, "main.py",
                           *map(str, argv)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "VISAGE_NON_INTERACTIVE": "1"})
    if proc.returncode == 77 or proc.stderr.startswith("unshare:"):
        pytest.skip(f"read-only mounts are not allowed here: {proc.stderr.strip()[:200]}")
    return proc


def test_read_only_output_folder(one_frame, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "00001.png").write_bytes(b"an old frame extract-video would delete")
    before = tree_bytes(ro)
    proc = _run_read_only(ro, "videoed", "extract-video", "--input-file", sample_path(CLIP), "--output-dir", ro,
                          "--fps", "0", "--output-ext", "png")
    assert proc.returncode == 2
    assert_one_error(proc.stderr, str(ro), "read-only")
    proc = _run_read_only(ro, "extract", "--input-dir", one_frame, "--output-dir", ro / "aligned")
    assert proc.returncode == 2
    assert_one_error(proc.stderr, str(ro / "aligned"), "read-only")
    assert tree_bytes(ro) == before


@pytest.mark.parametrize("code, words", [(errno.EROFS, "read-only"), (errno.EACCES, "permission denied"),
                                         (errno.ENOSPC, "disk full")])
def test_atomic_writer_turns_write_errors_into_one_line(code, words, tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    target.write_bytes(b"old")

    def refuse(*args):
        raise OSError(code, os.strerror(code), str(target))
    monkeypatch.setattr(fileio.os, "replace", refuse)
    with pytest.raises(VisageError, match=words) as info:
        atomic_write_bytes(target, b"new")
    assert str(target) in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"] and target.read_bytes() == b"old"


def test_worker_process_write_failure_is_one_line(frames, tmp_path, capsys):
    """Faces are written in spawned workers; the debug folder's name is taken by a file."""
    out = tmp_path / "aligned"
    blocker = tmp_path / "aligned_debug"
    blocker.write_bytes(b"not a folder")
    src = frames(CLIP, every=7)                     # 11 frames: two jobs, so a real worker pool
    assert run("extract", "--input-dir", src, "--output-dir", out, "--output-debug", "--workers", "2",
               "--image-size", "64", "--non-interactive") == 2
    assert_one_error(capsys.readouterr().err, f"{blocker} is a file, not a folder")
    assert blocker.read_bytes() == b"not a folder" and not list(out.glob(".tmp_*"))


def test_last_resort_for_an_oserror_a_command_did_not_describe(faces, monkeypatch, capsys):
    import mainscripts.util as util

    def refuse(folder):
        raise PermissionError(errno.EACCES, "Permission denied", str(folder / "sheet.jpg"))
    monkeypatch.setattr(util, "view_aligned", refuse)
    assert run("util", "--input-dir", faces, "--view-aligned") == 2
    assert_one_error(capsys.readouterr().err, f"cannot write/read {faces / 'sheet.jpg'}: Permission denied")


# ---------------------------------------------------------------- 7: unbounded numbers

OUT = "OUT"                                        # replaced by a folder that must never appear
BAD_NUMBERS = [
    *[("videoed", "extract-video", "--input-file", CLIP, "--output-dir", OUT, "--fps", v)
      for v in ("1e9", "-3", "nan", "inf", "1e999")],
    ("videoed", "cut-video", "--input-file", CLIP, "--from-time", "nan", "--to-time", "1"),
    ("videoed", "cut-video", "--input-file", CLIP, "--from-time", "0", "--to-time", "inf"),
    ("videoed", "cut-video", "--input-file", CLIP, "--from-time", "0", "--to-time", "1", "--bitrate", "inf"),
    ("videoed", "cut-video", "--input-file", CLIP, "--from-time", "0", "--to-time", "1", "--audio-track-id", "-1"),
    ("videoed", "denoise-image-sequence", "--input-dir", OUT, "--factor", "0"),
    ("videoed", "video-from-sequence", "--input-dir", OUT, "--output-file", "x.mp4", "--fps", "nan"),
    ("videoed", "video-from-sequence", "--input-dir", OUT, "--output-file", "x.mp4", "--bitrate", "-1"),
    *[("extract", "--input-dir", "FRAMES", "--output-dir", OUT, *flag) for flag in (
        ("--smooth-radius", "-1"), ("--smooth-radius", "100000"), ("--workers", "1000000"),
        ("--filter-threshold", "nan"), ("--manual-window-size", "0"), ("--image-size", "100000"),
        ("--jpeg-quality", "101"), ("--max-faces-from-image", "-1"))],
]


@pytest.mark.parametrize("argv", BAD_NUMBERS, ids=lambda a: " ".join(a[1:2] + a[-2:]))
def test_bad_numbers_are_refused_before_anything_runs(argv, workspace, one_frame, capsys):
    names = {CLIP: workspace / CLIP, OUT: workspace / "out", "FRAMES": one_frame}
    before = tree_bytes(workspace)
    assert run(*(names.get(a, a) for a in argv), "--non-interactive") == 2
    assert_one_error(capsys.readouterr().err)
    assert tree_bytes(workspace) == before


def test_fps_above_the_source_rate_extracts_every_frame(workspace, capsys):
    out = workspace / "frames"
    assert run("videoed", "extract-video", "--input-file", workspace / CLIP, "--output-dir", out,
               "--fps", "60", "--output-ext", "jpg") == 0
    assert "60 fps is not below the 30 fps" in capsys.readouterr().out
    assert len(list(out.glob("*.jpg"))) == 72


def test_a_bad_video_deletes_no_old_frames(tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    out = tmp_path / "frames"
    out.mkdir()
    (out / "00001.png").write_bytes(b"an old frame")
    assert run("videoed", "extract-video", "--input-file", broken, "--output-dir", out, "--fps", "0",
               "--output-ext", "png") == 2
    assert_one_error(capsys.readouterr().err, "broken.mp4")
    assert (out / "00001.png").read_bytes() == b"an old frame"


# ---------------------------------------------------------------- 8: deep or huge JSON

def _hostile_meta(jpeg: bytes, kind: str) -> bytes:
    d = json.loads(meta_text(jpeg))
    if kind == "deep":
        d["extra"] = "@"
        return json.dumps(d).replace('"@"', deep_json(200_000)).encode()
    d["landmarks"][0][0] = "@"
    return json.dumps(d).replace('"@"', HUGE_INT).encode()


@pytest.mark.parametrize("kind, words", [("deep", "nests deeper"), ("huge", "too large")])
@pytest.mark.parametrize("operation", ["pack-faceset", "save-faceset-metadata", "recover-original-aligned-filename",
                                       "add-landmarks-debug-images", "export-faceset-mask", "view-aligned"])
def test_util_on_a_face_with_hostile_metadata(operation, kind, words, faces, capsys):
    bad = sorted(faces.glob("*.jpg"))[0]
    bad.write_bytes(embed_raw_meta(bad.read_bytes(), _hostile_meta(bad.read_bytes(), kind)))
    before = tree_bytes(faces.parent)
    assert run("util", "--input-dir", faces, f"--{operation}", "--no-delete-originals") == 2
    assert_one_error(capsys.readouterr().err, bad.name, "corrupt Visage metadata", words)
    assert tree_bytes(faces.parent) == before


@pytest.mark.parametrize("kind, words", [("deep", "nests deeper"), ("huge", "too large")])
def test_restore_metadata_from_a_hostile_meta_json(kind, words, faces, capsys):
    assert run("util", "--input-dir", faces, "--save-faceset-metadata") == 0
    meta_json = faces / "meta.json"
    saved = json.loads(meta_json.read_text())
    name = next(iter(saved["faces"]))
    saved["faces"][name]["meta"]["landmarks"][0][0] = "@"
    hostile = deep_json(200_000) if kind == "deep" else HUGE_INT
    meta_json.write_text(json.dumps(saved).replace('"@"', hostile))
    before = tree_bytes(faces)
    assert run("util", "--input-dir", faces, "--restore-faceset-metadata") == 2
    assert_one_error(capsys.readouterr().err, "meta.json", words)
    assert tree_bytes(faces) == before


def packed_only(faces: Path) -> tuple[Path, bytes, bytes]:
    """`faces` packed into faceset.pak, the loose faces removed: (pak, index JSON, data)."""
    pack(faces)
    for p in faces.glob("*.jpg"):
        p.unlink()
    pak = faces / PAK_NAME
    return (pak, *split_pak(pak.read_bytes()))


def test_unpack_a_pak_with_a_deep_index(faces, capsys):
    pak, _, data = packed_only(faces)
    pak.write_bytes(make_pak(('{"files": ' + deep_json(200_000) + "}").encode(), data))
    before = tree_bytes(faces)
    assert run("util", "--input-dir", faces, "--unpack-faceset", "--delete-originals") == 2
    assert_one_error(capsys.readouterr().err, "damaged index", "nests deeper")
    assert tree_bytes(faces) == before


@pytest.mark.parametrize("content, words", [
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary", "not UTF-8"), (deep_json(200_000).encode(), "nests deeper"),
    (('{"iter": ' + HUGE_INT + "}").encode(), "too large"), (b'{"loss": 1e999}', "out of range"),
    (b'{"loss": NaN}', "not a finite number")])
def test_read_json_refuses_binary_deep_and_huge(content, words, tmp_path):
    path = tmp_path / "m_SAEHD_data.json"
    path.write_bytes(content)
    with pytest.raises(VisageError, match=words):
        read_json(path)


# ---------------------------------------------------------------- 9: a pak that repeats its bytes

def test_pak_entries_sharing_bytes_are_refused(faces, capsys):
    pak, index, data = packed_only(faces)
    first = json.loads(index)["files"][0]
    files = [{**first, "name": f"copy_{i:04d}.jpg"} for i in range(2000)]
    assert first["crc32"] == zlib.crc32(data[first["offset"]:first["offset"] + first["length"]])
    pak.write_bytes(make_pak(json.dumps({"files": files}).encode(), data))
    before = tree_bytes(faces)
    assert run("util", "--input-dir", faces, "--unpack-faceset", "--delete-originals") == 2
    assert_one_error(capsys.readouterr().err, "shares its bytes", "nothing was unpacked")
    assert tree_bytes(faces) == before
    with pytest.raises(VisageError, match="shares its bytes"):
        PakReader(pak)


# ---------------------------------------------------------------- 10: a truncated video

def test_truncated_video_keeps_its_frames_and_says_so(tmp_path, capsys):
    from imageio_ffmpeg import get_ffmpeg_exe
    whole = tmp_path / "faststart.mp4"
    subprocess.run([get_ffmpeg_exe(), "-v", "error", "-i", str(sample_path(CLIP)), "-c", "copy",
                    "-movflags", "+faststart", str(whole)], check=True)
    raw = whole.read_bytes()
    assert raw.find(b"moov") < raw.find(b"mdat")        # the index comes first, so half a file still opens
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(raw[:len(raw) // 2])
    out = tmp_path / "frames"
    assert run("videoed", "extract-video", "--input-file", cut, "--output-dir", out, "--fps", "0",
               "--output-ext", "png") == 1
    line = assert_one_error(capsys.readouterr().err, "cut.mp4 is truncated or damaged", "of the 73 frames")
    kept = len(list(out.glob("*.png")))
    assert 10 < kept < 60 and f"only {kept} of" in line
