"""Manual face extraction's controls as a pure state machine (DeepFaceLab's key and mouse map).

`handle_key(state, key)` and `handle_mouse(state, event, x, y, flags)` return the new
`ManualState` and a list of actions for the window to carry out: `ComputeLandmarks` (run
the landmarker on this rectangle and hand the result back with `set_landmarks`), `Accept`
(write this frame's faces), `Skip` (this frame has no face to keep), `Goto` (show another
frame; answer with `frame_loaded`) and `Quit`. Nothing here opens a window or touches
pixels; mainscripts/extract/manual_extract.py is the OpenCV shell. Coordinates are frame pixels:
the window divides its view scale out of the mouse position first.

Controls: the rectangle follows the mouse; the wheel resizes it; a left click locks or
unlocks it; a right click toggles rectangle mode, where a left-button drag draws the
rectangle (it is locked when the button is released); Enter accepts the face and goes to
the next frame, Space skips the frame; `,` / `.` previous / next frame; q (or Esc) quits,
keeping what was accepted; `a` toggles accurate landmarks (more refinement passes); `h`
hides the help. One face per frame, as in DeepFaceLab. The lock and the rectangle carry
over to the next frame, so a still subject is extracted with Enter, Enter, Enter.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Union

# cv2's mouse event codes (cv2 itself is not imported here)
EVENT_MOUSEMOVE, EVENT_LBUTTONDOWN, EVENT_RBUTTONDOWN, EVENT_LBUTTONUP, EVENT_MOUSEWHEEL = 0, 1, 2, 4, 10
KEYS_ENTER, KEY_SPACE, KEY_ESC = (10, 13), 32, 27
MIN_HALF = 8.0              # smallest rectangle: 16 frame pixels across
START_FRACTION = 1 / 8      # a new rectangle's half side, as a fraction of the frame's longer side

Rect = tuple[float, float, float, float]     # l, t, r, b in frame pixels

KEY_HELP: list[tuple[str, str]] = [
    ("mouse", "place the face rectangle"),
    ("wheel", "rectangle size"),
    ("left click", "lock / unlock the rectangle"),
    ("right click", "rectangle mode on / off: drag the rectangle"),
    ("Enter", "accept this face, next frame"),
    ("Space", "skip this frame (no face)"),
    (", / .", "previous / next frame"),
    ("q", "quit (accepted faces are kept)"),
    ("a", "accurate landmarks on / off"),
    ("h", "hide / show this help"),
]


class ManualFace(NamedTuple):
    rect: Rect
    landmarks: Any          # (68, 2) float32 frame pixels


@dataclass(frozen=True)
class ComputeLandmarks:
    index: int
    rect: Rect
    accurate: bool


@dataclass(frozen=True)
class Accept:
    index: int
    faces: tuple[ManualFace, ...]


@dataclass(frozen=True)
class Skip:
    index: int


@dataclass(frozen=True)
class Goto:
    index: int


@dataclass(frozen=True)
class Quit:
    pass


Action = Union[ComputeLandmarks, Accept, Skip, Goto, Quit]


@dataclass(frozen=True)
class ManualState:
    """Where the manual extractor is. Treated as immutable: every handler returns a new one."""
    n_frames: int
    frame_size: tuple[int, int]                 # (w, h) of the current frame
    center: tuple[float, float]
    half: tuple[float, float]                   # half width, half height of the rectangle
    index: int = 0
    locked: bool = False
    rect_mode: bool = False
    drag_from: tuple[float, float] | None = None
    accurate: bool = True
    show_help: bool = True
    quit: bool = False
    landmarks: Any = field(default=None, compare=False)   # for `landmarks_rect` on this frame
    landmarks_rect: Rect | None = None
    decided: dict[int, tuple[ManualFace, ...]] = field(default_factory=dict, compare=False)

    @classmethod
    def new(cls, n_frames: int, frame_size: tuple[int, int]) -> ManualState:
        w, h = frame_size
        s = max(MIN_HALF, max(w, h) * START_FRACTION)
        return cls(n_frames=n_frames, frame_size=(w, h), center=(w / 2, h / 2), half=(s, s))

    @property
    def rect(self) -> Rect:
        (cx, cy), (hw, hh) = self.center, self.half
        return (cx - hw, cy - hh, cx + hw, cy + hh)

    @property
    def max_half(self) -> float:
        return max(MIN_HALF, max(self.frame_size) / 2)

    @property
    def face(self) -> ManualFace | None:
        """The face Enter would accept: the landmarks of the rectangle as it is now."""
        if self.landmarks is None or self.landmarks_rect != self.rect:
            return None
        return ManualFace(self.rect, self.landmarks)


def _clamp(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def _at(state: ManualState, x: float, y: float) -> tuple[float, float]:
    w, h = state.frame_size
    return (_clamp(float(x), 0.0, float(w)), _clamp(float(y), 0.0, float(h)))


def _compute(state: ManualState) -> list[Action]:
    return [ComputeLandmarks(state.index, state.rect, state.accurate)]


def _moved(old: ManualState, new: ManualState) -> tuple[ManualState, list[Action]]:
    """Landmarks are recomputed whenever the rectangle changes."""
    return (new, _compute(new)) if new.rect != old.rect else (new, [])


def wheel_delta(flags: int) -> int:
    """cv2.getMouseWheelDelta without cv2: the signed high 16 bits of `flags`."""
    d = (int(flags) >> 16) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


def _wheel(state: ManualState, flags: int) -> tuple[ManualState, list[Action]]:
    d = wheel_delta(flags)
    if d == 0:
        return state, []
    s = max(state.half)
    step = 1.0 if s <= 40 else _clamp(s / 10, 1.0, 10.0)          # DeepFaceLab's step
    new_s = _clamp(s + (step if d > 0 else -step), MIN_HALF, state.max_half)
    k = new_s / s
    return _moved(state, replace(state, half=(state.half[0] * k, state.half[1] * k)))


def _drag(state: ManualState, event: int, x: float, y: float) -> tuple[ManualState, list[Action]]:
    """Rectangle mode: press, drag and release the left button to draw the face rectangle."""
    if event == EVENT_LBUTTONDOWN:
        return replace(state, drag_from=(x, y), locked=False), []
    if state.drag_from is None or event not in (EVENT_MOUSEMOVE, EVENT_LBUTTONUP):
        return state, []
    (x0, y0), lim = state.drag_from, state.max_half
    half = (_clamp(abs(x - x0) / 2, MIN_HALF, lim), _clamp(abs(y - y0) / 2, MIN_HALF, lim))
    new = replace(state, center=((x0 + x) / 2, (y0 + y) / 2), half=half)
    if event == EVENT_LBUTTONUP:
        new = replace(new, drag_from=None, locked=True)
        return new, _compute(new)
    return _moved(state, new)


def handle_mouse(state: ManualState, event: int, x: float, y: float, flags: int = 0
                 ) -> tuple[ManualState, list[Action]]:
    """(new state, actions) for one mouse event at frame position (x, y)."""
    if state.quit:
        return state, []
    x, y = _at(state, x, y)
    if event == EVENT_MOUSEWHEEL:
        return _wheel(state, flags)
    if event == EVENT_RBUTTONDOWN:
        s = max(state.half)
        square = state.half if not state.rect_mode else (s, s)
        return _moved(state, replace(state, rect_mode=not state.rect_mode, drag_from=None, half=square))
    if state.rect_mode:
        return _drag(state, event, x, y)
    if event == EVENT_MOUSEMOVE:
        return (state, []) if state.locked else _moved(state, replace(state, center=(x, y)))
    if event == EVENT_LBUTTONDOWN:
        new = replace(state, locked=not state.locked, center=(x, y))
        return new, _compute(new)                      # locking re-reads the landmarks
    return state, []


def _goto(state: ManualState, index: int) -> tuple[ManualState, list[Action]]:
    """Show frame `index`: an accepted frame comes back with its face; otherwise the rectangle stays."""
    faces = state.decided.get(index)
    new = replace(state, index=index, landmarks=None, landmarks_rect=None, drag_from=None)
    if faces:
        l, t, r, b = faces[0].rect
        new = replace(new, center=((l + r) / 2, (t + b) / 2), half=((r - l) / 2, (b - t) / 2), locked=True,
                      landmarks=faces[0].landmarks, landmarks_rect=faces[0].rect)
        return new, [Goto(index)]
    return new, [Goto(index), *_compute(new)]


def _decide(state: ManualState, faces: tuple[ManualFace, ...] | None) -> tuple[ManualState, list[Action]]:
    """Enter (faces) / Space (None): record the frame, then the next frame or, after the last, quit."""
    decided = {**state.decided, state.index: faces or ()}
    act: Action = Accept(state.index, faces) if faces is not None else Skip(state.index)
    state = replace(state, decided=decided)
    if state.index + 1 >= state.n_frames:
        return replace(state, quit=True), [act, Quit()]
    new, acts = _goto(state, state.index + 1)
    return new, [act, *acts]


def handle_key(state: ManualState, key: int) -> tuple[ManualState, list[Action]]:
    """(new state, actions) for one cv2.waitKey code (masked to 0..255); -1 = no key."""
    if state.quit or key < 0:
        return state, []
    if key in KEYS_ENTER:
        face = state.face
        return _decide(state, (face,) if face is not None else ())
    if key == KEY_SPACE:
        return _decide(state, None)
    ch = chr(key) if key < 256 else ""
    if ch == "," and state.index > 0:
        return _goto(state, state.index - 1)
    if ch == "." and state.index + 1 < state.n_frames:
        return _goto(state, state.index + 1)
    if ch in ("q", "Q") or key == KEY_ESC:
        return replace(state, quit=True), [Quit()]
    if ch == "a":
        new = replace(state, accurate=not state.accurate)
        return new, _compute(new)
    if ch == "h":
        return replace(state, show_help=not state.show_help), []
    return state, []


def set_landmarks(state: ManualState, index: int, rect: Rect, landmarks: Any) -> ManualState:
    """The window's answer to ComputeLandmarks; ignored when the rectangle has moved on since."""
    if index != state.index or rect != state.rect:
        return state
    return replace(state, landmarks=landmarks, landmarks_rect=rect)


def frame_loaded(state: ManualState, frame_size: tuple[int, int]) -> tuple[ManualState, list[Action]]:
    """The window's answer to Goto: keep the rectangle inside a frame of another size."""
    new = replace(state, frame_size=tuple(frame_size))
    cx, cy = _at(new, *state.center)
    lim = new.max_half
    new = replace(new, center=(cx, cy), half=(min(state.half[0], lim), min(state.half[1], lim)))
    return _moved(state, new)


def status_line(state: ManualState, name: str) -> str:
    parts = [f"frame {state.index + 1}/{state.n_frames} {name}", "locked" if state.locked else "follows mouse"]
    if state.rect_mode:
        parts.append("rectangle mode (drag)")
    parts.append(f"accurate {'on' if state.accurate else 'off'}")
    if state.index in state.decided:
        n = len(state.decided[state.index])
        parts.append(f"accepted: {n} face" if n else "skipped")
    if state.face is None:
        parts.append("no face in the rectangle")
    parts.append("h: help")
    return " | ".join(parts)
