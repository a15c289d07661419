"""`bench train`: the real trainer's iteration time against a bare step on random data.

For each model, batch size and precision: median ms per iteration over N iterations after
a warm-up, through `model.train_iteration()` (samples from the worker processes, as in
training), the share of that time spent waiting for samples, GFLOP/s from the step's
counted floating-point operations, and the same step fed pre-made tensors (no sampler) so
the overhead of the whole trainer shows as a ratio.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from core import interact

SAEHD_BENCH = {"archi": "liae-ud", "resolution": "64", "ae_dims": "64", "e_dims": "32", "d_dims": "32",
               "d_mask_dims": "16"}


def _faces(tmp: Path) -> Path:
    from core.facelib.face_type import FaceType
    from core.sample_media import sample_path
    from core.video import extract_video
    from mainscripts.extractor import extract
    frames = tmp / "frames"
    extract_video(sample_path("single_face.mp4"), frames, "jpg", 0)
    extract(frames, tmp / "aligned", FaceType.WHOLE_FACE, 128, 90, max_faces=1)
    return tmp / "aligned"


def _measure(model, iterations: int, warmup: int) -> dict:
    from models.saehd import batch_tuple
    for _ in range(warmup):
        model.train_iteration()
    times, wait0 = [], model.batches.wait_seconds
    t_all = time.perf_counter()
    for _ in range(iterations):
        t0 = time.perf_counter()
        model.train_iteration()
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_all
    wait = model.batches.wait_seconds - wait0
    fixed = getattr(model, "step_inputs", batch_tuple)(next(model.batches))
    bare = []
    for _ in range(max(5, iterations // 2)):
        t0 = time.perf_counter()
        model._step(fixed)
        bare.append(time.perf_counter() - t0)
    return {"ms": 1000 * statistics.median(times), "bare_ms": 1000 * statistics.median(bare),
            "wait": wait / total, "fixed": fixed}


def run(args: argparse.Namespace) -> int:
    from core.options import parse_opt_flags
    from core.nn.tf_backend import forward_flops
    from models import model_class
    from models import model_names
    models = args.model or model_names(swaps_faces=True)
    batches = args.batch_size or [4, 8]
    precisions = args.precision or ["fp32", "bf16"]
    saehd_opts = {**SAEHD_BENCH, **parse_opt_flags(args.opt)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="visage_bench_train_") as tmp:
        faces = Path(args.faces) if args.faces else _faces(Path(tmp))
        for name in models:
            for bs in batches:
                for prec in precisions:
                    opts = {"precision": prec}
                    if name == "SAEHD":
                        opts.update(saehd_opts, batch_size=str(bs))
                    train_faces = faces
                    if name == "XSeg":                # trains on labelled faces only
                        from mainscripts.bench_xseg import hull_labelled
                        opts.update(batch_size=str(bs))
                        train_faces = hull_labelled(faces, Path(tmp) / "labelled")
                    model = model_class(name)(Path(tmp) / f"m_{name}_{bs}_{prec}", train_faces, train_faces, "bench",
                                              opts, silent_start=True)
                    if name == "Quick96":             # fixed at 4 in training; varied here to measure
                        model.options["batch_size"] = bs
                        model.batches.close()
                        model.batches = model.make_batches()
                    try:
                        r = _measure(model, args.iterations, args.warmup)
                        flops = forward_flops(lambda b: model.losses(b)[0], r["fixed"]) * 3
                    finally:
                        model.close()
                    rows.append((name, bs, prec, r["ms"], r["bare_ms"], flops / (r["ms"] / 1000) / 1e9, r["wait"]))
                    interact.log_info(f"  {name} batch {bs} {prec}: {r['ms']:.0f} ms/iter")
    interact.log_info("")
    from core.machine import describe
    interact.log_info(f"bench train: median of {args.iterations} iterations after {args.warmup} warm-up; "
                      f"{describe()}; SAEHD "
                      + " ".join(f"{k}={v}" for k, v in saehd_opts.items()))
    interact.log_info(f"{'model':<8} {'batch':>5} {'prec':>5} {'ms/iter':>8} {'bare ms':>8} {'ratio':>6} "
                      f"{'GFLOP/s':>8} {'wait %':>7}")
    for name, bs, prec, ms, bare, gflops, wait in rows:
        interact.log_info(f"{name:<8} {bs:>5} {prec:>5} {ms:8.1f} {bare:8.1f} {ms / bare:6.2f} {gflops:8.1f} "
                          f"{100 * wait:7.1f}")
    return 0
