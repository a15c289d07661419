"""core/video.py: pure command builders and parsers, then real runs on the sample clips."""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from core import video
from core.errors import VisageError
from core.fileio import read_image
from core.sample_media import sample_path

WOLFGANG_INFO = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/x/WolfgangLanger_Pexels.mp4':
  Metadata:
    major_brand     : mp42
    compatible_brands: mp42mp41isomavc1
    creation_time   : 2019-10-11T05:31:58.000000Z
  Duration: 00:00:19.69, start: 0.000000, bitrate: 663 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, smpte170m, progressive), 640x360, 533 kb/s, 23.98 fps, 23.98 tbr, 24k tbn (default)
    Metadata:
      handler_name    : L-SMASH Video Handler
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 125 kb/s (default)
    Metadata:
      handler_name    : L-SMASH Audio Handler
At least one output file must be specified
"""

# Audio first, a cover image, rotation side data, a two-line tag, a variable frame rate.
PHONE_INFO = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'phone.mov':
  Metadata:
    comment         : line one
                    : line two
    visage_synthetic: 1
  Duration: 00:01:02.50, start: 0.000000, bitrate: 1649 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 128 kb/s
  Stream #0:1[0x2](und): Video: mjpeg (Baseline), yuvj420p(pc), 300x300, 90k tbr, 90k tbn (attached pic)
  Stream #0:2[0x3](und): Video: hevc (Main) (hvc1 / 0x31637668), yuv420p(tv, bt709), 1920x1080, 1568 kb/s, 26.40 fps, 30 tbr, 15360 tbn (default)
    Side data:
      displaymatrix: rotation of -90.00 degrees
  Stream #0:3[0x4](eng): Audio: mp3 (mp3float), 44100 Hz, stereo, fltp, 128 kb/s
"""


# ----------------------------------------------------------------------------- pure functions
def test_parse_ffmpeg_info_plain_mp4():
    info = video.parse_ffmpeg_info(WOLFGANG_INFO)
    assert (info.width, info.height, info.video_codec, info.audio_codec) == (640, 360, "h264", "aac")
    assert info.fps == pytest.approx(24000 / 1001) and info.duration == pytest.approx(19.69)
    assert info.has_audio and info.audio_tracks == 1 and info.frame_count == 472 and not info.frame_count_exact
    assert info.tags["creation_time"] == "2019-10-11T05:31:58.000000Z"
    assert info.tags["compatible_brands"] == "mp42mp41isomavc1" and "handler_name" not in info.tags


def test_parse_ffmpeg_info_rotation_cover_multiline_vfr():
    info = video.parse_ffmpeg_info(PHONE_INFO)
    assert (info.width, info.height, info.video_codec) == (1080, 1920, "hevc")   # rotated, cover skipped
    assert info.fps == pytest.approx(26.4)                                      # VFR: average, not tbr
    assert info.audio_tracks == 2 and info.audio_codec == "aac" and info.duration == pytest.approx(62.5)
    assert info.tags == {"comment": "line one\nline two", "visage_synthetic": "1"}


def test_parse_ffmpeg_info_errors_are_one_line():
    text = ("[in#0 @ 0x55a6938b7080] moov atom not found\n"
            "[in#0 @ 0x55a6938b6d00] Error opening input: Invalid data found when processing input\n"
            "Error opening input file a.mp4.\nError opening input files: Invalid data found when processing input\n")
    with pytest.raises(VisageError, match="^ffmpeg cannot read a.mp4: Error opening input: Invalid data found[^\n]*$"):
        video.parse_ffmpeg_info(text, "a.mp4")
    assert video.error_reason(["Stream map '' matches no streams.", "Failed to set value '0:a:3' for option 'map'",
                               "Error opening output files: Invalid argument"]).startswith("Failed to set")
    audio_only = WOLFGANG_INFO.replace("Video: h264", "Data: bin_data")
    with pytest.raises(VisageError, match="no video stream"):
        video.parse_ffmpeg_info(audio_only, "a.mp4")


