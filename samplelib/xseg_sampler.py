"""XSeg training samples: labelled faces from both sets, augmented as DeepFaceLab's XSeg sampler.

Only faces that carry include/exclude polygons are training data (a face's own applied
mask would be its own teacher). Each is re-cropped once to the model's face type and
resolution through the one crop function (core/facelib/recrop.py's crop_matrix), with its polygons
rasterised in the same crop, and kept in memory; every draw then augments that crop:

- half the time the background (outside the label mask) is replaced by another labelled
  face turned by up to 180 degrees, with its own colour jitter, so the net learns the
  face's edge and not the set's background;
- random warp, rotation, scale, shift and flip, identical for the image and the mask;
- half the time each, a soft bright flare on the face and on the background;
- a random hue/saturation/value shift or per-channel levels (black, white, gamma);
- with 25 % chance each, inside a random faded circle: sharpen or blur, a nearest or
  bilinear down-and-up scale, JPEG compression.

With `paste_occluders` (an XSeg option; DeepFaceLab's sampler has no such step) a quarter
of the draws also get a labelled occluder of another face pasted on before the warp (copy-paste
augmentation, Ghiasi et al. 2021): the pixels inside that face's exclude polygons, turned,
scaled, flipped and colour-jittered, placed over a random point of this face's mask, and
the mask set to 0 under them. The labels' few occluders then appear at many places, sizes
and colours, so the net learns that whatever covers the face is not face.

A background thread fills a small queue while the train step runs (OpenCV and the step
both release the GIL); `wait_seconds` counts how long the trainer waited for samples.
"""
from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from core.errors import VisageError
from core.facelib.face_meta import extract
from core.facelib.face_type import FaceType
from core.facelib.xseg_polys import Poly, polys_from_meta, polys_mask, transform_polys
from core.imagelib.hsv import random_hsv_shift
from core.imagelib.warp import gen_warp_params, warp_by_params

NO_LABELS = ("no faces with XSeg polygons in {dirs}: label some faces first with `xseg editor` "
             "(step 5.XSeg) data_src/data_dst mask - edit)")


PASTE_CHANCE = 0.25             # share of draws that get another face's occluder pasted on (0.5 excluded
                                # no better and cost IoU at 2000 and 4000 iterations: README, XSeg masks)
PASTE_SCALE = (0.75, 1.25)      # its size relative to where it was labelled
MIN_OCCLUDER_SHARE = 0.002      # exclude regions smaller than this share of the crop are not pasted


class LabelledFace:
    __slots__ = ("name", "image", "mask", "exclude")

    def __init__(self, name: str, image: np.ndarray, mask: np.ndarray, exclude: np.ndarray | None = None):
        self.name, self.image, self.mask = name, image, mask
        self.exclude = exclude          # (res, res) 0/1: inside the face's exclude polygons; None without any


def exclude_region(polys, res: int) -> np.ndarray | None:
    """(res, res) 0/1 mask of the area inside the exclude polygons (already in crop pixels), or None."""
    cuts = [Poly("include", p.points) for p in polys if p.kind == "exclude"]
    return polys_mask((res, res), cuts) if cuts else None


def load_labelled(dirs: list[Path], face_type: FaceType, resolution: int) -> list[LabelledFace]:
    """Every face with polygons in `dirs`, cropped to (face_type, resolution): float32 BGR + (res, res, 1) mask."""
    from core.faceset_pak import read_faceset
    from samplelib.sample import sample_from_meta
    from samplelib.sample_processor import crop_matrix, resample
    faces = []
    for d in dict.fromkeys(Path(d).resolve() for d in dirs):       # one folder given as both sets is read once
        for path, data, entry in read_faceset(d):
            meta = extract(data, name=str(path))
            if meta is None or not meta.seg_ie_polys:
                continue
            polys = polys_from_meta(meta.seg_ie_polys, str(path))
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                raise VisageError(f"{path} cannot be decoded; remove or re-extract this face")
            sample = sample_from_meta(path, meta, img.shape[1], entry)
            mat = crop_matrix(sample, face_type, resolution)
            crop = resample(img, mat, resolution, border_replicate=True).astype(np.float32) / 255.0
            crop_polys = transform_polys(polys, mat)
            mask = polys_mask((resolution, resolution), crop_polys)
            faces.append(LabelledFace(Path(path).name, np.clip(crop, 0, 1), mask[..., None],
                                      exclude_region(crop_polys, resolution)))
    if not faces:
        raise VisageError(NO_LABELS.format(dirs=" or ".join(str(d) for d in dirs)))
    return faces


