"""The one geometry module, on synthetic landmark sets whose true pose is known exactly.

A synthetic face is DeepFaceLab's mean face (the alignment target, iBUG points 17..48 and
54 in a unit square) with the remaining points filled in symmetrically, mapped into the
frame by a known similarity S. The mean-face square [0, 1]^2 therefore lands in the frame
as a square of side `scale`, rotated by `angle`, centred at S(0.5, 0.5), and every crop
can be predicted from DeepFaceLab's padding table without running face_transform's code.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import VisageError
from core.facelib.face_type import SPECS, FaceType, face_type_from_str
from core.facelib.geometry import (crop_rect_in_frame, estimate_yaw, face_transform, invert_affine, mean_face,
                                   transform_points, umeyama)

SIZE = 256
# Crop side / mean-face-square side = 1 + 2*sqrt(2)*padding, rounded as in DESIGN.md's table.
SIDE_TABLE = {FaceType.HALF: 1.00, FaceType.MID_FULL: 1.19, FaceType.FULL: 1.60,
              FaceType.WHOLE_FACE: 2.13, FaceType.HEAD: 2.98}
# Centre shift toward the forehead, in mean-face-square sides (relative to full_face).
UP_SHIFT = {FaceType.HALF: 0.0, FaceType.MID_FULL: 0.0, FaceType.FULL: 0.0,
            FaceType.WHOLE_FACE: 0.07, FaceType.HEAD: 0.50}
POSES = [  # (scale in px, rotation in degrees, centre of the mean-face square in the frame)
    (200.0, 0.0, (320.0, 240.0)),
    (57.3, 25.0, (100.0, 400.0)),
    (410.0, -130.0, (900.0, 600.0)),
]


def similarity(scale: float, angle_deg: float, centre: tuple[float, float]) -> np.ndarray:
    """3x3 similarity taking the unit square's centre (0.5, 0.5) to `centre`."""
    a = math.radians(angle_deg)
    lin = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = np.asarray(centre) - lin @ (0.5, 0.5)
    return m


def unit_face() -> np.ndarray:
    """68 points in mean-face (unit-square) space, left/right symmetric about the nose bridge."""
    idx, target = mean_face()
    pts = np.zeros((68, 2))
    pts[idx] = target
    cx = pts[27:31, 0].mean()                       # nose bridge x: the symmetry axis
    phi = np.linspace(math.pi, 0.0, 17)             # jaw: point 0 (image left) -> chin 8 -> 16
    pts[0:17] = np.stack([cx + 0.55 * np.cos(phi), 0.30 + 0.95 * np.sin(phi)], 1)
    mouth_c = (pts[48] + pts[54]) / 2
    half_w = (pts[54, 0] - pts[48, 0]) / 2
    outer = math.pi + np.arange(12) * (2 * math.pi / 12)   # 48 at the left corner, 54 at the right
    ring = np.stack([mouth_c[0] + half_w * np.cos(outer), mouth_c[1] + 0.08 * np.sin(outer)], 1)
    pts[[49, 50, 51, 52, 53, 55, 56, 57, 58, 59]] = ring[[1, 2, 3, 4, 5, 7, 8, 9, 10, 11]]
    inner = math.pi + np.arange(8) * (2 * math.pi / 8)
    pts[60:68] = np.stack([mouth_c[0] + 0.7 * half_w * np.cos(inner), mouth_c[1] + 0.04 * np.sin(inner)], 1)
    return pts


def synthetic_face(scale: float, angle: float, centre) -> tuple[np.ndarray, np.ndarray]:
    s = similarity(scale, angle, centre)
    return transform_points(unit_face(), s), s


def crop_geometry(mat: np.ndarray, size: int = SIZE) -> tuple[float, np.ndarray, float]:
    """(side in frame px, centre in frame px, angle of the top edge in degrees) of a crop."""
    c = crop_rect_in_frame(mat, size).astype(np.float64)
    top = c[1] - c[0]
    return float(np.linalg.norm(top)), c.mean(0), math.degrees(math.atan2(top[1], top[0]))