def test_parse_ffprobe_json():
    data = {"format": {"duration": "2.420000", "tags": {"visage_synthetic": "1"}},
            "streams": [{"codec_type": "video", "codec_name": "mjpeg", "disposition": {"attached_pic": 1}},
                        {"codec_type": "video", "codec_name": "h264", "width": 640, "height": 360,
                         "avg_frame_rate": "30000/1001", "r_frame_rate": "30000/1001",
                         "side_data_list": [{"rotation": 90}]},
                        {"codec_type": "audio", "codec_name": "mp3"}]}
    info = video.parse_ffprobe_json(data)
    assert (info.width, info.height, info.video_codec, info.audio_codec) == (360, 640, "h264", "mp3")
    assert info.fps == pytest.approx(30000 / 1001) and info.frame_count == 73
    assert info.tags == {"visage_synthetic": "1"} and info.has_audio


def test_probe_uses_ffprobe_when_on_path(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "ffprobe"
    fake.parent.mkdir()
    payload = '{"format": {"duration": "2.0"}, "streams": [{"codec_type": "video", "codec_name": "vp9", ' \
              '"width": 320, "height": 240, "avg_frame_rate": "25/1", "r_frame_rate": "25/1"}]}'
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{payload}\nEOF\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    info = video.probe(sample_path("single_face.mp4"), count=False)
    assert (info.video_codec, info.width, info.fps, info.frame_count, info.has_audio) == ("vp9", 320, 25.0, 50, False)


@pytest.mark.parametrize("first_line, recent", [
    ("ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000-2021", False),
    ("ffmpeg version 5.0.3 Copyright", False), ("ffmpeg version 5.1.6-0+deb12u1 Copyright", True),
    ("ffmpeg version n7.1 Copyright", True), ("ffmpeg version N-113007-g8d24a28d06 Copyright", True)])
def test_ffmpeg_is_recent(first_line, recent):
    assert video.ffmpeg_is_recent(first_line + "\nbuilt with gcc") is recent


def test_old_system_ffmpeg_falls_back_to_the_bundled_one(tmp_path, monkeypatch):
    """An ffmpeg without -fps_mode on PATH would fail every extraction: use imageio-ffmpeg's."""
    import imageio_ffmpeg
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000-2021'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    video.ffmpeg_exe.cache_clear()
    try:
        assert video.ffmpeg_exe() == imageio_ffmpeg.get_ffmpeg_exe()
        fake.write_text("#!/bin/sh\necho 'ffmpeg version 6.1.1 Copyright'\n")
        video.ffmpeg_exe.cache_clear()
        assert video.ffmpeg_exe() == str(fake)
    finally:
        video.ffmpeg_exe.cache_clear()


@pytest.mark.parametrize("fps, expected", [(25, "25"), (23.976, "24000/1001"), (23.98, "24000/1001"),
                                           (29.97, "30000/1001"), (59.94, "60000/1001"), (5, "5"),
                                           (12.5, "25/2"), (23.67, "2367/100")])
def test_rate_arg(fps, expected):
    assert video.rate_arg(fps) == expected


def test_parse_time():
    assert video.parse_time("00:01:02.500") == pytest.approx(62.5)
    assert video.parse_time("1:30") == 90 and video.parse_time("2.25") == 2.25 and video.parse_time(3) == 3
    for bad in ("abc", "1:2:3:4", "-1", ""):
        with pytest.raises(VisageError, match="not a time"):
            video.parse_time(bad)


def _value(args: list[str], option: str) -> str:
    return args[args.index(option) + 1]


def test_build_extract_args():
    png = video.build_extract_args("in.mp4", "out/%05d.png")
    assert png[:4] == ["-i", "in.mp4", "-map", "0:v:0"] and png[-1] == "out/%05d.png" and _value(png, "-f") == "image2"
    assert "-vf" not in png and _value(png, "-fps_mode") == "passthrough" and _value(png, "-pix_fmt") == "rgb24"
    jpg = video.build_extract_args("in.mp4", "out/%05d.jpg", fps=5)
    assert _value(jpg, "-vf") == "fps=5" and _value(jpg, "-q:v") == "2" and "rgb24" not in jpg
    assert _value(jpg, "-atomic_writing") == "1"


def test_build_cut_args():
    args = video.build_cut_args("in.mp4", "out.mp4", 1.5, 4.0, audio_track_id=1, bitrate=25)
    assert args[:6] == ["-ss", "1.500", "-t", "2.500", "-i", "in.mp4"] and args[-1] == "out.mp4"
    assert [args[i + 1] for i, a in enumerate(args) if a == "-map"] == ["0:v:0", "0:a:1"]
    assert _value(args, "-b:v") == "25M" and _value(args, "-c:v") == "libx264" and _value(args, "-c:a") == "aac"
    assert "-c:a" not in video.build_cut_args("in.mp4", "o.mp4", 0, 1, audio_track_id=None)


def test_build_denoise_args():
    args = video.build_denoise_args(".jpg", 7, "t/%05d.jpg")
    assert args[args.index("-i") + 1] == "pipe:0" and _value(args, "-f") == "image2pipe"
    assert _value(args, "-c:v") == "mjpeg" and _value(args, "-vf") == "hqdn3d=7:7:5:5" and args[-1] == "t/%05d.jpg"


def test_build_encode_args():
    args = video.build_encode_args("o.mp4", ".png", 23.976, audio_from="ref.mp4", bitrate=16,
                                   metadata={"visage_synthetic": "1"})
    first_input = args[:args.index("-i") + 2]          # the piped frames' own options, then `-i pipe:0`
    assert first_input[-2:] == ["-i", "pipe:0"] and _value(first_input, "-framerate") == "24000/1001"
    assert _value(first_input, "-f") == "image2pipe" and _value(first_input, "-c:v") == "png"
    maps = [args[i + 1] for i, a in enumerate(args) if a == "-map"]
    assert args[len(first_input):len(first_input) + 2] == ["-i", "ref.mp4"] and maps == ["0:v:0", "1:a:0"]
    assert _value(args, "-b:a") == "192k" and _value(args, "-b:v") == "16M" and _value(args, "-pix_fmt") == "yuv420p"
    assert _value(args, "-metadata:g:0") == "visage_synthetic=1" and "+use_metadata_tags" in args
    assert args[-1] == "o.mp4"
    silent = video.build_encode_args("o.mkv", ".jpg", 25, metadata={"k": "v"})
    assert "1:a:0" not in silent and "-movflags" not in silent and "mjpeg" in silent
    codecs = {ext: video.video_codec_args(ext, True, 16) for ext in (".mp4", ".mov", ".avi", ".mkv")}
    assert codecs[".mp4"] == {"c:v": "libx264", "crf": "0", "pix_fmt": "yuv444p"} and codecs[".mov"]["c:v"] == "png"
    assert codecs[".avi"]["c:v"] == codecs[".mkv"]["c:v"] == "ffv1"
    with pytest.raises(VisageError, match="unsupported video type '.gif'"):
        video.video_codec_args(".gif", False, 16)
    with pytest.raises(VisageError, match="invalid metadata key"):
        video.build_encode_args("o.mp4", ".png", 25, metadata={"a=b": "c"})


# ----------------------------------------------------------------------------- real runs
@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A unicode-named folder holding the clips and the frames extracted once for several tests."""
    root = tmp_path_factory.mktemp("v") / "clips_ünï_视频"
    root.mkdir()
    for name in ("single_face.mp4", "WolfgangLanger_Pexels.mp4"):
        shutil.copy(sample_path(name), root / name)
    return root


@pytest.fixture(scope="module")
def frames(work):
    out = work / "frames png"
    count = video.extract_video(work / "single_face.mp4", out, "png")
    return out, count


def test_probe_counts_decoded_frames():
    info = video.probe(sample_path("single_face.mp4"))
    assert (info.width, info.height, info.fps, info.frame_count) == (640, 360, 30.0, 72)
    assert info.frame_count_exact and info.has_audio and info.audio_codec == "mp3"
    # An edit list hides 3 of no_face.mp4's 98 packets: the count must be what a decoder yields.
    assert video.probe(sample_path("no_face.mp4")).frame_count == 95
    with pytest.raises(VisageError, match="video file not found"):
        video.probe("/nonexistent/x.mp4")


def test_extract_full_rate(frames):
    out, count = frames
    names = sorted(p.name for p in out.iterdir())
    assert count == video.probe(sample_path("single_face.mp4")).frame_count == len(names)
    assert names[0] == "00001.png" and names[-1] == f"{count:05d}.png"
    assert read_image(out / "00001.png").shape == (360, 640, 3)


def test_extract_fps_clears_old_frames(work):
    out = work / "fps5"
    out.mkdir()
    (out / "99999.jpg").write_bytes(b"stale")
    (out / "keep.txt").write_text("not a frame")
    count = video.extract_video(work / "single_face.mp4", out, "jpg", fps=5)
    assert abs(count - 2.42 * 5) <= 1 and not (out / "99999.jpg").exists() and (out / "keep.txt").exists()
    assert sorted(p.name for p in out.glob("*.jpg"))[0] == "00001.jpg"
    assert not list(out.glob("*.tmp")) and not list(out.glob(".tmp_*"))


def test_cut_video(work):
    out = video.cut_video(work / "WolfgangLanger_Pexels.mp4", "00:00:01.000", "3", bitrate=5)
    assert out == work / "WolfgangLanger_Pexels_cut.mp4"
    info = video.probe(out)
    assert info.duration == pytest.approx(2.0, abs=0.1) and abs(info.frame_count - 48) <= 1
    assert info.has_audio and info.video_codec == "h264"
    assert not list(work.glob(".tmp_*"))
    with pytest.raises(VisageError, match="must be after"):
        video.cut_video(work / "WolfgangLanger_Pexels.mp4", "3", "1")
    with pytest.raises(VisageError, match="past the end"):
        video.cut_video(work / "WolfgangLanger_Pexels.mp4", "30", "40")
    with pytest.raises(VisageError, match="audio track id must be 0..0"):
        video.cut_video(work / "WolfgangLanger_Pexels.mp4", "0", "1", audio_track_id=2)


def test_denoise_keeps_names_and_sizes(work):
    folder = work / "denoise"
    video.extract_video(work / "single_face.mp4", folder, "jpg", fps=5)
    frames_before = {p.name: read_image(p) for p in folder.glob("*.jpg")}
    assert video.denoise_image_sequence(folder, 12) == len(frames_before)
    after = {p.name: read_image(p) for p in folder.iterdir()}
    assert after.keys() == frames_before.keys()                          # no temp folder left
    diffs = [np.abs(after[n].astype(int) - frames_before[n]).mean() for n in after]
    assert all(after[n].shape == frames_before[n].shape for n in after) and np.mean(diffs) > 0.5
    with pytest.raises(VisageError, match="1..20"):
        video.denoise_image_sequence(folder, 25)


def test_video_from_sequence_round_trip_with_metadata(work, frames):
    out_dir, count = frames
    out = video.video_from_sequence(out_dir, work / "merged.mp4", work / "single_face.mp4",
                                    metadata={"visage_synthetic": "1", "comment": "made with Visage"})
    info = video.probe(out)
    assert (info.frame_count, info.fps, info.width, info.height) == (count, 30.0, 640, 360)
    assert info.has_audio and info.audio_codec == "aac"
    assert info.tags["visage_synthetic"] == "1" and info.tags["comment"] == "made with Visage"


def test_video_from_sequence_reference_without_audio_warns(work, frames, capsys):
    silent = work / "silent.mp4"
    subprocess.run([video.ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(work / "single_face.mp4"),
                    "-an", "-c:v", "copy", str(silent)], check=True)
    out = video.video_from_sequence(frames[0], work / "from_silent.mkv", silent, lossless=True)
    assert "no audio track" in capsys.readouterr().err
    info = video.probe(out)
    assert not info.has_audio and info.frame_count == frames[1] and info.video_codec == "ffv1"


def test_video_from_sequence_bad_frame_leaves_nothing(work, frames):
    bad = work / "bad frames"
    bad.mkdir()
    for i in range(1, 7):
        shutil.copy(frames[0] / f"{i:05d}.png", bad)
    (bad / "00003.png").write_bytes(b"not a png at all")
    with pytest.raises(VisageError, match="could be encoded"):
        video.video_from_sequence(bad, work / "bad.mp4", fps=30)
    assert not (work / "bad.mp4").exists() and not list(work.glob(".tmp_*"))
    with pytest.raises(VisageError, match="input folder not found"):
        video.video_from_sequence(work / "missing", work / "x.mp4")
    with pytest.raises(VisageError, match="no .jpg/.jpeg frames"):
        video.video_from_sequence(frames[0], work / "x.mp4", ext="jpg")
