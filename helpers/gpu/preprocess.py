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
    """Pinned staging and device memory for frames of one shape (reallocated when it changes).

    Everything goes on `stream` (a CuPy stream object: the engine's, non-blocking), allocations
    included, so CuPy's pool never hands this memory to other streams' work while ours runs.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.staging: np.ndarray | None = None  # page-locked copy of the frame
        self._device: Any = None

    @property
    def addresses(self) -> tuple[int, int]:
        """(staging, device frame) addresses: a captured graph froze both."""
        if self.staging is None:
            return 0, 0
        return self.staging.ctypes.data, int(self._device.data.ptr)

    def buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        """The page-locked frame buffer for frames of `shape` (H, W, 3), made once per shape.

        Capture or decode frames straight into it (`cv2.VideoCapture.read(buffer)`) and pass it
        to `stage`: nothing is copied. From any other array, `stage` copies into it first; for a
        1080p frame that host copy costs more than all the GPU work (reports/gpu_prepost.txt).
        """
        if len(shape) != 3 or shape[2] != 3:
            raise ValueError(f"expected a BGR uint8 (H, W, 3) frame shape, got {shape}")
        if self.staging is None or self.staging.shape != tuple(shape):
            import cupy

            self.staging = pinned(tuple(shape), np.uint8)
            with self.stream:
                self._device = cupy.empty(tuple(shape), np.uint8)
        return self.staging

    def stage(self, image: np.ndarray) -> np.ndarray:
        """The page-locked buffer for frames of this shape, holding `image`."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        staging = self.buffer(image.shape)
        if image is not staging:
            np.copyto(staging, image)
        return staging

    def enqueue(self, size: tuple[int, int], canvas_ptr: int) -> Letterbox:
        """Upload the staged frame and letterbox it into the (1, 3, H, W) float32 canvas at
        `canvas_ptr`, on the stream (the engine's; also what a CUDA graph captures)."""
        if self.staging is None:
            raise ValueError("stage a frame before enqueueing its letterbox")
        h, w = self.staging.shape[:2]
        box = fit((h, w), size)
        to_device(self.staging, self._device.data.ptr, self.stream.ptr)
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
        with self.stream:
            kernel("letterbox")(grid, TILE, args)
        return box
