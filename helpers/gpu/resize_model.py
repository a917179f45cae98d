"""The GPU letterbox's resize arithmetic in NumPy, to test on a CPU what the kernel computes.

OpenCV's INTER_LINEAR on uint8 (half-pixel centres, edges clamped, also when downscaling)
in fixed point: 11-bit coefficients, a horizontal pass in int32, and the vertical pass of
its SIMD code (`VResizeLinearVec_32s8u`), which is what cv2 runs for almost every pixel. The
kernel in `kernels.py` does exactly these integer steps, so it equals this model bit for bit;
the model equals cv2.resize except for an occasional +-1 (tested in tests/test_gpu_model.py).
"""

from __future__ import annotations

import numpy as np

COEF_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS
COEF_SCALE = 1 << COEF_BITS


def taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(first, second) source index and (first, second) 11-bit weight of every output position."""
    scale = 1.0 / (dst / src)  # OpenCV: inv_scale = (double)dst / src; scale = 1. / inv_scale
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    f = f - s.astype(np.float32)
    clamp = (s < 0) | (s >= src - 1)
    f[clamp] = 0.0
    s = np.clip(s, 0, src - 1)
    w0 = np.rint((np.float32(1.0) - f) * np.float32(COEF_SCALE)).astype(np.int64)
    w1 = np.rint(f * np.float32(COEF_SCALE)).astype(np.int64)
    return s, np.minimum(s + 1, src - 1), w0, w1


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """BGR uint8 (h, w, 3) resized to (height, width, 3) with the kernel's integer arithmetic."""
    x0, x1, a0, a1 = taps(image.shape[1], width)
    y0, y1, b0, b1 = taps(image.shape[0], height)
    src = image.astype(np.int64)
    rows = src[:, x0] * a0[None, :, None] + src[:, x1] * a1[None, :, None]  # horizontal, int32 range
    top, bottom = rows[y0] >> 4, rows[y1] >> 4
    v = ((top * b0[:, None, None]) >> 16) + ((bottom * b1[:, None, None]) >> 16)
    return np.clip((v + 2) >> 2, 0, 255).astype(np.uint8)
