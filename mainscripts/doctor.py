"""`doctor`: what this machine gives Visage, one line each, and exit 1 if something needed is missing.

Python, the pinned packages (installed version against requirements.txt), the face models the
packages ship, the Keras backend in use and its version, the other backends installed, the
devices that backend finds (GPU name, compute capability, memory), the precision `auto` picks and why (CPU flags), ffmpeg, and
whether a preview window can open.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import sys
from pathlib import Path
from typing import Callable, Iterator

from core import interact

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"
MIN_PYTHON = (3, 11)
Check = tuple[str, str, str]          # (status: ok / warn / MISSING, what, detail)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    from core.nn.backend import add_backend_flag
    p = sub.add_parser("doctor", parents=[parent], help="check this machine: Python, packages, devices, ffmpeg")
    add_backend_flag(p)
    p.set_defaults(func=cli)


def cli(args: argparse.Namespace) -> int:
    missing = 0
    for check in CHECKS:
        for status, what, detail in check():
            line = f"{status:<7} {what:<26} {detail}"
            if status == "MISSING":
                missing += 1
                interact.log_err(line, tag=False)
            elif status == "warn":
                interact.log_warn(line, tag=False)
            else:
                interact.log_info(line)
    if missing:
        interact.log_err(f"{missing} thing(s) missing; run scripts/setup.sh (Windows: scripts\\setup.bat)")
        return 1
    return 0


def python() -> Iterator[Check]:
    v = sys.version_info
    ok = (v.major, v.minor) >= MIN_PYTHON
    yield ("ok" if ok else "MISSING", "python", f"{v.major}.{v.minor}.{v.micro} at {sys.executable}"
           + ("" if ok else f"; Visage needs {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer"))


def pinned() -> dict[str, str]:
    """requirements.txt as {distribution: pinned version}."""
    found = {}
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s*([A-Za-z0-9_.\-\[\]]+)==(\S+)", line)
        if m:
            found[re.sub(r"\[.*\]", "", m[1])] = m[2]
    return found


def packages() -> Iterator[Check]:
    for dist, want in pinned().items():
        try:
            have = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            yield "MISSING", dist, f"not installed (pinned {want})"
            continue
        yield ("ok", dist, have) if have == want else ("warn", dist, f"{have} installed, {want} pinned")


def face_models() -> Iterator[Check]:
    from core.errors import VisageError
    from core.facelib.model_registry import MODELS, model_path
    for key, m in MODELS.items():
        try:
            model_path(key)
        except VisageError as e:
            yield "MISSING", key, str(e)
        else:
            yield "ok", key, f"{m.vendor} ({m.licence})"


def _gpus() -> Iterator[Check]:
    """Each GPU the backend finds; none is fine (training runs on the CPU), but with a GPU build installed
    it is worth one warning, since that build was installed for a GPU (still exit 0: nothing is missing)."""
    from core.nn.backend import backend_name, gpu_build, gpus, hidden_gpus_hint
    found = gpus()
    if not found:
        build = gpu_build()
        if build:
            yield "warn", "GPU", (f"{build} is installed, but {backend_name()} sees no GPU: {hidden_gpus_hint()}; "
                                  f"training runs on the CPU")
        else:
            yield "ok", "GPU", f"none found by {backend_name()}: training runs on the CPU"
    for i, (name, cc) in enumerate(found):
        yield "ok", f"GPU {i}", name + (f", compute capability {cc[0]}.{cc[1]}" if cc != (0, 0) else "") + _gpu_memory(i)


def _gpu_memory(index: int) -> str:
    import shutil
    import subprocess
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ""
    try:
        out = subprocess.run([exe, "--query-gpu=memory.total", "--format=csv,noheader", "-i", str(index)],
                             capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f", {out}" if out else ""


def backend() -> Iterator[Check]:
    from core.machine import describe
    from core.nn.backend import BACKENDS, auto_precision, backend_name, describe_backend
    yield "ok", "CPU", describe()
    try:
        import keras  # noqa: F401  (starts the backend chosen by --backend / VISAGE_BACKEND)
    except ImportError as e:
        yield "MISSING", "backend", f"keras or its backend cannot be imported ({e})"
        return
    yield "ok", "backend", f"{describe_backend()}, in use"
    for name, (package, _, label) in BACKENDS.items():
        if name != backend_name():
            try:
                version = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                yield "ok", f"backend {name}", f"{label} not installed (optional; README \"GPU\")"
            else:
                yield "ok", f"backend {name}", f"{label} {version} installed: --backend {name}"
    yield from _gpus()
    choice, why = auto_precision()
    yield "ok", "precision auto", f"{choice}: {why}"


def ffmpeg() -> Iterator[Check]:
    import subprocess
    from core.errors import VisageError
    from core.video import ffmpeg_exe
    try:
        exe = ffmpeg_exe()
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, errors="replace",
                             timeout=30).stdout.splitlines()
    except (VisageError, OSError, subprocess.SubprocessError) as e:
        yield "MISSING", "ffmpeg", str(e)
        return
    version = out[0].split(" Copyright")[0] if out else "unknown version"
    yield "ok", "ffmpeg", f"{version} ({exe})"


def display() -> Iterator[Check]:
    has = os.name == "nt" or sys.platform == "darwin" or bool(os.environ.get("DISPLAY")
                                                              or os.environ.get("WAYLAND_DISPLAY"))
    yield ("ok", "display", "preview windows can open") if has else (
        "ok", "display", "none: training writes its preview and loss graph as images (--no-preview)")


CHECKS: tuple[Callable[[], Iterator[Check]], ...] = (python, packages, face_models, backend, ffmpeg, display)
