"""`sort` from the command line: every listed method runs, renames are safe, errors are one line."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core.errors import VisageError
from core.fileio import list_images
from core.sorting import renaming
from core.sorting.methods import NAMES
from mainscripts.sorter import ask_method, sort_folder
from tests.support.sort_support import copy_tagged, file_hashes, sort, tags


# ---------------------------------------------------------------- CLI, safety, errors

def help_methods() -> list[str]:
    """The --by choices as `main.py sort --help` offers them: the flag's own choices, each named in the help."""
    import argparse
    import contextlib
    import io
    import re
    parser = main.build_parser()
    sort = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["sort"]
    by = next(a for a in sort._actions if "--by" in a.option_strings)
    methods = list(by.choices or by.type.choices)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main.main(["sort", "--help"])
    assert "/".join(methods) in re.sub(r"\s+", "", out.getvalue())     # argparse wraps the list anywhere
    return methods


@pytest.mark.parametrize("method", help_methods())
def test_every_listed_method_runs_from_the_cli(method, src_faceset, tmp_path):
    folder = tmp_path / "aligned"
    faces = copy_tagged(src_faceset, folder, "w_", limit=6)
    ref = tmp_path / "ref.jpg"
    shutil.copyfile(faces[0], ref)
    before = file_hashes(folder)
    argv = ["sort", "--input-dir", str(folder), "--by", method, "--non-interactive", "--ref", str(ref)]
    assert main.main(argv) == 0
    after = list_images(folder)
    trash = folder.parent / "aligned_trash"
    assert file_hashes(folder, trash) == before            # nothing lost, nothing rewritten
    if method != "oneface":
        assert [p.name for p in after] == [f"{i:05d}.jpg" for i in range(len(after))]


def test_all_methods_are_offered():
    assert help_methods() == list(NAMES)
    assert set(NAMES) == {"blur", "motion-blur", "face-yaw", "face-pitch", "face-source-rect-size", "hist",
                          "hist-dissim", "brightness", "hue", "black", "origname", "oneface", "final-by-blur",
                          "final-by-size", "absdiff", "id-ref", "id-group"}


def test_renames_never_lose_or_overwrite(woman, capsys):
    faces = list_images(woman)
    (woman / "00001.jpg").write_bytes(b"\xff\xd8 not really a face")       # unreadable: left in place
    plain = cv2.imencode(".jpg", np.full((32, 32, 3), 90, np.uint8))[1].tobytes()
    (woman / "00003.jpg").write_bytes(plain)                               # a JPEG without metadata
    shutil.copyfile(faces[4], woman / "w_dup_1.jpg")                       # 2-face frame -> trash
    trash = woman.parent / "aligned_trash"
    trash.mkdir()
    shutil.copyfile(faces[0], trash / faces[4].name)                       # a name already taken in the trash
    before = file_hashes(woman, trash)
    assert main.main(["sort", "--input-dir", str(woman), "--by", "oneface", "--non-interactive"]) == 0
    assert file_hashes(woman, trash) == before
    assert (woman / "00001.jpg").read_bytes() == b"\xff\xd8 not really a face"
    assert (woman / "00003.jpg").read_bytes() == plain
    names = sorted(p.name for p in woman.iterdir())
    assert names == sorted(["00001.jpg", "00003.jpg"] + [f"{i:05d}.jpg" for i in (0, 2, *range(4, 4 + len(faces) - 3))])
    assert len(list(trash.iterdir())) == 3
    err = capsys.readouterr().err
    assert "00001.jpg" in err and "00003.jpg" in err and "no Visage face metadata" in err


def test_a_crash_during_renames_loses_nothing_and_a_rerun_recovers(woman, monkeypatch):
    before = file_hashes(woman)
    real, calls = renaming.move_no_clobber, []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 20:                  # in the second phase (12 faces: 12 temp renames first)
            raise OSError(5, "Input/output error")
        real(src, dst)
    monkeypatch.setattr(renaming, "move_no_clobber", flaky)
    with pytest.raises(VisageError, match="run sort again"):
        sort(woman, "blur")
    assert file_hashes(woman) == before
    assert any(p.name.startswith("sorting_") for p in woman.iterdir())
    monkeypatch.setattr(renaming, "move_no_clobber", real)
    sort(woman, "origname")
    assert file_hashes(woman) == before and len(tags(woman)) == 12


