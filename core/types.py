"""The named array types shared by core/, models/ and samplelib/: one declaration each.

They are plain aliases of np.ndarray (no runtime check): the name says in a signature what
shape, dtype and range an array has, as FaceFusion's VisionFrame / FaceLandmark68 do.
"""
from __future__ import annotations

import numpy as np

Frame = np.ndarray         # (H, W, 3) uint8 BGR: a video frame as read from disk
Image = np.ndarray         # (H, W, 3) float32 BGR in [0, 1]
Face = np.ndarray          # (res, res, 3) float32 BGR in [0, 1]: a model-sized face crop
Mask = np.ndarray          # (H, W) or (H, W, 1) float32 in [0, 1]
Landmarks68 = np.ndarray   # (68, 2) float32, x/y in pixels (iBUG order)
Affine = np.ndarray        # (2, 3) float32: cv2.warpAffine's matrix
