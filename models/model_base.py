"""ModelBase: what every trainable model shares — options, files, saves, backups, previews.

A model subclass declares its option schema and the face sets it trains on (`FACE_SETS`),
and implements `build_parts(options)` (its networks, one weights file each), `build()`
(optimizer, train step), `make_batches()`, `train_step(batch)`, `preview_outputs(src, dst)`
and `build_inference(options, parts)`: the graph merge and export use. Everything about
choosing a model, asking or taking options, loading and saving weights, loss history,
autobackups and preview images is here, once; the predictor and `exportdfm` rebuild a saved
model from its options and weights through the same two class methods, so a new model plugs
in without touching them.
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
from models.validation import VALIDATION_OPTION

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
    VALIDATION_OPTION,
)


# The inference graph's names and order, DeepFaceLab's (DeepFaceLive reads them from a .dfm):
# in_face (N, res, res, 3) BGR float 0..1 -> dst face mask, predicted (celeb) face, its mask.
INFERENCE_INPUT = "in_face"
INFERENCE_OUTPUTS = ("out_face_mask", "out_celeb_face", "out_celeb_face_mask")
MORPH_INPUT = "morph_value"      # AMP's second input, shape (1,): the share of the swap taken from the src side


def inference_model(inputs, face_mask, celeb_face, celeb_face_mask):
    """A functional keras.Model with DeepFaceLab's output names and order (INFERENCE_OUTPUTS);
    `inputs`: the `in_face` tensor, or a list of it and the model's own inputs."""
    import keras
    outs = [keras.layers.Identity(dtype="float32", name=n)(t)       # float32 out under mixed precision too
            for n, t in zip(INFERENCE_OUTPUTS, (face_mask, celeb_face, celeb_face_mask))]
    return keras.Model(inputs, outs, name="inference")


