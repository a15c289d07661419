"""Visage: one entry point with DeepFaceLab's subcommands.

Each command lives in `mainscripts/<module>.py`, which exposes `register(subparsers,
parent)`; heavy imports happen inside the command, so `--help` is instant.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMAND_MODULES = ("videoed", "extractor", "sorter", "util", "facesettool", "trainer", "merger", "bench", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="Visage face-replacement toolkit")
    sub = parser.add_subparsers(dest="command", required=True)
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--non-interactive", action="store_true",
                        help="never prompt: take flags, then defaults (automatic when stdin is not a terminal)")
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
    try:
        return int(args.func(args) or 0)
    except VisageError as e:
        interact.log_err(str(e))
        return 2
    except KeyboardInterrupt:
        interact.log_err("interrupted; finished files are kept, nothing is half-written")
        return 130


if __name__ == "__main__":
    sys.exit(main())
