"""The XSeg editor's controls as a pure state machine (DeepFaceLab's XSegEditor keys, no Qt).

`handle_key(state, key)` and `handle_mouse(state, event, x, y, flags)` return the new
`EditorState` and a list of actions for the window: `Save` (write these polygons into face
`index`), `Goto` (show face `index`; answer with `face_loaded`), `CopyFrom` (send face
`index`'s polygons back with `paste`), `Trash` (move face `index` out of the folder) and `Quit`. Nothing here touches pixels or files;
mainscripts/xseg/xseg_editor.py is the OpenCV shell. Mouse positions are window pixels of a
square canvas; the state maps them to face pixels through its zoom and pan.

Keys: q / w start an include / exclude polygon; left click adds a point, a click on the
first point, a right click or Enter closes it; drag a point to move it; Ctrl+click on a
point deletes it, on an edge inserts one; z (Ctrl+Z) undo, Z (Ctrl+Y) redo; Del or
Backspace deletes the polygon under the cursor (else the last one); c copies the previous
face's polygons; 1 image, 4 label mask, 5 XSeg mask, ` XSeg overlay; wheel or - / = zoom,
middle drag pans; a / d save and go to the previous / next face, , / . go without saving;
x saves and moves the face to `<folder>_trash` (DeepFaceLab's trash key), showing the next;
Tab help; Esc saves and closes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Union

import numpy as np

from core.facelib.xseg_polys import MIN_POINTS, Poly

EVENT_MOUSEMOVE, EVENT_LBUTTONDOWN, EVENT_RBUTTONDOWN, EVENT_MBUTTONDOWN = 0, 1, 2, 3
EVENT_LBUTTONUP, EVENT_MBUTTONUP, EVENT_MOUSEWHEEL = 4, 6, 10
FLAG_CTRLKEY = 8
KEY_TAB, KEY_ESC, KEYS_ENTER, KEY_BACKSPACE = 9, 27, (10, 13), 8
KEYS_DELETE = (0x7F, 0xFFFF, 0x2E0000)        # Del as cv2.waitKeyEx reports it (ASCII, GTK, Qt/Windows)
KEYS_UNDO, KEYS_REDO = (ord("z"), 26), (ord("Z"), 25)
VIEWS = ("image", "label mask", "xseg mask", "xseg overlay")
VIEW_KEYS = {ord("1"): 0, ord("4"): 1, ord("5"): 2, ord("`"): 3}
PICK_RADIUS = 8.0               # window pixels within which a point or edge is "under the mouse"
ZOOM_STEP, ZOOM_MIN, ZOOM_MAX = 1.25, -4, 12

KEY_HELP: list[tuple[str, str]] = [
    ("q / w", "new include / exclude polygon"),
    ("left click", "add a point (on the first point: close)"),
    ("right click, Enter", "close the polygon"),
    ("drag a point", "move it"),
    ("Ctrl+click", "delete a point / insert one on an edge"),
    ("z / Z (Ctrl+Z / Ctrl+Y)", "undo / redo"),
    ("Del, Backspace", "delete the polygon under the mouse"),
    ("c", "copy the previous face's polygons"),
    ("1 4 5 `", "image / label mask / XSeg mask / XSeg overlay"),
    ("wheel, - / =", "zoom; middle drag: pan"),
    ("a / d", "save, previous / next face"),
    (", / .", "previous / next face without saving"),
    ("x", "move this face to <folder>_trash, show the next"),
    ("Tab", "hide / show this help"),
    ("Esc", "save and close"),
]


@dataclass(frozen=True)
class Save:
    index: int
    polys: tuple[Poly, ...]


@dataclass(frozen=True)
class Goto:
    index: int


@dataclass(frozen=True)
class CopyFrom:
    index: int


@dataclass(frozen=True)
class Trash:
    index: int          # move this face out; the faces after it move up one index


@dataclass(frozen=True)
class Quit:
    pass


Action = Union[Save, Goto, CopyFrom, Trash, Quit]
Snapshot = tuple[tuple[Poly, ...], bool]      # (polygons, is the last one still being drawn)


@dataclass(frozen=True)
class EditorState:
    """Where the editor is; every handler returns a new one."""
    n_faces: int
    face_size: int
    window_size: int
    index: int = 0
    polys: tuple[Poly, ...] = ()
    loaded: tuple[Poly, ...] = ()           # as read from the file: Save only when they differ
    drawing: bool = False                   # the last polygon is open, clicks add points to it
    undo: tuple[Snapshot, ...] = ()
    redo: tuple[Snapshot, ...] = ()
    view: int = 0
    zoom: int = 0
    center: tuple[float, float] = (0.0, 0.0)   # face pixel at the canvas centre
    cursor: tuple[float, float] = (0.0, 0.0)   # face pixels
    drag_point: tuple[int, int] | None = None  # (polygon, point) being moved
    pan_from: tuple[float, float] | None = None
    show_help: bool = True
    quit: bool = False

    @classmethod
    def new(cls, n_faces: int, face_size: int, polys: tuple[Poly, ...] = (), window_size: int = 768) -> EditorState:
        s = float(face_size) / 2
        return cls(n_faces=n_faces, face_size=face_size, window_size=window_size, polys=polys, loaded=polys,
                   center=(s, s), cursor=(s, s))

    @property
    def scale(self) -> float:
        """Canvas pixels per face pixel."""
        return self.window_size / self.face_size * ZOOM_STEP ** self.zoom

    def to_face(self, x: float, y: float) -> tuple[float, float]:
        half, s = self.window_size / 2, self.scale
        return ((x - half) / s + self.center[0], (y - half) / s + self.center[1])

    def to_window(self, pts: np.ndarray) -> np.ndarray:
        return (np.asarray(pts, np.float64) - self.center) * self.scale + self.window_size / 2

    @property
    def finished(self) -> tuple[Poly, ...]:
        """The labels as they would be saved: closed polygons of at least three points."""
        polys = self.polys[:-1] if self.drawing else self.polys
        return tuple(p for p in polys if len(p.points) >= MIN_POINTS)

    @property
    def modified(self) -> bool:
        return self.finished != self.loaded


def _edit(state: EditorState, polys: tuple[Poly, ...], drawing: bool | None = None) -> EditorState:
    """A change that undo can take back."""
    return replace(state, polys=polys, drawing=state.drawing if drawing is None else drawing,
                   undo=state.undo + ((state.polys, state.drawing),), redo=())


def _close(state: EditorState) -> EditorState:
    """Close the open polygon; one with too few points is dropped (it encloses nothing)."""
    if not state.drawing:
        return state
    if len(state.polys[-1].points) < MIN_POINTS:
        return _edit(state, state.polys[:-1], drawing=False)
    return replace(state, drawing=False)


def _leave(state: EditorState, target: int, save: bool) -> tuple[EditorState, list[Action]]:
    state = _close(state)
    actions: list[Action] = [Save(state.index, state.finished)] if save and state.modified else []
    if 0 <= target < state.n_faces and target != state.index:
        actions.append(Goto(target))
    return state, actions


def _trash(state: EditorState) -> tuple[EditorState, list[Action]]:
    """x: save this face's labels, move it to the trash folder, show the face that took its place."""
    state, actions = _leave(state, state.index, save=True)
    left = state.n_faces - 1
    actions.append(Trash(state.index))
    if left == 0:
        return replace(state, n_faces=0, quit=True), actions + [Quit()]
    return replace(state, n_faces=left), actions + [Goto(min(state.index, left - 1))]


