"""A model's files on disk, named `<name>_<Model>_<part>` as in DeepFaceLab.

Each part of the network is its own `.npz` (plain arrays, loaded with allow_pickle=False),
so deleting `<name>_SAEHD_inter_B.npz` re-initialises just that part on the next start.
Options, iteration, loss history and preview choice live in `<name>_<Model>_data.json`,
written last on every save; every file is written atomically, so a kill at any moment
leaves a model that loads.
"""
from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np

from core import interact
from core.errors import VisageError
from core.fileio import atomic_write_bytes, atomic_write_json, read_json

BACKUP_SLOTS = 24


class ModelFiles:
    def __init__(self, model_dir: Path, name: str, model_class: str):
        self.dir = Path(model_dir)
        self.name = name
        self.model_class = model_class
        self.prefix = f"{name}_{model_class}_"

    def path(self, part: str) -> Path:
        return self.dir / f"{self.prefix}{part}"

    @property
    def data_path(self) -> Path:
        return self.path("data.json")

    def load_data(self) -> dict | None:
        return read_json(self.data_path) if self.data_path.is_file() else None

    def save_data(self, data: dict) -> None:
        atomic_write_json(self.data_path, data)

    def save_arrays(self, part: str, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self.path(f"{part}.npz"), buf.getvalue())

    def load_arrays(self, part: str) -> dict[str, np.ndarray] | None:
        path = self.path(f"{part}.npz")
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError) as e:
            raise VisageError(f"{path} is damaged ({e}); delete it to re-initialise that part") from e

    def load_parts(self, parts: dict) -> list[str]:
        """Set each network part's weights from its file; returns the parts that have no file."""
        fresh = []
        for part, model in parts.items():
            arrays = self.load_arrays(part)
            if arrays is None:
                fresh.append(part)
                continue
            weights = [arrays[k] for k in sorted(arrays)]
            if [tuple(w.shape) for w in weights] != [tuple(w.shape) for w in model.weights]:
                raise VisageError(f"{self.path(part + '.npz')} does not fit this model's options; "
                                  f"delete it to re-initialise the part")
            model.set_weights(weights)
        return fresh

    def files(self) -> list[Path]:
        return sorted(p for p in self.dir.glob(f"{glob_escape(self.prefix)}*") if p.is_file())

    def backup(self) -> Path:
        """Copy the model into autobackups/01, shifting older backups up (24 slots, as DFL)."""
        root = self.path("autobackups")
        root.mkdir(parents=True, exist_ok=True)
        oldest = root / f"{BACKUP_SLOTS:02d}"
        if oldest.exists():
            shutil.rmtree(oldest)
        for i in range(BACKUP_SLOTS - 1, 0, -1):
            slot = root / f"{i:02d}"
            if slot.exists():
                slot.rename(root / f"{i + 1:02d}")
        tmp = root / ".tmp_01"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for p in self.files():
            shutil.copy2(p, tmp / p.name)
        tmp.rename(root / "01")
        return root / "01"


def glob_escape(text: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def list_models(model_dir: Path, model_class: str) -> list[str]:
    """Names of saved models of this class, most recently used first."""
    suffix = f"_{model_class}_data.json"
    found = [(p.stat().st_mtime, p.name[:-len(suffix)]) for p in Path(model_dir).glob(f"*{suffix}")]
    return [name for _, name in sorted(found, reverse=True)]


def pick_model(model_dir: Path, model_class: str, force_name: str | None) -> str:
    """DeepFaceLab's model picker: choose by number or name, `r` rename, `d` delete, new name creates."""
    model_dir.mkdir(parents=True, exist_ok=True)
    if force_name:
        return force_name
    names = list_models(model_dir, model_class)
    if not interact.is_interactive():
        return names[0] if names else "new"
    while True:
        if not names:
            return interact.input_str("No saved models found. Enter a name of a new model", "new")
        interact.log_info("Choose one of saved models, or enter a name to create a new model.")
        interact.log_info("[r] : rename\n[d] : delete")
        for i, n in enumerate(names):
            interact.log_info(f"[{i}] : {n}" + ("  - latest" if i == 0 else ""))
        answer = interact.input_str("", "0")
        if answer in ("r", "d"):
            which = interact.input_str(f"Enter the number of the model to {'rename' if answer == 'r' else 'delete'}", "0")
            if not which.isdigit() or int(which) >= len(names):
                continue
            old = ModelFiles(model_dir, names[int(which)], model_class)
            if answer == "r":
                new = interact.input_str("Enter new name of the model", names[int(which)])
                for p in old.files() + [old.path("autobackups"), old.path("history")]:
                    if p.exists():
                        p.rename(p.with_name(p.name.replace(old.prefix, f"{new}_{model_class}_", 1)))
            elif interact.input_bool(f"Delete model {names[int(which)]} and all its files?", False):
                for p in old.files():
                    p.unlink()
                for d in (old.path("autobackups"), old.path("history")):
                    shutil.rmtree(d, ignore_errors=True)
            names = list_models(model_dir, model_class)
            continue
        if answer.isdigit() and int(answer) < len(names):
            return names[int(answer)]
        return answer

