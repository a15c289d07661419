"""Damaged or hostile model folders, two trainers on one model, and model names that are paths:
one clear line each, and nothing changed that should not be."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import main
from models.model_files import ModelFiles
from tests.support.hostile_support import assert_one_error, tree_bytes
from tests.support.train_support import REPO, data, train_cli


def snapshot(folder: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree_bytes(folder).items() if k != "t_SAEHD_lock"}


def one_error_line(capsys, *needles: str) -> str:
    return assert_one_error(capsys.readouterr().err, *needles)


def set_data(model_dir: Path, text: str | bytes) -> None:
    path = model_dir / "t_SAEHD_data.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)


def edit_data(model_dir: Path, **changes) -> None:
    d = data(model_dir)
    for key, value in changes.items():
        if key in d["options"]:
            d["options"][key] = value
        else:
            d[key] = value
    set_data(model_dir, json.dumps(d))


def set_part(model_dir: Path, part: str, transform) -> None:
    path = model_dir / f"t_SAEHD_{part}.npz"
    with np.load(path) as z:
        arrays = {k: transform(z[k]) if k.startswith("0") else z[k] for k in z.files}
    np.savez(path, **arrays)


DAMAGE = {
    "binary data.json": (lambda m: set_data(m, b"\x89PNG\r\n\x1a\n\xff\xfe\x00garbage"), "t_SAEHD_data.json"),
    "iter is text": (lambda m: edit_data(m, iter="abc"), "iteration 'abc'"),
    "iter is NaN": (lambda m: set_data(m, (m / "t_SAEHD_data.json").read_text().replace('"iter": 2', '"iter": NaN')),
                    "t_SAEHD_data.json"),
    "negative iter": (lambda m: edit_data(m, iter=-5), "iteration -5"),
    "huge iter": (lambda m: edit_data(m, iter=10**30), "t_SAEHD_data.json"),
    "resolution 100000": (lambda m: edit_data(m, resolution=100000), "resolution: 100000 is out of range"),
    "half-copied npz": (lambda m: (m / "t_SAEHD_decoder.npz").write_bytes(
        (m / "t_SAEHD_decoder.npz").read_bytes()[:5000]), "t_SAEHD_decoder.npz is damaged"),
    "complex weights": (lambda m: set_part(m, "decoder", lambda a: a.astype(np.complex64)), "complex64"),
    "NaN weights": (lambda m: set_part(m, "decoder", lambda a: np.full_like(a, np.nan)), "NaN or infinite"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_model_gives_one_line_to_train_and_merge(case, tiny_model, src_faceset, dst_faceset, frames,
                                                        tmp_path, capsys):
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model, model_dir)
    shutil.rmtree(model_dir / "t_SAEHD_previous")        # nothing to fall back to
    damage, message = DAMAGE[case]
    damage(model_dir)
    before = snapshot(model_dir)
    capsys.readouterr()
    assert train_cli(src_faceset, dst_faceset, model_dir, opts=["target_iter=5"]) == 2
    one_error_line(capsys, message)
    frames_dir = frames("single_face.mp4", every=6)
    assert main.main(["merge", "--input-dir", str(frames_dir), "--aligned-dir", str(dst_faceset), "--output-dir",
                      str(tmp_path / "merged"), "--model-dir", str(model_dir), "--model", "SAEHD",
                      "--force-model-name", "t", "--non-interactive", "--workers", "1"]) == 2
    one_error_line(capsys, message)
    assert snapshot(model_dir) == before
    assert not (tmp_path / "merged").exists() or not any((tmp_path / "merged").glob("*.png"))


def test_damaged_data_json_falls_back_to_the_previous_save(tiny_model, src_faceset, dst_faceset, tmp_path, capsys):
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model, model_dir)
    set_data(model_dir, b"\xff\xfe not json")
    capsys.readouterr()
    assert train_cli(src_faceset, dst_faceset, model_dir, opts=["target_iter=3"]) == 0
    assert "loading the previous save (iteration 1)" in capsys.readouterr().err
    assert data(model_dir)["iter"] == 3 and len(data(model_dir)["loss_history"]) == 3


@pytest.mark.parametrize("name", ["../../../x", "a/b", "..", "a\\b", " x", "x\x00y"])
def test_model_name_must_be_a_plain_name(name, tiny_model, src_faceset, dst_faceset, tmp_path, capsys):
    model_dir = tmp_path / "deep" / "er" / "model"
    capsys.readouterr()
    assert train_cli(src_faceset, dst_faceset, model_dir, opts=["target_iter=1"], name=name) == 2
    one_error_line(capsys, "is not a valid model name")
    assert not any(p.is_file() for p in (tmp_path).rglob("*"))


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_second_trainer_is_refused_until_the_first_dies(tiny_model, src_faceset, dst_faceset, frames, tmp_path,
                                                         capsys):
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model, model_dir)
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(REPO)!r})
        import main
        sys.exit(main.main(["train", "--training-data-src-dir", {str(src_faceset)!r}, "--training-data-dst-dir",
                            {str(dst_faceset)!r}, "--model-dir", {str(model_dir)!r}, "--model", "SAEHD",
                            "--force-model-name", "t", "--no-preview", "--silent-start", "--workers", "1",
                            "--opt", "target_iter=1000000"]))
    """)
    first = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True)
    try:
        for line in first.stdout:                  # the first trainer is past loading and training
            if "Starting." in line:
                break
        before = data(model_dir)
        capsys.readouterr()
        assert train_cli(src_faceset, dst_faceset, model_dir, opts=["target_iter=3"]) == 2
        one_error_line(capsys, "model t_SAEHD is in use", f"pid {first.pid}, train")
        assert data(model_dir)["loss_history"][:len(before["loss_history"])] == before["loss_history"]
        assert main.main(["merge", "--input-dir", str(frames("single_face.mp4", every=6)), "--aligned-dir",
                          str(dst_faceset), "--output-dir", str(tmp_path / "out"),
                          "--model-dir", str(model_dir), "--model", "SAEHD", "--force-model-name", "t",
                          "--non-interactive"]) == 2
        one_error_line(capsys, "in use")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    time.sleep(0.2)
    start = data(model_dir)["iter"]
    assert train_cli(src_faceset, dst_faceset, model_dir, opts=[f"target_iter={start + 1}"]) == 0
    assert data(model_dir)["iter"] == start + 1


def test_merge_and_merge_share_a_model(tiny_model):
    files = ModelFiles(tiny_model, "t", "SAEHD")
    with files.lock(exclusive=False, what="merge"), files.lock(exclusive=False, what="merge"):
        pass
