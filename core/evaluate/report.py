"""evaluate.json (every figure, named for what it holds) and evaluate.png (one page to look at).

The page: the headline figures, four per-frame plots (identity distances, landmark error,
sharpness and seam ratios, flicker of merged vs dst) and a strip of the worst faces, each
as dst | merged. Drawn with OpenCV, like the training loss plot: no plotting library.
It is a chart, not a merged frame, so it carries no synthetic-media label.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

WIDTH = 1200
PLOT_H = 150
FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT = (230, 230, 230)
GREY = (110, 110, 110)
ORANGE, BLUE, GREEN, RED = (0, 140, 255), (255, 160, 60), (90, 200, 90), (80, 80, 230)
Series = tuple[Sequence[float], Sequence[float], tuple[int, int, int], str]   # xs, ys, colour, label


def clean(value):
    """JSON-ready: numpy scalars to Python, NaN/inf to None (JSON has no NaN), recursively."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _fmt(value, digits: int = 3, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def _percent(share) -> str:
    return _fmt(None if share is None else 100 * share, 0, " %")


def headline(summary: dict) -> list[str]:
    """The few lines the command and the demo print, and the page's header."""
    i, f, s, sh, se = (summary.get(k, {}) for k in ("identity", "fidelity", "stability", "sharpness", "seam"))
    identity = (f"identity: swap rate {_percent(i.get('swap_rate'))}, mean distance to src "
                f"{_fmt(i.get('mean_distance_to_src'))}, to dst {_fmt(i.get('mean_distance_to_dst'))} "
                f"(same person below {i.get('same_person_threshold', 0.6)})")
    fidelity = (f"fidelity: landmark error {_fmt(f.get('landmark_error'))} outer-eye distances, pose difference "
                f"yaw {_fmt(f.get('yaw_difference_deg'), 1)}, pitch {_fmt(f.get('pitch_difference_deg'), 1)}, "
                f"roll {_fmt(f.get('roll_difference_deg'), 1)} degrees; face re-found in "
                f"{_percent(f.get('refound_share'))} of faces")
    stability = (f"stability: flicker ratio {_fmt(s.get('flicker_ratio'), 2)}, jitter ratio "
                 f"{_fmt(s.get('jitter_ratio'), 2)} (merged {_fmt(s.get('jitter_merged'), 4)}, dst "
                 f"{_fmt(s.get('jitter_dst'), 4)}), wobble {_fmt(s.get('wobble'), 4)}")
    pixels = f"sharpness ratio {_fmt(sh.get('ratio'), 2)}, seam ratio {_fmt(se.get('ratio'), 2)} (1.0 = like the dst)"
    lines = [identity, fidelity, stability, pixels]
    r = summary.get("reconstruction")
    if r:
        lines.append(f"reconstruction ({r['model']} iter {r['iteration']}, {r['faces']} "
                     f"{'held-out' if r['held_out'] else 'training'} src faces): SSIM {_fmt(r.get('src_ssim'))}, "
                     f"PSNR {_fmt(r.get('src_psnr_db'), 1, ' dB')}"
                     + (f"; {r['dst_faces']} dst faces: SSIM {_fmt(r['dst_ssim'])}, "
                        f"PSNR {_fmt(r['dst_psnr_db'], 1, ' dB')}" if "dst_ssim" in r else ""))
    return lines


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.42, color=TEXT) -> None:
    cv2.putText(img, text, org, FONT, scale, color, 1, cv2.LINE_AA)


