"""Importing DeepFaceLab faces: genuine pickled metadata converts, hostile pickles are refused unexecuted."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core.errors import VisageError
from core.facelib import face_meta as fm
from core.facelib.dfl_import import RefusedPickle, load_dfl_dict
from core.facelib.face_meta import extract, read_meta, strip_metadata
from tests.mainscripts.train.test_trainer import TINY, train_cli


def with_dfl_segment(jpeg: bytes, payload: bytes) -> bytes:
    """Insert an APP15 holding `payload` after the last APPn segment, where DeepFaceLab puts it."""
    segments, tail = fm._split_jpeg(jpeg, "test")
    last_app = max((i for i, s in enumerate(segments) if 0xE0 <= s.marker <= 0xEF), default=-1)
    seg = b"\xff\xef" + (len(payload) + 2).to_bytes(2, "big") + payload
    raws = [s.raw for s in segments]
    return b"".join((b"\xff\xd8", *raws[:last_app + 1], seg, *raws[last_app + 1:], tail))


def dfl_dict(meta, xseg: bytes | None = None) -> dict:
    """The dict DeepFaceLab's extractor / XSeg editor write (lists from .tolist(), ndarrays, int types)."""
    d = {"face_type": meta.face_type,
         "landmarks": meta.landmarks.tolist(),
         "eyebrows_expand_mod": 1.0,
         "source_filename": meta.source_filename,
         "source_rect": tuple(np.int64(v) for v in meta.source_rect),
         "source_landmarks": meta.source_landmarks.tolist(),
         "image_to_face_mat": meta.image_to_face_mat.astype(np.float64),
         "pitch_yaw_roll": (0.1, -0.2, 0.0)}
    if xseg is not None:
        lm = meta.landmarks
        d["seg_ie_polys"] = {"polys": [{"type": 1, "pts": np.float32(lm[[0, 8, 16, 24]])},
                                       {"type": 0, "pts": np.float32(lm[36:42])}]}
        d["xseg_mask"] = np.frombuffer(xseg, np.uint8)       # cv2.imencode output, as DFL stores it
    return d


def dfl_pickle(d: dict, protocol: int = 3) -> bytes:
    """pickle.dumps as DeepFaceLab wrote it: protocol 3 from Python 3.6 with numpy 1.x module names.

    Protocols <= 3 name globals as plain text, so numpy 2's `numpy._core` can be renamed in place;
    protocols 4 and 5 (forks on newer Python) keep this numpy's names.
    """
    data = pickle.dumps(d, protocol=protocol)
    return data.replace(b"numpy._core.", b"numpy.core.") if protocol <= 3 else data


