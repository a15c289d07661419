"""`extract`: find faces in a folder of frames and write aligned faces with metadata.

Like DeepFaceLab: options not given as flags are asked (defaults whole_face, 0, 512, 90);
`aligned/<frame stem>_<n>.jpg` faces and `aligned_debug/<frame stem>.jpg` drawings.
Unlike it: both cores are used by worker processes, an interrupted run continues where it
stopped (a small state file records finished frames and the settings), unreadable frames
are skipped and listed at the end, and `--smooth-landmarks` steadies faces in a sequence.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core import interact
from core.errors import VisageError
from core.facelib.face_type import NAMES, FaceType, face_type_from_str
from core.options import Option, resolve

STATE_FILE = ".visage_extract.json"

OPTIONS = (
    Option("face_type", str, "whole_face", "Face type: the area of the head each aligned face covers. "
           "full_face suits most models, whole_face adds the forehead, head the whole head.",
           prompt="Face type", choices=NAMES),
    Option("max_faces_from_image", int, 0, "Keep at most this many faces per frame, largest first (0 = all). "
           "Use 1 for a single-person clip to ignore background faces.",
           prompt="Max number of faces from image", lo=0),
    Option("image_size", int, 512, "Side of the aligned face images in pixels. Bigger keeps more detail "
           "for high-resolution models but takes more disk.", prompt="Image size", lo=64, hi=2048),
    Option("jpeg_quality", int, 90, "JPEG quality of the aligned faces (1-100).", prompt="Jpeg quality",
           lo=1, hi=100),
    Option("output_debug", bool, False, "Also write each frame with landmarks, detector box and crop "
           "outline drawn, into <output>_debug.", prompt="Write debug images to aligned_debug?"),
)


@dataclass
class ExtractReport:
    frames: int = 0                 # frames processed in this run
    faces: int = 0
    no_face: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("extract", parents=[parent], help="extract aligned faces from a folder of frames")
    p.add_argument("--input-dir", required=True, help="folder of frames (png/jpg)")
    p.add_argument("--output-dir", required=True, help="folder for aligned faces, e.g. workspace/data_src/aligned")
    p.add_argument("--detector", choices=["auto"], default="auto", help="face detector (auto = BlazeFace)")
    p.add_argument("--face-type", choices=NAMES)
    p.add_argument("--max-faces-from-image", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--jpeg-quality", type=int)
    p.add_argument("--output-debug", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--smooth-landmarks", action="store_true",
                   help="average each face's landmarks over neighbouring frames to cut jitter (video frames)")
    p.add_argument("--smooth-radius", type=int, default=3, help="frames on each side used by --smooth-landmarks")
    p.add_argument("--workers", type=int, default=0, help="worker processes (0 = one per CPU core)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete faces left by an earlier run with other settings instead of stopping")
    p.add_argument("--cpu-only", action="store_true",
                   help="accepted for DeepFaceLab compatibility: extraction always runs on the CPU")
    p.set_defaults(func=cli)


def cli(args: argparse.Namespace) -> int:
    from core.fileio import list_images
    if not list_images(args.input_dir):       # fail on a bad folder before asking anything
        raise VisageError(f"no images in {args.input_dir}; extract frames from a video first "
                          f"(videoed extract-video)")
    given = {k: getattr(args, k) for k in ("face_type", "max_faces_from_image", "image_size", "jpeg_quality",
                                           "output_debug") if getattr(args, k) is not None}
    opts = resolve(OPTIONS, given, ask=interact.is_interactive())
    report = extract(Path(args.input_dir), Path(args.output_dir), face_type=face_type_from_str(opts["face_type"]),
                     image_size=opts["image_size"], jpeg_quality=opts["jpeg_quality"],
                     max_faces=opts["max_faces_from_image"], debug=opts["output_debug"],
                     smooth_radius=args.smooth_radius if args.smooth_landmarks else 0,
                     workers=args.workers, overwrite=args.overwrite)
    print_summary(report)
    return 0


def print_summary(r: ExtractReport) -> None:
    fps = r.frames / r.seconds if r.seconds else 0.0
    interact.log_info(f"Frames processed: {r.frames} in {r.seconds:.1f} s ({fps:.1f} frames/s); "
                      f"faces written: {r.faces}; frames without a face: {len(r.no_face)}")
    if r.corrupt:
        interact.log_warn(f"{len(r.corrupt)} unreadable frame(s) skipped: {', '.join(r.corrupt)}")


def _prepare_output(output_dir: Path, debug_dir: Path, settings: dict, overwrite: bool) -> dict[str, int]:
    """Finished frames from an earlier run with the same settings; clears a stale run's faces."""
    from core.fileio import read_json
    output_dir.mkdir(parents=True, exist_ok=True)
    for stale in list(output_dir.glob(".tmp_*")) + list(debug_dir.glob(".tmp_*")):
        stale.unlink(missing_ok=True)
    state_path = output_dir / STATE_FILE
    if state_path.is_file():
        try:
            state = read_json(state_path)
        except VisageError:
            state = {}
        if state.get("settings") == settings:
            return dict(state.get("done", {}))
    old = [p for p in output_dir.glob("*.jpg")]
    if old:
        question = f"{output_dir} holds {len(old)} faces from another extraction. Delete them and start again?"
        if not (overwrite or (interact.is_interactive() and interact.input_bool(question, False))):
            raise VisageError(f"{output_dir} already holds {len(old)} faces extracted with other settings; "
                              f"empty it, choose another --output-dir, or pass --overwrite")
        for p in old + list(debug_dir.glob("*.jpg")):
            p.unlink()
    state_path.unlink(missing_ok=True)
    return {}


