"""scripts/setup.sh --gpu: each vendor gets its GPU build on top of the requirements, remembered for the next run."""
from __future__ import annotations

import os
import re
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.setup_copy import copy_setup

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("bash") is None or platform.system() != "Linux",
                                reason="needs bash on Linux")


@pytest.fixture
def root(tmp_path) -> Path:
    """A copy of the repo's setup.sh and requirements with a fake venv python that logs what it is asked."""
    copy_setup(tmp_path)
    py = tmp_path / ".venv" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/pip.log\n')
    py.chmod(0o755)
    return tmp_path


def setup(root: Path, *args: str) -> list[str]:
    log = root / "pip.log"
    log.unlink(missing_ok=True)
    proc = subprocess.run(["bash", str(root / "scripts" / "setup.sh"), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, env={"PATH": os.environ["PATH"], "HOME": str(root)})
    assert proc.returncode == 0, proc.stderr
    return log.read_text().splitlines() if log.exists() else []


def test_gpu_nvidia_adds_tensorflow_cuda_and_is_remembered(root):
    tf = next(line for line in (REPO / "requirements.txt").read_text().splitlines() if line.startswith("tensorflow=="))
    calls = setup(root, "--gpu", "nvidia")
    assert f"-m pip install --quiet -r {root}/requirements.txt" in calls
    assert f"-m pip install --quiet tensorflow[and-cuda]=={tf.split('==')[1]}" in calls
    assert (root / ".venv" / "visage-gpu").read_text().strip() == "nvidia"
    assert (root / ".venv" / "visage-backend").read_text().strip() == "tensorflow"
    assert setup(root) == []                       # remembered, and nothing changed: no pip at all


def test_gpu_amd_installs_torch_rocm_and_switches_the_backend(root):
    calls = setup(root, "--gpu=amd")
    assert any(c.startswith("-m pip install --quiet torch==") and "rocm" in c for c in calls), calls
    assert (root / ".venv" / "visage-backend").read_text().strip() == "torch"
    assert not any("tensorflow[and-cuda]" in c for c in setup(root, "--gpu", "none"))


def test_a_vendor_that_is_not_one_is_refused_in_one_line(root):
    proc = subprocess.run(["bash", str(root / "scripts" / "setup.sh"), "--gpu", "intel"], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == "--gpu must be nvidia, amd, apple or none, not 'intel'"


def _sh_table() -> dict[tuple[str, str], tuple[str, str]]:
    """setup.sh's gpu_packages case: (vendor, OS) -> (backend, packages)."""
    text = (REPO / "scripts" / "setup.sh").read_text()
    rows = re.findall(r'^\s*(\w+)/(\w+|\*)\) echo "(\S+) ?([^"]*)" ;;', text, re.M)
    return {(v, os_): (backend, extra) for v, os_, backend, extra in rows}


def _bat_table() -> dict[str, tuple[str, str]]:
    """setup.bat's Windows table: vendor -> (backend, packages); tensorflow and nothing unless a line says."""
    text = (REPO / "scripts" / "setup.bat").read_text()
    vendors = re.search(r"for %%G in \(([\w ]+)\) do", text).group(1).split()
    table = {v: ("tensorflow", "") for v in vendors}
    for v, backend, extra in re.findall(r'^if "%GPU%"=="(\w+)" \(set "BACKEND=(\w+)" & set "EXTRA=([^"]*)"\)', text, re.M):
        table[v] = (backend, extra)
    return table


def test_setup_bat_offers_the_vendors_of_setup_sh_with_the_windows_builds():
    sh, bat = (REPO / "scripts" / "setup.sh").read_text(), (REPO / "scripts" / "setup.bat").read_text()
    sh_table, bat_table = _sh_table(), _bat_table()
    sh_vendors = re.search(r'case "\$\{GPU:-none\}" in ([\w|]+)\)', sh).group(1).split("|")
    assert list(bat_table) == sh_vendors == ["nvidia", "amd", "apple", "none"]
    assert {v for v, _ in sh_table} == set(sh_vendors)
    # the same prompt, refusal and remembered files, so a user meets the same script on both systems
    prompt = re.search(r'read -r -p "([^"]+)" GPU', sh).group(1)
    assert f'set /p "GPU={prompt}"' in bat
    assert "--gpu must be nvidia, amd, apple or none, not '%GPU%'" in bat
    assert "visage-gpu" in bat and "visage-backend" in bat
    assert "visage-backend" in (REPO / "scripts" / "_env.bat").read_text()
    # Windows: NVIDIA trains on PyTorch's CUDA build of the pinned torch (TensorFlow has no Windows GPU build),
    # the vendors without a Windows build get setup.sh's fallback line, and none is the CPU build everywhere
    torch = re.search(r"^torch==(\S+)", (REPO / "requirements-dev.txt").read_text(), re.M).group(1)
    backend, extra = bat_table["nvidia"]
    assert backend == "torch" and re.fullmatch(r"torch==%TORCH% --index-url https://download\.pytorch\.org/whl/cu\d+",
                                               extra), extra
    assert sh_table[("amd", "Linux")][1].startswith("torch==$torch ") and torch
    assert 'findstr /b "torch==" "%ROOT%\\requirements-dev.txt"' in bat
    for vendor in ("amd", "apple"):
        assert bat_table[vendor] == ("tensorflow", "")
        assert f"no GPU build of Visage's backends for {vendor} on Windows; training will use the CPU" in bat
    assert "no GPU build of Visage's backends for $1 on $os; training will use the CPU" in sh
    assert bat_table["none"] == (sh_table[("none", "*")][0], "") == ("tensorflow", "")
