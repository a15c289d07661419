"""ffmpeg wrappers: probe, frame extraction, cutting, denoising and encoding (parsing: video_info.py).

`build_*` functions build the command lines with ffmpeg-python and are pure (argument lists, no
I/O), so the exact command lines are unit-tested;
`run_ffmpeg` runs one with a progress bar fed by `-progress pipe:1` and turns any failure into one
VisageError line. Outputs are written under a `.tmp_` name beside the target and renamed when
complete, so a failure or Ctrl-C never leaves a half-written video or frame. Every number a caller
passes is checked against its `Option` declaration below before anything is deleted or started,
and a video that yields far fewer frames than it promises is reported (`IncompleteVideo`), its
decoded frames kept. Needs ffmpeg >= 5.1:
a system ffmpeg older than that is passed over for imageio-ffmpeg's. ffprobe's JSON (through
ffmpeg-python's probe) describes a video when ffprobe is on PATH; imageio-ffmpeg ships no ffprobe,
so without it the text of `ffmpeg -i` is parsed (video_info.py).
"""
from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import ffmpeg      # ffmpeg-python: builds the command lines

from core.errors import VisageError
from core.fileio import FILE_MODE, ensure_dir, remove_file, writable_dir, write_error
from core.options import Option
from core.video_info import (VideoInfo, error_reason, parse_ffmpeg_info, parse_ffprobe_json,
                             parse_time, rate_arg)

PIPE_CODECS = {".png": "png", ".jpg": "mjpeg", ".jpeg": "mjpeg", ".bmp": "bmp", ".tif": "tiff",
               ".tiff": "tiff", ".webp": "webp"}
VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi")
MIN_FFMPEG = (5, 1)      # -fps_mode
# The video settings, declared once: videoed's flags and prompts and these functions' checks use them.
FPS = Option("fps", float, 0, "frames per second to extract; 0 = every frame, and so is any rate not below the "
             "video's own", prompt="Enter FPS", lo=0, hi=1000)     # no camera or player goes past 1000
BITRATE = Option("bitrate", float, 25, "video bitrate in MB/s as DeepFaceLab labels it, i.e. ffmpeg's M; higher "
                 "keeps more detail, the file grows with it", prompt="Bitrate of output file in MB/s", lo=0.1, hi=1000)
DENOISE_FACTOR = Option("factor", int, 7, "denoise strength (ffmpeg hqdn3d); higher removes more noise and detail, "
                        "and smooths flicker between frames", prompt="Denoise factor", lo=1, hi=20)
AUDIO_TRACK = Option("audio_track_id", int, 0, "which audio track to keep when the video has several, from 0",
                     prompt="Specify audio track id", lo=0, hi=99)
MISSING_FRAMES_SLACK = 3    # a container's frame count is an estimate (duration x fps): ±1-2 frames is normal


class IncompleteVideo(VisageError):
    """Frames were extracted and kept, but far fewer than the video promises: it is truncated or damaged."""


