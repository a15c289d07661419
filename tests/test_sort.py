"""`sort`: every DeepFaceLab sort method plus the identity ones, on real extracted faces.

Each face gets a tag in its metadata (`extra["tag"]`, written with update_meta so the
image stays byte-identical); a sort renames files, so the tags read back in file order
are the new order. Variants (blurred, darkened, mirrored, tilted, bordered copies) are
re-encoded with write_face, so they stay valid faces with the right landmarks.
"""
from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core.errors import VisageError
from core.facelib.face_meta import read_face, read_meta, update_meta, write_face
from core.fileio import list_images
from core.sorting import renaming
from core.sorting.best_faces import share_out
from core.sorting.methods import NAMES, SortOptions
from mainscripts.sorter import ask_method, sort_folder

# iBUG-68 index of each point's mirror image (left/right swapped)
MIRROR_68 = ([*range(16, -1, -1)] + [*range(26, 16, -1)] + [27, 28, 29, 30] + [*range(35, 30, -1)]
             + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
             + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


# ---------------------------------------------------------------- helpers

def tag(path: Path, name: str) -> None:
    meta = read_meta(path)
    meta.extra["tag"] = name
    update_meta(path, meta)


def copy_tagged(src_dir: Path, dst: Path, prefix: str, limit: int = 0) -> list[Path]:
    """Copy the faces of src_dir into dst as <prefix><stem>.jpg, tagged with that stem."""
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for p in list_images(src_dir)[:limit or None]:
        q = dst / f"{prefix}{p.stem}.jpg"
        shutil.copyfile(p, q)
        tag(q, q.stem)
        out.append(q)
    return out


def variant(src: Path, name: str, image_fn=None, meta_fn=None) -> Path:
    """A re-encoded copy of face `src` beside it, tagged `name`, image/meta changed by the functions."""
    image, meta = read_face(src)
    if image_fn is not None:
        image = image_fn(image)
    if meta_fn is not None:
        meta = meta_fn(meta)
    meta.extra["tag"] = name
    out = src.parent / f"{name}.jpg"
    write_face(out, image, meta, jpeg_quality=95)
    return out


def tags(folder: Path) -> list[str]:
    files = list_images(folder)
    assert [p.name for p in files] == [f"{i:05d}.jpg" for i in range(len(files))]
    return [read_meta(p).extra["tag"] for p in files]


def sort(folder: Path, method: str, workers: int = 1, **opts):
    return sort_folder(folder, method, SortOptions(**opts), workers=workers)


def gaussian(image):
    return cv2.GaussianBlur(image, (0, 0), 2.0)


def motion(image):
    k = np.zeros((9, 9), np.float32)
    k[4, :] = 1 / 9
    return cv2.filter2D(image, -1, k)


def mirror(image_meta_size: int):
    def fn(meta):
        lm = meta.landmarks.copy()
        lm[:, 0] = image_meta_size - 1 - lm[:, 0]
        meta.landmarks = lm[MIRROR_68]
        return meta
    return fn


def tilt_homography(size: int, degrees: float, focal: float = 1.2) -> np.ndarray:
    """Perspective of the face plane turned about its horizontal axis; > 0 moves the top away."""
    c, f, t = (size - 1) / 2, focal * size, np.radians(degrees)
    corners = np.float32([[0, 0], [size - 1, 0], [size - 1, size - 1], [0, size - 1]])
    out = []
    for x, y in corners:
        u, v = x - c, y - c
        z = f - v * np.sin(t)          # top (v < 0) farther when t > 0
        out.append([c + f * u / z, c + f * v * np.cos(t) / z])
    return cv2.getPerspectiveTransform(corners, np.float32(out))


def tilt(size: int, degrees: float):
    h = tilt_homography(size, degrees)

    def image_fn(image):
        return cv2.warpPerspective(image, h, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def meta_fn(meta):
        meta.landmarks = cv2.perspectiveTransform(meta.landmarks[None].astype(np.float32), h)[0]
        return meta
    return image_fn, meta_fn


def file_hashes(*folders: Path) -> list[str]:
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for d in folders if d.is_dir()
                  for p in d.iterdir() if p.is_file())


def hsv_mean(path: Path, channel: int) -> float:
    image, _ = read_face(path)
    return float(cv2.cvtColor(image, cv2.COLOR_BGR2HSV)[..., channel].mean())


@pytest.fixture
def woman(src_faceset, tmp_path) -> Path:
    """12 tagged faces of the woman (w_<frame>_0) in a fresh folder."""
    folder = tmp_path / "aligned"
    copy_tagged(src_faceset, folder, "w_")
    return folder


@pytest.fixture
def mixed(src_faceset, dst_faceset, tmp_path) -> Path:
    """12 faces of the woman (w_*) and 12 of the man (m_*)."""
    folder = tmp_path / "aligned"
    copy_tagged(src_faceset, folder, "w_")
    copy_tagged(dst_faceset, folder, "m_")
    return folder


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


# ---------------------------------------------------------------- CLI, safety, errors

def help_methods() -> list[str]:
    """The --by choices exactly as `main.py sort --help` prints them."""
    import contextlib
    import io
    import re
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main.main(["sort", "--help"])
    return re.search(r"--by \{([^}]*)\}", out.getvalue()).group(1).split(",")


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
