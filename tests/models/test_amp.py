"""AMP on real faces: training (morph mix, GAN, DFL's part names), resume, the morph value in merge and export.

One tiny AMP (64 px, dims 32/32/16/16/16, GAN on) is trained once on the woman (src) and the man
(dst) and shared by every test here.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import main
from tests.support.train_support import model_faces
from tests.support.train_support import data

TINY_AMP = dict(resolution="64", ae_dims="32", inter_dims="32", e_dims="16", d_dims="16", d_mask_dims="16",
                batch_size="4", gan_power="0.1", gan_patch_size="8", gan_dims="4", precision="fp32")
STEPS = 24
MORPHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _make(src, dst, model_dir, given=None):
    from models.amp import AMPModel
    return AMPModel(Path(model_dir), Path(src), Path(dst), "t", given or {}, silent_start=True, workers=1)


def _weights(model) -> dict[str, list[np.ndarray]]:
    return {name: [np.array(w) for w in part.get_weights()] for name, part in model.parts.items()}


def _states(model) -> dict[str, dict[str, np.ndarray]]:
    from core.nn.optimizers import optimizer_state
    return {name: optimizer_state(opt) for name, opt in model.optimizer_parts().items()}


@pytest.fixture(scope="module")
def amp(src_faceset, dst_faceset, tmp_path_factory):
    """The tiny AMP trained STEPS iterations and saved; its weights, states, losses and one batch's morph effect."""
    model_dir = tmp_path_factory.mktemp("amp")
    model = _make(src_faceset, dst_faceset, model_dir, TINY_AMP)
    try:
        initial = _weights(model)
        losses = [model.train_iteration() for _ in range(STEPS)]
        model.save()
        batch = next(model.batches)
        by_factor = {}
        for factor in (0.1, 0.5):
            model.net["morph_factor"] = factor
            inputs = model.step_inputs(batch)
            by_factor[factor] = (inputs[-1], [float(v) for v in model.losses(inputs)])
        model.net["morph_factor"] = 0.5
        out = dict(dir=model_dir, initial=initial, trained=_weights(model), states=_states(model), losses=losses,
                   by_factor=by_factor, history=[list(r) for r in model.loss_history])
    finally:
        model.close()
    return out


def test_amp_trains_with_falling_losses_and_dfl_part_names(amp):
    losses = np.array(amp["losses"])
    assert np.isfinite(losses).all()
    assert (losses[-4:].mean(axis=0) < losses[:4].mean(axis=0)).all()        # src and dst both fall
    assert all(len(r) == 4 and r[2] > 0 and np.isfinite(r).all() for r in amp["history"])   # the GAN's loss column
    names = {p.name for p in amp["dir"].iterdir()}
    for part in ("encoder", "inter_src", "inter_dst", "decoder", "src_dst_opt", "GAN", "GAN_opt"):
        assert f"t_AMP_{part}.npz" in names, part
    # DFL's AMP optimises encoder, decoder (and the GAN); inter_src / inter_dst keep their initial weights
    for part in ("encoder", "decoder", "GAN"):
        assert not any(np.array_equal(a, b) for a, b in zip(amp["initial"][part], amp["trained"][part])), part
    for part in ("inter_src", "inter_dst"):
        assert all(np.array_equal(a, b) for a, b in zip(amp["initial"][part], amp["trained"][part])), part
    assert data(amp["dir"], "AMP")["options"]["inter_dims"] == 32


def test_morph_factor_sets_the_training_mix_and_changes_the_loss(amp):
    (mix_low, (_, src_low, dst_low)), (mix_half, (_, src_half, dst_half)) = \
        amp["by_factor"][0.1], amp["by_factor"][0.5]
    assert mix_low.shape == mix_half.shape == (4, 32)
    assert (mix_low.sum(axis=1) == 3).all() and (mix_half.sum(axis=1) == 16).all()   # int(32 * factor) per sample
    assert len({tuple(r) for r in mix_half}) > 1                                     # a fresh draw per sample
    assert src_low != pytest.approx(src_half, rel=1e-6)                               # only src is decoded mixed
    assert dst_low == pytest.approx(dst_half, rel=1e-6)


