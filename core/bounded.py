"""Bounded numbers for flags, prompts and library arguments: finite, in range, or one clear line.

argparse's `type=float` (and a prompt's float()) accepts 'nan', 'inf' and '1e999'; a frame
rate of 1e9 once made ffmpeg write frames until the kernel killed it. Each numeric setting
is declared once as a `Bounded`, which serves as the argparse type (argparse names the flag
in its one-line error), as the prompt's range, and as the check the library function makes
on the value it is given (`check`, one VisageError line).
"""
from __future__ import annotations

import argparse
import math
import numbers
import os
from dataclasses import dataclass
from typing import Any

from core.errors import VisageError


@dataclass(frozen=True)
class Bounded:
    kind: type                        # int or float
    lo: float | None = None           # inclusive; None = unbounded
    hi: float | None = None

    @property
    def range(self) -> tuple[float | None, float | None]:
        """(lo, hi) as core.interact's prompts take it."""
        return self.lo, self.hi

    def _requirement(self) -> str:
        noun = "a whole number" if self.kind is int else "a finite number"
        if self.lo is not None and self.hi is not None:
            return f"{noun} in {self.lo:g}..{self.hi:g}"
        if self.lo is not None:
            return f"{noun} of at least {self.lo:g}"
        return f"{noun} of at most {self.hi:g}" if self.hi is not None else noun

    def _valid(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):      # numpy scalars included
            return False
        if not isinstance(value, numbers.Integral) and not (
                math.isfinite(value) and (self.kind is float or float(value).is_integer())):
            return False
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)

    def check(self, value: Any, what: str) -> int | float:
        """`value` as `kind` when it is finite and in range, else VisageError '<what> must be ...'."""
        if not self._valid(value):
            raise VisageError(f"{what} must be {self._requirement()}, got {value!r:.40}")
        return self.kind(value)

    def __call__(self, text: str) -> int | float:
        """argparse `type`: the number in `text`, or an error argparse prints as one line."""
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            value = text
        if not self._valid(value):
            raise argparse.ArgumentTypeError(f"must be {self._requirement()}, got {text!r:.40}")
        return value


# Worker processes each load their own models: more than this only thrashes memory.
WORKERS = Bounded(int, 0, max(64, os.cpu_count() or 1))
FRAME_COUNT = Bounded(int, 0, 10**7)        # "the first N frames" (0 = all)
REPEATS = Bounded(int, 1, 1000)             # timed runs or iterations of a benchmark
FACE_SIZE = Bounded(int, 64, 2048)          # aligned face side in pixels
