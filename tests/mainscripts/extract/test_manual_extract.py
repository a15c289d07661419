"""Manual extraction: the key/mouse state machine, and the real window under Xvfb on real frames."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import interact
from core.errors import VisageError
from core.facelib.face_finder import FaceFinder, inter_ocular
from core.facelib.face_meta import read_face, read_meta
from core.facelib.face_type import FaceType
from core.facelib.manual_state import (EVENT_LBUTTONDOWN, EVENT_LBUTTONUP, EVENT_MOUSEMOVE, EVENT_MOUSEWHEEL,
                                       EVENT_RBUTTONDOWN, MIN_HALF, Accept, ComputeLandmarks, Goto, ManualState,
                                       Quit, Skip, frame_loaded, handle_key, handle_mouse, set_landmarks,
                                       status_line, wheel_delta)
from core.fileio import read_image, read_json
from mainscripts.extract.extractor import STATE_FILE, extract

WHEEL_UP, WHEEL_DOWN = 120 << 16, -(120 << 16)
ENTER, SPACE = 13, 32
LM = np.arange(136, dtype=np.float32).reshape(68, 2)       # stand-in landmarks for the state machine


@pytest.fixture(autouse=True)
def never_prompt(monkeypatch):
    monkeypatch.setattr(interact, "is_interactive", lambda: False)


def fresh(n: int = 3, size=(640, 360)) -> ManualState:
    return ManualState.new(n, size)


def mouse(state, *events):
    """Apply (event, x, y[, flags]) tuples; returns the final state and all actions."""
    actions = []
    for ev in events:
        state, acts = handle_mouse(state, *ev)
        actions += acts
    return state, actions


def keys(state, *ks):
    actions = []
    for k in ks:
        state, acts = handle_key(state, ord(k) if isinstance(k, str) else k)
        actions += acts
    return state, actions


def with_landmarks(state: ManualState) -> ManualState:
    return set_landmarks(state, state.index, state.rect, LM)


# ------------------------------------------------------------------ the state machine

def test_new_state_centres_a_square_of_an_eighth_of_the_frame():
    s = fresh()
    assert s.rect == (240.0, 100.0, 400.0, 260.0)
    assert not s.locked and not s.rect_mode and s.accurate and s.show_help and s.face is None


def test_mouse_move_moves_the_rect_and_asks_for_landmarks():
    s, acts = mouse(fresh(), (EVENT_MOUSEMOVE, 100, 120))
    assert s.center == (100, 120) and s.rect == (20, 40, 180, 200)
    assert acts == [ComputeLandmarks(0, s.rect, True)]
    s2, acts = mouse(s, (EVENT_MOUSEMOVE, 100, 120))
    assert s2 == s and acts == []                               # same place: nothing to compute
    s3, _ = mouse(s, (EVENT_MOUSEMOVE, -50, 900))
    assert s3.center == (0, 360)                                # kept inside the frame


def test_wheel_resizes_with_dfl_steps_within_limits():
    s = fresh()
    up, acts = mouse(s, (EVENT_MOUSEWHEEL, 0, 0, WHEEL_UP))
    assert up.half == (88, 88) and up.center == s.center       # 80 > 40: step 80/10 = 8
    assert acts == [ComputeLandmarks(0, up.rect, True)]
    down, _ = mouse(s, (EVENT_MOUSEWHEEL, 0, 0, WHEEL_DOWN))
    assert down.half == (72, 72)
    small, _ = mouse(s, *[(EVENT_MOUSEWHEEL, 0, 0, WHEEL_DOWN)] * 100)
    assert small.half == (MIN_HALF, MIN_HALF)
    big, _ = mouse(s, *[(EVENT_MOUSEWHEEL, 0, 0, WHEEL_UP)] * 100)
    assert big.half == (320, 320)                               # half the frame's longer side
    assert wheel_delta(WHEEL_DOWN) == -120 and wheel_delta(WHEEL_UP | 8) == 120
    assert wheel_delta((0xFF88 << 16) & 0xFFFFFFFF) == -120     # an unsigned 32-bit flags value
    assert mouse(s, (EVENT_MOUSEWHEEL, 0, 0, 0)) == (s, [])


def test_left_click_locks_and_unlocks():
    s, _ = mouse(fresh(), (EVENT_MOUSEMOVE, 200, 150))
    locked, acts = mouse(s, (EVENT_LBUTTONDOWN, 210, 160))
    assert locked.locked and locked.center == (210, 160)
    assert acts == [ComputeLandmarks(0, locked.rect, True)]     # landmarks recomputed for the locked rect
    still, acts = mouse(locked, (EVENT_MOUSEMOVE, 400, 300))
    assert still.center == (210, 160) and acts == []            # a locked rect ignores the mouse
    wheel, _ = mouse(still, (EVENT_MOUSEWHEEL, 0, 0, WHEEL_UP))
    assert wheel.locked and wheel.center == (210, 160) and wheel.half == (88, 88)
    free, _ = mouse(wheel, (EVENT_LBUTTONDOWN, 400, 300))
    assert not free.locked and free.center == (400, 300)
    moved, _ = mouse(free, (EVENT_MOUSEMOVE, 50, 60))
    assert moved.center == (50, 60)


def test_right_click_rect_mode_drag():
    s, acts = mouse(fresh(), (EVENT_RBUTTONDOWN, 0, 0))
    assert s.rect_mode and acts == []
    s, acts = mouse(s, (EVENT_MOUSEMOVE, 10, 10))
    assert s.center == (320, 180) and acts == []                # no drag yet: the rect stays
    s, acts = mouse(s, (EVENT_LBUTTONDOWN, 100, 50), (EVENT_MOUSEMOVE, 200, 150))
    assert s.rect == (100, 50, 200, 150) and not s.locked
    s, acts = mouse(s, (EVENT_MOUSEMOVE, 300, 210), (EVENT_LBUTTONUP, 300, 250))
    assert s.rect == (100, 50, 300, 250) and s.locked and s.drag_from is None
    assert acts[-1] == ComputeLandmarks(0, (100, 50, 300, 250), True)
    after, acts = mouse(s, (EVENT_MOUSEMOVE, 500, 300))
    assert after.rect == s.rect and acts == []
    tiny, _ = mouse(s, (EVENT_LBUTTONDOWN, 10, 10), (EVENT_LBUTTONUP, 11, 11))
    assert tiny.half == (MIN_HALF, MIN_HALF)
    back, _ = mouse(s, (EVENT_RBUTTONDOWN, 0, 0))
    assert not back.rect_mode and back.half == (100, 100)       # follow mode: a square again


def test_enter_accepts_the_face_and_advances():
    s, _ = mouse(fresh(), (EVENT_MOUSEMOVE, 300, 170), (EVENT_LBUTTONDOWN, 300, 170))
    s = with_landmarks(s)
    rect = s.rect
    nxt, acts = keys(s, ENTER)
    assert isinstance(acts[0], Accept) and acts[0].index == 0 and acts[0].faces[0].rect == rect
    assert acts[0].faces[0].landmarks is LM
    assert acts[1:] == [Goto(1), ComputeLandmarks(1, rect, True)]   # the locked rect carries over
    assert nxt.index == 1 and nxt.locked and nxt.face is None and 0 in nxt.decided
    assert keys(nxt, 10)[1][0] == Accept(1, ())                 # LF too; no landmarks: nothing to keep


def test_landmarks_for_a_rect_that_moved_on_are_ignored():
    s = fresh()
    old = s.rect
    s, _ = mouse(s, (EVENT_MOUSEMOVE, 100, 100))
    assert set_landmarks(s, 0, old, LM).face is None
    assert set_landmarks(s, 1, s.rect, LM).face is None
    assert set_landmarks(s, 0, s.rect, LM).face.landmarks is LM
    moved, _ = mouse(with_landmarks(s), (EVENT_MOUSEMOVE, 120, 100))
    assert moved.face is None                                   # Enter would not take stale landmarks


def test_space_skips_and_the_last_frame_quits():
    s, acts = keys(with_landmarks(fresh(2)), SPACE)
    assert acts[:2] == [Skip(0), Goto(1)] and s.index == 1 and s.decided[0] == ()
    s, acts = keys(with_landmarks(s), ENTER)
    assert isinstance(acts[0], Accept) and acts[1:] == [Quit()] and s.quit and s.index == 1


def test_comma_and_dot_navigate_within_bounds():
    s = fresh(3)
    assert keys(s, ",") == (s, [])
    s, acts = keys(s, ".")
    assert s.index == 1 and acts == [Goto(1), ComputeLandmarks(1, s.rect, True)]
    s, _ = keys(s, ".")
    assert keys(s, ".") == (s, [])
    s, _ = keys(s, ",", ",")
    assert s.index == 0 and s.decided == {}                     # moving decides nothing


def test_going_back_restores_the_accepted_face():
    s, _ = mouse(fresh(3), (EVENT_RBUTTONDOWN, 0, 0), (EVENT_LBUTTONDOWN, 100, 40), (EVENT_LBUTTONUP, 260, 240))
    s = with_landmarks(s)
    s, _ = keys(s, ENTER)
    s, _ = mouse(s, (EVENT_LBUTTONDOWN, 0, 0), (EVENT_LBUTTONUP, 500, 300))
    assert s.rect == (0, 0, 500, 300)
    back, acts = keys(s, ",")
    assert acts == [Goto(0)]                                    # the face is known: nothing to compute
    assert back.rect == (100, 40, 260, 240) and back.locked and back.face.landmarks is LM


def test_q_and_esc_quit_and_later_input_is_ignored():
    for key in ("q", 27):
        s, acts = keys(fresh(), key)
        assert s.quit and acts == [Quit()]
        assert keys(s, ENTER) == (s, []) and mouse(s, (EVENT_MOUSEMOVE, 1, 1)) == (s, [])


def test_a_toggles_accuracy_and_h_the_help():
    s, acts = keys(fresh(), "a")
    assert not s.accurate and acts == [ComputeLandmarks(0, s.rect, False)]
    s, acts = keys(s, "h")
    assert not s.show_help and acts == []
    s, _ = keys(s, "h", "a")
    assert s.show_help and s.accurate
    assert keys(s, "z") == (s, [])


def test_frame_loaded_keeps_the_rect_inside_a_smaller_frame():
    s, _ = mouse(fresh(3, (1920, 1080)), (EVENT_MOUSEMOVE, 1800, 1000))
    s, acts = frame_loaded(s, (640, 360))
    assert s.center == (640, 360) and s.half == (240, 240) and acts == [ComputeLandmarks(0, s.rect, True)]
    same, acts = frame_loaded(s, (640, 360))
    assert same == s and acts == []


def test_status_line():
    s = with_landmarks(fresh())
    assert status_line(s, "a.png").startswith("frame 1/3 a.png | follows mouse | accurate on")
    s, _ = keys(s, SPACE, ",")
    assert "skipped" in status_line(s, "a.png") and "no face in the rectangle" in status_line(s, "a.png")


# ------------------------------------------------------------------ the window under Xvfb

WINDOW = 800


class Script:
    """Drives the window: cv2.waitKey returns scripted keys; mouse steps run the captured callback inside
    waitKey, as the GUI does. Mouse positions are given in frame pixels and scaled to the view here."""

    def __init__(self, monkeypatch, steps: list, window_size: int = WINDOW):
        import mainscripts.extract.manual_extract as mx
        self.steps, self.window_size = list(steps), window_size
        self.callback = None
        self.read: list[str] = []
        self.shown: list[tuple[int, ...]] = []
        self.frame_size = (0, 0)
        real_read, real_imshow = mx.read_image, cv2.imshow

        def read(path):
            img = real_read(path)
            self.read.append(Path(path).name)
            self.frame_size = (img.shape[1], img.shape[0])
            return img
        monkeypatch.setattr(mx, "read_image", read)
        monkeypatch.setattr(cv2, "setMouseCallback", lambda title, cb, param=None: setattr(self, "callback", cb))
        monkeypatch.setattr(cv2, "waitKey", self.wait_key)
        monkeypatch.setattr(cv2, "imshow", lambda t, img: (self.shown.append(img.shape), real_imshow(t, img)))

    def wait_key(self, delay=0):
        if not self.steps:
            raise AssertionError("the window asked for more input than scripted")
        step = self.steps.pop(0)
        if isinstance(step, tuple):                 # (event, x, y[, flags]) in frame pixels
            from mainscripts.extract.manual_extract import view_scale
            ev, x, y, *flags = step
            s = view_scale(self.frame_size, self.window_size)
            self.callback(ev, int(round(x * s)), int(round(y * s)), flags[0] if flags else 0, None)
            return -1
        return ord(step) if isinstance(step, str) else step


def follow_and_lock(box) -> list:
    """Move the rect onto the box centre, grow it twice with the wheel, lock it with a left click."""
    l, t, r, b = box
    cx, cy = (l + r) / 2, (t + b) / 2
    return [(EVENT_MOUSEMOVE, cx, cy), (EVENT_MOUSEWHEEL, cx, cy, WHEEL_UP), (EVENT_MOUSEWHEEL, cx, cy, WHEEL_UP),
            (EVENT_LBUTTONDOWN, cx, cy)]


def drag(box) -> list:
    l, t, r, b = box
    return [(EVENT_RBUTTONDOWN, 0, 0), (EVENT_LBUTTONDOWN, l, t), (EVENT_MOUSEMOVE, (l + r) / 2, (t + b) / 2),
            (EVENT_LBUTTONUP, r, b)]


@pytest.fixture(scope="module")
def clip(frames, tmp_path_factory):
    """Frames 00000 and 00030 of single_face.mp4 (640x360, one man) and zz_noface.png (960x540, no face),
    with the automatic FaceFinder result of each face frame."""
    src = tmp_path_factory.mktemp("manual_frames")
    for f in sorted(frames("single_face.mp4", every=30).glob("*.png"))[:2]:
        shutil.copyfile(f, src / f.name)
    shutil.copyfile(sorted(frames("no_face.mp4").glob("*.png"))[0], src / "zz_noface.png")
    finder = FaceFinder()
    auto = {n: finder.find(read_image(src / n))[0] for n in ("00000.png", "00030.png")}
    assert finder.find(read_image(src / "zz_noface.png")) == []
    return src, auto


def landmark_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean point distance in inter-ocular distances."""
    return float(np.linalg.norm(a - b, axis=1).mean() / inter_ocular(b))


