"""core/ is the library: nothing in it imports the packages built on top of it.

samplelib, models and mainscripts import core, never the other way round, so core can be
reused (and tested) without them. Every import statement counts, the ones inside functions too.
"""
from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"
ABOVE_CORE = ("samplelib", "models", "mainscripts")


def upward_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of each import of a package above core in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, n) for n in names if n.split(".")[0] in ABOVE_CORE]
    return found


def test_the_walker_finds_imports_at_any_depth():
    source = "import os\ndef f():\n    from samplelib.sample import Sample\n    import models.saehd as s\n"
    assert upward_imports(source) == [(3, "samplelib.sample"), (4, "models.saehd")]


def test_core_never_imports_samplelib_models_or_mainscripts():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 50                      # the walk really covers core/
    bad = [f"{p.relative_to(CORE.parent)}:{line}: {mod}" for p in files
           for line, mod in upward_imports(p.read_text(encoding="utf-8"))]
    assert not bad, "core/ imports a package above it:\n" + "\n".join(bad)
