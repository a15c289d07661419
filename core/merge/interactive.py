"""The interactive merger's key handling as a pure state machine, plus its session file.

`handle_key(state, key)` maps one cv2.waitKey code to a new `MergerState` and the frame
indices whose config became final (the caller writes those frames). Nothing here opens a
window or touches pixels: mainscripts/merge/merger_window.py is the OpenCV shell around it.

DeepFaceLab's key map; Shift (the uppercase or shifted character) steps by 5:
`~1..6 mode; q/a w/s e/d r/f y/h u/j i/k o/l p/; numeric modifiers up/down; z masked hist
match; x c n (X C N backwards) cycle mask mode, colour transfer, sharpen mode; `,` `.` `<`
`>` `m` `M` `/` `?` navigation; -/= zoom; v checkerboard; Tab help; Esc save and quit.
t/g (super resolution) are deliberately absent: no installed package ships a face-enhancer
model. `]` / `[` (Shift: `}` / `{`) raise / lower AMP's morph factor by 0.05 (0.25); DeepFaceLab
asks it once per merge and has no key for it, so the keys are new and act only when the
model takes a morph value (`MergerState.morph`).

Choices where DeepFaceLab leaves room: `?` gives every frame after the current one the
current config and starts auto-processing from the current frame (DeepFaceLab-like);
those frames become final as processing reaches them. `M` gives every previous frame the
current config and goes to the first frame; all frames up to and including the one left
are returned as final (the earlier ones were already written with their old config).

The session file is JSON (never pickle), written atomically; a damaged or mismatched file
is reported in one line and ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from core import interact
from core.errors import VisageError
from core.fileio import atomic_write_json, read_json
from core.merge.config import MASK_MODES, MODES, SCHEMA, MergerConfig, adjust, cycle, toggle

SESSION_VERSION = 1
ZOOM_MIN, ZOOM_MAX = -6, 4
KEY_TAB, KEY_ESC = 9, 27
SHIFT_STEP = 5

MODE_KEYS = "`123456"                                  # index = position in MODES
ADJUST_KEYS: tuple[tuple[str, str, str], ...] = (      # (up key, down key, field)
    ("q", "a", "hist_match_threshold"),
    ("w", "s", "erode_mask_modifier"),
    ("e", "d", "blur_mask_modifier"),
    ("r", "f", "motion_blur_power"),
    ("y", "h", "blursharpen_amount"),
    ("u", "j", "output_face_scale"),
    ("i", "k", "image_denoise_power"),
    ("o", "l", "bicubic_degrade_power"),
    ("p", ";", "color_degrade_power"),
)
CYCLE_KEYS: tuple[tuple[str, str], ...] = (("x", "mask_mode"), ("c", "color_transfer_mode"), ("n", "sharpen_mode"))
MORPH_STEP = 0.05
MORPH_KEYS = {"]": MORPH_STEP, "[": -MORPH_STEP, "}": SHIFT_STEP * MORPH_STEP, "{": -SHIFT_STEP * MORPH_STEP}
_SHIFTED = {";": ":"}


def _shift(ch: str) -> str:
    return _SHIFTED.get(ch, ch.upper())


_ADJUST: dict[str, tuple[str, int]] = {}
for _up, _down, _field in ADJUST_KEYS:
    _ADJUST.update({_up: (_field, 1), _shift(_up): (_field, SHIFT_STEP),
                    _down: (_field, -1), _shift(_down): (_field, -SHIFT_STEP)})
_CYCLE: dict[str, tuple[str, int]] = {}
for _key, _field in CYCLE_KEYS:
    _CYCLE.update({_key: (_field, 1), _key.upper(): (_field, -1)})

KEY_HELP: list[tuple[str, str]] = [
    ("Tab", "show / hide this help"),
    ("Esc", "write the current frame, save the session and quit"),
    (", / .", "previous / next frame"),
    ("<", "first frame"),
    (">", "process the remaining frames automatically (any key stops)"),
    ("m", "previous frame, giving it this frame's settings"),
    ("M", "give all previous frames this frame's settings, go to the first"),
    ("/", "next frame, giving it this frame's settings"),
    ("?", "give all following frames this frame's settings and process them"),
    (" ".join(MODE_KEYS[:4]), "mode: " + ", ".join(MODES[:4])),
    (" ".join(MODE_KEYS[4:]), "mode: " + ", ".join(MODES[4:])),
    *[(f"{up} / {down}", f"{f.replace('_', ' ')} +/- (Shift: 5)") for up, down, f in ADJUST_KEYS],
    ("z", "masked hist match on / off"),
    ("] / [", f"morph factor +/- {MORPH_STEP} (AMP; Shift: {SHIFT_STEP * MORPH_STEP:g})"),
    *[(f"{k} / {k.upper()}", f"next / previous {f.replace('_', ' ')}") for k, f in CYCLE_KEYS],
    ("- / =", "zoom out / in"),
    ("v", "show the merge mask over a checkerboard"),
]


@dataclass
class MergerState:
    """Where the interactive merger is: frames, per-frame configs and view flags.

    Treated as immutable: `handle_key` returns a new state with a new configs list.
    """
    frames: list[str]
    configs: list[MergerConfig]
    index: int = 0
    zoom: int = 0
    show_help: bool = False
    auto_process: bool = False
    checkerboard: bool = False
    quit: bool = False
    morph: bool = False             # the model takes a morph value (AMP): the morph keys act
    mask_modes: tuple[str, ...] = MASK_MODES      # what `x` cycles: no XSeg modes without an XSeg model

    @classmethod
    def new(cls, frames: Sequence[str], cfg: MergerConfig, mask_modes: tuple[str, ...] = MASK_MODES,
            morph: bool = False) -> MergerState:
        if not frames:
            raise VisageError("no frames to merge")
        return cls(frames=[str(f) for f in frames], configs=[cfg] * len(frames), mask_modes=tuple(mask_modes),
                   morph=morph)

    @property
    def cfg(self) -> MergerConfig:
        return self.configs[self.index]


def _with_cfg(state: MergerState, cfg: MergerConfig) -> MergerState:
    configs = list(state.configs)
    configs[state.index] = cfg
    return replace(state, configs=configs)


def _navigate(state: MergerState, ch: str) -> tuple[MergerState, list[int]]:
    """, . < m M / ?: moving to another frame finalises the frame left."""
    i, last, cfg = state.index, len(state.frames) - 1, state.cfg
    if ch == "," and i > 0:
        return replace(state, index=i - 1), [i]
    if ch == "." and i < last:
        return replace(state, index=i + 1), [i]
    if ch == "<" and i > 0:
        return replace(state, index=0), [i]
    if ch == "m" and i > 0:
        configs = list(state.configs)
        configs[i - 1] = cfg
        return replace(state, configs=configs, index=i - 1), [i]
    if ch == "M" and i > 0:
        return replace(state, configs=[cfg] * i + state.configs[i:], index=0), list(range(i + 1))
    if ch == "/" and i < last:
        configs = list(state.configs)
        configs[i + 1] = cfg
        return replace(state, configs=configs, index=i + 1), [i]
    if ch == "?" and i < last:
        return replace(state, configs=state.configs[:i + 1] + [cfg] * (last - i), auto_process=True), []
    return state, []


def handle_key(state: MergerState, key: int) -> tuple[MergerState, list[int]]:
    """(new state, indices of frames made final) for one cv2.waitKey code; -1 = no key."""
    if key == KEY_ESC:
        return replace(state, quit=True), [state.index]
    if key == KEY_TAB:
        return replace(state, show_help=not state.show_help), []
    if not 0 <= key < 256:
        return state, []
    ch, cfg = chr(key), state.cfg
    if ch in MODE_KEYS:
        return _with_cfg(state, replace(cfg, mode=MODES[MODE_KEYS.index(ch)])), []
    if ch in _ADJUST:
        return _with_cfg(state, adjust(cfg, *_ADJUST[ch])), []
    if ch in _CYCLE:
        field, step = _CYCLE[ch]
        return _with_cfg(state, cycle(cfg, field, step, state.mask_modes if field == "mask_mode" else None)), []
    if ch == "z":
        return _with_cfg(state, toggle(cfg, "masked_hist_match")), []
    if ch in MORPH_KEYS and state.morph:
        return _with_cfg(state, adjust(cfg, "morph_factor", MORPH_KEYS[ch])), []
    if ch in "-_=+":
        zoom = state.zoom + (1 if ch in "=+" else -1)
        return replace(state, zoom=min(max(zoom, ZOOM_MIN), ZOOM_MAX)), []
    if ch == "v":
        return replace(state, checkerboard=not state.checkerboard), []
    if ch == ">":
        return replace(state, auto_process=not state.auto_process), []
    return _navigate(state, ch)


_SHORT = {"hist_match_threshold": "hist", "erode_mask_modifier": "erode", "blur_mask_modifier": "blur",
          "motion_blur_power": "motion", "blursharpen_amount": "sharpen", "output_face_scale": "scale",
          "image_denoise_power": "denoise", "bicubic_degrade_power": "bicubic", "color_degrade_power": "colordeg"}


def status_line(state: MergerState) -> str:
    """One line: frame i/n, name, mode, mask, colour transfer and the non-zero modifiers."""
    cfg = state.cfg
    parts = [f"frame {state.index + 1}/{len(state.frames)} {state.frames[state.index]}", f"mode {cfg.mode}",
             f"mask {cfg.mask_mode}", f"ct {cfg.color_transfer_mode}"]
    if state.morph:
        parts.append(f"morph {cfg.morph_factor:.2f}")
    if "hist" in cfg.mode:
        parts.append(f"hist {cfg.hist_match_threshold}{' masked' if cfg.masked_hist_match else ''}")
    mods = [f"{_SHORT[f]} {getattr(cfg, f):+d}" for f in _SHORT
            if f != "hist_match_threshold" and getattr(cfg, f) != 0]
    if cfg.blursharpen_amount:
        mods.append(f"filter {cfg.sharpen_mode}")
    parts += mods
    if state.zoom:
        parts.append(f"zoom {state.zoom:+d}")
    if state.auto_process:
        parts.append("AUTO")
    return " | ".join(parts)


def config_lines(cfg: MergerConfig) -> list[str]:
    """`name: value` for every option, in schema order (the help screen's settings panel)."""
    return [f"{o.name}: {getattr(cfg, o.name)}" for o in SCHEMA]


def save_session(path: str | Path, state: MergerState, model_iter: int) -> None:
    """Write the session (frames, current index, per-frame configs) as JSON, atomically."""
    atomic_write_json(path, {"version": SESSION_VERSION, "model_iter": int(model_iter), "frames": list(state.frames),
                             "index": state.index, "configs": [c.to_dict() for c in state.configs]})


def load_session(path: str | Path, frames: Sequence[str]) -> tuple[MergerState, int] | None:
    """(state, saved model iteration) if `path` holds a valid session for exactly `frames`, else None."""
    path = Path(path)
    if not path.is_file():
        return None
    frames = [str(f) for f in frames]
    try:
        data = read_json(path)
        if not isinstance(data, dict) or data.get("version") != SESSION_VERSION:
            raise VisageError("unknown session version")
        if data.get("frames") != frames:
            raise VisageError("it was made for a different set of frames")
        raw, index, model_iter = data["configs"], data["index"], data["model_iter"]
        if not isinstance(raw, list) or len(raw) != len(frames):
            raise VisageError("the config list does not match the frames")
        if not isinstance(index, int) or not 0 <= index < len(frames) or not isinstance(model_iter, int):
            raise VisageError("bad index or model iteration")
        configs = [MergerConfig.from_dict(c) for c in raw]
    except (OSError, ValueError, TypeError, KeyError, AttributeError, VisageError) as e:
        interact.log_info(f"Ignoring the merger session {path.name}: {e}")
        return None
    return MergerState(frames=frames, configs=configs, index=index), model_iter
