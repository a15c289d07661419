"""What ModelBase's hooks promise the commands: the model list from one registry, and face sets the model asks for."""
from __future__ import annotations

import argparse

import main
from models import MODELS, model_class, model_names


def _choices(parser: argparse.ArgumentParser, *path: str) -> list[str]:
    """The --model choices of the (sub)command at `path`."""
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return list(next(a for a in parser._actions if "--model" in a.option_strings).choices)


def test_every_command_takes_its_model_list_from_the_registry(monkeypatch):
    import models
    monkeypatch.setitem(models.MODELS, "Probe", "models.saehd:SAEHDModel")   # a model registered once, here
    parser = main.build_parser()
    assert _choices(parser, "train") == _choices(parser, "bench", "train") == list(MODELS) and "Probe" in MODELS
    assert "XSeg" in MODELS and "XSeg" not in model_names(swaps_faces=True)
    for path in (("merge",), ("exportdfm",), ("evaluate",), ("bench", "merge")):
        assert _choices(parser, *path) == model_names(swaps_faces=True), path


def test_train_without_a_face_set_the_model_reads_is_one_line(src_faceset, tmp_path, capsys):
    assert model_class("SAEHD").FACE_SETS == ("src", "dst")
    rc = main.main(["train", "--training-data-src-dir", str(src_faceset), "--model-dir", str(tmp_path / "m"),
                    "--model", "SAEHD", "--force-model-name", "t", "--no-preview", "--non-interactive"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error: SAEHD trains on src and dst faces: give --training-data-dst-dir" in err[0]
    assert not (tmp_path / "m").exists()