def face_loaded(state: EditorState, index: int, face_size: int, polys: tuple[Poly, ...]) -> EditorState:
    """The window has shown face `index`: fresh history, view fitted to the face."""
    s = float(face_size) / 2
    return replace(state, index=index, face_size=face_size, polys=polys, loaded=polys, drawing=False, undo=(),
                   redo=(), zoom=0, center=(s, s), drag_point=None, pan_from=None)


def saved(state: EditorState, index: int, polys: tuple[Poly, ...]) -> EditorState:
    """The window wrote `polys` into face `index`."""
    return replace(state, loaded=polys) if index == state.index else state


def paste(state: EditorState, polys: tuple[Poly, ...]) -> EditorState:
    """Replace this face's polygons by another face's (c); undo brings the old ones back."""
    return _edit(_close(state), tuple(polys), drawing=False) if polys else state


def _near_point(state: EditorState) -> tuple[int, int] | None:
    r = PICK_RADIUS / state.scale
    best, best_d = None, r
    for i, p in enumerate(state.polys):
        if not p.points:
            continue
        d = np.hypot(*(np.asarray(p.points) - state.cursor).T)
        j = int(np.argmin(d))
        if d[j] <= best_d:
            best, best_d = (i, j), float(d[j])
    return best


def _near_edge(state: EditorState) -> tuple[int, int] | None:
    """(polygon, index to insert at) of the closed-polygon edge under the cursor."""
    r, c = PICK_RADIUS / state.scale, np.asarray(state.cursor)
    for i, p in enumerate(state.finished):
        pts = np.asarray(p.points)
        for j in range(len(pts)):
            a, b = pts[j], pts[(j + 1) % len(pts)]
            ab = b - a
            t = np.clip(np.dot(c - a, ab) / max(float(np.dot(ab, ab)), 1e-9), 0, 1)
            if np.hypot(*(a + t * ab - c)) <= r:
                return i, j + 1
    return None


