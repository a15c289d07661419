"""Sorting faces by who they are: `id-ref` (like a reference person) and `id-group` (by person).

Both use dlib's identity embedding (core/facelib/identity.py); two faces whose embeddings
are less than 0.6 apart are the same person by dlib's calibration. DeepFaceLab has no
identity sort (its VGGFace one was left commented out); these clean a faceset that caught
other people: `id-ref` trashes everyone who is not the reference person, `id-group`
makes each person's faces contiguous so a whole group can be deleted at once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from core.errors import VisageError

MAX_LINKAGE = 8000           # above this many faces, cluster a sample and assign the rest


def reference_embeddings(refs: Sequence[str | Path]) -> np.ndarray:
    """(m, 128) embeddings of the reference photos, aligned faces, or folders of them.

    An aligned face (a JPEG with Visage metadata) is embedded from its stored landmarks; any
    other image is searched for its largest face.
    """
    from core.facelib.face_meta import extract
    from core.facelib.identity import IdentityEncoder
    from core.fileio import list_images
    files: list[Path] = []
    for ref in refs:
        ref = Path(ref)
        if ref.is_dir():
            found = list_images(ref)
            if not found:
                raise VisageError(f"reference folder {ref} holds no images")
            files.extend(found)
        elif ref.is_file():
            files.append(ref)
        else:
            raise VisageError(f"reference photo not found: {ref}")
    if not files:
        raise VisageError("id-ref needs at least one reference photo: pass --ref PHOTO")
    encoder = IdentityEncoder()
    faces, photos = [], []
    for f in files:
        meta = None
        if f.suffix.lower() in (".jpg", ".jpeg"):
            try:
                meta = extract(f.read_bytes(), name=str(f))
            except (VisageError, OSError):
                meta = None
        (faces if meta is not None else photos).append(f)
    out = [encoder.embed_face_file(f) for f in faces]
    if photos:
        out.extend(encoder.embed_photos(photos))
    return np.stack(out)


def rank_by_reference(embeddings: np.ndarray, refs: np.ndarray, threshold: float) -> tuple[list[int], list[int], np.ndarray]:
    """(kept indices, most similar first; trashed indices; distances) for id-ref."""
    from core.facelib.identity import distance_to
    dist = distance_to(embeddings, refs)
    order = np.argsort(dist, kind="stable")
    keep = [int(i) for i in order if dist[i] <= threshold]
    trash = [int(i) for i in order if dist[i] > threshold]
    return keep, trash, dist


def _linkage_labels(emb: np.ndarray, threshold: float) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage
    if len(emb) == 1:
        return np.zeros(1, np.int64)
    z = linkage(emb.astype(np.float64), method="average", metric="euclidean")
    return fcluster(z, t=threshold, criterion="distance").astype(np.int64) - 1


def cluster_identities(emb: np.ndarray, threshold: float) -> np.ndarray:
    """A person label per embedding: average-linkage clusters cut at `threshold`.

    Average linkage (mean distance between two groups below the threshold) neither chains
    two people together through one ambiguous face, as single linkage can, nor splits one
    person's profile views off, as complete linkage does. Past MAX_LINKAGE faces the
    pairwise matrix would not fit in memory, so an even sample is clustered, every other
    face joins the nearest cluster centre within the threshold, and the faces left over
    are clustered the same way.
    """
    emb = np.asarray(emb, np.float64)
    n = len(emb)
    if n <= MAX_LINKAGE:
        return _linkage_labels(emb, threshold)
    sample = np.unique(np.linspace(0, n - 1, MAX_LINKAGE).astype(np.int64))
    sample_labels = _linkage_labels(emb[sample], threshold)
    centres = np.stack([emb[sample[sample_labels == k]].mean(0) for k in range(sample_labels.max() + 1)])
    labels = np.full(n, -1, np.int64)
    for i in range(0, n, 4096):
        d = np.linalg.norm(emb[i:i + 4096, None, :] - centres[None], axis=-1)
        near = d.argmin(1)
        labels[i:i + 4096] = np.where(d[np.arange(len(near)), near] <= threshold, near, -1)
    labels[sample] = sample_labels
    rest = np.flatnonzero(labels < 0)
    if rest.size:
        labels[rest] = cluster_identities(emb[rest], threshold) + labels.max() + 1
    return labels


def group_order(emb: np.ndarray, threshold: float) -> tuple[list[int], list[list[int]]]:
    """(order, groups): biggest group first, inside a group the faces nearest its centre first."""
    emb = np.asarray(emb, np.float64)
    labels = cluster_identities(emb, threshold)
    groups = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        dist = np.linalg.norm(emb[members] - emb[members].mean(0), axis=1)
        groups.append([int(i) for i in members[np.argsort(dist, kind="stable")]])
    groups.sort(key=lambda g: (-len(g), min(g)))
    return [i for g in groups for i in g], groups
