"""`bench merge`: frames per second of batch merge at the dst resolution, and where the time goes.

Set-up (not timed): every frame of a sample clip (default single_face.mp4, 640x360) as PNG
dst frames, their whole_face 256 px faces extracted as in `bench extract`, and a Quick96
model trained for a couple of iterations on src faces from WolfgangLanger_Pexels.mp4 (the
weights' quality does not change the speed), or an existing model with `--model-dir`.

End to end: the real `batch_merge` (worker processes, pool start-up included) into a fresh
output folder each repeat, so resume skips nothing; the median is reported, plus the
steady-state rate from the first merged frame written to the last (pool start-up and the
first prediction batch left out), and the CPU time per frame of the parent and the workers
together (other processes on a shared machine slow the wall clock, not that). Per stage: the
same work done in this process, one stage at a time, as median wall and CPU ms per frame;
their sum against the end-to-end rate gives the parallel speed-up.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from core import interact
from core.options import FRAME_COUNT, REPEATS, WORKERS, Option

DEFAULT_OPTS = {"mode": "overlay", "mask_mode": "dst", "color_transfer_mode": "rct"}
STAGES = ("decode", "crop", "predict", "compose", "encode+label", "write")
MODEL_NAME = "bench"


def register(bsub: argparse._SubParsersAction) -> None:
    from models import model_names
    from core.nn.backend import add_backend_flag
    m = bsub.add_parser("merge", help="frames/s of batch merge at the dst resolution, per stage")
    add_backend_flag(m)
    m.add_argument("--clip", default="single_face.mp4",
                   help="dst: a video file, or the name of a sample clip (default: the 640x360 sample)")
    m.add_argument("--frames", type=FRAME_COUNT, default=0, help="use only the first N frames (0 = all)")
    m.add_argument("--workers", type=WORKERS, default=0, help="batch merge worker processes (0 = one per CPU core)")
    m.add_argument("--repeats", type=REPEATS, default=3, help="end-to-end runs; the median is reported")
    m.add_argument("--opt", action="append", metavar="NAME=VALUE",
                   help="merger option over the bench's mode=overlay mask_mode=dst color_transfer_mode=rct, "
                        "e.g. --opt mode=seamless")
    m.add_argument("--model-dir", help="bench this trained model instead of training a throw-away Quick96")
    m.add_argument("--model", choices=model_names(swaps_faces=True), default="Quick96",
                   help="the model class in --model-dir (default Quick96)")
    m.add_argument("--force-model-name", help="with --model-dir: the model's name when several are saved")
    m.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="precision of the throw-away Quick96 (an existing model keeps its own)")
    m.add_argument("--src-every", type=Option("src_every", int, 20, "every Nth src face", lo=1, hi=10**4), default=20,
                   help="src faces for the throw-away model: every N-th frame of WolfgangLanger_Pexels.mp4")
    m.set_defaults(func=run)


def _clip_path(clip: str) -> Path:
    from core.sample_media import SOURCES, sample_path
    if any(clip in s.files for s in SOURCES):
        return sample_path(clip)
    return Path(clip)


def _keep(folder: Path, ext: str, every: int = 1, first: int = 0) -> list[Path]:
    """Thin a folder of decoded frames in place: every N-th, then the first `first` (0 = all)."""
    files = sorted(folder.glob(f"*.{ext}"))
    keep = files[::max(1, every)]
    keep = keep[:first] if first else keep
    for f in set(files) - set(keep):
        f.unlink()
    return keep


def _train_model(tmp: Path, src_every: int, precision: str) -> Path:
    """A Quick96 trained for 2 iterations on src faces from the WolfgangLanger clip (speed only)."""
    import main
    from core.errors import VisageError
    from core.facelib.face_type import FaceType
    from core.video import extract_video
    from mainscripts.extract.extractor import extract
    src_frames = tmp / "data_src"
    extract_video(_clip_path("WolfgangLanger_Pexels.mp4"), src_frames, "jpg", 0)
    _keep(src_frames, "jpg", every=src_every)
    extract(src_frames, src_frames / "aligned", FaceType.WHOLE_FACE, 256, 90, max_faces=1)
    model_dir = tmp / "model"
    rc = main.main(["train", "--training-data-src-dir", str(src_frames / "aligned"),
                    "--training-data-dst-dir", str(tmp / "data_dst" / "aligned"), "--model-dir", str(model_dir),
                    "--model", "Quick96", "--force-model-name", MODEL_NAME, "--no-preview", "--silent-start",
                    "--workers", "1", "--opt", "target_iter=2", "--opt", f"precision={precision}",
                    "--non-interactive"])
    if rc != 0:
        raise VisageError(f"bench merge: training the throw-away Quick96 failed (exit {rc})")
    return model_dir


def _steady_rate(output_dir: Path) -> float:
    """Frames/s from the first merged frame written to the last (file modification times)."""
    times = sorted(p.stat().st_mtime_ns for p in output_dir.glob("*.png"))
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / ((times[-1] - times[0]) / 1e9)


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished children (the merge workers)."""
    try:
        import resource
    except ImportError:                                   # Windows: this process only
        return time.process_time()
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _end_to_end(frames: list, predictor, cfg, tmp: Path, workers: int, repeats: int) -> dict[str, list[float]]:
    """Per run: frames/s, steady-state frames/s and CPU seconds per frame (parent + workers)."""
    from core.errors import VisageError
    from core.merge.batch_merge import batch_merge
    runs: dict[str, list[float]] = {"fps": [], "steady": [], "cpu": []}
    for i in range(max(1, repeats)):
        out, mask = tmp / f"merged_{i}", tmp / f"merged_{i}_mask"
        c0, t0 = _cpu_seconds(), time.perf_counter()
        rc = batch_merge(frames, predictor, cfg, out, mask, workers)
        seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        if rc != 0:
            raise VisageError(f"bench merge: batch merge run {i + 1} failed (exit {rc})")
        runs["fps"].append(len(frames) / seconds)
        runs["steady"].append(_steady_rate(out))
        runs["cpu"].append(cpu / len(frames))
    return runs


