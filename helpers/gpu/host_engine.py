"""A stand-in for TensorRT on a GPU machine without it: the engine's device buffers, filled by a
host backend (ONNX Runtime), so the GPU stages run for real around it.

`enqueue` waits for the stream, brings the letterboxed input back, runs the backend and puts its
outputs into the output buffers (so it is not capturable, unlike TensorRT's). With
`recompute=False` it leaves the outputs as they are: the benchmark times pre- and
post-processing around real SCRFD outputs already in device memory.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from helpers.backend import Backend, Closeable, DeviceTensor, TensorInfo


class HostEngine:
    """`DeviceEngine` over `backend`, on a CuPy stream in the device's primary context."""

    def __init__(self, backend: Backend, recompute: bool = True) -> None:
        import cupy

        self.backend = backend
        self.recompute = recompute
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._lock = threading.RLock()
        self._arrays: dict[str, Any] = {}
        self._shape: tuple[int, ...] | None = None  # the input shape the arrays were made for
        self._batch = 0  # the batch of the last device_tensors call
        self._last: tuple[int, ...] | None = None
        self.shape_changes = 0

    @property
    def inputs(self) -> list[TensorInfo]:
        return self.backend.inputs

    @property
    def stream_handle(self) -> int:
        return int(self.stream.ptr)

    def activate(self) -> AbstractContextManager[Any]:
        return nullcontext()  # CuPy works in the primary context, made current by the runtime

    def session(self) -> AbstractContextManager[Any]:
        return self._lock  # one frame at a time: the buffers are shared

    def attach(self, user: Closeable) -> None:
        """Nothing to do: this engine is never closed under its users (CuPy frees its arrays)."""

    def device_tensors(self, input_shape: tuple[int, ...]) -> dict[str, DeviceTensor]:
        """As TensorRT's buffers here: a smaller batch reuses the start of the memory (the
        addresses stay, so graphs captured on them stay valid); anything else reallocates."""
        if not self._fits(input_shape):
            import cupy

            name = self.inputs[0].name
            outputs = self.backend.run({name: np.zeros(input_shape, np.float32)})
            with self.stream:  # non-blocking: uploads on the default stream would not be ordered
                self._arrays = {name: cupy.zeros(input_shape, np.float32)}
                self._arrays.update({k: cupy.asarray(v) for k, v in outputs.items()})
            self._shape = input_shape
        self._batch = input_shape[0]
        if input_shape != self._last:
            self._last = input_shape
            self.shape_changes += 1
        return {
            k: DeviceTensor(int(a.data.ptr), self._view(a).shape, a.dtype) for k, a in self._arrays.items()
        }

    def _view(self, array: Any) -> Any:
        """The current batch's part of an array made for a larger one."""
        assert self._shape is not None
        return array if self._batch == self._shape[0] else array[: self._batch]

    def _fits(self, shape: tuple[int, ...]) -> bool:
        held = self._shape
        if held is None or shape[1:] != held[1:] or shape[0] > held[0]:
            return False
        return shape[0] == held[0] or all(a.shape[0] == held[0] for a in self._arrays.values())

    def enqueue(self) -> None:
        if not self.recompute:
            return
        name = self.inputs[0].name
        blob = self.input()  # waits for the letterbox
        for key, value in self.backend.run({name: blob}).items():
            self._view(self._arrays[key]).set(value, stream=self.stream)

    def input(self) -> np.ndarray:
        """The engine input of the current batch as the letterbox wrote it (waits for the stream)."""
        return self._view(self._arrays[self.inputs[0].name]).get(stream=self.stream)
