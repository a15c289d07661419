"""The README's demo, whole: sample clips -> frames -> faces -> Quick96 -> merge -> result.mp4."""
from __future__ import annotations

import json

import main
from core import interact
from core.sample_media import sample_path
from core.video import probe
from tests.e2e.test_step8_video import container_tags, label_seen


def test_demo_writes_a_labelled_result_with_the_dst_timing_and_audio(tmp_path):
    ws = tmp_path / "wörkspace"
    try:
        assert main.main(["demo", "--workspace", str(ws), "--train-iters", "2", "--non-interactive"]) == 0
    finally:
        interact.set_non_interactive(False)
    dst = probe(sample_path("single_face.mp4"))
    result = probe(ws / "result.mp4")
    assert result.frame_count == dst.frame_count == len(list((ws / "data_dst").glob("*.png")))
    assert abs(result.fps - dst.fps) < 0.01
    assert abs(result.duration - dst.duration) < 0.1                              # same duration
    assert result.has_audio == dst.has_audio is True
    assert label_seen(container_tags(ws / "result.mp4"), ".mp4")
    model = json.loads((ws / "model" / "demo_Quick96_data.json").read_text())
    assert model["iter"] == 2                                          # the budget is counted in iterations
    merged = sorted((ws / "data_dst" / "merged").glob("*.png"))
    assert len(merged) == result.frame_count
    report = json.loads((ws / "evaluate.json").read_text())                # step 9 measured it, beside result.mp4
    assert report["frames"] == result.frame_count and report["faces"] >= 0.9 * result.frame_count
    assert 0.0 <= report["identity"]["swap_rate"] <= 1.0 and report["stability"]["pairs"] > 0.8 * result.frame_count
    assert report["reconstruction"]["model"] == "demo_Quick96" and (ws / "evaluate.png").is_file()