def test_resume_is_bit_identical(amp, src_faceset, dst_faceset):
    model = _make(src_faceset, dst_faceset, amp["dir"])
    try:
        assert model.reinitialised == [] and model.iter == STEPS
        for name, weights in _weights(model).items():
            assert all(np.array_equal(a, b) for a, b in zip(weights, amp["trained"][name])), name
        for name, state in _states(model).items():
            saved = amp["states"][name]
            assert state.keys() == saved.keys() and all(np.array_equal(state[k], saved[k]) for k in state), name
    finally:
        model.close()


@pytest.fixture(scope="module")
def predictions(amp, dst_faceset):
    """The predictor's (face, face mask, dst mask) of 8 real dst faces at each of MORPHS."""
    from models.predictor import FacePredictor
    predictor = FacePredictor(amp["dir"], "AMP", "t")
    assert predictor.takes_morph and predictor.merge_options == ("morph_factor",)
    faces = model_faces(dst_faceset, predictor)
    out = {m: [np.stack(a) for a in zip(*predictor.predict_batch(list(faces), m))] for m in MORPHS}
    del predictor
    return faces, out


def test_morph_value_picks_that_share_of_the_code_from_inter_src(amp, predictions):
    from core.nn.amp_archi import forward
    from models.amp import AMPModel
    from models.trained import load_trained
    faces, out = predictions
    trained = load_trained(amp["dir"], "AMP", "t")
    try:
        parts = trained.parts
        dst_like = np.asarray(AMPModel.reconstruct(trained.options, parts, faces))
        mix = np.ones((len(faces), 32), np.float32)
        src_like = np.asarray(forward(parts, faces, faces, mix, training=False)["pred_src_src"])
        code = parts["encoder"](faces, training=False)
        src_code = np.asarray(parts["inter_src"](code, training=False))
        dst_code = np.asarray(parts["inter_dst"](code, training=False))
        channels = src_code.shape[-1]
        by_hand = {}
        for m in MORPHS:                                        # DFL: the first int(m * channels) from inter_src
            take = int(m * channels)
            mixed = np.concatenate([src_code[..., :take], dst_code[..., take:]], axis=-1)
            by_hand[m] = np.asarray(parts["decoder"](mixed, training=False)[0])
    finally:
        trained.release()
    assert np.abs(out[0.0][0] - dst_like).max() < 1e-5          # morph 0: inter_dst only, the dst reconstruction
    assert np.abs(out[1.0][0] - src_like).max() < 1e-5          # morph 1: inter_src only, the src-like face
    assert np.abs(src_like - dst_like).mean() > 1e-3            # the two ends differ
    for m in MORPHS:
        assert np.abs(out[m][0] - by_hand[m]).max() < 1e-5, m
    # every step of the morph value changes the face (the decoder's response to the mix itself is not
    # linear: a tiny model trained 24 steps can pass the src end at 0.75 and come back at 1, so no order
    # along the dst-to-src line is asserted)
    for a, b in zip(MORPHS, MORPHS[1:]):
        assert np.abs(out[b][0] - out[a][0]).mean() > 1e-4, (a, b)
    for m in MORPHS:                                            # the dst mask never depends on the morph value
        assert np.array_equal(out[m][2], out[0.0][2])


def _merge(frames_dir, aligned, model_dir, out, *opts):
    args = ["merge", "--input-dir", str(frames_dir), "--output-dir", str(out), "--output-mask-dir", str(out) + "_mask",
            "--aligned-dir", str(aligned), "--model-dir", str(model_dir), "--model", "AMP", "--force-model-name", "t",
            "--non-interactive", "--batch", "--workers", "1", "--opt", "mode=overlay", "--opt", "mask_mode=dst",
            "--opt", "color_transfer_mode=none"]
    for o in opts:
        args += ["--opt", o]
    return main.main(args)


def test_batch_merge_takes_the_morph_factor(amp, frames, dst_faceset, tmp_path):
    import cv2
    from core.synthetic_label import is_labelled_png
    frames_dir = frames("single_face.mp4", every=6, count=12)
    merged = {}
    for m in ("0.0", "1.0"):
        out = tmp_path / f"merged_{m}"
        assert _merge(frames_dir, dst_faceset, amp["dir"], out, f"morph_factor={m}") == 0
        pngs = sorted(out.glob("*.png"))
        assert len(pngs) == 2 and all(is_labelled_png(p.read_bytes()) for p in pngs)
        merged[m] = [cv2.imread(str(p)).astype(np.int16) for p in pngs]
    assert all(np.abs(a - b).max() > 10 for a, b in zip(merged["0.0"], merged["1.0"]))
    assert _merge(frames_dir, dst_faceset, amp["dir"], tmp_path / "bad", "morph_factor=1.5") == 2