class _Clock:
    """Wall and CPU seconds of consecutive stages: lap(stage) charges the time since the last lap."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {s: [] for s in STAGES}
        self.cpu: dict[str, list[float]] = {s: [] for s in STAGES}
        self.start()

    def start(self) -> None:
        self._w, self._c = time.perf_counter(), time.process_time()

    def lap(self, stage: str, frames: int = 1) -> None:
        w, c = time.perf_counter(), time.process_time()
        self.wall[stage] += [(w - self._w) / frames] * frames
        self.cpu[stage] += [(c - self._c) / frames] * frames
        self._w, self._c = w, c


def _stages(frames: list, predictor, cfg, tmp: Path) -> _Clock:
    """Seconds per frame of each stage, this process only, doing batch merge's work in its order."""
    import numpy as np
    from core.fileio import atomic_write_bytes, encode_image, read_image
    from core.merge.compose import compose_frame, crop_face
    from core.synthetic_label import label_png
    from core.workers import chunked
    from core.merge.batch_merge import PREDICT_FRAMES
    out_dir, mask_dir = tmp / "stages", tmp / "stages_mask"
    out_dir.mkdir()
    mask_dir.mkdir()
    clock = _Clock()
    for group in chunked(frames, PREDICT_FRAMES):
        decoded, crops = [], []
        for f in group:
            clock.start()
            img = read_image(f.path)
            clock.lap("decode")
            crops.append([crop_face(img, m, predictor.resolution, predictor.face_type) for m in f.faces])
            clock.lap("crop")
            decoded.append(img)
        clock.start()
        predictions = iter(predictor.predict_batch([c.dst for cs in crops for c in cs]))
        clock.lap("predict", len(group))                   # one model call for the group, shared out
        for f, img, cs in zip(group, decoded, crops):
            preds = [next(predictions) for _ in cs]
            clock.start()
            merged, mask = compose_frame(img, cs, preds, cfg, f.motions)
            clock.lap("compose")
            m8 = np.clip(mask[..., 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
            mask_png = encode_image(m8, ".png")
            frame_png = label_png(encode_image(merged, ".png"))
            clock.lap("encode+label")
            atomic_write_bytes(mask_dir / (f.path.stem + ".png"), mask_png)
            atomic_write_bytes(out_dir / (f.path.stem + ".png"), frame_png)
            clock.lap("write")
    return clock


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from core.errors import VisageError
    from core.facelib.face_type import FaceType
    from core.merge.frames import count_faces, load_frames
    from core.options import parse_opt_flags
    from core.video import extract_video, probe
    from core.workers import default_workers
    from mainscripts.extract.extractor import extract
    from core.merge.batch_merge import PREDICT_FRAMES
    from core.merge.config import batch_config
    from models.predictor import FacePredictor

    clip = _clip_path(args.clip)
    info = probe(clip)
    workers = args.workers or default_workers()
    given = {**DEFAULT_OPTS, **parse_opt_flags(args.opt)}
    cfg = batch_config(given, ask=False)
    with tempfile.TemporaryDirectory(prefix="visage_bench_merge_") as tmp_name:
        tmp = Path(tmp_name)
        dst = tmp / "data_dst"
        t0 = time.perf_counter()
        extract_video(clip, dst, "png", 0)
        _keep(dst, "png", first=args.frames)
        extract(dst, dst / "aligned", FaceType.WHOLE_FACE, 256, 90, workers=workers)
        if args.model_dir:
            model_dir, model, name = Path(args.model_dir), args.model, args.force_model_name
        else:
            model_dir, model, name = _train_model(tmp, args.src_every, args.precision), "Quick96", MODEL_NAME
        predictor = FacePredictor(model_dir, model, name)
        frames = load_frames(dst, dst / "aligned")
        if not count_faces(frames):
            raise VisageError(f"bench merge: no face was found in {clip.name}; choose a clip with a face")
        blank = np.zeros((predictor.resolution, predictor.resolution, 3), np.float32)
        predictor.predict_batch([blank] * PREDICT_FRAMES)      # trace the model before anything is timed
        setup = time.perf_counter() - t0
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        runs = _end_to_end(frames, predictor, cfg, tmp, workers, args.repeats)
        clock = _stages(frames, predictor, cfg, tmp)

    n = len(frames)
    cores = os.cpu_count() or 1
    with_faces = sum(1 for f in frames if f.faces)
    wall = {s: 1000 * statistics.median(v) for s, v in clock.wall.items()}
    cpu = {s: 1000 * statistics.median(v) for s, v in clock.cpu.items()}
    total_ms, total_cpu = sum(wall.values()), sum(cpu.values())
    single_fps = 1000 / total_ms if total_ms > 0 else 0.0
    fps, steady = runs["fps"], runs["steady"]
    e2e = statistics.median(fps)
    cpu_frame = statistics.median(runs["cpu"])
    settings = " ".join(f"{k}={v}" for k, v in cfg.to_dict().items())
    interact.log_info("")
    interact.log_info(f"bench merge: {clip.name} {info.width}x{info.height}, {n} frames ({with_faces} with a face, "
                      f"{count_faces(frames)} faces), {workers} worker(s), model groups of {PREDICT_FRAMES} frames")
    from core.machine import describe
    interact.log_info(f"machine: {describe()}"
                      + (f", load average {load:.2f} when timing began (other processes share the cores)"
                         if load is not None else ""))
    interact.log_info(f"model: {predictor.title} ({predictor.model_class}) iter {predictor.iteration}, "
                      f"resolution {predictor.resolution}, precision {predictor.precision}"
                      + ("" if args.model_dir else " (throw-away, 2 iterations)"))
    interact.log_info(f"settings: {settings}")
    interact.log_info(f"set-up (frames, dst faces, model; not timed): {setup:.1f} s")
    interact.log_info(f"  batch merge end to end : {e2e:7.1f} frames/s median of {len(fps)} "
                      f"({', '.join(f'{f:.1f}' for f in fps)}), "
                      + ("worker start-up included" if workers > 1 else "one process: --workers 1 uses no pool"))
    if any(steady):
        interact.log_info(f"  steady state           : {statistics.median(steady):7.1f} frames/s median "
                          f"(first merged frame written to last; pool start-up and first batch left out)")
    interact.log_info(f"  CPU time               : {1000 * cpu_frame:7.1f} ms/frame (parent + workers) -> at most "
                      f"{cores / max(cpu_frame, 1e-9):.1f} frames/s on {cores} idle cores")
    interact.log_info("  stage, median per frame over all frames, one process:")
    interact.log_info(f"    {'stage':<13} {'wall ms':>8} {'CPU ms':>8} {'share':>7}")
    for s in STAGES:
        interact.log_info(f"    {s:<13} {wall[s]:8.2f} {cpu[s]:8.2f} {100 * wall[s] / max(total_ms, 1e-9):6.1f} %")
    interact.log_info(f"  stage sum {total_ms:.2f} ms/frame wall ({total_cpu:.2f} ms CPU) -> {single_fps:.1f} frames/s "
                      f"in one process; end to end / one process = {e2e / max(single_fps, 1e-9):.2f}x "
                      + (f"(parallel speed-up with {workers} worker processes + the predicting parent)" if workers > 1
                         else "(no pool: batch merge's own overhead)"))
    return 0
