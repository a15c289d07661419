"""`bench merge` runs end to end on a few frames and prints every figure (no speed asserted)."""
from __future__ import annotations

import re


import main
from mainscripts.bench.bench_merge import STAGES


def test_bench_merge_reports_rate_and_every_stage(capsys):
    rc = main.main(["bench", "merge", "--frames", "8", "--repeats", "1", "--workers", "1", "--src-every", "60"])
    out = capsys.readouterr().out
    assert rc == 0, out[-2000:]
    report = out[out.index("bench merge:"):]
    rate = re.search(r"batch merge end to end :\s+([0-9.]+) frames/s", report)
    assert rate and float(rate.group(1)) > 0, report
    assert "8 frames" in report and "resolution 96" in report and "precision " in report
    for stage in STAGES:
        assert re.search(rf"^\s+{re.escape(stage)}\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+ %", report, re.M), (stage, report)
    assert re.search(r"stage sum [0-9.]+ ms/frame", report) and "end to end / one process" in report
