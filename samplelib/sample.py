"""Training samples: one aligned face's metadata, loaded without decoding its pixels.

Loading only metadata keeps start-up fast on sets of tens of thousands of faces; worker
processes decode each image from disk when they use it, so the parent never holds the
whole faceset in memory. The picker that chooses which face comes next lives here too.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from core.errors import VisageError
from core.facelib.face_meta import extract, jpeg_size
from core.facelib.face_type import FaceType, face_type_from_str
from core.facelib.geometry import estimate_pose
from core.faceset_pak import PakEntry, is_aux_image, read_entry, read_faceset

YAW_BINS = 128        # DeepFaceLab's uniform-yaw bins over ±YAW_LIMIT
YAW_LIMIT = 1.2


@dataclass
class Sample:
    """What the sample processor needs to crop, mask and pick one face."""
    path: str
    face_type: FaceType
    landmarks: np.ndarray            # (68, 2) float32 in aligned-image pixels
    image_size: int                  # side of the aligned image in pixels
    source_landmarks: np.ndarray     # (68, 2) in frame pixels (for re-crops)
    image_to_face_mat: np.ndarray    # (2, 3) frame -> aligned image
    eyebrows_expand_mod: float = 1.0
    has_xseg: bool = False
    yaw: float = 0.0                 # approximate radians, + = face turned toward image right
    pitch: float = 0.0               # approximate radians, + = chin down
    pak_entry: PakEntry | None = None   # set when the face lives inside a faceset.pak


def sample_from_meta(path: str | Path, meta, image_size: int, pak_entry: PakEntry | None = None) -> Sample:
    """Build a Sample from a FaceMeta (kept separate so tests can build sets without files)."""
    yaw, pitch = estimate_pose(meta.landmarks)
    return Sample(path=str(path), face_type=face_type_from_str(meta.face_type),
                  landmarks=np.asarray(meta.landmarks, np.float32), image_size=int(image_size),
                  source_landmarks=np.asarray(meta.source_landmarks, np.float32),
                  image_to_face_mat=np.asarray(meta.image_to_face_mat, np.float32),
                  eyebrows_expand_mod=float(meta.eyebrows_expand_mod),
                  has_xseg=meta.xseg_mask is not None, yaw=yaw, pitch=pitch, pak_entry=pak_entry)


def read_sample_bytes(sample: Sample) -> bytes:
    """The face's JPEG bytes, from its file or from the faceset.pak holding it (one code path)."""
    if sample.pak_entry is not None:
        return read_entry(sample.pak_entry)
    try:
        return Path(sample.path).read_bytes()
    except OSError as e:
        raise VisageError(f"could not read face file {sample.path}: {e.strerror or e}") from e


def _sample_from_bytes(path: Path, data: bytes, pak_entry: PakEntry | None = None) -> Sample | None:
    meta = extract(data, name=str(path))
    if meta is None:
        if is_aux_image(path):                     # util's _debug/_mask images: not faces
            return None
        raise VisageError(f"{path} has no Visage face metadata; extract faces with `main.py extract` first")
    return sample_from_meta(path, meta, max(jpeg_size(data, name=str(path))), pak_entry)


def load_samples(faces_dir: str | Path) -> list[Sample]:
    """Every aligned face in `faces_dir` (natural file order), from metadata alone.

    A folder holding `faceset.pak` (util --pack-faceset) is read from the pak, in the order
    the faces were packed; loose faces beside a pak are refused rather than silently mixed.
    """
    samples = [_sample_from_bytes(path, data, entry) for path, data, entry in read_faceset(faces_dir)]
    found = [s for s in samples if s is not None]
    if not found:
        raise VisageError(f"no aligned faces in {faces_dir}; run extract first")
    return found


def yaw_bins(yaws: Sequence[float], bins: int = YAW_BINS, limit: float = YAW_LIMIT) -> list[np.ndarray]:
    """Sample indices of each non-empty yaw bin (yaws beyond ±limit fall in the end bins)."""
    edges = np.linspace(-limit, limit, bins + 1)
    which = np.clip(np.digitize(np.asarray(yaws, np.float64), edges) - 1, 0, bins - 1)
    order = np.argsort(which, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(which[order])) + 1)
    return [g for g in groups if g.size]


class SamplePicker:
    """Endless stream of sample indices: shuffled epochs, or uniform over yaw bins.

    Shuffled epochs show every face once per pass. With `uniform_yaw` (DeepFaceLab's
    option) a non-empty yaw bin is drawn first and then a face in it, so the few profile
    faces of a mostly frontal set are trained as often as the frontal ones.
    """

    def __init__(self, samples: Sequence[Sample], rng: np.random.Generator, uniform_yaw: bool = False) -> None:
        self._rng = rng
        self._n = len(samples)
        self._bins = yaw_bins([s.yaw for s in samples]) if uniform_yaw else None
        self._epoch: list[int] = []

    def next(self) -> int:
        if self._bins is not None:
            group = self._bins[int(self._rng.integers(len(self._bins)))]
            return int(group[int(self._rng.integers(group.size))])
        if not self._epoch:
            self._epoch = self._rng.permutation(self._n).tolist()
        return self._epoch.pop()
