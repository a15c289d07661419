"""Putting a sort on disk: rejected faces to `<dir>_trash`, the rest renamed 00000.jpg, 00001.jpg...

A face's metadata lives inside its JPEG, so moving and renaming is all a sort does to a
file. The renames are two-phase, as in DeepFaceLab: every face first gets a temporary
name that cannot clash with a final one (`sorting_00012_<old name>`), then its final
name. Nothing is ever overwritten (a name held by a file outside the sort is skipped, a
name taken in the trash gets a `_1` suffix), Ctrl-C waits until the renames are done, and
after a crash each face still exists once under one of its names, with its metadata,
ready for the next sort.
"""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from core.errors import VisageError

TEMP_PREFIX = "sorting_"


@dataclass
class RenameReport:
    renamed: int = 0
    trashed: int = 0
    trash_dir: Path | None = None
    skipped_names: list[str] = field(default_factory=list)   # final names held by other files


def trash_dir_for(input_dir: Path) -> Path:
    """`<dir>_trash` beside the folder (resolved first, so `--input-dir .` works too)."""
    input_dir = Path(input_dir).resolve()
    return input_dir.parent / f"{input_dir.name}_trash"


def move_no_clobber(src: Path, dst: Path) -> None:
    """Rename src to dst, refusing to replace an existing dst (os.rename would on POSIX)."""
    if dst.exists() or dst.is_symlink():
        raise FileExistsError(f"{dst} already exists")
    os.rename(src, dst)


def _free_name(folder: Path, name: str) -> Path:
    """`name` in `folder`, or name_1, name_2... if that is taken."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    k = 1
    while candidate.exists():
        candidate = folder / f"{stem}_{k}{suffix}"
        k += 1
    return candidate


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, so a batch of renames is never cut in the middle."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _move(src: Path, dst: Path, what: str) -> None:
    try:
        move_no_clobber(src, dst)
    except OSError as e:
        raise VisageError(f"could not {what} {src.name} to {dst}: {e.strerror or e}; every face is still "
                          f"in {src.parent} or its trash folder (some named {TEMP_PREFIX}*), run sort again") from e


def apply_sort(input_dir: Path, order: Sequence[Path], trash: Sequence[Path]) -> RenameReport:
    """Move `trash` to `<input_dir>_trash`, then rename `order` to 00000.ext, 00001.ext... in that order."""
    input_dir = Path(input_dir)
    report = RenameReport()
    if len(set(order)) != len(order) or set(order) & set(trash):
        raise ValueError("a face is listed twice in the sort result")
    with deferred_interrupt():
        if trash:
            report.trash_dir = trash_dir_for(input_dir)
            report.trash_dir.mkdir(exist_ok=True)
            for src in trash:
                _move(src, _free_name(report.trash_dir, src.name), "move to trash")
                report.trashed += 1
        temps: list[Path] = []
        for i, src in enumerate(order):
            tmp = _free_name(input_dir, f"{TEMP_PREFIX}{i:05d}_{src.name}")
            _move(src, tmp, "rename")
            temps.append(tmp)
        ours = set(temps)
        held = {p.name.lower() for p in input_dir.iterdir() if p not in ours}
        n = 0
        for tmp in temps:
            while True:
                name = f"{n:05d}{tmp.suffix}"
                n += 1
                if name.lower() not in held:
                    break
                report.skipped_names.append(name)
            _move(tmp, input_dir / name, "rename")
            report.renamed += 1
    return report
