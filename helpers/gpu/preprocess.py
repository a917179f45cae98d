"""Letterbox on the GPU: the uint8 frame goes up (pinned, async), one kernel writes the canvas.

Resize (OpenCV's INTER_LINEAR in fixed point, see `resize_model`), top-left placement, BGR ->
RGB, (x - 127.5) / 128, HWC -> CHW and the padding, in one pass straight into a device float32
canvas: the engine's input buffer. Nothing is allocated per frame once the frame shape is known.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helpers.gpu.kernels import kernel
from helpers.gpu.memory import pinned, to_device
from helpers.letterbox import Letterbox, fit

TILE = (32, 8)


class GpuLetterbox:
    """Pinned staging and device memory for frames of one shape (reallocated when it changes)."""

    def __init__(self) -> None:
        self.staging: np.ndarray | None = None  # page-locked copy of the frame
        self._device: Any = None

    def stage(self, image: np.ndarray) -> np.ndarray:
        """The page-locked buffer for frames of this shape, holding `image` (a decoder may write
        frames straight into `staging` instead: then pass that array and nothing is copied)."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        if self.staging is None or self.staging.shape != image.shape:
            import cupy

            self.staging = pinned(image.shape, np.uint8)
            self._device = cupy.empty(image.shape, np.uint8)
        if image is not self.staging:
            np.copyto(self.staging, image)
        return self.staging

    def enqueue(self, size: tuple[int, int], canvas_ptr: int, stream: int) -> Letterbox:
        """Upload the staged frame and letterbox it into the (1, 3, H, W) float32 canvas at
        `canvas_ptr`, on `stream` (the engine's; also what a CUDA graph captures)."""
        if self.staging is None:
            raise ValueError("stage a frame before enqueueing its letterbox")
        h, w = self.staging.shape[:2]
        box = fit((h, w), size)
        to_device(self.staging, self._device.data.ptr, stream)
        width, height = size
        grid = (-(-width // TILE[0]), -(-height // TILE[1]))
        args = (
            self._device,
            np.int32(w),
            np.int32(h),
            np.uint64(canvas_ptr),
            np.int32(width),
            np.int32(height),
            np.int32(box.new_width),
            np.int32(box.new_height),
            np.float64(1.0 / (box.new_width / w)),  # OpenCV's scale = 1. / (dst / src), in double
            np.float64(1.0 / (box.new_height / h)),
        )
        import cupy

        with cupy.cuda.ExternalStream(stream):
            kernel("letterbox")(grid, TILE, args)
        return box
