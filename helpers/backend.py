"""The one interface every inference engine sits behind.

A backend takes named inputs and returns named outputs, as Polygraphy's
runners do; detection, comparison and benchmarks never care which engine ran.
Outputs are keyed by name because engines may reorder them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    """A declared input or output: dims are ints, or strings for dynamic axes."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


class Backend(Protocol):
    """Runs a model: named inputs in, named outputs out."""

    name: str

    @property
    def inputs(self) -> list[TensorInfo]: ...

    @property
    def outputs(self) -> list[TensorInfo]: ...

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@runtime_checkable
class PreparedInput(Protocol):
    """A backend whose input can be written in place (TensorRT: the pinned host input buffer).

    `with input_array(name, shape) as array:` sizes the engine for `shape` and gives the array
    to fill; `run_prepared()` inside the block then runs on it without copying a separate input
    in. The block keeps other threads' runs (which reuse the array) and `close` out.
    """

    def input_array(self, name: str, shape: tuple[int, ...]) -> AbstractContextManager[np.ndarray]: ...

    def run_prepared(self) -> dict[str, np.ndarray]: ...


class Closeable(Protocol):
    """What pools and engines close for their users (GPU stages, backends, engines)."""

    def close(self) -> None: ...


class DeviceTensor(NamedTuple):
    """An engine I/O tensor in device memory: address, concrete shape, dtype."""

    ptr: int
    shape: tuple[int, ...]
    dtype: np.dtype


@runtime_checkable
class DeviceEngine(Protocol):
    """An engine that pre- and post-processing on the GPU can run around, on its stream.

    A frame runs inside one `session()`: the engine's lock held (its buffers are shared with
    whoever else drives it), checked open, its CUDA context current. Work goes on the stream
    `stream_handle`; `enqueue()` only enqueues inference there (no copies, no wait), so it can
    be captured in a CUDA graph together with kernels before and after it. `attach(user)`: the
    engine closes `user` (its graph froze the engine's addresses) before freeing anything.
    """

    @property
    def inputs(self) -> list[TensorInfo]: ...

    @property
    def stream_handle(self) -> int: ...

    @property
    def shape_changes(self) -> int:
        """How often the engine's input shapes changed: a graph captured before the last change
        is stale (TensorRT wants a new capture after a shape change)."""
        ...

    def activate(self) -> AbstractContextManager[Any]: ...

    def session(self) -> AbstractContextManager[Any]: ...

    def attach(self, user: Closeable) -> None: ...

    def device_tensors(self, input_shape: tuple[int, ...]) -> dict[str, DeviceTensor]: ...

    def enqueue(self) -> None: ...


def static_size(info: TensorInfo) -> tuple[int, int] | None:
    """(width, height) of an NCHW image input whose spatial dims are fixed."""
    if len(info.shape) != 4:
        return None
    h, w = info.shape[2], info.shape[3]
    return (w, h) if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0 else None
