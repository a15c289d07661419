"""`train --find-lr`: an exponential learning-rate sweep on a copy of the model, and the rate it suggests.

The model's files (its last complete save, or nothing for a new model) are copied into a
temporary folder and the sweep trains that copy, so the user's saved model, its optimizer
state and its history are never touched; the copy is deleted afterwards. The learning rate
grows from `LR_LOW` to `LR_HIGH` by the same factor every iteration while the src + dst loss
is recorded; the sweep stops early once the smoothed loss has clearly diverged. The
suggestion is the rate at the lowest smoothed loss divided by 10 (fastai's and faceswap's
rule: at the minimum the rate is already about to become unstable), and a plot of the
smoothed loss over log10(rate) with the suggestion marked is written to
`<name>_<Model>_find_lr.png` beside the model. Nothing is saved as an option: the user
passes the figure on with `--opt learning_rate=...`.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from core import interact
from core.errors import VisageError

LR_LOW, LR_HIGH = 1e-7, 1e-2
ITERATIONS = 100
SMOOTHING = 0.9                 # exponential moving average of the loss (bias-corrected)
DIVERGED = 4.0                  # stop once the smoothed loss is this many times its minimum


def set_learning_rate(model, lr: float) -> None:
    """The optimizer's base rate; a compiled train step reads the variable on every call."""
    model.optimizer.learning_rate.assign(lr)


def smooth(losses: list[float]) -> np.ndarray:
    out, avg = [], 0.0
    for i, v in enumerate(losses, 1):
        avg = SMOOTHING * avg + (1 - SMOOTHING) * v
        out.append(avg / (1 - SMOOTHING ** i))
    return np.asarray(out)


def sweep(model, iterations: int = ITERATIONS, low: float = LR_LOW, high: float = LR_HIGH
          ) -> tuple[np.ndarray, np.ndarray]:
    """(rates, smoothed losses) of an exponential sweep; trains `model` (a throw-away copy)."""
    from tqdm import tqdm
    from models.model_base import NonFiniteLoss
    rates = np.geomspace(low, high, iterations)
    losses: list[float] = []
    for lr in tqdm(rates, desc="Finding the learning rate", unit="it", dynamic_ncols=True):
        set_learning_rate(model, float(lr))
        try:
            src, dst = model.train_iteration()
        except NonFiniteLoss:
            break
        losses.append(src + dst)
        s = smooth(losses)
        if len(s) > 10 and s[-1] > DIVERGED * s.min():
            break
    if len(losses) < 10:
        raise VisageError(f"the loss diverged within {len(losses)} iterations of the sweep; no rate to suggest")
    return rates[:len(losses)], smooth(losses)


