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
