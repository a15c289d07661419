"""DeepFaceLab's "best faces" selection (sort --by final-by-blur / final-by-size).

A training set wants every head pose covered by sharp, varied faces, not 2000 copies of
the most common pose. As in DeepFaceLab: faces go into 128 yaw bins over [-1.2, 1.2];
each bin gets an even share of the target; in each bin only the sharpest 10x its share
(or, final-by-size, the largest source rectangles) stay candidates; the candidates are
split into pitch bins (as many as the bin's share) and picked round-robin over the pitch
bins, each pitch bin ordered for diversity by grey-histogram distance.

Two deliberate differences, so that `--target N` keeps exactly min(N, faces) faces:
- shares are handed out by water-filling (bins with fewer faces than their share pass
  the rest on), instead of DeepFaceLab's round(N / 128) per bin, which keeps nothing for
  N < 64 and rarely hits N;
- the few slots left after the even split go to bins whose next face is still a good one
  (not to a bin holding only a blurred leftover), spread evenly over the yaw range;
- inside a pitch bin the best face comes first and each next face is the one farthest (by
  histogram) from those already picked, weighted by its quality relative to the best,
  instead of DeepFaceLab's "largest summed distance", which favours a blurred copy
  (blurring changes the histogram) over a sharp face.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from core.sorting.ordering import bhattacharyya_block, farthest_first

YAW_BINS = 128
YAW_LIMIT = 1.2              # DeepFaceLab: "maximum yaw for 2DFAN landmarks is -1.2..+1.2"
CANDIDATES_PER_SLOT = 10     # keep the best 10x the bin's share as candidates
GOOD_SHARE = 0.5             # a face at least half the median quality is "good" (rounding extras go there)


def share_out(counts: Sequence[int], target: int, good: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Split `target` over bins as evenly as possible, never more than a bin holds.

    The total is exactly min(target, sum(counts)). A remainder too small to give every open
    bin one more goes first to bins whose next face is a good one (`good[b][k]`: is the
    k-th best face of bin b good), then to the bins with the most faces left, spread
    evenly over the yaw range among equals (so a small target still spans left to right).
    """
    counts = np.asarray(counts, np.int64)
    quota = np.zeros_like(counts)
    remaining = int(min(target, counts.sum()))
    while remaining > 0:
        open_bins = np.flatnonzero(quota < counts)
        share = remaining // len(open_bins)
        if share == 0:
            left = counts[open_bins] - quota[open_bins]
            next_good = np.array([True if good is None else bool(good[b][quota[b]]) for b in open_bins])
            chosen = list(_spread_pick(open_bins[next_good], left[next_good], remaining))
            chosen += list(_spread_pick(open_bins[~next_good], left[~next_good], remaining - len(chosen)))
            quota[np.array(chosen, np.int64)] += 1
            break
        add = np.minimum(share, counts[open_bins] - quota[open_bins])
        quota[open_bins] += add
        remaining -= int(add.sum())
    return quota


def _spread_pick(bins: np.ndarray, left: np.ndarray, k: int) -> list[int]:
    """Up to k of `bins`: fullest first, evenly spread over the yaw range among equals."""
    chosen: list[int] = []
    for level in sorted(set(left.tolist()), reverse=True):
        need = k - len(chosen)
        if need <= 0:
            break
        at_level = bins[left == level]
        if len(at_level) <= need:
            chosen.extend(at_level.tolist())
        else:
            chosen.extend(at_level[np.round(np.linspace(0, len(at_level) - 1, need)).astype(int)].tolist())
    return chosen


def _bin_index(values: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    edges = np.linspace(lo, hi, bins + 1)
    return np.clip(np.digitize(values, edges) - 1, 0, bins - 1)


def select_best(yaw: np.ndarray, pitch: np.ndarray, quality: np.ndarray, hists: np.ndarray,
                target: int) -> tuple[list[int], list[int]]:
    """(kept indices in yaw-bin order, trashed indices) for the faces described by the arrays.

    `hists` are sqrt-normalised grey histograms (rows), `quality` is higher-is-better.
    """
    yaw, pitch, quality = (np.asarray(a, np.float64) for a in (yaw, pitch, quality))
    n = len(yaw)
    # DeepFaceLab bins -yaw, so the kept faces come out in its face-yaw order (descending yaw).
    which = _bin_index(-yaw, -YAW_LIMIT, YAW_LIMIT, YAW_BINS)
    ranked_bins = [idx[np.argsort(-quality[idx], kind="stable")]
                   for idx in (np.flatnonzero(which == g) for g in range(YAW_BINS))]
    good_floor = GOOD_SHARE * float(np.median(quality)) if n else 0.0
    quota = share_out([len(b) for b in ranked_bins], target, [quality[b] >= good_floor for b in ranked_bins])
    keep: list[int] = []
    trash: list[int] = []
    for ranked, q in zip(ranked_bins, quota):
        if ranked.size == 0:
            continue
        q = int(q)
        if q == 0:
            trash.extend(ranked.tolist())
            continue
        cand, rest = ranked[:CANDIDATES_PER_SLOT * q], ranked[CANDIDATES_PER_SLOT * q:]
        trash.extend(rest.tolist())
        pitch_bin = _bin_index(pitch[cand], -math.pi / 2, math.pi / 2, q)
        queues = []
        for pb in range(q):
            members = cand[pitch_bin == pb]
            if members.size:
                order = farthest_first(hists[members], quality[members], bhattacharyya_block)
                queues.append(list(members[order]))
        keep.extend(_round_robin(queues, q, quality >= good_floor))
        for queue in queues:
            trash.extend(int(i) for i in queue)
    assert len(keep) + len(trash) == n
    return keep, trash


def _round_robin(queues: list[list[int]], q: int, good: np.ndarray) -> list[int]:
    """Take q faces one pitch bin at a time (DeepFaceLab's order), good faces before poor ones.

    Picked faces are removed from the queues; what stays there is trash.
    """
    picked: list[int] = []
    for allow_poor in (False, True):
        progress = True
        while len(picked) < q and progress:
            progress = False
            for queue in queues:
                if len(picked) == q:
                    break
                k = next((k for k, i in enumerate(queue) if allow_poor or good[i]), None)
                if k is not None:
                    picked.append(int(queue.pop(k)))
                    progress = True
    return picked
