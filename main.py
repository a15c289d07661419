"""Visage: one entry point with DeepFaceLab's subcommands.

Each command lives in `mainscripts/<module>.py` (or beside its helpers in `mainscripts/<command>/`)
and exposes `register(subparsers, parent)`; heavy imports happen inside the command, so `--help` is instant. Every failure the
user can fix ends as one `error: ...` line and exit code 2: a bad flag (argparse), a
VisageError, and, as a last resort, an OSError on a named file that a command did not
describe itself (read-only folder, no permission, a file in the way, disk full). Every run
is copied to a log file (core/run_log.py), tracebacks of unexpected errors included.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from typing import NoReturn

COMMAND_MODULES = ("videoed", "extract.extractor", "sorter", "util", "facesettool", "train.trainer", "merge.merger", "exportdfm", "bench.bench", "demo",
                   "evaluate", "doctor", "xseg.xseg")
# OSErrors that mean "this path cannot be used here", not a bug: shown as one line.
FILE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.EEXIST, errno.ENOTDIR, errno.EISDIR,
                         errno.ENOSPC, errno.EDQUOT})


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (`error: ...; see PROG --help`), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from core.version import __version__
    parser = OneLineParser(prog="main.py", description="Visage face-replacement toolkit")
    parser.add_argument("--version", action="version", version=f"visage {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    parent = OneLineParser(add_help=False)
    parent.add_argument("--non-interactive", action="store_true",
                        help="never prompt: take flags, then defaults (automatic when stdin is not a terminal)")
    parent.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's native start-up messages (CUDA, XLA), hidden by default")
    for name in COMMAND_MODULES:
        importlib.import_module(f"mainscripts.{name}").register(sub, parent)
    return parser


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from core import interact
    from core.errors import VisageError
    args = build_parser().parse_args(argv)
    if getattr(args, "non_interactive", False) or os.environ.get("VISAGE_NON_INTERACTIVE") == "1":
        interact.set_non_interactive(True)
    if not getattr(args, "verbose", False):
        from core.quiet import silence_native_logs
        silence_native_logs()
    from core.run_log import recording
    with recording(_run_name(args), args, list(sys.argv[1:] if argv is None else argv)):
        try:
            from core.nn.backend import choose_backend
            choose_backend(getattr(args, "backend", None))      # before any command imports keras
            return int(args.func(args) or 0)
        except VisageError as e:
            interact.log_err(str(e))
            return 2
        except KeyboardInterrupt:
            interact.log_err("interrupted; finished files are kept, nothing is half-written")
            return 130
        except OSError as e:
            if e.errno not in FILE_ERRNOS or not (e.filename or e.errno in (errno.ENOSPC, errno.EDQUOT)):
                raise
            where = f" {e.filename}" if e.filename else ""
            interact.log_err(f"cannot write/read{where}: {e.strerror or e}")
            return 2


def _run_name(args: argparse.Namespace) -> str:
    """'merge', 'videoed_extract-video', 'facesettool_resize': the log file's first word."""
    return "_".join([args.command, *(v for k, v in sorted(vars(args).items())
                                     if k.endswith("_command") and isinstance(v, str))])


if __name__ == "__main__":
    sys.exit(main())