def _faded_circle(res: int, rng: np.random.Generator) -> np.ndarray:
    c = rng.uniform(0, res, 2)
    r = rng.uniform(res * 0.2, res * 0.7)
    yy, xx = np.mgrid[:res, :res]
    d = np.hypot(xx - c[0], yy - c[1]) / r
    return np.clip(1.0 - d, 0.0, 1.0).astype(np.float32)[..., None]


def _levels(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lo = rng.uniform(0.0, 0.25, 3).astype(np.float32)
    hi = rng.uniform(0.75, 1.0, 3).astype(np.float32)
    gamma = rng.uniform(0.6, 1.6, 3).astype(np.float32)
    return np.clip((np.clip(img - lo, 0, None) / (hi - lo)), 0, 1) ** gamma


def _flare(img: np.ndarray, where: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    res = img.shape[0]
    blob = _faded_circle(res, rng) ** 2 * rng.uniform(0.3, 0.9)
    return np.clip(img + blob * where * rng.uniform(0.6, 1.0, 3).astype(np.float32), 0, 1)


def _degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    res = img.shape[0]
    for kind in ("sharpen_blur", "rescale", "jpeg"):
        if rng.random() >= 0.25:
            continue
        if kind == "sharpen_blur":
            if rng.random() < 0.5:
                blur = cv2.GaussianBlur(img, (0, 0), 1.0)
                out = np.clip(img + (img - blur) * rng.uniform(0.5, 1.5), 0, 1)
            else:
                k = int(rng.integers(3, max(4, res // 16))) | 1
                kernel = np.zeros((k, k), np.float32)
                kernel[k // 2, :] = 1.0 / k
                rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
                kernel = cv2.warpAffine(kernel, rot, (k, k))
                out = cv2.GaussianBlur(cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6)), (0, 0), 0.8)
        elif kind == "rescale":
            small = max(8, int(res * rng.uniform(0.25, 0.7)))
            interp = cv2.INTER_NEAREST if rng.random() < 0.5 else cv2.INTER_LINEAR
            out = cv2.resize(cv2.resize(img, (small, small), interpolation=interp), (res, res), interpolation=interp)
        else:
            q = int(rng.integers(10, 60))
            enc = cv2.imencode(".jpg", (img * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, q])[1]
            out = cv2.imdecode(enc, cv2.IMREAD_COLOR).astype(np.float32) / 255.0
        c = _faded_circle(res, rng)
        img = img * (1 - c) + out.reshape(img.shape) * c
    return img


def _colour_jitter(img: np.ndarray, rng: np.random.Generator, hsv_power: float) -> np.ndarray:
    return random_hsv_shift(img, hsv_power, rng) if rng.random() < 0.5 else _levels(img, rng)


def occluder_donors(faces: list[LabelledFace]) -> list[LabelledFace]:
    """The faces whose exclude polygons cover at least MIN_OCCLUDER_SHARE of the crop: the occluders to paste."""
    out = []
    for f in faces:
        if f.exclude is not None and (f.exclude > 0.5).mean() >= MIN_OCCLUDER_SHARE:
            out.append(f)
    return out


def paste_occluder(img: np.ndarray, mask: np.ndarray, donor: LabelledFace, rng: np.random.Generator,
                   jitter: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`donor`'s exclude-region pixels pasted over a random point of `mask` (turned by up to 180 degrees, scaled
    by PASTE_SCALE, flipped half the time, colour-jittered): (image, mask with 0 under the paste, the 2x3 matrix
    from the donor's crop to this one)."""
    res = img.shape[0]
    ys, xs = np.nonzero(donor.exclude > 0.5)
    cx, cy = float(xs.mean()), float(ys.mean())
    fy, fx = np.nonzero(mask[..., 0] > 0.5)
    if len(fy):
        k = int(rng.integers(len(fy)))
        tx, ty = float(fx[k]), float(fy[k])
    else:
        tx, ty = rng.uniform(0, res, 2)
    mat = cv2.getRotationMatrix2D((cx, cy), rng.uniform(-180, 180), rng.uniform(*PASTE_SCALE))
    if rng.random() < 0.5:                                      # mirrored about the occluder's centre
        mat = mat @ np.array([[-1.0, 0.0, 2 * cx], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    mat[:, 2] += (tx - cx, ty - cy)
    alpha = cv2.warpAffine(donor.exclude, mat, (res, res), flags=cv2.INTER_LINEAR, borderValue=0)[..., None] > 0.5
    patch = cv2.warpAffine(donor.image, mat, (res, res), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if jitter:
        patch = _colour_jitter(patch, rng, 0.3)
    return np.where(alpha, patch, img), np.where(alpha, 0.0, mask).astype(np.float32), mat


def augment(face: LabelledFace, pool: list[LabelledFace], rng: np.random.Generator,
            donors: list[LabelledFace] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One training pair (image, mask) from `face`, with a background from `pool` half the time and, given
    `donors`, another face's labelled occluder pasted on with PASTE_CHANCE."""
    img, mask = face.image, face.mask
    res = img.shape[0]
    if len(pool) > 1 and rng.random() < 0.5:
        other = pool[int(rng.integers(len(pool)))]
        rot = cv2.getRotationMatrix2D((res / 2, res / 2), rng.uniform(-180, 180), 1.0)
        bg = cv2.warpAffine(other.image, rot, (res, res), borderMode=cv2.BORDER_REFLECT)
        bg = _colour_jitter(bg, rng, 0.3)
        img = img * mask + bg * (1 - mask)
    others = [d for d in donors or () if d is not face]
    if others and rng.random() < PASTE_CHANCE:
        img, mask, _ = paste_occluder(img, mask, others[int(rng.integers(len(others)))], rng)
    params = gen_warp_params(res, True, rng, scale_range=(-0.05, 0.05))
    img = warp_by_params(params, img, True, True, True, border_replicate=True, interpolation=cv2.INTER_LINEAR)
    mask = warp_by_params(params, mask, True, True, True, border_replicate=False, interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        img = _flare(img, mask, rng)
    if rng.random() < 0.5:
        img = _flare(img, 1 - mask, rng)
    img = _colour_jitter(img, rng, 0.25)
    img = _degrade(img, rng)
    return np.clip(img, 0, 1).astype(np.float32), (mask > 0.5).astype(np.float32)


class XSegBatches:
    """Endless augmented (images, masks) batches from the labelled faces of both sets."""

    def __init__(self, dirs: list[Path], face_type: FaceType, resolution: int, batch_size: int, seed: int = 0,
                 prefetch: int = 4, paste_occluders: bool = False):
        self.faces = load_labelled(dirs, face_type, resolution)
        self.donors = occluder_donors(self.faces) if paste_occluders else []
        self.batch_size, self.wait_seconds = batch_size, 0.0
        self._rng = np.random.default_rng(seed)
        self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._fill, name="xseg-samples", daemon=True)
        self._thread.start()

    def make(self, rng: np.random.Generator) -> SimpleNamespace:
        picks = rng.integers(len(self.faces), size=self.batch_size)
        pairs = [augment(self.faces[i], self.faces, rng, self.donors) for i in picks]
        return SimpleNamespace(images=np.stack([p[0] for p in pairs]), masks=np.stack([p[1] for p in pairs]))

    def _fill(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self.make(self._rng)
                while not self._stop.is_set():
                    try:
                        self._queue.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        pass
        except BaseException as e:        # handed to the trainer's thread on its next draw
            self._error = e

    def __iter__(self):
        return self

    def __next__(self) -> SimpleNamespace:
        t0 = time.perf_counter()
        while True:
            if self._error is not None:
                raise self._error
            try:
                batch = self._queue.get(timeout=0.2)
                break
            except queue.Empty:
                continue
        self.wait_seconds += time.perf_counter() - t0
        return batch

    def preview_batch(self, n: int) -> SimpleNamespace:
        """The first `n` labelled faces, unaugmented, with their label masks (both as `.src` and `.dst`)."""
        picks = np.linspace(0, len(self.faces) - 1, min(n, len(self.faces))).round().astype(int)
        side = SimpleNamespace(target=np.stack([self.faces[i].image for i in picks]),
                               mask=np.stack([self.faces[i].mask for i in picks]))
        return SimpleNamespace(src=side, dst=side)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
