"""A fresh clone of the repository shows a clean `git status` (no file rewritten by .gitattributes)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_fresh_clone_has_a_clean_status(tmp_path):
    if _git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        pytest.skip("not a git checkout (a source archive)")
    clone = tmp_path / "clone"
    proc = _git("clone", "--quiet", "--depth", "1", ROOT.as_uri(), str(clone))
    assert proc.returncode == 0, proc.stderr
    status = _git("status", "--porcelain", cwd=clone)
    assert status.returncode == 0 and status.stdout == "", status.stdout
    bats = [line for line in _git("ls-files", "--eol", "*.bat", cwd=clone).stdout.splitlines()]
    assert bats and all(line.startswith("i/lf") and "w/crlf" in line for line in bats), bats   # stored LF, checked out CRLF
