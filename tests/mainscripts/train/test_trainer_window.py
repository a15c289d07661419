"""The real OpenCV preview window under Xvfb, driven by DeepFaceLab's keys."""
from __future__ import annotations

import json
import shutil

import pytest

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")


def test_preview_window_keys_save_backup_and_exit(display, src_faceset, dst_faceset, tmp_path, monkeypatch):
    import cv2
    from mainscripts.train import trainer
    from models.saehd import SAEHDModel
    opts = {"archi": "df-ud", "resolution": 64, "ae_dims": 32, "e_dims": 16, "d_dims": 16, "d_mask_dims": 16,
            "batch_size": 2, "target_iter": 1000}
    model = SAEHDModel(tmp_path, src_faceset, dst_faceset, "w", opts, silent_start=True, workers=1)
    keys = iter([-1, ord(" "), ord("l"), ord("p"), ord("s"), -1, ord("b"), -1, 13])
    shown = []
    real_imshow = cv2.imshow
    monkeypatch.setattr(cv2, "waitKey", lambda delay=0: next(keys, 13))
    monkeypatch.setattr(cv2, "imshow", lambda title, img: (shown.append(img.shape), real_imshow(title, img)))
    try:
        assert trainer.train(model, window=True) == 0
    finally:
        model.close()
    data = json.loads((tmp_path / "w_SAEHD_data.json").read_text())
    assert data["iter"] == 9                          # Enter came with the 9th key, after 9 iterations
    assert (tmp_path / "w_SAEHD_autobackups" / "01" / "w_SAEHD_data.json").is_file()
    assert len(shown) >= 5 and all(s[1] >= 640 for s in shown)   # first show + space, l, p refreshes + exit
