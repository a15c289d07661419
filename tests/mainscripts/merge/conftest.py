"""The merge tests' model and frames, made once for the whole run (test_merge_command.py and
test_merge_resume.py both merge with them; as module fixtures each module trained its own)."""
from __future__ import annotations

import pytest

import main

TINY = ["archi=df-ud", "resolution=64", "ae_dims=32", "e_dims=16", "d_dims=16", "d_mask_dims=16", "batch_size=2",
        "target_iter=2"]


@pytest.fixture(scope="session")
def model_dir(src_faceset, dst_faceset, tmp_path_factory):
    """A tiny SAEHD (df-ud, 64 px) named `m`, trained for 2 iterations on the woman (src) and the man (dst).

    Tests only read it (the interactive-merger test adds its session file); copy it to change it."""
    out = tmp_path_factory.mktemp("merge_model")
    args = ["train", "--training-data-src-dir", str(src_faceset), "--training-data-dst-dir", str(dst_faceset),
            "--model-dir", str(out), "--model", "SAEHD", "--force-model-name", "m", "--no-preview", "--silent-start",
            "--workers", "1", "--non-interactive"]
    for o in TINY:
        args += ["--opt", o]
    assert main.main(args) == 0
    return out


@pytest.fixture(scope="session")
def dst(frames, dst_faceset):
    """(frames folder, aligned folder) of the man: every 6th frame of single_face.mp4, one face each."""
    return frames("single_face.mp4", every=6), dst_faceset
