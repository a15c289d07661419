"""The fuzz tests' machinery: seeded byte- and JSON-level mutations, a pickle gadget that proves
whether anything unpickled hostile bytes, and `Fuzz`, which calls readers and collects every
outcome that is neither a valid result nor a VisageError (a watchdog ends a hang).
"""
from __future__ import annotations

import faulthandler
import json
import random
from typing import Any, Callable

from core.errors import VisageError
from tests.support.hostile_support import HUGE_INT, deep_json

CALL_LIMIT_S = 30
HOLE = "@@hostile@@"                  # a JSON string replaced by raw hostile text after dumps()
HOSTILE_TEXT = (HUGE_INT, "-" + HUGE_INT, "1e999", "-1e999", "NaN", "Infinity", "-Infinity", str(2**63),
                "1" * 5000, deep_json(65), deep_json(1000), deep_json(200_000), '{"a":' * 5000 + "1" + "}" * 5000)
WRONG = ("x", "", 0, -1, 1.5, True, None, [], {}, [[1, 2]] * 68, [[1, 2, 3]] * 68, {"a": [1]}, [None] * 4,
         "AAAA", -1e308, 1e308, 2**62, [[1e308, -1e308]] * 68, [["1", "2"]] * 68, "\udc80x", "\ud800")


class Gadget:
    """Unpickling this creates `marker`: it proves whether anything unpickles hostile bytes."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def byte_mutation(rng: random.Random, data: bytes, other: bytes) -> bytes:
    b = bytearray(data)
    op = rng.randrange(6)
    if op == 0:                                          # bit flips
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif op == 1:                                        # inserted bytes, markers among them
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.choice([rng.randbytes(rng.randint(1, 32)), b"\xff", b"\xff\xd9", b"\xff\xda", b"\xff\xef"])
    elif op == 2:                                        # deleted bytes
        i = rng.randrange(len(b))
        del b[i:i + rng.randint(1, 64)]
    elif op == 3:                                        # truncation
        del b[rng.randrange(len(b)):]
    elif op == 4:                                        # a piece of another file spliced in
        i, j = rng.randrange(len(other)), rng.randrange(len(b) + 1)
        b[j:j + rng.randint(0, 64)] = other[i:i + rng.randint(1, 4096)]
    else:                                                # a length field after a marker set to an extreme
        spots = [i for i in range(min(len(b), 40_000) - 3) if b[i] == 0xFF and 0xC0 <= b[i + 1] <= 0xFE]
        if spots:
            i = rng.choice(spots) + 2
            b[i:i + 2] = rng.choice([0, 1, 2, 3, 0xFFFF, rng.randrange(65536)]).to_bytes(2, "big")
    return bytes(b)


def json_hole(rng: random.Random, value: Any) -> Any:
    """`value` with one number or member replaced by HOLE (or a wrong type)."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value))
        return {**value, key: json_hole(rng, value[key])}
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        return value[:i] + [json_hole(rng, value[i])] + value[i + 1:]
    return HOLE if rng.random() < 0.5 else rng.choice(WRONG)


def json_mutation(rng: random.Random, doc: Any) -> bytes:
    """JSON text of `doc` with one hostile edit: a hole filled with hostile text, a wrong type, a dropped key."""
    if isinstance(doc, dict) and doc and rng.random() < 0.15:
        doc = {k: v for k, v in doc.items() if k != rng.choice(sorted(doc))}
    else:
        doc = json_hole(rng, doc)
    return json.dumps(doc).replace(json.dumps(HOLE), rng.choice(HOSTILE_TEXT)).encode()


class Fuzz:
    """Calls readers, collecting every outcome that is neither a valid result nor a VisageError."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.calls = 0

    def call(self, label: str, fn: Callable, *args, valid: Callable[[Any], bool] = lambda r: True) -> Any:
        faulthandler.dump_traceback_later(CALL_LIMIT_S, exit=True)    # the watchdog for a hang
        try:
            result = fn(*args)
        except VisageError:
            return None
        except Exception as e:  # noqa: BLE001 - exactly what the fuzz looks for
            self.failures.append(f"{label}: {type(e).__name__}: {e}"[:300])
            return None
        finally:
            faulthandler.cancel_dump_traceback_later()
            self.calls += 1
        try:
            ok = valid(result)
        except Exception as e:  # noqa: BLE001
            ok = False
            result = e
        if not ok:
            self.failures.append(f"{label}: invalid result {result!r}"[:300])
        return result
