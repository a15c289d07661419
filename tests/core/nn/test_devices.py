"""DeepFaceLab's device choice (--cpu-only, --force-gpu-idxs) on a machine without a GPU."""
from __future__ import annotations

import argparse
import os
import re

import pytest

from core.nn.backend import parse_gpu_idxs, select_devices


def test_gpu_idxs_parse_as_deepfacelab_writes_them():
    assert parse_gpu_idxs("0") == [0] and parse_gpu_idxs("0, 1") == [0, 1]
    for bad in ("", "x", "-1", "0,,a"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a list of GPU indexes"):
            parse_gpu_idxs(bad)


def test_asking_for_a_gpu_without_one_falls_back_to_the_cpu_with_one_line(capsys):
    import tensorflow as tf
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    assert select_devices(False, [1]) == "CPU"
    err = capsys.readouterr().err
    assert "GPU 1 asked for, but no GPU is visible" in err and "running on the CPU" in err
    assert select_devices(False, None) == "CPU" and capsys.readouterr().err == ""


def test_cpu_only_hides_gpus_before_tensorflow_starts_them(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert select_devices(True) == "CPU"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "-1"


def _free_ports(n: int) -> list[int]:
    import socket
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_on_one_host_train_in_lockstep_and_only_the_chief_saves(src_faceset, dst_faceset, tmp_path):
    import subprocess
    import sys
    from tests.support.train_support import REPO, TINY, data
    hosts = ",".join(f"127.0.0.1:{p}" for p in _free_ports(2))
    env = {**os.environ, "VISAGE_NON_INTERACTIVE": "1", "CUDA_VISIBLE_DEVICES": "-1"}
    for k in ("KERAS_BACKEND", "VISAGE_BACKEND", "TF_CONFIG"):
        env.pop(k, None)
    procs = []
    for index in (0, 1):
        opts = [a for o in [*TINY, "target_iter=3", "precision=fp32"] for a in ("--opt", o)]
        cmd = [sys.executable, str(REPO / "main.py"), "train", "--training-data-src-dir", str(src_faceset),
               "--training-data-dst-dir", str(dst_faceset), "--model-dir", str(tmp_path / f"worker{index}"),
               "--model", "SAEHD", "--force-model-name", "t", "--no-preview", "--silent-start", "--workers", "1",
               "--backend", "tensorflow", "--worker-hosts", hosts, "--worker-index", str(index), *opts]
        (tmp_path / f"worker{index}").mkdir()
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    chief, worker = (out + err for out, err in outs)
    assert "worker 0 of 2 workers (2 replicas in all, chief)" in chief, chief
    assert "worker 1 of 2 workers (2 replicas in all)" in worker and "the chief holds the model" in worker, worker
    # both took the three steps together: each prints the losses of the whole (all-reduced) batch
    last = [re.search(r"\]\[#000003\]\[(?:\d+ms|\d+\.\d+s)\](\[[0-9.]+\]\[[0-9.]+\])", out) for out in (chief, worker)]
    assert all(last) and last[0].group(1) == last[1].group(1), (chief, worker)
    assert data(tmp_path / "worker0")["iter"] == 3
    assert [f.name for f in (tmp_path / "worker1").iterdir()] in ([], ["t_SAEHD_lock"])    # nothing saved there


def test_worker_flags_become_tf_config_and_only_worker_0_is_the_chief(monkeypatch):
    import json
    from core.errors import VisageError
    from core.nn.backend import is_chief, set_workers, worker_count
    monkeypatch.setenv("TF_CONFIG", "{}")     # recorded, so that the TF_CONFIG set_workers writes is undone
    monkeypatch.delenv("TF_CONFIG")
    assert worker_count() == 1 and is_chief()
    for hosts, index in (("a:1,b:2", None), ("a:1,b:2", 2), (None, 0), ("a,b:2", 0)):
        with pytest.raises(VisageError, match="--worker-hosts"):
            set_workers(hosts, index)
    assert "TF_CONFIG" not in os.environ
    set_workers("10.0.0.1:2222, 10.0.0.2:2222", 1)
    assert json.loads(os.environ["TF_CONFIG"]) == {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]},
                                                   "task": {"type": "worker", "index": 1}}
    assert worker_count() == 2 and not is_chief()
    set_workers("10.0.0.1:2222,10.0.0.2:2222", 0)
    assert is_chief()
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(VisageError, match="TF_CONFIG is not JSON"):
        worker_count()
    monkeypatch.undo()
    assert json.loads(os.environ.get("TF_CONFIG", "{}")) == {}     # later tests train on one machine
