"""The interactive merger: DeepFaceLab's keyboard merger driving the one merge engine.

A frame is decoded, cropped and predicted once and kept in a small cache, so a key press
only re-composites it. A frame is written (merged + mask) when it is finished: left,
given settings, or auto-processed. The session (settings per frame, current frame) lives
in the model folder as `<name>_<Model>_merger_session.json` and is restored when the
frames are the same. With an XSeg model, both XSeg masks are computed with the prediction
(one XSeg call per frame), so the mask-mode key switches to an XSeg mode without waiting;
without one, that key skips the XSeg modes.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core import interact
from core.errors import VisageError
from core.fileio import read_image
from core.merge.compose import compose_frame, crop_face
from core.merge.config import MASK_MODES, MergerConfig
from core.merge.masks import XSEG_MASK_MODES
from core.merge.xseg_masks import add_xseg_masks
from core.merge.interactive import MergerState, load_session, save_session
from core.merge.batch_job import write_merged

CACHED_FRAMES = 16


class FrameCache:
    """Decoded frames with their crops and predictions, most recently used kept."""

    def __init__(self, frames: list, predictor: Any, xseg: Any = None):
        self.frames, self.predictor, self.xseg = frames, predictor, xseg
        self._items: OrderedDict[int, tuple] = OrderedDict()

    def get(self, i: int, morph: float = 1.0) -> tuple[np.ndarray | None, list, list]:
        """Frame i, its crops and their predictions at this morph factor (a model without one ignores it)."""
        key = (i, morph if self.predictor.takes_morph else None)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        f = self.frames[i]
        frame = read_image(f.path)
        crops = [crop_face(frame, m, self.predictor.resolution, self.predictor.face_type) for m in f.faces] \
            if frame is not None else []
        predictions = self.predictor.predict_batch([c.dst for c in crops], morph)
        if self.xseg is not None:
            predictions = add_xseg_masks([frame] * len(crops), crops, predictions, self.xseg)
        item = (frame, crops, predictions)
        self._items[key] = item
        if len(self._items) > CACHED_FRAMES:
            self._items.popitem(last=False)
        return item


def _unreadable(name: str) -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((360, 640, 3), np.uint8)
    cv2.putText(img, f"{name}: unreadable image (not written)", (20, 180), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                (0, 0, 255), 1, cv2.LINE_AA)
    return img, np.zeros((360, 640, 1), np.float32)


def interactive_merge(frames: list, predictor: Any, output_dir: Path, mask_dir: Path, model_dir: Path,
                      given: dict[str, Any], xseg: Any = None) -> int:
    from mainscripts.merge.merger_window import run_window
    names = [f.name for f in frames]
    session_path = Path(model_dir) / f"{predictor.title}_merger_session.json"
    restored = load_session(session_path, names)
    if restored:
        state, saved_iter = restored
        interact.log_info(f"Merger session restored at frame {state.index + 1} of {len(names)}")
        if saved_iter != predictor.iteration:
            interact.log_info("The model was trained further since then: frames are written again as you "
                              "finish them (Shift+/ and Shift+. redo the rest)")
    else:
        state = MergerState.new(names, MergerConfig.from_options(given))
    state = replace(state, morph=predictor.takes_morph)
    if xseg is None:
        if any(c.mask_mode in XSEG_MASK_MODES for c in state.configs):
            raise VisageError(f"the merger session {session_path.name} uses an XSeg mask mode and there is no "
                              "trained XSeg model; train one or point --xseg-model-dir at its folder")
        state = replace(state, mask_modes=tuple(m for m in MASK_MODES if m not in XSEG_MASK_MODES))
    output_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    cache, last_render = FrameCache(frames, predictor, xseg), {}

    def render(i: int, cfg: MergerConfig) -> tuple[np.ndarray, np.ndarray]:
        if (i, cfg) not in last_render:          # commit() right after a render reuses it
            frame, crops, predictions = cache.get(i, cfg.morph_factor)
            result = _unreadable(names[i]) if frame is None else \
                compose_frame(frame, crops, predictions, cfg, frames[i].motions)
            last_render.clear()
            last_render[(i, cfg)] = result
        return last_render[(i, cfg)]

    def commit(i: int, cfg: MergerConfig) -> None:
        if cache.get(i, cfg.morph_factor)[0] is None:
            interact.log_warn(f"{names[i]} is unreadable and was not written")
            return
        merged, mask = render(i, cfg)
        stem = Path(names[i]).stem
        write_merged(output_dir / f"{stem}.png", mask_dir / f"{stem}.png", merged, mask)

    run_window(state, render, commit, lambda s: save_session(session_path, s, predictor.iteration),
               title=f"Visage merger - {predictor.title}")
    done = sum((output_dir / f"{Path(n).stem}.png").is_file() for n in names)
    interact.log_info(f"Session saved to {session_path.name}; {done} of {len(names)} frames are merged in {output_dir}")
    return 0
