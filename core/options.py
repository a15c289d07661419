"""One declarative option schema per command/model.

The same `Option` list drives the interactive prompt ('?' shows help), `--opt name=value`
flags, a `--config` JSON file, validation with a clear message, and the saved state of a
model (options marked `locked` are asked on the first run only and cannot change later).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from core import interact
from core.errors import VisageError


NUMBER_LIMIT = 10**9               # bound of a number option that declares no range of its own


@dataclass(frozen=True)
class Option:
    name: str
    kind: type                      # int, float, bool or str
    default: Any
    help: str
    prompt: str = ""                # DeepFaceLab's prompt text; defaults to the name
    choices: tuple = ()
    lo: float | None = None
    hi: float | None = None
    locked: bool = False            # asked on the first run only
    aliases: tuple = ()             # (other spelling, choice) pairs also accepted, e.g. ('whole_face', 'wf')

    def parse(self, raw: Any) -> Any:
        """Validate a value from a flag, a config file or saved state."""
        try:
            if self.kind is bool:
                value = raw if isinstance(raw, bool) else interact.parse_bool(str(raw))
            elif self.kind is int:
                if isinstance(raw, float) and not raw.is_integer():
                    raise ValueError
                value = int(raw)
            else:
                value = self.kind(raw)
            if self.kind in (int, float) and not math.isfinite(value):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise VisageError(f"option {self.name}: '{raw}' is not a valid {self.kind.__name__}") from None
        lo, hi = self.lo, self.hi
        if self.kind in (int, float):
            lo = -NUMBER_LIMIT if lo is None else lo
            hi = NUMBER_LIMIT if hi is None else hi
        if self.choices:
            value = dict(self.aliases).get(str(value).lower(), value)
            match = [c for c in self.choices if str(c).lower() == str(value).lower()]
            if not match:
                raise VisageError(f"option {self.name}: '{raw}' is not one of {', '.join(map(str, self.choices))}")
            value = match[0]
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise VisageError(f"option {self.name}: {value} is out of range [{lo} .. {hi}]")
        return value

    def ask(self, default: Any = None) -> Any:
        default = self.default if default is None else default
        text = self.prompt or self.name
        if self.choices:
            return self.parse(interact.input_choice(text, str(default), [str(c) for c in self.choices], self.help,
                                                    also=[a for a, _ in self.aliases]))
        if self.kind is bool:
            return interact.input_bool(text, bool(default), self.help)
        if self.kind is int:
            return interact.input_int(text, int(default), (self.lo, self.hi), self.help)
        if self.kind is float:
            return interact.input_float(text, float(default), (self.lo, self.hi), self.help)
        return interact.input_str(text, str(default), self.help)


def describe(schema: Iterable[Option], indent: str = "  ", width: int = 96) -> list[str]:
    """Help lines for `--help`: each option's name, default, choices or range, whether it is fixed
    after the first run, then its help text, wrapped."""
    import textwrap
    lines = []
    for o in schema:
        facts = [f"default {('n', 'y')[o.default] if o.kind is bool else o.default}"]
        if o.choices:
            facts.append("/".join(map(str, o.choices)))
        elif o.lo is not None or o.hi is not None:
            facts.append(f"{'' if o.lo is None else f'{o.lo:g}'}..{'' if o.hi is None else f'{o.hi:g}'}")
        if o.locked:
            facts.append("fixed after the first run")
        lines.append(f"{indent}{o.name} ({', '.join(facts)})")
        lines += textwrap.wrap(o.help, width, initial_indent=indent * 3, subsequent_indent=indent * 3)
    return lines


def parse_opt_flags(items: Iterable[str] | None) -> dict[str, str]:
    """['resolution=96', 'archi=df-ud'] -> {'resolution': '96', 'archi': 'df-ud'}."""
    out: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise VisageError(f"--opt '{item}' is not of the form name=value")
        out[name.strip()] = value.strip()
    return out


def load_config(path: str | Path | None) -> dict[str, Any]:
    """Options from a JSON config file (a flat object of name: value)."""
    if not path:
        return {}
    path = Path(path)
    if not path.is_file():
        raise VisageError(f"config file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise VisageError(f"config file {path} is not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise VisageError(f"config file {path} must hold one JSON object of option: value")
    return data


def resolve(schema: Iterable[Option], given: Mapping[str, Any], saved: Mapping[str, Any] | None = None,
            ask: bool = False) -> dict[str, Any]:
    """Final option values: given > saved > prompt (when `ask`) > default.

    A locked option already in `saved` cannot be changed by `given`.
    """
    schema = list(schema)
    names = {o.name for o in schema}
    unknown = sorted(set(given) - names)
    if unknown:
        raise VisageError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    saved = saved or {}
    values: dict[str, Any] = {}
    for opt in schema:
        if opt.locked and opt.name in saved:
            values[opt.name] = opt.parse(saved[opt.name])
            if opt.name in given and opt.parse(given[opt.name]) != values[opt.name]:
                raise VisageError(f"option {opt.name} is fixed after the first run "
                                  f"(it is {values[opt.name]}); start a new model to change it")
        elif opt.name in given:
            values[opt.name] = opt.parse(given[opt.name])
        elif ask:
            values[opt.name] = opt.ask(saved.get(opt.name))
        elif opt.name in saved:
            values[opt.name] = opt.parse(saved[opt.name])
        else:
            values[opt.name] = opt.default
    return values
