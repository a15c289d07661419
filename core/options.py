"""One declarative option schema for every command and model.

Each setting is declared once as an `Option` (name, type, default, range or choices, help,
prompt). From that one declaration come the command's `--flag` (help text with the default
and range, argparse's one-line error for a bad value), the interactive prompt ('?' shows the
help), `--opt name=value`, `--config FILE` (JSON or TOML, flat `name = value`), the check a
library function makes on the number it is given, and a model's saved state under the same
name (options marked `locked` are asked on the first run only and cannot change later).

Why numbers are checked so hard: argparse's `type=float` and a prompt's float() accept
'nan', 'inf' and '1e999'; a frame rate of 1e9 once made ffmpeg write frames until the kernel
killed it. An Option refuses them, and every number an option declares without a range is
still kept within ±NUMBER_LIMIT.
"""
from __future__ import annotations

import argparse
import math
import numbers
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from core import interact
from core.errors import VisageError

NUMBER_LIMIT = 10**9               # bound of a number option that declares no range of its own
CONFIG_HELP = "options from a JSON or TOML file of name = value (the names listed by --help); flags win over it"
OPT_HELP = "set an option by name, e.g. --opt {example} (repeatable); wins over --config, loses to its own flag"


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
    asked: bool = True              # prompted for when not given (False: flag or default only)
    # a default that follows the options resolved before it, e.g. DeepFaceLab's GAN patch size of
    # resolution // 8: (function of those values, what --help shows for it); `default` is then its
    # value at the schema's own defaults
    derived: tuple[Callable[[Mapping[str, Any]], Any], str] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def range(self) -> tuple[float | None, float | None]:
        """(lo, hi) as core.interact's prompts take it."""
        return self.lo, self.hi

    def _value(self, raw: Any) -> tuple[Any, str]:
        """(value, '') when `raw` is valid, else (None, the reason in a few words)."""
        try:
            if self.kind is bool:
                value = raw if isinstance(raw, bool) else interact.parse_bool(str(raw))
            elif self.kind in (int, float) and isinstance(raw, bool):
                raise ValueError
            elif self.kind is int:
                if isinstance(raw, numbers.Real) and not isinstance(raw, numbers.Integral) and \
                        not (math.isfinite(raw) and float(raw).is_integer()):
                    raise ValueError
                value = int(raw)
            else:
                value = self.kind(raw)
            if self.kind in (int, float) and not math.isfinite(value):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            return None, f"'{raw!s:.40}' is not a valid {self.kind.__name__}"
        if self.choices:
            value = dict(self.aliases).get(str(value).lower(), value)
            match = [c for c in self.choices if str(c).lower() == str(value).lower()]
            if not match:
                return None, f"'{raw!s:.40}' is not one of {', '.join(map(str, self.choices))}"
            value = match[0]
        lo, hi = self.lo, self.hi
        if self.kind in (int, float):
            lo = -NUMBER_LIMIT if lo is None else lo
            hi = NUMBER_LIMIT if hi is None else hi
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return None, f"{_num(value)} is out of range {_num(lo)}..{_num(hi)}"
        return value, ""

    def parse(self, raw: Any) -> Any:
        """The value of `raw` (a flag, a config file, saved state, a library argument), or one VisageError line."""
        value, problem = self._value(raw)
        if problem:
            raise VisageError(f"option {self.name}: {problem}")
        return value

    def __call__(self, text: str) -> Any:
        """argparse `type`: argparse names the flag in its one-line error."""
        value, problem = self._value(text)
        if problem:
            raise argparse.ArgumentTypeError(problem)
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
            return self.parse(interact.input_int(text, int(default), (self.lo, self.hi), self.help))
        if self.kind is float:
            return self.parse(interact.input_float(text, float(default), (self.lo, self.hi), self.help))
        return interact.input_str(text, str(default), self.help)

    def default_for(self, earlier: Mapping[str, Any]) -> Any:
        """The default given the values of the options before it (`derived`), else the fixed one."""
        return self.parse(self.derived[0](earlier)) if self.derived else self.default

    def facts(self, choices: bool = True) -> str:
        """'default 7, 1..20' / 'default png, png/jpg' / 'default y': what --help shows after the text
        (a flag's choices are in argparse's own {a,b} already: `choices=False`)."""
        shown = ("n", "y")[self.default] if self.kind is bool else self.default
        shown = self.derived[1] if self.derived else shown
        facts = [f"default {shown}" if shown not in ("", None) else "no default"]
        if self.choices and choices:
            facts.append("/".join(map(str, self.choices)))
        elif not self.choices and (self.lo is not None or self.hi is not None):
            facts.append(f"{'' if self.lo is None else f'{self.lo:g}'}..{'' if self.hi is None else f'{self.hi:g}'}")
        if self.locked:
            facts.append("fixed after the first run")
        return ", ".join(facts)


def _num(x: float) -> str:
    """5000.0 -> '5000', 0.1 -> '0.1', 10**9 -> '1000000000' (no exponents in a user's message)."""
    return format(x, ".12g") if isinstance(x, float) else str(x)


def describe(schema: Iterable[Option], indent: str = "  ", width: int = 96) -> list[str]:
    """Help lines for an epilog: each option's name and facts, then its help text, wrapped."""
    lines = []
    for o in schema:
        lines.append(f"{indent}{o.name} ({o.facts()})")
        lines += textwrap.wrap(o.help, width, initial_indent=indent * 3, subsequent_indent=indent * 3)
    return lines


