"""Every numbered script and every `python main.py` example in the README still parses: a renamed
flag that a script or the README kept would stop the user at once with an argparse error."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import main

ROOT = Path(__file__).resolve().parents[2]


def _joined(lines: list[str]) -> list[str]:
    """Lines with their backslash continuations joined."""
    out, current = [], ""
    for line in lines:
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
        else:
            out.append(current)
            current = ""
    return out


def script_commands() -> list[tuple[str, list[str]]]:
    found = []
    for script in sorted((ROOT / "scripts").glob("*.sh")):
        for line in _joined(script.read_text(encoding="utf-8").splitlines()):
            if line.startswith('"$PY" "$MAIN" '):
                line = line.replace('"$PY" "$MAIN" ', "").replace('"${@:2}"', "").replace('"$@"', "")
                line = line.replace('"$1"', "clip.mp4").replace("$WORKSPACE", "workspace")
                found.append((script.name, shlex.split(line)))
    return found


def readme_commands() -> list[tuple[str, list[str]]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S):
        for line in _joined(block.splitlines()):
            line = line.split("  #", 1)[0].strip()
            if line.startswith("python main.py ") and "..." not in line and "[" not in line:
                found.append((line[:60], shlex.split(line)[2:]))
    return found


SCRIPTS, README = script_commands(), readme_commands()


def test_the_walk_finds_the_scripts_and_the_examples():
    names = {name for name, _ in SCRIPTS}
    assert len(SCRIPTS) >= 50 and "7) merge SAEHD.sh" in names and "4) data_src faceset extract.sh" in names
    assert {argv[0] for _, argv in README} >= {"videoed", "extract", "train", "merge", "bench"}


@pytest.mark.parametrize("where, argv", SCRIPTS + README, ids=[w for w, _ in SCRIPTS + README])
def test_documented_command_parses(where, argv, capsys):
    try:
        args = main.build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: {' '.join(argv)}\n{capsys.readouterr().err}")
    assert args.command == argv[0]
