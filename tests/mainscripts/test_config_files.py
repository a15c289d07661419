"""One option schema for every command: --config (JSON or TOML), --opt and flags, in that order of precedence.

Run on the real sample clip through `videoed extract-video` (fps and image type decide what lands
on disk) and `sort` (the method decides the order), so a setting that is read but not used fails.
"""
from __future__ import annotations

import json
import shutil

import pytest

import main
from core.sample_media import sample_path
from tests.support.hostile_support import assert_one_error, run, tree_bytes


@pytest.fixture
def clip(tmp_path):
    shutil.copy(sample_path("single_face.mp4"), tmp_path / "clip.mp4")     # 72 frames at 30 fps
    return tmp_path / "clip.mp4"


def _extract(clip, out, *extra):
    return run("videoed", "extract-video", "--input-file", clip, "--output-dir", out, "--non-interactive", *extra)


@pytest.mark.parametrize("kind", ["json", "toml"])
def test_config_file_sets_the_options(kind, clip, tmp_path):
    cfg = tmp_path / f"extract.{kind}"
    cfg.write_text(json.dumps({"fps": 10, "output_ext": "jpg"}) if kind == "json" else 'fps = 10\noutput_ext = "jpg"\n')
    assert _extract(clip, tmp_path / "frames", "--config", cfg) == 0
    frames = sorted((tmp_path / "frames").iterdir())
    assert {f.suffix for f in frames} == {".jpg"} and 23 <= len(frames) <= 25     # 2.4 s at 10 fps


def test_flag_beats_opt_beats_config(clip, tmp_path):
    cfg = tmp_path / "extract.toml"
    cfg.write_text('fps = 10\noutput_ext = "jpg"\n')
    assert _extract(clip, tmp_path / "a", "--config", cfg, "--opt", "fps=5") == 0
    assert len(list((tmp_path / "a").glob("*.jpg"))) in (11, 12, 13)              # --opt over the file
    assert _extract(clip, tmp_path / "b", "--config", cfg, "--opt", "fps=5", "--fps", "0") == 0
    assert len(list((tmp_path / "b").glob("*.jpg"))) == 72                        # the flag over both


@pytest.mark.parametrize("kind,text,message", [
    ("toml", 'fps = "fast"\n', "option fps: 'fast' is not a valid float"),
    ("json", '{"fps": 5000}', "option fps: 5000 is out of range 0..1000"),
    ("toml", 'output_ext = "gif"\n', "option output_ext: 'gif' is not one of png, jpg"),
    ("json", '{"fsp": 5}', "unknown option(s) fsp; valid: fps, output_ext"),
    ("toml", "fps = = 5\n", "is not valid TOML"),
    ("json", '{"fps": [5]}', "fps must be a plain value"),
])
def test_a_bad_config_is_one_line_and_changes_nothing(kind, text, message, clip, tmp_path, capsys):
    cfg = tmp_path / f"bad.{kind}"
    cfg.write_text(text)
    before = tree_bytes(tmp_path)
    assert _extract(clip, tmp_path / "frames", "--config", cfg) == 2
    assert_one_error(capsys.readouterr().err, message)
    assert tree_bytes(tmp_path) == before


def test_sort_method_from_a_config_file(faces, tmp_path):
    """The sort method as a config value reorders the faces as the flag does, and not as the default (blur)."""
    copies = {k: tmp_path / k for k in ("flag", "default")}
    for folder in copies.values():
        shutil.copytree(faces, folder)
    cfg = tmp_path / "sort.toml"
    cfg.write_text('by = "face-yaw"\nworkers = 1\n')
    assert run("sort", "--input-dir", faces, "--config", cfg, "--non-interactive") == 0
    assert run("sort", "--input-dir", copies["flag"], "--by", "face-yaw", "--workers", "1", "--non-interactive") == 0
    assert run("sort", "--input-dir", copies["default"], "--workers", "1", "--non-interactive") == 0
    order = {k: [p.read_bytes() for p in sorted(d.glob("*.jpg"))] for k, d in [("config", faces), *copies.items()]}
    assert order["config"] == order["flag"] != order["default"]


def test_every_schema_flag_shows_its_default_and_merge_lists_its_opt_names(capsys):
    from core.merge.config import SCHEMA
    from mainscripts import facesettool, sorter, util, videoed
    from mainscripts.extract import extractor
    from tests.mainscripts.test_cli_help import _parsers
    parsers = dict(_parsers(main.build_parser()))
    for schema, path in [(videoed.ENCODE, "videoed video-from-sequence"), (videoed.CUT, "videoed cut-video"),
                         (videoed.EXTRACT, "videoed extract-video"), (videoed.DENOISE, "videoed denoise-image-sequence"),
                         (extractor.SCHEMA, "extract"), (sorter.SCHEMA, "sort"), (util.OPTIONS, "util"),
                         (facesettool.OPTIONS, "facesettool resize")]:
        flags = {a.dest: a for a in parsers[f"main.py {path}"]._actions}
        for o in schema:
            assert o.flag in flags[o.name].option_strings and f"({o.facts().split(', ')[0]}" in flags[o.name].help, \
                (path, o.name)
        assert {"opt", "config"} <= set(flags), path
    with pytest.raises(SystemExit):
        main.main(["merge", "--help"])
    out = capsys.readouterr().out
    for o in SCHEMA:
        assert f"  {o.name} ({o.facts()})" in out