def add_flags(parser: argparse.ArgumentParser, schema: Iterable[Option], example: str | None = None) -> None:
    """Each option as `--its-name`, then `--opt` and `--config` for the same names.

    Every flag defaults to None, so `Settings` can tell a flag that was given from one that was not.
    """
    schema = list(schema)
    for o in schema:
        listed = 0 < len(",".join(map(str, o.choices))) <= 40      # short lists go in argparse's {a,b}
        kw: dict[str, Any] = {"dest": o.name, "default": None,
                              "help": f"{o.help} ({o.facts(choices=not listed)}"
                                      f"{'; asked when not given' if o.asked else ''})".replace("%", "%%")}
        if o.kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = o                # converts other spellings first, so argparse's choices check passes
            kw.update({"choices": o.choices} if listed else {"metavar": o.name.upper()})
        parser.add_argument(o.flag, **kw)
    first = schema[0] if schema else None
    example = example or (f"{first.name}={('n', 'y')[first.default] if first.kind is bool else first.default}"
                          if first else "name=value")
    parser.add_argument("--opt", action="append", metavar="NAME=VALUE", help=OPT_HELP.format(example=example))
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)


def parse_opt_flags(items: Iterable[str] | None) -> dict[str, str]:
    """['resolution=96', 'archi=df-ud'] -> {'resolution': '96', 'archi': 'df-ud'}."""
    out: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise VisageError(f"--opt '{item}' is not of the form name=value")
        out[name.strip()] = value.strip()
    return out


def load_config(path: str | os.PathLike | None) -> dict[str, Any]:
    """Options from a config file: one flat JSON object or TOML table of name = value.

    TOML when the name ends in .toml (read with the standard library's tomllib), JSON
    otherwise (through core.fileio's safe reader: size, depth and finite numbers checked).
    """
    if not path:
        return {}
    from core.fileio import parse_json
    path = Path(path)
    if not path.is_file():
        raise VisageError(f"config file not found: {path}")
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise VisageError(f"could not read config file {path}: {e.strerror or e}") from e
    if path.suffix.lower() == ".toml":
        import tomllib
        try:
            data = tomllib.loads(blob.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise VisageError(f"config file {path} is not valid TOML ({e})") from None
    else:
        data = parse_json(blob, f"config file {path}")
    if not isinstance(data, dict):
        raise VisageError(f"config file {path} must hold one object of option: value")
    nested = sorted(k for k, v in data.items() if isinstance(v, (dict, list)))
    if nested:
        raise VisageError(f"config file {path}: {', '.join(nested)} must be a plain value (flat name = value)")
    return data


def given_options(args: argparse.Namespace, schema: Iterable[Option] = ()) -> dict[str, Any]:
    """What the user gave for this run: --config, then --opt, then each option's own flag (the last wins)."""
    given = {**load_config(getattr(args, "config", None)), **parse_opt_flags(getattr(args, "opt", None))}
    given.update({o.name: getattr(args, o.name) for o in schema if getattr(args, o.name, None) is not None})
    return given


def _check_known(schema: Iterable[Option], given: Mapping[str, Any]) -> None:
    names = {o.name for o in schema}
    unknown = sorted(set(given) - names)
    if unknown:
        raise VisageError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")


class Settings:
    """A command's options for one run, each resolved once: given (flag > --opt > --config) > asked > default.

    Values are resolved when first read, so a command asks only what the choices made so far
    need (DeepFaceLab asks the bitrate only for a lossy codec), in the order it needs them.
    Every given name is checked against the schema up front: a typo is one line before any work.
    """

    def __init__(self, schema: Iterable[Option], given: Mapping[str, Any], ask: bool | None = None):
        self.schema = {o.name: o for o in schema}
        _check_known(self.schema.values(), given)
        self.given = {n: self.schema[n].parse(v) for n, v in given.items()}
        self.ask = interact.is_interactive() if ask is None else ask
        self._values: dict[str, Any] = {}

    @classmethod
    def from_args(cls, args: argparse.Namespace, schema: Iterable[Option], ask: bool | None = None) -> Settings:
        schema = list(schema)
        return cls(schema, given_options(args, schema), ask)

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def get(self, name: str, default: Any = None) -> Any:
        """The option's value; `default` replaces the schema's default (e.g. a video's own duration)."""
        if name not in self._values:
            opt = self.schema[name]
            if name in self.given:
                value = self.given[name]
            elif self.ask and opt.asked:
                value = opt.ask(default)
            else:
                value = opt.default if default is None else opt.parse(default)
            self._values[name] = value
        return self._values[name]


def resolve(schema: Iterable[Option], given: Mapping[str, Any], saved: Mapping[str, Any] | None = None,
            ask: bool = False) -> dict[str, Any]:
    """Final option values: given > saved > prompt (when `ask`) > default.

    A locked option already in `saved` cannot be changed by `given`.
    """
    schema = list(schema)
    _check_known(schema, given)
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
        elif ask and opt.asked:
            values[opt.name] = opt.ask(saved[opt.name] if opt.name in saved else opt.default_for(values))
        elif opt.name in saved:
            values[opt.name] = opt.parse(saved[opt.name])
        else:
            values[opt.name] = opt.default_for(values)
    return values


# Settings several commands share (bench and demo use them as argparse types too).
WORKERS = Option("workers", int, 0, "worker processes (0 = one per CPU core); each loads its own models, so more "
                 "than this only thrashes memory", lo=0, hi=max(64, os.cpu_count() or 1), asked=False)
FRAME_COUNT = Option("frames", int, 0, "use only the first N frames (0 = all)", lo=0, hi=10**7, asked=False)
REPEATS = Option("repeats", int, 3, "timed runs or iterations of a benchmark", lo=1, hi=1000, asked=False)
FACE_SIZE = Option("image_size", int, 512, "side of the aligned face images in pixels", lo=64, hi=2048)