def line_plot(series: Sequence[Series], title: str, x_max: float, hlines: Sequence[tuple[float, str]] = (),
              width: int = WIDTH, height: int = PLOT_H) -> np.ndarray:
    """Lines over the frame index (breaks at missing values), y from 0 to the data's top, as a BGR image."""
    img = np.full((height, width, 3), 24, np.uint8)
    left, right, top, bottom = 48, width - 10, 22, height - 18
    values = [v for _, ys, _, _ in series for v in ys if v is not None and math.isfinite(v)]
    y_top = max(float(np.percentile(values, 99)) * 1.1 if values else 0.0, *(h * 1.1 for h, _ in hlines), 1e-6)
    def px(x: float) -> float:
        return left + (right - left) * (x / max(x_max, 1))

    def py(y: float) -> float:
        return bottom - (bottom - top) * min(max(y / y_top, 0.0), 1.0)
    cv2.rectangle(img, (left, top), (right, bottom), (60, 60, 60), 1)
    for y, label in hlines:
        cv2.line(img, (left, int(py(y))), (right, int(py(y))), GREY, 1, cv2.LINE_AA)
        _text(img, label, (right - 8 * len(label) - 4, int(py(y)) - 3), 0.36, GREY)
    _text(img, f"{y_top:.3g}", (2, top + 8), 0.36)
    _text(img, "0", (30, bottom), 0.36)
    _text(img, f"frame {int(x_max)}", (right - 70, height - 4), 0.36)
    _text(img, "frame 0", (left, height - 4), 0.36)
    legend_x = left + 8 + 8 * len(title)
    _text(img, title, (left, 15), 0.45)
    for xs, ys, color, label in series:
        run: list[tuple[int, int]] = []
        for x, y in [*zip(xs, ys), (None, None)]:
            if y is None or not math.isfinite(y):
                if len(run) > 1:
                    cv2.polylines(img, [np.array(run, np.int32).reshape(-1, 1, 2)], False, color, 1, cv2.LINE_AA)
                elif run:
                    cv2.circle(img, run[0], 2, color, -1, cv2.LINE_AA)
                run = []
                continue
            run.append((int(px(x)), int(py(y))))
        _text(img, label, (legend_x, 15), 0.42, color)
        legend_x += 8 * len(label) + 16
    return img


def contact_strip(pairs: Sequence[tuple[np.ndarray, np.ndarray, str]], cell: int = 96) -> np.ndarray:
    """dst | merged thumbnails side by side, labelled underneath, in one row (or a blank strip)."""
    per_row = max(1, WIDTH // (2 * cell + 8))
    rows = max(1, math.ceil(len(pairs) / per_row))
    img = np.full((rows * (cell + 20) + 22, WIDTH, 3), 24, np.uint8)
    _text(img, "worst faces (dst | merged):" if pairs else "no faces", (6, 15), 0.45)
    for k, (dst, merged, label) in enumerate(pairs):
        r, c = divmod(k, per_row)
        x, y = 6 + c * (2 * cell + 8), 22 + r * (cell + 20)
        img[y:y + cell, x:x + cell] = cv2.resize(dst, (cell, cell), interpolation=cv2.INTER_AREA)
        img[y:y + cell, x + cell:x + 2 * cell] = cv2.resize(merged, (cell, cell), interpolation=cv2.INTER_AREA)
        _text(img, label[:30], (x, y + cell + 13), 0.36)
    return img


def render_page(summary: dict, faces: list[dict], flicker: list[tuple[int, float, float]],
                worst: Sequence[tuple[np.ndarray, np.ndarray, str]], title: str) -> np.ndarray:
    """The whole one-page report as a BGR image."""
    lines = [title, *headline(summary)]
    head = np.full((14 + 20 * len(lines), WIDTH, 3), 24, np.uint8)
    for k, line in enumerate(lines):
        _text(head, line, (8, 20 + 20 * k), 0.5 if k == 0 else 0.44)
    x_max = max([f["frame_index"] for f in faces] + [1])
    xs = [f["frame_index"] for f in faces]
    def col(key: str) -> list:
        return [f.get(key) for f in faces]
    plots = [
        line_plot([(xs, col("distance_to_src"), ORANGE, "to src"), (xs, col("distance_to_dst"), BLUE, "to dst")],
                  "identity distance", x_max, [(0.6, "same person")]),
        line_plot([(xs, col("landmark_error"), GREEN, "merged vs dst")], "landmark error (outer-eye distances)",
                  x_max),
        line_plot([(xs, col("sharpness_ratio"), BLUE, "sharpness"), (xs, col("seam_ratio"), RED, "seam")],
                  "ratio to dst", x_max, [(1.0, "1.0")]),
        line_plot([([p for p, _, _ in flicker], [m for _, m, _ in flicker], ORANGE, "merged"),
                   ([p for p, _, _ in flicker], [d for _, _, d in flicker], BLUE, "dst")],
                  "flicker (mean abs change)", x_max),
    ]
    return np.concatenate([head, *plots, contact_strip(worst)], axis=0)


def write_report(output_dir: Path, summary: dict, faces: list[dict], page: np.ndarray) -> tuple[Path, Path]:
    """evaluate.json and evaluate.png in `output_dir`, each written atomically."""
    from core.fileio import atomic_write_json, write_image
    json_path, png_path = output_dir / "evaluate.json", output_dir / "evaluate.png"
    atomic_write_json(json_path, clean({**summary, "per_face": faces}))
    write_image(png_path, page)
    return json_path, png_path
