"""The training preview's key handling and images, without a display."""
import numpy as np

from mainscripts.train.train_preview import (LOSS_RANGES, PREVIEW_KINDS, PreviewState, face_grid, handle_key, loss_plot,
                                       render_preview)


def test_keys_follow_deepfacelab():
    s = PreviewState()
    assert handle_key(s, 13) == (s, "save_exit")
    assert handle_key(s, 10) == (s, "save_exit")
    assert handle_key(s, ord("s"))[1] == "save"
    assert handle_key(s, ord("b"))[1] == "backup"
    assert handle_key(s, ord("p"))[1] == "refresh"
    assert handle_key(s, ord("x")) == (s, None)


def test_space_cycles_previews_and_l_cycles_loss_ranges():
    s = PreviewState()
    kinds, ranges = [], []
    for _ in range(len(PREVIEW_KINDS)):
        s, action = handle_key(s, ord(" "))
        kinds.append(s.kind)
        assert action == "refresh"
    assert kinds[-1] == 0 and len(set(kinds)) == len(PREVIEW_KINDS)
    for _ in range(len(LOSS_RANGES)):
        s, _ = handle_key(s, ord("l"))
        ranges.append(LOSS_RANGES[s.loss_range])
    assert ranges == [5000, 10000, 50000, 100000, 0]


def test_loss_plot_draws_both_curves_in_their_colours():
    history = [[1.0 / (i + 1), 2.0 / (i + 1)] for i in range(500)]
    img = loss_plot(history, 300, 120)
    assert img.shape == (120, 300, 3)
    body = img[16:]
    blue = (body[..., 0] > 200) & (body[..., 2] < 120)
    orange = (body[..., 2] > 200) & (body[..., 0] < 80)
    assert blue.sum() > 50 and orange.sum() > 50
    assert loss_plot([], 300).std() == 0          # nothing to draw yet


def test_loss_plot_has_axes_and_a_legend():
    from mainscripts.train.train_preview import AXIS_COLOUR
    history = [[0.5 - i / 2000, 0.7 - i / 2000] for i in range(500)]
    img = loss_plot(history, 400, 150)
    legend = img[:16]                             # the title row carries a src (blue) and a dst (orange) sample
    assert ((legend[..., 0] > 200) & (legend[..., 2] < 120)).sum() > 20
    assert ((legend[..., 2] > 200) & (legend[..., 0] < 80)).sum() > 20
    axis_x = np.nonzero((img[60:100] == AXIS_COLOUR).all(-1).all(0))[0]     # a vertical grey line: the loss axis
    axis_y = np.nonzero((img[:, 60:300] == AXIS_COLOUR).all(-1).all(1))[0]  # a horizontal one: iterations
    assert len(axis_x) == 1 and 30 < axis_x[0] < 60 and len(axis_y) == 1 and axis_y[0] > 120
    assert (img[:, :axis_x[0]] > 150).any() and (img[axis_y[0] + 1:] > 150).any()   # labels beside the axes


def test_preview_grid_has_five_columns_and_masked_kind_blanks_outside_mask():
    n, r = 3, 16
    rng = np.random.default_rng(0)
    src, dst = rng.random((n, r, r, 3), np.float32), rng.random((n, r, r, 3), np.float32)
    out = {k: rng.random((n, r, r, 3), np.float32) for k in ("pred_src_src", "pred_dst_dst", "pred_src_dst")}
    zero = np.zeros((n, r, r, 1), np.float32)
    out.update(pred_src_srcm=zero, pred_dst_dstm=zero, pred_src_dstm=zero)
    grid = face_grid(src, dst, out, "faces")
    assert grid.shape == (n * r, 5 * r, 3) and grid.dtype == np.uint8
    assert np.array_equal(grid[:r, :r], (src[0] * 255).astype(np.uint8))
    assert face_grid(src, dst, out, "masked").max() == 0
    img = render_preview(src, dst, out, [[0.5, 0.6]] * 10, PreviewState(), "test")
    assert img.shape[1] >= 640 and img.shape[1] % (5 * r) == 0 and img.shape[0] > n * r
