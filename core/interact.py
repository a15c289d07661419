"""Console prompts in DeepFaceLab's style: a default in brackets, '?' prints the help.

When standard input is not a terminal (CI, a headless server, a pipe) or
`set_non_interactive(True)` was called, no prompt waits: the default is taken and echoed,
so any run can be fully scripted.
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence, TypeVar

from colorama import Fore, Style, just_fix_windows_console

just_fix_windows_console()
T = TypeVar("T")
_non_interactive = False


def set_non_interactive(value: bool = True) -> None:
    global _non_interactive
    _non_interactive = value


def is_interactive() -> bool:
    return not _non_interactive and sys.stdin is not None and sys.stdin.isatty()


def log_info(msg: str) -> None:
    print(msg, flush=True)


def log_warn(msg: str, tag: bool = True) -> None:
    """A yellow line on stderr, "warning: " first unless the line names its status itself (tag=False)."""
    print(f"{Fore.YELLOW}{'warning: ' if tag else ''}{msg}{Style.RESET_ALL}", file=sys.stderr, flush=True)


def log_err(msg: str, tag: bool = True) -> None:
    """A red line on stderr, "error: " first unless the line names its status itself (tag=False)."""
    print(f"{Fore.RED}{'error: ' if tag else ''}{msg}{Style.RESET_ALL}", file=sys.stderr, flush=True)


def _ask(prompt: str, default: T, parse: Callable[[str], T], help_text: str, shown: str, hint: str = "") -> T:
    """Ask until `parse` accepts the answer; empty answer = default, '?' = help.

    DeepFaceLab's line: `[default] prompt ( hint ?:help ) : `, the hint being the range
    (`0..24`), `y/n` or the choices (`n/y/cpu`).
    """
    extras = " ".join(x for x in (hint, "?:help" if help_text else "") if x)
    line = f"[{shown}] {prompt}" + (f" ( {extras} )" if extras else "") + " : "
    if not is_interactive():
        log_info(f"{line}{shown}")
        return default
    while True:
        try:
            answer = input(line).strip()
        except EOFError:
            log_info(str(shown))
            return default
        if answer == "":
            return default
        if answer == "?" and help_text:
            log_info(f"{Fore.CYAN}{help_text}{Style.RESET_ALL}")
            continue
        try:
            return parse(answer)
        except ValueError as e:
            log_warn(str(e) or f"'{answer}' is not a valid answer")


def _in_range(value, lo, hi):
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{value} is out of range [{lo} .. {hi}]")
    return value


def _range_hint(lo, hi) -> str:
    return f"{lo:g}..{hi:g}" if lo is not None and hi is not None else ""


def input_int(prompt: str, default: int, valid_range: tuple[int | None, int | None] = (None, None),
              help_text: str = "") -> int:
    return _ask(prompt, default, lambda s: _in_range(int(s), *valid_range), help_text, str(default),
                _range_hint(*valid_range))


def input_float(prompt: str, default: float, valid_range: tuple[float | None, float | None] = (None, None),
                help_text: str = "") -> float:
    return _ask(prompt, default, lambda s: _in_range(float(s), *valid_range), help_text, str(default),
                _range_hint(*valid_range))


def parse_bool(s: str) -> bool:
    s = str(s).strip().lower()
    if s in ("y", "yes", "1", "true", "on"):
        return True
    if s in ("n", "no", "0", "false", "off"):
        return False
    raise ValueError(f"'{s}' is not y/n")


def input_bool(prompt: str, default: bool, help_text: str = "") -> bool:
    return _ask(prompt, default, parse_bool, help_text, "y" if default else "n", "y/n")


def input_choice(prompt: str, default: str, choices: Sequence[str], help_text: str = "",
                 also: Sequence[str] = ()) -> str:
    """One of `choices` (shown in the hint) or of `also` (other accepted spellings, returned as typed)."""
    lowered = {c.lower(): c for c in (*choices, *also)}

    def parse(s: str) -> str:
        if s.lower() not in lowered:
            raise ValueError(f"'{s}' is not one of: {', '.join(choices)}")
        return lowered[s.lower()]
    return _ask(prompt, default, parse, help_text, default, "/".join(choices))


def input_str(prompt: str, default: str, help_text: str = "") -> str:
    return _ask(prompt, default, str, help_text, default)


def input_in_time(message: str, seconds: float) -> bool:
    """DeepFaceLab's 'Press enter in 2 seconds to override model settings': True if Enter came in time."""
    if not is_interactive():
        return False
    log_info(message)
    if sys.platform == "win32":
        import msvcrt
        import time
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if msvcrt.kbhit() and msvcrt.getwch() in "\r\n":
                return True
            time.sleep(0.05)
        return False
    import select
    ready, _, _ = select.select([sys.stdin], [], [], seconds)
    if ready:
        sys.stdin.readline()
        return True
    return False