def ffmpeg_is_recent(version_text: str) -> bool:
    """True when `ffmpeg -version` output names release >= MIN_FFMPEG, or a git build
    ("N-113007-g...", which has no release number and is newer than any release)."""
    m = re.search(r"ffmpeg version n?(\d+)\.(\d+)", version_text)
    return m is None or (int(m[1]), int(m[2])) >= MIN_FFMPEG


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """System ffmpeg when on PATH and recent enough (users may have a faster build), else
    imageio-ffmpeg's binary."""
    exe = shutil.which("ffmpeg")
    if exe:
        try:
            out = subprocess.run([exe, "-version"], capture_output=True, text=True, errors="replace",
                                 timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            out = "ffmpeg version 0.0 (does not run)"
        if ffmpeg_is_recent(out):
            return exe
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as e:
        found = f"the ffmpeg on PATH ({exe}) is older than {'.'.join(map(str, MIN_FFMPEG))} or does not run" \
            if exe else "ffmpeg not found"
        raise VisageError(f"{found}: install a recent ffmpeg or run scripts/setup.sh "
                          "(it installs imageio-ffmpeg)") from e


# ----------------------------------------------------------------------------- builders
# ffmpeg-python builds each command line from a stream graph (inputs, the streams mapped, output
# options); the builders only return the argument list, so the exact commands stay unit-tested and
# `run_ffmpeg` keeps its own process handling (progress, piped frames, Ctrl-C, one-line errors).
# ffmpeg-python writes keyword options in name order; ffmpeg does not mind the order within an input
# or an output.

def _pipe_input(suffix: str, fps: float) -> ffmpeg.nodes.FilterableStream:
    codec = PIPE_CODECS.get(suffix.lower())
    return ffmpeg.input("pipe:0", f="image2pipe", framerate=rate_arg(fps), **({"c:v": codec} if codec else {}))


def _image_out(pattern: str) -> dict[str, str]:
    """Image-sequence output; jpg at q:v 2 like DeepFaceLab, png as 8-bit RGB, each file written atomically."""
    jpg = pattern.lower().endswith((".jpg", ".jpeg"))
    quality = {"q:v": "2"} if jpg else {"pix_fmt": "rgb24", "compression_level": "3"}   # 2.4x faster, +13 % size
    return {"fps_mode": "passthrough", **quality, "atomic_writing": "1", "f": "image2"}


def build_extract_args(input_file: str, pattern: str, fps: float = 0) -> list[str]:
    """One image per decoded frame (fps 0, no duplicates or drops) or a resampled rate."""
    rate = {"vf": f"fps={rate_arg(fps)}"} if fps > 0 else {}
    return ffmpeg.input(input_file)["v:0"].output(pattern, **rate, **_image_out(pattern)).get_args()


def build_cut_args(input_file: str, output_file: str, start: float, end: float,
                   audio_track_id: int | None = 0, bitrate: float = 25) -> list[str]:
    """Frame-accurate cut (input seek + re-encode with libx264), one audio track as aac."""
    src = ffmpeg.input(input_file, ss=f"{start:.3f}", t=f"{end - start:.3f}")
    streams = [src["v:0"]]
    audio = {}
    if audio_track_id is not None:
        streams.append(src[f"a:{audio_track_id}"])
        audio = {"c:a": "aac", "b:a": "192k"}
    return ffmpeg.output(*streams, output_file, **{"c:v": "libx264", "b:v": f"{bitrate:g}M", "pix_fmt": "yuv420p"},
                         **audio).get_args()


def build_denoise_args(suffix: str, factor: int, pattern: str) -> list[str]:
    """Frames piped in order through hqdn3d (spatial = factor, temporal 5) into a numbered sequence."""
    return _pipe_input(suffix, 25)["v:0"].output(pattern, vf=f"hqdn3d={factor}:{factor}:5:5",
                                                 **_image_out(pattern)).get_args()


def video_codec_args(suffix: str, lossless: bool, bitrate: float) -> dict[str, str]:
    """Codec options per container. Lossless: mp4 -> libx264 crf 0 (4:4:4), mov -> png (RGB, editors read
    it), avi/mkv -> ffv1. Otherwise libx264 at `bitrate` Mbit/s, yuv420p, padded to even size for players."""
    suffix = suffix.lower()
    if suffix not in VIDEO_EXTS:
        raise VisageError(f"unsupported video type '{suffix}': use one of {', '.join(VIDEO_EXTS)}")
    if lossless:
        return {".mp4": {"c:v": "libx264", "crf": "0", "pix_fmt": "yuv444p"},
                ".mov": {"c:v": "png", "pix_fmt": "rgb24"}}.get(suffix, {"c:v": "ffv1", "level": "3"})
    return {"vf": "pad=ceil(iw/2)*2:ceil(ih/2)*2", "c:v": "libx264", "b:v": f"{bitrate:g}M", "pix_fmt": "yuv420p"}


# Keys ffmpeg's AVI muxer keeps (RIFF INFO: ICMT, INAM, IART, ...); it silently drops any other key.
_AVI_KEYS = ("comment", "title", "artist", "copyright", "date", "genre", "language", "album", "track",
             "encoded_by")


def _avi_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """AVI has no custom tags: keys it would drop are folded into the comment as `key=value`
    (so the synthetic-media label's machine-readable keys survive in an .avi too)."""
    kept = {k: v for k, v in metadata.items() if k.lower() in _AVI_KEYS}
    comment = kept.get("comment", "")
    extra = [f"{k}={v}" for k, v in metadata.items() if k.lower() not in _AVI_KEYS and v != comment]
    if extra:
        kept["comment"] = "; ".join(([comment] if comment else []) + extra)
    return kept


def build_encode_args(output_file: str, frame_suffix: str, fps: float, audio_from: str | None = None,
                      lossless: bool = False, bitrate: float = 16,
                      metadata: dict[str, str] | None = None) -> list[str]:
    """Piped frames -> video; audio (aac 192k) from `audio_from`; `metadata` as container tags.

    Each tag is its own global `-metadata:g:N key=value` (ffmpeg-python takes one value per option name)."""
    suffix = Path(output_file).suffix.lower()
    streams = [_pipe_input(frame_suffix, fps)["v:0"]]
    options = video_codec_args(suffix, lossless, bitrate)
    if audio_from:
        streams.append(ffmpeg.input(audio_from)["a:0"])
        options.update({"c:a": "aac", "b:a": "192k"})
    if metadata and suffix == ".avi":
        metadata = _avi_metadata(metadata)
    for i, (key, value) in enumerate((metadata or {}).items()):
        if not key or "=" in key:
            raise VisageError(f"invalid metadata key '{key}'")
        options[f"metadata:g:{i}"] = f"{key}={value}"
    if metadata and suffix in (".mp4", ".mov"):
        options["movflags"] = "+use_metadata_tags"   # keeps custom keys in mp4/mov
    return ffmpeg.output(*streams, output_file, **options).get_args()


# ----------------------------------------------------------------------------- runners
def run_ffmpeg(args: list[str], what: str, total: int | None = None, desc: str | None = None,
               feed: list[Path] | None = None) -> dict[str, str]:
    """Run ffmpeg with `args`; progress from `-progress pipe:1`; any failure -> one VisageError line.

    `feed`: files whose bytes are written to ffmpeg's stdin in order (image2pipe input).
    Returns the last progress record (e.g. 'frame' = frames written)."""
    from tqdm import tqdm
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
           "-progress", "pipe:1", "-y", *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if feed is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err_tail: collections.deque[str] = collections.deque(maxlen=20)
    feed_errors: list[OSError] = []

    def feeder() -> None:
        try:
            for f in feed:
                proc.stdin.write(f.read_bytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass                            # ffmpeg stopped early; its own error is reported
        except OSError as e:
            feed_errors.append(e)
            proc.kill()
    threads = [threading.Thread(target=lambda: err_tail.extend(
        ln.decode("utf-8", "replace").rstrip() for ln in proc.stderr), daemon=True)]
    if feed is not None:
        threads.append(threading.Thread(target=feeder, daemon=True))
    for t in threads:
        t.start()
    state: dict[str, str] = {}
    bar = tqdm(total=total or None, desc=desc, unit="frame", disable=desc is None, dynamic_ncols=True)
    try:
        for raw in proc.stdout:
            key, _, value = raw.decode("utf-8", "replace").strip().partition("=")
            state[key] = value
            if key == "frame" and value.isdigit():
                bar.update(int(value) - bar.n)
        if proc.wait() == 0:
            bar.total = bar.n               # the total was an estimate
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        bar.close()
        for t in threads:
            t.join(timeout=5)
    if feed_errors:
        raise VisageError(f"could not read a frame while {what}: {feed_errors[0]}")
    if proc.returncode in (255, -2):        # ffmpeg's exit after Ctrl-C / SIGINT
        raise KeyboardInterrupt
    if proc.returncode != 0:
        reason = error_reason(err_tail) if err_tail else f"exit code {proc.returncode}"
        raise VisageError(f"ffmpeg failed while {what}: {reason}")
    state["errors"] = "\n".join(err_tail)
    return state


@contextmanager
def _staged(target: Path) -> Iterator[Path]:
    """Yield a temp path beside `target` (same suffix); rename onto `target` only on success."""
    ensure_dir(target.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=target.suffix, dir=target.parent)
    except OSError as e:
        raise write_error(target, e) from e
    os.close(fd)
    try:
        os.chmod(tmp, FILE_MODE)
        yield Path(tmp)
        try:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as e:
            raise write_error(target, e) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _require_file(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise VisageError(f"{what} not found: {p}")
    return p


def count_frames(path: str | os.PathLike) -> int:
    """Exact number of frames a decoder yields (what extraction writes). Decoding is needed:
    container packet counts include frames an edit list hides (no_face.mp4: 98 packets, 95 frames)."""
    args = ffmpeg.input(str(path))["v:0"].output("-", fps_mode="passthrough", f="null").get_args()
    state = run_ffmpeg(args, f"counting frames of {path}")
    return int(state.get("frame") or 0)


def probe(path: str | os.PathLike, count: bool = True) -> VideoInfo:
    """Describe a video (ffprobe JSON when on PATH, else `ffmpeg -i`); `count` decodes for an exact frame_count."""
    src = _require_file(path, "video file")
    ffprobe = shutil.which("ffprobe")
    if ffprobe:
        try:
            data = ffmpeg.probe(str(src), cmd=ffprobe)
        except ffmpeg.Error as e:
            err = e.stderr.decode("utf-8", "replace").strip().splitlines() or ["unknown error"]
            raise VisageError(f"ffprobe cannot read {src}: {err[-1]}") from None
        except json.JSONDecodeError:
            raise VisageError(f"ffprobe gave no readable description of {src}") from None
        info = parse_ffprobe_json(data, str(src))
    else:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(src)],
                              capture_output=True, stdin=subprocess.DEVNULL)
        info = parse_ffmpeg_info(proc.stderr.decode("utf-8", "replace"), str(src))
    if count:
        info.frame_count, info.frame_count_exact = count_frames(src), True
    return info


def extract_video(input_file: str | os.PathLike, output_dir: str | os.PathLike, ext: str = "png",
                  fps: float = 0) -> int:
    """Video -> output_dir/00001.ext...; old .ext frames are cleared first (as DeepFaceLab does).
    Frames appear atomically, so an interrupted run keeps only complete frames. Returns the count;
    IncompleteVideo (frames kept) when the video yields far fewer frames than its container promises."""
    src = _require_file(input_file, "input video")
    ext = ext.lower().lstrip(".")
    if ext not in ("png", "jpg"):
        raise VisageError(f"output type must be png or jpg, not '{ext}'")
    fps = FPS.parse(fps)
    info = probe(src, count=False)          # before anything is deleted: an unreadable video changes nothing
    fps = _extraction_rate(src, fps, info)
    out = writable_dir(output_dir)
    for old in out.iterdir():
        if old.is_file() and old.suffix.lower() == f".{ext}":
            remove_file(old)
    total = round(info.duration * fps) if fps > 0 else info.frame_count
    pattern = str(out).replace("%", "%%") + os.sep + f"%05d.{ext}"
    try:
        state = run_ffmpeg(build_extract_args(str(src), pattern, fps), f"extracting frames from {src}", total,
                           f"Extracting {src.name}")
    finally:
        for leftover in out.glob(f"*.{ext}.tmp"):
            leftover.unlink(missing_ok=True)
    count = sum(1 for p in out.iterdir() if p.suffix.lower() == f".{ext}")
    if count < total - MISSING_FRAMES_SLACK:
        reason = f" ({error_reason(state['errors'].splitlines())})" if state["errors"] else ""
        raise IncompleteVideo(f"{src.name} is truncated or damaged: only {count} of the {total} frames it promises "
                              f"could be decoded{reason}; the {count} decoded frames are kept in {out}")
    return count


def _extraction_rate(src: Path, fps: float, info: VideoInfo) -> float:
    """`fps` for extraction: 0 (every frame) when it is 0 or not below the source's own rate."""
    from core import interact
    if fps > 0 and info.fps <= 0:
        raise VisageError(f"cannot tell the frame rate of {src.name}; extract every frame with --fps 0")
    if fps >= info.fps > 0:
        interact.log_info(f"{fps:g} fps is not below the {info.fps:g} fps of {src.name}: extracting every frame")
        return 0.0
    return fps


def cut_video(input_file: str | os.PathLike, from_time: str | float, to_time: str | float,
              audio_track_id: int = 0, bitrate: float = 25) -> Path:
    """Re-encode [from_time, to_time) to `<stem>_cut<ext>` beside the input; returns that path."""
    src = _require_file(input_file, "input video")
    start, end = parse_time(from_time), parse_time(to_time)
    bitrate = BITRATE.parse(bitrate)
    audio_track_id = AUDIO_TRACK.parse(audio_track_id)
    if end <= start:
        raise VisageError(f"end time {to_time} must be after start time {from_time}")
    info = probe(src, count=False)
    if info.duration and start >= info.duration:
        raise VisageError(f"start time {from_time} is past the end of {src.name} ({info.duration:.2f} s)")
    end = min(end, info.duration or end)
    track: int | None = audio_track_id if info.audio_tracks else None
    if track is not None and not 0 <= track < info.audio_tracks:
        raise VisageError(f"{src.name} has {info.audio_tracks} audio track(s); "
                          f"audio track id must be 0..{info.audio_tracks - 1}")
    suffix = src.suffix if src.suffix.lower() in VIDEO_EXTS + (".m4v",) else ".mp4"
    target = src.with_name(f"{src.stem}_cut{suffix}")
    with _staged(target) as tmp:
        run_ffmpeg(build_cut_args(str(src), str(tmp), start, end, track, bitrate), f"cutting {src}",
                   round((end - start) * info.fps), f"Cutting {src.name}")
    return target


def _frames(input_dir: str | os.PathLike, exts: Iterable[str] | None = None) -> list[Path]:
    from core.fileio import IMAGE_EXTS
    from core.frame_sequence import list_frames
    files = list_frames(input_dir, tuple(exts) if exts else IMAGE_EXTS, sequence=True)
    if not files:
        kinds = "/".join(exts) if exts else "image"
        raise VisageError(f"no {kinds} frames in {input_dir}: check the folder and the extension")
    return files


def denoise_image_sequence(input_dir: str | os.PathLike, factor: int = 7) -> int:
    """Temporal+spatial denoise (hqdn3d) of a frame folder; each file is replaced atomically, names kept."""
    factor = DENOISE_FACTOR.parse(factor)
    files = _frames(input_dir)
    suffixes = {f.suffix.lower() for f in files}
    if len(suffixes) > 1:
        raise VisageError(f"{input_dir} mixes image types {sorted(suffixes)}: keep one type of frame")
    suffix = files[0].suffix
    try:
        tmp_dir = Path(tempfile.mkdtemp(prefix=".tmp_denoise_", dir=input_dir))
    except OSError as e:
        raise write_error(input_dir, e) from e
    try:
        pattern = str(tmp_dir).replace("%", "%%") + os.sep + f"%05d{suffix}"
        run_ffmpeg(build_denoise_args(suffix, factor, pattern), f"denoising {input_dir}",
                   len(files), "Denoising", feed=files)
        outs = sorted(tmp_dir.glob(f"*{suffix}"))
        if len(outs) != len(files):
            raise VisageError(f"denoising {input_dir} produced {len(outs)} of {len(files)} frames; "
                              "a frame may be corrupt (originals are untouched)")
        for new, old in zip(outs, files):
            os.replace(new, old)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return len(files)


def frames_are_labelled(files: list[Path]) -> bool:
    """Whether a frame sequence is merged (synthetic) output: its first frame is a PNG carrying the
    synthetic-media label (core.synthetic_label). Decided here, inside video_from_sequence, rather than
    in a CLI so that every caller (`videoed video-from-sequence`, the step 8 scripts, the demo) labels
    the video without having to remember to. Only the first frame is read: the merger labels every
    frame it writes, so a merged folder's first frame is labelled, and reading one file keeps this
    free. JPG frames cannot carry the PNG label, so a JPG sequence is never labelled."""
    if not files or files[0].suffix.lower() != ".png":
        return False
    from core.synthetic_label import is_labelled_png
    try:
        return is_labelled_png(files[0].read_bytes())
    except (OSError, VisageError):
        return False                        # unreadable / not really a PNG: the encoder reports it


def video_from_sequence(input_dir: str | os.PathLike, output_file: str | os.PathLike,
                        reference_file: str | os.PathLike | None = None, ext: str = "png",
                        fps: float | None = None, bitrate: float = 16, include_audio: bool = True,
                        lossless: bool = False, metadata: dict[str, str] | None = None) -> Path:
    """Frames (natural order) -> video. fps: explicit `fps`, else the reference's, else 25. Audio comes
    from the reference when asked and present (never trimmed: every frame is kept); a reference without
    audio gives a warning and the video is still written. Merged (labelled) frames give a labelled
    video whatever `metadata` says: see frames_are_labelled."""
    from core import interact
    fps = FPS.parse(fps) if fps is not None else None
    bitrate = BITRATE.parse(bitrate)
    ext = ext.lower().lstrip(".")
    files = _frames(input_dir, (f".{ext}",) + ((".jpeg",) if ext == "jpg" else ()))
    if frames_are_labelled(files):
        from core.synthetic_label import video_metadata
        metadata = {**(metadata or {}), **video_metadata()}     # the label wins over a caller's keys
    target = Path(output_file)
    video_codec_args(target.suffix, lossless, bitrate)          # fail early on a bad extension
    ref = probe(_require_file(reference_file, "reference video"), count=False) if reference_file else None
    rate = fps if fps and fps > 0 else (ref.fps if ref and ref.fps > 0 else 25.0)
    audio_from = None
    if ref and include_audio:
        if ref.has_audio:
            audio_from = str(reference_file)
        else:
            interact.log_warn(f"reference {reference_file} has no audio track; writing {target.name} without sound")
    with _staged(target) as tmp:
        args = build_encode_args(str(tmp), files[0].suffix, rate, audio_from, lossless, bitrate, metadata)
        state = run_ffmpeg(args, f"writing {target}", len(files), f"Encoding {target.name}", feed=files)
        written = int(state.get("frame") or 0)
        if written != len(files):
            reason = error_reason(state["errors"].splitlines()) if state["errors"] else "unreadable frame"
            raise VisageError(f"only {written} of {len(files)} frames from {input_dir} could be encoded "
                              f"({reason}); {target.name} was not written")
    return target
