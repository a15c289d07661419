"""The command line explains itself: every option has help, `train --help` lists the model options, --version."""
from __future__ import annotations

import argparse

import pytest

import main
from core.version import __version__


def _parsers(parser: argparse.ArgumentParser, path: str = "main.py"):
    """(command path, parser) of the top level and of every subcommand, nested ones included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_option_of_every_command_has_help():
    missing = [f"{path}: {'/'.join(a.option_strings)}"
               for path, parser in _parsers(main.build_parser()) for a in parser._actions
               if a.option_strings and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))
               and not (a.help or "").strip()]
    assert not missing, "options without help: " + "; ".join(missing)


def test_train_help_lists_every_model_option(capsys):
    from models import MODELS, model_class
    with pytest.raises(SystemExit):
        main.main(["train", "--help"])
    out = capsys.readouterr().out
    for name in MODELS:
        for opt in model_class(name).option_schema():
            assert f"  {opt.name} (default " in out
    assert "ae_dims (default 256" in out and "random_warp (default y" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"visage {__version__}"


def test_pyproject_gives_the_visage_command_and_reads_the_one_version():
    import tomllib
    from pathlib import Path
    meta = tomllib.loads((Path(main.__file__).parent / "pyproject.toml").read_text())
    assert meta["project"]["scripts"] == {"visage": "main:main"}
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "core.version.__version__"}
    assert meta["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}


@pytest.mark.parametrize("empty", [False, True])
def test_question_mark_at_the_model_picker_shows_help(empty, tmp_path, monkeypatch, capsys):
    from core import interact
    from models.model_files import pick_model
    if not empty:
        (tmp_path / "mine_SAEHD_data.json").write_text("{}")
    answers = iter(["?", "" if not empty else "fresh"])
    monkeypatch.setattr(interact, "is_interactive", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    assert pick_model(tmp_path, "SAEHD", None) == ("mine" if not empty else "fresh")
    out = capsys.readouterr()
    assert ("a new name to create a model" if not empty else "A plain name") in out.out
    assert "error" not in out.err


def test_merge_batch_is_the_no_window_spelling():
    parser = main.build_parser()
    base = ["merge", "--input-dir", "a", "--output-dir", "b", "--model-dir", "c", "--model", "SAEHD"]
    assert parser.parse_args(base + ["--batch"]).interactive is False
    assert parser.parse_args(base + ["--no-interactive"]).interactive is False
    assert parser.parse_args(base).interactive is None
