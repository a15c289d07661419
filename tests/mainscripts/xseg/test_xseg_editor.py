"""XSeg editor: the pure state machine, the polygon mask, and the real window under Xvfb."""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.errors import VisageError
from core.facelib.xseg_editor_state import (EVENT_LBUTTONDOWN, EVENT_LBUTTONUP, EVENT_MOUSEMOVE, EVENT_MOUSEWHEEL,
                                            EVENT_RBUTTONDOWN, FLAG_CTRLKEY, KEY_ESC, CopyFrom, EditorState, Goto,
                                            Quit, Save, Trash, handle_key, handle_mouse, paste)
from core.facelib.xseg_polys import Poly, polys_from_meta, polys_mask, polys_to_meta

SQUARE = ((10.0, 10.0), (60.0, 10.0), (60.0, 60.0), (10.0, 60.0))


def new(polys=(), n=3) -> EditorState:
    return EditorState.new(n, 128, tuple(polys), window_size=128)     # scale 1: window px = face px


def run(state: EditorState, *steps) -> tuple[EditorState, list]:
    """Steps: a key (str/int), or (event, x, y[, flags]) for the mouse; returns the state and every action."""
    actions = []
    for s in steps:
        if isinstance(s, tuple):
            state, acts = handle_mouse(state, s[0], s[1], s[2], s[3] if len(s) > 3 else 0)
        else:
            state, acts = handle_key(state, ord(s) if isinstance(s, str) else s)
        actions += acts
    return state, actions


def click(x, y, flags=0):
    return (EVENT_LBUTTONDOWN, x, y, flags)


def draw_square(kind="q"):
    return (kind, *(click(x, y) for x, y in SQUARE), click(*SQUARE[0]))


def test_draw_include_polygon_closes_on_first_point():
    state, acts = run(new(), *draw_square())
    assert not state.drawing and acts == []
    assert state.finished == (Poly("include", SQUARE),) and state.modified


def test_right_click_and_enter_close_and_short_polygon_is_dropped():
    state, _ = run(new(), "w", click(10, 10), click(50, 10), click(50, 50), (EVENT_RBUTTONDOWN, 0, 0))
    assert state.finished == (Poly("exclude", ((10.0, 10.0), (50.0, 10.0), (50.0, 50.0))),)
    state, _ = run(state, "q", click(5, 5), click(9, 9), 13)
    assert len(state.polys) == 1 and not state.drawing            # two points enclose nothing


def test_undo_redo_points():
    state, _ = run(new(), "q", click(10, 10), click(50, 10), click(50, 50))
    undone, _ = run(state, "z")
    assert undone.polys[-1].points == ((10.0, 10.0), (50.0, 10.0)) and undone.drawing
    redone, _ = run(undone, "Z")
    assert redone.polys == state.polys
    ctrl, _ = run(undone, 25)                                         # Ctrl+Y redoes too
    assert ctrl.polys == state.polys
    # a new point after an undo clears the redo history
    branched, _ = run(undone, click(20, 40), "Z")
    assert branched.polys[-1].points[-1] == (20.0, 40.0)
    empty, _ = run(state, "z", "z", "z", "z", "z", 26)
    assert empty.polys == () and not empty.drawing


def test_move_delete_and_insert_points():
    base = new([Poly("include", SQUARE)])
    moved, _ = run(base, click(60, 60), (EVENT_MOUSEMOVE, 80, 70), (EVENT_MOUSEMOVE, 90, 95),
                   (EVENT_LBUTTONUP, 90, 95))
    assert moved.polys[0].points[2] == (90.0, 95.0)
    assert run(moved, "z")[0].polys == base.polys                     # the whole drag is one undo step
    deleted, _ = run(base, click(60, 10, FLAG_CTRLKEY))
    assert deleted.polys[0].points == (SQUARE[0], SQUARE[2], SQUARE[3])
    inserted, _ = run(base, click(35, 11, FLAG_CTRLKEY))             # on the top edge
    assert inserted.polys[0].points == (SQUARE[0], (35.0, 11.0), *SQUARE[1:])
    gone, _ = run(deleted, click(10, 10, FLAG_CTRLKEY))              # under three points: polygon removed
    assert gone.polys == ()


def test_delete_polygon_under_cursor():
    inner = Poly("exclude", ((80.0, 80.0), (100.0, 80.0), (100.0, 100.0)))
    state = new([Poly("include", SQUARE), inner])
    state, _ = run(state, (EVENT_MOUSEMOVE, 30, 30), 0xFFFF)
    assert state.polys == (inner,)


def test_navigation_saves_only_what_changed():
    base = new([Poly("include", SQUARE)])
    _, acts = run(base, "d")
    assert acts == [Goto(1)]                                          # unchanged: nothing written
    edited, acts = run(base, "w", click(70, 70), click(90, 70), click(90, 90), "d")
    assert acts == [Save(0, edited.finished), Goto(1)] and len(edited.finished) == 2
    _, acts = run(base, "w", click(70, 70), click(90, 70), click(90, 90), ".")
    assert acts == [Goto(1)]                                          # `.`: next without saving
    _, acts = run(base, "a")
    assert acts == []                                                 # no face before the first
    _, acts = run(base, "w", click(70, 70), click(90, 70), click(90, 90), KEY_ESC)
    assert isinstance(acts[0], Save) and acts[-1] == Quit()


