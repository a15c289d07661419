"""One process per model: an OS lock on `<name>_<Model>_lock`, released on exit or crash.

`train` (and renaming or deleting a model) takes it exclusively and writes its pid into the
file; merge and export take it shared, so several can read a model at once but none while it
trains. The operating system drops the lock when the holder exits, however it exits
(kill -9 included), so a stale lock file never blocks anyone. Windows has no shared locks
through msvcrt: there every holder is exclusive.
"""
from __future__ import annotations

import os
from pathlib import Path

from core.errors import VisageError

if os.name == "nt":
    import msvcrt
else:
    import fcntl


class ModelLock:
    def __init__(self, path: Path, exclusive: bool, what: str, model: str):
        self.file = open(path, "a+", encoding="utf-8")
        try:
            _lock(self.file, exclusive)
        except OSError:
            holder = _holder(self.file)
            self.file.close()
            raise VisageError(f"model {model} is in use by another Visage process ({holder}); "
                              f"stop it first, or use another model name") from None
        if exclusive:
            self.file.seek(0)
            self.file.truncate()
            self.file.write(f"pid {os.getpid()}, {what}\n")
            self.file.flush()

    def release(self) -> None:
        if not self.file.closed:
            self.file.close()          # closing the file drops the lock

    def __enter__(self) -> "ModelLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _lock(f, exclusive: bool) -> None:
    if os.name == "nt":
        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(f.fileno(), (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)


def _holder(f) -> str:
    """The trainer's pid as it wrote it, if that process still runs; else a merge or export."""
    if os.name == "nt":                # the locked byte cannot be read, and os.kill would signal
        return "see the other Visage windows"
    try:
        f.seek(0)
        text = f.read(200).strip()
        pid = int(text.split(",")[0].split()[1])
        os.kill(pid, 0)
        return text
    except (OSError, ValueError, IndexError):
        return "a merge or export"
