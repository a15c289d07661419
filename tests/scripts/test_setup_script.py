"""scripts/setup.sh picks a Python >= 3.11 with venv, or says in one line exactly what to install."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[2] / "scripts" / "setup.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def fake_python(folder: Path, name: str, version: str, venv: bool = True) -> Path:
    """An executable that answers setup.sh's two questions as a python of `version` would."""
    path = folder / name
    path.write_text("#!/bin/sh\n"
                    f'case "$*" in *ensurepip*) exit {0 if venv else 1};; esac\n'
                    f"echo {version}\n")
    path.chmod(0o755)
    return path


def find(path: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("bash"), str(SETUP), "--find-python"], capture_output=True, text=True, timeout=60,
                          env={"PATH": path, "HOME": os.environ.get("HOME", "/"), **env})


def test_old_python3_alone_gives_one_line_saying_what_to_install(tmp_path):
    old = fake_python(tmp_path, "python3", "3.10")
    proc = find(str(tmp_path))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == (f"Visage needs Python 3.11 or newer; found 3.10 at {old}. Install python3.11 and "
                                   "python3.11-venv (Debian/Ubuntu: apt install python3.11 python3.11-venv), or set "
                                   "PYTHON=/path/to/python3.11")


def test_newer_python_is_found_behind_an_old_python3(tmp_path):
    fake_python(tmp_path, "python3", "3.10")
    newer = fake_python(tmp_path, "python3.12", "3.12")
    proc = find(str(tmp_path))
    assert proc.returncode == 0 and proc.stdout.strip() == str(newer)


def test_python_variable_wins(tmp_path):
    fake_python(tmp_path, "python3.13", "3.13")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    chosen = fake_python(elsewhere, "my_python", "3.11")
    assert find(str(tmp_path), PYTHON=str(chosen)).stdout.strip() == str(chosen)
    old = fake_python(elsewhere, "old_python", "3.9")
    assert "found 3.9 at" in find(str(tmp_path), PYTHON=str(old)).stderr


def test_missing_venv_module_is_named(tmp_path):
    no_venv = fake_python(tmp_path, "python3.12", "3.12", venv=False)
    proc = find(str(tmp_path))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"Python 3.12 at {no_venv} has no venv module; install python3.12-venv (Debian/Ubuntu: apt install "
        "python3.12-venv), or set PYTHON=/path/to/python3.11"]


def test_real_path_with_an_old_python3_first(tmp_path):
    fake_python(tmp_path, "python3", "3.10")
    proc = find(f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    if proc.returncode == 0:
        chosen = proc.stdout.strip()
        out = subprocess.run([chosen, "-c", "import sys; print(sys.version_info >= (3, 11))"], capture_output=True,
                             text=True)
        assert out.stdout.strip() == "True"
    else:
        assert len(proc.stderr.strip().splitlines()) == 1 and "found 3.10 at" in proc.stderr


def test_help_and_unknown_options_touch_nothing(tmp_path):
    """`--help` prints the usage; an unknown option is one line; neither makes a venv or reads a file named like it."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(SETUP, repo / "scripts" / "setup.sh")
    run = lambda *a: subprocess.run([shutil.which("bash"), str(repo / "scripts" / "setup.sh"), *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    shown = run("--help")
    assert shown.returncode == 0 and "Usage: setup.sh [REQUIREMENTS_FILE]" in shown.stdout and "--dry-run" in shown.stdout
    wrong = run("--bogus")
    assert wrong.returncode == 2 and wrong.stderr.strip() == "setup.sh: unknown option '--bogus' (see --help)"
    assert sorted(p.name for p in repo.iterdir()) == ["scripts"]