def test_x_saves_trashes_and_shows_the_next_face():
    base = new([Poly("include", SQUARE)])
    edited, acts = run(base, "w", click(70, 70), click(90, 70), click(90, 90), "x")
    assert acts == [Save(0, edited.finished), Trash(0), Goto(0)] and edited.n_faces == 2 and not edited.quit
    last, acts = run(replace(base, index=2), "x")
    assert acts == [Trash(2), Goto(1)] and last.n_faces == 2                  # the last face: show the one before
    alone, acts = run(new(n=1), "x")
    assert acts == [Trash(0), Quit()] and alone.quit and alone.n_faces == 0


def test_trash_face_moves_the_file_and_keeps_both_of_two_same_names(src_faceset, tmp_path):
    from mainscripts.xseg.xseg_editor import trash_face
    face = sorted(src_faceset.glob("*.jpg"))[0]
    folder = tmp_path / "aligned"
    folder.mkdir()
    data = face.read_bytes()
    first = trash_face(Path(shutil.copy(face, folder / face.name)))
    second = trash_face(Path(shutil.copy(face, folder / face.name)))
    assert first == tmp_path / "aligned_trash" / face.name and second != first
    assert first.read_bytes() == data == second.read_bytes() and not any(folder.iterdir())


def test_copy_previous_face_and_views_zoom_help():
    state = replace(new(), index=1)
    _, acts = run(state, "c")
    assert acts == [CopyFrom(0)]
    pasted = paste(state, (Poly("include", SQUARE),))
    assert pasted.finished == (Poly("include", SQUARE),) and run(pasted, "z")[0].polys == ()
    assert run(state, "4")[0].view == 1 and run(state, "4", "4")[0].view == 0
    assert run(state, "5")[0].view == 2 and run(state, "`")[0].view == 3
    zoomed, _ = run(state, (EVENT_MOUSEMOVE, 100, 100), (EVENT_MOUSEWHEEL, 100, 100, 120), "=")
    assert zoomed.zoom == 2
    # the face pixel under the mouse stays under it while zooming
    assert np.allclose(zoomed.to_face(100, 100), (100, 100))
    assert not run(state, 9)[0].show_help


def test_polygon_mask_exclude_wins_and_meta_round_trip():
    inc = Poly("include", SQUARE)
    exc = Poly("exclude", ((30.0, 30.0), (50.0, 30.0), (50.0, 50.0), (30.0, 50.0)))
    for order in ((inc, exc), (exc, inc)):
        m = polys_mask((128, 128), order)
        assert m[20, 20] == 1 and m[40, 40] == 0 and m[100, 100] == 0
    raw = polys_to_meta([inc, exc, Poly("include", ((1.0, 1.0),))])
    assert len(raw) == 2 and polys_from_meta(raw) == (inc, exc)
    with pytest.raises(VisageError, match="polygon 1 has 2 point"):
        polys_from_meta([{"type": "include", "points": [[1, 1], [2, 2]]}], "face.jpg")


# ------------------------------------------------------------------ the real window

@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_scripted_editor_session_under_xvfb(display, src_faceset, tmp_path, monkeypatch):
    import cv2
    from core.facelib.face_meta import read_meta
    from mainscripts.xseg.xseg_editor import run_editor
    faces = []
    for p in sorted(src_faceset.glob("*.jpg"))[:3]:
        shutil.copy(p, tmp_path / p.name)
        faces.append(tmp_path / p.name)
    callbacks, shown = {}, []
    real_set, real_show = cv2.setMouseCallback, cv2.imshow
    monkeypatch.setattr(cv2, "setMouseCallback", lambda t, cb: (callbacks.__setitem__("cb", cb), real_set(t, cb)))
    monkeypatch.setattr(cv2, "imshow", lambda t, img: (shown.append(img.shape), real_show(t, img)))

    def script(steps):
        it = iter(steps)

        def wait_key(delay=0):
            step = next(it, KEY_ESC)
            if isinstance(step, tuple):
                callbacks["cb"](*step)
                return -1
            return ord(step) if isinstance(step, str) else step
        monkeypatch.setattr(cv2, "waitKeyEx", wait_key)

    s = 768 / 128                                        # canvas pixels per face pixel
    include = [(20, 20), (100, 20), (100, 110), (20, 110)]
    exclude = [(40, 70), (90, 70), (90, 100)]
    w = lambda x, y, ev=EVENT_LBUTTONDOWN: (ev, int(x * s), int(y * s), 0, None)  # noqa: E731
    script(["q", *(w(*p) for p in include), w(*include[0]),
            "w", *(w(*p) for p in exclude), "z", "Z", 13, KEY_ESC])
    state = run_editor(faces)
    assert state.quit and shown and shown[0][1] == 768
    expected = [{"type": "include", "points": [[float(x), float(y)] for x, y in include]},
                {"type": "exclude", "points": [[float(x), float(y)] for x, y in exclude]}]
    assert read_meta(faces[0]).seg_ie_polys == expected

    before = [p.read_bytes() for p in faces]
    script([".", "q", w(5, 5), w(50, 5), w(50, 50), ".", ",", ",", "d", "a", KEY_ESC])
    state = run_editor(faces)                             # reopen: the polygons read back identical
    assert state.index == 0 and [list(map(list, p.points)) for p in state.loaded] == [e["points"] for e in expected]
    assert [p.read_bytes() for p in faces] == before      # next/prev without saving: byte-identical

    script(["x", KEY_ESC])                                # x: the face goes to <folder>_trash, the next is shown
    state = run_editor(faces)
    assert state.n_faces == 2 and not faces[0].exists()
    assert (tmp_path.parent / f"{tmp_path.name}_trash" / faces[0].name).read_bytes() == before[0]


def test_editor_command_errors(tmp_path, capsys):
    from main import main
    assert main(["xseg", "editor", "--input-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no aligned faces" in err[0], err
