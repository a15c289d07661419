"""scripts/setup.sh --gpu: each vendor gets its GPU build on top of the requirements, remembered for the next run."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("bash") is None or platform.system() != "Linux",
                                reason="needs bash on Linux")


@pytest.fixture
def root(tmp_path) -> Path:
    """A copy of the repo's setup.sh and requirements with a fake venv python that logs what it is asked."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup.sh", tmp_path / "scripts")
    for req in ("requirements.txt", "requirements-dev.txt"):
        shutil.copy(REPO / req, tmp_path)
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
