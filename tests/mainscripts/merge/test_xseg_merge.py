"""XSeg masks in merge on real frames: a labelled occluder stays in the merged frame, the face around it is swapped.

The man's frames (single_face.mp4) get a solid occluder pasted over his mouth and chin; his
aligned faces are cut from those frames and labelled (include = the face outline, exclude =
the occluder). A small XSeg model trained briefly on exactly those faces is checked first
(its XSeg-dst mask, mapped into the merge crop, leaves the occluder out), then `merge
--opt mask_mode=XSeg-dst` with the tiny SAEHD must keep the occluder's pixels and swap the
rest; `mask_mode=dst` (the landmark hull) on the same frames swaps over the occluder.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core.facelib.face_meta import read_face, write_face
from core.facelib.face_type import FaceType
from core.facelib.xseg_polys import polys_mask
from tests.support.xseg_support import face_outline

FACES, XSEG_ITERS, OCCLUDER_BGR = 6, 250, (40, 200, 60)


def occluder_in_frame(lm: np.ndarray) -> np.ndarray:
    """An ellipse over the mouth and chin (frame pixels), sized by the face."""
    width = float(np.linalg.norm(lm[16] - lm[0]))
    centre = (lm[57] + lm[8]) / 2.0
    return cv2.ellipse2Poly((int(centre[0]), int(centre[1])), (int(width * 0.24), int(width * 0.16)), 0, 0, 360,
                            10).astype(np.float32)


@pytest.fixture(scope="module")
def occluded(frames, dst_faceset, tmp_path_factory):
    """(frames folder, aligned folder, {frame name: occluder polygon}) of FACES occluded, labelled frames."""
    work = tmp_path_factory.mktemp("xseg_merge")
    frames_dir, aligned = work / "frames", work / "aligned"
    frames_dir.mkdir()
    aligned.mkdir()
    source = frames("single_face.mp4", every=6)
    polys = {}
    for p in sorted(dst_faceset.glob("*.jpg"))[:FACES]:
        img, meta = read_face(p)
        frame = cv2.imread(str(source / meta.source_filename))
        poly = occluder_in_frame(meta.source_landmarks)
        cv2.fillPoly(frame, [poly.astype(np.int32)], OCCLUDER_BGR)
        cv2.imwrite(str(frames_dir / meta.source_filename), frame)
        size = img.shape[0]
        face = cv2.warpAffine(frame, meta.image_to_face_mat, (size, size), flags=cv2.INTER_CUBIC)
        in_face = cv2.transform(poly[None], meta.image_to_face_mat)[0]
        meta.seg_ie_polys = [{"type": "include", "points": face_outline(meta.landmarks).tolist()},
                             {"type": "exclude", "points": in_face.tolist()}]
        write_face(aligned / p.name, face, meta, 95)
        polys[meta.source_filename] = poly
    return frames_dir, aligned, polys


@pytest.fixture(scope="module")
def xseg_dir(occluded, tmp_path_factory):
    """An XSeg model (whole face, 64 px) trained XSEG_ITERS iterations on the labelled faces."""
    import keras
    from models.xseg import XSegModel
    _, aligned, _ = occluded
    out = tmp_path_factory.mktemp("xseg_model")
    keras.utils.set_random_seed(0)         # the same initial weights every run: the figures below vary less
    model = XSegModel(out, aligned, aligned, "x", {"resolution": "64", "batch_size": "4"}, silent_start=True)
    try:
        while model.iter < XSEG_ITERS:
            model.train_iteration()
        model.save()
    finally:
        model.close()
    return out


def frame_masks(frame_shape, poly, lm):
    """(occluder core, face around the occluder) boolean masks in frame pixels, 5 px clear of the edge.

    5 px: about two pixels of the 64 px XSeg crop of a ~100 px wide face, the sharpest edge such a mask can draw.
    """
    from core.imagelib.masks import hull_mask
    h, w = frame_shape[:2]
    occ = polys_mask((h, w), [{"type": "include", "points": poly.tolist()}]) > 0.5
    kernel = np.ones((11, 11), np.uint8)
    core = cv2.erode(occ.astype(np.uint8), kernel) > 0
    hull = hull_mask((h, w), lm)[..., 0] > 0.5
    around = cv2.erode(hull.astype(np.uint8), kernel) > 0
    around &= ~(cv2.dilate(occ.astype(np.uint8), kernel) > 0)
    return core, around


def test_xseg_dst_mask_leaves_the_occluder_out(occluded, xseg_dir):
    """The XSeg-dst mask as merge builds it (XSeg crop -> merge crop) excludes the occluder, keeps the face."""
    from core.facelib.geometry import transform_points
    from core.facelib.face_meta import read_meta
    from core.merge.compose import crop_face
    from core.merge.xseg_masks import add_xseg_masks
    from models.xseg import XSegPredictor
    frames_dir, aligned, polys = occluded
    xseg = XSegPredictor(xseg_dir)
    try:
        for p in sorted(aligned.glob("*.jpg")):
            meta = read_meta(p)
            frame = cv2.imread(str(frames_dir / meta.source_filename))
            crop = crop_face(frame, meta, 96, FaceType.FULL)             # a full-face merge crop; XSeg is wf 64 px
            (*_, xprd, xdst), = add_xseg_masks([frame], [crop], [(crop.dst, crop.hull, crop.hull)], xseg, "XSeg-dst")
            assert xprd is None and xdst.shape == (96, 96, 1)
            occ = polys_mask((96, 96), [{"type": "include", "points": transform_points(polys[meta.source_filename],
                                                                                       crop.mat).tolist()}]) > 0.5
            m, face = xdst[..., 0] > 0.5, (crop.hull[..., 0] > 0.5) & ~occ
            assert (~m & occ).sum() / occ.sum() >= 0.9, p.name           # the occluder is left out
            assert (m & face).sum() / face.sum() >= 0.8, p.name          # the face around it is in
    finally:
        xseg.close()


def merge(occluded, model_dir, out, mask_mode, *extra):
    frames_dir, aligned, _ = occluded
    return main.main(["merge", "--input-dir", str(frames_dir), "--output-dir", str(out), "--aligned-dir", str(aligned),
                      "--model-dir", str(model_dir), "--model", "SAEHD", "--force-model-name", "t", "--non-interactive",
                      "--workers", "1", "--opt", "mode=overlay", "--opt", f"mask_mode={mask_mode}",
                      "--opt", "color_transfer_mode=none", *extra])


def test_merge_with_xseg_dst_keeps_the_occluder_and_swaps_the_face(occluded, xseg_dir, tiny_model, tmp_path):
    from core.facelib.face_meta import read_meta
    frames_dir, aligned, polys = occluded
    assert merge(occluded, tiny_model, tmp_path / "xseg", "XSeg-dst", "--xseg-model-dir", str(xseg_dir)) == 0
    assert merge(occluded, tiny_model, tmp_path / "hull", "dst") == 0
    for p in sorted(aligned.glob("*.jpg")):
        meta = read_meta(p)
        name = Path(meta.source_filename).stem + ".png"
        original = cv2.imread(str(frames_dir / name)).astype(int)
        core, around = frame_masks(original.shape, polys[meta.source_filename], meta.source_landmarks)
        for kind in ("xseg", "hull"):
            merged = cv2.imread(str(tmp_path / kind / name)).astype(int)
            mask = cv2.imread(str(tmp_path / f"{kind}_mask" / name), cv2.IMREAD_GRAYSCALE)
            diff = np.abs(merged - original).max(-1)
            assert (diff[mask == 0] == 0).all(), (kind, name)                # outside the mask: the frame exactly
            assert (diff[around] > 8).mean() > 0.5, (kind, name)              # the face around it is swapped
            if kind == "xseg":     # the occluder comes out unchanged (a briefly trained mask fades in at its edge)
                assert (diff[core] <= 2).mean() > 0.7 and (diff[core] > 8).mean() < 0.2, name
            else:                  # the landmark hull swaps right over it
                assert (diff[core] > 8).mean() > 0.9 and (mask[core] == 255).mean() > 0.8, name


def test_xseg_mask_mode_without_an_xseg_model_is_one_line(occluded, tiny_model, tmp_path, capsys):
    assert merge(occluded, tiny_model, tmp_path / "out", "XSeg-prd*XSeg-dst") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a trained XSeg model and there is none in" in err[0], err
    assert not (tmp_path / "out").exists()


class GreenIsMask:
    """A stand-in XSeg model (whole face, 64 px): the mask is where the crop is the occluder's green."""
    resolution, face_type = 64, FaceType.WHOLE_FACE

    def masks(self, crops):
        b, g, r = crops[..., 0], crops[..., 1], crops[..., 2]
        return ((g > 0.6) & (r < 0.4) & (b < 0.4)).astype(np.float32)[..., None]


