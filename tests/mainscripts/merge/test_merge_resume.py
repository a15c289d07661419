"""Batch merge resumes exactly the frames not yet merged with the current settings; a model
whose predictions are not finite stops merge (batch and interactive) with one line."""
from __future__ import annotations

import multiprocessing
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import main
from core.merge import batch_merge
from core.merge.resume import LOG_FILE, OLD_STATE_FILE
from tests.mainscripts.merge.test_merge_command import load, merge

SETTINGS = ("mode=overlay", "mask_mode=dst")
ERODE_OLD, ERODE_NEW = "erode_mask_modifier=100", "erode_mask_modifier=-100"


@pytest.fixture(scope="module", autouse=True)
def _one_face_per_prediction():
    """The model sees one face per call, so a frame merges to the same pixels whichever frames run with it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch_merge, "PREDICT_FRAMES", 1)
        yield


@pytest.fixture(scope="module")
def reference(dst, model_dir, tmp_path_factory):
    """A fresh merge of every frame with erode -100: what each frame must end up as."""
    out = tmp_path_factory.mktemp("reference") / "merged"
    assert merge(*dst, model_dir, out, *SETTINGS, ERODE_NEW) == 0
    return out


def mask_dir(out: Path) -> Path:
    return Path(str(out) + "_mask")


def copy_merge(out: Path, tmp_path: Path) -> Path:
    """The merged and mask folders copied with their times, so the copy's merge log still holds."""
    shutil.copytree(out, tmp_path / "merged")
    shutil.copytree(mask_dir(out), mask_dir(tmp_path / "merged"))
    return tmp_path / "merged"


def mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(out.glob("*.png"))}


def assert_same_merge(out: Path, ref: Path) -> None:
    names = sorted(p.name for p in ref.glob("*.png"))
    assert sorted(p.name for p in out.glob("*.png")) == names
    for name in names:
        assert np.array_equal(load(out / name), load(ref / name)), name
        assert np.array_equal(load(mask_dir(out) / name), load(mask_dir(ref) / name)), name


def stop_after(monkeypatch, n: int) -> None:
    """Ctrl-C in the parent when it prepares job n + 1 (with one worker, jobs 1..n are written and recorded)."""
    prepare = batch_merge.prepare_jobs

    def prepare_then_stop(*args, **kwargs):
        for i, job in enumerate(prepare(*args, **kwargs)):
            if i == n:
                raise KeyboardInterrupt
            yield job
    monkeypatch.setattr(batch_merge, "prepare_jobs", prepare_then_stop)


def test_changed_settings_stopped_then_resumed_end_as_a_fresh_merge(dst, model_dir, reference, tmp_path,
                                                                   monkeypatch, capsys):
    """The user's case: merge with erode 100; again with -100, Ctrl-C after 5 frames; again with -100."""
    out = tmp_path / "merged"
    assert merge(*dst, model_dir, out, *SETTINGS, ERODE_OLD) == 0
    old = mtimes(out)
    total, first = len(old), sorted(old)[:5]
    with monkeypatch.context() as mp:
        stop_after(mp, 5)
        assert merge(*dst, model_dir, out, *SETTINGS, ERODE_NEW, extra=["--workers", "1"]) == 130
    stopped = mtimes(out)
    assert [n for n in old if stopped[n] != old[n]] == first          # the other frames are still erode 100
    capsys.readouterr()

    assert merge(*dst, model_dir, out, *SETTINGS, ERODE_NEW) == 0
    said = capsys.readouterr().out
    assert (f"Resuming: 5 of {total} frames are already merged; {total - 5} merged with another model iteration "
            f"or other settings are merged again") in said
    assert f"Merged {total - 5} frames" in said
    assert all(mtimes(out)[n] == stopped[n] for n in first)           # the 5 new ones were not redone
    assert_same_merge(out, reference)

    assert merge(*dst, model_dir, out, *SETTINGS, ERODE_NEW) == 0
    assert f"All {total} frames are already merged" in capsys.readouterr().out


