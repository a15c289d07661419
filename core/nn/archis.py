"""DeepFaceLab's DF and LIAE autoencoders with the -u, -d, -t, -c variants (Keras 3).

Each part (encoder, inter..., decoder...) is its own functional `keras.Model`, built for a
fixed input shape so its weights exist at once and it saves to its own weights file, as
DeepFaceLab keeps one file per part (deleting one re-initialises only that part).
Every part is built inside `keras.name_scope(part)`, so variable paths read
"decoder_src/up0/conv/kernel": unique across parts and identical in every process, which
keeps optimizer slot names (core/nn/optimizers.py) stable across restarts.

Shapes (L = lowest_dense_res = res/16, or res/32 with -d):
  encoder  res -> res/16 (res/32 with -t) at 8·e channels, flattened (pixel-norm with -u)
  inter    Dense(ae_dims) -> Dense(L²·out) -> (L, L, out) -> Upscale (none with -t)
  decoder  3 × (Upscale + ResidualBlock) at 8d, 4d, 2d (-t: 4 stages 8d, 8d, 4d, 2d),
           then RGB and mask heads; -d packs 4 RGB convs through depth_to_space so the
           output is twice the last feature map, and the mask branch upscales once more.
"""
from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from core.nn.layers import DepthToSpace, Downscale, PixelNorm, ResidualBlock, Upscale

ARCHI_TYPES = ("df", "liae")
ARCHI_FLAGS = "udtc"
Parts = dict[str, keras.Model]


def parse_archi(archi: str) -> tuple[str, frozenset[str]]:
    """'liae-udt' -> ('liae', {'u','d','t'}); ValueError naming the problem otherwise."""
    text = str(archi).strip().lower()
    kind, _, flags = text.partition("-")
    if kind not in ARCHI_TYPES:
        raise ValueError(f"archi {archi!r}: type must be 'df' or 'liae', e.g. 'liae-ud'")
    if text.endswith("-") or "-" in flags:
        raise ValueError(f"archi {archi!r}: write the flags once after one dash, e.g. 'df-ud'")
    bad = sorted(set(flags) - set(ARCHI_FLAGS))
    if bad:
        raise ValueError(f"archi {archi!r}: unknown flag(s) {''.join(bad)!r}; "
                         f"allowed are any of {ARCHI_FLAGS!r}")
    if len(set(flags)) != len(flags):
        raise ValueError(f"archi {archi!r}: a flag is repeated")
    return kind, frozenset(flags)


def resolution_step(archi: str) -> int:
    """Resolution must be a multiple of this: 32 with -d (res/32 lowest map), else 16.

    -t does not add a constraint: its fifth downscale only shrinks the flattened code,
    and 'same' padding handles odd sizes (DFL snaps to 32 for -d only).
    """
    return 32 if "d" in parse_archi(archi)[1] else 16


def part_names(archi_type: str) -> tuple[str, ...]:
    """The parts of a model in DFL's save order."""
    if archi_type == "df":
        return ("encoder", "inter", "decoder_src", "decoder_dst")
    if archi_type == "liae":
        return ("encoder", "inter_AB", "inter_B", "decoder")
    raise ValueError(f"archi type {archi_type!r}: expected 'df' or 'liae'")


def trainable_parts(archi_type: str, random_warp: bool) -> tuple[str, ...]:
    """Parts whose weights the optimizer updates.

    LIAE without random warp freezes inter_AB (DFL): without warp the shared code would
    simply learn to copy, so only inter_B and the rest adapt.
    """
    names = part_names(archi_type)
    if archi_type == "liae" and not random_warp:
        return tuple(n for n in names if n != "inter_AB")
    return names


