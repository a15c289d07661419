"""DeepFaceLab's XSeg segmentation network in Keras 3.

A U-Net: six stages down, each two or three 3x3 conv + FRN + TLU blocks then an
anti-aliased BlurPool stride-2 downsample (filters 4, 3, 2, 2, 2, 2 as DFL uses); a dense
bottleneck (flatten -> 512 -> back) at res/64; six transposed-conv stages up, each
concatenated with the skip from the same level; a 3x3 conv to one logit channel. Base
width 32 channels, doubling to 256. DFL fixes the resolution at 256 (4x4 bottleneck); here
any multiple of 64 builds, so tests and small CPUs can train at 64 or 128.

FRN (filter response normalisation) divides each channel by the root mean square over the
image (plus |eps|, a learned scalar per layer starting at 1e-6, as DFL's), with learned scale
and shift, and TLU is max(x, tau) with a learned tau: unlike batch norm both work per sample,
which is what makes batch 4 train well.

Layer for layer it is DeepFaceLab's nn.XSeg (core/leras/models/XSeg.py): the same blocks in
the same order with the same shapes. Keras names cannot hold '/', so DFL's `conv01/conv`
is the layer `conv01_conv` here and DFL's `conv01/frn` + `conv01/tlu` one fused layer
`conv01_frn` whose weights come in DFL's order: `gamma` (DFL frn/weight), `beta` (frn/bias),
`eps` (frn/eps), `tau` (tlu/tau); mainscripts/dfl_model_import.py maps the names. One layout
differs and is converted on import: DFL flattens before dense1 and reshapes after dense2 in
channel-first order, Keras channel-last.

Under the TensorFlow backend FRN + TLU and BlurPool's gradient run as the fused kernels of
core/nn/xseg_fused_tf.py (the same maths; the keras.ops code here is slower there by half a
training step); the other backends, and `FUSED_TF = False`, run the keras.ops code below.
"""
from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

BASE_CH = 32
BOTTLENECK = 512
DOWNSCALES = 6
RES_STEP = 2 ** DOWNSCALES
FUSED_TF = True                 # the fused TensorFlow kernels (False: keras.ops everywhere, to compare)


def _fused() -> bool:
    return FUSED_TF and keras.backend.backend() == "tensorflow"


class FRNTLU(layers.Layer):
    """Filter response normalisation followed by a thresholded linear unit (per channel)."""

    def __init__(self, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape: tuple) -> None:
        ch = input_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(ch,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(ch,), initializer="zeros")
        self.eps = self.add_weight(name="eps", shape=(1,), initializer=keras.initializers.Constant(self.epsilon))
        self.tau = self.add_weight(name="tau", shape=(ch,), initializer="zeros")

    def call(self, x: Any) -> Any:
        if _fused():
            from core.nn.xseg_fused_tf import frn_tlu
            return ops.cast(frn_tlu(x, self.gamma, self.beta, self.eps, self.tau), self.compute_dtype)
        nu2 = ops.mean(ops.square(ops.cast(x, "float32")), axis=(1, 2), keepdims=True)
        x = ops.cast(x, "float32") * ops.rsqrt(nu2 + ops.abs(ops.cast(self.eps, "float32")))
        x = ops.maximum(x * ops.cast(self.gamma, "float32") + ops.cast(self.beta, "float32"),
                        ops.cast(self.tau, "float32"))
        return ops.cast(x, self.compute_dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}


class BlurPool(layers.Layer):
    """Binomial blur then stride 2 (anti-aliased downsampling), zero padding as DFL's."""

    def __init__(self, filt_size: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filt_size = filt_size
        a = np.array([1.0])
        for _ in range(filt_size - 1):
            a = np.convolve(a, [1.0, 1.0])
        k = a[:, None] * a[None, :]
        self.kernel2d = (k / k.sum()).astype(np.float32)
        self.pad = ((filt_size - 1) // 2, int(np.ceil((filt_size - 1) / 2)))

    def call(self, x: Any) -> Any:
        if _fused():
            from core.nn.xseg_fused_tf import blur_pool
            return blur_pool(x, self.kernel2d, self.pad)
        ch = x.shape[-1]
        kernel = ops.cast(np.tile(self.kernel2d[:, :, None, None], (1, 1, ch, 1)), x.dtype)
        x = ops.pad(x, ((0, 0), self.pad, self.pad, (0, 0)))
        return ops.depthwise_conv(x, kernel, strides=2, padding="valid")

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n, h, w, c = input_shape
        return (n, None if h is None else h // 2, None if w is None else w // 2, c)

    def get_config(self) -> dict:
        return {**super().get_config(), "filt_size": self.filt_size}


def _block(x: Any, ch: int, name: str) -> Any:
    x = layers.Conv2D(ch, 3, padding="same", name=f"{name}_conv")(x)
    return FRNTLU(name=f"{name}_frn")(x)


def _up(x: Any, ch: int, name: str) -> Any:
    x = layers.Conv2DTranspose(ch, 3, strides=2, padding="same", name=f"{name}_conv")(x)
    return FRNTLU(name=f"{name}_frn")(x)


def build_xseg(resolution: int, base_ch: int = BASE_CH, pretrain: bool = False) -> keras.Model:
    """The network: (N, res, res, 3) BGR in [0, 1] -> (N, res, res, 1) mask logits (float32).

    `pretrain`: DFL's pretraining forward, the same layers and weights with every skip connection
    replaced by zeros (so the image must pass the dense bottleneck)."""
    if resolution % RES_STEP:
        raise ValueError(f"XSeg resolution must be a multiple of {RES_STEP}, got {resolution}")
    b = base_ch
    # (convs per stage, channels, blur filter size) for the six levels, DFL's table
    down = ((2, b, 4), (2, 2 * b, 3), (2, 4 * b, 2), (3, 8 * b, 2), (3, 8 * b, 2), (3, 8 * b, 2))
    up = ((8 * b, 4 * b, 3), (8 * b, 4 * b, 3), (8 * b, 4 * b, 3), (4 * b, 4 * b, 2), (2 * b, 2 * b, 2),
          (b, b, 2))     # (conv channels, up-conv channels, convs) from the deepest level up
    with keras.name_scope("XSeg"):
        inp = keras.Input((resolution, resolution, 3), name="face")
        x, skips = inp, []
        for level, (n, ch, filt) in enumerate(down):
            for i in range(n):
                x = _block(x, ch, f"conv{level}{i + 1}")
            skips.append(x)
            x = BlurPool(filt, name=f"bp{level}")(x)
        low = resolution // RES_STEP
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(BOTTLENECK, name="dense1")(x)
        x = layers.Dense(low * low * 8 * b, name="dense2")(x)
        x = layers.Reshape((low, low, 8 * b), name="reshape")(x)
        for k, (ch, up_ch, n) in enumerate(up):
            level = DOWNSCALES - 1 - k
            x = _up(x, up_ch, f"up{level}")
            skip = ops.zeros_like(skips[level]) if pretrain else skips[level]
            x = layers.Concatenate()([x, skip])
            for i in range(n):
                x = _block(x, ch, f"uconv{level}{n - i}")
        logits = layers.Conv2D(1, 3, padding="same", name="out_conv", dtype="float32")(x)
    return keras.Model(inp, logits, name="XSeg")
