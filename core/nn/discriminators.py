"""SAEHD's two discriminators (Keras 3 layers only) and the logistic loss they train with.

* The U-Net patch discriminator behind `gan_power` judges the src reconstruction in patches
  of about `gan_patch_size` pixels. It has two heads, as DeepFaceLab's: one logit per cell of
  its lowest feature map (the patch verdict) and one per pixel from the U-Net's upward path,
  so the generator is pushed on both coarse structure and fine texture.
* The code discriminator behind `true_face_power` (DF only) tells the dst latent code from
  the src one; the generator learns to make src codes look like dst codes, which pulls the
  swapped face toward the src identity.

Layers are named so variable paths ("GAN/down0/kernel") are stable across processes, which
keeps their optimizer's slot names stable too (see core/nn/archis.py).
"""
from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from core.nn.layers import activate


def receptive_field(convs: list[tuple[int, int]]) -> int:
    """Receptive field in pixels of a stack of (kernel, stride) convolutions."""
    field, stride = 0, 1
    for i, (k, s) in enumerate(convs):
        field = k if i == 0 else field + (k - 1) * stride
        stride *= s
    return field


def patch_layers(patch_size: int, max_layers: int = 9) -> list[tuple[int, int]]:
    """3×3 convolutions whose receptive field is closest to `patch_size` (DeepFaceLab's search).

    Every stack starts with a stride-2 conv; the others have stride 1 or 2. For each
    reachable receptive field the stack with the fewest layers wins, and among those the one
    with the most total stride (the cheapest); ties of distance go to the smaller field.
    """
    best: dict[int, tuple[int, int, list[tuple[int, int]]]] = {}
    for count in range(1, max_layers + 1):
        for bits in range((1 << (count - 1)) - 1, -1, -1):
            convs = [(3, 2)] + [(3, 2 if bits & (1 << i) else 1) for i in range(count - 1)]
            field, total = receptive_field(convs), sum(s for _, s in convs)
            have = best.get(field)
            if have is None or count < have[0] or (count == have[0] and total > have[1]):
                best[field] = (count, total, convs)
    nearest = min(sorted(best), key=lambda f: abs(f - patch_size))
    return best[nearest][2]


def _leaky(x: Any) -> Any:
    return activate(x, False, 0.2)


def unet_patch_discriminator(name: str, resolution: int, patch_size: int, base_ch: int,
                             in_ch: int = 3) -> keras.Model:
    """DeepFaceLab's UNetPatchDiscriminator: image -> (patch logits, pixel logits), float32."""
    convs = patch_layers(patch_size)
    chs = [min(base_ch * 2 ** i, 512) for i in range(len(convs) + 1)]     # chs[0] is the input level
    inp = keras.Input((resolution, resolution, in_ch), name="image")
    x = _leaky(layers.Conv2D(chs[0], 1, name="in_conv")(inp))
    skips = []
    for i, (k, s) in enumerate(convs):
        skips.append(x)
        x = _leaky(layers.Conv2D(chs[i + 1], k, strides=s, padding="same", name=f"down{i}")(x))
    center = layers.Conv2D(1, 1, dtype="float32", name="center_out")(x)
    x = _leaky(layers.Conv2D(chs[-1], 1, name="center_conv")(x))
    for j, ((k, s), skip) in enumerate(zip(reversed(convs), reversed(skips))):
        level = len(convs) - 1 - j
        x = _leaky(layers.Conv2DTranspose(chs[level], k, strides=s, padding="same", name=f"up{level}")(x))
        x = layers.Concatenate(axis=-1, name=f"skip{level}")([skip, x])
    pixels = layers.Conv2D(1, 1, dtype="float32", name="out_conv")(x)
    return keras.Model(inp, [center, pixels], name=name)


def code_discriminator(name: str, code_res: int, in_ch: int, ch: int = 256) -> keras.Model:
    """DeepFaceLab's CodeDiscriminator: latent code (code_res², in_ch) -> logits, float32.

    1 + code_res // 8 stride-2 convs (4×4 first, then 3×3), LeakyReLU 0.1, a 1×1 logit conv.
    """
    inp = keras.Input((code_res, code_res, in_ch), name="code")
    x = inp
    for i in range(1 + code_res // 8):
        x = layers.Conv2D(ch * min(2 ** i, 8), 4 if i == 0 else 3, strides=2, padding="same", name=f"conv{i}")(x)
        x = activate(x, False, 0.1)
    out = layers.Conv2D(1, 1, dtype="float32", name="out_conv")(x)
    return keras.Model(inp, out, name=name)


def logistic_loss(label: float, logits: Any) -> Any:
    """Sigmoid cross-entropy of `logits` against a constant label (0 or 1), mean per sample.

    Written in the stable form max(x, 0) - x·z + log(1 + e^-|x|), as TensorFlow's
    sigmoid_cross_entropy_with_logits that DeepFaceLab uses.
    """
    x = ops.cast(logits, "float32")
    loss = ops.relu(x) - x * float(label) + ops.log1p(ops.exp(-ops.abs(x)))
    return ops.mean(loss, axis=tuple(range(1, len(x.shape))))
