"""Every test in tests/e2e/ runs whole commands or numbered steps on the sample clips: all are
marked `slow` here, so `pytest -m "not slow"` leaves them out for a quick run (CI runs them)."""
from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.slow)
