"""Training batches from worker processes, so the train step never waits on the CPU.

Each side (src, dst) has its own worker processes (spawn context, SIGINT ignored, OpenCV
single-threaded so N workers use N cores) that decode, crop, augment and stack whole
batches into a bounded queue; the trainer's `next()` only unpickles a ready batch. The
queue holds a few batches (`prefetch`), enough to absorb a slow sample without letting the
workers run far ahead of training. `wait_seconds` counts the time `next()` was blocked,
which the trainer reports as the sample-wait share of a step.

Worker count: `workers=0` gives max(1, cpu_count // 2) per side (1 + 1 on a 2-core
machine), because the train step itself wants the other half of the cores. DeepFaceLab
adds 50 % more src workers when ct_mode is on; here the per-side count is the same and
`workers` can be raised when `bench train` shows a sample-wait share.

Sampling: shuffled epochs per worker (each worker walks its own permutation of the whole
set), or with `uniform_yaw` a yaw bin first (128 bins over ±1.2 rad) and then a face in it,
so rare profile faces are seen as often as frontal ones.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from core.errors import VisageError
from samplelib.sample import Sample, load_samples
from samplelib.sample_processor import SampleConfig, check_face_type, load_image, process_sample, reference_face

YAW_BINS = 128
YAW_LIMIT = 1.2


@dataclass
class SideBatch:
    """One side's batch: float32 NHWC arrays in [0, 1]."""
    warped: np.ndarray      # (B, R, R, 3)
    target: np.ndarray      # (B, R, R, 3)
    mask: np.ndarray        # (B, R, R, 1)
    em_mask: np.ndarray     # (B, R, R, 1)


@dataclass
class Batch:
    src: SideBatch
    dst: SideBatch


def yaw_bins(yaws: Sequence[float], bins: int = YAW_BINS, limit: float = YAW_LIMIT) -> list[np.ndarray]:
    """Sample indices of each non-empty yaw bin (yaws beyond ±limit fall in the end bins)."""
    edges = np.linspace(-limit, limit, bins + 1)
    which = np.clip(np.digitize(np.asarray(yaws, np.float64), edges) - 1, 0, bins - 1)
    order = np.argsort(which, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(which[order])) + 1)
    return [g for g in groups if g.size]


class SamplePicker:
    """Endless stream of sample indices: shuffled epochs, or uniform over yaw bins."""

    def __init__(self, samples: Sequence[Sample], rng: np.random.Generator, uniform_yaw: bool = False) -> None:
        self._rng = rng
        self._n = len(samples)
        self._bins = yaw_bins([s.yaw for s in samples]) if uniform_yaw else None
        self._epoch: list[int] = []

    def next(self) -> int:
        if self._bins is not None:
            group = self._bins[int(self._rng.integers(len(self._bins)))]
            return int(group[int(self._rng.integers(group.size))])
        if not self._epoch:
            self._epoch = self._rng.permutation(self._n).tolist()
        return self._epoch.pop()


@dataclass
class _WorkerSpec:
    """Everything a worker needs, pickled once at start (own objects only, no user data)."""
    samples: list[Sample]
    cfg: SampleConfig
    batch_size: int
    seed: np.random.SeedSequence
    uniform_yaw: bool
    ct_samples: list[Sample] | None     # the other side, colour references for ct_mode


def make_side_batch(spec: _WorkerSpec, picker: SamplePicker, rng: np.random.Generator) -> SideBatch:
    """Decode and process `batch_size` samples into stacked arrays."""
    outs = []
    for _ in range(spec.batch_size):
        sample = spec.samples[picker.next()]
        image, xseg = load_image(sample)
        ref = None
        if spec.ct_samples:
            ref = reference_face(spec.ct_samples[int(rng.integers(len(spec.ct_samples)))], spec.cfg)
        outs.append(process_sample(sample, image, spec.cfg, rng, ct_ref=ref, xseg_png=xseg))
    return SideBatch(*(np.stack(arrays) for arrays in zip(*outs)))


