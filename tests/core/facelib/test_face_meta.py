"""Face metadata in JPEG APP15: round trips, segment surgery, and every refusal path."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import VisageError
from core.facelib import face_meta as fm
from core.facelib.face_meta import FaceMeta, embed, extract, read_face, read_meta, update_meta, write_face
from core.sample_media import sample_path


@pytest.fixture(scope="module")
def photo_bytes() -> bytes:
    """A real camera JPEG (it has APP0, EXIF APP1, XMP, APP13 and ICC APP2 segments)."""
    return sample_path("single_face.jpg").read_bytes()


@pytest.fixture(scope="module")
def face_img(photo_bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(photo_bytes, np.uint8), cv2.IMREAD_COLOR)
    return cv2.resize(img[:500, 30:530], (256, 256), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def face_jpeg(face_img) -> bytes:
    return cv2.imencode(".jpg", face_img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def make_meta(seed: int = 0, mask: bytes | None = None, **kw) -> FaceMeta:
    rng = np.random.default_rng(seed)
    args = dict(face_type="whole_face",
                landmarks=rng.uniform(0, 256, (68, 2)).astype(np.float32),
                source_filename="frame_0001 ünï.png", source_rect=(120, 80, 410, 390),
                source_landmarks=rng.uniform(0, 600, (68, 2)).astype(np.float32),
                image_to_face_mat=rng.normal(size=(2, 3)).astype(np.float32),
                eyebrows_expand_mod=1.25,
                seg_ie_polys=[{"type": "include", "points": [[1.5, 2.0], [100.25, 3.0], [50.0, 90.0]]},
                              {"type": "exclude", "points": [[10.0, 10.0], [20.0, 10.0], [15.0, 30.0]]}],
                xseg_mask=mask)
    args.update(kw)
    return FaceMeta(**args)


def noise_png(size: int = 300, seed: int = 1) -> bytes:
    img = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def split(data: bytes):
    return fm._split_jpeg(data, "test")


def visage_segments(data: bytes) -> list:
    return [s for s in split(data)[0] if fm._is_visage(s)]


def with_app15(jpeg: bytes, payload: bytes) -> bytes:
    """Insert a raw APP15 segment right after SOI."""
    return jpeg[:2] + b"\xff\xef" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def test_round_trip_exact(face_jpeg):
    meta = make_meta(mask=noise_png(32))
    out = extract(embed(face_jpeg, meta))
    assert out == meta
    for name in ("landmarks", "source_landmarks", "image_to_face_mat"):
        arr = getattr(out, name)
        assert arr.dtype == np.float32
        assert arr.tobytes() == getattr(meta, name).tobytes()
    assert out.source_rect == (120, 80, 410, 390) and out.xseg_mask == meta.xseg_mask
    assert out.source_filename == "frame_0001 ünï.png"
    assert FaceMeta.from_dict(json.loads(json.dumps(meta.to_dict()))) == meta


def test_pixels_and_entropy_data_unchanged(face_jpeg):
    data = embed(face_jpeg, make_meta())
    assert split(data)[1] == split(face_jpeg)[1]
    before = cv2.imdecode(np.frombuffer(face_jpeg, np.uint8), cv2.IMREAD_COLOR)
    after = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(before, after)


def test_multi_segment_mask(face_jpeg, face_img, tmp_path):
    mask = noise_png(512)
    assert len(mask) > 200_000
    meta = make_meta(mask=mask)
    data = embed(face_jpeg, meta)
    segs = visage_segments(data)
    assert len(segs) >= 4 and all(len(s.payload) <= 65533 for s in segs)
    assert extract(data).xseg_mask == mask
    write_face(tmp_path / "f.jpg", face_img, meta)
    img, back = read_face(tmp_path / "f.jpg")
    assert back == meta and img.shape == face_img.shape
    assert np.abs(img.astype(int) - face_img.astype(int)).mean() < 4


def test_update_meta_keeps_image_bytes(face_img, tmp_path):
    path = tmp_path / "face.jpg"
    write_face(path, face_img, make_meta())
    tail = split(path.read_bytes())[1]
    new = make_meta(seed=7, mask=noise_png(400), face_type="full_face")
    update_meta(path, new)
    assert split(path.read_bytes())[1] == tail
    assert read_meta(path) == new
    assert not list(tmp_path.glob(".tmp_*"))


def test_other_segments_preserved_and_placement(photo_bytes):
    segs, tail = split(photo_bytes)
    assert any(s.marker == 0xE1 and s.payload.startswith(b"Exif\x00\x00") for s in segs)
    data = embed(photo_bytes, make_meta())
    new_segs, new_tail = split(data)
    assert new_tail == tail
    assert [s.raw for s in new_segs if not fm._is_visage(s)] == [s.raw for s in segs]
    markers = [s.marker for s in new_segs]
    first_visage = next(i for i, s in enumerate(new_segs) if fm._is_visage(s))
    assert all(0xE0 <= m <= 0xEF for m in markers[:first_visage])   # after every leading APPn
    assert not 0xE0 <= markers[first_visage + 1] <= 0xEF              # ...and before SOF/DQT


def test_replacing_twice_leaves_one_set(face_jpeg):
    big = make_meta(mask=noise_png(512))
    small = make_meta(seed=3)
    data = embed(embed(embed(face_jpeg, big), small), small)
    assert len(visage_segments(data)) == 1
    assert extract(data) == small
    assert split(data)[1] == split(face_jpeg)[1]


def test_legacy_deepfacelab_face_refused(face_jpeg, tmp_path):
    payload = pickle.dumps({"face_type": "whole_face",
                            "landmarks": np.zeros((68, 2), np.float32)}, protocol=4)
    data = with_app15(face_jpeg, payload)
    with pytest.raises(VisageError, match="DeepFaceLab") as e:
        extract(data)
    assert "--import-dfl-faceset" in str(e.value)
    path = tmp_path / "dfl.jpg"
    path.write_bytes(data)
    for reader in (read_meta, read_face):
        with pytest.raises(VisageError, match="DeepFaceLab"):
            reader(path)
    source = Path(fm.__file__).read_text(encoding="utf-8")
    assert "pickle" not in source and "marshal" not in source


def test_foreign_app15_ignored(face_jpeg):
    data = with_app15(face_jpeg, b"SomeOtherTool\x00 settings")
    assert extract(data) is None
    meta = make_meta()
    out = embed(data, meta)
    assert extract(out) == meta
    assert sum(s.marker == 0xEF for s in split(out)[0]) == 2


def test_no_metadata(face_jpeg, tmp_path):
    assert extract(face_jpeg) is None
    path = tmp_path / "plain.jpg"
    path.write_bytes(face_jpeg)
    for reader in (read_meta, read_face):
        with pytest.raises(VisageError, match="has no Visage face metadata.*main.py extract"):
            reader(path)


def test_not_a_jpeg_and_missing_file(tmp_path):
    png = tmp_path / "img.png"
    png.write_bytes(noise_png(16))
    with pytest.raises(VisageError, match=r"img\.png is not a JPEG"):
        read_meta(png)
    with pytest.raises(VisageError, match="not found"):
        read_face(tmp_path / "nope.jpg")
    with pytest.raises(VisageError, match="not a JPEG"):
        embed(b"", make_meta())


def test_truncated_files(face_img, tmp_path):
    path = tmp_path / "face.jpg"
    write_face(path, face_img, make_meta(mask=noise_png(300)))
    data = path.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) - 2000])          # inside the entropy-coded data
    assert read_meta(cut) == make_meta(mask=noise_png(300))
    with pytest.raises(VisageError, match="cut.jpg is a truncated JPEG"):
        read_face(cut)
    cut.write_bytes(data[:30000])                       # inside the metadata segments
    with pytest.raises(VisageError, match="cut.jpg is a corrupt or truncated JPEG"):
        read_meta(cut)
    cut.write_bytes(data[:2] + b"\x00garbage")
    with pytest.raises(VisageError, match="corrupt JPEG"):
        read_meta(cut)


def test_damaged_visage_segments(face_jpeg):
    bad_json = fm.SIGNATURE + b"\x00\x00\x00\x01" + b'{"face_type": "whole'
    with pytest.raises(VisageError, match="corrupt Visage metadata"):
        extract(with_app15(face_jpeg, bad_json))
    data = embed(face_jpeg, make_meta(mask=noise_png(512)))
    second = visage_segments(data)[1].raw
    with pytest.raises(VisageError, match="damaged Visage metadata"):
        extract(data.replace(second, b"", 1))


def test_newer_version_and_extra_keys(face_jpeg):
    d = make_meta().to_dict()
    d["future_field"] = {"a": [1, 2]}
    meta = FaceMeta.from_dict(d)
    assert meta.extra == {"future_field": {"a": [1, 2]}}
    assert extract(embed(face_jpeg, meta)).extra == meta.extra
    d[fm.VERSION_KEY] = 2
    blob = json.dumps(d).encode()
    with pytest.raises(VisageError, match="newer than this Visage"):
        extract(with_app15(face_jpeg, fm.SIGNATURE + b"\x00\x00\x00\x01" + blob))
    del d[fm.VERSION_KEY]
    with pytest.raises(VisageError, match="visage_meta_version"):
        FaceMeta.from_dict(d)


def test_fill_bytes_and_standalone_markers(face_jpeg):
    # Fill bytes before a marker and a TEM marker are legal in the header and must survive.
    app0_end = 4 + int.from_bytes(face_jpeg[4:6], "big")
    odd = b"\xff\xd8\xff\xff" + face_jpeg[2:app0_end] + b"\xff\x01" + face_jpeg[app0_end:]
    data = embed(odd, make_meta())
    raws = [s.raw for s in split(data)[0]]
    assert raws[0] == b"\xff\xff" + face_jpeg[2:app0_end]
    assert fm.SIGNATURE in raws[1] and raws[2] == b"\xff\x01"
    assert extract(data) == make_meta()


def test_unicode_path(face_img, tmp_path):
    path = tmp_path / "ünï_视频" / "帧_0001_0.jpg"
    meta = make_meta(source_filename="视频_0001.png")
    write_face(path, face_img, meta)
    img, back = read_face(path)
    assert back == meta and img.shape == (256, 256, 3)
    assert read_meta(str(path)).source_filename == "视频_0001.png"


@pytest.mark.parametrize("field, value, message", [
    ("face_type", "bogus_face", "unknown face_type"),
    ("landmarks", np.zeros((5, 2)), "landmarks must be a 68x2"),
    ("source_landmarks", "abc", "source_landmarks must be a 68x2"),
    ("image_to_face_mat", np.eye(3), "image_to_face_mat must be a 2x3"),
    ("landmarks", np.full((68, 2), np.nan), "NaN or infinite"),
    ("source_rect", (1, 2, 3), "source_rect must be 4 integers"),
    ("eyebrows_expand_mod", float("inf"), "eyebrows_expand_mod"),
    ("seg_ie_polys", [{"type": "maybe", "points": []}], r"seg_ie_polys\[0\]"),
    ("seg_ie_polys", [{"type": "include", "points": [[1, float("nan")]]}], r"seg_ie_polys\[0\]"),
    ("xseg_mask", b"not a png", "xseg_mask must be PNG"),
])
def test_validation_errors(face_jpeg, tmp_path, field, value, message):
    meta = make_meta(**{field: value})
    with pytest.raises(VisageError, match=message):
        meta.validate()
    with pytest.raises(VisageError, match=message):
        embed(face_jpeg, meta)
    with pytest.raises(VisageError, match=message):
        write_face(tmp_path / "x.jpg", np.zeros((8, 8, 3), np.uint8), meta)
    assert not (tmp_path / "x.jpg").exists()


def test_huge_metadata_refused(face_jpeg):
    mask = b"\x89PNG\r\n\x1a\n" + bytes(13 * 2**20)
    with pytest.raises(VisageError, match="over the 16 MB limit"):
        embed(face_jpeg, make_meta(mask=mask))


def test_lenient_inputs_normalised(face_jpeg):
    # What callers naturally have: cv2.imencode output, tuples/arrays of points, float rects, nulls.
    mask_arr = cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1]
    meta = make_meta(xseg_mask=mask_arr, source_rect=(1.4, 2.6, 300.0, 400.0),
                     seg_ie_polys=[{"type": "include", "points": np.array([[1, 2], [3, 4], [5, 6]])}],
                     eyebrows_expand_mod=np.float32(1.5))
    assert meta.xseg_mask == mask_arr.tobytes() and meta.source_rect == (1, 3, 300, 400)
    assert extract(embed(face_jpeg, meta)) == meta
    d = make_meta().to_dict()
    d.update(seg_ie_polys=None, xseg_mask=None, eyebrows_expand_mod=None)
    back = FaceMeta.from_dict(d)
    assert back.seg_ie_polys == [] and back.xseg_mask is None and back.eyebrows_expand_mod == 1.0
    d["landmarks"] = None
    with pytest.raises(VisageError, match="missing landmarks"):
        FaceMeta.from_dict(d)


def test_write_face_bad_image(tmp_path):
    with pytest.raises(VisageError, match="could not encode"):
        write_face(tmp_path / "bad.jpg", np.zeros((0, 0, 3), np.uint8), make_meta())
    assert not list(tmp_path.iterdir())
