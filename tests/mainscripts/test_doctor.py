"""`doctor` reports this machine one line per fact and fails when something needed is missing."""
from __future__ import annotations

import importlib.metadata
import re

import pytest

import main
from mainscripts import doctor


def test_doctor_reports_python_packages_devices_precision_and_ffmpeg(capsys):
    assert main.main(["doctor"]) == 0
    out = capsys.readouterr().out
    for what in ("python", "tensorflow", "numpy", "face_mesh", "CPU", "backend", "precision auto", "ffmpeg",
                 "display"):
        assert any(line.split()[1:2] == [what.split()[0]] for line in out.splitlines()), (what, out)
    assert "keras 3" in out and re.search(r"precision auto\s+(fp32|bf16|fp16): ", out)


def test_doctor_exits_1_naming_what_is_missing(tmp_path, monkeypatch, capsys):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(doctor.REQUIREMENTS.read_text() + "visage-no-such-package==1.0\n")
    monkeypatch.setattr(doctor, "REQUIREMENTS", reqs)
    monkeypatch.setattr(doctor, "MIN_PYTHON", (99, 0))
    assert main.main(["doctor"]) == 1
    err = capsys.readouterr().err
    assert "visage-no-such-package" in err and "not installed (pinned 1.0)" in err
    assert "Visage needs 99.0 or newer" in err
    assert "2 thing(s) missing" in err


def test_tensorflow_start_up_chatter_is_hidden_unless_verbose():
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    native = re.compile(r"^(?:[IWEF]\d{4} |WARNING: All log messages before absl)", re.M)
    quiet = subprocess.run([sys.executable, str(repo / "main.py"), "doctor"], capture_output=True, text=True)
    assert quiet.returncode == 0 and "backend" in quiet.stdout
    assert not native.search(quiet.stderr), quiet.stderr


def _fake_dist(site, name: str, version: str) -> None:
    """An installed distribution as pip leaves it (a .dist-info folder), with no code: importlib.metadata finds it."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    info.joinpath("METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_a_gpu_build_that_sees_no_gpu_is_one_warning_and_exit_0(tmp_path, monkeypatch, capsys):
    from core.nn import backend
    assert main.main(["doctor"]) == 0                 # this machine's CPU TensorFlow: no warning
    assert "sees no GPU" not in capsys.readouterr().err
    # tensorflow[and-cuda]: one of TensorFlow's and-cuda requirements is installed; the GPU is hidden
    _fake_dist(tmp_path, "nvidia-cudnn-cu12", "9.3.0.75")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    monkeypatch.setattr(backend, "gpus", lambda: [])  # what the hidden GPU leaves (also on a CI runner with one)
    assert main.main(["doctor"]) == 0
    out, err = capsys.readouterr()
    warned = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in err.splitlines() if "GPU" in line]
    tf = importlib.metadata.version("tensorflow")
    assert warned == [f"warn    GPU                        tensorflow[and-cuda] {tf} is installed, but "
                      "tensorflow sees no GPU: check the GPU driver (nvidia-smi, or rocm-smi for AMD) and "
                      "CUDA_VISIBLE_DEVICES='-1', which can hide GPUs; training runs on the CPU"], err
    assert not re.search(r"^ok +GPU", out, re.M) and "missing" not in err
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert main.main(["doctor"]) == 0
    assert "that CUDA_VISIBLE_DEVICES does not hide them; training runs on the CPU" in capsys.readouterr().err


def test_torch_and_jax_gpu_builds_are_recognised(tmp_path, monkeypatch):
    from core.nn import jax_backend, torch_backend
    assert jax_backend.gpu_build() is None            # the CPU jaxlib of requirements-dev.txt
    _fake_dist(tmp_path, "jax-cuda12-plugin", "0.10.2")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert jax_backend.gpu_build() == "jax-cuda12-plugin 0.10.2"
    torch = pytest.importorskip("torch")
    assert torch_backend.gpu_build() is None          # 2.13.0+cpu
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    assert torch_backend.gpu_build() == f"PyTorch {torch.__version__} (CUDA 13.0 build)"
    monkeypatch.setattr(torch.version, "hip", "7.0.1")
    assert torch_backend.gpu_build() == f"PyTorch {torch.__version__} (ROCm 7.0.1 build)"
