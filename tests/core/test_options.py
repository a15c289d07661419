"""The option schema: flags, config files, saved state, locked options, clear errors."""
import json

import pytest

from core.errors import VisageError
from core.options import Option, load_config, parse_opt_flags, resolve

SCHEMA = [Option("resolution", int, 128, "res", lo=64, hi=640, locked=True),
          Option("archi", str, "liae-ud", "archi", locked=True),
          Option("ct_mode", str, "none", "ct", choices=("none", "rct", "lct")),
          Option("masked_training", bool, True, "mask"),
          Option("random_hsv_power", float, 0.0, "hsv", lo=0.0, hi=0.3)]


def test_defaults_flags_and_config():
    assert resolve(SCHEMA, {})["resolution"] == 128
    given = parse_opt_flags(["resolution=96", "masked_training=n", "ct_mode=RCT"])
    v = resolve(SCHEMA, given)
    assert (v["resolution"], v["masked_training"], v["ct_mode"]) == (96, False, "rct")


def test_config_file(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"resolution": 64, "random_hsv_power": 0.1}))
    v = resolve(SCHEMA, load_config(p))
    assert v["resolution"] == 64 and v["random_hsv_power"] == 0.1


def test_locked_options_keep_saved_value_and_refuse_change():
    saved = {"resolution": 96, "archi": "df-ud", "ct_mode": "rct", "masked_training": True, "random_hsv_power": 0.0}
    assert resolve(SCHEMA, {"ct_mode": "lct"}, saved)["ct_mode"] == "lct"      # overridable
    assert resolve(SCHEMA, {"resolution": "96"}, saved)["resolution"] == 96   # same value is fine
    with pytest.raises(VisageError, match="fixed after the first run"):
        resolve(SCHEMA, {"resolution": "128"}, saved)


@pytest.mark.parametrize("given,msg", [({"resolution": "abc"}, "not a valid int"), ({"resolution": "32"}, "out of range"),
                                       ({"ct_mode": "xyz"}, "not one of"), ({"bogus": "1"}, "unknown option")])
def test_bad_values_give_one_clear_line(given, msg):
    with pytest.raises(VisageError, match=msg):
        resolve(SCHEMA, given)


def test_bad_flag_and_bad_config(tmp_path):
    with pytest.raises(VisageError, match="name=value"):
        parse_opt_flags(["resolution"])
    bad = tmp_path / "bad.json"
    bad.write_text("{resolution: 1")
    with pytest.raises(VisageError, match="not valid JSON"):
        load_config(bad)
    with pytest.raises(VisageError, match="not found"):
        load_config(tmp_path / "missing.json")


def test_toml_config_and_precedence_flag_over_opt_over_file(tmp_path):
    import argparse

    from core.options import Settings, add_flags
    cfg = tmp_path / "c.toml"
    cfg.write_text('resolution = 96\nct_mode = "lct"\nmasked_training = false\n')
    parser = argparse.ArgumentParser()
    add_flags(parser, SCHEMA)
    args = parser.parse_args(["--config", str(cfg), "--opt", "resolution=128", "--opt", "ct_mode=rct",
                              "--ct-mode", "none"])
    s = Settings.from_args(args, SCHEMA, ask=False)
    assert (s["resolution"], s["ct_mode"], s["masked_training"], s["archi"]) == (128, "none", False, "liae-ud")


def test_settings_ask_only_what_is_read(monkeypatch):
    from core.options import Settings
    asked = []
    monkeypatch.setattr(Option, "ask", lambda self, default=None: asked.append(self.name) or self.default)
    s = Settings(SCHEMA, {"resolution": "96"}, ask=True)
    assert s["resolution"] == 96 and s["ct_mode"] == "none" and s["ct_mode"] == "none"
    assert asked == ["ct_mode"]                                   # given: not asked; read twice: asked once


@pytest.mark.parametrize("raw", ["nan", "inf", "1e999", "-1", "641", "abc"])
def test_a_flag_refuses_what_the_schema_refuses(raw):
    import argparse
    opt = SCHEMA[0]
    with pytest.raises(argparse.ArgumentTypeError):
        opt(raw)
    with pytest.raises(VisageError, match="option resolution: "):
        opt.parse(raw)
    with pytest.raises(VisageError, match="not a valid int"):
        opt.parse(True)                                           # a bool is not a number


def _half_resolution(values):
    return values["resolution"] // 2


def test_a_derived_default_follows_the_options_before_it_unless_given_or_saved(monkeypatch):
    schema = SCHEMA[:1] + [Option("patch", int, 64, "patch", lo=3, hi=640, derived=(_half_resolution, "resolution / 2"))]
    assert resolve(schema, {})["patch"] == 64
    assert resolve(schema, {"resolution": "96"})["patch"] == 48
    assert resolve(schema, {"resolution": "96", "patch": "5"})["patch"] == 5
    assert resolve(schema, {}, {"resolution": 96, "patch": 7})["patch"] == 7       # the first run's value stays
    assert "default resolution / 2" in schema[1].facts()
    shown = []
    monkeypatch.setattr(Option, "ask", lambda self, default=None: shown.append(default) or self.parse(default))
    assert resolve(schema, {"resolution": "80"}, ask=True)["patch"] == 40
    assert shown[-1] == 40                                       # the prompt offers the derived value