def _encoder(name: str, res: int, e_dims: int, flags: frozenset[str]) -> keras.Model:
    cos = "c" in flags
    inp = keras.Input((res, res, 3), name="image")
    if "t" in flags:
        x = Downscale(e_dims, cos=cos, name="down1")(inp)
        x = ResidualBlock(e_dims, cos=cos, name="res1")(x)
        x = Downscale(e_dims * 2, cos=cos, name="down2")(x)
        x = Downscale(e_dims * 4, cos=cos, name="down3")(x)
        x = Downscale(e_dims * 8, cos=cos, name="down4")(x)
        x = Downscale(e_dims * 8, cos=cos, name="down5")(x)
        x = ResidualBlock(e_dims * 8, cos=cos, name="res5")(x)
    else:
        x = inp
        for i, mult in enumerate((1, 2, 4, 8), start=1):
            x = Downscale(e_dims * mult, cos=cos, name=f"down{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    if "u" in flags:
        x = PixelNorm(name="pixel_norm")(x)
    return keras.Model(inp, x, name=name)


def _inter(name: str, code_dim: int, ae_dims: int, out_ch: int, lowest: int,
           flags: frozenset[str]) -> keras.Model:
    inp = keras.Input((code_dim,), name="code")
    x = layers.Dense(ae_dims, name="dense1")(inp)
    x = layers.Dense(lowest * lowest * out_ch, name="dense2")(x)
    x = layers.Reshape((lowest, lowest, out_ch), name="reshape")(x)
    if "t" not in flags:
        x = Upscale(out_ch, cos="c" in flags, name="up")(x)
    return keras.Model(inp, x, name=name)


def _decoder(name: str, in_res: int, in_ch: int, d_dims: int, d_mask_dims: int,
             flags: frozenset[str]) -> keras.Model:
    cos, deep = "c" in flags, "d" in flags
    mults = (8, 8, 4, 2) if "t" in flags else (8, 4, 2)
    inp = keras.Input((in_res, in_res, in_ch), name="code")
    x = inp
    for i, mult in enumerate(mults):
        x = Upscale(d_dims * mult, cos=cos, name=f"up{i}")(x)
        x = ResidualBlock(d_dims * mult, cos=cos, name=f"res{i}")(x)
    # Heads in float32 so images and masks leave the model as float32 under mixed precision.
    if deep:
        heads = [layers.Conv2D(3, 1, padding="same", dtype="float32", name="out_conv")(x)]
        heads += [layers.Conv2D(3, 3, padding="same", dtype="float32", name=f"out_conv{k}")(x)
                  for k in (1, 2, 3)]
        x = layers.Concatenate(axis=-1, dtype="float32", name="out_concat")(heads)
        x = DepthToSpace(2, dtype="float32", name="out_depth_to_space")(x)
        rgb = layers.Activation("sigmoid", dtype="float32", name="rgb")(x)
    else:
        rgb = layers.Conv2D(3, 1, padding="same", activation="sigmoid", dtype="float32",
                            name="rgb")(x)
    m = inp
    mask_mults = mults + ((1,) if deep else ())
    for i, mult in enumerate(mask_mults):
        m = Upscale(d_mask_dims * mult, cos=cos, name=f"upm{i}")(m)
    mask = layers.Conv2D(1, 1, padding="same", activation="sigmoid", dtype="float32",
                         name="mask")(m)
    return keras.Model(inp, [rgb, mask], name=name)


def build_parts(archi: str, resolution: int, ae_dims: int, e_dims: int, d_dims: int,
                d_mask_dims: int) -> Parts:
    """All parts of a DF or LIAE model, built with fresh weights.

    Raises ValueError when `resolution` is not a positive multiple of resolution_step().
    """
    kind, flags = parse_archi(archi)
    step = resolution_step(archi)
    if resolution < step or resolution % step:
        raise ValueError(f"resolution {resolution} does not fit archi {archi!r}: "
                         f"use a multiple of {step}")
    lowest = resolution // (32 if "d" in flags else 16)
    inter_res = lowest if "t" in flags else lowest * 2
    parts: Parts = {}
    with keras.name_scope("encoder"):
        parts["encoder"] = enc = _encoder("encoder", resolution, e_dims, flags)
    code_dim = int(enc.output.shape[-1])
    if kind == "df":
        inters, inter_out, dec_in = ("inter",), ae_dims, ae_dims
        decoders = ("decoder_src", "decoder_dst")
    else:
        inters, inter_out, dec_in = ("inter_AB", "inter_B"), ae_dims * 2, ae_dims * 4
        decoders = ("decoder",)
    for name in inters:
        with keras.name_scope(name):
            parts[name] = _inter(name, code_dim, ae_dims, inter_out, lowest, flags)
    for name in decoders:
        with keras.name_scope(name):
            parts[name] = _decoder(name, inter_res, dec_in, d_dims, d_mask_dims, flags)
    return parts


def _split(x: Any, n: int) -> list[Any]:
    """Undo a batch-axis concatenation of n equal groups."""
    size = ops.shape(x)[0] // n
    return [x[i * size:(i + 1) * size] for i in range(n)]


def forward(archi_type: str, parts: Parts, src: Any, dst: Any,
            training: bool = True, with_codes: bool = False) -> dict[str, Any]:
    """Training forward pass: reconstructions of both sides plus the swap.

    src and dst go through the shared encoder as one concatenated batch (same result as
    separate calls, fewer and larger kernels). The swap gets its own decoder call: the
    losses do not use it, so a tf.function train step that does not return it prunes it,
    and one that returns it for the preview pays only its forward pass, not a backward one.
    Images are NHWC float32 in [0, 1]; masks NHWC float32 with one channel. `with_codes`
    adds the decoder inputs (code_src, code_dst, code_src_dst): the true-face discriminator
    judges them and the face style loss decodes the swap code without its gradient.
    """
    n = ops.shape(src)[0]
    code = parts["encoder"](ops.concatenate([src, dst], axis=0), training=training)
    if archi_type == "df":
        z = parts["inter"](code, training=training)
        z_src, z_dst = z[:n], z[n:]
        src_src, src_srcm = parts["decoder_src"](z_src, training=training)
        dst_dst, dst_dstm = parts["decoder_dst"](z_dst, training=training)
        src_dst, src_dstm = parts["decoder_src"](z_dst, training=training)
        codes = (z_src, z_dst, z_dst)
    elif archi_type == "liae":
        ab = parts["inter_AB"](code, training=training)
        ab_src, ab_dst = ab[:n], ab[n:]
        b_dst = parts["inter_B"](code[n:], training=training)
        codes = (ops.concatenate([ab_src, ab_src], axis=-1), ops.concatenate([b_dst, ab_dst], axis=-1),
                 ops.concatenate([ab_dst, ab_dst], axis=-1))
        rgb, m = parts["decoder"](ops.concatenate(codes[:2], axis=0), training=training)
        (src_src, dst_dst), (src_srcm, dst_dstm) = _split(rgb, 2), _split(m, 2)
        src_dst, src_dstm = parts["decoder"](codes[2], training=training)
    else:
        raise ValueError(f"archi type {archi_type!r}: expected 'df' or 'liae'")
    out = {"pred_src_src": src_src, "pred_src_srcm": src_srcm,
           "pred_dst_dst": dst_dst, "pred_dst_dstm": dst_dstm,
           "pred_src_dst": src_dst, "pred_src_dstm": src_dstm}
    if with_codes:
        out.update(code_src=codes[0], code_dst=codes[1], code_src_dst=codes[2])
    return out


def swap_decoder(archi_type: str, parts: Parts) -> keras.Model:
    """The decoder that turns a swap code (forward's "code_src_dst") into the src-looking face."""
    return parts["decoder_src" if archi_type == "df" else "decoder"]


def trainable_variables(parts: Parts, names: tuple[str, ...]) -> list[Any]:
    """Flat list of the trainable variables of the named parts, in part order."""
    return [v for name in names for v in parts[name].trainable_variables]


def quick96_parts() -> Parts:
    """Quick96's fixed network: DF-UD at 96 px, dims ae 128, e 64, d 64, d_mask 16."""
    return build_parts("df-ud", 96, ae_dims=128, e_dims=64, d_dims=64, d_mask_dims=16)