@pytest.fixture
def dfl_set(src_faceset, tmp_path):
    """src_faceset turned into a genuine-shaped DeepFaceLab aligned folder, plus the metadata it carries."""
    folder = tmp_path / "dfl_aligned"
    folder.mkdir()
    expected = {}
    mask = np.zeros((128, 128), np.uint8)
    cv2.ellipse(mask, (64, 72), (38, 48), 0, 0, 360, 255, -1)
    for i, p in enumerate(sorted(src_faceset.glob("*.jpg"))):
        meta = read_meta(p)
        if i == 0:
            xseg = cv2.imencode(".png", mask)[1].tobytes()
        elif i == 1:                                      # DFL falls back to JPEG for big masks
            xseg = cv2.imencode(".jpg", mask, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        else:
            xseg = None
        payload = dfl_pickle(dfl_dict(meta, xseg), protocol=(2, 3, 4, 5)[i % 4])
        (folder / p.name).write_bytes(with_dfl_segment(strip_metadata(p.read_bytes()), payload))
        expected[p.name] = (meta, xseg)
    return folder, expected


def util_import(folder: Path, *extra: str) -> int:
    return main.main(["util", "--input-dir", str(folder), "--import-dfl-faceset", *extra])


def test_dfl_face_is_detected_and_refused_by_the_plain_reader(dfl_set):
    folder, _ = dfl_set
    face = sorted(folder.glob("*.jpg"))[0]
    with pytest.raises(VisageError, match="import-dfl-faceset"):
        read_meta(face)


def test_import_converts_metadata_and_keeps_the_image(dfl_set, tmp_path, dst_faceset, capsys):
    folder, expected = dfl_set
    images = {p.name: fm._split_jpeg(p.read_bytes(), "t")[1] for p in folder.glob("*.jpg")}
    cv2.imwrite(str(folder / "holiday.jpg"), np.zeros((40, 40, 3), np.uint8))      # not a face
    cv2.imwrite(str(folder / "frame.png"), np.zeros((40, 40, 3), np.uint8))
    out_dir = tmp_path / "converted"

    assert util_import(folder, "--output-dir", str(out_dir)) == 0
    out = capsys.readouterr().out
    assert "Converted 12 DeepFaceLab faces" in out and "holiday.jpg" in out and "frame.png" in out
    assert not (out_dir / "holiday.jpg").exists()
    for name, (meta, xseg) in expected.items():
        data = (out_dir / name).read_bytes()
        assert fm.legacy_dfl_payload(data) is None                       # the pickle is gone
        assert fm._split_jpeg(data, "t")[1] == images[name]              # image data byte-identical
        got = extract(data)
        assert got.face_type == meta.face_type and got.source_filename == meta.source_filename
        assert got.source_rect == meta.source_rect and got.eyebrows_expand_mod == 1.0
        for k in ("landmarks", "source_landmarks", "image_to_face_mat"):
            assert np.allclose(getattr(got, k), getattr(meta, k), atol=1e-5), k
        if xseg is None:
            assert got.xseg_mask is None and got.seg_ie_polys == []
        else:
            assert got.xseg_mask.startswith(b"\x89PNG")
            decoded = cv2.imdecode(np.frombuffer(got.xseg_mask, np.uint8), cv2.IMREAD_UNCHANGED)
            original = cv2.imdecode(np.frombuffer(xseg, np.uint8), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(decoded, original)
            assert [q["type"] for q in got.seg_ie_polys] == ["include", "exclude"]
            assert np.allclose(got.seg_ie_polys[0]["points"], meta.landmarks[[0, 8, 16, 24]], atol=1e-4)
    # in-place import converts the originals too, and a second run finds nothing left to do
    assert util_import(folder) == 0
    assert all(read_meta(folder / n) is not None for n in expected)
    assert util_import(folder) == 0
    assert "12 face(s) already had Visage metadata" in capsys.readouterr().out

    model_dir = tmp_path / "model"
    assert train_cli(out_dir, dst_faceset, model_dir, opts=TINY + ["target_iter=2"]) == 0
    data = json.loads((model_dir / "t_SAEHD_data.json").read_text())
    assert data["iter"] == 2 and all(np.isfinite(v).all() for v in data["loss_history"])


# ---------------------------------------------------------------- hostile pickles

MARKER = "pwned_marker.txt"


class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def hostile_payloads(marker: Path) -> dict[str, bytes]:
    """Pickles that write `marker` when loaded by plain pickle.loads, each hidden in a real-looking dict."""
    import subprocess as sp
    from pathlib import Path as P
    lm = np.zeros((68, 2), np.float32)
    cmd = f'{sys.executable} -c "open(r\'{marker}\', \'w\').write(\'x\')"'

    def wrap(evil) -> bytes:
        return pickle.dumps({"face_type": "whole_face", "landmarks": lm, "source_filename": "x.png",
                             "source_landmarks": lm, "image_to_face_mat": np.eye(2, 3), "source_rect": (0, 0, 1, 1),
                             "seg_ie_polys": evil}, protocol=3)
    return {
        "os.system": wrap(_Reduce(os.system, (cmd,))),
        "subprocess": wrap(_Reduce(sp.call, ([sys.executable, "-c", f"open(r'{marker}', 'w').write('x')"],))),
        "eval": wrap(_Reduce(eval, (f"open(r'{marker}', 'w').write('x')",))),
        "reduce-write": wrap(_Reduce(P(marker).write_text, ("x",))),
    }


@pytest.mark.parametrize("kind", ["os.system", "subprocess", "eval", "reduce-write"])
def test_hostile_pickle_is_refused_and_never_runs(src_faceset, tmp_path, capsys, kind):
    marker = tmp_path / MARKER
    payload = hostile_payloads(marker)[kind]
    # the payload is live: plain pickle in a child process does write the marker
    probe = tmp_path / "probe"
    probe.mkdir()
    live = hostile_payloads(probe / MARKER)[kind]
    subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.loads(sys.stdin.buffer.read())"],
                   input=live, cwd=str(Path(__file__).resolve().parents[3]), check=False, capture_output=True)
    assert (probe / MARKER).exists(), "the test payload should be dangerous under plain pickle"

    folder = tmp_path / "dfl"
    folder.mkdir()
    faces = sorted(src_faceset.glob("*.jpg"))
    evil = folder / faces[0].name
    evil.write_bytes(with_dfl_segment(strip_metadata(faces[0].read_bytes()), payload))
    good = folder / faces[1].name
    good.write_bytes(with_dfl_segment(strip_metadata(faces[1].read_bytes()),
                                      dfl_pickle(dfl_dict(read_meta(faces[1])))))
    evil_bytes = evil.read_bytes()

    assert util_import(folder) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "refused, nothing was executed" in ln]
    assert len(lines) == 1 and faces[0].name in lines[0] and "references" in lines[0]
    assert not marker.exists()
    assert evil.read_bytes() == evil_bytes                          # left untouched
    assert read_meta(good).source_filename == read_meta(faces[1]).source_filename