def _worker_main(spec: _WorkerSpec, out_q: mp.Queue, stop: mp.Event) -> None:
    """Worker loop: make batches until told to stop; report errors as one message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # the parent handles Ctrl-C
    out_q.cancel_join_thread()                        # exit without flushing on close()
    import cv2
    cv2.setNumThreads(1)
    rng = np.random.default_rng(spec.seed)
    try:
        picker = SamplePicker(spec.samples, rng, spec.uniform_yaw)
        while not stop.is_set():
            batch = make_side_batch(spec, picker, rng)
            while not stop.is_set():
                try:
                    out_q.put(("batch", batch), timeout=0.2)
                    break
                except queue.Full:
                    continue
    except VisageError as e:
        out_q.put(("error", str(e)))
    except Exception:                                   # a bug: keep the traceback
        out_q.put(("error", "sample worker crashed:\n" + traceback.format_exc()))


def default_workers() -> int:
    return max(1, (os.cpu_count() or 1) // 2)


class TrainingBatches:
    """Iterator of `Batch`es for one src/dst pair; use as a context manager or call close()."""

    def __init__(self, src_dir: str | Path, dst_dir: str | Path, cfg_src: SampleConfig, cfg_dst: SampleConfig,
                 batch_size: int, workers: int = 0, seed: int | None = None, uniform_yaw: bool = False,
                 prefetch: int = 4) -> None:
        if batch_size < 1:
            raise VisageError(f"batch size must be at least 1, got {batch_size}")
        self.src_samples = load_samples(src_dir)
        self.dst_samples = load_samples(dst_dir)
        for samples, cfg in ((self.src_samples, cfg_src), (self.dst_samples, cfg_dst)):
            for s in samples:
                check_face_type(s, cfg.face_type)
        self.cfg_src, self.cfg_dst = cfg_src, cfg_dst
        self.batch_size = batch_size
        self.workers = workers if workers > 0 else default_workers()
        self.wait_seconds = 0.0
        self.batches = 0
        self._closed = False
        self._procs: dict[str, list[mp.Process]] = {"src": [], "dst": []}
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self._queues = {side: ctx.Queue(maxsize=max(1, prefetch)) for side in ("src", "dst")}
        seeds = np.random.SeedSequence(seed).spawn(2 * self.workers)
        sides = (("src", self.src_samples, cfg_src, self.dst_samples),
                 ("dst", self.dst_samples, cfg_dst, self.src_samples))
        try:
            for k, (side, samples, cfg, other) in enumerate(sides):
                for w in range(self.workers):
                    spec = _WorkerSpec(samples, cfg, batch_size, seeds[k * self.workers + w], uniform_yaw,
                                       other if cfg.ct_mode != "none" else None)
                    p = ctx.Process(target=_worker_main, args=(spec, self._queues[side], self._stop),
                                    name=f"visage-samples-{side}-{w}", daemon=True)
                    p.start()
                    self._procs[side].append(p)
        except BaseException:
            self.close()
            raise

    def _get(self, side: str) -> SideBatch:
        q = self._queues[side]
        while True:
            try:
                kind, payload = q.get(timeout=0.5)
            except queue.Empty:
                if not any(p.is_alive() for p in self._procs[side]):
                    self.close()
                    raise VisageError(f"the {side} sample workers stopped unexpectedly") from None
                continue
            if kind == "error":
                self.close()
                raise VisageError(payload)
            return payload

    def next(self) -> Batch:
        """The next batch; blocks (and counts the wait) until the workers have one ready."""
        if self._closed:
            raise VisageError("training batches were already closed")
        t0 = time.perf_counter()
        try:
            batch = Batch(self._get("src"), self._get("dst"))
        finally:
            self.wait_seconds += time.perf_counter() - t0
        self.batches += 1
        return batch

    def __next__(self) -> Batch:
        return self.next()

    def __iter__(self) -> Iterator[Batch]:
        return self

    def preview_batch(self, n: int) -> Batch:
        """n src and n dst faces, the same on every call, not augmented (targets only).

        Faces are spread evenly over each set (natural file order) so the preview shows
        a range of poses; made here in the parent, so it works while workers are busy.
        """
        def side(samples: list[Sample], cfg: SampleConfig) -> SideBatch:
            idx = np.linspace(0, len(samples) - 1, n).round().astype(int) if len(samples) >= n \
                else np.arange(n) % len(samples)
            clean = replace(cfg, ct_mode="none", random_hsv_power=0.0)
            outs = []
            for i in idx:
                image, xseg = load_image(samples[i])
                outs.append(process_sample(samples[i], image, clean, np.random.default_rng(0),
                                           xseg_png=xseg, augment=False))
            return SideBatch(*(np.stack(a) for a in zip(*outs)))
        return Batch(side(self.src_samples, self.cfg_src), side(self.dst_samples, self.cfg_dst))

    @property
    def processes(self) -> list[mp.Process]:
        return self._procs["src"] + self._procs["dst"]

    def close(self, timeout: float = 5.0) -> None:
        """Stop every worker and wait for it; nothing is left running afterwards."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        deadline = time.monotonic() + timeout
        procs = self.processes
        while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
            for q in self._queues.values():          # unblock workers stuck in put()
                try:
                    while True:
                        q.get_nowait()
                except (queue.Empty, OSError, EOFError):
                    pass
            for p in procs:
                p.join(0.05)
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(1.0)
        for q in self._queues.values():
            q.close()

    def __enter__(self) -> TrainingBatches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close(timeout=1.0)
