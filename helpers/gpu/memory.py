"""CuPy views of memory CuPy does not own, and the few raw copies the GPU stages enqueue.

The engine's buffers belong to TensorRT's backend (pycuda allocations in the primary context,
which is also CuPy's): CuPy only borrows them, through UnownedMemory, and never frees them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from helpers.backend import DeviceTensor


def device_array(tensor: DeviceTensor, owner: object) -> Any:
    """A cupy array over an engine tensor's device memory; `owner` keeps that memory alive."""
    import cupy

    nbytes = int(np.prod(tensor.shape)) * np.dtype(tensor.dtype).itemsize
    memory = cupy.cuda.UnownedMemory(tensor.ptr, nbytes, owner)
    return cupy.ndarray(tensor.shape, tensor.dtype, cupy.cuda.MemoryPointer(memory, 0))


def to_device(host: np.ndarray, device_ptr: int, stream: int) -> None:
    """Enqueue host -> device of all of `host` (page-locked, so truly asynchronous) on `stream`."""
    import cupy

    rt = cupy.cuda.runtime
    rt.memcpyAsync(device_ptr, host.ctypes.data, host.nbytes, rt.memcpyHostToDevice, stream)


def to_host(device_ptr: int, host: np.ndarray, nbytes: int, stream: int) -> None:
    """Enqueue device -> host of `nbytes` into page-locked `host` on `stream`; read after a sync."""
    import cupy

    rt = cupy.cuda.runtime
    rt.memcpyAsync(host.ctypes.data, device_ptr, nbytes, rt.memcpyDeviceToHost, stream)


def pinned(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A page-locked numpy array (CuPy's pinned pool), for async copies."""
    import cupyx

    return cupyx.empty_pinned(shape, dtype)


def external_stream(handle: int) -> Any:
    """CuPy's view of a stream it does not own: the engine's, made by pycuda in its context.

    Made once per GpuStages, never per frame: `catch_warnings` changes process-wide state and is
    not thread-safe. CuPy 14 deprecates `ExternalStream` for `Stream.from_external`, which takes
    objects that speak the CUDA stream protocol rather than a raw handle; ExternalStream still
    works on every CuPy the extras allow, so its warning is silenced here.
    """
    import cupy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return cupy.cuda.ExternalStream(handle)
