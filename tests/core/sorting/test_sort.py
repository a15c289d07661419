"""`sort`: every DeepFaceLab sort method plus the identity ones, on real extracted faces.

Each face gets a tag in its metadata (`extra["tag"]`, written with update_meta so the
image stays byte-identical); a sort renames files, so the tags read back in file order
are the new order. Variants (blurred, darkened, mirrored, tilted, bordered copies) are
re-encoded with write_face, so they stay valid faces with the right landmarks.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core.facelib.face_meta import read_face, read_meta
from core.fileio import list_images
from core.sorting.best_faces import share_out
from tests.support.sort_support import copy_tagged, gaussian, hsv_mean, mirror, motion, sort, tag, tags, tilt, variant


# ---------------------------------------------------------------- quality methods

@pytest.mark.parametrize("method", ["blur", "motion-blur"])
@pytest.mark.parametrize("blur_fn", [gaussian, motion], ids=["gaussian", "motion"])
def test_blurred_copies_sort_last(woman, method, blur_fn):
    faces = list_images(woman)
    blurred = {variant(p, f"blur_{p.stem}", image_fn=blur_fn).stem for p in faces[::3]}
    sort(woman, method)
    order = tags(woman)
    assert len(order) == len(faces) + len(blurred)
    assert set(order[-len(blurred):]) == blurred, order


def test_face_yaw_orders_by_head_turn_and_mirrors_flip_it(woman):
    for p in list_images(woman):
        variant(p, f"mirror_{p.stem}", image_fn=lambda im: cv2.flip(im, 1), meta_fn=mirror(128))
    sort(woman, "face-yaw", workers=2)
    order = tags(woman)
    n = len(order)
    # independent yaw cue: nose tip left of the eyes' midpoint = face turned toward the image's left
    cue = []
    for p in list_images(woman):
        lm = read_meta(p).landmarks
        cue.append(-(lm[30, 0] - (lm[36, 0] + lm[45, 0]) / 2) / (lm[45, 0] - lm[36, 0]))
    ranks = np.argsort(np.argsort(cue))
    spearman = np.corrcoef(ranks, np.arange(n)[::-1])[0, 1]
    assert spearman > 0.9, (spearman, cue)
    assert cue[0] > 0.05 and cue[-1] < -0.05
    # a mirrored face has the opposite yaw: it sits at the mirrored rank
    for i, t in enumerate(order):
        if t.startswith("mirror_"):
            j = order.index(t[len("mirror_"):])
            assert abs((i + j) - (n - 1)) <= 1, (t, i, j)


def test_face_pitch_orders_tilted_copies(woman):
    faces = list_images(woman)[::3]
    for p in faces:
        for name, deg in (("up", 25), ("down", -25)):
            image_fn, meta_fn = tilt(128, deg)
            variant(p, f"{name}_{p.stem}", image_fn, meta_fn)
    sort(woman, "face-pitch")
    order = tags(woman)
    for p in faces:
        up, mid, down = order.index(f"up_{p.stem}"), order.index(p.stem), order.index(f"down_{p.stem}")
        assert up < mid < down, (p.stem, up, mid, down)
    # looking up (top of the face farther away) first: the up copies lead, the down copies trail
    assert sum(order.index(f"up_{p.stem}") for p in faces) < sum(order.index(f"down_{p.stem}") for p in faces)


def test_face_source_rect_size_largest_first(woman):
    def scale(k):
        def fn(meta):
            l, t, r, b = meta.source_rect
            cx, cy = (l + r) / 2, (t + b) / 2
            meta.source_rect = tuple(int(round(v)) for v in (cx - (r - l) * k / 2, cy - (b - t) * k / 2,
                                                             cx + (r - l) * k / 2, cy + (b - t) * k / 2))
            return meta
        return fn
    faces = list_images(woman)
    big = {variant(p, f"big_{p.stem}", meta_fn=scale(2.0)).stem for p in faces[:3]}
    small = {variant(p, f"small_{p.stem}", meta_fn=scale(0.5)).stem for p in faces[3:6]}
    sort(woman, "face-source-rect-size")
    order = tags(woman)
    areas = [(lambda r: (r[2] - r[0]) * (r[3] - r[1]))(read_meta(p).source_rect) for p in list_images(woman)]
    assert areas == sorted(areas, reverse=True)
    assert set(order[:3]) == big and set(order[-3:]) == small


def test_brightness_brightest_first(woman):
    faces = list_images(woman)
    dark = {variant(p, f"dark_{p.stem}", image_fn=lambda im: (im * 0.5).astype(np.uint8)).stem for p in faces[::4]}
    sort(woman, "brightness")
    order = tags(woman)
    assert set(order[-len(dark):]) == dark
    v = [hsv_mean(p, 2) for p in list_images(woman)]
    assert v == sorted(v, reverse=True)


def test_hue_highest_first(woman):
    def shift(im):
        hsv = cv2.cvtColor(im, cv2.COLOR_BGR2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + 60) % 180
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    faces = list_images(woman)
    shifted = {variant(p, f"hue_{p.stem}", image_fn=shift).stem for p in faces[::4]}
    sort(woman, "hue")
    order = tags(woman)
    assert set(order[:len(shifted)]) == shifted
    h = [hsv_mean(p, 0) for p in list_images(woman)]
    assert h == sorted(h, reverse=True)


def test_black_fewest_zero_pixels_first(woman):
    def border(width):
        def fn(im):
            im = im.copy()
            im[:width], im[-width:], im[:, :width], im[:, -width:] = 0, 0, 0, 0
            return im
        return fn
    faces = list_images(woman)
    for k, width in enumerate((8, 16, 28)):
        variant(faces[k], f"border{width:02d}", image_fn=border(width))
    sort(woman, "black")
    order = tags(woman)
    assert order[-3:] == ["border08", "border16", "border28"]
    zeros = [int(np.count_nonzero(read_face(p)[0] == 0)) for p in list_images(woman)]
    assert zeros == sorted(zeros)


# ---------------------------------------------------------------- order / trash methods

def test_origname_restores_source_order(src_faceset, tmp_path):
    folder = tmp_path / "aligned"
    faces = copy_tagged(src_faceset, folder, "")
    names = [f"{k:03d}_shuffled.jpg" for k in range(len(faces))]
    random.Random(3).shuffle(names)
    for p, name in zip(faces, names):
        p.rename(folder / name)
    sort(folder, "origname")
    sources = [read_meta(p).source_filename for p in list_images(folder)]
    assert sources == sorted(sources) and len(set(sources)) == len(faces)
    assert tags(folder) == sorted(p.stem for p in faces)


def test_oneface_trashes_every_face_of_a_multi_face_frame(woman):
    faces = list_images(woman)
    shutil.copyfile(faces[2], woman / "w_extra_1.jpg")         # same source_filename: a 2-face frame
    tag(woman / "w_extra_1.jpg", "second_face")
    frame = read_meta(faces[2]).source_filename
    report = sort(woman, "oneface")
    trash = woman.parent / "aligned_trash"
    assert sorted(read_meta(p).extra["tag"] for p in trash.iterdir()) == sorted([faces[2].stem, "second_face"])
    assert all(read_meta(p).source_filename == frame for p in trash.iterdir())
    assert len(tags(woman)) == len(faces) - 1 and report.trashed == 2


def test_oneface_without_multi_face_frames_changes_nothing(woman):
    before = sorted(p.name for p in woman.iterdir())
    report = sort(woman, "oneface")
    assert sorted(p.name for p in woman.iterdir()) == before
    assert report.renamed == 0 and not (woman.parent / "aligned_trash").exists()


def _near_duplicates(folder: Path, method: str) -> dict[str, str]:
    """Near-duplicates of every 4th face of the woman: mirrored (same histogram) for hist,
    slightly noisy (almost the same pixels) for absdiff. The man's faces are consecutive
    frames of a still shot, near-duplicates of each other already."""
    rng = np.random.default_rng(1)

    def noisy(im):
        return np.clip(im + rng.normal(0, 3, im.shape), 0, 255).astype(np.uint8)
    fn = (lambda im: cv2.flip(im, 1)) if method == "hist" else noisy
    faces = [p for p in list_images(folder) if p.name.startswith("w_")][::4]
    return {variant(p, f"dup_{p.stem}", image_fn=fn).stem: p.stem for p in faces}


@pytest.mark.parametrize("method", ["hist", "absdiff"])
def test_near_duplicates_end_up_adjacent(mixed, method):
    dups = _near_duplicates(mixed, method)
    sort(mixed, method, workers=2)
    order = tags(mixed)
    for dup, orig in dups.items():
        assert abs(order.index(dup) - order.index(orig)) == 1, (dup, order)
    people = [t.replace("dup_", "")[0] for t in order]
    switches = sum(a != b for a, b in zip(people, people[1:]))
    assert switches <= 3, order


def test_absdiff_dissimilar_alternates_people(mixed):
    sort(mixed, "absdiff", similar=False)
    people = [t[0] for t in tags(mixed)]
    switches = sum(a != b for a, b in zip(people, people[1:]))
    assert switches >= len(people) // 2, people


def test_hist_dissim_puts_the_odd_faces_first(src_faceset, dst_faceset, tmp_path):
    folder = tmp_path / "aligned"
    copy_tagged(src_faceset, folder, "w_")
    copy_tagged(dst_faceset, folder, "m_", limit=3)
    sort(folder, "hist-dissim")
    order = tags(folder)
    # DeepFaceLab's direction: most dissimilar (summed histogram distance) first
    assert all(t.startswith("m_") for t in order[:3]), order


# ---------------------------------------------------------------- best faces

def test_share_out_hits_the_target_exactly():
    rng = np.random.default_rng(0)
    for _ in range(200):
        counts = rng.integers(0, 6, rng.integers(1, 130))
        target = int(rng.integers(1, 400))
        q = share_out(counts, target)
        assert q.sum() == min(target, counts.sum()) and (q <= counts).all() and (q >= 0).all()
        if target < counts.sum():   # as even as the counts allow
            assert q.max() - q[q < counts].min(initial=q.max()) <= 1


def test_final_by_blur_keeps_target_and_trashes_blurred_copies(woman):
    faces = list_images(woman)
    blurred = {variant(p, f"blur_{p.stem}", image_fn=gaussian).stem for p in faces[::3]}
    report = sort(woman, "final-by-blur", target=len(faces), workers=2)
    kept = tags(woman)
    trashed = {read_meta(p).extra["tag"] for p in (woman.parent / "aligned_trash").iterdir()}
    assert len(kept) == len(faces) and trashed == blurred and report.trashed == len(blurred)


def test_final_by_size_keeps_target_and_trashes_small_copies(woman):
    def shrink(meta):
        l, t, r, b = meta.source_rect
        meta.source_rect = (l, t, l + (r - l) // 2, t + (b - t) // 2)
        return meta
    faces = list_images(woman)
    small = {variant(p, f"small_{p.stem}", meta_fn=shrink).stem for p in faces[1::3]}
    sort(woman, "final-by-size", target=len(faces))
    trashed = {read_meta(p).extra["tag"] for p in (woman.parent / "aligned_trash").iterdir()}
    assert len(tags(woman)) == len(faces) and trashed == small


def test_final_small_target_spans_the_yaw_range(woman):
    for p in list_images(woman):
        variant(p, f"mirror_{p.stem}", image_fn=lambda im: cv2.flip(im, 1), meta_fn=mirror(128))
    all_yaws = {}
    for p in list_images(woman):
        lm = read_meta(p).landmarks
        all_yaws[read_meta(p).extra["tag"]] = (lm[27, 0] - lm[0, 0]) - (lm[16, 0] - lm[27, 0])
    sort(woman, "final-by-blur", target=5)
    kept = tags(woman)
    assert len(kept) == 5 and len(list((woman.parent / "aligned_trash").iterdir())) == 19
    yaws = sorted(all_yaws.values())
    kept_yaws = [all_yaws[t] for t in kept]
    assert min(kept_yaws) <= yaws[1] and max(kept_yaws) >= yaws[-2], (kept_yaws, yaws)


# ---------------------------------------------------------------- identity

def test_id_ref_trashes_the_other_person(mixed, frames):
    ref = sorted(frames("WolfgangLanger_Pexels.mp4", every=40).glob("*.png"))[5]
    assert main.main(["sort", "--input-dir", str(mixed), "--by", "id-ref", "--ref", str(ref),
                      "--non-interactive"]) == 0
    kept = tags(mixed)
    trashed = [read_meta(p).extra["tag"] for p in (mixed.parent / "aligned_trash").iterdir()]
    assert sorted(kept) == sorted(t for t in kept if t.startswith("w_")) and len(kept) == 12
    assert len(trashed) == 12 and all(t.startswith("m_") for t in trashed)


def test_id_group_separates_the_two_people(mixed):
    report = sort(mixed, "id-group", workers=2)
    order = tags(mixed)
    assert report.groups is not None and sum(report.groups) == 24
    start, pure = 0, 0
    for size in report.groups:
        people = [t[0] for t in order[start:start + size]]
        pure += max(people.count("w"), people.count("m"))
        start += size
    assert pure / 24 >= 0.95, (report.groups, order)
    assert len(report.groups) <= 3


def test_id_ref_without_reference_is_one_clear_error(woman, capsys):
    assert main.main(["sort", "--input-dir", str(woman), "--by", "id-ref", "--non-interactive"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and "--ref" in err[0]
