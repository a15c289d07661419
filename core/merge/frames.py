"""Which dst faces belong to which frame, and how each face moves: the merger's input plan.

Faces come from the dst aligned folder (or its faceset.pak): each face's metadata names its source frame,
so the folder can be sorted or thinned freely (a deleted face = that face is not swapped).
Motion (for motion blur) is the landmarks' centre moving between the neighbouring frames,
and only when no frame has more than one face, as in DeepFaceLab: with several faces a
face cannot be followed from frame to frame by position alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import interact
from core.errors import VisageError
from core.facelib.face_meta import FaceMeta, extract
from core.faceset_pak import is_aux_image, read_faceset
from core.frame_sequence import list_frames

Motion = tuple[float, float]


@dataclass
class FrameInfo:
    path: Path
    faces: list[FaceMeta] = field(default_factory=list)
    motions: list[Motion | None] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name


def load_frames(input_dir: str | Path, aligned_dir: str | Path) -> list[FrameInfo]:
    """Frames of `input_dir` in order, each with its faces from `aligned_dir` and their motion.

    Like DeepFaceLab, the frames given are merged and faces of other frames are left out (one
    info line says how many), so part of a clip merges with the whole clip's aligned folder.
    Raises one clear VisageError for: a missing folder, no frames, faces of which not one names
    a frame of `input_dir` (faces of another clip, or re-extracted frames), or a face file
    without Visage metadata.
    """
    input_dir, aligned_dir = Path(input_dir), Path(aligned_dir)
    frames = [FrameInfo(p) for p in list_frames(input_dir, sequence=True)]
    if not frames:
        raise VisageError(f"no frames in {input_dir}; extract them from the dst video first (step 3)")
    if not aligned_dir.is_dir():
        raise VisageError(f"aligned folder not found: {aligned_dir}; extract the dst faces first (step 5)")
    by_name = {f.name: f for f in frames}
    by_stem = {f.path.stem: f for f in frames}
    missing: list[str] = []
    for face_path, data, _ in read_faceset(aligned_dir):
        meta = extract(data, name=str(face_path))
        if meta is None:
            if is_aux_image(face_path):            # util's _debug/_mask images beside the faces
                continue
            raise VisageError(f"{face_path} has no Visage face metadata; extract faces with `main.py extract` first")
        frame = by_name.get(meta.source_filename) or by_stem.get(Path(meta.source_filename).stem)
        if frame is None:
            missing.append(face_path.name)
            continue
        frame.faces.append(meta)          # natural file order: 00012_0 before 00012_1
    if missing and not any(f.faces for f in frames):
        raise VisageError(f"none of the {len(missing)} face(s) in {aligned_dir} (e.g. {missing[0]}) comes from a "
                          f"frame in {input_dir}; the frames and the aligned faces do not match, re-extract one of them")
    if missing:
        interact.log_info(f"Ignoring {len(missing)} face(s) in {aligned_dir} (e.g. {missing[0]}) whose frames are "
                          f"not in {input_dir}")
    _add_motion(frames)
    return frames


def _centre(frame: FrameInfo | None) -> np.ndarray | None:
    if frame is None or len(frame.faces) != 1:
        return None
    return np.asarray(frame.faces[0].source_landmarks, np.float64).mean(0)


def _add_motion(frames: list[FrameInfo]) -> None:
    """Per face: half the centre's travel from the previous to the next frame (None at gaps)."""
    single = all(len(f.faces) <= 1 for f in frames)
    for i, f in enumerate(frames):
        f.motions = [None] * len(f.faces)
        if not single or not f.faces:
            continue
        prev = _centre(frames[i - 1]) if i > 0 else None
        nxt = _centre(frames[i + 1]) if i + 1 < len(frames) else None
        here = _centre(f)
        if prev is None and nxt is None:
            continue
        a = prev if prev is not None else here
        b = nxt if nxt is not None else here
        span = 2.0 if prev is not None and nxt is not None else 1.0
        dx, dy = (b - a) / span
        f.motions = [(float(dx), float(dy))]


def count_faces(frames: list[FrameInfo]) -> int:
    return sum(len(f.faces) for f in frames)
