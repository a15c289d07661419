"""A model is one unit: kill -9 at any moment or a full disk during any write of a save leaves a
model whose parts all come from one iteration, and training resumes from it."""
from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from core.errors import VisageError
from models import model_files
from models.model_files import STAMP, ModelFiles
from tests.support.train_support import REPO, data, make_model, tiny_given, train_cli

KILLS = 30


def loaded_generation(model_dir: Path):
    """What the loader picks (as a new trainer would), checked independently: every part file
    carries the iteration of the data.json it is loaded with."""
    files = ModelFiles(model_dir, "t", "SAEHD")
    generation = files.load_generation()
    assert generation is not None
    it = generation.data["iter"]
    parts = generation.data["files"]
    assert {"encoder.npz", "inter_AB.npz", "inter_B.npz", "decoder.npz", "optimizer.npz"} <= set(parts)
    for part in parts:
        arrays = ModelFiles.read_part(generation.folder / f"t_SAEHD_{part}")
        assert int(arrays[STAMP]) == it, f"{part} is from iteration {int(arrays[STAMP])}, data.json from {it}"
    return generation


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def kill_stream(model_dir: Path, src: Path, dst: Path, kills: int, seed: int) -> tuple[dict, int]:
    """Start a trainer (a save every iteration) and SIGKILL it, `kills` times: a third of the kills
    at a random moment of start-up, the rest within a second after a new save. After each kill the
    model loads with every part from one iteration, and the iteration never goes back."""
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from models.saehd import SAEHDModel
        from mainscripts.train.trainer import train
        m = SAEHDModel(Path({str(model_dir)!r}), Path({str(src)!r}), Path({str(dst)!r}), 't',
                       {tiny_given(target_iter=10**6)!r}, silent_start=True, workers=1)
        train(m, window=False, autosave_minutes=0)
    """)
    rng = random.Random(seed)
    startup, last_iter, phases = 8.0, 0, {"start-up": 0, "training": 0}
    for i in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t0 = time.monotonic()
        in_training = i % 3 != 1 or i == 0
        if in_training:                              # wait for a save past the last one, then kill within ~1 s
            deadline = t0 + 120
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if data(model_dir)["iter"] > last_iter:
                        break
                except (OSError, ValueError, KeyError):
                    pass
                time.sleep(0.02)
            startup = time.monotonic() - t0
            time.sleep(rng.uniform(0, 1.0))
        else:
            time.sleep(rng.uniform(0, startup))
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        children = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        err = proc.stderr.read().decode()
        assert "Traceback" not in err and not re.search(r"(^|\x1b\[\d+m)error:", err, re.M), err[-2000:]
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(c) for c in children), "sample workers outlived the killed trainer"
        phases["training" if in_training else "start-up"] += 1
        if not (model_dir / "t_SAEHD_data.json").exists() and not (model_dir / "t_SAEHD_previous").exists():
            continue                                  # killed before the first save finished
        generation = loaded_generation(model_dir)
        assert generation.data["iter"] >= last_iter      # only the save in progress is ever lost
        last_iter = generation.data["iter"]
    return phases, last_iter


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_kill_at_random_moments_always_leaves_one_iteration(src_faceset, dst_faceset, tmp_path):
    """SIGKILL 30 times, spread over start-up, training steps and saves: two models side by side,
    15 kills each (the two streams share the cores, so start-ups overlap with steps and saves)."""
    from concurrent.futures import ThreadPoolExecutor
    dirs = [tmp_path / "a", tmp_path / "b"]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda d: kill_stream(d[1], src_faceset, dst_faceset, KILLS // 2, 12 + d[0]),
                                enumerate(dirs)))
    print(f"\n{KILLS} kills; per model (phases, iteration reached): {results}")
    for model_dir, (_, last_iter) in zip(dirs, results):
        assert last_iter >= 10                        # each kill after a save saw a new one
        assert train_cli(src_faceset, dst_faceset, model_dir, opts=[f"target_iter={last_iter + 2}"]) == 0
        assert loaded_generation(model_dir).data["iter"] == last_iter + 2


def test_disk_full_at_each_write_of_a_save(tiny_model, src_faceset, dst_faceset, tmp_path, monkeypatch):
    """The disk fills during the k-th write of a save, for every k: the last complete save loads."""
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model, model_dir)
    real_bytes, real_json = model_files.atomic_write_bytes, model_files.atomic_write_json
    model = make_model(src_faceset, dst_faceset, model_dir)
    try:
        model.train_iteration()
        model.save()                                # iteration 3, complete
        writes = len(model.parts) + 3               # marker, parts, optimizer, data.json
        for k in range(writes):
            count = iter(range(10**6))

            def fail_kth(real):
                def write(path, payload):
                    if next(count) == k:
                        raise VisageError(f"disk full while writing {path}")
                    real(path, payload)
                return write
            monkeypatch.setattr(model_files, "atomic_write_bytes", fail_kth(real_bytes))
            monkeypatch.setattr(model_files, "atomic_write_json", fail_kth(real_json))
            model.train_iteration()
            with pytest.raises(VisageError, match="disk full"):
                model.save()
            monkeypatch.setattr(model_files, "atomic_write_bytes", real_bytes)
            monkeypatch.setattr(model_files, "atomic_write_json", real_json)
            assert loaded_generation(model_dir).data["iter"] == 3, f"write {k}"
        model.save()                                # the next save after failures completes
        final = model.iter
    finally:
        model.close()
    assert loaded_generation(model_dir).data["iter"] == final
    again = make_model(src_faceset, dst_faceset, model_dir)
    try:
        assert again.iter == final and again.reinitialised == []
        assert np.isfinite(again.train_iteration()).all()
    finally:
        again.close()


def test_interrupted_save_falls_back_to_the_previous_one_with_a_line(tiny_model, src_faceset, dst_faceset,
                                                                     tmp_path, capsys):
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model, model_dir)
    assert train_cli(src_faceset, dst_faceset, model_dir, opts=["target_iter=4"]) == 0
    files = ModelFiles(model_dir, "t", "SAEHD")
    before = files.path("decoder.npz").read_bytes()
    # what a kill between two part writes leaves: the marker, one new part, the old data.json
    files.marker_path.write_text(json.dumps({"iter": 5}))
    encoder = files.path("encoder.npz")
    blob = bytearray(encoder.read_bytes())
    blob[len(blob) // 2] ^= 1
    encoder.write_bytes(bytes(blob))
    capsys.readouterr()
    assert loaded_generation(model_dir).data["iter"] == 2      # the save before iteration 4
    assert "did not finish; loading the previous save (iteration 2)" in capsys.readouterr().err
    assert files.path("decoder.npz").read_bytes() == before     # loading changed nothing
    assert train_cli(src_faceset, dst_faceset, model_dir, opts=["target_iter=5"]) == 0
    assert loaded_generation(model_dir).data["iter"] == 5 and not files.marker_path.exists()


def test_a_killed_save_that_had_committed_is_kept(tiny_model, tmp_path):
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model, model_dir)
    files = ModelFiles(model_dir, "t", "SAEHD")
    files.marker_path.write_text("{}")            # killed after data.json, before the marker went
    assert loaded_generation(model_dir).data["iter"] == 2
    assert not files.marker_path.exists()


def test_a_replaced_part_is_used_with_a_line(tiny_model, src_faceset, dst_faceset, tmp_path, capsys):
    """Model reuse: a part copied in from another model is not a damaged save."""
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model, model_dir)
    files = ModelFiles(model_dir, "t", "SAEHD")
    files.load_generation()
    arrays = files.load_arrays("inter_B")
    replaced = {k: v + 0.5 for k, v in arrays.items()}
    np.savez(files.path("inter_B.npz"), **replaced)
    capsys.readouterr()
    model = make_model(src_faceset, dst_faceset, model_dir)
    try:
        assert "t_SAEHD_inter_B.npz is not the file of the last save" in capsys.readouterr().err
        got = model.parts["inter_B"].get_weights()
        assert all(np.array_equal(w, replaced[k]) for w, k in zip(got, sorted(replaced)))
    finally:
        model.close()


def test_autobackup_is_one_complete_save(tiny_model, src_faceset, dst_faceset, tmp_path):
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model, model_dir)
    model = make_model(src_faceset, dst_faceset, model_dir)
    try:
        model.train_iteration()
        model.save()
        slot = model.backup()
    finally:
        model.close()
    restored = tmp_path / "restored"
    shutil.copytree(slot, restored)
    assert loaded_generation(restored).data["iter"] == 3
