"""`util` operations on real faces: metadata save/restore, filename recovery, debug images, masks, contact sheet."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core.facelib.face_meta import extract, read_face, read_meta, update_meta
from core.fileio import read_image
from samplelib.sample import load_samples


def util(folder: Path, *flags: str) -> int:
    return main.main(["util", "--input-dir", str(folder), *flags])


def face_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.jpg") if extract(p.read_bytes()) is not None)


# ---------------------------------------------------------------- metadata save / restore

def test_restore_scales_edited_faces_back_and_reembeds_metadata(faces, capsys):
    files = face_files(faces)
    saved = {p.name: read_face(p) for p in files}
    assert util(faces, "--save-faceset-metadata") == 0
    assert (faces / "meta.json").is_file() and b"pickle" not in (faces / "meta.json").read_bytes()

    shrunk, stripped, gone = files[2], files[5], files[9]
    img = cv2.imread(str(shrunk))
    cv2.imwrite(str(shrunk), cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA))   # an outside editor
    cv2.imwrite(str(stripped), cv2.imread(str(stripped)), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert extract(shrunk.read_bytes()) is None and extract(stripped.read_bytes()) is None
    kept_bytes = files[0].read_bytes()
    moved = gone.rename(faces.parent / gone.name)

    assert util(faces, "--restore-faceset-metadata") == 0
    out = capsys.readouterr()
    assert "1 scaled back" in out.out and gone.name in out.err and "meta.json was kept" in out.err
    assert (faces / "meta.json").is_file()
    for p in (shrunk, stripped, files[0]):
        img2, meta2 = read_face(p)
        orig_img, orig_meta = saved[p.name]
        assert img2.shape == orig_img.shape == (128, 128, 3)
        assert meta2 == orig_meta
    # the rescaled face lines up with its landmarks: it is the original, blurred by the round trip, not shifted
    orig = saved[shrunk.name][0]
    ref = cv2.resize(cv2.resize(orig, (64, 64), interpolation=cv2.INTER_AREA), (128, 128),
                     interpolation=cv2.INTER_LANCZOS4).astype(int)
    restored = read_face(shrunk)[0].astype(int)
    assert np.abs(restored - ref).mean() < 2.5
    assert np.abs(restored - ref).mean() < np.abs(restored - np.roll(ref, 3, axis=1)).mean() / 3
    assert files[0].read_bytes()[-2000:] == kept_bytes[-2000:]    # untouched size: image data kept

    moved.rename(gone)                                  # the missing face comes back: restore finishes
    assert util(faces, "--restore-faceset-metadata") == 0
    assert read_meta(gone) == saved[gone.name][1] and not (faces / "meta.json").exists()


def test_restore_without_saved_metadata_is_one_line(faces, capsys):
    assert util(faces, "--restore-faceset-metadata") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run util --save-faceset-metadata" in err


# ---------------------------------------------------------------- recover original filename

def test_recover_original_filenames_two_phase(faces):
    files = face_files(faces)
    originals = {p.name: p.read_bytes() for p in files}
    a, b = files[0], files[1]
    tmp = faces / "swap.tmp.jpg"
    a.rename(tmp)
    b.rename(a)                                          # b now sits on a's original name
    tmp.rename(b)                                        # and a on b's
    for i, p in enumerate(files[2:]):
        p.rename(faces / f"renamed_{i}.jpg")
    shutil.copy(faces / "renamed_0.jpg", faces / "zz_copy.jpg")    # a second face of the same frame
    copy_source = Path(read_meta(faces / "zz_copy.jpg").source_filename).stem

    assert util(faces, "--recover-original-aligned-filename") == 0
    names = {p.name for p in faces.glob("*.jpg")}
    assert names == set(originals) | {f"{copy_source}_1.jpg"}
    for name, data in originals.items():
        assert (faces / name).read_bytes() == data
        assert Path(read_meta(faces / name).source_filename).stem + "_0.jpg" == name
    assert not list(faces.glob("_visage_renaming_*"))


def test_recover_refuses_to_overwrite_a_non_face(faces):
    files = face_files(faces)
    files[0].rename(faces / "moved.jpg")
    cv2.imwrite(str(files[0]), np.zeros((16, 16, 3), np.uint8))      # a stranger holds the target name
    before = sorted(p.name for p in faces.glob("*.jpg"))
    assert util(faces, "--recover-original-aligned-filename") == 2
    assert sorted(p.name for p in faces.glob("*.jpg")) == before


# ---------------------------------------------------------------- debug images, masks, contact sheet

def test_landmark_debug_images_carry_no_face_metadata(faces):
    files = face_files(faces)
    assert util(faces, "--add-landmarks-debug-images") == 0
    for p in files:
        dbg = p.with_name(p.stem + "_debug.jpg")
        data = dbg.read_bytes()
        assert extract(data) is None
        img = read_image(dbg)
        green = (img[..., 1] > 180) & (img[..., 0] < 120) & (img[..., 2] < 120)
        assert img.shape == (128, 128, 3) and green.sum() > 50
        assert len(data) < p.stat().st_size                             # quality 50
    assert len(load_samples(faces)) == len(files) == 12                 # not picked up as faces
    assert util(faces, "--add-landmarks-debug-images") == 0             # a rerun overwrites, adds nothing
    assert len(list(faces.glob("*_debug.jpg"))) == 12 and not list(faces.glob("*_debug_debug.jpg"))


def test_export_masks_from_xseg_polygons_and_hull(faces, capsys):
    files = face_files(faces)
    xs, pf = files[0], files[1]
    circle = np.zeros((128, 128), np.uint8)
    cv2.circle(circle, (64, 70), 40, 255, -1)
    meta = read_meta(xs)
    meta.xseg_mask = cv2.imencode(".png", circle)[1].tobytes()
    update_meta(xs, meta)
    meta = read_meta(pf)
    meta.seg_ie_polys = [{"type": "exclude", "points": [[50, 50], [70, 50], [70, 70], [50, 70]]},
                         {"type": "include", "points": [[20, 20], [100, 20], [100, 100], [20, 100]]}]
    update_meta(pf, meta)

    assert util(faces, "--export-faceset-mask") == 0
    assert "1 from XSeg masks, 1 from XSeg polygons, 10 from the landmark hull" in capsys.readouterr().out
    m = cv2.imread(str(xs.with_name(xs.stem + "_mask.jpg")), cv2.IMREAD_UNCHANGED)
    assert m.ndim == 2 and np.abs(m.astype(int) - circle).mean() < 3
    m = cv2.imread(str(pf.with_name(pf.stem + "_mask.jpg")), cv2.IMREAD_UNCHANGED)
    assert m[30, 30] > 200 and m[60, 60] < 50 and m[110, 110] < 50      # include minus the exclude
    for p in files[2:]:
        m = cv2.imread(str(p.with_name(p.stem + "_mask.jpg")), cv2.IMREAD_UNCHANGED)
        lm = read_meta(p).landmarks
        assert 0.15 < (m > 127).mean() < 0.9                             # non-empty, not everything
        cx, cy = np.round(lm[27:36].mean(0)).astype(int)                 # nose: inside the face
        assert m[cy, cx] > 200
        assert max(m[0, 0], m[0, -1], m[-1, 0], m[-1, -1]) < 30          # corners: outside
        ys, xs_ = np.nonzero(m > 127)
        assert xs_.min() >= lm[:, 0].min() - 3 and xs_.max() <= lm[:, 0].max() + 3
        assert extract(p.with_name(p.stem + "_mask.jpg").read_bytes()) is None
    assert len(load_samples(faces)) == 12


def test_view_aligned_writes_a_contact_sheet(faces, capsys):
    assert util(faces, "--view-aligned") == 0
    sheet_path = faces.parent.parent / f"{faces.parent.name}_aligned_contact_sheet.jpg"   # not in a frame folder
    assert str(sheet_path) in capsys.readouterr().out
    sheet = read_image(sheet_path)
    assert sheet.shape == (3 * 128, 4 * 128, 3) and sheet.std() > 20    # 12 faces: 4 columns x 3 rows
    sheet_path.unlink()
    assert util(faces, "--pack-faceset", "--delete-originals") == 0     # works from a pak too
    assert util(faces, "--view-aligned") == 0
    packed = read_image(sheet_path)
    assert packed.shape == sheet.shape and np.abs(packed.astype(int) - sheet.astype(int)).mean() < 1


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("flag", ["--pack-faceset", "--save-faceset-metadata", "--recover-original-aligned-filename",
                                  "--add-landmarks-debug-images", "--export-faceset-mask", "--view-aligned",
                                  "--unpack-faceset", "--import-dfl-faceset"])
def test_empty_folder_is_one_clear_line(tmp_path, capsys, flag):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert util(empty, flag) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(empty) in err
    assert "no aligned faces" in err or "not found" in err or "no images" in err
    assert sorted(empty.iterdir()) == []


def test_missing_folder_and_no_operation(tmp_path, capsys):
    assert util(tmp_path / "nope", "--pack-faceset") == 2
    assert "input folder not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        util(tmp_path)                                                    # argparse: one operation needed
