"""Training preview: the key handling (a pure state machine) and the images it shows.

The OpenCV window in trainer.py is a thin shell: it feeds keys to `handle_key` and shows
`render_preview(...)`. With --no-preview the same image is written to the model folder.
DeepFaceLab's keys: Enter save and exit, s save, b backup, p refresh, space next preview,
l cycle the loss-graph range.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

LOSS_RANGES = (0, 5000, 10000, 50000, 100000)        # 0 = all history
PREVIEW_KINDS = ("faces", "masked")
KEY_ENTER = (10, 13)
COLUMNS = ("src", "src->src", "dst", "dst->dst", "src->dst (swap)")
MIN_WIDTH = 640


@dataclass(frozen=True)
class PreviewState:
    kind: int = 0
    loss_range: int = 0


def handle_key(state: PreviewState, key: int) -> tuple[PreviewState, str | None]:
    """(new state, action) for one key code; action is save_exit/save/backup/refresh or None."""
    if key in KEY_ENTER:
        return state, "save_exit"
    ch = chr(key) if 0 <= key < 256 else ""
    if ch == "s":
        return state, "save"
    if ch == "b":
        return state, "backup"
    if ch == "p":
        return state, "refresh"
    if ch == " ":
        return replace(state, kind=(state.kind + 1) % len(PREVIEW_KINDS)), "refresh"
    if ch == "l":
        return replace(state, loss_range=(state.loss_range + 1) % len(LOSS_RANGES)), "refresh"
    return state, None


SRC_COLOUR, DST_COLOUR, AXIS_COLOUR, TEXT_COLOUR = (255, 160, 60), (0, 140, 255), (120, 120, 120), (230, 230, 230)
VAL_SRC_COLOUR, VAL_DST_COLOUR = (255, 230, 180), (150, 210, 255)     # lighter: the held-out faces' loss
# loss_history columns after src and dst (SAEHD's discriminators), drawn where they are not all zero
EXTRA_LOSSES = (("GAN D", (90, 200, 90)), ("true face D", (200, 90, 200)))


def _text(img: np.ndarray, text: str, x: int, y: int, colour=TEXT_COLOUR) -> None:
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.36, colour, 1, cv2.LINE_AA)


def loss_plot(history: list[list[float]], width: int, height: int = 120, last: int = 0,
              validation: list[list[float]] | None = None) -> np.ndarray:
    """src (blue) and dst (orange) loss over the last `last` iterations (0 = all), as a BGR image:
    a title with the legend and the latest values, the loss axis on the left, iterations below.
    `validation` rows ([iteration, src loss, dst loss, ...], models/validation.py) add a lighter
    line per side with a dot at each measured iteration.
    Rows may carry discriminator losses after src and dst (EXTRA_LOSSES); those are drawn too."""
    img = np.full((height, width, 3), 24, np.uint8)
    rows = history[-last:] if last else history
    width_cols = 2 + len(EXTRA_LOSSES)
    data = np.array([list(r[:width_cols]) + [0.0] * (width_cols - len(r)) for r in rows], np.float32).reshape(
        -1, width_cols)
    lines = [(0, "src", SRC_COLOUR), (1, "dst", DST_COLOUR)] + [
        (2 + i, name, colour) for i, (name, colour) in enumerate(EXTRA_LOSSES) if data[:, 2 + i].any()]
    if len(data) < 2:
        return img
    left, top, right, bottom = 46, 16, width - 6, height - 14         # the plot area
    bins = min(right - left, len(data))
    edges = np.linspace(0, len(data), bins + 1).astype(int)
    cols = np.stack([data[a:b].mean(0) for a, b in zip(edges[:-1], edges[1:])])
    peak = float(np.percentile(cols[:, [ch for ch, _, _ in lines]], 99)) * 1.05 or 1.0
    xs = np.linspace(left, right, bins)
    for ch, _, colour in reversed(lines):
        ys = bottom - np.clip(cols[:, ch] / peak, 0, 1) * (bottom - top)
        cv2.polylines(img, [np.stack([xs, ys], 1).astype(np.int32).reshape(-1, 1, 2)], False, colour, 1, cv2.LINE_AA)
    first = len(history) - len(data) + 1
    val = np.asarray([r[:3] for r in validation or () if r[0] >= first], np.float32).reshape(-1, 3)
    if len(val):
        vx = left + (val[:, 0] - first) / max(1, len(history) - first) * (right - left)
        for ch, colour in ((2, VAL_DST_COLOUR), (1, VAL_SRC_COLOUR)):
            vy = bottom - np.clip(val[:, ch] / peak, 0, 1) * (bottom - top)
            pts = np.stack([vx, vy], 1).astype(np.int32)
            cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, colour, 1, cv2.LINE_AA)
            for p in pts:
                cv2.circle(img, (int(p[0]), int(p[1])), 2, colour, -1, cv2.LINE_AA)
    cv2.line(img, (left - 1, top), (left - 1, bottom), AXIS_COLOUR, 1)
    cv2.line(img, (left - 1, bottom + 1), (right, bottom + 1), AXIS_COLOUR, 1)
    _text(img, f"{peak:.3g}", 2, top + 8)
    _text(img, "loss", 2, (top + bottom) // 2 + 4)
    _text(img, "0", left - 10, bottom + 2)
    _text(img, f"{first}", left, height - 2)
    _text(img, "iteration", (left + right) // 2 - 24, height - 2)
    _text(img, f"{len(history)}", right - 8 * len(str(len(history))), height - 2)
    _text(img, f"loss, {'all' if not last else f'last {last}'} iterations:", 4, 12)
    x = 4 + 9 * (20 if last else 16)
    legend = [(name, data[-1, ch], colour) for ch, name, colour in lines]
    if len(val):
        legend += [("val src", val[-1, 1], VAL_SRC_COLOUR), ("val dst", val[-1, 2], VAL_DST_COLOUR)]
    for name, value, colour in legend:
        cv2.line(img, (x, 8), (x + 14, 8), colour, 2)
        _text(img, f"{name} {value:.4f}", x + 18, 12, colour)
        x += 110 + 25 * name.startswith("val")
    return img


def face_grid(src: np.ndarray, dst: np.ndarray, out: dict[str, np.ndarray], kind: str) -> np.ndarray:
    """Rows of [src, src->src, dst, dst->dst, src->dst]; 'masked' multiplies by the predicted masks."""
    cols = [src, out["pred_src_src"], dst, out["pred_dst_dst"], out["pred_src_dst"]]
    if kind == "masked":
        masks = [out["pred_src_srcm"], out["pred_src_srcm"], out["pred_dst_dstm"], out["pred_dst_dstm"],
                 out["pred_src_dstm"]]
        cols = [c * m for c, m in zip(cols, masks)]
    rows = [np.concatenate([c[i] for c in cols], axis=1) for i in range(len(src))]
    grid = np.concatenate(rows, axis=0)
    return (np.clip(grid, 0, 1) * 255).astype(np.uint8)


def render_preview(src: np.ndarray, dst: np.ndarray, out: dict[str, np.ndarray], history: list[list[float]],
                   state: PreviewState, title: str, validation: list[list[float]] | None = None) -> np.ndarray:
    """The full preview image: title bar, loss graph, then the face grid."""
    grid = face_grid(src, dst, out, PREVIEW_KINDS[state.kind])
    if grid.shape[1] < MIN_WIDTH:                  # small models: enlarge so faces and text are readable
        k = -(-MIN_WIDTH // grid.shape[1])
        grid = cv2.resize(grid, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    w = grid.shape[1]
    header = np.full((18, w, 3), 30, np.uint8)
    for i, name in enumerate(COLUMNS):
        cv2.putText(header, name, (i * w // len(COLUMNS) + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230),
                    1, cv2.LINE_AA)
    bar = np.full((22, w, 3), 40, np.uint8)
    cv2.putText(bar, f"{title}  [{PREVIEW_KINDS[state.kind]}]  Enter: save+exit  s: save  b: backup  "
                     f"p: refresh  space: next  l: loss range", (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (230, 230, 230), 1, cv2.LINE_AA)
    graph = loss_plot(history, w, last=LOSS_RANGES[state.loss_range], validation=validation)
    return np.concatenate([bar, graph, header, grid], axis=0)
