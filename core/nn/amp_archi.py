"""DeepFaceLab's AMP network (Keras 3, `keras.ops` only): one encoder, inter_src / inter_dst, one decoder.

The swap is a *morph*: the decoder input takes its first ⌊morph·inter_dims⌋ channels from
inter_src's code of the dst face and the rest from inter_dst's, so one value slides the
result from the dst-like face (0) to the src-like face (1). Training mixes channels the
same way, at random per sample (`morph_masks`), so every mix in between is decodable.

Layer names and weight shapes are DeepFaceLab's, so a DFL AMP model maps onto these parts
one to one (L = res/32, e/d/m = e_dims/d_dims/d_mask_dims, I = inter_dims, A = ae_dims):
  encoder    down1 (5×5, 3→e), res1 (e), down2 (2e), down3 (4e), down4 (8e), down5 (8e),
             res5 (8e), channels-first flatten, pixel norm, dense1 (L²·8e → A)
  inter_*    dense2 (A → L²·I), reshaped channels-first (I, L, L) as DFL's reshape_4D
  decoder    upscale0..3 (I→8d, 8d, 4d, 2d) each followed by res0..3; out_conv (1×1) and
             out_conv1..3 (3×3) → depth_to_space → sigmoid; mask: upscalem0..4 (8m, 8m, 4m,
             2m, m) → out_convm (1×1) → sigmoid
DFL's `conv1` inside a down/upscale block is the block's `conv` here; a residual block's
`conv1`/`conv2` keep their names. Conv kernels are (k, k, in, out) and dense kernels
(in, out) in both, because the flatten and the inter reshape run channels-first as DFL's
do, which is what keeps dense1's and dense2's rows in DFL's order.
"""
from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from core.nn.layers import DepthToSpace, Downscale, PixelNorm, ResidualBlock, Upscale

PART_NAMES = ("encoder", "inter_src", "inter_dst", "decoder")
TRAINED_PARTS = ("encoder", "decoder")      # DFL's AMP optimises these only: the inter parts stay as initialised
RESOLUTION_STEP = 32


def _encoder(res: int, e_dims: int, ae_dims: int) -> keras.Model:
    inp = keras.Input((res, res, 3), name="image")
    x = Downscale(e_dims, name="down1")(inp)
    x = ResidualBlock(e_dims, name="res1")(x)
    for i, mult in ((2, 2), (3, 4), (4, 8), (5, 8)):
        x = Downscale(e_dims * mult, name=f"down{i}")(x)
    x = ResidualBlock(e_dims * 8, name="res5")(x)
    x = layers.Permute((3, 1, 2), name="to_channels_first")(x)
    x = PixelNorm(name="pixel_norm")(layers.Flatten(name="flatten")(x))
    return keras.Model(inp, layers.Dense(ae_dims, name="dense1")(x), name="encoder")


def _inter(name: str, ae_dims: int, inter_dims: int, lowest: int) -> keras.Model:
    inp = keras.Input((ae_dims,), name="code")
    x = layers.Dense(lowest * lowest * inter_dims, name="dense2")(inp)
    x = layers.Reshape((inter_dims, lowest, lowest), name="reshape")(x)
    return keras.Model(inp, layers.Permute((2, 3, 1), name="to_channels_last")(x), name=name)


def _decoder(lowest: int, inter_dims: int, d_dims: int, d_mask_dims: int) -> keras.Model:
    inp = keras.Input((lowest, lowest, inter_dims), name="code")
    x = inp
    for i, mult in enumerate((8, 8, 4, 2)):
        x = Upscale(d_dims * mult, name=f"upscale{i}")(x)
        x = ResidualBlock(d_dims * mult, name=f"res{i}")(x)
    # heads in float32 so images and masks leave the model as float32 under mixed precision
    heads = [layers.Conv2D(3, 1, padding="same", dtype="float32", name="out_conv")(x)]
    heads += [layers.Conv2D(3, 3, padding="same", dtype="float32", name=f"out_conv{k}")(x) for k in (1, 2, 3)]
    x = layers.Concatenate(axis=-1, dtype="float32", name="out_concat")(heads)
    rgb = layers.Activation("sigmoid", dtype="float32", name="rgb")(DepthToSpace(2, dtype="float32",
                                                                                  name="out_depth_to_space")(x))
    m = inp
    for i, mult in enumerate((8, 8, 4, 2, 1)):
        m = Upscale(d_mask_dims * mult, name=f"upscalem{i}")(m)
    mask = layers.Conv2D(1, 1, padding="same", activation="sigmoid", dtype="float32", name="out_convm")(m)
    return keras.Model(inp, [rgb, mask], name="decoder")


