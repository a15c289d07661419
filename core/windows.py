"""Opening an OpenCV window with one clear error when there is no display.

On Linux without an X or Wayland display, OpenCV's Qt backend aborts the whole process
instead of raising, so the environment is checked before `cv2.namedWindow` is called.
"""
from __future__ import annotations

import os
import sys

from core.errors import VisageError


def display_available() -> bool:
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def open_window(title: str, no_display_message: str) -> None:
    """cv2.namedWindow(title), or VisageError(no_display_message) when no window can be shown."""
    import cv2
    if not display_available():
        raise VisageError(no_display_message)
    try:
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)
    except cv2.error as e:
        raise VisageError(no_display_message) from e


def text_panel(lines: list[str], width: int, scale: float = 0.45, line_h: int = 18, shade: int = 40):
    """Grey strip with one line of light text per entry: status bars and help screens."""
    import cv2
    import numpy as np
    img = np.full((len(lines) * line_h + 6, width, 3), shade, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(img, line, (6, (i + 1) * line_h - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (230, 230, 230), 1,
                    cv2.LINE_AA)
    return img


class CloseWatch:
    """Tells when the user closed a window with its title-bar button.

    Only a window seen visible once can count as closed: some platforms never report
    visibility, and there the window simply cannot be closed that way.
    """

    def __init__(self, title: str):
        self.title, self.seen_visible = title, False

    def closed(self) -> bool:
        import cv2
        try:
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            visible = False
        self.seen_visible |= visible
        return self.seen_visible and not visible