def _jobs(frames: list[Path], todo: set[str], settings, chunk: int, radius: int) -> list:
    jobs = []
    for start in range(0, len(frames), chunk):
        core = frames[start:start + chunk]
        if not any(p.name in todo for p in core):
            continue
        lo, hi = max(0, start - radius), min(len(frames), start + chunk + radius)
        span = frames[lo:hi]
        write = [lo + i >= start and lo + i < start + len(core) and p.name in todo for i, p in enumerate(span)]
        jobs.append((settings, [str(p) for p in span], write))
    return jobs


def extract(input_dir: Path, output_dir: Path, face_type: FaceType = FaceType.WHOLE_FACE, image_size: int = 512,
            jpeg_quality: int = 90, max_faces: int = 0, debug: bool = False, smooth_radius: int = 0,
            workers: int = 0, overwrite: bool = False) -> ExtractReport:
    """Extract every frame of `input_dir` not already done; returns what this run did."""
    from core.fileio import atomic_write_json, list_images
    from core.workers import default_workers, run_pool
    from mainscripts.extract_worker import ExtractSettings, init_worker, process_chunk

    frames = list_images(input_dir)
    if not frames:
        raise VisageError(f"no images in {input_dir}; extract frames from a video first (videoed extract-video)")
    debug_dir = output_dir.parent / f"{output_dir.name}_debug"
    settings = ExtractSettings(int(face_type), image_size, jpeg_quality, max_faces, str(output_dir),
                               str(debug_dir) if debug else None, smooth_radius)
    saved = {k: v for k, v in asdict(settings).items() if k not in ("output_dir", "debug_dir")}
    saved["debug"] = debug
    done = _prepare_output(output_dir, debug_dir, saved, overwrite)
    todo = {p.name for p in frames} - set(done)
    if done:
        interact.log_info(f"Continuing an earlier run: {len(frames) - len(todo)} of {len(frames)} frames done")
    report = ExtractReport()
    if not todo:
        return report
    workers = workers or default_workers()
    chunk = 32 if smooth_radius else 8
    jobs = _jobs(frames, todo, settings, chunk, smooth_radius)
    t0 = last_save = time.perf_counter()

    def save_state() -> None:
        atomic_write_json(output_dir / STATE_FILE, {"settings": saved, "done": done})
    try:
        for res in run_pool(process_chunk, jobs, workers, init_worker, (1,), desc="Extracting", total=len(todo),
                            weight=lambda r: r.frames_written):
            for name, n in res.faces.items():
                if n >= 0:                    # unreadable frames are retried by the next run
                    done[name] = n
                report.frames += 1
                if n < 0:
                    report.corrupt.append(name)
                elif n == 0:
                    report.no_face.append(name)
                report.faces += max(n, 0)
            for k, v in res.times.items():
                report.stage_seconds[k] = report.stage_seconds.get(k, 0.0) + v
            if time.perf_counter() - last_save > 2.0:
                save_state()
                last_save = time.perf_counter()
    finally:
        save_state()
        for stale in list(output_dir.glob(".tmp_*")) + list(debug_dir.glob(".tmp_*")):
            stale.unlink(missing_ok=True)         # left by workers stopped mid-write
        report.seconds = time.perf_counter() - t0
    report.corrupt.sort()
    report.no_face.sort()
    return report