def test_interactive_keys_change_the_morph_value_and_the_frame(amp, frames, dst_faceset):
    from core.merge.config import MergerConfig
    from core.merge.interactive import MergerState, handle_key, status_line
    from core.merge.compose import compose_frame
    from core.merge.frames import load_frames
    from mainscripts.merge.merger_interactive import FrameCache
    from models.predictor import FacePredictor
    cfg = MergerConfig(mode="overlay", mask_mode="dst", color_transfer_mode="none")
    state = MergerState.new(["a.png", "b.png"], cfg, morph=True)
    state, _ = handle_key(state, ord("["))
    assert state.cfg.morph_factor == 0.95 and "morph 0.95" in status_line(state)
    state, _ = handle_key(state, ord("{"))
    assert state.cfg.morph_factor == 0.7
    for _ in range(20):
        state, _ = handle_key(state, ord("}"))
    assert state.cfg.morph_factor == 1.0                                  # clamped to the option's range
    plain = MergerState.new(["a.png"], cfg)                               # a model without a morph input
    assert handle_key(plain, ord("]")) == (plain, []) and "morph" not in status_line(plain)

    predictor = FacePredictor(amp["dir"], "AMP", "t")
    try:
        loaded = load_frames(frames("single_face.mp4", every=6, count=1), dst_faceset)
        cache = FrameCache(loaded, predictor)
        lowered = replace(cfg, morph_factor=0.2)
        renders = {c.morph_factor: compose_frame(*cache.get(0, c.morph_factor), c, loaded[0].motions)[0]
                   for c in (cfg, lowered)}
    finally:
        del predictor
    assert np.abs(renders[1.0].astype(np.int16) - renders[0.2]).max() > 10


def test_exported_amp_dfm_predicts_as_the_merger(amp, predictions):
    import onnxruntime as ort
    faces, want = predictions
    base = ["exportdfm", "--model-dir", str(amp["dir"]), "--model", "AMP", "--force-model-name", "t",
            "--non-interactive"]
    assert main.main(base + ["--no-quantize"]) == 0
    assert main.main(base + ["--quantize", "--format", "onnx"]) == 0
    for path, suffix, tolerance in ((amp["dir"] / "t_AMP_model.dfm", ":0", 1e-3),
                                    (amp["dir"] / "t_AMP_model.onnx", "", 1e-2)):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        face_in, morph_in = sess.get_inputs()
        assert face_in.name == f"in_face{suffix}" and face_in.shape[1:] == [64, 64, 3]
        assert morph_in.name == f"morph_value{suffix}" and morph_in.shape == [1] and morph_in.type == "tensor(float)"
        outs = sess.get_outputs()
        assert [o.name for o in outs] == [f"out_face_mask{suffix}", f"out_celeb_face{suffix}",
                                          f"out_celeb_face_mask{suffix}"]
        assert [o.shape[1:] for o in outs] == [[64, 64, 1], [64, 64, 3], [64, 64, 1]]
        for m in (0.0, 0.5, 1.0):
            dst_mask, face, face_mask = sess.run(None, {face_in.name: faces,
                                                        morph_in.name: np.array([m], np.float32)})
            for got, expected in ((face, want[m][0]), (face_mask, want[m][1]), (dst_mask, want[m][2])):
                assert got.shape == expected.shape and np.abs(got - expected).max() <= tolerance, (path.name, m)


@pytest.mark.parametrize("resolution,patch", [(None, 28), ("64", 8), ("100", 12)])
def test_amp_gan_patch_size_defaults_to_the_snapped_resolution_over_8_as_dfl(resolution, patch):
    from core.options import resolve
    from models.amp import AMPModel
    given = {"resolution": resolution} if resolution else {}
    assert resolve(AMPModel.option_schema(), given)["gan_patch_size"] == patch