class ModelBase:
    CLASS_NAME = ""
    SWAPS_FACES = True             # merge and export use its inference graph (a mask model would not)
    FACE_SETS: tuple[str, ...] = ("src", "dst")   # the aligned-face folders training reads, by role
    ASKS_OPTIONS = True            # Quick96 asks nothing, like DeepFaceLab's
    PREVIEW_EVERY = 10             # iterations between history previews (scaled by resolution)
    MERGE_OPTIONS: tuple[str, ...] = ()    # merger options (core/merge/config.py) only this model uses
    extra_losses: tuple[float, ...] = ()   # the last step's discriminator losses: loss_history columns 3 and on

    def __init__(self, model_dir: Path, src_dir: Path | None = None, dst_dir: Path | None = None,
                 force_name: str | None = None,
                 given: dict[str, Any] | None = None, silent_start: bool = False, cpu_only: bool = False,
                 workers: int = 0, gpu_idxs: list[int] | None = None, pretraining_dir: Path | None = None):
        from core.nn.backend import select_devices
        self.devices = select_devices(cpu_only, gpu_idxs, ask=not silent_start and interact.is_interactive(),
                                      parallel=True)
        self.face_dirs, self.workers = self.face_sets_given({"src": src_dir, "dst": dst_dir}), workers
        self.pretraining_dir = Path(pretraining_dir) if pretraining_dir else None
        name = pick_model(Path(model_dir), self.CLASS_NAME, force_name)
        self.files = ModelFiles(Path(model_dir), name, self.CLASS_NAME)
        self.lock = self.files.lock(exclusive=True, what="train")
        try:
            generation = self.files.load_generation()
            data = generation.data if generation else {}
            self.is_first_run = generation is None
            self.iter: int = data.get("iter", 0)
            self.loss_history: list[list[float]] = data.get("loss_history", [])
            self.held_out = data.get("validation")          # models/validation.py; set by make_batches
            self.validation_history: list[list[float]] = data.get("validation_history", [])
            self.eta = ""                                   # to target_iter, kept by mainscripts/train/train_logs.py
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

    @classmethod
    def face_sets_given(cls, given: dict[str, Path | None]) -> dict[str, Path]:
        """The folders of the face sets this model reads (FACE_SETS); one line naming a missing one."""
        missing = [role for role in cls.FACE_SETS if not given.get(role)]
        if missing:
            raise VisageError(f"{cls.CLASS_NAME} trains on {' and '.join(cls.FACE_SETS)} faces: give "
                              + " and ".join(f"--training-data-{role}-dir" for role in missing))
        return {role: Path(given[role]) for role in cls.FACE_SETS}

    # --- subclass hooks ------------------------------------------------------------------
    @classmethod
    def build_parts(cls, options: dict[str, Any]) -> dict:
        """The model's networks (name -> keras.Model), fresh; each saves to its own weights file."""
        raise NotImplementedError

    @classmethod
    def face_crop(cls, options: dict[str, Any]) -> tuple[int, str]:
        """(resolution, face type name) of the face crops the model reads, from its options."""
        raise NotImplementedError

    @classmethod
    def build_inference(cls, options: dict[str, Any], parts: dict):
        """The swap graph from the parts: a keras.Model from `in_face` (and any model input such as
        AMP's `morph_value`) to INFERENCE_OUTPUTS, used by the merger's predictor and by export."""
        raise NotImplementedError

    @classmethod
    def reconstruct(cls, options: dict[str, Any], parts: dict, faces):
        """dst -> dst: the model's redrawing of dst faces through its dst path (evaluate's
        reconstruction figure); None for a model without one."""
        return None

    @classmethod
    def export(cls, options: dict[str, Any], parts: dict, path: Path, quantize: bool = False,
               fmt: str = "dfm") -> None:
        """Write the inference graph as one ONNX file (a DeepFaceLab .dfm is exactly that), atomically."""
        from models.onnx_export import export_onnx
        export_onnx(cls.build_inference(options, parts), Path(path), quantize, graph_name=cls.CLASS_NAME, fmt=fmt)

    def build(self) -> None:
        raise NotImplementedError

    def make_batches(self):
        raise NotImplementedError

    def train_step(self, batch) -> tuple[float, float]:
        raise NotImplementedError

    def preview_outputs(self, src: np.ndarray, dst: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def optimizer_parts(self) -> dict[str, Any]:
        """{file part: optimizer}: each optimizer's state is saved and loaded as a part of its own."""
        return {}

    def parts_to_reset(self) -> list[str]:
        """Parts to re-initialise although saved (e.g. SAEHD's inter after pretraining); the model says why."""
        return []

    # --- weights ----------------------------------------------------------------------------
    def _load_weights(self) -> list[str]:
        """Load each part's file; parts without a file, or reset, stay freshly initialised (returned).

        Optimizer state is kept for every part that was loaded and starts anew for the fresh
        ones, so deleting inter_B (model reuse) does not jolt the encoder with reset moments.
        """
        reset = [p for p in self.parts_to_reset() if p in self.parts]
        missing = self.files.load_parts({k: v for k, v in self.parts.items() if k not in reset})
        if not self.is_first_run and missing:
            interact.log_info(f"Initialising {', '.join(missing)} (no saved weights)")
        fresh = missing + reset
        fresh_vars = {v.path.replace("/", "_") for p in fresh for v in self.parts[p].weights}
        from core.nn.optimizers import load_optimizer_state
        for part, opt in self.optimizer_parts().items():
            state = self.files.load_arrays(part) if self.files.generation else None
            if state is None:
                continue
            kept = {k: a for k, a in state.items() if k.partition("/")[2].rpartition("_")[0] not in fresh_vars}
            try:
                load_optimizer_state(opt, kept, strict=len(kept) == len(state))
            except ValueError as e:
                raise VisageError(f"{self.files.path(part + '.npz')} does not fit this model ({e}); "
                                  f"delete it to start the optimizer anew") from None
        return fresh

    def save(self) -> None:
        """Every part, the optimizer and data.json as one unit (ModelFiles.save)."""
        arrays = {part: {f"{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(model.weights)}
                  for part, model in self.parts.items()}
        from core.nn.optimizers import optimizer_state
        arrays.update({part: optimizer_state(opt) for part, opt in self.optimizer_parts().items()})
        self.files.save(arrays, {"model": self.CLASS_NAME, "iter": self.iter, "options": self.options,
                                 "loss_history": self.loss_history, "saved_at": time.time(),
                                 "validation": self.held_out, "validation_history": self.validation_history})
        from core.fileio import atomic_write_bytes
        atomic_write_bytes(self.files.path("summary.txt"), self.summary().encode("utf-8"))

    def backup(self) -> Path:
        return self.files.backup()

    # --- training ---------------------------------------------------------------------------
    def train_iteration(self) -> tuple[float, float]:
        batch = next(self.batches)
        src_loss, dst_loss = self.train_step(batch)
        if not np.isfinite([src_loss, dst_loss, *self.extra_losses]).all():
            raise NonFiniteLoss(self.iter + 1, src_loss, dst_loss)
        self.iter += 1
        self.loss_history.append([round(float(v), 5) for v in (src_loss, dst_loss, *self.extra_losses)])
        return float(src_loss), float(dst_loss)

    def hold_out(self, names: dict[str, list[str]]) -> dict[str, list[str]]:
        """The faces of each side kept out of training (given to TrainingBatches), fixed on the first run."""
        from models.validation import record_for
        self.held_out = record_for(self.held_out, names, self.options["validation_faces"])
        return self.held_out

    def reached_target(self) -> bool:
        return bool(self.options["target_iter"]) and self.iter >= self.options["target_iter"]

    def summary(self) -> str:
        from core.nn.backend import describe_backend
        width = max(len(k) for k in self.options) + 2
        lines = [f"=== Model summary: {self.files.name}_{self.CLASS_NAME} ===", f"{'iteration':>{width}} : {self.iter}",
                 f"{'devices':>{width}} : {self.devices}", f"{'backend':>{width}} : {describe_backend()}",
                 f"{'precision in use':>{width}} : {self.precision}"]
        if self.eta:
            lines.append(f"{'eta to target':>{width}} : {self.eta}")
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
