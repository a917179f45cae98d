"""Letterbox on the GPU: the uint8 frame goes up (pinned, async), one kernel writes the canvas.

Resize (OpenCV's INTER_LINEAR in fixed point, see `resize_model`), top-left placement, BGR ->
RGB, (x - 127.5) / 128, HWC -> CHW and the padding, in one pass straight into a device float32
canvas: the engine's input buffer. A batch is one launch: each image, of any size, goes into its
own slot of the (N, 3, H, W) canvas. Nothing is allocated per frame once the shapes are known.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helpers.errors import UserError
from helpers.gpu.kernels import SLOT_FIELDS, kernel
from helpers.gpu.memory import pinned, to_device
from helpers.letterbox import Letterbox, fit

TILE = (32, 8)
MAX_GRID_Z = 65535  # CUDA's largest grid z: one z-slice of the launch per image


class GpuLetterbox:
    """Pinned staging and device memory per batch slot, for frames of one shape each (a slot's
    are reallocated when its shape changes), and the slot table the one letterbox launch reads.

    Everything goes on `stream` (a CuPy stream object: the engine's, non-blocking), allocations
    included, so CuPy's pool never hands this memory to other streams' work while ours runs.
    The table is filled on the host per batch and copied up on the stream from pinned memory:
    its addresses never change, so a CUDA graph's copy node picks up each batch's table.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._staging: list[np.ndarray] = []  # page-locked copy of each slot's frame
        self._device: list[Any] = []
        self._host_table = np.empty((0, SLOT_FIELDS), np.uint64)
        self._table: Any = None

    def addresses(self, count: int) -> tuple:
        """What a captured graph of `count` slots froze: each slot's shape, staging and device
        frame addresses, and the table's."""
        slots = tuple(
            (s.shape, s.ctypes.data, int(d.data.ptr))
            for s, d in zip(self._staging[:count], self._device[:count], strict=True)
        )
        return (
            slots,
            self._host_table.ctypes.data,
            int(self._table.data.ptr) if self._table is not None else 0,
        )

    def buffer(self, shape: tuple[int, ...], slot: int = 0) -> np.ndarray:
        """The page-locked frame buffer of batch slot `slot` for frames of `shape` (H, W, 3).

        Capture or decode frames straight into it (`cv2.VideoCapture.read(buffer)`) and pass it
        to `stage`: nothing is copied. From any other array, `stage` copies into it first; for a
        1080p frame that host copy costs more than all the GPU work (reports/gpu_prepost.txt).
        """
        if len(shape) != 3 or shape[2] != 3:
            raise ValueError(f"expected a BGR uint8 (H, W, 3) frame shape, got {shape}")
        while len(self._staging) <= slot:
            self._staging.append(np.empty((0, 0, 3), np.uint8))
            self._device.append(None)
        if self._staging[slot].shape != tuple(shape):
            import cupy

            self._staging[slot] = pinned(tuple(shape), np.uint8)
            with self.stream:
                self._device[slot] = cupy.empty(tuple(shape), np.uint8)
        return self._staging[slot]

    def stage(self, image: np.ndarray, slot: int = 0) -> np.ndarray:
        """Slot `slot`'s page-locked buffer for frames of this shape, holding `image`."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        staging = self.buffer(image.shape, slot)
        if image is not staging:
            np.copyto(staging, image)
        return staging

    def enqueue(self, size: tuple[int, int], canvas_ptr: int, count: int = 1) -> list[Letterbox]:
        """Upload the frames staged in slots 0..count-1 (one copy each) and letterbox them, in one
        launch, into the (count, 3, H, W) float32 canvas at `canvas_ptr`, on the stream (the
        engine's; also what a CUDA graph captures)."""
        boxes = self.prepare(size, count)
        for staging, device in zip(self._staging[:count], self._device[:count], strict=True):
            to_device(staging, device.data.ptr, self.stream.ptr)
        to_device(self._host_table[:count], self._table.data.ptr, self.stream.ptr)
        width, height = size
        grid = (-(-width // TILE[0]), -(-height // TILE[1]), count)
        with self.stream:
            kernel("letterbox")(
                grid, TILE, (self._table, np.uint64(canvas_ptr), np.int32(width), np.int32(height))
            )
        return boxes

    def prepare(self, size: tuple[int, int], count: int) -> list[Letterbox]:
        """Fill the host slot table for this batch; before a graph replay too, since the graph's
        copy node reads whatever the table holds then. The previous batch's copy must have run
        (GpuStages waits for each batch before the next)."""
        if count < 1 or len(self._staging) < count or not all(s.size for s in self._staging[:count]):
            raise ValueError(f"stage a frame in each of the {count} slots before enqueueing their letterbox")
        if count > MAX_GRID_Z:
            raise UserError(
                f"a batch of {count} images is more than one letterbox launch takes ({MAX_GRID_Z})"
            )
        table = self._slot_table(count)
        boxes = []
        for i, (staging, device) in enumerate(zip(self._staging[:count], self._device[:count], strict=True)):
            h, w = staging.shape[:2]
            box = fit((h, w), size)
            boxes.append(box)
            # OpenCV's scale = 1. / (dst / src), in double
            scales = np.array([1.0 / (box.new_width / w), 1.0 / (box.new_height / h)], np.float64)
            table[i, :5] = (device.data.ptr, w, h, box.new_width, box.new_height)
            table[i, 5:7] = scales.view(np.uint64)
        return boxes

    def _slot_table(self, count: int) -> np.ndarray:
        """The pinned host table, grown (with its device copy) to hold `count` slots."""
        if len(self._host_table) < count:
            import cupy

            self._host_table = pinned((count, SLOT_FIELDS), np.uint64)
            self._host_table.fill(0)
            with self.stream:
                self._table = cupy.zeros((count, SLOT_FIELDS), np.uint64)
        return self._host_table
