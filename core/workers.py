"""Process pools with a progress bar and a clean Ctrl-C.

Workers ignore SIGINT so that only the parent handles it: on Ctrl-C the parent stops the
pool and re-raises, and because every write is atomic nothing is left half-written.
Each worker builds its heavy state (models) once, in `initializer`.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
import signal
from typing import Any, Callable, Iterable, Iterator, Sequence

from tqdm import tqdm


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _init_worker(initializer: Callable | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import cv2
        cv2.setNumThreads(1)
    except ImportError:
        pass
    if initializer:
        initializer(*initargs)


def _pooled(workers: int, start: Callable[[Any], Iterable[Any]], initializer: Callable | None = None,
            initargs: tuple = ()) -> Iterator[Any]:
    """Results of start(pool) on a spawn pool whose workers ignore Ctrl-C; terminated on any error."""
    pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(initializer, initargs))
    try:
        yield from start(pool)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _bar(total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit="frame", dynamic_ncols=True, smoothing=0.1)


def run_pool(func: Callable[[Any], Any], jobs: Sequence[Any], workers: int,
             initializer: Callable | None = None, initargs: tuple = (),
             desc: str = "", total: int | None = None,
             weight: Callable[[Any], int] = lambda r: 1) -> Iterator[Any]:
    """Yield func(job) for every job, in completion order, updating one progress bar.

    `total` and `weight(result)` let a job count for several items on the bar (a chunk of
    frames). With `workers <= 1` everything runs in this process (easier to debug).
    """
    with _bar(total if total is not None else len(jobs), desc) as bar:
        if workers <= 1 or len(jobs) <= 1:
            if initializer:
                initializer(*initargs)
            results = map(func, jobs)
        else:
            results = _pooled(workers, lambda pool: pool.imap_unordered(func, jobs), initializer, initargs)
        for result in results:
            bar.update(weight(result))
            yield result


def run_pipeline(func: Callable[[Any], Any], jobs: Iterable[Any], workers: int, total: int,
                 desc: str = "", max_pending: int = 0) -> Iterator[Any]:
    """Like run_pool, for jobs this process produces as it goes (e.g. model predictions).

    The parent keeps making jobs while the workers run earlier ones; at most `max_pending`
    (default 4 per worker) wait at once, so a long video is never held in memory whole.
    Results come back in job order.
    """
    with _bar(total, desc) as bar:
        results = map(func, jobs) if workers <= 1 else \
            _pooled(workers, lambda pool: _bounded(pool, func, jobs, max_pending or 4 * workers))
        for result in results:
            bar.update(1)
            yield result


def _bounded(pool: Any, func: Callable, jobs: Iterable[Any], limit: int) -> Iterator[Any]:
    """Submit jobs as they come, at most `limit` waiting; yield results in job order."""
    pending: deque = deque()
    for job in jobs:
        pending.append(pool.apply_async(func, (job,)))
        while pending and (len(pending) >= limit or pending[0].ready()):
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def chunked(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
