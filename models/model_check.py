"""Sanity checks of what a model folder holds: its name, its data.json and its weight arrays.

Anything a damaged or hostile model folder can hold becomes one VisageError line here,
before a network is built from it or a weight reaches the merger.
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from core.errors import VisageError

MAX_ITER = 10**9                    # DFL models reach a few million iterations
_NAME = re.compile(r"[^<>:\"/\\|?*\x00-\x1f]{1,100}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_PART = re.compile(r"[A-Za-z0-9_]{1,64}\.npz")


def check_model_name(name: str) -> str:
    """A model name is a plain file-name part: no folders, no `..`, nothing a file system refuses."""
    if not _NAME.fullmatch(name) or name.strip(" .") != name or name in (".", ".."):
        raise VisageError(f"'{name}' is not a valid model name: use a plain name (letters, digits, - and _), "
                          f"no folders or path separators")
    return name


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_data(data: Any) -> dict:
    """data.json as saved by ModelBase.save; raises VisageError naming what is wrong."""
    if not isinstance(data, dict):
        raise VisageError("it is not a JSON object")
    missing = [k for k in ("iter", "options") if k not in data]
    if missing:
        raise VisageError(f"it has no {' or '.join(missing)}")
    it = data["iter"]
    if not (isinstance(it, int) and not isinstance(it, bool) and 0 <= it <= MAX_ITER):
        raise VisageError(f"iteration {it!r} is not a whole number from 0 to {MAX_ITER}")
    if not isinstance(data["options"], dict):
        raise VisageError("'options' is not an object")
    history = data.get("loss_history", [])
    if not isinstance(history, list) or not all(
            isinstance(row, list) and 0 < len(row) <= 16 and all(_finite_number(v) for v in row) for row in history):
        raise VisageError("'loss_history' is not a list of finite losses")
    files = data.get("files", {})
    if not isinstance(files, dict) or not all(
            isinstance(k, str) and _PART.fullmatch(k) and isinstance(v, str) and _DIGEST.fullmatch(v)
            for k, v in files.items()):
        raise VisageError("'files' is not a manifest of part files and SHA-256 digests")
    from models.validation import check_history, check_record
    if data.get("validation") is not None:
        data["validation"] = check_record(data["validation"])
    check_history(data.get("validation_history", []))
    return data


def check_arrays(arrays: dict[str, np.ndarray], name: str) -> None:
    """Weights and optimizer state: real numbers only, every float finite."""
    for key, a in arrays.items():
        if a.dtype.kind not in "fiub":
            raise VisageError(f"{name} holds {a.dtype} data in {key}; a model's arrays are real numbers")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise VisageError(f"{name} holds NaN or infinite weights ({key}); the model is damaged or its "
                              f"training diverged: restore it from an autobackup or delete the file")
