"""`extract`: find faces in a folder of frames and write aligned faces with metadata.

Like DeepFaceLab: options not given as flags are asked (defaults whole_face, 0, 512, 90);
`aligned/<frame stem>_<n>.jpg` faces and `aligned_debug/<frame stem>.jpg` drawings;
`--detector manual` places every face by hand in a window, `--manual-fix` does so only for
frames where the automatic pass found nothing, and `--manual-output-debug-fix` re-extracts
by hand the frames whose debug image the user deleted.
Unlike it: both cores are used by worker processes, an interrupted run continues where it
stopped (a small state file records finished frames and the settings), unreadable frames
are skipped and listed at the end (exit code 1: the rest is kept, a rerun retries them),
`--smooth-landmarks` steadies faces in a sequence, and `--filter-ref` keeps only the faces of
the person in the reference photos.
"""
from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from core import interact
from core.errors import VisageError
from core.facelib.face_type import NAMES, FaceType, face_type_from_str, face_type_name, spellings, spellings_help
from core.facelib.identity import SAME_PERSON
from core.options import FACE_SIZE, WORKERS, Option, Settings, add_flags, given_options

STATE_FILE = ".visage_extract.json"
DETECTORS = {"auto": "auto", "s3fd": "auto", "manual": "manual"}   # s3fd: DeepFaceLab's name for automatic
WINDOW_SIZE = 1368

OPTIONS = (        # asked when not given, as DeepFaceLab does
    Option("face_type", str, "whole_face", "Face type: the area of the head each aligned face covers. "
           "full_face suits most models, whole_face adds the forehead, head the whole head. "
           f"One of {spellings_help()}.", prompt="Face type", choices=NAMES, aliases=spellings(short=False)),
    Option("max_faces_from_image", int, 0, "Keep at most this many faces per frame, largest first (0 = all). "
           "Use 1 for a single-person clip to ignore background faces.",
           prompt="Max number of faces from image", lo=0),
    Option("image_size", int, 512, "Side of the aligned face images in pixels. Bigger keeps more detail "
           "for high-resolution models but takes more disk.", prompt="Image size", lo=FACE_SIZE.lo, hi=FACE_SIZE.hi),
    Option("jpeg_quality", int, 90, "JPEG quality of the aligned faces (1-100).", prompt="Jpeg quality",
           lo=1, hi=100),
    Option("output_debug", bool, False, "Also write each frame with landmarks, detector box and crop "
           "outline drawn, into <output>_debug.", prompt="Write debug images to aligned_debug?"),
)
SETTINGS = (       # flag (or --opt / --config) or default, never asked
    Option("detector", str, "auto", "auto (or s3fd, DeepFaceLab's name) finds faces automatically; manual: place "
           "each face by hand in a window", choices=tuple(sorted(DETECTORS)), asked=False),
    Option("landmarks", str, "mesh", "mesh: the face mesh's 68 points; ibug68: refined by dlib's 68-point "
           "predictor, closer to iBUG 300-W annotation (jaw line) but trained on data licensed for non-commercial "
           "use only", choices=("mesh", "ibug68"), asked=False),
    Option("manual_window_size", int, WINDOW_SIZE, "longer side of the manual extraction window in pixels",
           lo=256, hi=16384, asked=False),
    Option("filter_threshold", float, SAME_PERSON, "--filter-ref: largest identity distance to the nearest reference "
           "face that still counts as the same person (dlib's 0.6; lower is stricter); distances lie in 0..2",
           lo=0.01, hi=2.0, asked=False),
    Option("smooth_radius", int, 3, "frames on each side used by --smooth-landmarks (a job holds 32 frames plus "
           "this many on each side)", lo=0, hi=30, asked=False),
    WORKERS,
)
SCHEMA = OPTIONS + SETTINGS