def test_window_refuses_to_open_without_a_display(clip, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(VisageError, match="manual extraction needs a display"):
        extract(clip[0], tmp_path / "aligned", detector="manual", image_size=128)
    assert not list((tmp_path / "aligned").glob("*.jpg"))


def test_manual_extraction_matches_automatic_landmarks_and_resumes(display, clip, tmp_path, monkeypatch):
    src, auto = clip
    out = tmp_path / "aligned"
    # run 1: place the rect on frame 00000 and accept it, then quit
    script = Script(monkeypatch, [*follow_and_lock(auto["00000.png"].rect), ENTER, "q"])
    r = extract(src, out, face_type=FaceType.WHOLE_FACE, image_size=256, debug=True, detector="manual",
                window_size=WINDOW)
    assert script.read == ["00000.png", "00030.png"] and not script.steps
    assert (r.frames, r.faces, r.manual_faces) == (1, 1, 1)
    assert r.manual_left == ["00030.png", "zz_noface.png"]
    assert sorted(p.name for p in out.glob("*.jpg")) == ["00000_0.jpg"]
    assert all(s[1] == WINDOW for s in script.shown)            # the 640 px frame scaled to the window

    # run 2 (resume): only the frames left; draw the rect on 00030, go back and forth, skip the empty frame
    script = Script(monkeypatch, [*drag(auto["00030.png"].rect), ENTER, ",", ".", "h", SPACE])
    r = extract(src, out, face_type=FaceType.WHOLE_FACE, image_size=256, debug=True, detector="manual",
                window_size=WINDOW)
    assert script.read == ["00030.png", "zz_noface.png", "00030.png", "zz_noface.png"] and not script.steps
    assert (r.frames, r.faces, r.no_face, r.manual_left) == (2, 1, ["zz_noface.png"], [])
    assert {s[1] for s in script.shown} == {WINDOW}             # 960 px frame scaled down to the window too

    assert sorted(p.name for p in out.glob("*.jpg")) == ["00000_0.jpg", "00030_0.jpg"]
    for name, face in auto.items():
        img, meta = read_face(out / name.replace(".png", "_0.jpg"))
        assert img.shape == (256, 256, 3) and meta.face_type == "whole_face" and meta.source_filename == name
        err = landmark_error(meta.source_landmarks, face.landmarks)
        print(f"\n{name}: manual vs automatic landmarks, mean error {err:.4f} inter-ocular distances")
        assert err < 0.1
    l, t, r_, b = auto["00030.png"].rect
    assert read_meta(out / "00030_0.jpg").source_rect == (l, t, r_, b)       # the dragged rect
    l, t, r_, b = auto["00000.png"].rect
    cx, cy, half = (l + r_) / 2, (t + b) / 2, 80 + 8 + 8.8                   # two wheel steps up from 80
    expected = np.array([cx - half, cy - half, cx + half, cy + half])
    assert np.abs(np.array(read_meta(out / "00000_0.jpg").source_rect) - expected).max() <= 1
    for stem in ("00000", "00030", "zz_noface"):
        assert (tmp_path / "aligned_debug" / f"{stem}.jpg").is_file()
    state = read_json(out / STATE_FILE)
    assert state["done"] == {"00000.png": 1, "00030.png": 1, "zz_noface.png": 0}
    assert state["settings"]["detector"] == "manual" and sorted(state["manual"]) == sorted(state["done"])
    monkeypatch.setattr(cv2, "waitKey", lambda delay=0: pytest.fail("nothing is left to do by hand"))
    assert extract(src, out, face_type=FaceType.WHOLE_FACE, image_size=256, debug=True, detector="manual",
                   window_size=WINDOW).frames == 0


def test_manual_fix_opens_only_frames_without_faces(display, clip, tmp_path, monkeypatch):
    src, auto = clip
    out = tmp_path / "aligned"
    script = Script(monkeypatch, [(EVENT_MOUSEMOVE, 480, 270), SPACE])
    r = extract(src, out, image_size=128, workers=1, manual_fix=True, window_size=WINDOW)
    assert script.read == ["zz_noface.png"] and not script.steps
    assert (r.frames, r.faces, r.no_face, r.manual_frames) == (3, 2, ["zz_noface.png"], ["zz_noface.png"])
    assert sorted(p.name for p in out.glob("*.jpg")) == ["00000_0.jpg", "00030_0.jpg"]
    assert read_json(out / STATE_FILE)["manual"] == ["zz_noface.png"]
    monkeypatch.setattr(cv2, "waitKey", lambda delay=0: pytest.fail("the skipped frame was shown again"))
    again = extract(src, out, image_size=128, workers=1, manual_fix=True, window_size=WINDOW)
    assert again.frames == 0 and again.manual_frames == []


def test_manual_output_debug_fix_redoes_only_deleted_debug_frames(display, clip, tmp_path, monkeypatch):
    import main
    src, auto = clip
    out = tmp_path / "aligned"
    debug_dir = tmp_path / "aligned_debug"
    extract(src, out, face_type=FaceType.FULL, image_size=128, debug=True, workers=1)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jpg")}
    assert sorted(before) == ["00000_0.jpg", "00030_0.jpg"]
    monkeypatch.setattr(interact, "_non_interactive", interact._non_interactive)   # restored afterwards
    cmd = ["extract", "--input-dir", str(src), "--output-dir", str(out), "--manual-output-debug-fix",
           "--manual-window-size", str(WINDOW), "--non-interactive"]

    # Deleting a debug image and skipping the frame in the window deletes its face, as in DeepFaceLab.
    (debug_dir / "00030.jpg").unlink()
    script = Script(monkeypatch, [SPACE])
    assert main.main(cmd) == 0                 # face type, size... come from the earlier run
    assert script.read == ["00030.png"] and not script.steps
    assert sorted(p.name for p in out.glob("*.jpg")) == ["00000_0.jpg"]
    assert (debug_dir / "00030.jpg").is_file()

    # Deleted again, and this time the face is placed by hand.
    (debug_dir / "00030.jpg").unlink()
    script = Script(monkeypatch, [*follow_and_lock(auto["00030.png"].rect), ENTER])
    assert main.main(cmd) == 0
    assert script.read == ["00030.png"] and not script.steps
    assert (out / "00000_0.jpg").stat().st_mtime_ns == before["00000_0.jpg"]     # the other frame untouched
    img, meta = read_face(out / "00030_0.jpg")
    assert meta.face_type == "full_face" and img.shape == (128, 128, 3)
    assert landmark_error(meta.source_landmarks, auto["00030.png"].landmarks) < 0.1
    assert (debug_dir / "00030.jpg").is_file()
    state = read_json(out / STATE_FILE)
    assert state["done"] == {"00000.png": 1, "00030.png": 1, "zz_noface.png": 0} and state["manual"] == ["00030.png"]


def test_debug_fix_needs_debug_images(clip, tmp_path):
    with pytest.raises(VisageError, match="extract with --output-debug first"):
        extract(clip[0], tmp_path / "aligned", manual_output_debug_fix=True)
    with pytest.raises(VisageError, match="--manual-fix runs the automatic detector first"):
        extract(clip[0], tmp_path / "aligned", detector="manual", manual_fix=True)


def test_cli_accepts_dfl_detector_names():
    import main
    from core.options import Settings
    from mainscripts.extract.extractor import DETECTORS, SCHEMA
    assert DETECTORS == {"auto": "auto", "s3fd": "auto", "manual": "manual"}
    parser = main.build_parser()
    for name, expected in (("s3fd", "s3fd"), ("manual", "manual"), (None, "auto")):
        argv = ["extract", "--input-dir", "a", "--output-dir", "b"] + (["--detector", name] if name else [])
        opts = Settings.from_args(parser.parse_args(argv), SCHEMA, ask=False)
        assert opts["detector"] == expected and opts["manual_window_size"] == 1368


SCRIPTS = {"4) data_src faceset extract MANUAL": ["--detector", "manual"],
           "5) data_dst faceset extract MANUAL": ["--detector", "manual", "--output-debug"],
           "5) data_dst faceset extract + manual fix": ["--detector", "s3fd", "--manual-fix", "--output-debug"],
           "5) data_dst faceset MANUAL RE-EXTRACT DELETED ALIGNED_DEBUG": ["--detector", "manual",
                                                                          "--manual-output-debug-fix"]}


def test_manual_scripts():
    import main
    root = Path(__file__).resolve().parents[3] / "scripts"
    for name, flags in SCRIPTS.items():
        sh, bat = root / f"{name}.sh", root / f"{name}.bat"
        text = sh.read_text()
        assert text.startswith("#!/usr/bin/env bash\n") and 'source "$(dirname "$0")/_env.sh"' in text
        assert sh.stat().st_mode & 0o777 == 0o755
        raw = bat.read_bytes()
        assert raw.count(b"\r\n") == raw.count(b"\n") == 4 and raw.startswith(b"@echo off")
        side = "data_src" if name.startswith("4)") else "data_dst"
        line = text.splitlines()[-1]
        assert line == (f'"$PY" "$MAIN" extract --input-dir "$WORKSPACE/{side}" --output-dir '
                        f'"$WORKSPACE/{side}/aligned" {" ".join(flags)} "$@"')
        assert f'--output-dir "%WORKSPACE%\\{side}\\aligned" {" ".join(flags)} %*' in bat.read_text()
        main.build_parser().parse_args(["extract", "--input-dir", "a", "--output-dir", "b", *flags])
