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
    """Host (page-locked numpy) and device memory of one shape and dtype, made in `ctx`.

    `reshape` reuses the memory for any shape that fits (a smaller batch): the addresses stay,
    so CUDA graphs captured on them stay valid.
    """

    def __init__(self, shape: Sequence[int], dtype: Any = np.float32, ctx: CudaContext | None = None) -> None:
        drv = pycuda_driver()
        self.ctx = ctx
        with within(ctx):
            self.host: np.ndarray = drv.pagelocked_empty(tuple(shape), np.dtype(dtype))
            self._device: Any = drv.mem_alloc(max(self.host.nbytes, 1))
        self._pinned: Any = self.host.base  # pycuda's page-locked allocation behind the array
        self._flat = self.host.reshape(-1)  # the whole allocation, for `reshape`

    def reshape(self, shape: Sequence[int]) -> bool:
        """View the start of this memory as `shape`; False (nothing changed) when it does not fit."""
        count = int(np.prod(tuple(shape)))
        if self._device is None or count > self._flat.size:
            return False
        self.host = self._flat[:count].reshape(tuple(shape))
        return True

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
        the copy back overwrites the host side anyway. Without one, both sides, and it returns
        once done (on a stream of its own: never a wait on the whole context).
        """
        if stream is None:
            self.host.fill(value)
            own = Stream(self.ctx)
            try:
                with within(self.ctx):
                    self._fill_device(value, own)
                own.synchronize()
            finally:
                own.close()
            return
        self._fill_device(value, stream)

    def _fill_device(self, value: float, stream: Stream | Any) -> None:
        drv = pycuda_driver()
        if not self.host.size:
            return
        itemsize = self.host.itemsize
        if itemsize in (1, 2, 4):
            pattern = int(np.full(1, value, self.host.dtype).view(f"u{itemsize}")[0])
            memset = {1: drv.memset_d8_async, 2: drv.memset_d16_async, 4: drv.memset_d32_async}[itemsize]
            memset(self.device_ptr, pattern, self.host.size, as_pycuda(stream))
        else:  # 8-byte types: the host side, filled, goes up (leave it alone until the stream ran)
            self.host.fill(value)
            drv.memcpy_htod_async(self.device_ptr, self.host, as_pycuda(stream))

    def free(self) -> None:
        """Release both sides now, inside their context (idempotent)."""
        if self._device is None:
            return
        with within(self.ctx):
            self._device.free()
            self._pinned.free()
        self._device = None
        self.host = self._flat = np.empty(0, self.host.dtype)

    def __enter__(self) -> HostDeviceBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()
