"""DeepFaceLab's building blocks as Keras 3 layers (backend-neutral, `keras.ops` only).

Each block is a small `keras.layers.Layer` with its own `get_config`, so the parts built
from them save and load as `.weights.h5` and rebuild from config. Sub-layers have fixed
names ("conv", "conv1", ...) so variable paths, and with them the optimizer's slot names,
are the same in every process (see core/nn/archis.py for the per-part name scope).

Mixed precision: the blocks follow the global dtype policy like any Keras layer; only the
output heads in archis.py pin float32.
"""
from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops


def activate(x: Any, cos: bool, negative_slope: float) -> Any:
    """DFL's activation: LeakyReLU(slope), or x·cos(x) for the `-c` archi variant.

    DeepFaceLab swaps the one activation function used by every block for `-c`, so the
    flag travels with each block instead of being a separate layer.
    """
    if cos:
        return x * ops.cos(x)
    return ops.leaky_relu(x, negative_slope=negative_slope)


@keras.saving.register_keras_serializable(package="visage")
class DepthToSpace(layers.Layer):
    """Pixel shuffle, NHWC: (B, H, W, C·b²) -> (B, H·b, W·b, C).

    Same channel order as TensorFlow's depth_to_space (channel index (i·b + j)·C + c goes
    to sub-pixel row i, column j), written with reshape/transpose to stay backend-neutral.
    """

    def __init__(self, block_size: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, x: Any) -> Any:
        b = self.block_size
        _, h, w, c = x.shape
        if h is None or w is None:
            shape = ops.shape(x)
            h, w = shape[1], shape[2]
        out_c = c // (b * b)
        x = ops.reshape(x, (-1, h, w, b, b, out_c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, h * b, w * b, out_c))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n, h, w, c = input_shape
        b = self.block_size
        return (n, None if h is None else h * b, None if w is None else w * b, c // (b * b))

    def get_config(self) -> dict:
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="visage")
class PixelNorm(layers.Layer):
    """x / sqrt(mean(x², axis) + eps): the `-u` variant's normalisation of the latent code.

    Keeps the flattened encoder output at unit RMS so the huge first Dense of `inter` sees a
    stable input scale. The mean is taken in float32 because under bfloat16 a mean over
    tens of thousands of squares loses most of its precision.
    """

    def __init__(self, axis: int = -1, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def call(self, x: Any) -> Any:
        x32 = ops.cast(x, "float32")
        scale = ops.rsqrt(ops.mean(ops.square(x32), axis=self.axis, keepdims=True) + self.epsilon)
        return ops.cast(x32 * scale, x.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="visage")
class Downscale(layers.Layer):
    """Conv k×k stride 2 + LeakyReLU 0.1 (x·cos(x) with `cos`): halves H and W.

    Padded k//2 on every side, as DeepFaceLab pads its 'SAME' convs: Keras' 'same' pads a
    stride-2 conv unevenly (one row less on top), which shifts every feature by half a pixel
    and would make DFL's weights (util --import-dfl-model) give other faces.
    """

    def __init__(self, filters: int, kernel_size: int = 5, cos: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.cos = int(filters), int(kernel_size), bool(cos)
        self.conv = layers.Conv2D(self.filters, self.kernel_size, strides=2, padding="valid",
                                  name="conv")
        self.pad = self.kernel_size // 2

    def _padded(self, input_shape: tuple) -> tuple:
        n, h, w, c = input_shape
        return (n, None if h is None else h + 2 * self.pad, None if w is None else w + 2 * self.pad, c)

    def build(self, input_shape: tuple) -> None:
        self.conv.build(self._padded(input_shape))

    def call(self, x: Any) -> Any:
        p = self.pad
        return activate(self.conv(ops.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))), self.cos, 0.1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return self.conv.compute_output_shape(self._padded(input_shape))

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "cos": self.cos}


@keras.saving.register_keras_serializable(package="visage")
class Upscale(layers.Layer):
    """Conv k×k to 4·filters + LeakyReLU 0.1 + depth_to_space(2): doubles H and W.

    Sub-pixel upsampling as in DFL: cheaper than a transposed conv and free of its
    checkerboard artefacts.
    """

    def __init__(self, filters: int, kernel_size: int = 3, cos: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.cos = int(filters), int(kernel_size), bool(cos)
        self.conv = layers.Conv2D(self.filters * 4, self.kernel_size, padding="same",
                                  name="conv")
        self.shuffle = DepthToSpace(2, name="depth_to_space")

    def build(self, input_shape: tuple) -> None:
        self.conv.build(input_shape)

    def call(self, x: Any) -> Any:
        return self.shuffle(activate(self.conv(x), self.cos, 0.1))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return self.shuffle.compute_output_shape(self.conv.compute_output_shape(input_shape))

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "cos": self.cos}


@keras.saving.register_keras_serializable(package="visage")
class ResidualBlock(layers.Layer):
    """DFL's residual block: act(x + conv2(act(conv1(x)))), both activations slope 0.2.

    Note the activation after the skip addition (DFL style, unlike pre-activation ResNets).
    """

    def __init__(self, filters: int, kernel_size: int = 3, cos: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.cos = int(filters), int(kernel_size), bool(cos)
        self.conv1 = layers.Conv2D(self.filters, self.kernel_size, padding="same", name="conv1")
        self.conv2 = layers.Conv2D(self.filters, self.kernel_size, padding="same", name="conv2")

    def build(self, input_shape: tuple) -> None:
        if input_shape[-1] != self.filters:
            raise ValueError(f"ResidualBlock({self.filters}) got {input_shape[-1]} channels; "
                             "the skip addition needs equal widths")
        self.conv1.build(input_shape)
        self.conv2.build(self.conv1.compute_output_shape(input_shape))

    def call(self, x: Any) -> Any:
        y = activate(self.conv1(x), self.cos, 0.2)
        return activate(x + self.conv2(y), self.cos, 0.2)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "cos": self.cos}
