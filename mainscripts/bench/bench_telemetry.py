"""`bench telemetry`: what validation and logging add to an iteration, at the default intervals.

The trainer's own `TrainLogs` (history.csv, TensorBoard events, ETA) is timed call by call
beside `model.train_iteration()`; a validation pass over the held-out faces and a preview
image for the events are timed on their own and spread over their intervals
(models.validation.VALIDATE_EVERY, train_logs.IMAGE_EVERY), so the share is measured at the
default schedule without running thousands of iterations. The held-out faces' loss and
SSIM are printed too: the same reconstruction figures `evaluate` reports, on faces the
model never trained on.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from core import interact


def register(bsub: argparse._SubParsersAction) -> None:
    from core.options import FRAME_COUNT, REPEATS
    t = bsub.add_parser("telemetry", help="ms/iter that validation and training logs add (default intervals)")
    t.add_argument("--model", choices=["Quick96", "SAEHD"], default="Quick96", help="model to measure")
    t.add_argument("--opt", action="append", metavar="NAME=VALUE", help="model options (SAEHD default: as bench train)")
    t.add_argument("--iterations", type=REPEATS, default=30, help="timed iterations (median reported)")
    t.add_argument("--warmup", type=FRAME_COUNT, default=5, help="untimed iterations first (default 5)")
    t.add_argument("--faces", help="aligned faces folder used for both sides (default: extracted from a sample clip)")
    t.set_defaults(func=run)


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def run(args: argparse.Namespace) -> int:
    from core.machine import describe
    from core.options import parse_opt_flags
    from mainscripts.train import train_logs
    from mainscripts.bench.bench_train import SAEHD_BENCH, _faces
    from mainscripts.train.trainer import Preview
    from models import model_class, validation
    opts = {**(SAEHD_BENCH if args.model == "SAEHD" else {}), **parse_opt_flags(args.opt)}
    with tempfile.TemporaryDirectory(prefix="visage_bench_telemetry_") as tmp:
        faces = Path(args.faces) if args.faces else _faces(Path(tmp))
        model = model_class(args.model)(Path(tmp) / "model", faces, faces, "bench", opts, silent_start=True)
        try:
            for _ in range(args.warmup):
                model.train_iteration()
            preview = Preview(model, window=False)
            logs = train_logs.TrainLogs(model, preview.image)
            held = logs.faces
            logs.faces = None                  # validation is timed on its own below
            step_ms, log_times = [], []
            for _ in range(args.iterations):
                t0 = time.perf_counter()
                model.train_iteration()
                t1 = time.perf_counter()
                logs.after_iteration((t1 - t0) * 1000)
                step_ms.append(1000 * (t1 - t0))
                log_times.append(1000 * (time.perf_counter() - t1))
            t0 = time.perf_counter()
            logs.flush()
            flush_ms = 1000 * (time.perf_counter() - t0)
            figures = {}
            val_ms = 0.0
            if held is not None:
                logs.faces = held
                val_ms = _median_ms(lambda: figures.update(validation.figures(model, held.src, held.dst)), 3)
            from core.tb_events import image_value
            image_ms = _median_ms(lambda: image_value("preview", preview.image()), 3)
            logs.close()
        finally:
            model.close()
    step, per_iter = statistics.median(step_ms), statistics.median(log_times)
    every, img_every = validation.VALIDATE_EVERY, train_logs.IMAGE_EVERY
    amortised = per_iter + val_ms / every + image_ms / img_every + flush_ms / max(1, args.iterations)
    interact.log_info("")
    interact.log_info(f"bench telemetry: {args.model} {' '.join(f'{k}={v}' for k, v in opts.items())}, median of "
                      f"{args.iterations} iterations after {args.warmup} warm-up; {describe()}")
    interact.log_info(f"  train iteration            : {step:8.1f} ms")
    interact.log_info(f"  logs per iteration         : {per_iter:8.3f} ms (CSV row, event scalars, ETA)")
    if held is not None:
        n = len(held.src.target) + len(held.dst.target)
        interact.log_info(f"  validation pass            : {val_ms:8.1f} ms for {n} held-out faces, every {every} "
                          f"iterations")
    else:
        interact.log_info("  validation pass            : off (too few faces to hold any out)")
    interact.log_info(f"  preview image to events    : {image_ms:8.1f} ms every {img_every} iterations")
    interact.log_info(f"  overhead at these intervals: {amortised:8.3f} ms/iter = {100 * amortised / step:.2f} % "
                      f"of an iteration")
    if figures:
        interact.log_info(f"  held-out faces after {args.warmup + args.iterations} iterations: src loss "
                          f"{figures['src_loss']:.3f} SSIM {figures['src_ssim']:.3f}, dst loss "
                          f"{figures['dst_loss']:.3f} SSIM {figures['dst_ssim']:.3f}")
    return 0
