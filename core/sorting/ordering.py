"""Pairwise face distances and the orders built from them (hist, hist-dissim, absdiff).

The N x N distance matrix is filled in blocks so the working memory stays bounded; past
`IN_MEMORY_FACES` faces the matrix itself lives in a temporary memory-mapped file (as
DeepFaceLab keeps its absdiff matrix in an HDF5 file), deleted afterwards.
Histograms arrive as square roots of normalised histograms, so the Bhattacharyya
distance OpenCV's `compareHist(HISTCMP_BHATTACHARYYA)` gives is sqrt(1 - a.b): a matrix
product instead of N^2 Python calls.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

BLOCK = 512                  # rows per block of the distance computation
IN_MEMORY_FACES = 6000       # up to this many faces the matrix (144 MB) stays in RAM

BlockFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def bhattacharyya_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances between rows of a and rows of b (both sqrt-normalised histograms)."""
    sim = np.clip(a.astype(np.float32) @ b.astype(np.float32).T, 0.0, 1.0)
    return np.sqrt(1.0 - sim)


def bhattacharyya_bgr_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum of the B, G and R histogram distances (rows are three 256-bin histograms end to end)."""
    return sum(bhattacharyya_block(a[:, c * 256:(c + 1) * 256], b[:, c * 256:(c + 1) * 256])
               for c in range(3))


def mean_absdiff_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute pixel difference between rows of a and rows of b (uint8 thumbnails)."""
    import cv2
    # OpenCV's Python binding only runs batchDistance in its K-nearest form: ask for all of
    # b (sorted per row) and put each distance back in its column.
    d, idx = cv2.batchDistance(np.ascontiguousarray(a, np.uint8), np.ascontiguousarray(b, np.uint8),
                               cv2.CV_32F, normType=cv2.NORM_L1, K=len(b))
    out = np.empty((len(a), len(b)), np.float32)
    np.put_along_axis(out, idx, d, axis=1)
    return out / a.shape[1]


@contextmanager
def distance_matrix(features: np.ndarray, block_fn: BlockFn) -> Iterator[np.ndarray]:
    """The symmetric N x N float32 distance matrix of `features` rows (memory-mapped when large)."""
    n = len(features)
    tmp_path = None
    if n <= IN_MEMORY_FACES:
        mat = np.empty((n, n), np.float32)
    else:
        fd, tmp_path = tempfile.mkstemp(prefix="visage_sort_", suffix=".f32")
        os.close(fd)
        mat = np.memmap(tmp_path, np.float32, "w+", shape=(n, n))
    try:
        for i in range(0, n, BLOCK):
            for j in range(i, n, BLOCK):
                d = block_fn(features[i:i + BLOCK], features[j:j + BLOCK])
                mat[i:i + BLOCK, j:j + BLOCK] = d
                mat[j:j + BLOCK, i:i + BLOCK] = d.T
        yield mat
    finally:
        if tmp_path is not None:
            del mat
            os.unlink(tmp_path)


def greedy_chain(mat: np.ndarray, start: int = 0, similar: bool = True) -> list[int]:
    """Start at `start`, then always step to the nearest (or, similar=False, farthest) unvisited item.

    DeepFaceLab's hist and absdiff orders: near-duplicates end up next to each other.
    """
    n = mat.shape[0]
    if n == 0:
        return []
    visited = np.zeros(n, bool)
    order = [start]
    visited[start] = True
    fill = np.inf if similar else -np.inf
    cur = start
    for _ in range(n - 1):
        row = np.array(mat[cur], np.float64)
        row[visited] = fill
        cur = int(np.argmin(row) if similar else np.argmax(row))
        visited[cur] = True
        order.append(cur)
    return order


def total_distances(features: np.ndarray, block_fn: BlockFn) -> np.ndarray:
    """For each row, the sum of its distances to every other row (the diagonal is 0)."""
    n = len(features)
    out = np.zeros(n, np.float64)
    for i in range(0, n, BLOCK):
        for j in range(0, n, BLOCK):
            d = block_fn(features[i:i + BLOCK], features[j:j + BLOCK]).astype(np.float64)
            if i == j:
                np.fill_diagonal(d, 0.0)
            out[i:i + BLOCK] += d.sum(axis=1)
    return out


def farthest_first(features: np.ndarray, quality: np.ndarray, block_fn: BlockFn) -> list[int]:
    """Order for diversity weighted by quality: the best item first, then each time the item
    whose distance to the nearest picked item, times its quality relative to the best, is largest.

    Used by the final (best faces) methods inside a pose bin: among faces of similar quality
    the most different comes next, while a blurred copy (quality near 0) or a near-duplicate
    (distance near 0) of a picked face comes last.
    """
    n = len(features)
    if n == 0:
        return []
    quality = np.asarray(quality, np.float64)
    top = quality.max()
    weight = np.clip(quality / top, 0.0, 1.0) if top > 0 else np.ones(n)
    first = int(np.argmax(quality))
    order = [first]
    nearest = block_fn(features, features[first:first + 1])[:, 0].astype(np.float64)
    for _ in range(n - 1):
        score = nearest * weight
        score[order] = -np.inf
        cand = np.flatnonzero(score == score.max())      # ties: the better-quality face
        nxt = int(cand[np.argmax(quality[cand])])
        order.append(nxt)
        nearest = np.minimum(nearest, block_fn(features, features[nxt:nxt + 1])[:, 0])
    return order
