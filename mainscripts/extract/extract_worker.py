"""The part of `extract` that runs in worker processes: frames in, aligned faces out.

A job is a run of consecutive frames. Frames flagged `write` get their faces written;
the others are only analysed, as context for temporal landmark smoothing at the edges
of the run. With reference embeddings (`--filter-ref`), each found face is embedded here,
on the frame with its landmarks, and only faces near a reference are kept. Every file is
written atomically, so a killed worker leaves nothing partial. `write_faces` is also how
the manual extractor writes the faces the user placed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.facelib.face_finder import FaceFinder, FoundFace, StageTimes, align_face
from core.facelib.face_meta import FaceMeta, embed
from core.facelib.face_type import FaceType, face_type_name
from core.facelib.identity import SAME_PERSON, IdentityEncoder, distance_to
from core.fileio import atomic_write_bytes, encode_image, read_image


@dataclass(frozen=True)
class ExtractSettings:
    face_type: int
    image_size: int
    jpeg_quality: int
    max_faces: int
    output_dir: str
    debug_dir: str | None
    smooth_radius: int          # 0 = no temporal smoothing
    filter_refs: np.ndarray | None = field(default=None, compare=False)   # (m, 128) reference embeddings
    filter_threshold: float = SAME_PERSON
    landmarks: str = "mesh"     # "ibug68": refine the mesh's 68 points with dlib's iBUG predictor


@dataclass
class ChunkResult:
    faces: dict[str, int]       # frame file name -> faces written (-1: unreadable frame)
    times: dict[str, float]
    frames_written: int
    skipped: dict[str, int] = field(default_factory=dict)   # frame -> faces of other people left out


_finder: FaceFinder | None = None
_encoder: IdentityEncoder | None = None     # made on first use (only with --filter-ref)


def init_worker(threads: int = 1, ibug68: bool = False) -> None:
    global _finder
    _finder = FaceFinder(threads=threads, ibug68=ibug68)


def _find(img: np.ndarray, s: ExtractSettings, times: StageTimes) -> tuple[list[FoundFace], int]:
    """(faces to write, faces of other people left out); `max_faces` counts kept faces only."""
    global _encoder
    if s.filter_refs is None:
        return _finder.find(img, s.max_faces, times), 0
    faces = _finder.find(img, 0, times)
    if not faces:
        return faces, 0
    t0 = time.perf_counter()
    _encoder = _encoder or IdentityEncoder()
    emb = np.stack([_encoder.embed(img, f.landmarks) for f in faces])
    keep = [f for f, d in zip(faces, distance_to(emb, s.filter_refs)) if d <= s.filter_threshold]
    times.add("identity", time.perf_counter() - t0)
    return keep[:s.max_faces or None], len(faces) - len(keep)


def write_faces(frame_path: Path, img: np.ndarray, faces: list[FoundFace], s: ExtractSettings,
                times: StageTimes | None = None) -> None:
    """`<stem>_<n>.jpg` for each face (with metadata) and, with debug on, `<stem>.jpg` in the debug folder."""
    ft = FaceType(s.face_type)
    times = StageTimes() if times is None else times
    debug = []
    for n, face in enumerate(faces):
        t0 = time.perf_counter()
        aligned, mat, lm_aligned = align_face(img, face.landmarks, ft, s.image_size)
        t1 = time.perf_counter()
        meta = FaceMeta(face_type=face_type_name(ft), landmarks=lm_aligned, source_filename=frame_path.name,
                        source_rect=tuple(int(v) for v in face.rect), source_landmarks=face.landmarks,
                        image_to_face_mat=mat)
        data = embed(encode_image(aligned, ".jpg", s.jpeg_quality), meta, name=frame_path.name)
        t2 = time.perf_counter()
        atomic_write_bytes(Path(s.output_dir) / f"{frame_path.stem}_{n}.jpg", data)
        times.add("warp", t1 - t0)
        times.add("encode", t2 - t1)
        times.add("write", time.perf_counter() - t2)
        debug.append((face.rect, face.landmarks, mat, 0 if ft == FaceType.MARK_ONLY else s.image_size))
    if s.debug_dir:
        from core.facelib.draw import draw_debug
        atomic_write_bytes(Path(s.debug_dir) / f"{frame_path.stem}.jpg",
                           encode_image(draw_debug(img, debug), ".jpg", 85))


def process_chunk(job: tuple[ExtractSettings, list[str], list[bool]]) -> ChunkResult:
    """Analyse every frame of the run; write faces of the frames flagged in `write`."""
    from core.facelib.smoothing import smooth_landmarks
    s, paths, write = job
    times = StageTimes()
    result: dict[str, int] = {}
    skipped: dict[str, int] = {}
    held: list[tuple[Path, np.ndarray | None, list[FoundFace], bool]] = []
    for path, do_write in zip(map(Path, paths), write):
        t0 = time.perf_counter()
        img = read_image(path)
        times.add("decode", time.perf_counter() - t0)
        if img is None:
            if do_write:
                result[path.name] = -1
            held.append((path, None, [], False))
            continue
        faces, other = _find(img, s, times)
        if do_write and other:
            skipped[path.name] = other
        if s.smooth_radius:
            held.append((path, img if do_write else None, faces, do_write))
        elif do_write:
            write_faces(path, img, faces, s, times)
            result[path.name] = len(faces)
    if s.smooth_radius:
        smoothed = smooth_landmarks([[f.landmarks for f in faces] for _, _, faces, _ in held], s.smooth_radius)
        for (path, img, faces, do_write), lms in zip(held, smoothed):
            if not do_write:
                continue
            for face, lm in zip(faces, lms):
                face.landmarks = lm
            write_faces(path, img, faces, s, times)
            result[path.name] = len(faces)
    return ChunkResult(result, times.times, len(result), skipped)
