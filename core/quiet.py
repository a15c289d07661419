"""Keep native libraries' start-up chatter off the console (shown again with --verbose).

TensorFlow's C++ side logs through absl before anything can configure it ("All log messages
before absl::InitializeLog()", "Could not find cuda drivers", "failed call to cuInit", XLA
service lines), and TF_CPP_MIN_LOG_LEVEL no longer silences those. They are written to file
descriptor 2 while TensorFlow is imported and while it first looks for devices, so those two
moments run with fd 2 pointed at the null device. Python-level errors are raised after the
moment and still reach the user.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
from typing import Iterator

_enabled = False


@contextlib.contextmanager
def quiet_stderr(always: bool = False) -> Iterator[None]:
    """File descriptor 2 goes to the null device for the duration (Python's sys.stderr too),
    when silence_native_logs() was called or `always`."""
    if not (_enabled or always):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        with quiet_stderr():
            self.loader.exec_module(module)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Imports `tensorflow` (the first time only) with fd 2 silenced."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def silence_native_logs() -> None:
    """From now on, TensorFlow's import and device discovery print nothing (see the docstring)."""
    global _enabled
    _enabled = True
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
