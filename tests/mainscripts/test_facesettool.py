"""`facesettool resize` on real faces: re-warped images, landmarks, polygons and masks stay consistent."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core.facelib.face_finder import align_face
from core.facelib.face_meta import read_face, read_meta, update_meta
from core.facelib.face_type import FaceType
from core.facelib.geometry import face_transform, transform_points
from core.fileio import read_image
from mainscripts.facesettool import resize_face
from samplelib.sample import load_samples


@pytest.fixture(scope="module")
def src_frames(frames) -> Path:
    return frames("WolfgangLanger_Pexels.mp4", every=40)     # the frames src_faceset was extracted from


def resize(folder: Path, *flags: str) -> int:
    """main.main; a bad flag value ends in argparse's one-line exit, returned as its code."""
    try:
        return main.main(["facesettool", "resize", "--input-dir", str(folder), "--workers", "2", *flags])
    except SystemExit as e:
        return e.code


def direct_crop(frames_dir: Path, meta, face_type: FaceType, size: int) -> np.ndarray:
    """What extraction would have written for this face at this face type and size."""
    frame = read_image(frames_dir / meta.source_filename)
    return align_face(frame, meta.source_landmarks, face_type, size)[0]


def test_resize_same_type_doubles_everything(faces, src_frames, capsys):
    originals = {p.name: read_face(p) for p in sorted(faces.glob("*.jpg"))}
    assert resize(faces, "--image-size", "256", "--face-type", "same") == 0
    out_dir = faces.parent / "aligned_resized"
    assert sorted(p.name for p in out_dir.glob("*.jpg")) == sorted(originals)
    assert {p.name: p.read_bytes() for p in faces.glob("*.jpg")}.keys() == originals.keys()   # no merge by default
    for name, (old_img, old) in originals.items():
        img, new = read_face(out_dir / name)
        assert img.shape == (256, 256, 3) and new.face_type == "whole_face"
        assert np.abs(new.landmarks - old.landmarks * 2).max() < 0.5
        assert np.allclose(new.image_to_face_mat, face_transform(old.source_landmarks, FaceType.WHOLE_FACE, 256),
                           atol=1e-4)
        assert new.source_filename == old.source_filename and np.array_equal(new.source_landmarks,
                                                                             old.source_landmarks)
        # the pixels agree with the landmarks: close to a 256 px extraction of the same frame
        ref = direct_crop(src_frames, old, FaceType.WHOLE_FACE, 256)
        assert np.abs(img.astype(int) - ref.astype(int)).mean() < 6
    assert len(load_samples(out_dir)) == 12


def test_resize_whole_face_to_full_face_matches_a_direct_extraction(faces, src_frames):
    for p in sorted(faces.glob("*.jpg"))[:4]:
        img, meta = read_face(p)
        out, new, widened = resize_face(img, meta, 128, "f")
        mat = face_transform(meta.source_landmarks, FaceType.FULL, 128)
        assert new.face_type == "full_face" and not widened
        assert np.allclose(new.image_to_face_mat, mat, atol=1e-5)
        assert np.abs(new.landmarks - transform_points(meta.source_landmarks, mat)).max() < 0.05
        # Same pixels as a direct full_face extraction, up to the detail a 1.33x zoom of a 128 px face
        # loses; and aligned to the sub-pixel: half a pixel off either way matches worse.
        frame = read_image(src_frames / meta.source_filename)

        def crop(dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
            m = mat.astype(np.float64) + [[0, 0, dx], [0, 0, dy]]
            return cv2.warpAffine(frame, m, (128, 128), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        assert np.array_equal(crop(), direct_crop(src_frames, meta, FaceType.FULL, 128))
        diff = np.abs(out.astype(int) - crop().astype(int)).mean()
        assert diff < 8, diff
        for dx, dy in ((0.5, 0), (-0.5, 0), (0, 0.5), (0, -0.5)):
            assert diff < np.abs(out.astype(int) - crop(dx, dy).astype(int)).mean()
        _, _, widened = resize_face(img, meta, 128, "head")            # head needs more than the wf crop had
        assert widened


def test_resize_rewarps_polygons_and_xseg_mask(faces):
    p = sorted(faces.glob("*.jpg"))[3]
    meta = read_meta(p)
    lm = meta.landmarks
    meta.seg_ie_polys = [{"type": "include", "points": lm[[0, 8, 16, 24]].tolist()}]
    mask = np.zeros((128, 128), np.uint8)
    centre = np.round(lm[30]).astype(int)
    cv2.circle(mask, (int(centre[0]), int(centre[1])), 12, 255, -1)
    meta.xseg_mask = cv2.imencode(".png", mask)[1].tobytes()
    update_meta(p, meta)
    img, meta = read_face(p)
    _, new, _ = resize_face(img, meta, 256, "f")
    pts = np.array(new.seg_ie_polys[0]["points"])
    assert np.abs(pts - new.landmarks[[0, 8, 16, 24]]).max() < 0.05       # vertices ride with the landmarks
    new_mask = cv2.imdecode(np.frombuffer(new.xseg_mask, np.uint8), cv2.IMREAD_UNCHANGED)
    assert new_mask.shape == (256, 256)
    ys, xs = np.nonzero(new_mask > 127)
    in_frame = transform_points(centre[None].astype(np.float32), meta.image_to_face_mat, invert=True)
    expected = transform_points(in_frame, new.image_to_face_mat)[0]     # the circle's centre in the new face
    assert np.hypot(xs.mean() - expected[0], ys.mean() - expected[1]) < 0.7
    zoom = np.sqrt(np.linalg.det(new.image_to_face_mat[:, :2]) / np.linalg.det(meta.image_to_face_mat[:, :2]))
    assert 2.5 < zoom < 2.9                                              # 128 wf -> 256 f
    assert 0.85 < len(xs) / (np.pi * (12 * zoom) ** 2) < 1.15           # and the circle grew with it
    new.validate()


def test_merge_back_and_bad_input(faces, capsys):
    before = {p.name for p in faces.glob("*.jpg")}
    assert resize(faces, "--image-size", "100") == 2
    assert "out of range" in capsys.readouterr().err
    assert resize(faces, "--image-size", "192", "--face-type", "full_face", "--merge-back") == 0
    assert not (faces.parent / "aligned_resized").exists()
    assert {p.name for p in faces.glob("*.jpg")} == before
    assert all(read_face(faces / n)[0].shape == (192, 192, 3) and read_meta(faces / n).face_type == "full_face"
               for n in before)
    empty = faces.parent / "empty"
    empty.mkdir()
    capsys.readouterr()
    assert resize(empty) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no aligned faces" in err
