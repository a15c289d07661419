"""Training on real faces: resume, options, part re-initialisation, crash-safe saves, NaN guard."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.model_files import ModelFiles
from tests.support.train_support import TINY, data, make_model, tiny_given, train_cli


@pytest.fixture(scope="module")
def trained(src_faceset, dst_faceset, tmp_path_factory):
    """A tiny SAEHD liae-ud trained for 6 iterations, then resumed to 9."""
    model_dir = tmp_path_factory.mktemp("model")
    assert train_cli(src_faceset, dst_faceset, model_dir, opts=TINY + ["target_iter=6"]) == 0
    first = data(model_dir)
    assert train_cli(src_faceset, dst_faceset, model_dir, opts=["target_iter=9"]) == 0
    return model_dir, first, data(model_dir)


def test_stop_and_start_keeps_iteration_options_and_history(trained):
    model_dir, first, second = trained
    assert first["iter"] == 6 and second["iter"] == 9
    assert len(second["loss_history"]) == 9 and second["loss_history"][:6] == first["loss_history"]
    for k in ("archi", "resolution", "ae_dims", "e_dims", "d_dims", "d_mask_dims", "batch_size"):
        assert second["options"][k] == first["options"][k]
    names = {p.name for p in Path(model_dir).iterdir()}
    for part in ("encoder", "inter_AB", "inter_B", "decoder", "optimizer"):
        assert f"t_SAEHD_{part}.npz" in names
    assert {"t_SAEHD_preview.jpg", "t_SAEHD_loss.png", "t_SAEHD_summary.txt"} <= names


def test_locked_options_refused_overridable_ones_change(trained, src_faceset, dst_faceset, capsys):
    model_dir, _, _ = trained
    assert train_cli(src_faceset, dst_faceset, model_dir, opts=["resolution=96"]) == 2
    assert "fixed after the first run" in capsys.readouterr().err
    assert train_cli(src_faceset, dst_faceset, model_dir, opts=["ct_mode=rct", "target_iter=10"]) == 0
    assert data(model_dir)["options"]["ct_mode"] == "rct" and data(model_dir)["iter"] == 10


def test_config_file_sets_everything_without_prompts(src_faceset, dst_faceset, tmp_path):
    cfg = tmp_path / "opts.json"
    cfg.write_text(json.dumps({"archi": "df-ud", "resolution": 64, "ae_dims": 32, "e_dims": 16, "d_dims": 16,
                               "d_mask_dims": 16, "batch_size": 2, "target_iter": 2, "masked_training": False}))
    assert train_cli(src_faceset, dst_faceset, tmp_path / "m", extra=["--config", str(cfg)]) == 0
    d = data(tmp_path / "m")
    assert d["iter"] == 2 and d["options"]["archi"] == "df-ud" and d["options"]["masked_training"] is False
    assert (tmp_path / "m" / "t_SAEHD_decoder_src.npz").is_file()


def test_deleting_inter_b_reinitialises_only_that_part(trained, src_faceset, dst_faceset):
    model_dir, _, _ = trained
    files = ModelFiles(model_dir, "t", "SAEHD")
    saved = {p: files.load_arrays(p) for p in ("encoder", "inter_AB", "inter_B", "decoder")}
    files.path("inter_B.npz").unlink()
    model = make_model(src_faceset, dst_faceset, model_dir)
    try:
        assert model.reinitialised == ["inter_B"]
        for part in ("encoder", "inter_AB", "decoder"):
            assert all(np.array_equal(w, saved[part][k]) for w, k in zip(model.parts[part].get_weights(),
                                                                            sorted(saved[part])))
        fresh = model.parts["inter_B"].get_weights()
        assert not all(np.array_equal(w, saved["inter_B"][k]) for w, k in zip(fresh, sorted(saved["inter_B"])))
        model.save()
    finally:
        model.close()
    assert files.path("inter_B.npz").is_file()


def test_non_finite_loss_stops_without_saving(trained, src_faceset, dst_faceset):
    from mainscripts.train.trainer import train
    model_dir, _, _ = trained
    before = {p.name: p.read_bytes() for p in Path(model_dir).glob("t_SAEHD_*.npz")}
    before_iter = data(model_dir)["iter"]
    model = make_model(src_faceset, dst_faceset, model_dir, {"target_iter": before_iter + 50})
    try:
        model.train_step = lambda batch: (float("nan"), 1.0)
        assert train(model, window=False) == 1
    finally:
        model.close()
    assert data(model_dir)["iter"] == before_iter
    assert {p.name: p.read_bytes() for p in Path(model_dir).glob("t_SAEHD_*.npz")} == before


def test_ctrl_c_saves_and_exits(trained, src_faceset, dst_faceset):
    from mainscripts.train.trainer import train
    model_dir, _, _ = trained
    start = data(model_dir)["iter"]
    model = make_model(src_faceset, dst_faceset, model_dir, {"target_iter": start + 50})
    real = model.train_iteration

    def interrupt_on_third():
        if model.iter == start + 2:
            raise KeyboardInterrupt
        return real()
    model.train_iteration = interrupt_on_third
    try:
        assert train(model, window=False) == 0
    finally:
        model.close()
    assert data(model_dir)["iter"] == start + 2


def test_quick96_trains_and_honours_target_iteration(src_faceset, dst_faceset, tmp_path):
    assert train_cli(src_faceset, dst_faceset, tmp_path, model="Quick96", opts=["target_iter=3"]) == 0
    d = data(tmp_path, "Quick96")
    assert d["iter"] == 3 and d["options"]["batch_size"] == 4
    assert {p.name for p in tmp_path.glob("t_Quick96_*.npz")} == {
        f"t_Quick96_{p}.npz" for p in ("encoder", "inter", "decoder_src", "decoder_dst", "optimizer")}


def test_loss_falls_on_real_faces(src_faceset, dst_faceset, tmp_path):
    model = make_model(src_faceset, dst_faceset, tmp_path, tiny_given(batch_size=4))
    try:
        losses = np.array([model.train_iteration() for _ in range(150)])
    finally:
        model.close()
    first, last = losses[:15].mean(0), losses[-15:].mean(0)
    print(f"\ntiny SAEHD liae-ud 64, 150 iterations: src {first[0]:.3f} -> {last[0]:.3f}, "
          f"dst {first[1]:.3f} -> {last[1]:.3f}")
    assert (last < 0.8 * first).all()


def test_fp16_trains_with_loss_scaling_and_reloads_in_another_precision(src_faceset, dst_faceset, tmp_path):
    import keras
    model = make_model(src_faceset, dst_faceset, tmp_path, tiny_given(precision="fp16"))
    try:
        assert isinstance(model._scaled_optimizer, keras.optimizers.LossScaleOptimizer)
        losses = np.array([model.train_iteration() for _ in range(3)])
        assert np.isfinite(losses).all() and model.iter == 3
        model.save()
    finally:
        model.close()
    again = make_model(src_faceset, dst_faceset, tmp_path, {"precision": "fp32"})
    try:                                   # the loss scale is not part of the saved state
        assert again.precision == "fp32" and again._scaled_optimizer is None
        assert int(again.optimizer.iterations.numpy()) == 3
        assert np.isfinite(again.train_iteration()).all()
    finally:
        again.close()