def test_interrupt_waits_for_the_renames(woman, monkeypatch):
    import os
    import signal
    real, calls = renaming.move_no_clobber, []

    def interrupted(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        real(src, dst)
    monkeypatch.setattr(renaming, "move_no_clobber", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sort(woman, "blur")
    assert len(calls) == 24 and len(tags(woman)) == 12      # every rename finished first


@pytest.mark.parametrize("make", ["missing", "empty", "no_faces"])
def test_bad_folders_give_one_clear_line(make, tmp_path, capsys):
    folder = tmp_path / "aligned"
    if make != "missing":
        folder.mkdir()
    if make == "no_faces":
        for k in range(3):
            cv2.imwrite(str(folder / f"{k}.jpg"), np.full((16, 16, 3), 30 * k, np.uint8))
    assert main.main(["sort", "--input-dir", str(folder), "--by", "blur", "--non-interactive"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and str(folder) in err[0]
    if make == "no_faces":
        assert sorted(p.name for p in folder.iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]


def test_menu_asks_with_numbers_and_defaults_to_blur(monkeypatch, capsys):
    from core import interact
    monkeypatch.setattr(interact, "is_interactive", lambda: True)
    answers = iter(["", "?", "5"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    assert ask_method() == "blur"
    assert ask_method() == "hist"
    out = capsys.readouterr().out
    assert "[0] blur" in out and "[12] absdiff" in out and "id-group" in out


def test_target_prompt_and_flag(woman):
    faces = list_images(woman)
    assert main.main(["sort", "--input-dir", str(woman), "--by", "final-by-size", "--target", "4",
                      "--non-interactive"]) == 0
    assert len(list_images(woman)) == 4
    assert len(list((woman.parent / "aligned_trash").iterdir())) == len(faces) - 4
    with pytest.raises(VisageError):
        sort_folder(woman, "no-such-method")


# ---------------------------------------------------------------- large-set code paths, small data

def test_distance_matrix_in_blocks_and_on_disk_matches_direct(monkeypatch, tmp_path):
    import tempfile
    from core.sorting import ordering
    rng = np.random.default_rng(0)
    thumbs = rng.integers(0, 256, (11, 64)).astype(np.uint8)
    hists = np.sqrt(rng.dirichlet(np.ones(256), 11)).astype(np.float32)
    monkeypatch.setattr(ordering, "BLOCK", 4)
    monkeypatch.setattr(ordering, "IN_MEMORY_FACES", 5)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with ordering.distance_matrix(thumbs, ordering.mean_absdiff_block) as mat:
        assert isinstance(mat, np.memmap) and len(list(tmp_path.iterdir())) == 1
        direct = np.abs(thumbs[:, None].astype(int) - thumbs[None].astype(int)).mean(-1)
        assert np.allclose(mat, direct, atol=1e-4)
    assert not list(tmp_path.iterdir())                                   # the temp matrix is gone
    with ordering.distance_matrix(hists, ordering.bhattacharyya_block) as mat:
        ref = [[cv2.compareHist(a ** 2, b ** 2, cv2.HISTCMP_BHATTACHARYYA) for b in hists] for a in hists]
        assert np.allclose(mat, ref, atol=1e-3)
    totals = ordering.total_distances(hists, ordering.bhattacharyya_block)
    assert np.allclose(totals, np.sum(ref, axis=1), atol=1e-2)


def test_identity_clusters_of_a_large_set_through_the_sample(monkeypatch):
    from core.sorting import by_identity
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (3, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.repeat([0, 1, 2], [60, 30, 10])
    emb = centres[truth] + rng.normal(0, 0.02, (100, 128))
    monkeypatch.setattr(by_identity, "MAX_LINKAGE", 17)
    order, groups = by_identity.group_order(emb, 0.6)
    assert [len(g) for g in groups] == [60, 30, 10]
    assert all(len(set(truth[g])) == 1 for g in groups) and sorted(order) == list(range(100))


@pytest.mark.parametrize("side,number", [("src", "4.2"), ("dst", "5.2")])
def test_sort_scripts(side, number):
    import os
    root = Path(main.__file__).resolve().parent / "scripts"
    sh, bat = root / f"{number}) data_{side} sort.sh", root / f"{number}) data_{side} sort.bat"
    text, raw = sh.read_text(), bat.read_bytes()
    assert text.startswith("#!/usr/bin/env bash\nset -e\n") and "\r" not in text and os.access(sh, os.X_OK)
    assert text.splitlines()[-1] == f'"$PY" "$MAIN" sort --input-dir "$WORKSPACE/data_{side}/aligned" "$@"'
    assert raw.count(b"\n") == raw.count(b"\r\n") > 0 and raw.startswith(b"@echo off\r\n")
    assert raw.decode().splitlines()[-2] == f'"%PY%" "%MAIN%" sort --input-dir "%WORKSPACE%\\data_{side}\\aligned" %*'
