"""`doctor` reports this machine one line per fact and fails when something needed is missing."""
from __future__ import annotations

import re

import main
from mainscripts import doctor


def test_doctor_reports_python_packages_devices_precision_and_ffmpeg(capsys):
    assert main.main(["doctor"]) == 0
    out = capsys.readouterr().out
    for what in ("python", "tensorflow", "numpy", "face_mesh", "CPU", "backend", "precision auto", "ffmpeg",
                 "display"):
        assert any(line.split()[1:2] == [what.split()[0]] for line in out.splitlines()), (what, out)
    assert "keras 3" in out and re.search(r"precision auto\s+(fp32|bf16|fp16): ", out)


def test_doctor_exits_1_naming_what_is_missing(tmp_path, monkeypatch, capsys):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(doctor.REQUIREMENTS.read_text() + "visage-no-such-package==1.0\n")
    monkeypatch.setattr(doctor, "REQUIREMENTS", reqs)
    monkeypatch.setattr(doctor, "MIN_PYTHON", (99, 0))
    assert main.main(["doctor"]) == 1
    err = capsys.readouterr().err
    assert "visage-no-such-package" in err and "not installed (pinned 1.0)" in err
    assert "Visage needs 99.0 or newer" in err
    assert "2 thing(s) missing" in err


def test_tensorflow_start_up_chatter_is_hidden_unless_verbose():
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    native = re.compile(r"^(?:[IWEF]\d{4} |WARNING: All log messages before absl)", re.M)
    quiet = subprocess.run([sys.executable, str(repo / "main.py"), "doctor"], capture_output=True, text=True)
    assert quiet.returncode == 0 and "backend" in quiet.stdout
    assert not native.search(quiet.stderr), quiet.stderr