def suggest(rates: np.ndarray, smoothed: np.ndarray) -> float:
    """A tenth of the rate at the lowest smoothed loss (the first few iterations are skipped: the
    average is still settling there)."""
    skip = min(5, len(rates) // 5)
    return float(rates[skip + int(np.argmin(smoothed[skip:]))] / 10)


def plot(rates: np.ndarray, smoothed: np.ndarray, suggested: float, width: int = 800, height: int = 360
         ) -> np.ndarray:
    """Smoothed loss over log10(rate) with the suggested rate marked, as a BGR image."""
    from mainscripts.train.train_preview import AXIS_COLOUR, DST_COLOUR, SRC_COLOUR, TEXT_COLOUR
    img = np.full((height, width, 3), 24, np.uint8)
    left, top, right, bottom = 56, 24, width - 12, height - 30
    x_lo, x_hi = np.log10(rates[0]), np.log10(rates[-1])
    lo, hi = float(smoothed.min()), float(np.percentile(smoothed, 95))
    hi = hi if hi > lo else lo + 1.0

    def xy(lr: float, loss: float) -> tuple[int, int]:
        x = left + (np.log10(lr) - x_lo) / max(x_hi - x_lo, 1e-9) * (right - left)
        y = bottom - np.clip((loss - lo) / (hi - lo), 0, 1) * (bottom - top)
        return int(x), int(y)
    pts = np.array([xy(r, s) for r, s in zip(rates, smoothed)], np.int32)
    cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, SRC_COLOUR, 1, cv2.LINE_AA)
    sx = xy(suggested, lo)[0]
    cv2.line(img, (sx, top), (sx, bottom), DST_COLOUR, 1)
    cv2.line(img, (left - 1, top), (left - 1, bottom), AXIS_COLOUR, 1)
    cv2.line(img, (left - 1, bottom + 1), (right, bottom + 1), AXIS_COLOUR, 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for e in range(int(np.ceil(x_lo)), int(np.floor(x_hi)) + 1):
        x = xy(10.0 ** e, lo)[0]
        cv2.line(img, (x, bottom + 1), (x, bottom + 5), AXIS_COLOUR, 1)
        cv2.putText(img, f"1e{e}", (x - 12, bottom + 18), font, 0.36, TEXT_COLOUR, 1, cv2.LINE_AA)
    cv2.putText(img, f"{hi:.3g}", (4, top + 8), font, 0.36, TEXT_COLOUR, 1, cv2.LINE_AA)
    cv2.putText(img, f"{lo:.3g}", (4, bottom), font, 0.36, TEXT_COLOUR, 1, cv2.LINE_AA)
    cv2.putText(img, f"smoothed src+dst loss over the learning rate; suggested {suggested:.2g}", (left, 14), font,
                0.4, TEXT_COLOUR, 1, cv2.LINE_AA)
    cv2.putText(img, "learning rate", ((left + right) // 2 - 40, height - 2), font, 0.36, TEXT_COLOUR, 1,
                cv2.LINE_AA)
    return img


def copy_model(files, into: Path) -> None:
    """The model's own files (and its previous save) into `into`; not backups, previews or logs."""
    skip = {files.path(p).name for p in ("lock", "autobackups", "history", "logs")}
    for path in files.dir.glob(f"{files.prefix}*"):
        if path.name in skip:
            continue
        if path.is_dir():
            shutil.copytree(path, into / path.name)
        elif path.is_file():
            shutil.copy2(path, into / path.name)


def find_lr(cls, model_dir: Path, src_dir: Path | None, dst_dir: Path | None, force_name: str | None, given: dict,
            silent_start: bool, cpu_only: bool, workers: int, gpu_idxs: list[int] | None,
            iterations: int = ITERATIONS) -> float:
    """Sweep a copy of the model; prints the suggestion, writes the plot, returns the rate."""
    from core.fileio import write_image
    from models.model_files import ModelFiles, pick_model
    name = pick_model(model_dir, cls.CLASS_NAME, force_name)
    files = ModelFiles(model_dir, name, cls.CLASS_NAME)
    with tempfile.TemporaryDirectory(prefix="visage_find_lr_") as tmp:
        lock = files.lock(exclusive=False, what="find-lr")     # no save lands half-copied
        try:
            copy_model(files, Path(tmp))
        finally:
            lock.release()
        model = cls(Path(tmp), src_dir, dst_dir, name, given, silent_start, cpu_only, workers, gpu_idxs)
        try:
            rates, smoothed = sweep(model, iterations)
        finally:
            model.close()
    suggested = suggest(rates, smoothed)
    out = files.path("find_lr.png")
    write_image(out, plot(rates, smoothed, suggested))
    low = float(rates[int(np.argmin(smoothed))])
    interact.log_info(f"Learning-rate sweep of {len(rates)} iterations ({rates[0]:.0e} .. {rates[-1]:.1e}): the loss "
                      f"was lowest at {low:.2g}; suggested learning rate {suggested:.2g} (plot: {out})")
    interact.log_info(f"Train with it: --opt learning_rate={suggested:.2g} (the model's saved files were not changed)")
    return suggested
