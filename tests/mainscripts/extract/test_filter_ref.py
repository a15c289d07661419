"""`extract --filter-ref`: only the faces of the person in the reference photos are written."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import interact
from core.errors import VisageError
from core.facelib.face_meta import read_meta
from core.facelib.face_type import FaceType
from core.fileio import read_image, read_json
from core.sample_media import sample_path
from mainscripts.extract.extractor import STATE_FILE, extract

pytest.importorskip("dlib")

# multi_face.jpg: the top-left person's detector box (l, t, r, b), measured with FaceFinder
TOP_LEFT = (213, 70, 327, 184)


@pytest.fixture(autouse=True)
def never_prompt(monkeypatch):
    monkeypatch.setattr(interact, "is_interactive", lambda: False)


def photo_folder(dest: Path, names: list[str]) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copyfile(sample_path(n), dest / n)
    return dest


def faces_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.jpg"))


def test_obama_reference_keeps_only_obama(tmp_path):
    """obama2/obama3 are Obama (the encoder puts them 0.39 / 0.34 from obama.jpg); Biden and the
    five people of multi_face.jpg are all > 0.7 away."""
    inp = photo_folder(tmp_path / "in", ["obama2.jpg", "obama3.jpg", "biden.jpg", "multi_face.jpg"])
    out = tmp_path / "aligned"
    r = extract(inp, out, image_size=128, workers=1, filter_refs=[sample_path("obama.jpg")])
    assert faces_in(out) == ["obama2_0.jpg", "obama3_0.jpg"]
    assert (r.frames, r.faces, r.other_people) == (4, 2, 6)
    assert r.other_people_frames == ["biden.jpg", "multi_face.jpg"]
    assert r.no_face == []                     # faces were found there, just not his
    assert {read_meta(out / n).source_filename for n in faces_in(out)} == {"obama2.jpg", "obama3.jpg"}
    state = read_json(out / STATE_FILE)
    assert state["settings"]["filter_threshold"] == pytest.approx(0.6)
    assert len(state["settings"]["filter_ref"]) == 1 and len(state["settings"]["filter_ref"][0]) == 64

    # Without the filter every face is written: the filter, not the detector, left them out.
    everyone = extract(inp, tmp_path / "all", image_size=128, workers=1)
    assert everyone.faces == 8 and everyone.other_people == 0


def test_reference_cut_from_a_group_photo_keeps_that_one_person(tmp_path):
    """multi_face.jpg has 5 people, none in another sample photo: a reference made from one of
    them (cut out, mirrored, enlarged 1.5x, so a different image) keeps that face only."""
    group = read_image(sample_path("multi_face.jpg"))
    l, t, r, b = TOP_LEFT
    w, h = r - l, b - t
    crop = group[max(0, t - h // 2):b + h // 2, max(0, l - w // 2):r + w // 2]
    ref = cv2.resize(cv2.flip(crop, 1), None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    ref_path = tmp_path / "reference.png"
    cv2.imwrite(str(ref_path), ref)
    inp = photo_folder(tmp_path / "in", ["multi_face.jpg", "biden.jpg"])
    out = tmp_path / "aligned"
    report = extract(inp, out, image_size=128, workers=1, filter_refs=[ref_path])
    assert faces_in(out) == ["multi_face_0.jpg"]
    assert (report.faces, report.other_people) == (1, 5)
    meta = read_meta(out / "multi_face_0.jpg")
    assert meta.source_filename == "multi_face.jpg"
    assert np.abs(np.array(meta.source_rect) - TOP_LEFT).max() <= 8, meta.source_rect


def test_filter_is_part_of_the_resume_state(tmp_path):
    inp = photo_folder(tmp_path / "in", ["obama2.jpg", "biden.jpg"])
    out = tmp_path / "aligned"
    refs = [sample_path("obama.jpg")]
    assert extract(inp, out, image_size=96, workers=1, filter_refs=refs).faces == 1
    assert extract(inp, out, image_size=96, workers=1, filter_refs=refs).frames == 0     # same filter: resumes
    for other in ({"filter_refs": refs, "filter_threshold": 0.5},
                  {"filter_refs": [sample_path("obama2.jpg")]},
                  {}):
        with pytest.raises(VisageError, match="other settings"):
            extract(inp, out, image_size=96, workers=1, **other)
    assert faces_in(out) == ["obama2_0.jpg"]


def test_reference_photo_without_a_face_is_one_clear_error(tmp_path, capsys, monkeypatch):
    import main
    monkeypatch.setattr(interact, "_non_interactive", interact._non_interactive)   # restored afterwards
    blank = tmp_path / "landscape.png"
    cv2.imwrite(str(blank), np.full((300, 400, 3), 120, np.uint8))
    inp = photo_folder(tmp_path / "in", ["obama2.jpg"])
    out = tmp_path / "aligned"
    with pytest.raises(VisageError, match=r"no face found in reference photo .*landscape\.png"):
        extract(inp, out, image_size=96, workers=1, filter_refs=[sample_path("obama.jpg"), blank])
    assert not out.exists() or faces_in(out) == []
    capsys.readouterr()
    code = main.main(["extract", "--input-dir", str(inp), "--output-dir", str(out), "--non-interactive",
                      "--filter-ref", str(blank), "--image-size", "96"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no face found in reference photo" in err[0], err
    with pytest.raises(VisageError, match="reference photo not found"):
        extract(inp, out, image_size=96, workers=1, filter_refs=[tmp_path / "missing.jpg"])


def test_filter_in_worker_processes(tmp_path):
    """More than one chunk of frames, so the embeddings are computed in spawned workers."""
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(9):
        shutil.copyfile(sample_path("obama2.jpg" if i % 3 == 0 else "biden.jpg"), inp / f"{i:03d}.jpg")
    out = tmp_path / "aligned"
    r = extract(inp, out, face_type=FaceType.FULL, image_size=96, workers=2, filter_refs=[sample_path("obama.jpg")])
    assert faces_in(out) == ["000_0.jpg", "003_0.jpg", "006_0.jpg"]
    assert (r.faces, r.other_people) == (3, 6)
