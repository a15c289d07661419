"""`xseg editor`'s OpenCV window: a thin shell around core.facelib.xseg_editor_state.

`run_editor(folder)` shows the aligned faces one at a time on a square canvas (zoomed and
panned by the state), draws the polygons over the image, the label mask, the face's XSeg
mask or an overlay of it, and writes the polygons into the face's metadata (`seg_ie_polys`,
an atomic in-place update that keeps the image bytes identical) whenever the state says
Save. A face whose polygons did not change is never rewritten.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from core.facelib.face_meta import read_face, read_meta, update_meta
from core.facelib.xseg_editor_state import (KEY_ESC, KEY_HELP, KEYS_DELETE, CopyFrom, EditorState, Goto, Save, Trash,
                                            face_loaded, handle_key, handle_mouse, paste, saved, status_line)
from core.facelib.xseg_polys import Poly, polys_from_meta, polys_mask, polys_to_meta
from core.imagelib.masks import decode_xseg_mask
from core.windows import CloseWatch, open_window, text_panel
from mainscripts.merge.merger_window import status_bar

NO_DISPLAY = "the XSeg editor needs a display (no X/Wayland display found); run it on a desktop session"
TITLE = "Visage XSeg editor"
POLL_MS = 40
COLOURS = {"include": (0, 255, 0), "exclude": (0, 0, 255)}
Predict = Callable[[np.ndarray, object], np.ndarray]   # (BGR face, FaceMeta) -> (H, W) mask: the live XSeg view


def load_polys(path: Path) -> tuple[Poly, ...]:
    return polys_from_meta(read_meta(path).seg_ie_polys, str(path))


def save_polys(path: Path, polys: tuple[Poly, ...]) -> None:
    """Write `polys` as the face's `seg_ie_polys` (atomic; the JPEG image data is untouched)."""
    meta = read_meta(path)
    meta.seg_ie_polys = polys_to_meta(polys)
    update_meta(path, meta)


def trash_face(path: Path) -> Path:
    """Move a face into `<its folder>_trash` (one rename, never a copy and delete); a name taken there gets a suffix."""
    import os
    trash = path.parent.with_name(path.parent.name + "_trash")
    trash.mkdir(exist_ok=True)
    target, k = trash / path.name, 1
    while target.exists():
        target, k = trash / f"{path.stem}_{k}{path.suffix}", k + 1
    os.rename(path, target)
    return target


def _canvas(img: np.ndarray, state: EditorState, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    s, half = state.scale, state.window_size / 2
    mat = np.float32([[s, 0, half - s * state.center[0]], [0, s, half - s * state.center[1]]])
    interp = cv2.INTER_NEAREST if s >= 3 else cv2.INTER_LINEAR
    return cv2.warpAffine(img, mat, (state.window_size, state.window_size), flags=interp, borderMode=border)


def compose_view(img: np.ndarray, xseg: np.ndarray | None, state: EditorState, name: str) -> np.ndarray:
    """The canvas for the current view, polygons drawn on top, the help and the status bar."""
    view = state.view
    if view == 1:
        base = cv2.cvtColor((polys_mask(img.shape, state.finished) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    elif view in (2, 3) and xseg is not None:
        m = (np.clip(xseg, 0, 1) * 255).astype(np.uint8)
        if view == 2:
            base = cv2.cvtColor(m, cv2.COLOR_GRAY2BGR)
        else:
            tint = np.zeros_like(img)
            tint[..., 1] = 255
            base = np.where(m[..., None] > 127, cv2.addWeighted(img, 0.6, tint, 0.4, 0), (img * 0.5).astype(np.uint8))
    else:
        base = img
    canvas = _canvas(base, state)
    if view in (2, 3) and xseg is None:
        cv2.putText(canvas, "this face has no XSeg mask (xseg apply, or --model-dir for a live one)", (8, 24),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 200, 255), 1, cv2.LINE_AA)
    for i, p in enumerate(state.polys):
        if not p.points:
            continue
        pts = np.round(state.to_window(p.points)).astype(np.int32)
        is_open = state.drawing and i == len(state.polys) - 1
        colour = COLOURS[p.kind]
        cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], not is_open, colour, 1, cv2.LINE_AA)
        if is_open:
            cur = np.round(state.to_window([state.cursor])[0]).astype(int)
            cv2.line(canvas, tuple(int(v) for v in pts[-1]), tuple(int(v) for v in cur), colour, 1, cv2.LINE_AA)
        for x, y in pts:
            cv2.circle(canvas, (int(x), int(y)), 3, colour, -1, cv2.LINE_AA)
    if state.show_help:
        lines = [f"{k}: {d}" for k, d in KEY_HELP]
        panel = text_panel(lines, min(canvas.shape[1], 460))
        ph, pw = min(panel.shape[0], canvas.shape[0]), panel.shape[1]
        canvas[:ph, :pw] = cv2.addWeighted(canvas[:ph, :pw], 0.3, panel[:ph], 0.7, 0)
    return np.concatenate([canvas, status_bar(status_line(state, name), canvas.shape[1])], axis=0)


class _Editor:
    def __init__(self, faces: list[Path], window_size: int, predict: Predict | None):
        self.faces, self.predict = list(faces), predict     # x (trash) takes faces out of this list
        self.close_watch = CloseWatch(TITLE)
        self.img, self.xseg = self._load(0)
        self.state = EditorState.new(len(faces), self.img.shape[0], load_polys(faces[0]), window_size)
        self.dirty = True

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        img, meta = read_face(self.faces[index])
        if self.predict is not None:
            return img, self.predict(img, meta)
        xseg = None if meta.xseg_mask is None else decode_xseg_mask(meta.xseg_mask, img.shape[0])[..., 0]
        return img, xseg

    def act(self, actions: list) -> None:
        for act in actions:
            if isinstance(act, Save):
                save_polys(self.faces[act.index], act.polys)
                self.state = saved(self.state, act.index, act.polys)
            elif isinstance(act, Goto):
                self.img, self.xseg = self._load(act.index)
                self.state = face_loaded(self.state, act.index, self.img.shape[0], load_polys(self.faces[act.index]))
            elif isinstance(act, Trash):
                trash_face(self.faces.pop(act.index))
            elif isinstance(act, CopyFrom):
                self.state = paste(self.state, load_polys(self.faces[act.index]))
        self.dirty = True

    def on_mouse(self, event: int, x: int, y: int, flags: int, param=None) -> None:
        self.state, actions = handle_mouse(self.state, event, x, y, flags)
        self.act(actions)

    def on_key(self, key: int) -> None:
        self.state, actions = handle_key(self.state, key)
        self.act(actions)

    def show(self) -> None:
        cv2.imshow(TITLE, compose_view(self.img, self.xseg, self.state, self.faces[self.state.index].name))
        self.dirty = False


def run_editor(faces: list[Path], window_size: int = 768, predict: Predict | None = None) -> EditorState:
    """Edit the polygons of `faces` until Esc (or the window is closed, which saves the same way)."""
    open_window(TITLE, NO_DISPLAY)
    ed = _Editor(faces, window_size, predict)
    cv2.setMouseCallback(TITLE, ed.on_mouse)
    while not ed.state.quit:
        if ed.dirty:
            ed.show()
        key = cv2.waitKeyEx(POLL_MS)
        if key >= 0:
            ed.on_key(key if key in KEYS_DELETE else key & 0xFF)
        elif ed.close_watch.closed():
            ed.on_key(KEY_ESC)
    try:
        cv2.destroyWindow(TITLE)
    except cv2.error:
        pass
    return ed.state