def _under_cursor(state: EditorState) -> int | None:
    """Index of the topmost finished polygon containing the cursor."""
    import cv2
    for i in range(len(state.finished) - 1, -1, -1):
        pts = np.asarray(state.polys[i].points, np.float32)
        if cv2.pointPolygonTest(pts, state.cursor, False) >= 0:
            return i
    return None


def _with_point(p: Poly, j: int, pt: tuple[float, float] | None, insert: bool = False) -> Poly:
    pts = list(p.points)
    if pt is None:
        del pts[j]
    elif insert:
        pts.insert(j, pt)
    else:
        pts[j] = pt
    return Poly(p.kind, tuple(pts))


def _set(polys: tuple[Poly, ...], i: int, p: Poly | None) -> tuple[Poly, ...]:
    return polys[:i] + ((p,) if p is not None else ()) + polys[i + 1:]


def handle_key(state: EditorState, key: int) -> tuple[EditorState, list[Action]]:
    """(new state, actions) for one cv2.waitKeyEx code."""
    ch = chr(key) if 0 <= key < 128 else ""
    if key == KEY_ESC:
        state, actions = _leave(state, state.index, save=True)
        return replace(state, quit=True), actions + [Quit()]
    if key == KEY_TAB:
        return replace(state, show_help=not state.show_help), []
    if ch in ("q", "w"):
        state = _close(state)
        kind = "include" if ch == "q" else "exclude"
        return _edit(state, state.polys + (Poly(kind, ()),), drawing=True), []
    if key in KEYS_ENTER:
        return _close(state), []
    if key in KEYS_UNDO and state.undo:
        (polys, drawing), undo = state.undo[-1], state.undo[:-1]
        return replace(state, polys=polys, drawing=drawing, undo=undo,
                       redo=state.redo + ((state.polys, state.drawing),), drag_point=None), []
    if key in KEYS_REDO and state.redo:
        (polys, drawing), redo = state.redo[-1], state.redo[:-1]
        return replace(state, polys=polys, drawing=drawing, redo=redo,
                       undo=state.undo + ((state.polys, state.drawing),), drag_point=None), []
    if key in KEYS_DELETE or key == KEY_BACKSPACE:
        i = len(state.polys) - 1 if state.drawing else _under_cursor(state)
        i = len(state.polys) - 1 if i is None else i
        return (_edit(state, _set(state.polys, i, None), drawing=False) if i >= 0 else state), []
    if ch == "c":
        return state, ([CopyFrom(state.index - 1)] if state.index > 0 else [])
    if key in VIEW_KEYS:
        view = VIEW_KEYS[key]
        return replace(state, view=0 if state.view == view else view), []
    if ch in ("-", "="):
        return _zoom(state, -1 if ch == "-" else 1), []
    if ch in ("a", "d"):
        return _leave(state, state.index + (1 if ch == "d" else -1), save=True)
    if ch in (",", "."):
        return _leave(state, state.index + (1 if ch == "." else -1), save=False)
    if ch == "x":
        return _trash(state)
    return state, []


