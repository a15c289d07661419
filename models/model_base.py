"""ModelBase: what every trainable model shares — options, files, saves, backups, previews.

A model subclass declares its option schema and implements `build()` (network parts,
optimizer, sample configs), `losses(batch)` and `preview_outputs(src, dst)`. Everything
about choosing a model, asking or taking options, loading and saving weights, loss
history, autobackups and preview images is here, once.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from core import interact
from core.errors import VisageError
from core.options import Option, resolve
from models.model_files import ModelFiles, pick_model

COMMON_OPTIONS = (
    Option("autobackup_hour", int, 0, "Back the model up every N hours into <name>_<Model>_autobackups "
           "(24 rotating slots). 0 = off.", prompt="Autobackup every N hour", lo=0, hi=24),
    Option("write_preview_history", bool, False, "Save a preview image every few iterations into "
           "<name>_<Model>_history, to watch the progress later.", prompt="Write preview history"),
    Option("target_iter", int, 0, "Stop (and save) when this iteration is reached. 0 = train until stopped.",
           prompt="Target iteration", lo=0),
    Option("precision", str, "auto", "Number format of the network's maths: auto = bf16 on CPUs and GPUs that "
           "compute it natively (AVX512-BF16/AMX, NVIDIA Ampere or newer), mixed fp16 on older NVIDIA GPUs, else "
           "fp32. Weights and losses always stay fp32.",
           prompt="Precision", choices=("auto", "fp32", "bf16", "fp16")),
)


class ModelBase:
    CLASS_NAME = ""
    ASKS_OPTIONS = True            # Quick96 asks nothing, like DeepFaceLab's
    PREVIEW_EVERY = 10             # iterations between history previews (scaled by resolution)

    def __init__(self, model_dir: Path, src_dir: Path, dst_dir: Path, force_name: str | None = None,
                 given: dict[str, Any] | None = None, silent_start: bool = False, cpu_only: bool = False,
                 workers: int = 0, gpu_idxs: list[int] | None = None):
        from core.nn.backend import select_devices
        self.devices = select_devices(cpu_only, gpu_idxs, ask=not silent_start and interact.is_interactive(),
                                      parallel=True)
        self.src_dir, self.dst_dir, self.workers = Path(src_dir), Path(dst_dir), workers
        name = pick_model(Path(model_dir), self.CLASS_NAME, force_name)
        self.files = ModelFiles(Path(model_dir), name, self.CLASS_NAME)
        self.lock = self.files.lock(exclusive=True, what="train")
        try:
            generation = self.files.load_generation()
            data = generation.data if generation else {}
            self.is_first_run = generation is None
            self.iter: int = data.get("iter", 0)
            self.loss_history: list[list[float]] = data.get("loss_history", [])
            self.saved_options(data, self.files.data_path)
            self.options = self._resolve_options(given or {}, data.get("options", {}), silent_start)
            from core.nn.backend import set_precision
            self.precision = set_precision(self.options["precision"])
            self.parts: dict = {}
            self.build()
            self.reinitialised = self._load_weights()
            self.batches = self.make_batches()
        except BaseException:
            self.lock.release()
            raise

    # --- options -------------------------------------------------------------------------
    @classmethod
    def model_options(cls) -> list[Option]:
        return []

    @classmethod
    def option_schema(cls) -> list[Option]:
        return list(COMMON_OPTIONS) + cls.model_options()

    @classmethod
    def saved_options(cls, data: dict, path: Path) -> dict[str, Any]:
        """A save's options, checked against the schema (types, choices, ranges) before any network is built."""
        try:
            return resolve(cls.option_schema(), {}, data.get("options", {}))
        except VisageError as e:
            raise VisageError(f"{path} is damaged ({e})") from None

    def _resolve_options(self, given: dict, saved: dict, silent_start: bool) -> dict[str, Any]:
        ask = self.ASKS_OPTIONS and not silent_start and interact.is_interactive() and (
            self.is_first_run or interact.input_in_time("Press enter in 2 seconds to override model settings.", 2))
        return resolve(self.option_schema(), given, saved, ask=ask)

    # --- subclass hooks ------------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def make_batches(self):
        raise NotImplementedError

    def train_step(self, batch) -> tuple[float, float]:
        raise NotImplementedError

    def preview_outputs(self, src: np.ndarray, dst: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def optimizer_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def load_optimizer_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pass

    # --- weights ----------------------------------------------------------------------------
    def _load_weights(self) -> list[str]:
        """Load each part's file; parts without a file stay freshly initialised (returned)."""
        fresh = self.files.load_parts(self.parts)
        if not self.is_first_run and fresh:
            interact.log_info(f"Initialising {', '.join(fresh)} (no saved weights)")
        opt = self.files.load_arrays("optimizer") if self.files.generation else None
        if opt is not None and not fresh:
            try:
                self.load_optimizer_arrays(opt)
            except ValueError as e:
                raise VisageError(f"{self.files.path('optimizer.npz')} does not fit this model ({e}); "
                                  f"delete it to start the optimizer anew") from None
        return fresh

    def save(self) -> None:
        """Every part, the optimizer and data.json as one unit (ModelFiles.save)."""
        arrays = {part: {f"{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(model.weights)}
                  for part, model in self.parts.items()}
        opt = self.optimizer_arrays()
        if opt:
            arrays["optimizer"] = opt
        self.files.save(arrays, {"model": self.CLASS_NAME, "iter": self.iter, "options": self.options,
                                 "loss_history": self.loss_history, "saved_at": time.time()})
        from core.fileio import atomic_write_bytes
        atomic_write_bytes(self.files.path("summary.txt"), self.summary().encode("utf-8"))

    def backup(self) -> Path:
        return self.files.backup()

    # --- training ---------------------------------------------------------------------------
    def train_iteration(self) -> tuple[float, float]:
        batch = next(self.batches)
        src_loss, dst_loss = self.train_step(batch)
        if not (np.isfinite(src_loss) and np.isfinite(dst_loss)):
            raise NonFiniteLoss(self.iter + 1, src_loss, dst_loss)
        self.iter += 1
        self.loss_history.append([round(float(src_loss), 5), round(float(dst_loss), 5)])
        return float(src_loss), float(dst_loss)

    def reached_target(self) -> bool:
        return bool(self.options["target_iter"]) and self.iter >= self.options["target_iter"]

    def summary(self) -> str:
        from core.nn.backend import describe_backend
        width = max(len(k) for k in self.options) + 2
        lines = [f"=== Model summary: {self.files.name}_{self.CLASS_NAME} ===", f"{'iteration':>{width}} : {self.iter}",
                 f"{'devices':>{width}} : {self.devices}", f"{'backend':>{width}} : {describe_backend()}",
                 f"{'precision in use':>{width}} : {self.precision}"]
        lines += [f"{k:>{width}} : {v}" for k, v in self.options.items()]
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        if hasattr(self, "batches") and hasattr(self.batches, "close"):
            self.batches.close()
        self.lock.release()


class NonFiniteLoss(RuntimeError):
    def __init__(self, iteration: int, src: float, dst: float):
        super().__init__(f"loss became non-finite at iteration {iteration} (src {src}, dst {dst})")
        self.iteration = iteration
