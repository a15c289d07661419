"""DeepFaceLab's device choice (--cpu-only, --force-gpu-idxs) on a machine without a GPU."""
from __future__ import annotations

import argparse
import os

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
