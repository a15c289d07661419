"""DeepFaceLab's face types: names, numeric ids, crop padding and alignment.

`padding` is the half-diagonal growth of the crop over the mean-face square (see
geometry.py); `align` False means the crop square is not rotated to the eye line.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from core.errors import VisageError


class FaceType(IntEnum):
    HALF = 0
    MID_FULL = 1
    FULL = 2
    FULL_NO_ALIGN = 3
    WHOLE_FACE = 4
    HEAD = 10
    HEAD_NO_ALIGN = 20
    MARK_ONLY = 100


@dataclass(frozen=True)
class FaceTypeSpec:
    name: str          # DeepFaceLab's string name, stored in face metadata
    short: str         # the prompt abbreviation (h, mf, f, wf, head)
    padding: float
    align: bool


SPECS: dict[FaceType, FaceTypeSpec] = {
    FaceType.HALF: FaceTypeSpec("half_face", "h", 0.0, True),
    FaceType.MID_FULL: FaceTypeSpec("midfull_face", "mf", 0.0675, True),
    FaceType.FULL: FaceTypeSpec("full_face", "f", 0.2109375, True),
    FaceType.FULL_NO_ALIGN: FaceTypeSpec("full_face_no_align", "f_na", 0.2109375, False),
    FaceType.WHOLE_FACE: FaceTypeSpec("whole_face", "wf", 0.40, True),
    FaceType.HEAD: FaceTypeSpec("head", "head", 0.70, True),
    FaceType.HEAD_NO_ALIGN: FaceTypeSpec("head_no_align", "head_na", 0.70, False),
    FaceType.MARK_ONLY: FaceTypeSpec("mark_only", "mark_only", 0.0, False),
}
NAMES = tuple(s.name for s in SPECS.values())
# The face types a model trains on and a faceset is resized to: DeepFaceLab's h/mf/f/wf/head prompt.
TRAINABLE = (FaceType.HALF, FaceType.MID_FULL, FaceType.FULL, FaceType.WHOLE_FACE, FaceType.HEAD)
SHORT_NAMES = tuple(SPECS[t].short for t in TRAINABLE)


def spellings(short: bool, types: tuple[FaceType, ...] = tuple(SPECS)) -> tuple[tuple[str, str], ...]:
    """(other spelling, chosen spelling) of each of `types`: a command whose choices are the
    short names (`short`) also takes the long ones, and the other way round."""
    pairs = ((SPECS[t].name, SPECS[t].short) for t in types)
    return tuple((b, a) if not short else (a, b) for a, b in pairs if a != b)


def spellings_help(types: tuple[FaceType, ...] = tuple(SPECS)) -> str:
    """'h (half_face), mf (midfull_face), ...': both spellings, for help texts."""
    return ", ".join(SPECS[t].short if SPECS[t].short == SPECS[t].name else f"{SPECS[t].short} ({SPECS[t].name})"
                     for t in types)


def face_type_from_str(text: str) -> FaceType:
    """Accept DeepFaceLab's long names ('whole_face') and prompt abbreviations ('wf')."""
    key = text.strip().lower()
    for ft, spec in SPECS.items():
        if key in (spec.name, spec.short):
            return ft
    raise VisageError(f"unknown face type '{text}'; choose one of {spellings_help()}")


def face_type_name(ft: FaceType) -> str:
    return SPECS[FaceType(ft)].name
