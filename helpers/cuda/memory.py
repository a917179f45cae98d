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

    def poison(self, value: float = np.nan) -> None:
        """Fill host and device with `value` (NaN: bit pattern 0x7FC00000 for float32)."""
        drv = pycuda_driver()
        self.host.fill(value)
        itemsize = self.host.itemsize
        memset = {1: drv.memset_d8, 2: drv.memset_d16, 4: drv.memset_d32}.get(itemsize)
        with within(self.ctx):
            if memset is not None and self.host.size:
                pattern = int(self.host.reshape(-1)[:1].view(f"u{itemsize}")[0])
                memset(self.device_ptr, pattern, self.host.size)
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
