"""A copy of scripts/setup.sh and the requirements files in a scratch folder, for tests that run setup.sh."""
from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def copy_setup(dest: Path) -> Path:
    """dest/scripts/setup.sh, dest/requirements.txt and dest/requirements-dev.txt; returns dest."""
    (dest / "scripts").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "scripts" / "setup.sh", dest / "scripts")
    for req in ("requirements.txt", "requirements-dev.txt"):
        shutil.copy(REPO / req, dest)
    return dest
