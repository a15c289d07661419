"""XSeg pretraining samples: any aligned faces (no polygons), for DeepFaceLab's XSeg pretrain mode.

As DFL's Model_XSeg with pretrain on: faces of the pretraining set at the model's face type and
resolution, randomly warped, turned (±10°), scaled (±5 %), shifted (±5 %) and flipped (Visage's
training sampler, samplelib/generator.py, with the ranges of DFL's SampleProcessor.Options
defaults, which DFL's XSeg pretraining uses); the network
reads the warped colour face and must redraw the same warped face in greyscale (DFL's
ChannelType.G: OpenCV's BGR -> grey). Half of each batch comes from each of the sampler's two
sides, both drawing from the pretraining set, so every sample made is used.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from core.facelib.face_type import FaceType


def grey(images: np.ndarray) -> np.ndarray:
    """(N, R, R, 1) greyscale of (N, R, R, 3) BGR float images, as DFL's G channel."""
    return np.stack([cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_BGR2GRAY)[..., None] for im in images])


class XSegPretrainBatches:
    """Endless (images, targets) batches: warped BGR faces and their greyscale."""

    def __init__(self, faces_dir: Path, face_type: FaceType, resolution: int, batch_size: int, workers: int = 0,
                 seed: int | None = None):
        from samplelib.generator import TrainingBatches
        from samplelib.sample_processor import SampleConfig
        cfg = SampleConfig(resolution=resolution, face_type=face_type, random_warp=True, random_flip=True,
                           scale_range=(-0.05, 0.05), masks=False)
        self.batch_size = batch_size
        self._batches = TrainingBatches(faces_dir, faces_dir, cfg, cfg, -(-batch_size // 2), workers=workers, seed=seed)

    @property
    def wait_seconds(self) -> float:
        return self._batches.wait_seconds

    def __iter__(self):
        return self

    def __next__(self) -> SimpleNamespace:
        b = next(self._batches)
        images = np.concatenate([b.src.warped, b.dst.warped])[:self.batch_size]
        return SimpleNamespace(images=images, targets=grey(images))

    def preview_batch(self, n: int) -> SimpleNamespace:
        """n faces of the pretraining set, unaugmented, with their greyscale as `mask` (what is learned)."""
        faces = self._batches.preview_batch(n).src.target
        side = SimpleNamespace(target=faces, mask=grey(faces))
        return SimpleNamespace(src=side, dst=side)

    def close(self) -> None:
        self._batches.close()
