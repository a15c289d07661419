"""The manual extractor's OpenCV window: a thin shell around core.facelib.manual_state.

`run_window(frames, decide, ...)` shows each frame scaled to the window size, feeds mouse
events (setMouseCallback) and cv2.waitKey codes to the state machine, runs the face mesh
on the rectangle the user places (`landmarks_for_rect`) and hands every decided frame to
`decide(frame_path, image, faces)`, which writes it like automatic extraction does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from core.windows import CloseWatch, open_window, text_panel
from core.facelib.draw import draw_landmarks
from core.facelib.face_finder import FoundFace
from core.facelib.face_type import FaceType
from core.facelib.geometry import crop_rect_in_frame, face_transform
from core.facelib.landmarker import MAX_PASSES, ROI_SCALE, FaceLandmarker
from core.facelib.manual_state import (KEY_HELP, Accept, ComputeLandmarks, Goto, ManualState, Rect, Skip,
                                       frame_loaded, handle_key, handle_mouse, set_landmarks, status_line)
from core.fileio import read_image

Decide = Callable[[Path, np.ndarray, list[FoundFace]], None]

NO_DISPLAY = "manual extraction needs a display (no X/Wayland display found); run it on a desktop session"
POLL_MS = 50
FONT, FONT_SCALE, LINE_H = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 20
UNREADABLE_SIZE = (640, 360)


def view_scale(frame_size: tuple[int, int], window_size: int) -> float:
    """Scale that fits a (w, h) frame's longer side to `window_size` pixels (DeepFaceLab's window)."""
    return window_size / max(frame_size)


def landmarks_for_rect(landmarker: FaceLandmarker, img: np.ndarray, rect: Rect, accurate: bool = True
                       ) -> np.ndarray | None:
    """68 landmarks of the face in a user-given rectangle, or None if the mesh sees no face there.

    The rectangle plays the detector box: the mesh's first crop is 1.5x its longer side,
    upright; the refinement passes then re-centre and re-rotate on the mesh's own points.
    Accurate mode runs every refinement pass, the fast mode one.
    """
    l, t, r, b = rect
    centre = np.array([(l + r) / 2, (t + b) / 2])
    side = max(r - l, b - t) * ROI_SCALE
    old, landmarker.passes = landmarker.passes, (MAX_PASSES if accurate else 1)
    try:
        found = landmarker.refine(img, centre, side, np.array([1.0, 0.0]))
    finally:
        landmarker.passes = old
    return None if found is None else found.points68.astype(np.float32)


def _panel(lines: list[str], width: int) -> np.ndarray:
    return text_panel(lines, width, FONT_SCALE, LINE_H, shade=32)


def compose_view(img: np.ndarray, state: ManualState, scale: float, name: str, face_type: FaceType) -> np.ndarray:
    """The frame scaled to the window, with rectangle, landmarks, crop outline, help and status line."""
    h, w = img.shape[:2]
    view = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    colour = (255, 128, 0) if state.rect_mode else (0, 0, 255) if state.locked else (0, 255, 255)
    l, t, r, b = (round(v * scale) for v in state.rect)
    cv2.rectangle(view, (l, t), (r, b), colour, 2 if state.locked else 1)
    face = state.face
    if face is not None:
        lm = np.asarray(face.landmarks, np.float32)
        draw_landmarks(view, lm * scale, (0, 255, 0), 1)
        if face_type != FaceType.MARK_ONLY:
            quad = crop_rect_in_frame(face_transform(lm, face_type, 256), 256) * scale
            cv2.polylines(view, [np.round(quad).astype(np.int32).reshape(-1, 1, 2)], True, (255, 255, 0), 1,
                          cv2.LINE_AA)
    if state.show_help:
        lines = [f"{k}: {d}" for k, d in KEY_HELP]
        text_w = max(cv2.getTextSize(line, FONT, FONT_SCALE, 1)[0][0] for line in lines)
        panel = _panel(lines, min(view.shape[1], text_w + 12))
        ph, pw = min(panel.shape[0], view.shape[0]), panel.shape[1]
        view[:ph, :pw] = cv2.addWeighted(view[:ph, :pw], 0.3, panel[:ph], 0.7, 0)
    return np.concatenate([view, _panel([status_line(state, name)], view.shape[1])], axis=0)


class _Window:
    def __init__(self, title: str, frames: list[Path], decide: Decide, window_size: int, face_type: FaceType,
                 landmarker: FaceLandmarker):
        self.title, self.frames, self.decide = title, frames, decide
        self.window_size, self.face_type, self.landmarker = window_size, face_type, landmarker
        self.pending: list = []
        self.dirty = True
        self.close_watch = CloseWatch(title)
        self.index, self.img, self.readable = -1, np.zeros((1, 1, 3), np.uint8), False
        self.load(0)
        self.state = ManualState.new(len(frames), self.size)

    @property
    def size(self) -> tuple[int, int]:
        return self.img.shape[1], self.img.shape[0]

    @property
    def scale(self) -> float:
        return view_scale(self.size, self.window_size)

    def load(self, index: int) -> None:
        img = read_image(self.frames[index])
        self.readable = img is not None
        self.img = img if img is not None else np.zeros((UNREADABLE_SIZE[1], UNREADABLE_SIZE[0], 3), np.uint8)
        self.index = index

    def on_mouse(self, event: int, x: int, y: int, flags: int, param=None) -> None:
        s = self.scale
        self.state, actions = handle_mouse(self.state, event, x / s, y / s, flags)
        self.pending += actions
        self.dirty = True

    def on_key(self, key: int) -> None:
        self.state, actions = handle_key(self.state, key)
        self.pending += actions
        self.dirty = True

    def run_actions(self) -> None:
        """Carry out queued actions in order; landmarks once, for the rectangle as it is now."""
        compute = False
        while self.pending:
            act = self.pending.pop(0)
            if isinstance(act, Goto):
                self.load(act.index)
                self.state, more = frame_loaded(self.state, self.size)
                self.pending += more
                compute = False
            elif isinstance(act, ComputeLandmarks):
                compute = compute or act.index == self.state.index
            elif isinstance(act, (Accept, Skip)) and act.index == self.index and self.readable:
                faces = act.faces if isinstance(act, Accept) else ()
                self.decide(self.frames[act.index], self.img,
                            [FoundFace(np.round(f.rect).astype(int), np.asarray(f.landmarks, np.float32), 1.0)
                             for f in faces])
        if compute and self.state.face is None:
            rect = self.state.rect
            lm = landmarks_for_rect(self.landmarker, self.img, rect, self.state.accurate) if self.readable else None
            self.state = set_landmarks(self.state, self.state.index, rect, lm)
        self.dirty = True

    def show(self) -> None:
        name = self.frames[self.index].name + ("" if self.readable else " (unreadable)")
        cv2.imshow(self.title, compose_view(self.img, self.state, self.scale, name, self.face_type))
        self.dirty = False


def run_window(frames: list[Path], decide: Decide, window_size: int = 1368,
               face_type: FaceType = FaceType.WHOLE_FACE, title: str = "Visage manual extract",
               ibug68: bool = False) -> ManualState:
    """Show `frames` one by one until every one is decided or the user quits; returns the final state."""
    if not frames:
        raise ValueError("no frames to show")
    open_window(title, NO_DISPLAY)
    win = _Window(title, list(frames), decide, window_size, face_type, FaceLandmarker(ibug68=ibug68))
    cv2.setMouseCallback(title, win.on_mouse)
    win.pending.append(ComputeLandmarks(0, win.state.rect, win.state.accurate))
    while not win.state.quit:
        if win.pending:
            win.run_actions()
        if win.dirty:
            win.show()
        key = cv2.waitKey(POLL_MS)
        if key >= 0:
            win.on_key(key & 0xFF)
        elif win.close_watch.closed():
            win.on_key(ord("q"))
    win.run_actions()                 # the last Accept / Skip before quitting
    try:
        cv2.destroyWindow(title)
    except cv2.error:
        pass
    return win.state
