"""`videoed`: DeepFaceLab's video tools (extract frames, cut, denoise frames, frames -> video).

Flags mirror DeepFaceLab's `main.py videoed ...`; each tool's settings are one option schema
(flags, `--opt`, `--config`, prompts): every option left off the command line is asked with
core.interact (defaults taken silently when not on a terminal), so the numbered scripts can
pass only the paths. The work itself lives in core/video.py.
"""
from __future__ import annotations

import argparse
import fnmatch
from dataclasses import replace
from pathlib import Path

from core.options import Option, Settings, add_flags
from core.video import AUDIO_TRACK, BITRATE, DENOISE_FACTOR, FPS

# Each tool's settings (the paths stay plain flags). Same names as DeepFaceLab's prompts.
EXTRACT = (Option("output_ext", str, "png", "frame image type: png is lossless but bigger; jpg is smaller and "
                  "faster to read, with slight artefacts", prompt="Output image format", choices=("png", "jpg")),
           FPS)
CUT = (Option("from_time", str, "00:00:00.000", "start of the piece to keep, HH:MM:SS.mmm or seconds",
              prompt="From time"),
       Option("to_time", str, "", "end of the piece to keep, HH:MM:SS.mmm or seconds (default: the end of the video)",
              prompt="To time"),
       AUDIO_TRACK, BITRATE)
DENOISE = (DENOISE_FACTOR,)
ENCODE = (Option("ext", str, "png", "frame image type to read: png or jpg", prompt="Input image format (extension)"),
          Option("lossless", bool, False, "lossless codec: mp4 libx264 crf 0 (4:4:4, for editing; some players "
                 "refuse it), mov png, avi/mkv ffv1", prompt="Use lossless codec"),
          replace(FPS, default=25.0, help="frame rate when there is no reference; overrides the reference's when "
                  "given"),
          replace(BITRATE, default=16.0, help="video bitrate in MB/s, i.e. ffmpeg's M; higher = better quality, "
                  "bigger file (not used by a lossless codec)"),
          Option("include_audio", bool, True, "copy the reference video's audio", prompt="Include audio from the "
                 "reference video"))


def register(subparsers: "argparse._SubParsersAction", parent: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("videoed", help="video tools: extract-video, cut-video, "
                              "denoise-image-sequence, video-from-sequence")
    sub = p.add_subparsers(dest="videoed_command", required=True, metavar="TOOL")

    def tool(name: str, help_text: str, func, schema: tuple[Option, ...]) -> argparse.ArgumentParser:
        t = sub.add_parser(name, parents=[parent], help=help_text, description=help_text)
        t.set_defaults(func=func, schema=schema)
        return t

    t = tool("extract-video", "Extract the frames of a video as numbered images (00001.png ...).", _extract, EXTRACT)
    t.add_argument("--input-file", required=True, help="video file; 'name.*' = first file named name.<any ext>")
    t.add_argument("--output-dir", required=True, help="folder for the frames (old frames of that type are deleted)")
    add_flags(t, EXTRACT)

    t = tool("cut-video", "Cut a piece of a video to <name>_cut<ext> beside it.", _cut, CUT)
    t.add_argument("--input-file", required=True, help="video file; 'name.*' = first match")
    add_flags(t, CUT)

    t = tool("denoise-image-sequence", "Denoise a folder of frames in place (ffmpeg hqdn3d).", _denoise, DENOISE)
    t.add_argument("--input-dir", required=True, help="folder of frames, e.g. workspace/data_dst")
    add_flags(t, DENOISE)

    # Merged (labelled PNG) frames always give a video labelled as synthetic media in its container
    # metadata; core.video.video_from_sequence decides it, so every caller gets it (no flag to turn it off).
    t = tool("video-from-sequence", "Encode a folder of frames to a video, with the reference's fps and audio. "
             "Merged frames give a video labelled as synthetic media.", _encode, ENCODE)
    t.add_argument("--input-dir", required=True, help="folder of frames, e.g. workspace/data_dst/merged")
    t.add_argument("--output-file", required=True, help="video to write (.mp4, .mov, .mkv or .avi)")
    t.add_argument("--reference-file", help="original video: gives the fps and the audio; 'name.*' = first match")
    add_flags(t, ENCODE)


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
    opts = Settings.from_args(args, args.schema)
    try:
        count = video.extract_video(src, args.output_dir, opts["output_ext"], opts["fps"])
    except video.IncompleteVideo as e:        # frames kept: reported like extract's unreadable frames
        interact.log_err(str(e))
        return 1
    interact.log_info(f"Extracted {count} frames from {src.name} to {args.output_dir}")
    return 0


def _cut(args: argparse.Namespace) -> int:
    from core import interact, video
    src = resolve_input_file(args.input_file)
    opts = Settings.from_args(args, args.schema)
    start = opts["from_time"]
    end = opts.get("to_time", None if "to_time" in opts.given else _format_time(video.probe(src, count=False).duration))
    out = video.cut_video(src, start, end, opts["audio_track_id"], opts["bitrate"])
    interact.log_info(f"Wrote {out}")
    return 0


def _denoise(args: argparse.Namespace) -> int:
    from core import interact, video
    factor = Settings.from_args(args, args.schema)["factor"]
    count = video.denoise_image_sequence(args.input_dir, factor)
    interact.log_info(f"Denoised {count} frames in {args.input_dir}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    """DeepFaceLab's order of questions; the fps only without a reference, the bitrate only when lossy."""
    from core import interact, video
    ref = resolve_input_file(args.reference_file) if args.reference_file else None
    opts = Settings.from_args(args, args.schema)
    ext, lossless = opts["ext"], opts["lossless"]
    fps = opts["fps"] if "fps" in opts.given or ref is None else None
    bitrate = opts["bitrate"] if not lossless else opts.schema["bitrate"].default
    audio = ref is not None and opts["include_audio"]
    out = video.video_from_sequence(args.input_dir, args.output_file, ref, ext, fps, bitrate, audio, lossless)
    interact.log_info(f"Wrote {out}")
    return 0
