"""Interactive merger: the key state machine, the session file, and the real window under Xvfb."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import fields, replace
from types import SimpleNamespace

import numpy as np
import pytest

from core.errors import VisageError
from core.merge.config import COLOR_TRANSFER_MODES, MASK_MODES, MODES, OPTIONS, SHARPEN_MODES, MergerConfig
from core.merge.interactive import (ADJUST_KEYS, KEY_ESC, KEY_HELP, KEY_TAB, ZOOM_MAX, ZOOM_MIN, MergerState,
                                    handle_key, load_session, save_session, status_line)

BASE = MergerConfig(mode="overlay", mask_mode="dst", color_transfer_mode="none")
FRAMES = ["00000.png", "00001.png", "00002.png", "00003.png", "00004.png"]
needs_xvfb = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")


def press(state: MergerState, *keys: str | int) -> tuple[MergerState, list[int]]:
    """Apply keys in turn; returns the final state and every finalised index in order."""
    final: list[int] = []
    for k in keys:
        state, done = handle_key(state, ord(k) if isinstance(k, str) else k)
        final += done
    return state, final


def diff_fields(a: MergerConfig, b: MergerConfig) -> dict[str, tuple]:
    return {f.name: (getattr(a, f.name), getattr(b, f.name)) for f in fields(MergerConfig)
            if getattr(a, f.name) != getattr(b, f.name)}


def at(index: int, cfg: MergerConfig = BASE) -> MergerState:
    return replace(MergerState.new(FRAMES, cfg), index=index)


# ------------------------------------------------------------------ config keys

SHIFTED = {";": ":"}


@pytest.mark.parametrize("up,down,field", ADJUST_KEYS)
def test_adjust_keys_step_one_and_shift_five(up, down, field):
    mid = (OPTIONS[field].lo + OPTIONS[field].hi) // 2
    state = at(2, replace(BASE, **{field: mid}))
    for key, delta in ((up, 1), (down, -1), (SHIFTED.get(up, up.upper()), 5), (SHIFTED.get(down, down.upper()), -5)):
        new, final = handle_key(state, ord(key))
        assert final == [] and new.index == 2
        assert diff_fields(state.cfg, new.cfg) == {field: (mid, mid + delta)}, key
        assert new.configs[:2] == state.configs[:2] and new.configs[3:] == state.configs[3:]
        assert state.cfg.__dict__[field] == mid                     # the old state is untouched


@pytest.mark.parametrize("up,down,field", ADJUST_KEYS)
def test_adjust_keys_clamp_at_range_ends(up, down, field):
    lo, hi = OPTIONS[field].lo, OPTIONS[field].hi
    top, _ = press(at(0, replace(BASE, **{field: hi - 2})), SHIFTED.get(up, up.upper()), up)
    bottom, _ = press(at(0, replace(BASE, **{field: lo + 2})), SHIFTED.get(down, down.upper()), down)
    assert getattr(top.cfg, field) == hi and getattr(bottom.cfg, field) == lo


def test_mode_keys_follow_config_order():
    for key, mode in zip("`123456", MODES, strict=True):
        new, final = handle_key(at(1), ord(key))
        assert new.cfg.mode == mode and final == []
        assert diff_fields(BASE, new.cfg) in ({}, {"mode": ("overlay", mode)})
    assert MODES[0] == "original" and MODES[6] == "raw-predict"


@pytest.mark.parametrize("key,field,choices", [("x", "mask_mode", MASK_MODES),
                                               ("c", "color_transfer_mode", COLOR_TRANSFER_MODES),
                                               ("n", "sharpen_mode", SHARPEN_MODES)])
def test_cycle_keys_wrap_both_ways(key, field, choices):
    state = at(0, replace(BASE, **{field: choices[-1]}))
    fwd, _ = press(state, key)
    assert diff_fields(state.cfg, fwd.cfg) == {field: (choices[-1], choices[0])}
    back, _ = press(fwd, key.upper())
    assert back.cfg == state.cfg
    around, _ = press(state, *[key] * len(choices))
    assert around.cfg == state.cfg


def test_z_toggles_masked_hist_match():
    one, _ = press(at(0), "z")
    assert diff_fields(BASE, one.cfg) == {"masked_hist_match": (True, False)}
    assert press(one, "z")[0].cfg == BASE


def test_view_keys_change_only_view_flags():
    state = at(1)
    new, final = press(state, "v", KEY_TAB, "=", "=")
    assert final == [] and new.configs == state.configs and new.index == 1
    assert (new.checkerboard, new.show_help, new.zoom) == (True, True, 2)
    back, _ = press(new, "v", KEY_TAB, "-", "_", "+", "-")
    assert back == state
    assert press(state, *"=" * 20)[0].zoom == ZOOM_MAX and press(state, *"-" * 20)[0].zoom == ZOOM_MIN


@pytest.mark.parametrize("key", [-1, ord("t"), ord("g"), ord("b"), 13, 0x10000 + ord("q"), 255])
def test_unknown_keys_and_no_key_change_nothing(key):
    state = at(2)
    assert handle_key(state, key) == (state, [])


# ------------------------------------------------------------------ navigation

def test_next_previous_first_finalise_the_frame_left():
    state = MergerState.new(FRAMES, BASE)
    assert handle_key(state, ord(",")) == (state, [])              # before the first: nothing
    assert handle_key(state, ord("<")) == (state, [])
    s, final = press(state, ".", ".", ".")
    assert (s.index, final) == (3, [0, 1, 2])
    s, final = press(s, ",")
    assert (s.index, final) == (2, [3])
    s, final = press(s, "<")
    assert (s.index, final) == (0, [2])
    last = at(4)
    assert handle_key(last, ord(".")) == (last, []) and handle_key(last, ord("/")) == (last, [])
    assert handle_key(last, ord("?")) == (last, [])


def test_settings_stay_with_their_frame():
    s, _ = press(MergerState.new(FRAMES, BASE), "3", ".", "w")
    assert s.configs[0].mode == "seamless" and s.configs[1] == replace(BASE, erode_mask_modifier=1)
    assert s.configs[2:] == [BASE] * 3


def test_m_and_slash_carry_the_config_one_frame():
    s, _ = press(at(2), "w")
    cfg = s.cfg
    back, final = press(s, "m")
    assert (back.index, final) == (1, [2]) and back.configs == [BASE, cfg, cfg, BASE, BASE]
    fwd, final = press(s, "/")
    assert (fwd.index, final) == (3, [2]) and fwd.configs == [BASE, BASE, cfg, cfg, BASE]
    first = at(0)
    assert handle_key(first, ord("m")) == (first, [])


def test_shift_m_gives_all_previous_frames_the_config_and_goes_to_the_first():
    s, _ = press(at(3), "e")
    cfg = s.cfg
    new, final = press(s, "M")
    assert new.index == 0 and final == [0, 1, 2, 3]
    assert new.configs == [cfg] * 4 + [BASE]
    first = at(0)
    assert handle_key(first, ord("M")) == (first, [])


def test_question_mark_gives_all_following_frames_the_config_and_starts_processing():
    s, _ = press(at(1), "d", "e", "e")
    cfg = s.cfg
    new, final = press(s, "?")
    assert final == [] and new.index == 1 and new.auto_process
    assert new.configs == [BASE] + [cfg] * 4
    assert press(new, ">")[0].auto_process is False


def test_escape_quits_and_finalises_the_current_frame():
    new, final = handle_key(at(3), KEY_ESC)
    assert new.quit and final == [3] and new.configs == at(3).configs


def test_status_line():
    s = at(1, replace(BASE, mode="hist-match", erode_mask_modifier=-7, blursharpen_amount=12, sharpen_mode="box"))
    line = status_line(s)
    for part in ("frame 2/5", "00001.png", "mode hist-match", "mask dst", "ct none", "hist 238 masked",
                 "erode -7", "sharpen +12", "filter box"):
        assert part in line, part
    plain = status_line(at(0))
    assert "frame 1/5" in plain and "erode" not in plain and "blur" not in plain and "hist" not in plain


def test_help_table_lists_every_key_family():
    keys = " ".join(k for k, _ in KEY_HELP)
    for k in ("Tab", "Esc", ",", ".", "<", ">", "m", "M", "/", "?", "z", "x", "c", "n", "v", "=", "`", "6",
              *[u for u, _, _ in ADJUST_KEYS]):
        assert k in keys, k


# ------------------------------------------------------------------ session file

def test_session_round_trip_is_atomic(tmp_path):
    s, _ = press(MergerState.new(FRAMES, BASE), "2", ".", "c", "/", "W")
    path = tmp_path / "merger_session.json"
    save_session(path, s, 4321)
    assert [p.name for p in tmp_path.iterdir()] == ["merger_session.json"]   # no .tmp_ file left behind
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["frames"] == FRAMES and data["index"] == 2
    loaded, model_iter = load_session(path, FRAMES)
    assert model_iter == 4321 and loaded.index == s.index and loaded.configs == s.configs
    assert loaded.frames == FRAMES and not loaded.quit


def test_session_missing_mismatched_or_corrupt_is_none(tmp_path, capsys):
    path = tmp_path / "merger_session.json"
    assert load_session(path, FRAMES) is None
    save_session(path, MergerState.new(FRAMES, BASE), 10)
    assert load_session(path, FRAMES[:-1]) is None
    assert load_session(path, FRAMES[::-1]) is None
    good = json.loads(path.read_text())
    for bad in ('{"version": 1, "frames": [', "[]", json.dumps({**good, "version": 2}),
                json.dumps({**good, "index": 9}), json.dumps({**good, "configs": good["configs"][:2]}),
                json.dumps({**good, "configs": [{"mode": "nope"}] * 5}), json.dumps({**good, "model_iter": "x"})):
        path.write_text(bad)
        assert load_session(path, FRAMES) is None, bad
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert load_session(path, FRAMES) is None
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 10 and all("merger_session.json" in line for line in out)


def test_window_refuses_to_open_without_a_display(monkeypatch):
    from mainscripts.merge import merger_window
    monkeypatch.setattr(sys, "platform", "linux")
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(VisageError, match="--non-interactive"):
        merger_window.run_window(MergerState.new(FRAMES, BASE), None, None, None)


# ------------------------------------------------------------------ the real window under Xvfb

@pytest.fixture(scope="module")
def render():
    """render(index, cfg) merging the stand-in prediction (dst crop + blue) into frame 10 of single_face.mp4."""
    import cv2
    from imageio_ffmpeg import get_ffmpeg_exe

    from core.facelib.face_finder import FaceFinder
    from core.facelib.face_type import FaceType
    from core.facelib.geometry import face_transform, transform_points
    from core.imagelib.masks import hull_mask
    from core.merge.compose import merge_face
    from core.sample_media import sample_path
    cmd = [get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(sample_path("single_face.mp4")),
           "-vf", r"select=eq(n\,10)", "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"]
    frame = cv2.imdecode(np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, np.uint8),
                         cv2.IMREAD_COLOR)
    face = SimpleNamespace(source_landmarks=FaceFinder().find(frame)[0].landmarks)
    hull = hull_mask((96, 96), transform_points(face.source_landmarks,
                                                face_transform(face.source_landmarks, FaceType.WHOLE_FACE, 96)))

    def predict(crop):
        out = crop.copy()
        out[..., 0] = np.clip(out[..., 0] + 0.2, 0, 1)
        return out, hull, hull

    calls: list[tuple[int, MergerConfig]] = []

    def render(index, cfg):
        calls.append((index, cfg))
        return merge_face(frame, face, predict, 96, FaceType.WHOLE_FACE, cfg)
    render.frame, render.calls = frame, calls
    return render


def scripted(monkeypatch, keys):
    """Replace cv2.waitKey by `keys` (str = ord, int as is; Esc when exhausted); record imshow shapes."""
    import cv2
    it = iter(ord(k) if isinstance(k, str) else k for k in keys)
    shown: list[tuple[int, ...]] = []
    real_imshow = cv2.imshow
    monkeypatch.setattr(cv2, "waitKey", lambda delay=0: next(it, KEY_ESC))
    monkeypatch.setattr(cv2, "imshow", lambda title, img: (shown.append(img.shape), real_imshow(title, img)))
    return shown


@needs_xvfb
def test_window_keys_commit_frames_and_save_the_session(display, render, tmp_path, monkeypatch):
    from mainscripts.merge.merger_window import help_image, run_window
    names = ["a.png", "b.png", "c.png"]
    h, w = render.frame.shape[:2]
    shown = scripted(monkeypatch, ["2", "w", -1, ".", KEY_TAB, KEY_TAB, "=", "-", "v", "v", "3", "m", ",",
                                   "?", -1, -1, "c"])
    commits: list[tuple[int, MergerConfig]] = []
    session = tmp_path / "merger_session.json"
    render.calls.clear()
    state = run_window(MergerState.new(names, BASE), render, lambda i, cfg: commits.append((i, cfg)),
                       lambda s: save_session(session, s, 777))

    hist = replace(BASE, mode="hist-match", erode_mask_modifier=1)
    seamless = replace(BASE, mode="seamless")
    assert commits == [(0, hist),                  # '.' left frame 0
                       (1, seamless),              # 'm' left frame 1, giving frame 0 its config
                       (0, seamless),              # '?' auto-processing: frame 0 changed since written
                       (2, seamless),              # frame 1 already written with seamless: skipped
                       (2, replace(seamless, color_transfer_mode="rct"))]   # 'c' then Esc on the last frame
    assert state.quit and state.index == 2 and not state.auto_process
    loaded, model_iter = load_session(session, names)
    assert model_iter == 777 and loaded.index == 2
    assert loaded.configs == [seamless, seamless, replace(seamless, color_transfer_mode="rct")]
    assert not list(tmp_path.glob(".tmp_*"))

    frame_views = [s for s in shown if s[1] == w]
    assert all(s[0] > h and s[2] == 3 for s in frame_views) and len(frame_views) >= 10
    assert any(s[1] == round(w * 1.25) and s[0] > round(h * 1.25) for s in shown)     # '=' zoomed in
    help_w = help_image(BASE).shape[1]
    assert help_w not in (w, round(w * 1.25)) and sum(s[1] == help_w for s in shown) == 1   # Tab: help screen
    assert all(a != b for a, b in zip(render.calls, render.calls[1:]))   # view-only keys do not re-render


@needs_xvfb
def test_window_any_key_stops_auto_processing(display, render, tmp_path, monkeypatch):
    from mainscripts.merge.merger_window import run_window
    names = [f"{i}.png" for i in range(5)]
    scripted(monkeypatch, [">", -1, "q"])          # auto: commit 0, 1; 'q' stops it on frame 2 and acts
    commits: list[int] = []
    saves: list[MergerState] = []
    state = run_window(MergerState.new(names, BASE), render, lambda i, cfg: commits.append(i), saves.append)
    assert commits == [0, 1, 2] and state.index == 2
    assert state.configs[2] == replace(BASE, hist_match_threshold=239) and state.configs[3] == BASE
    assert saves[-1].quit and not saves[-1].auto_process
