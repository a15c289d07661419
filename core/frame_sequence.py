"""Which images of a folder are frames of the clip, and where non-frame outputs go.

Frame folders (`workspace/data_src`, `data_dst`, `data_dst/merged`) hold the numbered images
`videoed extract-video` writes (`00001.png` …). What else lands there must not end up where
only frames belong:
- Visage's own outputs (names ending in `_contact_sheet`) are never frames, for any command;
- extract takes every other image, since DeepFaceLab users add photos of the person to
  data_src beside the video frames;
- merge and the video steps take a sequence (`sequence=True`): when at least half of the
  images have a numbered stem (digits only), only the numbered ones are frames, so a cover
  picture or screenshot never becomes a merged frame or a frame of the video. A folder of
  freely named images keeps them all.
Files left out are named in one info line, so nothing disappears silently.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from core import interact
from core.fileio import IMAGE_EXTS, list_images

CONTACT_SHEET = "_contact_sheet"
VISAGE_OUTPUT_SUFFIXES = (CONTACT_SHEET,)


def is_visage_output(path: str | os.PathLike) -> bool:
    """True for images Visage writes that are overviews, never frames (contact sheets)."""
    return Path(path).stem.endswith(VISAGE_OUTPUT_SUFFIXES)


def split_frames(files: list[Path], sequence: bool = False) -> tuple[list[Path], list[Path]]:
    """(frames, ignored) of the images `files`, by the rules in the module docstring."""
    frames = [p for p in files if not is_visage_output(p)]
    numbered = [p for p in frames if p.stem.isdigit()]
    if sequence and frames and 2 * len(numbered) >= len(frames):
        frames = numbered
    kept = set(frames)
    return frames, [p for p in files if p not in kept]


def list_frames(folder: str | os.PathLike, exts: Iterable[str] = IMAGE_EXTS, sequence: bool = False) -> list[Path]:
    """The frames in `folder` in natural order; other images are left out with one info line."""
    frames, ignored = split_frames(list_images(folder, exts), sequence)
    if ignored:
        shown = ", ".join(p.name for p in ignored[:5]) + (" ..." if len(ignored) > 5 else "")
        what = "frames of the numbered sequence" if sequence else "frames (Visage's own overviews)"
        interact.log_info(f"Ignoring {len(ignored)} image(s) in {folder} that are not {what}: {shown}")
    return frames


def contact_sheet_path(faces_dir: str | os.PathLike) -> Path:
    """Where the contact sheet of `faces_dir` goes: beside the folder, but never into a frame folder.

    An `aligned` folder (or any faces folder whose parent holds images) sits inside the frame
    folder, so its sheet goes one level up: workspace/data_src/aligned ->
    workspace/data_src_aligned_contact_sheet.jpg. Any other folder gets DIR_contact_sheet.jpg beside it.
    """
    faces_dir = Path(faces_dir).absolute()
    parent = faces_dir.parent
    in_frames = faces_dir.name == "aligned" or (parent.is_dir() and bool(list_images(parent)))
    if in_frames and parent.parent != parent:
        return parent.parent / f"{parent.name}_{faces_dir.name}{CONTACT_SHEET}.jpg"
    return parent / f"{faces_dir.name}{CONTACT_SHEET}.jpg"
