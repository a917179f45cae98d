"""Page-locked host array plus device allocation for one tensor, with NaN poisoning.

Async copies need page-locked host memory; TensorRT needs 256-byte aligned device pointers
(cuMemAlloc gives that). `poison()` fills both sides with NaN so an output the engine never
wrote shows up as NaN instead of passing as plausible zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from helpers.cuda.context import CudaContext, pycuda_driver, within
from helpers.cuda.stream import Stream, as_pycuda


class HostDeviceBuffer:
    """Host (page-locked numpy) and device memory of one shape and dtype, made in `ctx`."""

    def __init__(self, shape: Sequence[int], dtype: Any = np.float32, ctx: CudaContext | None = None) -> None:
        drv = pycuda_driver()
        self.ctx = ctx
        with within(ctx):
            self.host: np.ndarray = drv.pagelocked_empty(tuple(shape), np.dtype(dtype))
            self._device: Any = drv.mem_alloc(max(self.host.nbytes, 1))

    @property
    def device_ptr(self) -> int:
        """The device address, for `set_tensor_address`."""
        if self._device is None:
            raise ValueError("HostDeviceBuffer was freed")
        return int(self._device)

    @property
    def nbytes(self) -> int:
        return int(self.host.nbytes)

    def copy_to_device(self, stream: Stream | Any) -> None:
        """Enqueue host -> device on `stream` (returns at once; the host must stay untouched)."""
        pycuda_driver().memcpy_htod_async(self.device_ptr, self.host, as_pycuda(stream))

    def copy_to_host(self, stream: Stream | Any) -> None:
        """Enqueue device -> host on `stream`; read `host` only after the stream synchronized."""
        pycuda_driver().memcpy_dtoh_async(self.host, self.device_ptr, as_pycuda(stream))

    def poison(self, value: float = np.nan, stream: Stream | Any | None = None) -> None:
        """Fill the buffer with `value` (NaN: bit pattern 0x7FC00000 for float32).

        With a stream, only the device side is filled, asynchronously: the per-frame form, since
        the copy back overwrites the host side anyway. Without one, both sides, synchronously.
        """
        drv = pycuda_driver()
        itemsize = self.host.itemsize
        pattern_of = (
            np.full(1, value, self.host.dtype).view(f"u{itemsize}") if itemsize in (1, 2, 4) else None
        )
        if stream is not None and pattern_of is not None and self.host.size:
            memset_async = {1: drv.memset_d8_async, 2: drv.memset_d16_async, 4: drv.memset_d32_async}[
                itemsize
            ]
            memset_async(self.device_ptr, int(pattern_of[0]), self.host.size, as_pycuda(stream))
            return
        self.host.fill(value)
        memset = {1: drv.memset_d8, 2: drv.memset_d16, 4: drv.memset_d32}.get(itemsize)
        with within(self.ctx):
            if memset is not None and pattern_of is not None and self.host.size:
                memset(self.device_ptr, int(pattern_of[0]), self.host.size)
            else:
                drv.memcpy_htod(self.device_ptr, self.host)
            drv.Context.synchronize()

    def free(self) -> None:
        """Release both sides now, inside their context (idempotent)."""
        if self._device is None:
            return
        pinned: Any = self.host.base  # pycuda's page-locked allocation behind the array
        with within(self.ctx):
            self._device.free()
            pinned.free()
        self._device = None
        self.host = np.empty(0, self.host.dtype)

    def __enter__(self) -> HostDeviceBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()
