"""XSeg training preview images: each face beside its label mask and the model's mask."""
from __future__ import annotations

import cv2
import numpy as np

OVERLAY = np.array([0.0, 1.0, 0.0], np.float32)     # green tint on the masked area


def _over(faces: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Faces with the masked area tinted green and the rest darkened."""
    m = np.clip(masks, 0, 1)
    return faces * (0.35 + 0.65 * m) * (1 - 0.3 * m) + OVERLAY * 0.3 * m


def mask_grid(faces: np.ndarray, labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """uint8 BGR grid: one row per face of [face, labels over it, predicted mask, predicted mask over it]."""
    grey = np.repeat(np.clip(predicted, 0, 1), 3, axis=-1)
    cols = [faces, _over(faces, labels), grey, _over(faces, predicted)]
    rows = [np.concatenate([c[i] for c in cols], axis=1) for i in range(len(faces))]
    return (np.clip(np.concatenate(rows, axis=0), 0, 1) * 255).astype(np.uint8)


def header(text: str, width: int) -> np.ndarray:
    bar = np.full((20, width, 3), 36, np.uint8)
    cv2.putText(bar, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1, cv2.LINE_AA)
    return bar


def render_xseg_preview(model, src: np.ndarray, state, title: str) -> np.ndarray:
    """XSeg's training preview: rows of [face, label mask over it, predicted mask, predicted mask over it]
    under the loss graph (the trainer draws this for a model with `preview_masks`)."""
    from mainscripts.train.train_preview import LOSS_RANGES, MIN_WIDTH, loss_plot
    grid = mask_grid(src, *model.preview_masks(src))
    if grid.shape[1] < MIN_WIDTH:
        k = -(-MIN_WIDTH // grid.shape[1])
        grid = cv2.resize(grid, None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST)
    w = grid.shape[1]
    return np.concatenate([header(f"{title}  Enter: save+exit  s: save  b: backup  p: refresh  l: loss range", w),
                           loss_plot(model.loss_history, w, last=LOSS_RANGES[state.loss_range]),
                           header("face | labels | XSeg mask | XSeg mask over the face", w), grid], axis=0)