def test_restricted_unpickler_allow_list():
    plain = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": {1, 2}, "f": frozenset([3]),
             "b": bytearray(b"xy"), "n": np.float64(2.5)}
    ok = load_dfl_dict(pickle.dumps(plain, protocol=2), "t")
    assert ok["a"].shape == (2, 3) and ok["s"] == {1, 2} and ok["b"] == bytearray(b"xy") and ok["n"] == 2.5

    class FlaggedDtype:                     # a plain dtype whose state claims it holds Python objects
        def __reduce__(self):
            return np.dtype, ("f8", False, True), (3, "<", None, None, None, 8, 1, 63)

    refusals = {
        "object array": np.array([1, "x"], dtype=object),
        "structured array": np.zeros(2, dtype=[("a", "f4")]),
        "flagged dtype": FlaggedDtype(),
        "bytearray bomb": _Reduce(bytearray, (10 ** 12,)),
        "codec lookup": _Reduce(__import__("codecs").encode, ("x", "rot13")),
        "getattr": _Reduce(getattr, ("text", "upper")),
    }
    for what, obj in refusals.items():
        with pytest.raises(RefusedPickle, match="refused, nothing was executed"):
            load_dfl_dict(pickle.dumps({"x": obj}, protocol=2), what)


def test_truncated_and_non_dict_pickles_give_clear_errors(src_faceset, tmp_path, capsys):
    meta = read_meta(next(src_faceset.glob("*.jpg")))
    payload = dfl_pickle(dfl_dict(meta))
    with pytest.raises(VisageError, match="truncated or damaged") as e:
        load_dfl_dict(payload[: len(payload) // 2], "cut.jpg")
    assert not isinstance(e.value, RefusedPickle)
    with pytest.raises(VisageError, match="not DeepFaceLab's dict"):
        load_dfl_dict(pickle.dumps([1, 2, 3]), "list.jpg")

    folder = tmp_path / "dfl"
    folder.mkdir()
    src = next(src_faceset.glob("*.jpg"))
    bad = folder / "cut.jpg"
    bad.write_bytes(with_dfl_segment(strip_metadata(src.read_bytes()), payload[: len(payload) // 2]))
    before = bad.read_bytes()
    assert util_import(folder) == 2
    err = capsys.readouterr().err
    assert "DFL face cut.jpg: its metadata is truncated or damaged" in err
    assert bad.read_bytes() == before


def test_import_of_an_empty_or_plain_folder(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert util_import(empty) == 2
    assert "no images in" in capsys.readouterr().err
    plain = tmp_path / "plain"
    plain.mkdir()
    cv2.imwrite(str(plain / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    assert util_import(plain) == 0
    out = capsys.readouterr().out
    assert "Converted 0" in out and "Skipped 1 file(s) that are not DeepFaceLab faces: a.jpg" in out
    shutil.rmtree(plain)
