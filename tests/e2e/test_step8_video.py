"""Step 7/8 scripts and the labelled final video (`videoed video-from-sequence` on merged frames).

Merged frames are stood in for by real decoded frames of single_face.mp4 (72 frames, 30 fps, with
an mp3 audio track) copied with the synthetic-media label added (core.synthetic_label.label_png),
which is what the merger writes. The label is read back the way a user would see it: the
container "Metadata:" block printed by `ffmpeg -i` (there is no ffprobe on the test machines).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import main
from core import video
from core.sample_media import sample_path
from core.synthetic_label import DIGITAL_SOURCE_TYPE, LABEL, is_labelled_png, label_png, video_metadata

ROOT = Path(__file__).resolve().parents[2]
CLIP = "single_face.mp4"
MERGE_SCRIPTS = {"7) merge SAEHD": "SAEHD", "7) merge Quick96": "Quick96"}
# script name -> (output file, lossless flag), as in DeepFaceLab's wrappers (both mp4 ones write result.mp4)
VIDEO_SCRIPTS = {"8) merged to mp4": ("result.mp4", "--no-lossless"),
                 "8) merged to mp4 lossless": ("result.mp4", "--lossless"),
                 "8) merged to mov lossless": ("result.mov", "--lossless"),
                 "8) merged to avi": ("result.avi", "--no-lossless")}


# ----------------------------------------------------------------------------- helpers
def container_tags(path: Path) -> dict[str, str]:
    """The container-level tags of `path` as `ffmpeg -i` prints them (keys lower-cased: mkv upper-cases
    them); continuation lines of a multi-line value are joined with newlines."""
    err = subprocess.run([video.ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                         capture_output=True, text=True, encoding="utf-8", errors="replace").stderr
    lines = err.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Input #0"))
    tags: dict[str, str] = {}
    if lines[start + 1] != "  Metadata:":
        return tags
    last = None
    for ln in lines[start + 2:]:
        if not ln.startswith("    "):                 # back at the "  Duration:" level: block over
            break
        key, _, value = ln.strip().partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key.strip():
            last = key.strip().lower()
            tags[last] = value
        elif last:
            tags[last] += "\n" + value
    return tags


def label_seen(tags: dict[str, str], suffix: str) -> bool:
    """Whether the synthetic-media label is in a container's tags. mp4/mov/mkv keep the custom keys;
    AVI keeps only standard RIFF INFO keys, so there the keys are folded into the comment."""
    if suffix == ".avi":
        comment = tags.get("comment", "")
        return (LABEL["Description"] in comment and "synthetic_media=true" in comment
                and f"digital_source_type={DIGITAL_SOURCE_TYPE}" in comment)
    return (tags.get("synthetic_media") == "true" and tags.get("digital_source_type") == DIGITAL_SOURCE_TYPE
            and tags.get("comment") == LABEL["Description"])


def no_label(tags: dict[str, str]) -> bool:
    return "synthetic_media" not in tags and not any("trainedAlgorithmicMedia" in v for v in tags.values())


@pytest.fixture(scope="module")
def reference() -> tuple[Path, video.VideoInfo]:
    ref = sample_path(CLIP)
    info = video.probe(ref)
    assert info.has_audio and info.frame_count == 72 and info.fps == 30.0   # the test relies on this
    return ref, info


@pytest.fixture(scope="module")
def plain(frames) -> Path:
    """Every frame of the clip as decoded: unlabelled PNGs."""
    folder = frames(CLIP)
    assert len(list(folder.glob("*.png"))) == 72
    return folder


@pytest.fixture(scope="module")
def merged(plain, tmp_path_factory) -> Path:
    """The same frames with the synthetic-media label, as the merger writes them."""
    folder = tmp_path_factory.mktemp("merged")
    for f in plain.glob("*.png"):
        (folder / f.name).write_bytes(label_png(f.read_bytes()))
    return folder


def check_video(out: Path, reference: tuple[Path, video.VideoInfo], labelled: bool) -> dict[str, str]:
    info = video.probe(out)
    ref_info = reference[1]
    assert info.frame_count_exact and info.frame_count == ref_info.frame_count
    assert info.fps == ref_info.fps and (info.width, info.height) == (ref_info.width, ref_info.height)
    assert info.has_audio
    tags = container_tags(out)
    if labelled:
        assert label_seen(tags, out.suffix), f"{out.name} is not labelled: {tags}"
    else:
        assert no_label(tags), f"{out.name} carries the label but its frames were not merged: {tags}"
    return tags


# ----------------------------------------------------------------------------- core.video
@pytest.mark.parametrize("name,lossless", [("out.mp4", False), ("out_lossless.mp4", True),
                                           ("out.mov", True), ("out.avi", False), ("out.mkv", True)])
def test_merged_frames_give_a_labelled_video(tmp_path, merged, plain, reference, name, lossless):
    out = video.video_from_sequence(merged, tmp_path / name, reference[0], lossless=lossless)
    check_video(out, reference, labelled=True)
    # the same frames without the label give the same video without it (so the check above can fail)
    out = video.video_from_sequence(plain, tmp_path / f"plain_{name}", reference[0], lossless=lossless)
    check_video(out, reference, labelled=False)


def test_label_wins_over_caller_metadata(tmp_path, merged, reference):
    out = video.video_from_sequence(merged, tmp_path / "o.mkv", reference[0], lossless=True,
                                    metadata={"synthetic_media": "false", "title": "my clip"})
    tags = check_video(out, reference, labelled=True)
    assert tags["title"] == "my clip"


def test_only_the_first_frame_decides(tmp_path, merged, plain):
    """Documented rule: the first frame (natural order) is read; JPG frames are never labelled."""
    first_labelled = tmp_path / "a"
    first_labelled.mkdir()
    files = sorted(plain.glob("*.png"))[:3]
    shutil.copy(merged / files[0].name, first_labelled)
    for f in files[1:]:
        shutil.copy(f, first_labelled)
    assert video.frames_are_labelled(sorted(first_labelled.iterdir()))
    assert not video.frames_are_labelled(sorted(plain.glob("*.png")))
    assert not video.frames_are_labelled([])
    jpg = tmp_path / "00000.jpg"
    jpg.write_bytes(b"\xff\xd8 not a png")
    assert not video.frames_are_labelled([jpg])
    broken = tmp_path / "00000.png"
    broken.write_bytes(b"not a png")
    assert not video.frames_are_labelled([broken])


def test_avi_folds_custom_keys_into_the_comment():
    args = video.build_encode_args("o.avi", ".png", 30, metadata={**video_metadata(), "title": "t"})
    meta = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a.startswith("-metadata"))
    assert set(meta) == {"comment", "title"} and meta["title"] == "t" and "-movflags" not in args
    assert meta["comment"].startswith(LABEL["Description"] + "; synthetic_media=true; ")
    assert f"digital_source_type={DIGITAL_SOURCE_TYPE}" in meta["comment"]
    assert meta["comment"].count(LABEL["Description"]) == 1          # 'description' repeats it: dropped
    mp4 = video.build_encode_args("o.mp4", ".png", 30, metadata=video_metadata())
    assert "synthetic_media=true" in mp4 and "+use_metadata_tags" in mp4


# ----------------------------------------------------------------------------- the CLI
@pytest.fixture
def run(monkeypatch):
    """main.main with only videoed registered (other commands are being built elsewhere)."""
    monkeypatch.setattr(main, "COMMAND_MODULES", ("videoed",))
    return lambda *argv: main.main(["videoed", "video-from-sequence", "--non-interactive", *map(str, argv)])


def test_cli_labels_merged_frames_only(run, tmp_path, merged, plain, reference):
    ws = tmp_path / "workspace ünï"
    ws.mkdir()
    shutil.copy(reference[0], ws / "data_dst.mp4")
    assert run("--input-dir", merged, "--output-file", ws / "result.mov", "--reference-file", ws / "data_dst.*",
               "--include-audio", "--lossless") == 0
    check_video(ws / "result.mov", reference, labelled=True)
    assert run("--input-dir", plain, "--output-file", ws / "plain.mp4", "--reference-file", ws / "data_dst.*",
               "--include-audio", "--no-lossless") == 0
    check_video(ws / "plain.mp4", reference, labelled=False)


# ----------------------------------------------------------------------------- the scripts
def test_scripts_follow_the_pattern():
    for name in [*MERGE_SCRIPTS, *VIDEO_SCRIPTS]:
        sh, bat = ROOT / "scripts" / f"{name}.sh", ROOT / "scripts" / f"{name}.bat"
        text, raw = sh.read_text(), bat.read_bytes()
        assert text.startswith("#!/usr/bin/env bash\n") and "set -e\n" in text and "\r" not in text
        assert 'source "$(dirname "$0")/_env.sh"' in text and text.rstrip().endswith('"$@"')
        assert os.access(sh, os.X_OK), f"{sh.name} is not executable"
        assert raw.count(b"\n") == raw.count(b"\r\n") > 0 and raw.endswith(b"\r\n"), f"{bat.name} needs CRLF"
        body = raw.decode()
        assert body.startswith("@echo off") and 'call "%~dp0_env.bat" || exit /b 1' in body
        assert body.rstrip().endswith("pause") and "%*\r\n" in body


def _command(name: str) -> tuple[str, str]:
    """The command line of a script's .sh and of its .bat, with the .bat's spelling mapped to bash's."""
    sh = (ROOT / "scripts" / f"{name}.sh").read_text().splitlines()[-1]
    bat = (ROOT / "scripts" / f"{name}.bat").read_text().splitlines()[-2]
    bat = bat.replace("%PY%", "$PY").replace("%MAIN%", "$MAIN").replace("%WORKSPACE%", "$WORKSPACE")
    return sh, bat.replace("\\", "/").replace("%*", '"$@"')