@dataclass
class ExtractReport:
    frames: int = 0                 # frames processed in this run
    faces: int = 0
    no_face: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    other_people: int = 0           # faces left out by --filter-ref
    other_people_frames: list[str] = field(default_factory=list)
    manual_frames: list[str] = field(default_factory=list)     # frames decided in the manual window
    manual_faces: int = 0
    manual_left: list[str] = field(default_factory=list)       # frames the manual window did not get to


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("extract", parents=[parent], help="extract aligned faces from a folder of frames")
    p.add_argument("--input-dir", required=True, help="folder of frames (png/jpg)")
    p.add_argument("--output-dir", required=True, help="folder for aligned faces, e.g. workspace/data_src/aligned")
    add_flags(p, SCHEMA, example="face_type=wf")
    p.add_argument("--manual-fix", action="store_true",
                   help="after the automatic pass, place faces by hand in the frames where none was found")
    p.add_argument("--manual-output-debug-fix", action="store_true",
                   help="re-extract by hand the frames whose <output>_debug image you deleted")
    p.add_argument("--filter-ref", nargs="+", metavar="PHOTO",
                   help="keep only faces of the person in these photos (dlib identity embedding)")
    p.add_argument("--smooth-landmarks", action="store_true",
                   help="average each face's landmarks over neighbouring frames to cut jitter (video frames)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete faces left by an earlier run with other settings instead of stopping")
    p.add_argument("--cpu-only", action="store_true",
                   help="accepted for DeepFaceLab compatibility: extraction always runs on the CPU")
    p.set_defaults(func=cli)


# The state file records a run's settings under the option names of SCHEMA (plus `filter_ref`, the
# reference photos' hashes). Earlier versions used other keys; `_current_names` reads those too.
RESUMED = ("face_type", "max_faces_from_image", "image_size", "jpeg_quality", "output_debug", "smooth_radius",
           "landmarks")                 # what a fix run (--manual-fix, --manual-output-debug-fix) reuses unasked
_OLD_KEYS = {"max_faces": "max_faces_from_image", "debug": "output_debug"}


def _current_names(settings: object) -> dict:
    """Saved settings under today's names: an earlier version's keys (max_faces, debug, face_type as a
    number, filter {refs, threshold}, landmarks and detector only when not the default) renamed."""
    if not isinstance(settings, dict):
        return {}
    if "max_faces" not in settings:
        return settings
    s = {_OLD_KEYS.get(k, k): v for k, v in settings.items()}
    try:
        s["face_type"] = face_type_name(FaceType(s["face_type"]))
    except (KeyError, TypeError, ValueError):
        return {}
    s.setdefault("landmarks", "mesh")
    s.setdefault("detector", "auto")
    old_filter = s.pop("filter", None)
    if isinstance(old_filter, dict):
        s["filter_ref"], s["filter_threshold"] = old_filter.get("refs"), old_filter.get("threshold")
    return s


def _saved_settings(output_dir: Path) -> dict:
    """The settings recorded by the earlier run into `output_dir` ({} if none)."""
    from core.fileio import read_json
    try:
        return _current_names(read_json(output_dir / STATE_FILE)["settings"])
    except (OSError, VisageError, KeyError, TypeError):
        return {}


def _saved_options(output_dir: Path) -> dict:
    """The options of the earlier run into `output_dir`, so that a fix run reuses them unasked."""
    s = _saved_settings(output_dir)
    return {k: s[k] for k in RESUMED if k in s}


def cli(args: argparse.Namespace) -> int:
    from core.fileio import list_images
    if not list_images(args.input_dir):       # fail on a bad folder before asking anything
        raise VisageError(f"no images in {args.input_dir}; extract frames from a video first "
                          f"(videoed extract-video)")
    fixing = args.manual_fix or args.manual_output_debug_fix
    saved = _saved_options(Path(args.output_dir)) if fixing else {}
    saved_smooth = saved.pop("smooth_radius", 0)
    saved_landmarks = saved.pop("landmarks", None)
    given = {**saved, **given_options(args, SCHEMA)}
    if saved_landmarks:                        # a fix run places faces as the first run did
        given["landmarks"] = saved_landmarks
    if args.manual_output_debug_fix:
        given["output_debug"] = True
    elif given.get("detector") == "manual":
        given.setdefault("max_faces_from_image", 0)          # one face per frame, placed by hand: not asked
    opts = Settings(SCHEMA, given)
    smooth = opts["smooth_radius"] if args.smooth_landmarks else saved_smooth
    report = extract(Path(args.input_dir), Path(args.output_dir), face_type=face_type_from_str(opts["face_type"]),
                     image_size=opts["image_size"], jpeg_quality=opts["jpeg_quality"],
                     max_faces=opts["max_faces_from_image"], debug=opts["output_debug"], smooth_radius=smooth,
                     workers=opts["workers"], overwrite=args.overwrite, detector=opts["detector"],
                     manual_fix=args.manual_fix, manual_output_debug_fix=args.manual_output_debug_fix,
                     window_size=opts["manual_window_size"], filter_refs=args.filter_ref or (),
                     filter_threshold=opts["filter_threshold"], landmarks=opts["landmarks"])
    print_summary(report)
    return 1 if report.corrupt else 0


