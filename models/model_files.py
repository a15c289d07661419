"""A model's files on disk, named `<name>_<Model>_<part>` as in DeepFaceLab, saved as one unit.

Each part of the network is its own `.npz` (plain arrays, loaded with allow_pickle=False),
so deleting `<name>_SAEHD_inter_B.npz` re-initialises just that part on the next start.
Options, iteration and loss history live in `<name>_<Model>_data.json`, with a manifest of
every part file's SHA-256; each part also carries the iteration it was saved at.

A save is one transaction (`save`):
1. the current complete save is hard-linked into `<name>_<Model>_previous/` (copied where the
   file system has no hard links), replacing the older one there;
2. a marker `<name>_<Model>_saving.json` says a save is under way;
3. every part is written atomically, then data.json with the new manifest (the commit);
4. the marker is removed.
Loading (`load_generation`) trusts the top-level files when no save was interrupted. After
an interrupted save (marker left by kill -9, power loss or a full disk) it uses them only if
they all match data.json's manifest, and otherwise falls back to the previous save with one
line — so the weights, optimizer and data.json always come from one iteration.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import interact
from core.errors import VisageError
from core.fileio import atomic_write_bytes, atomic_write_json, read_json, sha256_file
from models.model_check import check_arrays, check_data, check_model_name

BACKUP_SLOTS = 24
STAMP = "__iter__"                 # the iteration a part file was saved at


@dataclass
class Generation:
    """One complete save: its folder (the model folder or `previous/`) and its data.json."""
    folder: Path
    data: dict


class ModelFiles:
    def __init__(self, model_dir: Path, name: str, model_class: str):
        check_model_name(name)
        self.dir = Path(model_dir)
        self.name = name
        self.model_class = model_class
        self.prefix = f"{name}_{model_class}_"
        self.generation: Generation | None = None
        self._top_complete = False      # the top-level files are one complete save (may be snapshot)

    def path(self, part: str) -> Path:
        return self.dir / f"{self.prefix}{part}"

    @property
    def data_path(self) -> Path:
        return self.path("data.json")

    @property
    def previous_dir(self) -> Path:
        return self.path("previous")

    @property
    def marker_path(self) -> Path:
        return self.path("saving.json")

    @property
    def lock_path(self) -> Path:
        return self.path("lock")

    def lock(self, exclusive: bool, what: str):
        from models.model_lock import ModelLock
        self.dir.mkdir(parents=True, exist_ok=True)
        return ModelLock(self.lock_path, exclusive, what, f"{self.name}_{self.model_class}")

    # --- loading -------------------------------------------------------------------------------
    def load_generation(self) -> Generation | None:
        """The save to load from (None for a new model); falls back to the previous save if needed."""
        interrupted = self.marker_path.exists()
        try:
            data = self._read_data(self.dir)
        except VisageError as e:
            problem, data = str(e), None
        else:
            problem = "" if data is None else self._mismatch(self.dir, data, strict=interrupted)
        if data is not None and not problem:
            self._top_complete = True
            if interrupted:                 # killed after the commit: the new save is whole
                self.marker_path.unlink(missing_ok=True)
            return self._use(Generation(self.dir, data))
        if data is None and not problem and not interrupted:
            return None                     # a new model
        reason = problem or "the last save did not finish"
        previous = self._previous_generation()
        if previous is not None:
            interact.log_warn(f"{self.name}_{self.model_class}: {reason}; loading the previous save "
                              f"(iteration {previous.data['iter']}) from {self.previous_dir.name}")
            return self._use(previous)
        if data is None and not problem:
            interact.log_warn(f"{self.name}_{self.model_class}: its first save did not finish; starting it anew")
            return None
        raise VisageError(f"model {self.name}_{self.model_class} in {self.dir}: {reason}, and there is no complete "
                          f"previous save; restore one from {self.path('autobackups').name} or delete its files "
                          f"to start anew")

    def _use(self, generation: Generation) -> Generation:
        self.generation = generation
        return generation

    def _read_data(self, folder: Path) -> dict | None:
        path = folder / self.data_path.name
        if not path.is_file():
            return None
        raw = read_json(path)               # its errors name the file already
        try:
            return check_data(raw)
        except VisageError as e:
            raise VisageError(f"{path.name} is damaged ({e})") from None

    def _mismatch(self, folder: Path, data: dict, strict: bool) -> str:
        """Why `folder` is not the complete save `data` describes ('' if it is).

        A missing part is a deliberate deletion (re-initialised), unless `strict`. A part that
        differs from the manifest is either a half-finished save (`strict`) or a file the user
        put there, which is used with one line.
        """
        for part, digest in data.get("files", {}).items():
            path = folder / f"{self.prefix}{part}"
            if not path.is_file():
                if strict:
                    return f"{path.name} is missing"
                continue
            if sha256_file(path) != digest:
                if strict:
                    return "the last save did not finish"
                interact.log_warn(f"{path.name} is not the file of the last save (iteration {data['iter']}); "
                                  f"using it as it is")
        return ""

    def _previous_generation(self) -> Generation | None:
        folder = self.previous_dir
        try:
            data = self._read_data(folder)
        except VisageError:
            return None
        if data is None or self._mismatch(folder, data, strict=True):
            return None
        return Generation(folder, data)

    def load_arrays(self, part: str) -> dict[str, np.ndarray] | None:
        """A part's arrays from the loaded save (without the iteration stamp); None if it has no file."""
        folder = self.generation.folder if self.generation else self.dir
        arrays = self.read_part(folder / f"{self.prefix}{part}.npz")
        if arrays is None:
            return None
        arrays.pop(STAMP, None)
        check_arrays(arrays, f"{self.prefix}{part}.npz")
        return arrays

    @staticmethod
    def read_part(path: Path) -> dict[str, np.ndarray] | None:
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception as e:            # zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error...
            raise VisageError(f"{path} is damaged ({type(e).__name__}: {e}); restore the model from its "
                              f"autobackups folder or delete the file to re-initialise that part") from None

    def load_parts(self, parts: dict) -> list[str]:
        """Set each network part's weights from the loaded save; returns the parts that have no file."""
        fresh = []
        for part, model in parts.items():
            arrays = self.load_arrays(part) if self.generation else None
            if arrays is None:
                fresh.append(part)
                continue
            weights = [arrays[k] for k in sorted(arrays)]
            if [tuple(w.shape) for w in weights] != [tuple(w.shape) for w in model.weights]:
                raise VisageError(f"{self.path(part + '.npz')} does not fit this model's options; "
                                  f"delete it to re-initialise the part")
            model.set_weights(weights)
        return fresh

    # --- saving --------------------------------------------------------------------------------
    def save(self, parts: dict[str, dict[str, np.ndarray]], data: dict) -> None:
        """Write every part and data.json as one save (see the module's docstring)."""
        iteration = int(data["iter"])
        self.dir.mkdir(parents=True, exist_ok=True)
        self._snapshot()
        self._top_complete = False          # until this save is whole
        atomic_write_json(self.marker_path, {"iter": iteration, "pid": os.getpid()})
        manifest = {}
        for part, arrays in parts.items():
            buf = io.BytesIO()
            np.savez(buf, **arrays, **{STAMP: np.int64(iteration)})
            blob = buf.getvalue()
            manifest[f"{part}.npz"] = hashlib.sha256(blob).hexdigest()
            atomic_write_bytes(self.path(f"{part}.npz"), blob)
        atomic_write_json(self.data_path, {**data, "files": manifest})
        fsync_dir(self.dir)
        self.marker_path.unlink()
        fsync_dir(self.dir)
        self._top_complete = True
        self.generation = Generation(self.dir, {**data, "files": manifest})

    def _snapshot(self) -> None:
        """Keep the current complete save in previous/ until the new one is whole."""
        if not self._top_complete:
            if self.generation is None:         # a new model: a stale previous/ is not its own
                shutil.rmtree(self.previous_dir, ignore_errors=True)
            return
        data = self.generation.data
        tmp, old = self.path("previous.tmp"), self.path("previous.old")
        for d in (tmp, old):
            shutil.rmtree(d, ignore_errors=True)
        tmp.mkdir()
        for name in [f"{self.prefix}{part}" for part in data.get("files", {})] + [self.data_path.name]:
            src = self.dir / name
            if src.is_file():
                link_or_copy(src, tmp / name)
        fsync_dir(tmp)
        if self.previous_dir.exists():
            self.previous_dir.rename(old)
        tmp.rename(self.previous_dir)
        fsync_dir(self.dir)
        shutil.rmtree(old, ignore_errors=True)

    def files(self) -> list[Path]:
        """The model's own top-level files (not the lock or the save marker)."""
        skip = {self.lock_path.name, self.marker_path.name}
        return sorted(p for p in self.dir.glob(f"{glob_escape(self.prefix)}*") if p.is_file() and p.name not in skip)

    def folders(self) -> list[Path]:
        return [self.path(n) for n in ("autobackups", "history", "previous")]

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
            link_or_copy(p, tmp / p.name)
        fsync_dir(tmp)
        tmp.rename(root / "01")
        return root / "01"

    def rename(self, new_name: str) -> None:
        check_model_name(new_name)
        new_prefix = f"{new_name}_{self.model_class}_"
        backups = self.path("autobackups")
        slots = sorted(backups.iterdir()) if backups.is_dir() else []
        for folder in [self.previous_dir, *slots]:
            for p in folder.glob(f"{glob_escape(self.prefix)}*") if folder.is_dir() else ():
                p.rename(p.with_name(p.name.replace(self.prefix, new_prefix, 1)))
        for p in self.files() + [d for d in self.folders() if d.exists()]:
            p.rename(p.with_name(p.name.replace(self.prefix, new_prefix, 1)))

    def delete(self) -> None:
        for p in self.files():
            p.unlink()
        for d in self.folders():
            shutil.rmtree(d, ignore_errors=True)


