"""Atomic writes: old-or-new contents only, and files get the usual permissions."""
from __future__ import annotations

import os
import stat

import pytest

from core.fileio import FILE_MODE, atomic_write_bytes, atomic_writer


def test_written_files_get_the_umask_mode_not_mkstemps_private_one(tmp_path):
    path = tmp_path / "out.png"
    atomic_write_bytes(path, b"data")
    mask = os.umask(0)
    os.umask(mask)
    assert FILE_MODE == 0o666 & ~mask
    assert stat.S_IMODE(path.stat().st_mode) == FILE_MODE          # mkstemp alone gives 0o600


def test_an_error_mid_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "faceset.pak"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_writer(path) as f:
            f.write(b"half of the new")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["faceset.pak"]
