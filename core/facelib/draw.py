"""Debug drawings of found faces, and contact sheets of aligned faces."""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from core.facelib.geometry import crop_rect_in_frame

# iBUG 68 groups drawn as polylines: (start, end, closed)
_PARTS = ((0, 17, False), (17, 22, False), (22, 27, False), (27, 31, False), (31, 36, False),
          (36, 42, True), (42, 48, True), (48, 60, True), (60, 68, True))


def draw_landmarks(img: np.ndarray, landmarks: np.ndarray, color=(0, 255, 0), thickness: int = 1) -> None:
    for a, b, closed in _PARTS:
        pts = np.round(landmarks[a:b]).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], closed, color, thickness, cv2.LINE_AA)


def draw_debug(frame: np.ndarray, faces: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, int]]) -> np.ndarray:
    """Frame with, per face, the detector box (red), landmarks (green) and crop outline (yellow).

    `faces` holds (rect l,t,r,b, landmarks 68x2, frame->face matrix, crop size).
    """
    out = frame.copy()
    t = max(1, round(max(frame.shape[:2]) / 500))
    for rect, landmarks, mat, size in faces:
        cv2.rectangle(out, (int(rect[0]), int(rect[1])), (int(rect[2]), int(rect[3])), (0, 0, 255), t)
        draw_landmarks(out, landmarks, (0, 255, 0), t)
        if size:
            quad = np.round(crop_rect_in_frame(mat, size)).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [quad], True, (0, 255, 255), t, cv2.LINE_AA)
    return out


def contact_sheet(images: Sequence[np.ndarray], cell: int = 128, columns: int = 0,
                  labels: Sequence[str] | None = None) -> np.ndarray:
    """A grid of thumbnails (black where empty), optionally labelled underneath."""
    if not images:
        return np.zeros((cell, cell, 3), np.uint8)
    columns = columns or max(1, math.ceil(math.sqrt(len(images))))
    rows = math.ceil(len(images) / columns)
    sheet = np.zeros((rows * cell, columns * cell, 3), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        thumb = cv2.resize(img, (cell, cell), interpolation=cv2.INTER_AREA)
        if labels:
            cv2.putText(thumb, labels[i][:18], (3, cell - 5), cv2.FONT_HERSHEY_SIMPLEX, cell / 400, (255, 255, 255),
                        1, cv2.LINE_AA)
        sheet[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = thumb
    return sheet
