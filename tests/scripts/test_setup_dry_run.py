"""scripts/setup.sh --dry-run: for every --gpu choice on every OS it prints the venv and pip commands that give the
README "GPU" table's packages, and runs and writes nothing; setup.bat's Windows rows say the same."""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.setup_copy import copy_setup

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("bash") is None or platform.system() != "Linux",
                                reason="needs bash on Linux")
TF = re.search(r"^tensorflow==(\S+)", (REPO / "requirements.txt").read_text(), re.M).group(1)
TORCH = re.search(r"^torch==(\S+)", (REPO / "requirements-dev.txt").read_text(), re.M).group(1)
# (vendor, what `uname -s` prints) -> (backend, the GPU build's pip arguments; "" for none)
EXPECTED = {
    ("nvidia", "Linux"): ("tensorflow", f"tensorflow[and-cuda]=={TF}"),
    ("amd", "Linux"): ("torch", f"torch=={TORCH} --index-url https://download.pytorch.org/whl/rocm6.4"),
    ("apple", "Darwin"): ("torch", f"torch=={TORCH}"),
    ("none", "Linux"): ("tensorflow", ""),
    ("none", "Darwin"): ("tensorflow", ""),
    ("apple", "Linux"): ("tensorflow", ""),           # no such machine: the CPU build, with one line
    ("amd", "Darwin"): ("tensorflow", ""),
    ("nvidia", "Darwin"): ("tensorflow", ""),
}


@pytest.fixture
def root(tmp_path) -> Path:
    """A copy of setup.sh and the requirements, and a fake `uname` that says which OS this is."""
    copy_setup(tmp_path)
    (tmp_path / "bin").mkdir()
    return tmp_path


def dry_run(root: Path, os_name: str, *args: str) -> subprocess.CompletedProcess:
    uname = root / "bin" / "uname"
    uname.write_text(f'#!/bin/sh\necho "{os_name}"\n')
    uname.chmod(0o755)
    return subprocess.run(["bash", str(root / "scripts" / "setup.sh"), "--dry-run", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60,
                          env={"PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}", "HOME": str(root)})


def test_every_vendor_and_os_prints_the_documented_commands_and_touches_nothing(root):
    for (vendor, os_name), (backend, extra) in EXPECTED.items():
        proc = dry_run(root, os_name, "--gpu", vendor)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        py = f"{root}/.venv/bin/python"
        venv = re.fullmatch(rf"(\S+) -m venv {re.escape(str(root))}/\.venv", lines[0])
        assert venv and Path(venv[1]).is_file(), lines          # a real interpreter on PATH, found as setup would
        assert lines[1] == f"# --gpu {vendor} on {os_name}: the Keras backend is {backend} (remembered in " \
                           ".venv/visage-backend)"
        assert lines[2:] == [f"{py} -m pip install --quiet --upgrade pip",
                             f"{py} -m pip install --quiet -r {root}/requirements.txt"] + \
                            ([f"{py} -m pip install --quiet {extra}"] if extra else []), (vendor, os_name, lines)
        fallback = [line for line in proc.stderr.splitlines() if "no GPU build" in line]
        assert len(fallback) == (0 if extra or vendor == "none" else 1), (vendor, os_name, proc.stderr)
        assert not (root / ".venv").exists()                  # nothing created, nothing remembered


def test_dry_run_in_an_installed_venv_shows_the_switch_and_runs_no_pip(root):
    py = root / ".venv" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text(f'#!/bin/sh\necho "$*" >> {root}/pip.log\n')
    py.chmod(0o755)
    (root / ".venv" / "visage-gpu").write_text("none\n")
    proc = dry_run(root, "Linux", "--gpu", "amd", "requirements-dev.txt")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].endswith(f"pip install --quiet torch=={TORCH} --index-url "
                                                 "https://download.pytorch.org/whl/rocm6.4")
    assert f"-r {root}/requirements-dev.txt" in proc.stdout and "-m venv" not in proc.stdout
    assert not (root / "pip.log").exists()                    # the venv's python was never run
    assert (root / ".venv" / "visage-gpu").read_text() == "none\n"
    assert not (root / ".venv" / "visage-backend").exists()
    assert "# --gpu none on Linux" in dry_run(root, "Linux").stdout       # without --gpu: the one remembered


def test_setup_bat_dry_run_echoes_every_command_and_guards_every_write():
    bat = (REPO / "scripts" / "setup.bat").read_text()
    assert re.search(r'^if /i "%~1"=="--dry-run" \(set "RUN=echo" & set "DRY=1" & shift & goto args\)', bat, re.M)
    commands = [line for line in bat.splitlines() if re.search(r" -m (venv|pip) ", line)]
    assert len(commands) == 4 and all("%RUN% " in line for line in commands), commands
    writes = [line for line in bat.splitlines() if re.search(r"\)>\"", line) and not line.startswith("rem")]
    assert writes and all(line.startswith("if not defined DRY ") for line in writes), writes
    # Windows NVIDIA: PyTorch's CUDA build of the pinned torch, and the torch backend
    assert re.search(r'^if "%GPU%"=="nvidia" \(set "BACKEND=torch" & set "EXTRA=torch==%TORCH% --index-url '
                     r'https://download\.pytorch\.org/whl/cu\d+"\)', bat, re.M)
