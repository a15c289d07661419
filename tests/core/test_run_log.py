"""Every command writes a log file beside its workspace: the lines the user saw and unexpected tracebacks."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

import main
from core.run_log import log_dir


@pytest.fixture
def workspace(faces, tmp_path, monkeypatch):
    """A DeepFaceLab workspace with real aligned faces; logs go where the rule puts them, not to the tests' folder."""
    monkeypatch.delenv("VISAGE_LOG_DIR", raising=False)
    ws = tmp_path / "workspace"
    (ws / "data_src").mkdir(parents=True)
    shutil.move(str(faces), ws / "data_src" / "aligned")
    return ws


def _logs(ws: Path) -> list[Path]:
    return sorted((ws / "logs").glob("*.log")) if (ws / "logs").is_dir() else []


def test_a_command_logs_what_the_user_saw_beside_its_workspace(workspace, capsys):
    aligned = workspace / "data_src" / "aligned"
    before = {p.name for p in aligned.iterdir()}
    assert main.main(["util", "--input-dir", str(aligned), "--save-faceset-metadata"]) == 0
    shown = capsys.readouterr().out
    logs = _logs(workspace)
    assert len(logs) == 1 and logs[0].name.startswith("util_")
    text = logs[0].read_text()
    assert f"command: util --input-dir {aligned} --save-faceset-metadata" in text
    assert "Saved the metadata of 12 faces" in shown and "Saved the metadata of 12 faces" in text
    assert "\x1b[" not in text and "\r" not in text
    assert {p.name for p in aligned.iterdir()} - before == {"meta.json"}        # the log is not among the faces


def test_an_error_line_and_an_unexpected_traceback_are_in_the_log(workspace, monkeypatch, capsys):
    import mainscripts.util as util
    aligned = workspace / "data_src" / "aligned"
    assert main.main(["util", "--input-dir", str(aligned), "--restore-faceset-metadata"]) == 2
    assert "error: no meta.json in" in capsys.readouterr().err
    assert "error: no meta.json in" in _logs(workspace)[-1].read_text()

    def broken(folder):
        raise RuntimeError("a bug, not the user's fault")
    monkeypatch.setattr(util, "add_debug_images", broken)
    with pytest.raises(RuntimeError):
        main.main(["util", "--input-dir", str(aligned), "--add-landmarks-debug-images"])
    newest = max(_logs(workspace), key=lambda p: p.stat().st_mtime_ns).read_text()
    assert "Traceback (most recent call last)" in newest and "RuntimeError: a bug, not the user's fault" in newest


def test_where_the_log_goes(tmp_path, monkeypatch):
    monkeypatch.delenv("VISAGE_LOG_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ns = argparse.Namespace
    assert log_dir(ns(model_dir="workspace/model", input_dir=None), tmp_path) == tmp_path / "workspace" / "logs"
    assert log_dir(ns(input_file="/v/workspace/data_src.*"), tmp_path) == Path("/v/workspace/logs")
    assert log_dir(ns(workspace="demo_ws"), tmp_path) == tmp_path / "demo_ws" / "logs"
    assert log_dir(ns(input_dir="/elsewhere/frames"), tmp_path) == tmp_path / "home" / ".visage" / "logs"
    (tmp_path / "workspace").mkdir()
    assert log_dir(ns(input_dir="/elsewhere/frames"), tmp_path) == tmp_path / "workspace" / "logs"
    monkeypatch.setenv("VISAGE_LOG_DIR", str(tmp_path / "mine"))
    assert log_dir(ns(model_dir="workspace/model"), tmp_path) == tmp_path / "mine"


def test_each_command_keeps_only_its_newest_logs(workspace, capsys):
    """Logs do not pile up: a run deletes its command's oldest logs beyond KEEP_LOGS, nothing else."""
    from core.run_log import KEEP_LOGS
    logs = workspace / "logs"
    logs.mkdir()
    old_util = [logs / f"util_20250101_0000{i:02d}_7.log" for i in range(KEEP_LOGS + 5)]
    others = [logs / f"merge_20250101_0000{i:02d}_7.log" for i in range(KEEP_LOGS + 5)]
    others += [logs / "util_notes.log", logs / "util_20250101_000000_7.log.bak"]
    for p in old_util + others:
        p.write_text("an earlier run\n")
    aligned = workspace / "data_src" / "aligned"
    assert main.main(["util", "--input-dir", str(aligned), "--save-faceset-metadata"]) == 0
    assert "Saved the metadata of 12 faces" in capsys.readouterr().out
    util_logs = sorted(p for p in logs.glob("util_*.log") if p not in others)
    assert len(util_logs) == KEEP_LOGS
    new = [p for p in util_logs if p not in old_util]
    assert len(new) == 1 and "command: util --input-dir" in new[0].read_text()          # this run's own log
    assert [p for p in util_logs if p in old_util] == old_util[-(KEEP_LOGS - 1):]       # the oldest went first
    assert all(p.is_file() for p in others)                   # other commands' logs and other files are kept
