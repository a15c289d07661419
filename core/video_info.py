"""What a video is (size, rate, length, audio, tags), read from ffmpeg's or ffprobe's output.

Pure parsing, no processes: core/video.py runs the tools and hands their text here, so every
quirk (VFR rates, NTSC fractions, rotation, attached cover pictures, multi-line tags) is
unit-tested on captured output.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable

from core.errors import VisageError


@dataclass
class VideoInfo:
    """What the commands need to know about a video; width/height are as displayed (rotation applied)."""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    frame_count: int = 0
    duration: float = 0.0
    has_audio: bool = False
    audio_codec: str | None = None
    video_codec: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    audio_tracks: int = 0
    frame_count_exact: bool = False   # False: duration × fps estimate, True: counted by decoding


def _parse_rate(text: str | None) -> float:
    """'30', '23.98', '1k', '30000/1001' -> float; anything unusable -> 0."""
    text = (text or "").strip()
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den) if float(den) else 0.0
        return float(text[:-1]) * 1000 if text.endswith("k") else float(text)
    except ValueError:
        return 0.0


MIN_RATE = 0.001             # ffmpeg rates are fractions with a denominator of at most 1000 here


def _usable_rate(fps: float) -> bool:
    return math.isfinite(fps) and fps >= MIN_RATE


def rate_arg(fps: float) -> str:
    """fps as the exact rational ffmpeg wants: 23.976/23.98 -> '24000/1001', 25.0 -> '25'."""
    if not _usable_rate(fps):
        raise VisageError(f"frame rate must be a finite number of at least {MIN_RATE}, got {fps}")
    if float(fps).is_integer():
        return str(int(fps))
    ntsc = round(fps * 1.001)
    if abs(ntsc * 1000 / 1001 - fps) < 0.006 and abs(ntsc - fps) > 0.006:
        return f"{ntsc * 1000}/1001"
    frac = Fraction(fps).limit_denominator(1000)
    return str(frac.numerator) if frac.denominator == 1 else f"{frac.numerator}/{frac.denominator}"


def _choose_fps(avg: float, nominal: float) -> float:
    """The nominal rate when the stream is constant-rate (exact), else the true average (VFR)."""
    if avg > 0 and nominal > 0 and abs(avg - nominal) / nominal < 0.005:
        avg = nominal
    fps = avg or nominal
    return float(Fraction(rate_arg(fps))) if _usable_rate(fps) else 0.0


def parse_time(value: str | float) -> float:
    """'HH:MM:SS.mmm', 'MM:SS', '12.5' or a number -> seconds (finite, not negative)."""
    try:
        parts = [float(p) for p in str(value).strip().split(":")]
        seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
        if not 1 <= len(parts) <= 3 or not all(p >= 0 for p in parts) or not math.isfinite(seconds):
            raise ValueError
    except ValueError:
        raise VisageError(f"'{value}' is not a time: use HH:MM:SS.mmm or seconds") from None
    return seconds


def _finish(info: VideoInfo, avg: float, nominal: float, rotation: float) -> VideoInfo:
    if round(abs(rotation)) % 180 == 90:
        info.width, info.height = info.height, info.width
    info.fps = _choose_fps(avg, nominal)
    info.has_audio = info.audio_tracks > 0
    info.frame_count = round(info.duration * info.fps)
    return info


_GENERIC = re.compile(r"^(Error opening (input|output) files?|Error parsing options|Conversion failed|Exiting)")


def error_reason(lines: Iterable[str]) -> str:
    """The most telling line of ffmpeg's error output: '[demuxer @ 0x..]' prefixes dropped,
    generic trailers ('Error opening output files: ...') skipped when a specific line exists."""
    cleaned = [re.sub(r"^\[[^\]]*\]\s*", "", ln).strip() for ln in lines]
    cleaned = [ln for ln in cleaned if ln]
    specific = [ln for ln in cleaned if not _GENERIC.match(ln)]
    return (specific or cleaned or ["no error message"])[-1]


_STREAM = re.compile(r"^\s+Stream #\d+:\d+.*?: (Video|Audio|Subtitle|Data|Attachment): (.*)$")


def parse_ffmpeg_info(text: str, path: str = "") -> VideoInfo:
    """Parse the stderr of `ffmpeg -i FILE` (first input); frame_count is an estimate."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("Input #0")), None)
    if start is None:
        raise VisageError(f"ffmpeg cannot read {path or 'the input'}: {error_reason(lines)}")
    info, avg, nominal, rotation = VideoInfo(), 0.0, 0.0, 0.0
    meta_indent, last_key, in_video = None, None, False
    for ln in lines[start + 1:]:
        indent = len(ln) - len(ln.lstrip())
        if indent == 0:
            break
        body = ln.strip()
        if meta_indent is not None and indent >= meta_indent + 2 and ":" in body:
            key, _, value = body.partition(":")   # a continuation line has an empty key
            value = value[1:] if value.startswith(" ") else value
            if key.strip():
                last_key = key.strip()
                info.tags[last_key] = value
            elif last_key:
                info.tags[last_key] += "\n" + value
            continue
        meta_indent = None
        if body == "Metadata:" and indent == 2:
            meta_indent = indent
        elif body.startswith("Duration:"):
            m = re.match(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", body)
            info.duration = parse_time(":".join(m.groups())) if m else 0.0
        elif m := _STREAM.match(ln):
            kind, desc = m.groups()
            in_video = False
            if kind == "Audio":
                info.audio_tracks += 1
                info.audio_codec = info.audio_codec or desc.split()[0].rstrip(",")
            elif kind == "Video" and info.video_codec is None and "(attached pic)" not in desc:
                in_video = True
                tokens = re.split(r", (?![^()]*\))", desc)   # ', ' outside parentheses
                info.video_codec = tokens[0].split()[0]
                for tok in tokens[1:]:
                    if (size := re.match(r"(\d+)x(\d+)", tok)) and not info.width:
                        info.width, info.height = int(size[1]), int(size[2])
                    elif tok.endswith(" fps"):
                        avg = _parse_rate(tok[:-4])
                    elif tok.endswith(" tbr"):
                        nominal = _parse_rate(tok[:-4])
        elif in_video and (rot := re.search(r"rotation of (-?[\d.]+) degrees", body)):
            rotation = float(rot[1])
    if info.video_codec is None:
        raise VisageError(f"{path or 'the input'} has no video stream")
    return _finish(info, avg, nominal, rotation)


def parse_ffprobe_json(data: dict, path: str = "") -> VideoInfo:
    """Parse `ffprobe -show_format -show_streams -of json` output; frame_count is an estimate."""
    streams = data.get("streams", [])
    videos = [s for s in streams if s.get("codec_type") == "video"
              and not s.get("disposition", {}).get("attached_pic")]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        raise VisageError(f"{path or 'the input'} has no video stream")
    v, fmt = videos[0], data.get("format", {})
    info = VideoInfo(width=int(v.get("width", 0)), height=int(v.get("height", 0)),
                     video_codec=v.get("codec_name"), audio_tracks=len(audios),
                     audio_codec=audios[0].get("codec_name") if audios else None,
                     tags={str(k): str(val) for k, val in fmt.get("tags", {}).items()})
    info.duration = float(fmt.get("duration") or v.get("duration") or 0.0)
    rotation = float(v.get("tags", {}).get("rotate", 0) or 0)
    for side in v.get("side_data_list", []):
        rotation = float(side.get("rotation", rotation))
    return _finish(info, _parse_rate(v.get("avg_frame_rate")), _parse_rate(v.get("r_frame_rate")), rotation)