def test_synthetic_face_is_frontal_and_symmetric():
    lm = unit_face()
    assert abs(estimate_yaw(lm)) < 1e-9
    assert np.isfinite(lm).all() and len(np.unique(lm.round(6), axis=0)) == 68


@pytest.mark.parametrize("pose", POSES, ids=["upright", "tilted25", "rot-130"])
@pytest.mark.parametrize("ft", list(SIDE_TABLE), ids=lambda f: SPECS[f].name)
def test_aligned_crop_side_centre_and_rotation(ft, pose):
    scale, angle, centre = pose
    lm, s = synthetic_face(scale, angle, centre)
    mat = face_transform(lm, ft, SIZE)
    side, crop_centre, top_angle = crop_geometry(mat)

    factor = 1 + 2 * math.sqrt(2) * SPECS[ft].padding
    assert side / scale == pytest.approx(factor, rel=1e-4)
    assert side / scale == pytest.approx(SIDE_TABLE[ft], abs=0.006)
    # The whole crop is turned with the face: its top edge follows the face's rotation.
    assert ((top_angle - angle + 180) % 360) - 180 == pytest.approx(0, abs=0.05)
    # Centre: the mean-face square's centre, moved toward the forehead (unit-space -y).
    expected = transform_points(np.array([[0.5, 0.5 - UP_SHIFT[ft]]]), s)[0]
    assert np.linalg.norm(crop_centre - expected) < 1e-3 * scale

    # In aligned space the face is upright, the eye line level, and each reference point
    # sits exactly where the mean face puts it, scaled by the padding.
    idx, target = mean_face()
    aligned = transform_points(lm, mat).astype(np.float64)
    eye_vec = aligned[42:48].mean(0) - aligned[36:42].mean(0)
    assert abs(math.degrees(math.atan2(eye_vec[1], eye_vec[0]))) < 0.1
    want = (target - (0.5, 0.5 - UP_SHIFT[ft])) * (SIZE / factor) + SIZE / 2
    np.testing.assert_allclose(aligned[idx], want, atol=1e-3 * SIZE)


def test_whole_face_and_head_shift_up_relative_to_full_face():
    scale, angle = 180.0, 40.0
    lm, s = synthetic_face(scale, angle, (500.0, 300.0))
    full_c = crop_geometry(face_transform(lm, FaceType.FULL, SIZE))[1]
    up = transform_points(np.array([[0.5, 0.0]]), s)[0] - transform_points(np.array([[0.5, 1.0]]), s)[0]
    up /= np.linalg.norm(up)                        # toward the forehead, in frame pixels
    for ft, shift in ((FaceType.WHOLE_FACE, 0.07), (FaceType.HEAD, 0.50)):
        d = crop_geometry(face_transform(lm, ft, SIZE))[1] - full_c
        assert float(d @ up) == pytest.approx(shift * scale, rel=1e-3)
        assert abs(float(d @ np.array([-up[1], up[0]]))) < 1e-3 * scale   # no sideways move at yaw 0


@pytest.mark.parametrize("aligned_ft,upright_ft", [(FaceType.FULL, FaceType.FULL_NO_ALIGN),
                                                  (FaceType.HEAD, FaceType.HEAD_NO_ALIGN)],
                         ids=["full", "head"])