def _zoom(state: EditorState, step: int) -> EditorState:
    zoom = int(np.clip(state.zoom + step, ZOOM_MIN, ZOOM_MAX))
    if zoom == state.zoom:
        return state
    # keep the face pixel under the cursor where it is on the canvas
    k = ZOOM_STEP ** (state.zoom - zoom)
    cx, cy = state.center
    ux, uy = state.cursor
    return replace(state, zoom=zoom, center=(ux + (cx - ux) * k, uy + (cy - uy) * k))


def handle_mouse(state: EditorState, event: int, x: float, y: float, flags: int) -> tuple[EditorState, list[Action]]:
    """(new state, actions) for one OpenCV mouse event at canvas pixel (x, y)."""
    cursor = state.to_face(x, y)
    state = replace(state, cursor=cursor)
    if event == EVENT_MOUSEMOVE:
        if state.drag_point is not None:
            i, j = state.drag_point
            return replace(state, polys=_set(state.polys, i, _with_point(state.polys[i], j, cursor))), []
        if state.pan_from is not None:
            fx, fy = state.pan_from
            cx, cy = state.center
            return replace(state, center=(cx + fx - cursor[0], cy + fy - cursor[1])), []
        return state, []
    if event == EVENT_LBUTTONDOWN:
        return _left_click(state, bool(flags & FLAG_CTRLKEY)), []
    if event == EVENT_LBUTTONUP:
        return replace(state, drag_point=None), []
    if event == EVENT_RBUTTONDOWN:
        return _close(state), []
    if event == EVENT_MBUTTONDOWN:
        return replace(state, pan_from=cursor), []
    if event == EVENT_MBUTTONUP:
        return replace(state, pan_from=None), []
    if event == EVENT_MOUSEWHEEL:
        return _zoom(state, 1 if np.int32(flags) > 0 else -1), []
    return state, []


def _left_click(state: EditorState, ctrl: bool) -> EditorState:
    if state.drawing:
        open_poly = state.polys[-1]
        near = _near_point(state)
        if len(open_poly.points) >= MIN_POINTS and near == (len(state.polys) - 1, 0):
            return _close(state)
        return _edit(state, _set(state.polys, len(state.polys) - 1,
                                 Poly(open_poly.kind, open_poly.points + (state.cursor,))))
    near = _near_point(state)
    if ctrl:
        if near is not None:
            i, j = near
            p = _with_point(state.polys[i], j, None)
            return _edit(state, _set(state.polys, i, p if len(p.points) >= MIN_POINTS else None))
        edge = _near_edge(state)
        if edge is not None:
            i, j = edge
            return _edit(state, _set(state.polys, i, _with_point(state.polys[i], j, state.cursor, insert=True)))
        return state
    if near is not None:                 # start moving it; the whole drag is one undo step
        return replace(_edit(state, state.polys), drag_point=near)
    return state


def status_line(state: EditorState, name: str) -> str:
    inc = sum(p.kind == "include" for p in state.finished)
    exc = len(state.finished) - inc
    drawing = f" | drawing {state.polys[-1].kind} ({len(state.polys[-1].points)} pts)" if state.drawing else ""
    return (f"{name} [{state.index + 1}/{state.n_faces}] | {inc} include, {exc} exclude{drawing} | "
            f"view: {VIEWS[state.view]} | zoom {state.scale:.2f}x{' | modified' if state.modified else ''} | "
            "Tab: help")
