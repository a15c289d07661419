"""Every `sort --by` method: what it measures, which way it orders, what it trashes.

Each method takes the loaded `FaceRecord`s (features already measured in the workers)
and returns the new order and the faces to trash; the command moves the files.
Directions are DeepFaceLab's: blur, motion-blur, face-yaw, face-pitch, source rect size,
brightness and hue sort descending (largest value first), black ascending (fewest black
pixels first), hist-dissim most dissimilar first. The menu order and texts are its
`sort_func_methods`, with the identity methods added at the end.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from core.fileio import natural_key
from core.sorting.features import FaceRecord


@dataclass
class SortOptions:
    target: int = 2000                     # final-by-*: faces to keep
    similar: bool = True                   # absdiff: similar first (else dissimilar first)
    threshold: float = 0.6                 # id-*: identity distance for "same person"
    references: np.ndarray | None = None   # id-ref: (m, 128) embeddings


@dataclass
class SortResult:
    order: list[FaceRecord]
    trash: list[FaceRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    change: bool = True                    # False: leave every file as it is (oneface found nothing)
    groups: list[int] | None = None        # id-group: group sizes, in file order


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    features: tuple[str, ...]
    run: Callable[[list[FaceRecord], SortOptions], SortResult]


def _by_value(feature: str, descending: bool = True) -> Callable[[list[FaceRecord], SortOptions], SortResult]:
    def run(records: list[FaceRecord], opts: SortOptions) -> SortResult:
        return SortResult(sorted(records, key=lambda r: r.values[feature], reverse=descending))
    return run


def _by_attr(key: Callable[[FaceRecord], float]) -> Callable[[list[FaceRecord], SortOptions], SortResult]:
    def run(records: list[FaceRecord], opts: SortOptions) -> SortResult:
        return SortResult(sorted(records, key=key, reverse=True))
    return run


def _stack(records: Sequence[FaceRecord], feature: str) -> np.ndarray:
    return np.stack([r.values[feature] for r in records])


def sort_hist(records: list[FaceRecord], opts: SortOptions) -> SortResult:
    from core.sorting.ordering import bhattacharyya_bgr_block, distance_matrix, greedy_chain
    with distance_matrix(_stack(records, "hist_bgr"), bhattacharyya_bgr_block) as mat:
        order = greedy_chain(mat)
    return SortResult([records[i] for i in order])


def sort_hist_dissim(records: list[FaceRecord], opts: SortOptions) -> SortResult:
    from core.sorting.ordering import bhattacharyya_block, total_distances
    score = total_distances(_stack(records, "hist_gray_masked"), bhattacharyya_block)
    order = np.argsort(-score, kind="stable")
    return SortResult([records[i] for i in order])


def sort_absdiff(records: list[FaceRecord], opts: SortOptions) -> SortResult:
    from core.sorting.ordering import distance_matrix, greedy_chain, mean_absdiff_block
    with distance_matrix(_stack(records, "thumb"), mean_absdiff_block) as mat:
        order = greedy_chain(mat, similar=opts.similar)
    return SortResult([records[i] for i in order],
                      notes=[f"Ordered {'similar' if opts.similar else 'dissimilar'} faces next to each other."])


def sort_origname(records: list[FaceRecord], opts: SortOptions) -> SortResult:
    return SortResult(sorted(records, key=lambda r: (natural_key(r.source_filename), natural_key(r.path.name))))


def sort_oneface(records: list[FaceRecord], opts: SortOptions) -> SortResult:
    per_frame = Counter(r.source_filename for r in records)
    trash = [r for r in records if per_frame[r.source_filename] > 1]
    if not trash:
        return SortResult(records, change=False,
                          notes=["No frame has more than one face; nothing was changed."])
    frames = sum(1 for c in per_frame.values() if c > 1)
    return SortResult([r for r in records if per_frame[r.source_filename] == 1], trash,
                      notes=[f"Found {len(trash)} faces from {frames} frames with more than one face."])


def _final(quality: Callable[[FaceRecord], float]) -> Callable[[list[FaceRecord], SortOptions], SortResult]:
    def run(records: list[FaceRecord], opts: SortOptions) -> SortResult:
        from core.sorting.best_faces import select_best
        keep, trash = select_best(np.array([r.yaw for r in records]), np.array([r.pitch for r in records]),
                                  np.array([quality(r) for r in records]), _stack(records, "hist_gray"),
                                  opts.target)
        return SortResult([records[i] for i in keep], [records[i] for i in trash],
                          notes=[f"Kept the best {len(keep)} faces (target {opts.target}); "
                                 f"{len(trash)} to trash."])
    return run


def sort_id_ref(records: list[FaceRecord], opts: SortOptions) -> SortResult:
    from core.sorting.by_identity import rank_by_reference
    if opts.references is None or not len(opts.references):
        raise ValueError("id-ref needs reference embeddings")
    keep, trash, dist = rank_by_reference(_stack(records, "embedding"), opts.references, opts.threshold)
    return SortResult([records[i] for i in keep], [records[i] for i in trash],
                      notes=[f"{len(keep)} faces match the reference (distance <= {opts.threshold:g}), "
                             f"most similar first; {len(trash)} faces of other people to trash."])


def sort_id_group(records: list[FaceRecord], opts: SortOptions) -> SortResult:
    from core.sorting.by_identity import group_order
    order, groups = group_order(_stack(records, "embedding"), opts.threshold)
    notes = [f"{len(groups)} {'person' if len(groups) == 1 else 'people'} found (threshold {opts.threshold:g}), "
             "biggest group first:"]
    start = 0
    for k, g in enumerate(groups):
        notes.append(f"  group {k + 1}: {len(g)} faces, files {start:05d} .. {start + len(g) - 1:05d}")
        start += len(g)
    return SortResult([records[i] for i in order], notes=notes, groups=[len(g) for g in groups])


METHODS: tuple[Method, ...] = (
    Method("blur", "blur", ("sharpness",), _by_value("sharpness")),
    Method("motion-blur", "motion blur", ("motion_blur",), _by_value("motion_blur")),
    Method("face-yaw", "face yaw direction", (), _by_attr(lambda r: r.yaw)),
    Method("face-pitch", "face pitch direction", (), _by_attr(lambda r: r.pitch)),
    Method("face-source-rect-size", "face rect size in source image", (), _by_attr(lambda r: r.rect_area)),
    Method("hist", "histogram similarity", ("hist_bgr",), sort_hist),
    Method("hist-dissim", "histogram dissimilarity", ("hist_gray_masked",), sort_hist_dissim),
    Method("brightness", "brightness", ("brightness",), _by_value("brightness")),
    Method("hue", "hue", ("hue",), _by_value("hue")),
    Method("black", "amount of black pixels", ("black",), _by_value("black", descending=False)),
    Method("origname", "original filename", (), sort_origname),
    Method("oneface", "one face in image", (), sort_oneface),
    Method("absdiff", "absolute pixel difference", ("thumb",), sort_absdiff),
    Method("final-by-blur", "best faces", ("sharpness", "hist_gray"), _final(lambda r: r.values["sharpness"])),
    Method("final-by-size", "best faces faster (by source rect size)", ("hist_gray",), _final(lambda r: r.rect_area)),
    Method("id-ref", "identity: similarity to reference photos", ("embedding",), sort_id_ref),
    Method("id-group", "identity: group faces by person", ("embedding",), sort_id_group),
)
BY_NAME = {m.name: m for m in METHODS}
NAMES = tuple(BY_NAME)
