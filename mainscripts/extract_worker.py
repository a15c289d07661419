"""The part of `extract` that runs in worker processes: frames in, aligned faces out.

A job is a run of consecutive frames. Frames flagged `write` get their faces written;
the others are only analysed, as context for temporal landmark smoothing at the edges
of the run. Every file is written atomically, so a killed worker leaves nothing partial.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.facelib.face_finder import FaceFinder, FoundFace, StageTimes, align_face
from core.facelib.face_meta import FaceMeta, embed
from core.facelib.face_type import FaceType, face_type_name
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


@dataclass
class ChunkResult:
    faces: dict[str, int]       # frame file name -> faces written (-1: unreadable frame)
    times: dict[str, float]
    frames_written: int


_finder: FaceFinder | None = None


def init_worker(threads: int = 1) -> None:
    global _finder
    _finder = FaceFinder(threads=threads)


def _write_faces(frame_path: Path, img: np.ndarray, faces: list[FoundFace], s: ExtractSettings,
                 times: StageTimes) -> None:
    ft = FaceType(s.face_type)
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
        faces = _finder.find(img, s.max_faces, times)
        if s.smooth_radius:
            held.append((path, img if do_write else None, faces, do_write))
        elif do_write:
            _write_faces(path, img, faces, s, times)
            result[path.name] = len(faces)
    if s.smooth_radius:
        smoothed = smooth_landmarks([[f.landmarks for f in faces] for _, _, faces, _ in held], s.smooth_radius)
        for (path, img, faces, do_write), lms in zip(held, smoothed):
            if not do_write:
                continue
            for face, lm in zip(faces, lms):
                face.landmarks = lm
            _write_faces(path, img, faces, s, times)
            result[path.name] = len(faces)
    return ChunkResult(result, times.times, len(result))
