"""Random hue/saturation/value jitter (DeepFaceLab's `random_hsv_power`).

Applied to the network input only, it stops the model from leaning on the exact skin tone
of the src set, which makes colour transfer in the merger less brittle.
"""
from __future__ import annotations

import cv2
import numpy as np


def random_hsv_shift(img: np.ndarray, power: float, rng: np.random.Generator) -> np.ndarray:
    """float32 BGR [0, 1] image with hue turned by up to ±180°·power and saturation and
    value moved by up to ±0.5·power (one random draw per image, not per pixel)."""
    if power <= 0:
        return img
    hsv = cv2.cvtColor(np.clip(img, 0, 1).astype(np.float32), cv2.COLOR_BGR2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-180.0, 180.0) * power) % 360.0
    hsv[..., 1] = np.clip(hsv[..., 1] + rng.uniform(-0.5, 0.5) * power, 0.0, 1.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + rng.uniform(-0.5, 0.5) * power, 0.0, 1.0)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), 0.0, 1.0)