def build_parts(resolution: int, ae_dims: int, inter_dims: int, e_dims: int, d_dims: int,
                d_mask_dims: int) -> dict[str, keras.Model]:
    """AMP's four parts with fresh weights, each in its own name scope (stable variable paths)."""
    if resolution < 64 or resolution % RESOLUTION_STEP:
        raise ValueError(f"AMP resolution {resolution}: use a multiple of {RESOLUTION_STEP} from 64")
    lowest = resolution // RESOLUTION_STEP
    makers = {"encoder": lambda: _encoder(resolution, e_dims, ae_dims),
              "inter_src": lambda: _inter("inter_src", ae_dims, inter_dims, lowest),
              "inter_dst": lambda: _inter("inter_dst", ae_dims, inter_dims, lowest),
              "decoder": lambda: _decoder(lowest, inter_dims, d_dims, d_mask_dims)}
    parts = {}
    for name in PART_NAMES:
        with keras.name_scope(name):
            parts[name] = makers[name]()
    return parts


def morph_masks(rng: np.random.Generator, batch: int, inter_dims: int, morph_factor: float) -> np.ndarray:
    """(batch, inter_dims) 0/1: per sample, a random int(morph_factor·inter_dims) channels are 1.

    DFL's training mix: channels marked 1 take inter_src's code of the src face, the others
    inter_dst's. Drawn on the CPU from the step's own generator, so a resumed run draws the same.
    """
    ones = int(inter_dims * morph_factor)
    base = np.concatenate([np.ones(ones, np.float32), np.zeros(inter_dims - ones, np.float32)])
    return rng.permuted(np.tile(base, (batch, 1)), axis=1)


def forward(parts: dict, src: Any, dst: Any, mix: Any, morph: float = 1.0, training: bool = True) -> dict[str, Any]:
    """Training forward pass: src through the random channel mix `mix` (batch, inter_dims),
    dst through inter_dst, and the swap at `morph`. NHWC float32 images in [0, 1]."""
    n = ops.shape(src)[0]
    code = parts["encoder"](ops.concatenate([src, dst], axis=0), training=training)
    s, d = parts["inter_src"](code, training=training), parts["inter_dst"](code, training=training)
    mix = ops.cast(mix, s.dtype)[:, None, None, :]
    src_code = s[:n] * mix + d[:n] * (1.0 - mix)
    swap_code = morph_code(s[n:], d[n:], morph)
    rgb, m = parts["decoder"](ops.concatenate([src_code, d[n:]], axis=0), training=training)
    src_dst, src_dstm = parts["decoder"](swap_code, training=training)
    return {"pred_src_src": rgb[:n], "pred_src_srcm": m[:n], "pred_dst_dst": rgb[n:], "pred_dst_dstm": m[n:],
            "pred_src_dst": src_dst, "pred_src_dstm": src_dstm}


def morph_code(src_code: Any, dst_code: Any, morph: Any) -> Any:
    """The first ⌊morph·channels⌋ channels from `src_code`, the rest from `dst_code` (DFL's slice and concat).

    `morph` is a float or a (1,) tensor; the channel count is truncated as DFL's int cast does.
    """
    channels = int(src_code.shape[-1])
    take = ops.floor(ops.cast(ops.reshape(morph, (-1,))[0], "float32") * float(channels))
    keep = ops.arange(channels, dtype="float32") < take
    return ops.where(keep, src_code, dst_code)


@keras.saving.register_keras_serializable(package="visage")
class MorphMix(layers.Layer):
    """[inter_src code, inter_dst code, morph_value (1,)] -> the swap code (`morph_code`), in the inference graph."""

    def call(self, inputs: list) -> Any:
        src_code, dst_code, morph = inputs
        return morph_code(src_code, dst_code, morph)

    def compute_output_shape(self, input_shapes: list) -> tuple:
        return input_shapes[0]