def _listed(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def print_summary(r: ExtractReport) -> None:
    fps = r.frames / r.seconds if r.seconds else 0.0
    interact.log_info(f"Frames processed: {r.frames} in {r.seconds:.1f} s ({fps:.1f} frames/s); "
                      f"faces written: {r.faces}; frames without a face: {len(r.no_face)}")
    if r.other_people:
        interact.log_info(f"{r.other_people} faces of other people skipped (in {_listed(r.other_people_frames)})")
    if r.manual_frames or r.manual_left:
        interact.log_info(f"Manual: {len(r.manual_frames)} frames done by hand, {r.manual_faces} faces accepted")
    if r.manual_left:
        interact.log_warn(f"{len(r.manual_left)} frame(s) not done by hand yet ({_listed(r.manual_left)}); "
                          f"run the same command again to continue")
    if r.corrupt:                      # last, as the one error line: the rest of the run is kept
        interact.log_err(f"{len(r.corrupt)} unreadable frame(s) skipped ({_listed(r.corrupt)}); the other "
                         "frames' faces are kept and the next run retries these")


@dataclass
class _RunState:
    """The resume state file: settings, faces written per finished frame, frames done by hand."""
    path: Path
    settings: dict
    done: dict[str, int]
    manual: set[str] = field(default_factory=set)

    def save(self) -> None:
        from core.fileio import atomic_write_json
        atomic_write_json(self.path, {"settings": self.settings, "done": self.done, "manual": sorted(self.manual)})


def _clear_tmp(*folders: Path) -> None:
    from core.fileio import remove_file
    for folder in folders:
        for stale in folder.glob(".tmp_*"):
            remove_file(stale)


def _saved_state(state_path: Path, settings: dict) -> _RunState | None:
    """The earlier run's state if the file is whole and was made with these settings, else None."""
    from core.fileio import read_json
    try:
        state = read_json(state_path)
    except VisageError:
        return None
    if not isinstance(state, dict) or _current_names(state.get("settings")) != settings:
        return None
    done, manual = state.get("done", {}), state.get("manual", [])
    if not (isinstance(done, dict) and all(isinstance(n, int) for n in done.values())
            and isinstance(manual, list) and all(isinstance(m, str) for m in manual)):
        return None
    return _RunState(state_path, settings, dict(done), set(manual))


def _prepare_output(output_dir: Path, debug_dir: Path, settings: dict, overwrite: bool,
                    keep_faces: bool = False) -> _RunState:
    """The earlier run's state when its settings match; otherwise clears its faces (never with `keep_faces`)."""
    from core.fileio import remove_file, writable_dir
    writable_dir(output_dir)
    _clear_tmp(output_dir, debug_dir)
    state_path = output_dir / STATE_FILE
    if state_path.is_file() and (earlier := _saved_state(state_path, settings)):
        return earlier
    old = [p for p in output_dir.glob("*.jpg")]
    if old and keep_faces:
        if state_path.is_file():
            raise VisageError(f"{output_dir} was extracted with other settings; give the same face type, image "
                              f"size and options as that extraction (or leave them out to reuse them)")
        return _RunState(state_path, settings, {})        # faces from elsewhere: adopt them, delete nothing
    if old:
        question = f"{output_dir} holds {len(old)} faces from another extraction. Delete them and start again?"
        if not (overwrite or (interact.is_interactive() and interact.input_bool(question, False))):
            raise VisageError(f"{output_dir} already holds {len(old)} faces extracted with other settings; "
                              f"empty it, choose another --output-dir, or pass --overwrite")
        for p in old + list(debug_dir.glob("*.jpg")):
            remove_file(p)
    remove_file(state_path)
    return _RunState(state_path, settings, {})


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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reference_embeddings(photos: list[Path]):
    """(m, 128) embeddings of the reference photos, computed once here and sent to the workers."""
    from core.facelib.identity import IdentityEncoder
    for photo in photos:
        if not photo.is_file():
            raise VisageError(f"reference photo not found: {photo}")
    return IdentityEncoder().embed_photos(photos)


def extract(input_dir: Path, output_dir: Path, face_type: FaceType = FaceType.WHOLE_FACE, image_size: int = 512,
            jpeg_quality: int = 90, max_faces: int = 0, debug: bool = False, smooth_radius: int = 0,
            workers: int = 0, overwrite: bool = False, detector: str = "auto", manual_fix: bool = False,
            manual_output_debug_fix: bool = False, window_size: int = WINDOW_SIZE,
            filter_refs: tuple | list = (), filter_threshold: float = SAME_PERSON,
            landmarks: str = "mesh") -> ExtractReport:
    """Extract every frame of `input_dir` not already done (`list_frames`: every image but Visage's
    contact sheets); returns what this run did."""
    from core.frame_sequence import list_frames
    from mainscripts.extract.extract_worker import ExtractSettings

    frames = list_frames(input_dir)
    if not frames:
        raise VisageError(f"no images in {input_dir}; extract frames from a video first (videoed extract-video)")
    checked = Settings(SETTINGS, {"detector": detector, "landmarks": landmarks, "manual_window_size": window_size,
                                  "filter_threshold": filter_threshold, "smooth_radius": smooth_radius,
                                  "workers": workers}, ask=False)     # a library caller's values, checked too
    detector, landmarks = checked["detector"], checked["landmarks"]
    filter_threshold, smooth_radius = checked["filter_threshold"], checked["smooth_radius"]
    manual = DETECTORS[detector] == "manual" and not manual_output_debug_fix
    if manual_fix and (manual or manual_output_debug_fix):
        raise VisageError("--manual-fix runs the automatic detector first: use it without --detector manual "
                          "and without --manual-output-debug-fix")
    debug = debug or manual_output_debug_fix
    debug_dir = output_dir.parent / f"{output_dir.name}_debug"
    if manual_output_debug_fix and not debug_dir.is_dir():
        raise VisageError(f"{debug_dir} not found: --manual-output-debug-fix re-extracts the frames whose debug "
                          f"image was deleted, so extract with --output-debug first")
    refs = [Path(p) for p in filter_refs]
    settings = ExtractSettings(int(face_type), image_size, jpeg_quality, max_faces, str(output_dir),
                               str(debug_dir) if debug else None, smooth_radius,
                               _reference_embeddings(refs) if refs else None, float(filter_threshold), landmarks)
    saved = {"face_type": face_type_name(face_type), "max_faces_from_image": max_faces, "image_size": image_size,
             "jpeg_quality": jpeg_quality, "output_debug": debug, "smooth_radius": smooth_radius,
             "landmarks": landmarks, "detector": "manual" if manual else "auto"}
    if refs:
        saved.update(filter_ref=sorted(_sha256(p) for p in refs), filter_threshold=float(filter_threshold))
    if manual_output_debug_fix:          # how the faces were found first does not matter to a fix by hand
        earlier = _saved_settings(output_dir)
        saved.update({k: earlier[k] for k in ("filter_ref", "filter_threshold", "detector") if k in earlier})
    run = _prepare_output(output_dir, debug_dir, saved, overwrite, keep_faces=manual_output_debug_fix)
    report = ExtractReport()
    t0 = time.perf_counter()
    try:
        if manual_output_debug_fix:
            todo = _deleted_debug_frames(frames, output_dir, debug_dir, run)
        elif manual:
            todo = [p for p in frames if p.name not in run.done]
        else:
            _auto_pass(frames, run, settings, workers, report)
            todo = [p for p in frames if run.done.get(p.name) == 0 and p.name not in run.manual] if manual_fix else []
        if todo:
            _manual_pass(todo, run, settings, window_size, report)
    finally:
        run.save()
        _clear_tmp(output_dir, debug_dir)         # left by workers stopped mid-write
        report.seconds = time.perf_counter() - t0
    for names in (report.corrupt, report.no_face, report.other_people_frames):
        names.sort()
    return report


def _auto_pass(frames: list[Path], run: _RunState, settings, workers: int, report: ExtractReport) -> None:
    from core.workers import default_workers, run_pool
    from mainscripts.extract.extract_worker import init_worker, process_chunk
    done = run.done
    todo = {p.name for p in frames} - set(done)
    if done and todo:
        interact.log_info(f"Continuing an earlier run: {len(frames) - len(todo)} of {len(frames)} frames done")
    if not todo:
        return
    workers = workers or default_workers()
    chunk = 32 if settings.smooth_radius else 8
    jobs = _jobs(frames, todo, settings, chunk, settings.smooth_radius)
    last_save = time.perf_counter()
    init_args = (1, settings.landmarks == "ibug68")
    for res in run_pool(process_chunk, jobs, workers, init_worker, init_args, desc="Extracting", total=len(todo),
                        weight=lambda r: r.frames_written):
        for name, n in res.faces.items():
            if n >= 0:                    # unreadable frames are retried by the next run
                done[name] = n
            report.frames += 1
            if n < 0:
                report.corrupt.append(name)
            elif n == 0 and name not in res.skipped:
                report.no_face.append(name)
            report.faces += max(n, 0)
        for name, n in res.skipped.items():
            report.other_people += n
            report.other_people_frames.append(name)
        for k, v in res.times.items():
            report.stage_seconds[k] = report.stage_seconds.get(k, 0.0) + v
        if time.perf_counter() - last_save > 2.0:
            run.save()
            last_save = time.perf_counter()


def _deleted_debug_frames(frames: list[Path], output_dir: Path, debug_dir: Path, run: _RunState) -> list[Path]:
    """Frames whose debug image is gone; their aligned faces are deleted first (as DeepFaceLab does)."""
    from core.facelib.face_meta import read_meta
    todo = [p for p in frames if not (debug_dir / f"{p.stem}.jpg").is_file()]
    names = {p.name for p in todo}
    interact.log_info(f"Re-extracting by hand {len(todo)} frame(s) whose debug image was deleted")
    for face in sorted(output_dir.glob("*.jpg")):
        try:
            source = read_meta(face).source_filename
        except VisageError:
            continue
        if source in names:
            face.unlink()
    for name in names:
        run.done.pop(name, None)
        run.manual.discard(name)
    run.save()
    return todo


def _manual_pass(frames: list[Path], run: _RunState, settings, window_size: int, report: ExtractReport) -> None:
    """Show `frames` in the manual window; every frame the user decides is written and recorded at once."""
    from mainscripts.extract.extract_worker import write_faces
    from mainscripts.extract.manual_extract import run_window
    decided: dict[str, int] = {}

    def decide(path: Path, img, faces: list) -> None:
        out = Path(settings.output_dir)
        for n in range(len(faces), decided.get(path.name, 0)):    # a frame done again with fewer faces
            (out / f"{path.stem}_{n}.jpg").unlink(missing_ok=True)
        write_faces(path, img, faces, settings)
        decided[path.name] = len(faces)
        run.done[path.name] = len(faces)
        run.manual.add(path.name)
        run.save()
    counted = set(run.done)
    run_window(frames, decide, window_size, FaceType(settings.face_type), ibug68=settings.landmarks == "ibug68")
    for name, n in decided.items():
        report.frames += name not in counted
        report.faces += n
        if n and name in report.no_face:
            report.no_face.remove(name)
        elif not n and name not in report.no_face:
            report.no_face.append(name)
    report.manual_frames = sorted(decided)
    report.manual_faces = sum(decided.values())
    report.manual_left = [p.name for p in frames if p.name not in decided]
