"""The trainer's prompts at a real terminal (a pty): '?' help, the override window, the picker."""
from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
REPO = Path(__file__).resolve().parents[3]
TINY = ["archi=df-ud", "resolution=64", "ae_dims=32", "e_dims=16", "d_dims=16", "d_mask_dims=16"]


def run_in_pty(args: list[str], reply: Callable[[str], str | None], timeout: float = 240) -> str:
    """Run main.py at a pty; whenever the output stops at a prompt, answer with reply(last line)."""
    import pty
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "main.py", *args], cwd=REPO, stdin=slave, stdout=slave, stderr=slave,
                            close_fds=True, env={**os.environ, "VISAGE_NON_INTERACTIVE": ""})
    os.close(slave)
    out, answered, deadline = "", 0, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.3)
            if ready:
                try:
                    chunk = os.read(master, 65536).decode("utf-8", "replace")
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
            tail = out[answered:]
            line = tail.replace("\r", "\n").rstrip(" \n").split("\n")[-1]
            if line.endswith(":") or line.endswith("settings."):
                answer = reply(line)
                if answer is not None:
                    os.write(master, (answer + "\n").encode())
                    answered = len(out)
        proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    return out


def test_prompts_help_override_window_and_picker(src_faceset, dst_faceset, tmp_path):
    base = ["train", "--training-data-src-dir", str(src_faceset), "--training-data-dst-dir", str(dst_faceset),
            "--model-dir", str(tmp_path), "--model", "SAEHD", "--no-preview", "--workers", "1"]
    opts = [a for o in TINY for a in ("--opt", o)]
    asked: list[str] = []
    helped = []

    def first(line: str) -> str | None:
        if "No saved models found" in line:
            return "mine"
        asked.append(line)
        if "Batch_size" in line:
            if not helped:
                helped.append(line)
                return "?"
            return "3"
        return "" if "Target iteration" not in line else "2"
    out = run_in_pty(base + opts, first)
    assert "Faces per iteration" in out                     # the '?' answer printed the help text
    assert not any("Resolution" in a or "AE architecture" in a for a in asked)   # given by --opt: not asked
    assert any("Masked training" in a for a in asked) and any("Color transfer" in a for a in asked)
    data = json.loads((tmp_path / "mine_SAEHD_data.json").read_text())
    assert (data["iter"], data["options"]["batch_size"], data["options"]["target_iter"]) == (2, 3, 2)

    asked.clear()

    def override(line: str) -> str | None:
        asked.append(line)
        if "Batch_size" in line:
            return "5"
        return "4" if "Target iteration" in line else ""       # '' also picks model [0] and takes the window
    out = run_in_pty(base, override)
    assert "mine" in out                                        # the picker listed the saved model
    locked = r"Resolution|AE architecture|(AutoEncoder|Encoder|Decoder|Decoder mask) dimensions|Face type"
    assert not any(re.search(locked, a) for a in asked)                          # locked after the first run
    assert any("GAN dimensions" in a for a in asked)                          # DFL lets these change
    assert any("Batch_size" in a for a in asked)
    data = json.loads((tmp_path / "mine_SAEHD_data.json").read_text())
    assert (data["iter"], data["options"]["batch_size"], data["options"]["resolution"]) == (4, 5, 64)

    asked.clear()
    out = run_in_pty(base + ["--force-model-name", "mine", "--opt", "target_iter=5"],
                     lambda line: asked.append(line) or None)   # no answer: the 2-second window passes
    assert any("override" in a for a in asked) and not any("Batch_size" in a for a in asked)
    assert json.loads((tmp_path / "mine_SAEHD_data.json").read_text())["iter"] == 5
