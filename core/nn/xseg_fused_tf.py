"""XSeg's FRN + TLU and BlurPool's gradient as faster TensorFlow kernels (the same maths).

On the CPU, TensorFlow runs FRN + TLU written in keras.ops as about ten separate passes over
each activation forward and some twenty backward (square, mean, rsqrt, multiplies, the
maximum's two selects, the broadcast gradients' sums, casts): in XSeg at 256 px, batch 4,
bf16, they took about half of the training step. Here the forward and a hand-written
backward are each one XLA-compiled function (a reduction and an elementwise pass); the
backward recomputes the normalised input from x instead of keeping it, and gives FRN's learned
epsilon its gradient too.

BlurPool's forward stays TensorFlow's depthwise convolution; its gradient, which TensorFlow
computes slowly in bf16 (about 14x the fp32 time), is the same transposed depthwise
convolution run in float32. (XLA on the CPU is slow at bf16 arithmetic, so every XLA
kernel here computes in float32 and casts at its ends.) The convolutions stay in
TensorFlow's oneDNN kernels (AMX in bf16), faster than XLA's.

The results equal the keras.ops code in core/nn/xseg_archi.py to float rounding
(tests/models/test_xseg_model.py compares logits and gradients on real faces).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def _normalised(x, gamma, beta, eps):
    x32 = tf.cast(x, tf.float32)
    r = tf.math.rsqrt(tf.reduce_mean(tf.square(x32), axis=(1, 2), keepdims=True) + tf.abs(eps))
    xn = x32 * r
    return xn, r, xn * gamma + beta


@tf.function(jit_compile=True)
def _frn_tlu_forward(x, gamma, beta, eps, tau):
    _, _, z = _normalised(x, gamma, beta, eps)
    return tf.cast(tf.maximum(z, tau), x.dtype)


@tf.function(jit_compile=True)
def _frn_tlu_backward(dy, x, gamma, beta, eps, tau):
    xn, r, z = _normalised(x, gamma, beta, eps)
    dy = tf.cast(dy, tf.float32)
    through = z >= tau                  # the side TensorFlow's Maximum gradient picks on a tie
    dz = tf.where(through, dy, 0.0)
    dtau = tf.reduce_sum(dy - dz, axis=(0, 1, 2))
    dgamma = tf.reduce_sum(dz * xn, axis=(0, 1, 2))
    dbeta = tf.reduce_sum(dz, axis=(0, 1, 2))
    dxn = dz * gamma
    dxn_xn = tf.reduce_mean(dxn * xn, axis=(1, 2), keepdims=True)
    dx = r * (dxn - xn * dxn_xn)
    # d r / d|eps| = -r^3 / 2 and dL/dr = sum_hw(dxn * x) = HW * dxn_xn / r, per sample and channel
    hw = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
    deps = tf.reshape(-0.5 * hw * tf.reduce_sum(tf.square(r) * dxn_xn), (1,)) * tf.sign(eps)
    return tf.cast(dx, x.dtype), dgamma, dbeta, deps, dtau


def frn_tlu(x, gamma, beta, eps, tau):
    """max(gamma * x / sqrt(mean_hw(x^2) + |eps|) + beta, tau) per channel of NHWC `x`; float32 parameters
    (`eps` of shape (1,), learned, as DeepFaceLab's FRN)."""

    @tf.custom_gradient
    def f(x, gamma, beta, eps, tau):
        def grad(dy):
            return _frn_tlu_backward(dy, x, gamma, beta, eps, tau)
        return _frn_tlu_forward(x, gamma, beta, eps, tau), grad
    return f(x, *(tf.cast(v, tf.float32) for v in (gamma, beta, eps, tau)))


def _blur_kernels(kernel2d: np.ndarray, pad: tuple[int, int]):
    k = kernel2d[:, :, None, None]

    def forward(x):
        kernel = tf.cast(np.tile(k, (1, 1, x.shape[-1], 1)), x.dtype)
        x = tf.pad(x, ((0, 0), pad, pad, (0, 0)))
        return tf.nn.depthwise_conv2d(x, kernel, (1, 2, 2, 1), "VALID")

    @tf.custom_gradient
    def blur(x):
        def grad(dy):
            n, h, w, ch = x.shape
            kernel = tf.constant(np.tile(k, (1, 1, ch, 1)), tf.float32)
            padded = tf.stack([tf.shape(x)[0], h + pad[0] + pad[1], w + pad[0] + pad[1], ch])
            dx = tf.nn.depthwise_conv2d_backprop_input(padded, kernel, tf.cast(dy, tf.float32), (1, 2, 2, 1), "VALID")
            return tf.cast(dx[:, pad[0]:pad[0] + h, pad[0]:pad[0] + w], x.dtype)
        return forward(x), grad
    return blur


_BLUR_KERNELS: dict = {}        # one kernel per (filter size, padding)


def blur_pool(x, kernel2d: np.ndarray, pad: tuple[int, int]):
    """BlurPool of NHWC `x` with the normalised binomial `kernel2d`, zero padding `pad` each side, stride 2."""
    key = (kernel2d.shape[0], tuple(pad))
    if key not in _BLUR_KERNELS:
        _BLUR_KERNELS[key] = _blur_kernels(kernel2d, key[1])
    return _BLUR_KERNELS[key](x)
