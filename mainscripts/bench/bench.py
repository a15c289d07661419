"""`bench`: measured throughput of pipeline stages, printed as medians and ratios.

Speed is never asserted in tests; it is measured here on demand. `bench extract` times
the real `extract` command (worker start-up included) on frames decoded from a sample
clip and breaks the time down per stage; `bench train` times training iterations
(bench_train.py) and `bench merge` batch merge's frames/s at the dst resolution,
per stage (bench_merge.py).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from core import interact
from core.options import FACE_SIZE, FRAME_COUNT, REPEATS, WORKERS, Option


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    from core.facelib.face_type import spellings_help
    from models import model_names
    p = sub.add_parser("bench", parents=[parent], help="measure pipeline throughput")
    bsub = p.add_subparsers(dest="bench_command", required=True)
    e = bsub.add_parser("extract", help="frames/s of face extraction, per stage")
    e.add_argument("--clip", default="WolfgangLanger_Pexels.mp4",
                   help="a video file, or the name of a sample clip (default: the 640x360 sample)")
    e.add_argument("--face-type", default="whole_face", metavar="TYPE",
                   help=f"face type of the crops: {spellings_help()} (default whole_face)")
    e.add_argument("--image-size", type=FACE_SIZE, default=256, help="aligned face size (default 256)")
    e.add_argument("--frames", type=FRAME_COUNT, default=0, help="use only the first N frames (0 = all)")
    e.add_argument("--workers", type=WORKERS, default=0, help="0 = one per CPU core")
    e.add_argument("--repeats", type=REPEATS, default=3, help="runs; the median is reported")
    e.add_argument("--landmarks", choices=("mesh", "ibug68"), default="mesh", help="as extract --landmarks")
    e.set_defaults(func=bench_extract)
    t = bsub.add_parser("train", help="ms per iteration, GFLOP/s and sample-wait share of training")
    t.add_argument("--model", action="append", choices=model_names(),
                   help="model(s) to measure (default all that swap faces; XSeg at 256 px)")
    t.add_argument("--batch-size", type=Option("batch_size", int, 4, "batch size", lo=1, hi=256), action="append", help="batch size(s) (default 4 and 8)")
    t.add_argument("--precision", action="append", choices=["auto", "fp32", "bf16", "fp16"],
                   help="precision(s) (default fp32 and bf16; auto = what training would pick here)")
    t.add_argument("--opt", action="append", metavar="NAME=VALUE",
                   help="SAEHD options (default: archi=liae-ud resolution=64 ae_dims=64 e_dims=32 d_dims=32 "
                        "d_mask_dims=16); AMP takes those it has (default: resolution=64 ae_dims=64 inter_dims=64 "
                        "e_dims=32 d_dims=32 d_mask_dims=16)")
    t.add_argument("--iterations", type=REPEATS, default=30, help="timed iterations per setting (median reported)")
    t.add_argument("--warmup", type=FRAME_COUNT, default=5, help="untimed iterations first (default 5)")
    t.add_argument("--faces", help="aligned faces folder used for both sides (default: extracted from a sample clip)")
    from core.nn.backend import BACKEND_CHOICES
    t.add_argument("--backend", action=_BackendsAction, choices=BACKEND_CHOICES, dest="backends",
                   help="Keras backend(s) to measure, each in its own process, side by side (default: the one in use, "
                        "VISAGE_BACKEND or tensorflow)")
    t.add_argument("--rows-json", help=argparse.SUPPRESS)       # a child of a several-backend bench writes its rows here
    t.set_defaults(func=bench_train)
    from mainscripts.bench.bench_merge import register as register_merge
    register_merge(bsub)
    from mainscripts.bench.bench_telemetry import register as register_telemetry
    register_telemetry(bsub)


class _BackendsAction(argparse._AppendAction):
    """--backend X, repeatable: the list measured, and the first also runs this process (main's `args.backend`), so
    that `bench train --backend torch` works where TensorFlow, the default, is not installed."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        if getattr(namespace, "backend", None) is None:
            namespace.backend = values


def bench_train(args: argparse.Namespace) -> int:
    from mainscripts.bench.bench_train import run
    return run(args)


def _clip_path(clip: str) -> Path:
    from core.sample_media import SOURCES, sample_path
    if any(clip in s.files for s in SOURCES):
        return sample_path(clip)
    return Path(clip)


def bench_extract(args: argparse.Namespace) -> int:
    from core.facelib.face_type import face_type_from_str
    from core.video import extract_video, probe
    from core.workers import default_workers
    from mainscripts.extract.extractor import extract
    import time

    clip = _clip_path(args.clip)
    info = probe(clip)
    workers = args.workers or default_workers()
    with tempfile.TemporaryDirectory(prefix="visage_bench_") as tmp:
        frames_dir = Path(tmp) / "frames"
        t0 = time.perf_counter()
        extract_video(clip, frames_dir, "png", 0)
        t_video = time.perf_counter() - t0
        frames = sorted(frames_dir.glob("*.png"))
        if args.frames:
            for extra in frames[args.frames:]:
                extra.unlink()
            frames = frames[:args.frames]
        runs = []
        for i in range(max(1, args.repeats)):
            report = extract(frames_dir, Path(tmp) / f"aligned_{i}", face_type=face_type_from_str(args.face_type),
                             image_size=args.image_size, jpeg_quality=90, workers=workers,
                             landmarks=args.landmarks)
            runs.append(report)
    n = len(frames)
    fps = [r.frames / r.seconds for r in runs]
    best = runs[fps.index(statistics.median(fps))] if len(fps) % 2 else runs[0]
    interact.log_info("")
    interact.log_info(f"bench extract: {clip.name} {info.width}x{info.height}, {n} frames -> "
                      f"{args.face_type} {args.image_size}px, {workers} worker(s), landmarks {args.landmarks}")
    from core.machine import describe
    interact.log_info(f"machine: {describe()}")
    interact.log_info(f"  video -> png frames : {n / t_video:7.1f} frames/s ({t_video:.2f} s)")
    interact.log_info(f"  extract end to end  : {statistics.median(fps):7.1f} frames/s median of "
                      f"{len(fps)} ({', '.join(f'{f:.1f}' for f in fps)}), worker start-up included")
    interact.log_info(f"  faces per frame     : {best.faces / max(best.frames, 1):.2f}")
    total = sum(best.stage_seconds.values())
    interact.log_info("  stage (per frame, one worker's CPU time):")
    for stage in ("decode", "detect", "landmarks", "warp", "encode", "write"):
        sec = best.stage_seconds.get(stage, 0.0)
        interact.log_info(f"    {stage:<10} {1000 * sec / max(best.frames, 1):6.2f} ms  {100 * sec / max(total, 1e-9):5.1f} %")
    interact.log_info(f"  stage sum {1000 * total / max(best.frames, 1):.2f} ms/frame/worker -> "
                      f"ideal {workers * best.frames / max(total, 1e-9):.1f} frames/s; end-to-end reaches "
                      f"{100 * statistics.median(fps) / (workers * best.frames / max(total, 1e-9)):.0f} % of it")
    return 0
