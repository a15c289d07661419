"""Which frames a batch merge has really finished, and under which settings.

A frame counts as merged only when a batch merge wrote its merged PNG and its mask PNG
under the current settings key (model, iteration, merger settings). The parent appends
`<frame stem> <key> <fingerprint>` to `<output_dir>/.visage_merge.log` once a worker has
written both files; the fingerprint (size and mtime of both) makes a frame rewritten since
(by the interactive merger, by hand, by an older Visage) count as not merged. A torn last
line (Ctrl-C, power cut) or any other unreadable line is ignored: that frame is merged
again. Each run first rewrites the log atomically with just the entries still true.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from core.fileio import atomic_write_bytes

LOG_FILE = ".visage_merge.log"
OLD_STATE_FILE = ".visage_merge.json"          # earlier versions' whole-run state: not trusted, removed
_LINE = re.compile(rb"(.+) ([0-9a-f]{16}) (\d+:\d+:\d+:\d+)")


def settings_key(model_title: str, iteration: int, config: dict[str, Any]) -> str:
    """Short hash of what a merged frame depends on besides its own input."""
    text = json.dumps({"model": model_title, "iteration": iteration, "config": config},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class MergeLog:
    """The merge log of one output folder, read at construction; `with` it to record frames."""

    def __init__(self, output_dir: Path, mask_dir: Path, key: str):
        self.output_dir, self.mask_dir, self.key = Path(output_dir), Path(mask_dir), key
        self.path = self.output_dir / LOG_FILE
        self._file: Any = None
        found: dict[str, tuple[str, str]] = {}              # stem -> (key, fingerprint), last line wins
        data = self.path.read_bytes() if self.path.is_file() else b""
        for line in data.split(b"\n")[:-1]:                # the piece after the last newline is torn
            m = _LINE.fullmatch(line)
            if m:
                found[os.fsdecode(m[1])] = (m[2].decode(), m[3].decode())
        self.entries = {s: e for s, e in found.items() if e[1] == self._fingerprint(s)}

    def merged(self, stem: str) -> bool:
        """Both files of this frame were written with the current settings and not touched since."""
        return self.entries.get(stem, ("",))[0] == self.key

    def merged_otherwise(self, stem: str) -> bool:
        """Both files were written by a batch merge with another model iteration or other settings."""
        return stem in self.entries and not self.merged(stem)

    def __enter__(self) -> MergeLog:
        """Compact the log to the entries still true, then keep it open for appending."""
        (self.output_dir / OLD_STATE_FILE).unlink(missing_ok=True)
        if self.path.exists():
            atomic_write_bytes(self.path, b"".join(self._line(s, *e) for s, e in self.entries.items()))
        self._file = open(self.path, "ab")
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def add(self, stem: str) -> None:
        """Record a frame whose merged and mask PNGs were just written with the current settings."""
        fingerprint = self._fingerprint(stem)
        if fingerprint is None or "\n" in stem:
            return                                          # not recordable: merged again next time
        self.entries[stem] = (self.key, fingerprint)
        self._file.write(self._line(stem, self.key, fingerprint))
        self._file.flush()

    def _fingerprint(self, stem: str) -> str | None:
        try:
            out, mask = (os.stat(d / f"{stem}.png") for d in (self.output_dir, self.mask_dir))
        except OSError:
            return None
        return f"{out.st_size}:{out.st_mtime_ns}:{mask.st_size}:{mask.st_mtime_ns}"

    @staticmethod
    def _line(stem: str, key: str, fingerprint: str) -> bytes:
        return os.fsencode(stem) + f" {key} {fingerprint}\n".encode()
