"""Training batches from worker processes, so the train step never waits on the CPU.

Each side (src, dst) has its own worker processes (spawn context, SIGINT ignored, OpenCV
single-threaded so N workers use N cores) that decode, crop and augment whole batches
straight into shared-memory slots; the trainer's `next()` only copies a ready slot out
(about a millisecond) and hands it back. Pickling batches through a queue instead cost
~5 ms per side per batch in the consumer, which showed up as a 10 % sample-wait share at
a 100 ms step. Only (worker, slot) ids go through the pipes, so stopping or killing a
worker can never leave half a message behind. `prefetch` ready batches per side absorb a
slow sample without letting the workers run far ahead. `wait_seconds` counts the time
`next()` was blocked, which the trainer reports as the sample-wait share of a step.

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
from typing import Callable, Iterator, NamedTuple

import numpy as np

from core.errors import VisageError
from samplelib.sample import Sample, SamplePicker, load_samples
from core.facelib.recrop import check_face_type
from samplelib.sample_processor import SampleConfig, decode_reduction, load_image, process_sample, reference_face

class SideBatch(NamedTuple):
    """One side's batch: float32 NHWC arrays in [0, 1]."""
    warped: np.ndarray      # (B, R, R, 3)
    target: np.ndarray      # (B, R, R, 3)
    mask: np.ndarray        # (B, R, R, 1)
    em_mask: np.ndarray     # (B, R, R, 1)


@dataclass
class Batch:
    src: SideBatch
    dst: SideBatch


@dataclass
class _WorkerSpec:
    """Everything a worker needs, pickled once at start (own objects only, no user data)."""
    samples: list[Sample]
    cfg: SampleConfig
    batch_size: int
    seed: np.random.SeedSequence
    uniform_yaw: bool
    ct_samples: list[Sample] | None     # the other side, colour references for ct_mode


def _slot_views(buf: np.ndarray, batch: int, res: int) -> SideBatch:
    """SideBatch views into one flat float32 slot buffer (warped, target, mask, em_mask)."""
    n = batch * res * res
    cuts = np.cumsum([0, 3 * n, 3 * n, n, n])
    shapes = ((batch, res, res, 3), (batch, res, res, 3), (batch, res, res, 1), (batch, res, res, 1))
    return SideBatch(*(buf[a:b].reshape(shape) for a, b, shape in zip(cuts[:-1], cuts[1:], shapes)))


def slot_floats(batch: int, res: int) -> int:
    return batch * res * res * 8


def make_side_batch(spec: _WorkerSpec, picker: SamplePicker, rng: np.random.Generator, out: SideBatch,
                    stop: Callable[[], bool] = lambda: False) -> bool:
    """Decode and process `batch_size` samples straight into `out`; False if told to stop."""
    for i in range(spec.batch_size):
        if stop():
            return False
        sample = spec.samples[picker.next()]
        image, xseg = load_image(sample, decode_reduction(sample, spec.cfg))
        ref = None
        if spec.ct_samples:
            ref = reference_face(spec.ct_samples[int(rng.integers(len(spec.ct_samples)))], spec.cfg)
        for dst, arr in zip(out, process_sample(sample, image, spec.cfg, rng, ct_ref=ref, xseg_png=xseg)):
            dst[i] = arr
    return True


def _worker_main(spec: _WorkerSpec, wid: int, slots: list, free_q: mp.Queue, ready_q: mp.Queue,
                 stop: mp.Event) -> None:
    """Worker loop: take a free slot, fill it with a batch, announce it; stop on request.

    Only small messages (worker id, slot id) travel through the pipes, so a worker that is
    stopped or killed at any moment never leaves half a message for the parent to read.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # the parent handles Ctrl-C
    import cv2
    cv2.setNumThreads(1)
    rng = np.random.default_rng(spec.seed)
    views = [_slot_views(np.frombuffer(s, np.float32), spec.batch_size, spec.cfg.resolution) for s in slots]
    try:
        picker = SamplePicker(spec.samples, rng, spec.uniform_yaw)
        parent = mp.parent_process()
        while not stop.is_set():
            try:
                slot = free_q.get(timeout=0.2)
            except queue.Empty:
                if parent is not None and not parent.is_alive():   # trainer was killed: do not linger
                    return
                continue
            if make_side_batch(spec, picker, rng, views[slot], stop.is_set):
                ready_q.put((wid, slot))
    except VisageError as e:
        ready_q.put(("error", str(e)))
    except Exception:                                   # a bug: keep the traceback
        ready_q.put(("error", "sample worker crashed:\n" + traceback.format_exc()))


def face_name(sample: Sample) -> str:
    """A face's file name: what data.json records of held-out faces (the same in a faceset.pak)."""
    return Path(sample.path).name


