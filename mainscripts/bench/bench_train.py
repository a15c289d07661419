"""`bench train`: the real trainer's iteration time against a bare step on random data.

For each model, batch size and precision: median ms per iteration over N iterations after
a warm-up, through `model.train_iteration()` (samples from the worker processes, as in
training), the share of that time spent waiting for samples, GFLOP/s from the step's
counted floating-point operations (TensorFlow only), the peak GPU memory, and the same step fed pre-made tensors (no sampler) so
the overhead of the whole trainer shows as a ratio. With `--backend` (repeatable) each Keras
backend is measured in its own process and the rows come side by side.
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
AMP_BENCH = {"resolution": "64", "ae_dims": "64", "inter_dims": "64", "e_dims": "32", "d_dims": "32",
             "d_mask_dims": "16"}


def _faces(tmp: Path) -> Path:
    from core.facelib.face_type import FaceType
    from core.sample_media import sample_path
    from core.video import extract_video
    from mainscripts.extract.extractor import extract
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
    for _ in range(max(2, iterations // 2)):
        t0 = time.perf_counter()
        [float(x) for x in model._step(fixed)]          # float(): JAX returns before it has computed
        bare.append(time.perf_counter() - t0)
    return {"ms": 1000 * statistics.median(times), "bare_ms": 1000 * statistics.median(bare),
            "wait": wait / total, "fixed": fixed}


def _measure_here(args: argparse.Namespace, faces: Path, tmp: Path, saehd_opts: dict) -> list[tuple]:
    """Rows of every model x batch x precision, on the backend this process runs."""
    from core.nn.backend import backend_name, peak_memory, reset_peak_memory
    from models import model_class
    backend, rows = backend_name(), []
    for name in args.model or ["Quick96", "SAEHD"]:
        for bs in args.batch_size or [4, 8]:
            for prec in args.precision or ["fp32", "bf16"]:
                opts = {"precision": prec}
                if name == "SAEHD":
                    opts.update(saehd_opts, batch_size=str(bs))
                elif name == "AMP":               # its own small dims, then the --opt names AMP has (no archi)
                    from core.options import parse_opt_flags
                    names = {o.name for o in model_class(name).option_schema()}
                    opts.update(AMP_BENCH, **{k: v for k, v in parse_opt_flags(args.opt).items() if k in names},
                                batch_size=str(bs))
                sets = faces
                if name == "XSeg":                # trains only on labelled faces: the bench faces with hull labels
                    from mainscripts.bench.bench_xseg import hull_labelled
                    opts.update(batch_size=str(bs))
                    sets = tmp / "xseg_faces"
                    if not sets.is_dir():
                        hull_labelled(faces, sets)
                reset_peak_memory()
                model = model_class(name)(tmp / f"m_{backend}_{name}_{bs}_{prec}", sets, sets, "bench", opts,
                                          silent_start=True)
                if name == "Quick96":             # fixed at 4 in training; varied here to measure
                    model.options["batch_size"] = bs
                    model.batches.close()
                    model.batches = model.make_batches()
                try:
                    r = _measure(model, args.iterations, args.warmup)
                    gflops = None
                    if backend == "tensorflow":     # counted by TensorFlow's profiler; the same network elsewhere
                        from core.nn.tf_backend import forward_flops
                        gflops = forward_flops(lambda b: model.losses(b)[0], r["fixed"]) * 3 / (r["ms"] / 1000) / 1e9
                finally:
                    model.close()
                peak = peak_memory()
                rows.append((backend, name, bs, model.precision, r["ms"], r["bare_ms"], gflops, r["wait"],
                             None if peak is None else peak / 2**20))
                interact.log_info(f"  {backend} {name} batch {bs} {prec}: {r['ms']:.0f} ms/iter")
    return rows


def _measure_in_child(backend: str, args: argparse.Namespace, faces: Path, tmp: Path) -> list[tuple]:
    """The same bench in a fresh process on `backend` (Keras fixes its backend at import)."""
    import json
    import os
    import subprocess
    import sys
    out = tmp / f"rows_{backend}.json"
    cmd = [sys.executable, str(Path(__file__).resolve().parents[2] / "main.py"), "bench", "train", "--faces",
           str(faces), "--rows-json", str(out), "--iterations", str(args.iterations), "--warmup", str(args.warmup)]
    for flag, values in (("--model", args.model), ("--batch-size", args.batch_size),
                         ("--precision", args.precision), ("--opt", args.opt)):
        for v in values or []:
            cmd += [flag, str(v)]
    env = {**os.environ, "VISAGE_BACKEND": backend}
    if subprocess.run(cmd, env=env).returncode != 0 or not out.is_file():
        interact.log_warn(f"bench train on {backend} failed (its messages are above); its rows are left out")
        return []
    return [tuple(r) for r in json.loads(out.read_text())]


def run(args: argparse.Namespace) -> int:
    from core.options import parse_opt_flags
    saehd_opts = {**SAEHD_BENCH, **parse_opt_flags(args.opt)}
    with tempfile.TemporaryDirectory(prefix="visage_bench_train_") as tmp:
        faces = Path(args.faces) if args.faces else _faces(Path(tmp))
        if args.backends:
            rows = [r for b in dict.fromkeys(args.backends) for r in _measure_in_child(b, args, faces, Path(tmp))]
        else:
            rows = _measure_here(args, faces, Path(tmp), saehd_opts)
    if args.rows_json:
        import json
        from core.fileio import atomic_write_bytes
        atomic_write_bytes(Path(args.rows_json), json.dumps(rows).encode("utf-8"))
        return 0
    interact.log_info("")
    from core.machine import describe
    interact.log_info(f"bench train: median of {args.iterations} iterations after {args.warmup} warm-up; "
                      f"{describe()}; SAEHD "
                      + " ".join(f"{k}={v}" for k, v in saehd_opts.items()))
    interact.log_info(f"{'backend':<10} {'model':<8} {'batch':>5} {'prec':>5} {'ms/iter':>8} {'bare ms':>8} "
                      f"{'ratio':>6} {'GFLOP/s':>8} {'wait %':>7} {'peak MiB':>9}")
    for backend, name, bs, prec, ms, bare, gflops, wait, peak in rows:
        interact.log_info(f"{backend:<10} {name:<8} {bs:>5} {prec:>5} {ms:8.1f} {bare:8.1f} {ms / bare:6.2f} "
                          f"{'-' if gflops is None else f'{gflops:.1f}':>8} {100 * wait:7.1f} "
                          f"{'-' if peak is None else f'{peak:.0f}':>9}")
    return 0 if rows else 1