def test_no_align_is_upright_square_of_equal_area(aligned_ft, upright_ft):
    lm, _ = synthetic_face(150.0, 30.0, (400.0, 350.0))
    rot = crop_rect_in_frame(face_transform(lm, aligned_ft, SIZE), SIZE).astype(np.float64)
    up = crop_rect_in_frame(face_transform(lm, upright_ft, SIZE), SIZE).astype(np.float64)
    assert abs(rot[1, 1] - rot[0, 1]) > 10           # the aligned crop really is rotated here
    # Upright: top edge horizontal, left edge vertical, all sides equal.
    assert up[1, 1] == pytest.approx(up[0, 1], abs=1e-3) and up[3, 0] == pytest.approx(up[0, 0], abs=1e-3)
    sides = np.linalg.norm(np.roll(up, -1, 0) - up, axis=1)
    np.testing.assert_allclose(sides, sides[0], rtol=1e-5)
    def area(q):                                    # quadrilateral: half the diagonals' cross product
        d1, d2 = q[2] - q[0], q[3] - q[1]
        return 0.5 * abs(d1[0] * d2[1] - d1[1] * d2[0])
    assert area(up) == pytest.approx(area(rot), rel=1e-5)
    np.testing.assert_allclose(up.mean(0), rot.mean(0), atol=1e-3)


def test_umeyama_recovers_known_similarity():
    rng = np.random.default_rng(7)
    src = rng.uniform(-50, 50, (33, 2))
    m = similarity(2.7, -63.0, (12.5, -40.0))
    dst = src @ m[:2, :2].T + m[:2, 2]
    np.testing.assert_allclose(umeyama(src, dst), m, atol=1e-9)
    # and the least-squares fit is the inverse the other way round
    np.testing.assert_allclose(umeyama(dst, src), np.linalg.inv(m), atol=1e-9)


def test_umeyama_never_returns_a_reflection():
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 1, (20, 2))
    mirrored = src * (-1, 1)
    assert np.linalg.det(umeyama(src, mirrored)[:2, :2]) > 0


def test_transform_points_invert_round_trips():
    rng = np.random.default_rng(11)
    mat = np.array([[1.3, 0.4, 25.0], [-0.2, 0.9, -70.0]])
    pts = rng.uniform(-500, 500, (100, 2))
    fwd = transform_points(pts, mat)
    assert not np.allclose(fwd, pts, atol=1.0)
    np.testing.assert_allclose(transform_points(fwd, mat, invert=True), pts, atol=1e-3)
    np.testing.assert_allclose(transform_points(fwd, invert_affine(mat)), pts, atol=1e-3)
    # 3x3 input behaves like its top two rows
    m3 = np.vstack([mat, [0, 0, 1]])
    np.testing.assert_allclose(transform_points(pts, m3), fwd, atol=1e-4)


def test_face_transform_maps_size_to_size():
    lm, _ = synthetic_face(120.0, 10.0, (300.0, 200.0))
    for size in (64, 256, 1024):
        mat = face_transform(lm, FaceType.WHOLE_FACE, size)
        corners = transform_points(crop_rect_in_frame(mat, size), mat)
        np.testing.assert_allclose(corners, [(0, 0), (size, 0), (size, size), (0, size)], atol=1e-2 * size / 64)


def test_mark_only_is_not_cropped():
    lm, _ = synthetic_face(100.0, 0.0, (200.0, 200.0))
    with pytest.raises(ValueError):
        face_transform(lm, FaceType.MARK_ONLY, SIZE)


@pytest.mark.parametrize("text,ft", [("wf", FaceType.WHOLE_FACE), ("whole_face", FaceType.WHOLE_FACE),
                                     (" WF ", FaceType.WHOLE_FACE), ("f", FaceType.FULL),
                                     ("full_face_no_align", FaceType.FULL_NO_ALIGN), ("head", FaceType.HEAD),
                                     ("mf", FaceType.MID_FULL), ("h", FaceType.HALF)])
def test_face_type_from_str_accepts_names_and_abbreviations(text, ft):
    assert face_type_from_str(text) is ft


@pytest.mark.parametrize("junk", ["", "wholeface", "face", "whole face", "42"])
def test_face_type_from_str_rejects_junk(junk):
    with pytest.raises(VisageError, match="unknown face type"):
        face_type_from_str(junk)
