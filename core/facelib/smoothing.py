"""Temporal landmark smoothing across consecutive frames of one face.

Faces are linked frame to frame when their landmark centres are mutual nearest
neighbours within half an inter-ocular distance per frame (a scene cut or a new person
breaks the link). Each face's landmarks are then replaced by a Gaussian-weighted average
over the linked faces within `radius` frames on both sides. The window is centred, so
steady motion is not delayed; only the frame-to-frame jitter is averaged away.
"""
from __future__ import annotations

import numpy as np

from core.facelib.face_finder import inter_ocular

FrameFaces = list[np.ndarray]      # the (68, 2) landmarks of every face in one frame


def link_next(frames: list[FrameFaces]) -> list[list[int | None]]:
    """For each face of frame i, the index of the same face in frame i+1 (or None)."""
    links: list[list[int | None]] = []
    for cur, nxt in zip(frames, frames[1:] + [[]]):
        row: list[int | None] = [None] * len(cur)
        if cur and nxt:
            c = np.array([f.mean(0) for f in cur])
            n = np.array([f.mean(0) for f in nxt])
            dist = np.linalg.norm(c[:, None] - n[None], axis=2)
            for i in range(len(cur)):
                j = int(dist[i].argmin())
                if int(dist[:, j].argmin()) == i and dist[i, j] < 0.5 * inter_ocular(cur[i]):
                    row[i] = j
        links.append(row)
    return links


def smooth_landmarks(frames: list[FrameFaces], radius: int = 3, sigma: float | None = None) -> list[FrameFaces]:
    """Smoothed copy of `frames` (same structure)."""
    sigma = sigma or max(radius / 2.0, 0.5)
    nxt = link_next(frames)
    prev: list[list[int | None]] = [[None] * len(f) for f in frames]
    for i, row in enumerate(nxt[:-1]):
        for a, b in enumerate(row):
            if b is not None:
                prev[i + 1][b] = a
    out: list[FrameFaces] = []
    for i, faces in enumerate(frames):
        smoothed = []
        for a, lm in enumerate(faces):
            acc, wsum = lm.astype(np.float64), 1.0
            for direction, links in ((1, nxt), (-1, prev)):
                j, k = i, a
                for step in range(1, radius + 1):
                    k = links[j][k]
                    if k is None:
                        break
                    j += direction
                    w = float(np.exp(-0.5 * (step / sigma) ** 2))
                    acc += w * frames[j][k]
                    wsum += w
            smoothed.append((acc / wsum).astype(np.float32))
        out.append(smoothed)
    return out
