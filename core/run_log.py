"""Every command's log file: what the user saw, plus the traceback of an unexpected error.

Where it goes (the rule a DeepFaceLab user expects: logs live with the workspace they are about):
1. `$VISAGE_LOG_DIR` when set;
2. else `<workspace>/logs/`, the workspace being the nearest folder named `workspace` above
   any path the command was given (`--input-dir workspace/data_src/aligned` ->
   `workspace/logs/`), or the folder given as `--workspace` (the demo);
3. else `workspace/logs/` in the current folder when that `workspace/` exists;
4. else `~/.visage/logs/`.
Each run writes `<command>_<YYYYmmdd_HHMMSS>_<pid>.log`, never into a frame or face folder,
and then deletes that command's oldest logs in the folder beyond the newest `KEEP_LOGS`
(the run's own included), so a workspace's logs/ stays small however often a command runs.

The log is a copy of stdout and stderr, written line by line as the run goes (so a crash or
a kill keeps every line before it; an atomic write would lose them all). Progress bars are
kept as their last state only, and colour codes are dropped. Prompts typed at a terminal go
straight to it and are not copied.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WORKSPACE = "workspace"
KEEP_LOGS = 20                  # logs kept per command and folder (the newest ones)


def _given_paths(args: argparse.Namespace) -> list[Path]:
    """The paths among a command's arguments (names ending in _dir, _file, workspace ...)."""
    paths = []
    for name, value in sorted(vars(args).items()):
        if isinstance(value, str) and value and (name.endswith(("_dir", "_file")) or name == WORKSPACE):
            paths.append(Path(value))
    return paths


def log_dir(args: argparse.Namespace, cwd: Path | None = None) -> Path:
    """The folder this run's log goes to (the rule in the module docstring)."""
    if os.environ.get("VISAGE_LOG_DIR"):
        return Path(os.environ["VISAGE_LOG_DIR"])
    cwd = cwd or Path.cwd()
    if isinstance(getattr(args, WORKSPACE, None), str):
        return (cwd / args.workspace) / "logs"
    for path in _given_paths(args):
        full = cwd / path
        for folder in (full, *full.parents):
            if folder.name == WORKSPACE:
                return folder / "logs"
    if (cwd / WORKSPACE).is_dir():
        return cwd / WORKSPACE / "logs"
    return Path.home() / ".visage" / "logs"


def prune_logs(folder: Path, command: str, keep: int = KEEP_LOGS) -> list[Path]:
    """Delete `command`'s logs in `folder` but the newest `keep`; returns those deleted.

    Only files named as this module names that command's logs count (`merge_<date>_<time>_<pid>.log`,
    not `merge-old.log` nor another command's); a file that cannot be deleted is left.
    """
    name = re.compile(re.escape(command) + r"_(\d{8}_\d{6})_\d+\.log")
    try:
        logs = [(m[1], p.stat().st_mtime_ns, p) for p in folder.iterdir() if (m := name.fullmatch(p.name))]
    except OSError:
        return []
    removed = []
    for *_, path in sorted(logs, reverse=True)[max(keep, 1):]:
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


class _Tee:
    """A text stream that writes through to `stream` and copies whole, clean lines to `log`."""

    def __init__(self, stream: IO[str], log: IO[str]):
        self._stream, self._log, self._line = stream, log, ""

    def write(self, text: str) -> int:
        n = self._stream.write(text)
        try:
            self._line += ANSI.sub("", text)
            *done, self._line = self._line.split("\n")
            for line in done:
                self._log.write(line.rsplit("\r", 1)[-1].rstrip() + "\n")   # a progress bar: its last state
            if len(self._line) > 1 << 16:       # a bar never ending its line: keep only its latest state
                self._line = self._line.rsplit("\r", 1)[-1]
        except (OSError, ValueError):
            pass                                # a full disk never stops the command itself
        return n

    def flush_line(self) -> None:
        """The last line when it has no newline yet (a prompt, a bar left open)."""
        if self._line.strip():
            self._log.write(self._line.rsplit("\r", 1)[-1].rstrip() + "\n")
        self._line = ""

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str):             # isatty, fileno, encoding ... of the real stream
        return getattr(self._stream, name)


@contextmanager
def recording(command: str, args: argparse.Namespace, argv: list[str]) -> Iterator[Path | None]:
    """Copy this run's output to its log file; yields the file (None when no log could be opened)."""
    try:
        folder = log_dir(args)
        path = folder / f"{command}_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}.log"
        folder.mkdir(parents=True, exist_ok=True)
        log = open(path, "a", encoding="utf-8", errors="replace", buffering=1)
    except (OSError, RuntimeError):             # a read-only workspace, no home folder: the command still runs
        yield None
        return
    prune_logs(folder, command)
    from core.version import __version__
    log.write(f"visage {__version__}, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
              f"command: {' '.join(argv)}\n")
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(out, log), _Tee(err, log)
    try:
        yield path
    except BaseException as e:
        if not isinstance(e, (KeyboardInterrupt, SystemExit)):
            log.write("".join(traceback.format_exception(e)))
        raise
    finally:
        for tee in (sys.stdout, sys.stderr):
            if isinstance(tee, _Tee):
                tee.flush_line()
        sys.stdout, sys.stderr = out, err
        log.close()
