"""SAEHD's finishing options on real faces: GAN, true face, style powers, pretraining, model reuse.

One tiny DF model carries every adversarial and style option at once (one build, one
compile); each option is then switched off on the same batch to show it changes the loss.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from models.model_files import ModelFiles
from tests.support.train_support import make_model, tiny_given

EXTRAS = dict(gan_power="0.1", gan_patch_size="8", gan_dims="4", true_face_power="0.01", face_style_power="10",
              bg_style_power="2")
DF = tiny_given(archi="df-ud", **EXTRAS)


def _part_weights(model) -> dict[str, list[np.ndarray]]:
    return {name: [np.array(w) for w in part.get_weights()] for name, part in model.parts.items()}


def _optimizer_states(model) -> dict[str, dict[str, np.ndarray]]:
    from core.nn.optimizers import optimizer_state
    return {name: optimizer_state(opt) for name, opt in model.optimizer_parts().items()}


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def df_model(src_faceset, dst_faceset, tmp_path_factory):
    """The tiny DF model with every option on: weights at build, after 3 steps, a batch, its losses."""
    model_dir = tmp_path_factory.mktemp("saehd_df")
    model = make_model(src_faceset, dst_faceset, model_dir, DF)
    try:
        initial = _part_weights(model)
        losses = [model.train_iteration() for _ in range(3)]
        model.save()
        trained, states = _part_weights(model), _optimizer_states(model)
        from models.saehd import batch_tuple
        batch = batch_tuple(next(model.batches))
        effect = {}
        for name in ("gan_power", "true_face_power", "face_style_power", "bg_style_power"):
            full = [float(v) for v in model.losses(batch)]
            value, model.train_opts[name] = model.train_opts[name], 0.0
            effect[name] = (full, [float(v) for v in model.losses(batch)])
            model.train_opts[name] = value
        history = [list(r) for r in model.loss_history]
    finally:
        model.close()
    return dict(dir=model_dir, initial=initial, trained=trained, states=states, losses=losses, effect=effect,
                history=history)


def test_every_option_trains_with_finite_losses_and_discriminator_columns(df_model):
    assert all(np.isfinite(v) for pair in df_model["losses"] for v in pair)
    for row in df_model["history"]:
        assert len(row) == 4 and row[2] > 0 and row[3] > 0 and np.isfinite(row).all()
    names = {p.name for p in df_model["dir"].iterdir()}
    for part in ("GAN", "GAN_opt", "code_discriminator", "D_code_opt", "optimizer"):
        assert f"t_SAEHD_{part}.npz" in names


def test_discriminators_learn(df_model):
    for part in ("GAN", "code_discriminator"):
        before, after = df_model["initial"][part], df_model["trained"][part]
        assert not any(np.array_equal(a, b) for a, b in zip(before, after) if a.ndim > 1), part


@pytest.mark.parametrize("option, reported", [("gan_power", False), ("true_face_power", False),
                                              ("face_style_power", True), ("bg_style_power", True)])
def test_each_option_changes_the_loss(df_model, option, reported):
    """GAN and true face add to the generator's total only; the style powers to the reported src loss too."""
    (total, src, dst), (total0, src0, dst0) = df_model["effect"][option]
    assert total != pytest.approx(total0, rel=1e-6)
    assert dst == pytest.approx(dst0, rel=1e-6)
    assert (src != pytest.approx(src0, rel=1e-6)) == reported


def test_resume_is_bit_identical_and_reuse_reinitialises_only_deleted_parts(df_model, src_faceset, dst_faceset,
                                                                            tmp_path, capsys):
    model = make_model(src_faceset, dst_faceset, df_model["dir"])
    try:
        assert model.reinitialised == []
        assert all(_same(w, df_model["trained"][n]) for n, w in _part_weights(model).items())
        for name, state in _optimizer_states(model).items():
            assert state.keys() == df_model["states"][name].keys()
            assert all(np.array_equal(a, df_model["states"][name][k]) for k, a in state.items()), name
    finally:
        model.close()
    # model reuse (DF): delete inter and decoder_src before a run
    reuse = tmp_path / "reuse"
    shutil.copytree(df_model["dir"], reuse)
    files = ModelFiles(reuse, "t", "SAEHD")
    for part in ("inter", "decoder_src"):
        files.path(f"{part}.npz").unlink()
    capsys.readouterr()
    model = make_model(src_faceset, dst_faceset, reuse)
    try:
        assert sorted(model.reinitialised) == ["decoder_src", "inter"]
        assert "Initialising inter, decoder_src (no saved weights)" in capsys.readouterr().out
        weights = _part_weights(model)
        for part in ("encoder", "decoder_dst", "GAN", "code_discriminator"):
            assert _same(weights[part], df_model["trained"][part]), part
        for part in ("inter", "decoder_src"):
            assert not _same(weights[part], df_model["trained"][part]), part
        # the optimizer keeps the moments of the kept parts and starts anew for the fresh ones
        state, saved = _optimizer_states(model)["optimizer"], df_model["states"]["optimizer"]
        kept = [k for k in state if "_encoder_" in k or k.split("/")[1].startswith("decoder_dst_")]
        fresh = [k for k in state if k.split("/")[1].startswith(("inter_", "decoder_src_"))]
        assert kept and fresh
        assert all(np.array_equal(state[k], saved[k]) for k in kept)
        assert all(not state[k].any() for k in fresh)
    finally:
        model.close()