def link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def fsync_dir(folder: Path) -> None:
    """Make renames in `folder` durable (POSIX; Windows has no directory handles for this)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def glob_escape(text: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def list_models(model_dir: Path, model_class: str) -> list[str]:
    """Names of saved models of this class, most recently used first."""
    suffix = f"_{model_class}_data.json"
    found = [(p.stat().st_mtime, p.name[:-len(suffix)]) for p in Path(model_dir).glob(f"*{suffix}")]
    return [name for _, name in sorted(found, reverse=True)]


def pick_model(model_dir: Path, model_class: str, force_name: str | None) -> str:
    """DeepFaceLab's picker: choose by number or name, `r` rename, `d` delete, a new name creates."""
    if force_name:
        check_model_name(force_name)
        model_dir.mkdir(parents=True, exist_ok=True)
        return force_name
    model_dir.mkdir(parents=True, exist_ok=True)
    names = list_models(model_dir, model_class)
    if not interact.is_interactive():
        return names[0] if names else "new"
    while True:
        if not names:
            answer = interact.input_str("No saved models found. Enter a name of a new model", "new",
                                        help_text="A plain name (no folders) for the new model; its files are "
                                                  "called <name>_<Model>_... in the model folder.")
        else:
            answer = _picker_answer(names)
            if answer in ("r", "d"):
                _rename_or_delete(model_dir, model_class, names, answer)
                names = list_models(model_dir, model_class)
                continue
            if answer.isdigit() and int(answer) < len(names):
                return names[int(answer)]
        try:
            return check_model_name(answer)
        except VisageError as e:
            interact.log_err(str(e))


PICKER_HELP = ("Enter the number of a saved model (Enter = 0, the latest) to continue training it, a new name to "
               "create a model, r to rename or d to delete a saved model.")


def _picker_answer(names: list[str]) -> str:
    interact.log_info("Choose one of saved models, or enter a name to create a new model.")
    interact.log_info("[r] : rename\n[d] : delete")
    for i, n in enumerate(names):
        interact.log_info(f"[{i}] : {n}" + ("  - latest" if i == 0 else ""))
    return interact.input_str("", "0", help_text=PICKER_HELP)


def _rename_or_delete(model_dir: Path, model_class: str, names: list[str], answer: str) -> None:
    which = interact.input_str(f"Enter the number of the model to {'rename' if answer == 'r' else 'delete'}", "0")
    if not which.isdigit() or int(which) >= len(names):
        return
    files = ModelFiles(model_dir, names[int(which)], model_class)
    with files.lock(exclusive=True, what="rename/delete"):
        if answer == "r":
            try:
                files.rename(interact.input_str("Enter new name of the model", names[int(which)]))
            except VisageError as e:
                interact.log_err(str(e))
        elif interact.input_bool(f"Delete model {names[int(which)]} and all its files?", False):
            files.delete()
