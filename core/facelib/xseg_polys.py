"""XSeg labels: include / exclude polygons in aligned-face pixels, and the mask they make.

A face's `seg_ie_polys` (see face_meta.py) is a list of `{"type": "include"|"exclude",
"points": [[x, y], ...]}`. Here they become `Poly` tuples (immutable, so the editor's undo
history can share them), and `polys_mask` rasterises them the way DeepFaceLab does:
every include is filled with 1 first, then every exclude cuts back to 0, so an exclude
always wins (a hand over the mouth stays out whatever order it was drawn in).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import cv2
import numpy as np

from core.errors import VisageError

KINDS = ("include", "exclude")
MIN_POINTS = 3                 # fewer points enclose no area


class Poly(NamedTuple):
    kind: str                                  # "include" or "exclude"
    points: tuple[tuple[float, float], ...]    # aligned-face pixels


def polys_from_meta(raw: Sequence[dict], name: str = "face") -> tuple[Poly, ...]:
    """`seg_ie_polys` as Polys; a polygon of under three points is a malformed label (one line)."""
    out = []
    for i, p in enumerate(raw):
        pts = tuple((float(x), float(y)) for x, y in p["points"])
        if p["type"] not in KINDS or len(pts) < MIN_POINTS:
            raise VisageError(f"{name}: XSeg polygon {i + 1} has {len(pts)} point(s) (at least {MIN_POINTS} "
                              "needed); fix it in `xseg editor` or drop the labels with `xseg remove-labels`")
        out.append(Poly(p["type"], pts))
    return tuple(out)


def polys_to_meta(polys: Sequence[Poly]) -> list[dict]:
    """Polys as `seg_ie_polys`; unfinished polygons (under three points) are not labels and are dropped."""
    return [{"type": p.kind, "points": [[float(x), float(y)] for x, y in p.points]}
            for p in polys if len(p.points) >= MIN_POINTS]


def polys_mask(shape: tuple[int, ...], polys: Sequence[Poly] | Sequence[dict]) -> np.ndarray:
    """float32 (H, W) mask of the polygons: includes filled with 1, then excludes cut to 0."""
    mask = np.zeros(shape[:2], np.float32)
    pairs = [(p.kind, p.points) if isinstance(p, Poly) else (p["type"], p["points"]) for p in polys]
    for kind, pts in sorted(pairs, key=lambda kp: kp[0] != "include"):
        if len(pts) >= MIN_POINTS:
            arr = np.round(np.asarray(pts, np.float64) * 16).astype(np.int32)   # 4 fractional bits
            cv2.fillPoly(mask, [arr], 1.0 if kind == "include" else 0.0, lineType=cv2.LINE_8, shift=4)
    return mask


def transform_polys(polys: Sequence[Poly], mat: np.ndarray) -> tuple[Poly, ...]:
    """Polys mapped through a 2x3 affine (a re-crop into another face type or size)."""
    out = []
    for p in polys:
        pts = np.asarray(p.points, np.float64) @ np.asarray(mat, np.float64)[:, :2].T + np.asarray(mat)[:, 2]
        out.append(Poly(p.kind, tuple((float(x), float(y)) for x, y in pts)))
    return tuple(out)
