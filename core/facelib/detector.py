"""Face detection with MediaPipe's BlazeFace full-range model through ai-edge-litert.

The frame is letterboxed into the 192x192 input ([-1, 1], RGB). The model scores 2304
anchors (a 48x48 grid, stride 4, one anchor per cell centred at +0.5); a box centre is
raw/192 + anchor and its size raw/192. Scores pass a sigmoid and a 0.6 threshold, then
weighted NMS (IoU 0.3) merges overlapping boxes. When nothing is found, the frame is
tried rotated by 90/180/270 degrees, and large frames are tiled so that small faces still
cover enough input pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.facelib.model_registry import load_interpreter

INPUT = 192
GRID = 48
SCORE_THRESHOLD = 0.6
NMS_IOU = 0.3


@dataclass
class Detection:
    box: np.ndarray        # (4,) x0, y0, x1, y1 in frame pixels
    keypoints: np.ndarray  # (6, 2): right eye, left eye, nose, mouth, right ear, left ear
    score: float

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def _anchors() -> np.ndarray:
    c = (np.arange(GRID, dtype=np.float32) + 0.5) / GRID
    xs, ys = np.meshgrid(c, c)
    return np.stack([xs.ravel(), ys.ravel()], 1)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> list[Detection]:
    """Merge overlapping candidates into one detection, averaging them by score."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    alive = np.ones(len(scores), bool)
    out: list[Detection] = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        group = alive & (_iou(boxes[i], boxes) > iou)
        group[i] = True
        w = scores[group][:, None]
        out.append(Detection((boxes[group] * w).sum(0) / w.sum(),
                             (kps[group] * w[:, :, None]).sum(0) / w.sum(), float(scores[i])))
        alive &= ~group
    return out


class FaceDetector:
    """One interpreter per process; call `detect(frame_bgr)`."""

    def __init__(self, threads: int = 1, score_threshold: float = SCORE_THRESHOLD):
        self.interp = load_interpreter("face_detector", threads)
        self.input_index = self.interp.get_input_details()[0]["index"]
        outs = sorted(self.interp.get_output_details(), key=lambda d: d["shape"][-1])
        self.score_index, self.reg_index = outs[0]["index"], outs[1]["index"]
        self.anchors = _anchors()
        self.threshold = score_threshold

    def _run(self, img: np.ndarray) -> list[Detection]:
        """Detect on one view without retries; coordinates in `img` pixels."""
        h, w = img.shape[:2]
        s = INPUT / max(h, w)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        canvas = np.zeros((INPUT, INPUT, 3), np.uint8)
        canvas[:nh, :nw] = small
        x = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32) * (2 / 255.0) - 1.0
        self.interp.set_tensor(self.input_index, x[None])
        self.interp.invoke()
        logits = self.interp.get_tensor(self.score_index)[0, :, 0]
        keep = logits > np.log(self.threshold / (1 - self.threshold))
        if not keep.any():
            return []
        raw = self.interp.get_tensor(self.reg_index)[0][keep]
        anchors = self.anchors[keep]
        scores = 1 / (1 + np.exp(-np.clip(logits[keep], -100, 100)))
        cx = raw[:, 0] / INPUT + anchors[:, 0]
        cy = raw[:, 1] / INPUT + anchors[:, 1]
        bw, bh = raw[:, 2] / INPUT, raw[:, 3] / INPUT
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) * (INPUT / s)
        kps = (raw[:, 4:16].reshape(-1, 6, 2) / INPUT + anchors[:, None, :]) * (INPUT / s)
        return weighted_nms(boxes, kps, scores)

    def _tiled(self, img: np.ndarray) -> list[Detection]:
        """Detect in overlapping tiles so faces of ~20-40 px in big frames are seen."""
        h, w = img.shape[:2]
        tile = max(INPUT * 2, min(h, w) // 2)
        step = max(1, tile // 2)
        found: list[Detection] = []
        for y in range(0, max(1, h - tile + step), step):
            for x in range(0, max(1, w - tile + step), step):
                y0, x0 = min(y, max(0, h - tile)), min(x, max(0, w - tile))
                for d in self._run(img[y0:y0 + tile, x0:x0 + tile]):
                    d.box += (x0, y0, x0, y0)
                    d.keypoints += (x0, y0)
                    found.append(d)
        if not found:
            return []
        return weighted_nms(np.array([d.box for d in found]), np.array([d.keypoints for d in found]),
                            np.array([d.score for d in found]))

    def detect(self, img: np.ndarray, rotations: bool = True, tiling: bool = True) -> list[Detection]:
        """Faces in a BGR frame, largest first; retried rotated and tiled when none are found."""
        found = self._run(img)
        if not found and tiling and max(img.shape[:2]) >= INPUT * 4:
            found = self._tiled(img)
        if not found and rotations:
            h, w = img.shape[:2]
            # keep the best view: sideways faces also score weakly, the upright view best
            views = [[back(d, w, h) for d in self._run(cv2.rotate(img, code))]
                     for code, back in ((cv2.ROTATE_90_CLOCKWISE, _from_rot90), (cv2.ROTATE_180, _from_rot180),
                                        (cv2.ROTATE_90_COUNTERCLOCKWISE, _from_rot270))]
            found = max(views, key=lambda v: max((d.score for d in v), default=0.0))
        return sorted(found, key=lambda d: -d.size)


def _map(d: Detection, fn) -> Detection:
    pts = fn(np.vstack([d.box.reshape(2, 2), d.keypoints]))
    corners = pts[:2]
    box = np.array([corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max()])
    return Detection(box, pts[2:], d.score)


def _from_rot90(d: Detection, w: int, h: int) -> Detection:
    # rotated (x', y') = (h - 1 - y, x)  =>  x = y', y = h - 1 - x'
    return _map(d, lambda p: np.stack([p[:, 1], h - 1 - p[:, 0]], 1))


def _from_rot180(d: Detection, w: int, h: int) -> Detection:
    return _map(d, lambda p: np.stack([w - 1 - p[:, 0], h - 1 - p[:, 1]], 1))


def _from_rot270(d: Detection, w: int, h: int) -> Detection:
    # rotated (x', y') = (y, w - 1 - x)  =>  x = w - 1 - y', y = x'
    return _map(d, lambda p: np.stack([w - 1 - p[:, 1], p[:, 0]], 1))
