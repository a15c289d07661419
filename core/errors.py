"""The one exception type that reaches the user as a single clear line.

Commands raise `VisageError` for bad input or environment (missing file, empty folder,
wrong face type...). `main.py` prints its message on one line and exits non-zero; any
other exception is a bug and keeps its traceback.
"""


class VisageError(Exception):
    """Bad input or environment: the message says what, which file, and what to do."""
