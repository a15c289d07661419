"""Temporal stability: flicker inside the face and landmark jitter, each beside the dst's own.

Flicker: for each pair of neighbouring frames, the mean absolute change (0-255, averaged
over B, G, R) of the pixels that are face interior in both frames, on the merged and on the
dst frames; flicker_ratio = sum over pairs (merged) / sum (dst). Head motion changes both
alike, so 1.0 is "as steady as the footage" and a face whose colour or texture pumps from
frame to frame scores above it.

Jitter: the second difference of each landmark along a face's track, |p[t] - (p[t-1] +
p[t+1]) / 2|, averaged over the 68 points and the frames, in outer-eye distances. Smooth
head motion has a small second difference, a shaking face a large one. jitter_ratio =
merged / dst; `wobble` is the same second difference of (merged - dst) landmarks, the
face sliding on the head with the head's own motion removed (0 for the dst itself).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.evaluate.regions import outer_eye_distance


@dataclass
class FlickerMeter:
    """Fed one frame at a time, in order; a gap (frame without faces, other size) starts afresh."""
    merged: list[float] = field(default_factory=list)     # per neighbouring pair
    dst: list[float] = field(default_factory=list)
    pairs: list[int] = field(default_factory=list)        # index of the pair's second frame
    _last: tuple | None = None

    def feed(self, index: int, merged: np.ndarray | None, dst: np.ndarray | None,
             interior: np.ndarray | None) -> None:
        if merged is None or interior is None or not interior.any():
            self._last = None
            return
        last, self._last = self._last, (index, merged, dst, interior)
        if last is None or last[1].shape != merged.shape or last[0] != index - 1:
            return
        both = interior & last[3]
        if not both.any():
            return
        self.merged.append(_change(last[1], merged, both))
        self.dst.append(_change(last[2], dst, both))
        self.pairs.append(index)

    def summary(self) -> dict:
        m, d = float(np.sum(self.merged)), float(np.sum(self.dst))
        n = len(self.merged)
        return {"pairs": n,
                "flicker_merged": m / n if n else None,
                "flicker_dst": d / n if n else None,
                "flicker_ratio": m / max(d, 1e-6) if n else None}


def _change(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    diff = np.abs(a[where].astype(np.int16) - b[where].astype(np.int16))
    return float(diff.mean())


@dataclass
class TrackPoint:
    frame: int                   # index in the evaluated sequence
    dst: np.ndarray              # (68, 2) re-found dst landmarks
    merged: np.ndarray | None    # (68, 2) re-found merged landmarks, None when not found


def link_tracks(faces_per_frame: list[list[TrackPoint]]) -> list[list[TrackPoint]]:
    """Follow faces through neighbouring frames: a face continues the nearest face of the previous
    frame when their centres are less than one outer-eye distance apart (each used once)."""
    tracks: list[list[TrackPoint]] = []
    open_tracks: list[list[TrackPoint]] = []
    for faces in faces_per_frame:
        still_open = []
        free = list(open_tracks)
        for p in faces:
            centre, iod = p.dst.mean(0), outer_eye_distance(p.dst)
            best = min(free, key=lambda t: np.linalg.norm(t[-1].dst.mean(0) - centre), default=None)
            if (best is not None and best[-1].frame == p.frame - 1
                    and np.linalg.norm(best[-1].dst.mean(0) - centre) < iod):
                free.remove(best)
                best.append(p)
                still_open.append(best)
            else:
                tracks.append([p])
                still_open.append(tracks[-1])
        open_tracks = still_open
    return tracks


def _second_difference(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    return float(np.linalg.norm(b - (a + c) / 2.0, axis=1).mean())


def jitter(tracks: list[list[TrackPoint]]) -> tuple[dict, list[tuple[int, float, float]]]:
    """(stability.jitter_* figures, per middle frame (index, merged, dst) jitter) over every run of
    three neighbouring frames of a track that has merged landmarks in all three."""
    merged, dst, wobble, frames = [], [], [], []
    for track in tracks:
        for a, b, c in zip(track, track[1:], track[2:]):
            if a.merged is None or b.merged is None or c.merged is None:
                continue
            unit = outer_eye_distance(b.dst)
            merged.append(_second_difference(a.merged, b.merged, c.merged) / unit)
            dst.append(_second_difference(a.dst, b.dst, c.dst) / unit)
            wobble.append(_second_difference(a.merged - a.dst, b.merged - b.dst, c.merged - c.dst) / unit)
            frames.append(b.frame)
    n = len(merged)
    if not n:
        return {"triples": 0, "jitter_merged": None, "jitter_dst": None, "jitter_ratio": None, "wobble": None}, []
    return {"triples": n, "jitter_merged": float(np.mean(merged)), "jitter_dst": float(np.mean(dst)),
            "jitter_ratio": float(np.mean(merged) / max(np.mean(dst), 1e-9)),
            "wobble": float(np.mean(wobble))}, list(zip(frames, merged, dst))
