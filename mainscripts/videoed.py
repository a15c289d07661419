"""`videoed`: DeepFaceLab's video tools (extract frames, cut, denoise frames, frames -> video).

Flags mirror DeepFaceLab's `main.py videoed ...`; every option left off the command line is
asked with core.interact (defaults taken silently when not on a terminal), so the numbered
scripts can pass only the paths. The work itself lives in core/video.py.
"""
from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path

from core.video import AUDIO_TRACK, BITRATE, DENOISE_FACTOR, FPS

BOOL = argparse.BooleanOptionalAction


def register(subparsers: "argparse._SubParsersAction", parent: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("videoed", help="video tools: extract-video, cut-video, "
                              "denoise-image-sequence, video-from-sequence")
    sub = p.add_subparsers(dest="videoed_command", required=True, metavar="TOOL")

    def tool(name: str, help_text: str, func) -> argparse.ArgumentParser:
        t = sub.add_parser(name, parents=[parent], help=help_text, description=help_text)
        t.set_defaults(func=func)
        return t

    t = tool("extract-video", "Extract the frames of a video as numbered images (00001.png ...).", _extract)
    t.add_argument("--input-file", required=True, help="video file; 'name.*' = first file named name.<any ext>")
    t.add_argument("--output-dir", required=True, help="folder for the frames (old frames of that type are deleted)")
    t.add_argument("--output-ext", choices=("png", "jpg"), help="frame image type (asked; default png)")
    t.add_argument("--fps", type=FPS, help="frames per second to extract; 0 = every frame, and so is any rate "
                   "not below the video's own (asked; default 0)")

    t = tool("cut-video", "Cut a piece of a video to <name>_cut<ext> beside it.", _cut)
    t.add_argument("--input-file", required=True, help="video file; 'name.*' = first match")
    t.add_argument("--from-time", help="start, HH:MM:SS.mmm or seconds (asked; default 00:00:00.000)")
    t.add_argument("--to-time", help="end, HH:MM:SS.mmm or seconds (asked; default the end of the video)")
    t.add_argument("--audio-track-id", type=AUDIO_TRACK, help="which audio track to keep, from 0 (asked; default 0)")
    t.add_argument("--bitrate", type=BITRATE, help="video bitrate in MB/s as DeepFaceLab labels it, "
                   "i.e. ffmpeg's M (asked; default 25)")

    t = tool("denoise-image-sequence", "Denoise a folder of frames in place (ffmpeg hqdn3d).", _denoise)
    t.add_argument("--input-dir", required=True, help="folder of frames, e.g. workspace/data_dst")
    t.add_argument("--factor", type=DENOISE_FACTOR, help="denoise strength 1..20 (asked; default 7)")

    # Merged (labelled PNG) frames always give a video labelled as synthetic media in its container
    # metadata; core.video.video_from_sequence decides it, so every caller gets it (no flag to turn it off).
    t = tool("video-from-sequence", "Encode a folder of frames to a video, with the reference's fps and audio. "
             "Merged frames give a video labelled as synthetic media.", _encode)
    t.add_argument("--input-dir", required=True, help="folder of frames, e.g. workspace/data_dst/merged")
    t.add_argument("--output-file", required=True, help="video to write (.mp4, .mov, .mkv or .avi)")
    t.add_argument("--reference-file", help="original video: gives the fps and the audio; 'name.*' = first match")
    t.add_argument("--ext", help="frame image type to read (asked; default png)")
    t.add_argument("--fps", type=FPS, help="frame rate when there is no reference (asked; default 25); "
                   "overrides the reference's when given")
    t.add_argument("--bitrate", type=BITRATE, help="video bitrate in MB/s, i.e. ffmpeg's M (asked; default 16)")
    t.add_argument("--include-audio", action=BOOL, help="copy the reference's audio (asked; default yes)")
    t.add_argument("--lossless", action=BOOL, help="lossless codec: mp4 libx264 crf 0, mov png, "
                   "avi/mkv ffv1 (asked; default no)")


def resolve_input_file(spec: str | Path) -> Path:
    """A path, or 'folder/name.*' style pattern meaning the first matching file (DeepFaceLab's data_src.*)."""
    from core.errors import VisageError
    from core.fileio import natural_key
    path = Path(spec)
    if not any(ch in path.name for ch in "*?["):
        if not path.is_file():
            raise VisageError(f"input file not found: {path}")
        return path
    folder = path.parent
    matches = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".tmp_")
                      and fnmatch.fnmatch(p.name, path.name)), key=lambda p: natural_key(p.name)) \
        if folder.is_dir() else []
    if not matches:
        raise VisageError(f"no file matches {path}: put the video there (e.g. {folder / 'data_src.mp4'})")
    return matches[0]


