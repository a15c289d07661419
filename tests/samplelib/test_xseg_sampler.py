"""XSeg sampler's occluder paste (copy-paste augmentation): on real faces labelled with pasted occluders."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.facelib.face_type import FaceType
from samplelib import xseg_sampler
from samplelib.xseg_sampler import XSegBatches, load_labelled, occluder_donors, paste_occluder
from tests.support.xseg_support import label_faces

RES = 64


@pytest.fixture(scope="module")
def labelled_dir(src_faceset, dst_faceset, tmp_path_factory):
    """4 faces of the woman, each with a pasted occluder excluded by its polygon."""
    tex = [cv2.imread(str(p)) for p in sorted(dst_faceset.glob("*.jpg"))[:2]]
    out = tmp_path_factory.mktemp("xseg_paste") / "l"
    label_faces(sorted(src_faceset.glob("*.jpg"))[:4], tex, out, seed=3)
    return out


def test_exclude_region_is_the_labelled_occluder(labelled_dir):
    faces = load_labelled([labelled_dir], FaceType.WHOLE_FACE, RES)
    assert len(occluder_donors(faces)) == len(faces) == 4
    for f in faces:
        ex = f.exclude > 0.5
        assert ex.sum() > 20 and not f.mask[..., 0][ex].any()      # the label mask is 0 all over it


def test_paste_copies_another_faces_exclude_region_and_cuts_the_mask(labelled_dir):
    faces = load_labelled([labelled_dir], FaceType.WHOLE_FACE, RES)
    donor, target = faces[0], faces[1]
    rng = np.random.default_rng(7)
    for _ in range(5):
        img, mask, mat = paste_occluder(target.image, target.mask, donor, rng, jitter=False)
        cut = (target.mask[..., 0] > 0.5) & (mask[..., 0] == 0)          # mask-0 pixels where the face had none
        assert cut.sum() > 10
        inside = cv2.warpAffine(donor.exclude, mat, (RES, RES), flags=cv2.INTER_LINEAR)
        assert (inside[cut] > 0.5).all()                                 # they map into the donor's exclude region
        copied = cv2.warpAffine(donor.image, mat, (RES, RES), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        assert np.array_equal(img[cut], copied[cut])                     # with the donor's pixels
        assert np.abs(img[cut] - target.image[cut]).mean() > 0.02
        outside = inside <= 0.5                                          # nothing else is touched
        assert not np.any(img != target.image, axis=-1)[outside].any()
        assert np.array_equal(mask[outside], target.mask[outside])


def test_paste_recolours_the_occluder(labelled_dir):
    faces = load_labelled([labelled_dir], FaceType.WHOLE_FACE, RES)
    donor, target = faces[2], faces[3]
    diffs = []
    for seed in range(6):
        img, mask, mat = paste_occluder(target.image, target.mask, donor, np.random.default_rng(seed))
        cut = (target.mask[..., 0] > 0.5) & (mask[..., 0] == 0)
        copied = cv2.warpAffine(donor.image, mat, (RES, RES), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        diffs.append(np.abs(img[cut] - copied[cut]).mean())
    assert max(diffs) > 0.02                                             # colour jitter on the pasted pixels


def test_batches_paste_only_with_the_option(labelled_dir, monkeypatch):
    """With the option some draws (PASTE_CHANCE) get another face's occluder pasted on; without it none (DFL's)."""
    real, pasted = xseg_sampler.paste_occluder, []

    def spy(img, mask, donor, rng, jitter=True):
        out = real(img, mask, donor, rng, jitter)
        pasted.append(int(((mask[..., 0] > 0.5) & (out[1][..., 0] == 0)).sum()))
        return out
    monkeypatch.setattr(xseg_sampler, "paste_occluder", spy)
    counts = {}
    for paste in (False, True):
        batches = XSegBatches([labelled_dir], FaceType.WHOLE_FACE, RES, 4, seed=1, paste_occluders=paste)
        batches.close()                                                   # draw here, not in its thread
        pasted.clear()
        try:
            rng = np.random.default_rng(0)
            for _ in range(10):
                b = batches.make(rng)
                assert b.masks.shape == (4, RES, RES, 1) and set(np.unique(b.masks)) <= {0.0, 1.0}
            counts[paste] = list(pasted)
            assert len(batches.donors) == (4 if paste else 0)
        finally:
            batches.close()
    assert counts[False] == []
    assert 4 <= len(counts[True]) <= 30 and min(counts[True]) > 0, counts[True]          # of 40 draws


def test_a_face_never_gets_its_own_occluder(labelled_dir, monkeypatch):
    faces = load_labelled([labelled_dir], FaceType.WHOLE_FACE, RES)
    monkeypatch.setattr(xseg_sampler, "PASTE_CHANCE", 1.0)
    calls = []
    monkeypatch.setattr(xseg_sampler, "paste_occluder", lambda img, mask, donor, rng: calls.append(donor) or
                        (img, mask, None))
    rng = np.random.default_rng(0)
    for _ in range(5):
        xseg_sampler.augment(faces[0], faces, rng, faces[:1])
    assert calls == []
    for _ in range(20):
        xseg_sampler.augment(faces[0], faces, rng, faces)
    assert len(calls) == 20 and all(d is not faces[0] for d in calls) and len({d.name for d in calls}) == 3