def test_script_command_lines():
    for name, model in MERGE_SCRIPTS.items():
        want = ('"$PY" "$MAIN" merge --input-dir "$WORKSPACE/data_dst" --output-dir "$WORKSPACE/data_dst/merged" '
                '--output-mask-dir "$WORKSPACE/data_dst/merged_mask" --aligned-dir "$WORKSPACE/data_dst/aligned" '
                f'--model-dir "$WORKSPACE/model" --model {model} "$@"')
        assert _command(name) == (want, want)
    for name, (out, flag) in VIDEO_SCRIPTS.items():
        want = ('"$PY" "$MAIN" videoed video-from-sequence --input-dir "$WORKSPACE/data_dst/merged" '
                f'--output-file "$WORKSPACE/{out}" --reference-file "$WORKSPACE/data_dst.*" --include-audio {flag} "$@"')
        assert _command(name) == (want, want)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_step8_scripts_run(tmp_path, merged, plain, reference):
    ws = tmp_path / "workspace ünï_视频"
    (ws / "data_dst").mkdir(parents=True)
    shutil.copy(reference[0], ws / "data_dst.mp4")
    shutil.copytree(merged, ws / "data_dst" / "merged")
    folder = tmp_path / "scripts"
    folder.mkdir()
    for name in VIDEO_SCRIPTS:
        shutil.copy(ROOT / "scripts" / f"{name}.sh", folder)
    (folder / "_env.sh").write_text(f'PY="{sys.executable}"\nMAIN="{ROOT / "main.py"}"\nWORKSPACE="{ws}"\n')
    env = {**os.environ, "VISAGE_NON_INTERACTIVE": "1"}
    for name, (out, flag) in VIDEO_SCRIPTS.items():
        proc = subprocess.run(["bash", str(folder / f"{name}.sh"), "--bitrate", "4"], env=env, capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr[-2000:]
        check_video(ws / out, reference, labelled=True)
        codec = video.probe(ws / out, count=False).video_codec
        assert codec == {"result.mov": "png", "result.avi": "h264", "result.mp4": "h264"}[out]
        if out == "result.mp4":
            info = subprocess.run([video.ffmpeg_exe(), "-hide_banner", "-i", str(ws / out)],
                                  capture_output=True, text=True).stderr
            assert bool(re.search(r"Video: h264 \(High 4:4:4", info)) == (flag == "--lossless")
    # unlabelled frames through the same script: no label
    shutil.rmtree(ws / "data_dst" / "merged")
    shutil.copytree(plain, ws / "data_dst" / "merged")
    assert subprocess.run(["bash", str(folder / "8) merged to avi.sh")], env=env, capture_output=True,
                          timeout=300, stdin=subprocess.DEVNULL).returncode == 0
    check_video(ws / "result.avi", reference, labelled=False)
    assert not is_labelled_png((ws / "data_dst" / "merged" / "00000.png").read_bytes())
