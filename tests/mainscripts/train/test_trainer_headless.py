"""`train` on a machine without a display: no window, no error, previews written to the model folder."""
from __future__ import annotations

import json
import re
import sys

import pytest

import main
from core import interact
from tests.support.train_support import TINY

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is Linux's")


def test_train_without_display_falls_back_to_preview_files(src_faceset, dst_faceset, tmp_path, monkeypatch,
                                                           capsys):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    asked: list[str] = []
    monkeypatch.setattr(interact, "is_interactive", lambda: True)      # a person at the terminal
    monkeypatch.setattr("builtins.input", lambda prompt="": asked.append(prompt) or "")
    args = ["train", "--training-data-src-dir", str(src_faceset), "--training-data-dst-dir", str(dst_faceset),
            "--model-dir", str(tmp_path), "--model", "SAEHD", "--force-model-name", "h", "--workers", "1"]
    for o in TINY + ["target_iter=2"]:
        args += ["--opt", o]
    assert main.main(args) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0].startswith("No display found: training without the preview window")
    assert asked and not any("window" in q.lower() or "display" in q.lower() for q in asked)   # model options only
    assert "cannot open the preview window" not in out.err
    status = [line for line in out.out.splitlines() if re.fullmatch(r"\[[\d:]{8}\]\[#\d{6}\]\[(?:\d{4}ms|\d+\.\d\ds)\].*", line)]
    assert "\r" not in out.out and len(status) == 2         # not a terminal: one whole line per iteration
    assert (tmp_path / "h_SAEHD_preview.jpg").is_file() and (tmp_path / "h_SAEHD_loss.png").is_file()
    assert json.loads((tmp_path / "h_SAEHD_data.json").read_text())["iter"] == 2
