"""SAEHD/Quick96 losses and mask helpers in `keras.ops`, all computed in float32.

Every loss returns one value per sample (shape [batch]), as DeepFaceLab reduces over
pixels and channels but not over the batch: the trainer averages and reports src and dst
separately. Images are NHWC in [0, 1]; masks NHWC with one channel.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops

SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _f32(x: Any) -> Any:
    return ops.cast(x, "float32")


def _gaussian_1d(size: int, sigma: float) -> np.ndarray:
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(coords ** 2) / (2.0 * sigma ** 2))
    return g / g.sum()


def _depthwise_filter(x: Any, kernel_1d: np.ndarray, padding: str) -> Any:
    """Separable 2-D filter of every channel with the same 1-D kernel (two depthwise convs).

    Two 1-D passes cost 2k instead of k² multiplies per pixel: at res 256 the DSSIM window
    is 22 wide, which makes the difference noticeable in every step.
    """
    channels = int(x.shape[-1])
    k = np.asarray(kernel_1d, np.float32)
    kh = np.tile(k.reshape(-1, 1, 1, 1), (1, 1, channels, 1))
    kw = np.tile(k.reshape(1, -1, 1, 1), (1, 1, channels, 1))
    x = ops.depthwise_conv(x, ops.convert_to_tensor(kh), padding=padding)
    return ops.depthwise_conv(x, ops.convert_to_tensor(kw), padding=padding)


def dssim(y_true: Any, y_pred: Any, filter_size: int, max_val: float = 1.0) -> Any:
    """Structural dissimilarity (1 - SSIM) / 2 per sample, shape [batch].

    SSIM uses a Gaussian window of `filter_size` (σ 1.5) with 'valid' padding, k1 0.01,
    k2 0.03, is averaged over positions and then over channels, as DeepFaceLab does. Even
    sizes are fine (the window is centred between pixels). DSSIM of identical images is 0.
    """
    y_true, y_pred = _f32(y_true), _f32(y_pred)
    size = int(filter_size)
    height, width = y_true.shape[1], y_true.shape[2]
    if size < 1 or (height is not None and size > min(height, width)):
        raise ValueError(f"DSSIM filter size {size} does not fit {height}x{width} images")
    kernel = _gaussian_1d(size, SSIM_SIGMA)

    def blur(x: Any) -> Any:
        return _depthwise_filter(x, kernel, "valid")

    c1, c2 = (SSIM_K1 * max_val) ** 2, (SSIM_K2 * max_val) ** 2
    mu_t, mu_p = blur(y_true), blur(y_pred)
    var_t = blur(y_true * y_true) - mu_t * mu_t
    var_p = blur(y_pred * y_pred) - mu_p * mu_p
    cov = blur(y_true * y_pred) - mu_t * mu_p
    luminance = (2.0 * mu_t * mu_p + c1) / (mu_t * mu_t + mu_p * mu_p + c1)
    contrast_structure = (2.0 * cov + c2) / (var_t + var_p + c2)
    ssim = ops.mean(luminance * contrast_structure, axis=(1, 2, 3))
    return (1.0 - ssim) / 2.0


def mse(y_true: Any, y_pred: Any) -> Any:
    """Mean squared error per sample, shape [batch]."""
    return ops.mean(ops.square(_f32(y_true) - _f32(y_pred)), axis=(1, 2, 3))


def mae(y_true: Any, y_pred: Any) -> Any:
    """Mean absolute error per sample, shape [batch]."""
    return ops.mean(ops.abs(_f32(y_true) - _f32(y_pred)), axis=(1, 2, 3))


def masked(y: Any, mask: Any) -> Any:
    """y·mask in float32: masked training compares only the face region."""
    return _f32(y) * _f32(mask)


def gaussian_blur(x: Any, sigma: float) -> Any:
    """Gaussian blur of an NHWC tensor, DeepFaceLab's way.

    Kernel size max(3, int(4σ)) made odd, zero padding ('same'): borders darken slightly,
    which for masks means the face edge near the crop border fades, as in DFL.
    """
    size = max(3, int(4 * float(sigma)))
    size += 1 - size % 2
    return _depthwise_filter(_f32(x), _gaussian_1d(size, float(sigma)), "same")


def blur_mask(mask: Any, sigma: float) -> Any:
    """Gaussian blur of a mask (see gaussian_blur); kept separate for readability at call sites."""
    return gaussian_blur(mask, sigma)


def soften_mask(mask: Any, resolution: int) -> Any:
    """DFL's training-target mask: blur σ=max(1, res//32), clip to [0, 0.5], ×2.

    Inside the face the mask stays 1; the edge becomes a ramp to 0 just outside, so the
    loss covers the seam the merger will blend. Output stays in [0, 1].
    """
    blurred = blur_mask(mask, max(1, int(resolution) // 32))
    return ops.clip(blurred, 0.0, 0.5) * 2.0


def blur_out_mask(image: Any, mask: Any, resolution: int) -> Any:
    """Blur the target outside the mask (σ = res/128), keep it sharp inside (blur_out_mask).

    Background pixels become a normalised blur of the background only,
    blur(image·(1-m)) / blur(1-m), so face colours do not bleed outwards and the model is
    not asked to reproduce background detail it cannot see consistently.
    """
    image, mask = _f32(image), _f32(mask)
    sigma = float(resolution) / 128.0
    background = gaussian_blur(image * (1.0 - mask), sigma)
    weight = 1.0 - gaussian_blur(mask, sigma)
    weight = ops.where(weight <= 0.0, ops.ones_like(weight), weight)
    return image * mask + (background / weight) * (1.0 - mask)


def dssim_filter_sizes(resolution: int) -> tuple[int, ...]:
    """DSSIM window(s) for a resolution: int(res/11.6), plus int(res/23.2) at res ≥ 256."""
    sizes = (max(1, int(resolution / 11.6)),)
    if resolution >= 256:
        sizes += (max(1, int(resolution / 23.2)),)
    return sizes


def reconstruction_loss(target: Any, pred: Any, resolution: int) -> Any:
    """SAEHD reconstruction loss per sample.

    res < 256: 10·DSSIM(res/11.6); res ≥ 256: 5·DSSIM(res/11.6) + 5·DSSIM(res/23.2);
    plus 10·MSE in both cases. The small second window keeps fine detail sharp at high
    resolution, where the large window alone would only see coarse structure.
    """
    sizes = dssim_filter_sizes(resolution)
    weight = 10.0 / len(sizes)
    loss = 10.0 * mse(target, pred)
    for size in sizes:
        loss = loss + weight * dssim(target, pred, size)
    return loss


def mask_loss(target_mask: Any, pred_mask: Any) -> Any:
    """10·MSE between the target mask and the learned mask, per sample."""
    return 10.0 * mse(target_mask, pred_mask)


def eyes_mouth_loss(target: Any, pred: Any, eyes_mouth_mask: Any) -> Any:
    """eyes_mouth_prio: 300·MAE inside the eyes-and-mouth mask, per sample."""
    return 300.0 * mae(masked(target, eyes_mouth_mask), masked(pred, eyes_mouth_mask))


def style_loss(target: Any, style: Any, blur_sigma: float, weight: float) -> Any:
    """DeepFaceLab's style loss per sample: squared differences of per-channel means and
    standard deviations (over H and W, after a Gaussian blur of σ `blur_sigma`), summed,
    × weight / channels. It matches colour and contrast, not structure."""
    target, style = _f32(target), _f32(style)
    if blur_sigma > 0:
        target, style = gaussian_blur(target, blur_sigma), gaussian_blur(style, blur_sigma)

    def moments(x: Any) -> tuple[Any, Any]:
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        return mean, ops.sqrt(ops.mean(ops.square(x - mean), axis=(1, 2), keepdims=True) + 1e-5)

    (t_mean, t_std), (s_mean, s_std) = moments(target), moments(style)
    loss = ops.sum(ops.square(t_mean - s_mean), axis=(1, 2, 3)) + ops.sum(ops.square(t_std - s_std), axis=(1, 2, 3))
    return loss * (float(weight) / int(target.shape[-1]))


def total_variation_mse(images: Any) -> Any:
    """Sum of squared differences between neighbouring pixels, per sample: with GAN on it
    damps the isolated bright dots a discriminator can provoke."""
    images = _f32(images)
    dy = images[:, 1:, :, :] - images[:, :-1, :, :]
    dx = images[:, :, 1:, :] - images[:, :, :-1, :]
    return ops.sum(ops.square(dy), axis=(1, 2, 3)) + ops.sum(ops.square(dx), axis=(1, 2, 3))
