"""TensorRT behind the backend interface: named arrays in, named arrays out.

Built from an ONNX file (through the engine cache) or loaded from a plan. Engine, execution
context, stream and buffers all live in the device's primary CUDA context, which every call
makes current, so the backend works from any thread and next to torch, cupy or ONNX Runtime.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from helpers.backend import DeviceTensor, TensorInfo
from helpers.errors import UserError
from helpers.layout import Layout
from helpers.trt.bindings import IOBuffers, match_inputs
from helpers.trt.build import DEFAULT_CACHE_DIR, BuildOptions
from helpers.trt.engine import LoadedEngine, deserialize, load_plan
from helpers.trt.runner import Runner, check_method, enqueue_failure
from helpers.trt.runtime import (
    EMULATOR,
    describe_tensorrt,
    device_identity,
    is_emulator,
    log_book,
    tensorrt_status,
)
from helpers.trt.specs import check_in_profile

__all__ = ["LoadedEngine", "TensorRTBackend", "deserialize", "load_plan", "tensorrt_available"]

if TYPE_CHECKING:
    import tensorrt as trt

    from helpers.cuda.stream import Stream


def tensorrt_available() -> tuple[bool, str]:
    """Whether this machine can run the TensorRT backend (real TensorRT, pycuda and a GPU), and why."""
    ok, detail = tensorrt_status()
    if not ok:
        return False, detail
    if importlib.util.find_spec("pycuda") is None:
        return False, "pycuda is not installed (the TensorRT backend's buffers use it): pip install pycuda"
    try:
        name, capability = device_identity(0)
    except UserError as exc:
        return False, f"TensorRT {detail} is installed but no CUDA GPU is usable: {exc}"
    return True, f"{describe_tensorrt(detail)} on {name} (sm {capability})"


def _open_lane(engine: LoadedEngine) -> tuple[trt.IExecutionContext, Stream]:
    """An execution context and stream on `engine`, made in its context.

    A function of its own so that, when it fails, its frame (holding the TensorRT objects) is
    finished and `drop_frames` can free them inside the context.
    """
    with engine.cuda.activate():
        return engine.open_lane()


class TensorRTBackend:
    """An engine with one execution context; `method` is "v3" (default), "v2" or "graph".

    `model` is an ONNX file or plan (the backend loads, owns and closes its engine), or a
    `LoadedEngine` that several backends share: each is then one lane of that engine, with its
    own execution context, stream and buffers, and closing it leaves the engine to its owner.
    """

    name = "tensorrt"

    def __init__(
        self,
        model: str | Path | LoadedEngine,
        method: str = "v3",
        options: BuildOptions | None = None,
        cache_dir: str | Path = DEFAULT_CACHE_DIR,
        poison: bool = True,
        timed: bool = False,
        progress: bool = True,
    ):
        from helpers.cuda.context import drop_frames

        self.method = check_method(method)
        self.poison = poison
        self._owns = not isinstance(model, LoadedEngine)
        self._loaded = (
            model if isinstance(model, LoadedEngine) else LoadedEngine(model, options, cache_dir, progress)
        )
        self.cuda, self.engine, self.specs = self._loaded.cuda, self._loaded.engine, self._loaded.specs
        try:
            self.context, self.stream = _open_lane(self._loaded)
        except BaseException as exc:
            with self.cuda.activate():  # TensorRT objects held by the traceback go in their context
                drop_frames(exc)
            if self._owns:
                self._loaded.close()
            raise
        if is_emulator():  # results made under trtemu carry its name wherever they go
            self.name = EMULATOR
        self.buffers = IOBuffers(self.context, self.specs, self.cuda)
        self.runner = Runner(self.context, self.buffers, self.stream, self.cuda, timed)
        self._lock = threading.RLock()  # one context, one set of buffers: one run at a time
        self._closed = False

    @property
    def inputs(self) -> list[TensorInfo]:
        return [s.info() for s in self.specs if s.is_input]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [s.info() for s in self.specs if not s.is_input]

    @property
    def timings(self) -> dict[str, float]:
        """CUDA-event ms of the last run per stage (h2d, infer, d2h, total) when built with timed=True."""
        return dict(self.runner.timings)

    def _check_open(self) -> None:
        if self._closed:
            raise UserError("this TensorRTBackend was closed; create a new one")

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Safe from any thread; calls from several threads are serialised."""
        self._check_open()
        shapes = match_inputs(self.specs, inputs)
        with self._lock:
            self._check_open()  # closed by another thread while this one waited
            with self.cuda.activate():
                self.buffers.set_shapes(shapes)
                self.buffers.load(inputs)
            return self.run_prepared()

    # The seams for pre- and post-processing that skip the copies (see helpers.backend's
    # PreparedInput and DeviceEngine).

    @contextmanager
    def input_array(self, name: str, shape: tuple[int, ...]) -> Iterator[np.ndarray]:
        """The pinned host buffer of input `name`, sized for `shape`: write the input there, then
        call `run_prepared()` inside the block.

        The run lock is held for the whole block, so no other thread's `run` overwrites the
        buffer, nor `close` frees it, between the write and the run.
        """
        self._check_open()
        shapes = self._single_input(name, shape)
        with self._lock:
            self._check_open()  # closed by another thread while this one waited
            with self.cuda.activate():
                self.buffers.set_shapes(shapes)
            yield self.buffers.buffers[name].host

    def run_prepared(self) -> dict[str, np.ndarray]:
        """`run` on what was written into `input_array`, without loading a separate array."""
        self._check_open()
        with self._lock:  # re-entered from `run` and inside `input_array`'s block
            self._check_open()
            if self.poison:
                with self.cuda.activate():
                    self.buffers.poison_outputs(self.stream)
            self.runner.run(self.method)
            return self.buffers.read_outputs()

    @property
    def stream_handle(self) -> int:
        return self.stream.handle

    def activate(self) -> AbstractContextManager[Any]:
        """The engine's CUDA context, current for the block."""
        return self.cuda.activate()

    def device_tensors(self, input_shape: tuple[int, ...]) -> dict[str, DeviceTensor]:
        """Device address, shape and dtype of every I/O tensor at this input shape (call inside
        `activate()`); the addresses change only when the shape does."""
        self._check_open()
        self.buffers.set_shapes(self._single_input(self.inputs[0].name, input_shape))
        return {
            name: DeviceTensor(b.device_ptr, self.buffers.shapes[name], b.host.dtype)
            for name, b in self.buffers.buffers.items()
        }

    def enqueue(self) -> None:
        """execute_async_v3 on the engine's stream on the device buffers as they are: no copies, no
        wait (call inside `activate()`); capturable in a CUDA graph."""
        log_book().clear()
        if not self.context.execute_async_v3(self.stream.handle):
            raise enqueue_failure("execute_async_v3", log_book().last_error("TensorRT logged no error"))

    def _single_input(self, name: str, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        inputs = [s for s in self.specs if s.is_input]
        if len(inputs) != 1 or inputs[0].name != name:
            raise UserError(f"the engine takes inputs {[s.name for s in inputs]}; in-place input needs one")
        check_in_profile(inputs[0], tuple(shape))
        return {name: tuple(shape)}

    def layout(self, width: int, height: int) -> Layout:
        """The SCRFD layout at the shapes of the last run (call `run` once first)."""
        self._check_open()
        if not self.buffers.shapes:
            raise UserError("run the backend once before asking for its layout")
        return self.buffers.layout(width, height)

    def close(self) -> None:
        """Free graph, buffers, stream and execution context inside their context; then the
        engine too when this backend loaded it (a shared one closes after its last lane)."""
        with self._lock:  # waits for a run in progress on another thread
            if self._closed:
                return
            self._closed = True
            with self.cuda.activate():
                self.runner.close()
                self.buffers.free()
                self.stream.close()
                # Drop every reference to the TensorRT objects while their context is current.
                del self.runner, self.buffers, self.context, self.engine
            self._loaded.lane_closed()
            if self._owns:
                self._loaded.close()

    def __enter__(self) -> TensorRTBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