def test_xseg_masks_are_mapped_between_the_xseg_and_the_merge_crop(occluded):
    """XSeg-dst lands on the occluder in a full-face merge crop; XSeg-prd sees the predicted face, not the frame's."""
    from core.facelib.geometry import transform_points
    from core.facelib.face_meta import read_meta
    from core.merge.compose import crop_face
    from core.merge.xseg_masks import add_xseg_masks
    frames_dir, aligned, polys = occluded
    meta = read_meta(sorted(aligned.glob("*.jpg"))[0])
    frame = cv2.imread(str(frames_dir / meta.source_filename))
    crop = crop_face(frame, meta, 96, FaceType.FULL)
    grey = np.full_like(crop.dst, 0.5)
    green = np.zeros_like(crop.dst)
    green[..., 1] = 1.0
    (*_, prd_grey, dst_mask), (*_, prd_green, _) = add_xseg_masks(
        [frame] * 2, [crop] * 2, [(grey, crop.hull, crop.hull), (green, crop.hull, crop.hull)], GreenIsMask())
    occ = polys_mask((96, 96), [{"type": "include", "points": transform_points(polys[meta.source_filename],
                                                                               crop.mat).tolist()}]) > 0.5
    m = dst_mask[..., 0] > 0.5
    assert (m & occ).sum() / (m | occ).sum() > 0.85                   # the same place in both crops
    assert prd_grey.max() == 0.0                                       # the frame's green is under the predicted face
    assert (prd_green[4:-4, 4:-4] > 0.5).all()                         # and the predicted face is what XSeg-prd sees


def test_interactive_mask_key_skips_xseg_modes_without_a_model():
    from core.merge.config import MASK_MODES, MergerConfig
    from core.merge.interactive import MergerState, handle_key
    from core.merge.masks import XSEG_MASK_MODES
    plain = tuple(m for m in MASK_MODES if m not in XSEG_MASK_MODES)
    state = MergerState.new(["a.png"], MergerConfig(mask_mode=plain[-1]), mask_modes=plain)
    assert handle_key(state, ord("x"))[0].cfg.mask_mode == plain[0]
    full = MergerState.new(["a.png"], MergerConfig(mask_mode=plain[-1]))
    assert handle_key(full, ord("x"))[0].cfg.mask_mode == "XSeg-prd"
    assert XSEG_MASK_MODES == MASK_MODES[6:] == ("XSeg-prd", "XSeg-dst", "XSeg-prd*XSeg-dst",
                                                 "learned-prd*learned-dst*XSeg-prd*XSeg-dst")