def _format_time(seconds: float) -> str:
    minutes, sec = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes // 60):02d}:{int(minutes % 60):02d}:{sec:06.3f}"


def _extract(args: argparse.Namespace) -> int:
    from core import interact, video
    src = resolve_input_file(args.input_file)
    ext = args.output_ext or interact.input_choice(
        "Output image format", "png", ("png", "jpg"),
        help_text="png is lossless but bigger; jpg is smaller and faster to read, with slight artefacts")
    fps = args.fps if args.fps is not None else interact.input_float(
        "Enter FPS", 0, FPS.range,
        help_text="How many frames of every second of the video to extract. 0 = every frame (full fps)")
    try:
        count = video.extract_video(src, args.output_dir, ext, fps)
    except video.IncompleteVideo as e:        # frames kept: reported like extract's unreadable frames
        interact.log_err(str(e))
        return 1
    interact.log_info(f"Extracted {count} frames from {src.name} to {args.output_dir}")
    return 0


def _cut(args: argparse.Namespace) -> int:
    from core import interact, video
    src = resolve_input_file(args.input_file)
    start = args.from_time if args.from_time is not None else interact.input_str(
        "From time", "00:00:00.000", help_text="Start of the piece to keep, HH:MM:SS.mmm or seconds")
    end = args.to_time
    if end is None:
        end = interact.input_str("To time", _format_time(video.probe(src, count=False).duration),
                                 help_text="End of the piece to keep, HH:MM:SS.mmm or seconds")
    track = args.audio_track_id if args.audio_track_id is not None else interact.input_int(
        "Specify audio track id", 0, AUDIO_TRACK.range,
        help_text="Which audio track to keep when the video has several")
    bitrate = args.bitrate if args.bitrate is not None else interact.input_float(
        "Bitrate of output file in MB/s", 25, BITRATE.range,
        help_text="Higher keeps more detail for face extraction; the file grows with it")
    out = video.cut_video(src, start, end, track, bitrate)
    interact.log_info(f"Wrote {out}")
    return 0


def _denoise(args: argparse.Namespace) -> int:
    from core import interact, video
    factor = args.factor if args.factor is not None else interact.input_int(
        "Denoise factor", 7, DENOISE_FACTOR.range,
        help_text="1..20. Higher removes more noise (and detail); it smooths flicker between frames too")
    count = video.denoise_image_sequence(args.input_dir, factor)
    interact.log_info(f"Denoised {count} frames in {args.input_dir}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from core import interact, video
    ref = resolve_input_file(args.reference_file) if args.reference_file else None
    ext = args.ext or interact.input_str("Input image format (extension)", "png",
                                         help_text="Type of the frames to read: png or jpg")
    lossless = args.lossless if args.lossless is not None else interact.input_bool(
        "Use lossless codec", False,
        help_text="mp4: libx264 crf 0 (4:4:4, for editing; some players refuse it), mov: png, avi/mkv: ffv1")
    fps = args.fps
    if fps is None and ref is None:
        fps = interact.input_float("Enter FPS", 25, FPS.range, help_text="Frame rate of the video")
    bitrate = args.bitrate if args.bitrate is not None or lossless else interact.input_float(
        "Bitrate of output file in MB/s", 16, BITRATE.range, help_text="Higher = better quality, bigger file")
    audio = args.include_audio
    if audio is None:
        audio = ref is not None and interact.input_bool(
            "Include audio from the reference video", True, help_text="Copy the sound of the original video")
    out = video.video_from_sequence(args.input_dir, args.output_file, ref, ext, fps,
                                    bitrate if bitrate is not None else 16, audio, lossless)
    interact.log_info(f"Wrote {out}")
    return 0
