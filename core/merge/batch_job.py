"""The merger's worker side: composite predicted faces into a frame, write frame and mask.

Runs in worker processes without TensorFlow: the parent process decodes the frame, crops
the faces and runs the model; a worker gets the decoded frame, the crops and predictions,
composites (core/merge/compose.py) and writes `merged/<stem>.png` (labelled as synthetic
media) and `merged_mask/<stem>.png`, both atomically.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import VisageError
from core.fileio import atomic_write_bytes, encode_image, read_image
from core.merge.compose import FaceCrop, Motion, compose_frame
from core.merge.config import MergerConfig
from core.synthetic_label import label_png


@dataclass
class MergeJob:
    frame_path: Path
    out_path: Path
    mask_path: Path | None
    cfg: MergerConfig
    frame: np.ndarray | None = None                  # decoded by the parent when the frame has faces
    crops: list[FaceCrop] = field(default_factory=list)
    predictions: list = field(default_factory=list)
    motions: list[Motion | None] = field(default_factory=list)


def write_merged(out_path: Path, mask_path: Path | None, merged: np.ndarray, mask: np.ndarray) -> None:
    """Merged frame as a labelled PNG; the mask as an 8-bit grey PNG. Frame last: it marks 'done'."""
    if mask_path is not None:
        m8 = np.clip(mask[..., 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        atomic_write_bytes(mask_path, encode_image(m8, ".png"))
    atomic_write_bytes(out_path, label_png(encode_image(merged, ".png")))


def _copy_unchanged(job: MergeJob) -> None:
    """A frame without faces: its own pixels (PNG bytes kept as they are, plus the label), empty mask."""
    data = job.frame_path.read_bytes()
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 24:
        width, height = struct.unpack(">II", data[16:24])
        if job.mask_path is not None:
            atomic_write_bytes(job.mask_path, encode_image(np.zeros((height, width), np.uint8), ".png"))
        atomic_write_bytes(job.out_path, label_png(data))
        return
    frame = read_image(job.frame_path)
    if frame is None:
        raise VisageError("unreadable image")
    write_merged(job.out_path, job.mask_path, frame, np.zeros((*frame.shape[:2], 1), np.float32))


def run_job(job: MergeJob) -> tuple[str, str | None]:
    """Do one frame; returns (frame name, None) or (frame name, why it failed) — never raises for bad input."""
    try:
        if job.frame is None:
            _copy_unchanged(job)
        else:
            merged, mask = compose_frame(job.frame, job.crops, job.predictions, job.cfg, job.motions)
            write_merged(job.out_path, job.mask_path, merged, mask)
    except VisageError as e:
        if "disk full" in str(e):
            raise
        return job.frame_path.name, str(e)
    return job.frame_path.name, None
