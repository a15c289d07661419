"""What this machine is: CPU name, instruction-set flags and memory (for `doctor`, `bench`, precision).

Linux reads /proc; elsewhere the CPU flags are unknown and the name comes from `platform`.
"""
from __future__ import annotations

import os
import platform
from functools import lru_cache

# The flags that decide Visage's precision and speed, by their /proc/cpuinfo names.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


@lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def cpu_flags() -> set[str]:
    """The CPU's instruction-set flags (empty where /proc/cpuinfo does not exist)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_bf16() -> bool:
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_name() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_bytes() -> int | None:
    """Physical memory, or None where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def describe() -> str:
    """One line: CPU name, cores, speed flags present (or 'flags unknown'), memory."""
    flags = cpu_flags()
    shown = " ".join(f for f in SPEED_FLAGS if f in flags) if flags else "flags unknown"
    mem = memory_bytes()
    return f"{cpu_name()}, {os.cpu_count()} cores, {shown or 'no AVX2'}" + (f", {mem / 2**30:.0f} GiB" if mem else "")