def test_frame_without_its_record_or_rewritten_since_is_merged_again(dst, model_dir, reference, tmp_path,
                                                                    capsys):
    out = copy_merge(reference, tmp_path)
    names = sorted(mtimes(out))
    unrecorded, rewritten = names[2], names[7]
    log = out / LOG_FILE
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(line for line in lines if not line.startswith(Path(unrecorded).stem.encode() + b" ")))
    shutil.copy(dst[0] / rewritten, out / rewritten)          # as the interactive merger or an old version would
    (out / OLD_STATE_FILE).write_text("{}")                  # an old version's state file: no longer trusted
    before = mtimes(out)
    assert merge(*dst, model_dir, out, *SETTINGS, ERODE_NEW) == 0
    said = capsys.readouterr().out
    assert f"Resuming: {len(names) - 2} of {len(names)} frames are already merged\n" in said
    assert "Merged 2 frames" in said
    after = mtimes(out)
    assert [n for n in names if after[n] != before[n]] == [unrecorded, rewritten]
    assert_same_merge(out, reference)
    assert not (out / OLD_STATE_FILE).exists()


def test_torn_and_garbage_log_lines_are_ignored(dst, model_dir, reference, tmp_path, capsys):
    out = copy_merge(reference, tmp_path)
    log = out / LOG_FILE
    lines = log.read_bytes().splitlines(keepends=True)
    torn = lines.pop(4)                                       # Ctrl-C before this record's newline was written
    log.write_bytes(b"".join(lines) + b"\xff\xfe\x00 garbage\n\n00000 zz 1:2\n" + torn.rstrip(b"\n"))
    torn_name = torn.split(b" ")[0].decode() + ".png"
    before = mtimes(out)
    assert merge(*dst, model_dir, out, *SETTINGS, ERODE_NEW) == 0
    said = capsys.readouterr().out
    assert f"Resuming: {len(before) - 1} of {len(before)} frames are already merged" in said
    after = mtimes(out)
    assert [n for n in before if after[n] != before[n]] == [torn_name]
    assert_same_merge(out, reference)
    assert sorted(line.split(b" ")[0] for line in log.read_bytes().splitlines()) == \
        sorted(Path(n).stem.encode() for n in before)        # compacted: one good record per frame


# ------------------------------------------------------------------ predictions that are not finite

@pytest.fixture(scope="module")
def diverged_model(model_dir, tmp_path_factory):
    """The model with decoder_src weights that are finite (float32's largest) but make every prediction NaN."""
    from models.model_files import ModelFiles
    out = tmp_path_factory.mktemp("diverged_model")
    for p in [*model_dir.glob("m_SAEHD_*.npz"), model_dir / "m_SAEHD_data.json"]:
        shutil.copy2(p, out / p.name)
    files = ModelFiles(out, "m", "SAEHD")
    data = dict(files.load_generation().data)
    parts = {name[:-len(".npz")]: files.load_arrays(name[:-len(".npz")]) for name in data.pop("files")}
    big = np.finfo(np.float32).max
    parts["decoder_src"] = {k: np.where(np.arange(a.size).reshape(a.shape) % 2, big, -big).astype(a.dtype)
                            for k, a in parts["decoder_src"].items()}
    files.save(parts, data)
    return out


def assert_one_error_line(err: str) -> None:
    errors = [line for line in err.splitlines() if re.sub(r"\x1b\[[0-9;]*m", "", line).startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "m_SAEHD" in errors[0] and "not finite" in errors[0]


def test_model_predicting_nan_stops_batch_merge(dst, diverged_model, tmp_path, capsys):
    out = tmp_path / "merged"
    assert merge(*dst, diverged_model, out, *SETTINGS) == 2            # two workers: through the pool
    assert_one_error_line(capsys.readouterr().err)
    assert not list(out.glob("*.png")) and not list(mask_dir(out).glob("*.png"))
    assert not multiprocessing.active_children()                         # the workers were shut down


def test_model_predicting_nan_stops_interactive_merge(dst, diverged_model, tmp_path, monkeypatch,
                                                      capsys):
    """The window (replaced: it shows the first frame, then finishes it) never gets a NaN frame to show."""
    from mainscripts.merge import merger_window

    def window(state, render, commit, save, title=""):
        render(state.index, state.cfg)
        commit(state.index, state.cfg)
        return state
    monkeypatch.setattr(merger_window, "run_window", window)
    frames_dir, aligned = dst
    out = tmp_path / "merged"
    assert main.main(["merge", "--input-dir", str(frames_dir), "--output-dir", str(out), "--aligned-dir",
                      str(aligned), "--model-dir", str(diverged_model), "--model", "SAEHD", "--interactive"]) == 2
    assert_one_error_line(capsys.readouterr().err)
    assert not list(out.glob("*.png"))
