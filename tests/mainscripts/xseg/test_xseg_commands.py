"""`xseg fetch / remove-labels / remove / generic-apply` and their one-line errors, on real faces."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.facelib.face_meta import read_meta, update_meta
from core.imagelib.masks import decode_xseg_mask, hull_mask
from main import main

SQUARE = [[20.0, 20.0], [100.0, 20.0], [100.0, 100.0], [20.0, 100.0]]


@pytest.fixture
def faces(src_faceset, tmp_path) -> Path:
    out = tmp_path / "aligned"
    out.mkdir()
    for p in sorted(src_faceset.glob("*.jpg"))[:4]:
        shutil.copy(p, out / p.name)
    return out


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jpg"))


def label(path: Path, polys=None) -> None:
    meta = read_meta(path)
    meta.seg_ie_polys = [{"type": "include", "points": SQUARE}] if polys is None else polys
    update_meta(path, meta)


def test_fetch_copies_labelled_faces_and_keeps_originals(faces, capsys):
    fs = files(faces)
    label(fs[1])
    label(fs[3])
    assert main(["xseg", "fetch", "--input-dir", str(faces), "--no-delete-originals"]) == 0
    out = faces.parent / "aligned_xseg"
    assert [p.name for p in files(out)] == [fs[1].name, fs[3].name]
    assert all((out / p.name).read_bytes() == p.read_bytes() for p in (fs[1], fs[3]))
    assert len(files(faces)) == 4 and "Copied 2 labelled faces" in capsys.readouterr().out
    assert main(["xseg", "fetch", "--input-dir", str(faces), "--delete-originals"]) == 0
    assert [p.name for p in files(faces)] == [fs[0].name, fs[2].name] and len(files(out)) == 2


def test_remove_labels_and_remove_masks_keep_image_bytes(faces):
    fs = files(faces)
    label(fs[0])
    meta = read_meta(fs[1])
    meta.xseg_mask = cv2.imencode(".png", np.full((128, 128), 255, np.uint8))[1].tobytes()
    update_meta(fs[1], meta)
    jpeg_tail = [p.read_bytes()[-2000:] for p in fs]
    assert main(["xseg", "remove-labels", "--input-dir", str(faces), "--non-interactive"]) == 0
    assert read_meta(fs[0]).seg_ie_polys == [] and read_meta(fs[1]).xseg_mask is not None
    assert main(["xseg", "remove", "--input-dir", str(faces), "--non-interactive"]) == 0
    assert read_meta(fs[1]).xseg_mask is None
    assert [p.read_bytes()[-2000:] for p in fs] == jpeg_tail           # the image data is untouched


def test_generic_apply_covers_face_and_forehead(faces, capsys):
    assert main(["xseg", "generic-apply", "--input-dir", str(faces)]) == 0
    assert "4 from the face mesh" in capsys.readouterr().out
    for p in files(faces):
        meta = read_meta(p)
        mask = decode_xseg_mask(meta.xseg_mask, 128)[..., 0]
        lm = meta.landmarks
        hull = hull_mask((128, 128), lm, 1.0)[..., 0] > 0.5
        inside = mask > 0.5
        # nearly all of the landmark face is in; the mask reaches above the brows (forehead) but
        # not to the top of the crop, and the corners of the crop (background) are out
        assert (inside & hull).sum() / hull.sum() > 0.9
        brow_top = lm[17:27, 1].min()
        top = np.argmax(inside.any(axis=1))
        assert top < brow_top - 8 and top > 0
        assert not inside[:8, :8].any() and not inside[-8:, -8:].any()


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_one_line_errors(faces, tmp_path, capsys):
    fs = files(faces)
    before = [p.read_bytes() for p in fs]
    assert main(["xseg", "apply", "--input-dir", str(faces), "--model-dir", str(tmp_path / "none")]) == 2
    assert "no trained XSeg model" in one_line(capsys) and [p.read_bytes() for p in fs] == before
    label(fs[0], [{"type": "include", "points": SQUARE[:2]}])
    assert main(["xseg", "fetch", "--input-dir", str(tmp_path / "missing")]) == 2
    assert "input folder not found" in one_line(capsys)
    src = tmp_path / "unlabelled"
    shutil.copytree(faces, src)
    for p in files(src):
        label(p, [])
    assert main(["train", "--model", "XSeg", "--training-data-src-dir", str(src), "--training-data-dst-dir", str(src),
                 "--model-dir", str(tmp_path / "m"), "--no-preview", "--silent-start"]) == 2
    assert "no faces with XSeg polygons" in one_line(capsys)
    assert main(["train", "--model", "XSeg", "--training-data-src-dir", str(faces), "--training-data-dst-dir",
                 str(src), "--model-dir", str(tmp_path / "m"), "--no-preview", "--silent-start"]) == 2
    err = capsys.readouterr().err
    assert "polygon 1 has 2 point(s)" in err and fs[0].name in err and len(err.strip().splitlines()) == 1
