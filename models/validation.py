"""Held-out validation faces: chosen once per model, never trained on, measured while training.

A training loss only says how well the model redraws faces it has seen. A few faces of each
set are held out instead (`validation_faces`, a percentage of each set, at least 8 and at
most 64 faces, never more than a fifth of a set so small sets still train): their names are
recorded in data.json on the first run, so the same faces stay out across runs and the
figures stay comparable. Faces added to a folder later go to training; recorded faces that
were deleted are simply dropped. Every `VALIDATE_EVERY` iterations the trainer sends them,
unwarped, through the model and logs the model's own reconstruction loss (the same loss as
training, comparable with it) and SSIM (core/evaluate's, over the whole crop) of src -> src
and dst -> dst.
"""
from __future__ import annotations

import math
from pathlib import PurePath
from typing import Any, Sequence

import numpy as np

from core.errors import VisageError
from core.options import Option

VALIDATE_EVERY = 500            # iterations between validation passes (bench telemetry: overhead < 2 %)
MIN_FACES, MAX_FACES = 8, 64    # per side; the cap bounds the memory and time of a validation pass
MAX_SHARE = 5                   # hold out at most 1/MAX_SHARE of a set
BATCH = 8

VALIDATION_OPTION = Option(
    "validation_faces", float, 2.0, "Percent of each faceset held out of training to measure the model on faces "
    "it never learned (at least 8 and at most 64 faces per set, at most a fifth of a small set; 0 = off). The "
    "faces are chosen on the first run and stay the same afterwards.", prompt="Validation faces (% of each set)",
    lo=0.0, hi=20.0)


def held_out_count(n: int, percent: float) -> int:
    """How many of `n` faces to hold out at `percent`."""
    if percent <= 0:
        return 0
    want = min(MAX_FACES, max(MIN_FACES, math.ceil(n * percent / 100)))
    return min(want, n // MAX_SHARE)


def choose(names: Sequence[str], percent: float) -> list[str]:
    """Faces spread evenly over the set (natural order), so the held-out faces cover its poses."""
    k = held_out_count(len(names), percent)
    if k == 0:
        return []
    idx = (np.arange(k) * len(names) / k + len(names) / (2 * k)).astype(int)
    return [names[i] for i in idx]


def check_record(record: Any) -> dict[str, list[str]]:
    """data.json's `validation` entry: plain face file names per side (nothing that leaves the folder)."""
    if not isinstance(record, dict) or set(record) - {"src", "dst"}:
        raise VisageError("'validation' is not an object of src and dst face names")
    for names in record.values():
        if not isinstance(names, list) or not all(
                isinstance(n, str) and n and PurePath(n).name == n and n not in (".", "..") for n in names):
            raise VisageError("'validation' holds something other than plain face file names")
    return {side: list(record.get(side, [])) for side in ("src", "dst")}


def check_history(rows: Any) -> list[list[float]]:
    """data.json's `validation_history`: rows of [iteration, src loss, dst loss, src SSIM, dst SSIM]."""
    if not isinstance(rows, list) or not all(
            isinstance(r, list) and len(r) == 5 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        and math.isfinite(v) for v in r) for r in rows):
        raise VisageError("'validation_history' is not a list of [iteration, 4 finite figures]")
    return rows


def record_for(saved: dict | None, names: dict[str, list[str]], percent: float) -> dict[str, list[str]]:
    """The held-out names for this run: the saved ones still present, or a fresh choice on the first run."""
    if percent <= 0:
        return {"src": [], "dst": []}
    if saved is not None and any(saved.values()):
        return {side: [n for n in saved[side] if n in set(names[side])] for side in ("src", "dst")}
    return {side: choose(names[side], percent) for side in ("src", "dst")}


def figures(model, src, dst) -> dict[str, float]:
    """Validation loss and SSIM of both sides; `src`/`dst` are SideBatches of held-out faces.

    Uses the model's own per-side loss (`side_loss`) on its preview outputs (training=False),
    in chunks of BATCH faces so a pass never needs more memory than a small batch.
    """
    import keras
    from core.evaluate.reconstruction import ssim_map
    out: dict[str, list[float]] = {"src_loss": [], "dst_loss": [], "src_ssim": [], "dst_ssim": []}
    n = max(len(src.target), len(dst.target))
    for i in range(0, n, BATCH):
        idx = np.arange(i, min(i + BATCH, n))
        s, d = (type(b)(*(a[idx % len(b.target)] for a in b)) for b in (src, dst))
        pred = model.preview_outputs(s.target, d.target)
        for side, b, full, key in (("src", s, src, "src_src"), ("dst", d, dst, "dst_dst")):
            k = int((idx < len(full.target)).sum())        # a smaller side repeats faces: count each once
            p, pm = pred[f"pred_{key}"][:k], pred[f"pred_{key}m"][:k]
            loss = keras.ops.convert_to_numpy(model.side_loss(b.target[:k], b.mask[:k], b.em_mask[:k], p, pm))
            out[f"{side}_loss"] += [float(v) for v in np.ravel(loss)]
            out[f"{side}_ssim"] += [float(ssim_map(np.clip(p[j], 0, 1), b.target[j]).mean()) for j in range(k)]
    return {key: float(np.mean(v)) for key, v in out.items()}
