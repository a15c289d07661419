"""Keras backends (TensorFlow, PyTorch, JAX): each trains Quick96 and a tiny SAEHD liae-ud 64 on real faces,
and a model saved under one backend predicts the same under every other (weights are plain arrays).

Keras picks its backend once per process, so each backend runs in its own subprocess
(tests/support/backend_support.py): one to train all models, one to reload the others' models.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.support.backend_support import REPO

BACKENDS = ("tensorflow", "torch", "jax")
MODELS = ("Quick96", "SAEHD")


def run_backend(backend: str, job: dict, tmp) -> dict:
    path = tmp / f"job_{backend}_{job['action']}.json"
    path.write_text(json.dumps(job))
    env = {**os.environ, "VISAGE_NON_INTERACTIVE": "1"}
    env.pop("KERAS_BACKEND", None)
    proc = subprocess.run([sys.executable, "-m", "tests.support.backend_support", backend, str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    return result


@pytest.fixture(scope="module")
def trained(src_faceset, dst_faceset, tmp_path_factory):
    root = tmp_path_factory.mktemp("backends")
    losses = {}
    for b in BACKENDS:
        job = {"action": "train", "src": str(src_faceset), "dst": str(dst_faceset),
               "models": [[m, str(root / f"{b}_{m}")] for m in MODELS]}
        losses[b] = run_backend(b, job, root)["losses"]
    return root, losses


def test_each_backend_trains_both_models_with_finite_falling_loss(trained):
    _, losses = trained
    for b in BACKENDS:
        for m in MODELS:
            totals = [step[0] for step in losses[b][m]]
            assert np.isfinite(losses[b][m]).all(), (b, m, losses[b][m])
            assert totals[2] < totals[0], (b, m, totals)


def test_a_model_saved_under_one_backend_predicts_the_same_under_each_other(trained):
    root, _ = trained
    for b in BACKENDS:
        others = [[m, str(root / f"{o}_{m}")] for o in BACKENDS if o != b for m in MODELS]
        run_backend(b, {"action": "predict", "models": others}, root)
    for origin in BACKENDS:
        for m in MODELS:
            folder = root / f"{origin}_{m}"
            with np.load(folder / f"pred_{origin}.npz") as ref:
                expected = [ref[k] for k in sorted(ref.files)]
            assert expected[0].std() > 1e-4           # a picture, not a constant
            for b in BACKENDS:
                if b == origin:
                    continue
                with np.load(folder / f"pred_{b}.npz") as got:
                    for want, have in zip(expected, (got[k] for k in sorted(got.files))):
                        np.testing.assert_allclose(have, want, atol=1e-4, err_msg=f"{m} saved by {origin}, loaded by {b}")


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_one_data_parallel_step_on_two_devices_gives_the_single_device_weights(src_faceset, backend):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    env.pop("KERAS_BACKEND", None)
    proc = subprocess.run([sys.executable, "-m", "tests.support.data_parallel_support", backend, str(src_faceset)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["devices"] == 2 and r["replicas"] == 2 and r["variable_devices"] == 2, r
    assert r["moved"] > 1e-4, r                     # the step changed the weights ...
    assert r["max_diff"] < 1e-5, r                  # ... and the two devices changed them as one does


def test_doctor_names_the_backend_in_use_and_the_others_installed():
    import re
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "VISAGE_BACKEND")}
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "doctor", "--backend", "jax"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert re.search(r"^ok +backend +jax [0-9.]+ \(keras 3[0-9.]+\), in use$", out, re.M), out
    assert re.search(r"^ok +backend tensorflow +TensorFlow [0-9.]+ installed: --backend tensorflow$", out, re.M), out
    assert re.search(r"^ok +backend torch +PyTorch [0-9.+a-z]+ installed: --backend torch$", out, re.M), out
    assert re.search(r"^ok +(GPU +none found by jax|GPU 0 )", out, re.M), out


def test_a_backend_not_installed_is_one_line_naming_one_that_is(monkeypatch):
    import importlib.util
    from core.errors import VisageError
    from core.nn import backend
    real = importlib.util.find_spec
    for absent, instead in (("tensorflow", "use an installed one: --backend torch"),   # a machine without TensorFlow
                            ("jax", "use --backend tensorflow")):
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, _absent=absent: None if name == _absent
                            else real(name, *a))
        with pytest.raises(VisageError) as e:
            backend.choose_backend(absent)
        assert str(e.value).endswith(f"is not installed: see the README's GPU section (scripts/setup.sh --gpu ...), "
                                     f"or {instead}"), e.value
