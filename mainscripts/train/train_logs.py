"""What training records beside the model: validation passes, history.csv, TensorBoard events, the ETA.

One `TrainLogs` per training run, fed once per iteration by the trainer (`after_iteration`):
- every `models.validation.VALIDATE_EVERY` iterations the held-out faces (models/validation.py) are measured;
  the figures go into the model's `validation_history` (data.json, the preview's loss graph),
  the CSV, the events and one console line;
- `<name>_<Model>_history.csv`: one row per iteration (iteration, time, losses, ms, learning
  rate, validation figures where measured), appended in whole lines; rows past the model's
  saved iteration (written before a crash the save did not survive) are dropped on start, so
  the file always matches the model;
- `<name>_<Model>_logs/events.out.tfevents.*` (DeepFaceLab's `<name>_<Model>_` naming, one
  file per run): mean losses, ms/iter and learning rate every `SCALAR_EVERY` iterations, the
  validation figures, and the preview image every `IMAGE_EVERY` iterations; written without
  TensorFlow (core/tb_events.py). `tensorboard --logdir <model folder>` shows them;
- the ETA to `target_iter` from a running mean of ms/iter, for the status line and summary.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from core.fileio import atomic_write_bytes

SCALAR_EVERY = 10
IMAGE_EVERY = 2000
FLUSH_SECONDS = 30
CSV_HEADER = ("iteration,time,src_loss,dst_loss,ms_per_iter,learning_rate,"
              "val_src_loss,val_dst_loss,val_src_ssim,val_dst_ssim")


def format_eta(seconds: float) -> str:
    s = int(round(seconds))
    days, s = divmod(s, 86400)
    text = f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}d {text}" if days else text


def learning_rate(model) -> float:
    import keras
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def trim_csv(path: Path, last_iter: int) -> None:
    """Keep the header and whole rows up to `last_iter`; rewritten (atomically) only when something goes."""
    if not path.is_file():
        atomic_write_bytes(path, (CSV_HEADER + "\n").encode())
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    whole = lines[:-1]                       # the part after the last newline is a cut-short row
    keep = [CSV_HEADER]
    for line in whole[1:]:
        head = line.split(",", 1)[0]
        if head.isdigit() and int(head) <= last_iter:
            keep.append(line)
    if not whole or whole[0] != CSV_HEADER or len(keep) != len(whole) or lines[-1]:
        atomic_write_bytes(path, ("\n".join(keep) + "\n").encode())


class TrainLogs:
    def __init__(self, model, preview_image: Callable[[], np.ndarray] | None = None,
                 validate_every: int | None = None):
        from core.tb_events import EventWriter
        from models import validation
        self.model, self.preview_image = model, preview_image
        self.validate_every = validation.VALIDATE_EVERY if validate_every is None else validate_every
        self.csv_path = model.files.path("history.csv")
        trim_csv(self.csv_path, model.iter)
        self.events = EventWriter(model.files.path("logs"))
        held_out = getattr(model.batches, "validation_batch", None)      # XSeg's labelled-face sampler has none
        self.faces = held_out() if held_out and self.validate_every else None
        self.lr = learning_rate(model)
        self.ms_mean = 0.0
        self._rows: list[str] = []
        self._sums, self._n = np.zeros(3), 0
        self._last_flush = time.monotonic()

    def after_iteration(self, ms: float) -> str | None:
        """Record the iteration just trained; returns a validation line when one was measured."""
        m = self.model
        src, dst = m.loss_history[-1][:2]          # the discriminators' columns (GAN, true face) follow
        self.ms_mean = ms if not self.ms_mean else 0.98 * self.ms_mean + 0.02 * ms
        target = m.options["target_iter"]
        m.eta = format_eta(max(0, target - m.iter) * self.ms_mean / 1000) if target else ""
        self._sums += (src, dst, ms)
        self._n += 1
        if m.iter % SCALAR_EVERY == 0:
            mean = self._sums / self._n
            self.events.scalars(m.iter, {"loss/src": mean[0], "loss/dst": mean[1], "ms_per_iter": mean[2],
                                         "learning_rate": self.lr})
            self._sums[:], self._n = 0, 0
        val = self.validate() if self.faces is not None and m.iter % self.validate_every == 0 else None
        cols = [str(m.iter), f"{time.time():.3f}", f"{src:.5f}", f"{dst:.5f}", f"{ms:.1f}", f"{self.lr:.3g}"]
        cols += [f"{v:.5f}" for v in val[1:]] if val else [""] * 4
        self._rows.append(",".join(cols))
        if self.preview_image is not None and m.iter % IMAGE_EVERY == 0:
            from core.tb_events import image_value
            self.events.add(m.iter, [image_value("preview", self.preview_image())])
        if time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self.flush()
        if val is None:
            return None
        return (f"[{time.strftime('%H:%M:%S')}][#{m.iter:06d}][validation, {len(self.faces.src.target)}+"
                f"{len(self.faces.dst.target)} held-out faces] src loss {val[1]:.4f} SSIM {val[3]:.3f}, "
                f"dst loss {val[2]:.4f} SSIM {val[4]:.3f}")

    def validate(self) -> list[float]:
        """One pass over the held-out faces: appended to the model's validation_history and the events."""
        from models.validation import figures
        f = figures(self.model, self.faces.src, self.faces.dst)
        row = [self.model.iter, *(round(f[k], 5) for k in ("src_loss", "dst_loss", "src_ssim", "dst_ssim"))]
        self.model.validation_history.append(row)
        self.events.scalars(self.model.iter, {f"validation/{k}": v for k, v in f.items()})
        return row

    def flush(self) -> None:
        """Whole CSV rows in one append; the events file flushed."""
        if self._rows:
            fd = os.open(self.csv_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, ("\n".join(self._rows) + "\n").encode())
            finally:
                os.close(fd)
            self._rows.clear()
        self.events.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        self.events.close()
