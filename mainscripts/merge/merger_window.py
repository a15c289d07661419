"""The interactive merger's OpenCV window: a thin shell around core.merge.interactive.

`run_window` shows the current frame (zoomed, optionally over a checkerboard, with a status
bar or the help screen), feeds cv2.waitKey codes to `handle_key`, and calls back `render`
(merge one frame with one config), `commit` (write a finished frame) and `save` (write the
session). A frame is committed again only if its config changed since it was last written.
`>` / `?` auto-processing commits and advances one frame per loop and polls the keyboard
between frames: `>` stops it, any other key stops it and then acts as usual.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import cv2
import numpy as np

from core.windows import CloseWatch, open_window, text_panel
from core.merge.config import MergerConfig
from core.merge.interactive import KEY_ESC, KEY_HELP, MergerState, config_lines, handle_key, status_line

Render = Callable[[int, MergerConfig], tuple[np.ndarray, np.ndarray]]   # -> (BGR uint8, (H, W, 1) float mask)
Commit = Callable[[int, MergerConfig], None]
Save = Callable[[MergerState], None]

NO_WINDOW = "cannot open the merger window (no display?); use --non-interactive for batch merge"
ZOOM_BASE = 1.25
POLL_MS = 100
FONT, FONT_SCALE, TEXT, LINE_H = cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 18
CHECKER, CHECKER_SHADES = 16, np.array([96, 160], np.uint8)
HELP_MIN_W = 640


def status_bar(text: str, width: int) -> np.ndarray:
    """The status line, wrapped at ' | ' to fit `width`."""
    lines: list[str] = []
    for part in text.split(" | "):
        joined = f"{lines[-1]} | {part}" if lines else part
        if lines and _text_w(joined) <= width - 12:
            lines[-1] = joined
        else:
            lines.append(part)
    return text_panel(lines, width)


def _text_w(text: str) -> int:
    return cv2.getTextSize(text, FONT, FONT_SCALE, 1)[0][0]


def help_image(cfg: MergerConfig) -> np.ndarray:
    """The Tab screen: KEY_HELP on the left, the current frame's settings on the right."""
    cfg_lines = ["current settings:", *config_lines(cfg)]
    x_desc = 8 + max(_text_w(k) for k, _ in KEY_HELP) + 24
    x_cfg = x_desc + max(_text_w(d) for _, d in KEY_HELP) + 40
    width = max(HELP_MIN_W, x_cfg + max(_text_w(line) for line in cfg_lines) + 8)
    img = np.full((max(len(KEY_HELP), len(cfg_lines)) * LINE_H + 12, width, 3), 24, np.uint8)
    for i, (keys, desc) in enumerate(KEY_HELP):
        y = (i + 1) * LINE_H
        cv2.putText(img, keys, (8, y), FONT, FONT_SCALE, (120, 220, 255), 1, cv2.LINE_AA)
        cv2.putText(img, desc, (x_desc, y), FONT, FONT_SCALE, TEXT, 1, cv2.LINE_AA)
    for i, line in enumerate(cfg_lines):
        cv2.putText(img, line, (x_cfg, (i + 1) * LINE_H), FONT, FONT_SCALE, TEXT, 1, cv2.LINE_AA)
    return img


def checkerboard_view(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The merged image where the mask is, a grey checkerboard where it is not."""
    h, w = img.shape[:2]
    board = CHECKER_SHADES[(np.arange(h)[:, None] // CHECKER + np.arange(w)[None, :] // CHECKER) % 2][..., None]
    m = np.asarray(mask, np.float32).reshape(h, w, 1)
    return (img.astype(np.float32) * m + board.astype(np.float32) * (1.0 - m) + 0.5).astype(np.uint8)


def compose_view(merged: np.ndarray, mask: np.ndarray, state: MergerState) -> np.ndarray:
    """What the window shows for `state`: help screen or (zoomed) frame, then the status bar."""
    if state.show_help:
        body = help_image(state.cfg)
    else:
        body = checkerboard_view(merged, mask) if state.checkerboard else merged
        if state.zoom:
            s, (h, w) = ZOOM_BASE ** state.zoom, body.shape[:2]
            body = cv2.resize(body, (max(1, round(w * s)), max(1, round(h * s))),
                              interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return np.concatenate([body, status_bar(status_line(state), body.shape[1])], axis=0)


class _Window:
    def __init__(self, title: str, render: Render, commit: Commit, save: Save):
        self.title, self.render, self.commit_fn, self.save = title, render, commit, save
        self.cache_key: tuple[int, MergerConfig] | None = None
        self.cache: tuple[np.ndarray, np.ndarray] | None = None
        self.written: dict[int, MergerConfig] = {}
        self.close_watch = CloseWatch(title)

    def show(self, state: MergerState) -> None:
        key = (state.index, state.cfg)
        if key != self.cache_key or self.cache is None:
            self.cache, self.cache_key = self.render(*key), key
        cv2.imshow(self.title, compose_view(*self.cache, state))

    def commit(self, state: MergerState, indices: list[int]) -> bool:
        """Write the frames whose config differs from what was last written; True if any was."""
        wrote = False
        for i in indices:
            if self.written.get(i) != state.configs[i]:
                self.commit_fn(i, state.configs[i])
                self.written[i] = state.configs[i]
                wrote = True
        return wrote

    def apply(self, state: MergerState, key: int) -> MergerState:
        state, final = handle_key(state, key)
        if self.commit(state, final) or state.quit:
            self.save(state)
        return state

    def auto_step(self, state: MergerState) -> MergerState:
        """Commit the current frame and advance; the last frame ends auto mode."""
        if state.index == len(state.frames) - 1:
            self.commit(state, [state.index])
            state = replace(state, auto_process=False)
            self.save(state)
            return state
        state, final = handle_key(state, ord("."))
        self.commit(state, final)
        key = cv2.waitKey(1)
        if key >= 0:
            state = replace(state, auto_process=False)
            self.save(state)
            if key & 0xFF != ord(">"):
                state = self.apply(state, key & 0xFF)
        return state


def run_window(state: MergerState, render: Render, commit: Commit, save: Save,
               title: str = "Visage merger") -> MergerState:
    """Run the interactive merger until Esc (or the window is closed); returns the final state."""
    open_window(title, NO_WINDOW)
    win, shown = _Window(title, render, commit, save), None
    while not state.quit:
        view = (state.index, state.cfg, state.zoom, state.show_help, state.checkerboard, state.auto_process)
        if view != shown:
            win.show(state)
            shown = view
        if state.auto_process:
            state = win.auto_step(state)
            continue
        key = cv2.waitKey(POLL_MS)
        if key < 0:
            if not win.close_watch.closed():
                continue
            key = KEY_ESC
        state = win.apply(state, key & 0xFF)
    try:
        cv2.destroyWindow(title)
    except cv2.error:
        pass
    return state