def _clean_side(samples: list[Sample], cfg: SampleConfig) -> SideBatch:
    """These faces cropped as for training but not augmented, made in the calling process."""
    clean = replace(cfg, ct_mode="none", random_hsv_power=0.0)
    outs = []
    for sample in samples:
        image, xseg = load_image(sample, decode_reduction(sample, clean))
        outs.append(process_sample(sample, image, clean, np.random.default_rng(0), xseg_png=xseg, augment=False))
    return SideBatch(*(np.stack(a) for a in zip(*outs)))


def default_workers() -> int:
    return max(1, (os.cpu_count() or 1) // 2)


class TrainingBatches:
    """Iterator of `Batch`es for one src/dst pair; use as a context manager or call close()."""

    def __init__(self, src_dir: str | Path, dst_dir: str | Path, cfg_src: SampleConfig, cfg_dst: SampleConfig,
                 batch_size: int, workers: int = 0, seed: int | None = None, uniform_yaw: bool = False,
                 prefetch: int = 4, held_out: Callable[[dict[str, list[str]]], dict[str, list[str]]] | None = None
                 ) -> None:
        """`held_out` gets each side's face names and returns those to keep out of training
        (models/validation.py); they go to `validation_samples` and never reach a worker."""
        if batch_size < 1:
            raise VisageError(f"batch size must be at least 1, got {batch_size}")
        self.src_samples = load_samples(src_dir)
        self.dst_samples = load_samples(dst_dir)
        for samples, cfg in ((self.src_samples, cfg_src), (self.dst_samples, cfg_dst)):
            for s in samples:
                check_face_type(s, cfg.face_type)
        self.validation_samples: dict[str, list[Sample]] = {"src": [], "dst": []}
        if held_out is not None:
            self._hold_out(held_out({"src": [face_name(s) for s in self.src_samples],
                                     "dst": [face_name(s) for s in self.dst_samples]}))
        self.cfg_src, self.cfg_dst = cfg_src, cfg_dst
        self.batch_size = batch_size
        self.workers = workers if workers > 0 else default_workers()
        self.wait_seconds = 0.0
        self.batches = 0
        self._closed = False
        self._procs: dict[str, list[mp.Process]] = {"src": [], "dst": []}
        self.specs: dict[str, list[_WorkerSpec]] = {"src": [], "dst": []}   # what each worker was started with
        self._views: dict[str, list[list[SideBatch]]] = {"src": [], "dst": []}
        self._free: dict[str, list[mp.Queue]] = {"src": [], "dst": []}
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self._ready = {side: ctx.Queue() for side in ("src", "dst")}
        n_slots = max(2, -(-prefetch // self.workers))           # per worker, so `prefetch` per side
        seeds = np.random.SeedSequence(seed).spawn(2 * self.workers)
        sides = (("src", self.src_samples, cfg_src, self.dst_samples),
                 ("dst", self.dst_samples, cfg_dst, self.src_samples))
        try:
            for k, (side, samples, cfg, other) in enumerate(sides):
                for w in range(self.workers):
                    spec = _WorkerSpec(samples, cfg, batch_size, seeds[k * self.workers + w], uniform_yaw,
                                       other if cfg.ct_mode != "none" else None)
                    slots = [ctx.RawArray("f", slot_floats(batch_size, cfg.resolution)) for _ in range(n_slots)]
                    free = ctx.Queue()
                    for i in range(n_slots):
                        free.put(i)
                    p = ctx.Process(target=_worker_main, name=f"visage-samples-{side}-{w}", daemon=True,
                                    args=(spec, w, slots, free, self._ready[side], self._stop))
                    p.start()
                    self._procs[side].append(p)
                    self.specs[side].append(spec)
                    self._free[side].append(free)
                    self._views[side].append([_slot_views(np.frombuffer(s, np.float32), batch_size,
                                                          cfg.resolution) for s in slots])
        except BaseException:
            self.close()
            raise

    def _hold_out(self, names: dict[str, list[str]]) -> None:
        for side in ("src", "dst"):
            out = set(names.get(side, ()))
            samples = getattr(self, f"{side}_samples")
            self.validation_samples[side] = [s for s in samples if face_name(s) in out]
            keep = [s for s in samples if face_name(s) not in out]
            if not keep:
                raise VisageError(f"every {side} face is held out for validation; add faces or lower validation_faces")
            setattr(self, f"{side}_samples", keep)

    def validation_batch(self) -> Batch | None:
        """The held-out faces of both sides, not augmented (targets only); None when a side has none."""
        v = self.validation_samples
        if not v["src"] or not v["dst"]:
            return None
        return Batch(_clean_side(v["src"], self.cfg_src), _clean_side(v["dst"], self.cfg_dst))

    def _get(self, side: str, reuse: SideBatch | None) -> SideBatch:
        """Copy the next ready batch of `side` out of its shared slot and hand the slot back."""
        q = self._ready[side]
        while True:
            try:
                msg = q.get(timeout=0.5)
            except queue.Empty:
                if any(p.is_alive() for p in self._procs[side]):
                    continue
                try:                                  # a last message may have landed meanwhile
                    msg = q.get(timeout=0.2)
                except queue.Empty:
                    self.close()
                    raise VisageError(f"the {side} sample workers stopped unexpectedly") from None
            if msg[0] == "error":
                self.close()
                raise VisageError(msg[1])
            wid, slot = msg
            views = self._views[side][wid][slot]
            if reuse is not None and all(r.shape == v.shape and r.dtype == v.dtype for r, v in zip(reuse, views)):
                for r, v in zip(reuse, views):
                    np.copyto(r, v)
                batch = reuse
            else:
                batch = SideBatch(*(np.array(v) for v in views))
            self._free[side][wid].put(slot)
            return batch

    def next(self, reuse: Batch | None = None) -> Batch:
        """The next batch; blocks (and counts the wait) until the workers have one ready.

        Pass a batch you no longer need as `reuse` to have its arrays overwritten instead of
        new ones allocated: fresh multi-megabyte arrays cost more in page faults (~2.5 ms for
        batch 8 at 96 px) than the copy itself (~0.7 ms).
        """
        if self._closed:
            raise VisageError("training batches were already closed")
        t0 = time.perf_counter()
        try:
            batch = Batch(self._get("src", reuse.src if reuse else None),
                          self._get("dst", reuse.dst if reuse else None))
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
        if n < 1:
            raise VisageError(f"preview needs at least one face, got n={n}")
        def pick(samples: list[Sample]) -> list[Sample]:
            idx = np.linspace(0, len(samples) - 1, n).round().astype(int) if len(samples) >= n \
                else np.arange(n) % len(samples)
            return [samples[i] for i in idx]
        return Batch(_clean_side(pick(self.src_samples), self.cfg_src),
                     _clean_side(pick(self.dst_samples), self.cfg_dst))

    @property
    def processes(self) -> list[mp.Process]:
        return self._procs["src"] + self._procs["dst"]

    def close(self, timeout: float = 5.0) -> None:
        """Stop every worker and wait for it; nothing is left running afterwards.

        Workers notice the stop event within a sample and exit; nothing has to be read
        for them to do so (only tiny messages sit in the pipes). A worker still alive
        after `timeout` is terminated.
        """
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        deadline = time.monotonic() + timeout
        for p in self.processes:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(2.0)
        for q in [*self._ready.values(), *self._free["src"], *self._free["dst"]]:
            q.cancel_join_thread()                  # never block exit on a queue nobody reads
            q.close()
        self._views = {"src": [], "dst": []}

    def __enter__(self) -> TrainingBatches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close(timeout=1.0)
            except Exception:                # interpreter shutdown: daemon workers die anyway
                pass