def test_true_face_is_df_only(src_faceset, dst_faceset, tmp_path):
    model = make_model(src_faceset, dst_faceset, tmp_path, tiny_given(true_face_power="0.01"))   # liae-ud
    try:
        assert model.options["true_face_power"] == 0.0 and "code_discriminator" not in model.parts
    finally:
        model.close()


def test_pretrain_uses_the_pretraining_set_then_switching_off_restarts(src_faceset, dst_faceset, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    given = tiny_given(pretrain="y", gan_power="0.1", target_iter="2")
    from core.errors import VisageError
    with pytest.raises(VisageError, match="--pretraining-data-dir"):
        make_model(src_faceset, dst_faceset, tmp_path / "m", given)
    from models.saehd import SAEHDModel
    model = SAEHDModel(tmp_path / "m", empty, empty, "t", given, silent_start=True, workers=1,
                       pretraining_dir=dst_faceset)
    try:
        o = model.train_opts
        assert (o["random_warp"], o["random_src_flip"], o["uniform_yaw"], o["gan_power"]) == (False, True, True, 0.0)
        assert "GAN" not in model.parts and not model.net["lr_dropout"]
        batch = next(model.batches)
        for samples in (model.batches.src_samples, model.batches.dst_samples):
            assert samples and all(Path(s.path).parent == dst_faceset for s in samples)
        assert batch.src.target.shape == (2, 64, 64, 3)
        for _ in range(2):
            model.train_iteration()
        model.save()
        pretrained = _part_weights(model)
    finally:
        model.close()
    capsys.readouterr()
    model = make_model(src_faceset, dst_faceset, tmp_path / "m", {"pretrain": "n"})
    try:
        assert "Pretraining is off: iteration reset to 0, inter_AB and inter_B re-initialised" in capsys.readouterr().out
        assert model.iter == 0 and model.loss_history == []
        weights = _part_weights(model)
        for part in ("encoder", "decoder"):
            assert _same(weights[part], pretrained[part])
        for part in ("inter_AB", "inter_B"):
            assert not _same(weights[part], pretrained[part])
        assert all(Path(s.path).parent == src_faceset for s in model.batches.src_samples)
    finally:
        model.close()


def test_patch_discriminator_covers_the_patch_size():
    """DeepFaceLab's search: the stack whose receptive field is nearest the patch size, both heads' shapes."""
    from core.nn.discriminators import patch_layers, receptive_field, unet_patch_discriminator
    assert [receptive_field(patch_layers(p)) for p in (3, 8, 16, 30, 80)] == [3, 7, 15, 31, 79]
    assert patch_layers(16) == [(3, 2)] * 3
    d = unet_patch_discriminator("GAN", 64, 16, 4)
    assert [tuple(o.shape) for o in d.outputs] == [(None, 8, 8, 1), (None, 64, 64, 1)]


def test_changing_the_gan_shape_reinitialises_only_the_discriminator(df_model, src_faceset, dst_faceset, tmp_path,
                                                                     capsys):
    shutil.copytree(df_model["dir"], tmp_path / "m")
    capsys.readouterr()
    model = make_model(src_faceset, dst_faceset, tmp_path / "m", {"gan_dims": "8"})
    try:
        assert "the GAN discriminator is re-initialised" in capsys.readouterr().out
        assert model.reinitialised == ["GAN"]
        weights = _part_weights(model)
        assert _same(weights["encoder"], df_model["trained"]["encoder"])
        assert [w.shape for w in weights["GAN"]] != [w.shape for w in df_model["trained"]["GAN"]]
        assert np.isfinite(model.train_iteration()).all()
    finally:
        model.close()


@pytest.mark.parametrize("given,patch", [({}, 16), ({"resolution": "64"}, 8), ({"resolution": "100"}, 12),
                                         ({"resolution": "200", "archi": "liae-ud"}, 24),   # snapped to 192 first
                                         ({"resolution": "64", "gan_patch_size": "5"}, 5)])
def test_gan_patch_size_defaults_to_the_snapped_resolution_over_8_as_dfl(given, patch):
    from core.options import resolve
    from models.saehd import SAEHDModel
    assert resolve(SAEHDModel.option_schema(), given)["gan_patch_size"] == patch
    saved = resolve(SAEHDModel.option_schema(), {"resolution": "128"})    # a model made at 128 keeps its 16
    assert resolve(SAEHDModel.option_schema(), {}, {**saved, "resolution": 64})["gan_patch_size"] == 16
