"""The layers: core <- samplelib <- models <- mainscripts; nothing imports a package built on top of it.

samplelib, models and mainscripts import core, never the other way round, so core can be
reused (and tested) without them; models (networks, training, inference) never import the
commands in mainscripts. Every import statement counts, the ones inside functions too.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"
ABOVE_CORE = ("samplelib", "models", "mainscripts")


def upward_imports(source: str, above: tuple[str, ...] = ABOVE_CORE) -> list[tuple[int, str]]:
    """(line, module) of each import of a package in `above` (by default the packages above core) in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, n) for n in names if n.split(".")[0] in above]
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


def test_models_never_import_mainscripts():
    files = sorted((ROOT / "models").rglob("*.py"))
    assert any(p.name == "xseg.py" for p in files) and len(files) > 5
    bad = [f"{p.relative_to(ROOT)}:{line}: {mod}" for p in files
           for line, mod in upward_imports(p.read_text(encoding="utf-8"), ("mainscripts",))]
    assert not bad, "models/ imports the commands above it:\n" + "\n".join(bad)
