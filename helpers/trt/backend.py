"""TensorRT behind the backend interface: named arrays in, named arrays out.

Built from an ONNX file (through the engine cache) or loaded from a plan. Engine, execution
context, stream and buffers all live in the device's primary CUDA context, which every call
makes current, so the backend works from any thread and next to torch, cupy or ONNX Runtime.
One backend is one lane: an execution context, its stream and buffers, one frame at a time.
Several lanes can share one `LoadedEngine` (helpers.lanes does that).
"""

from __future__ import annotations

import importlib.util
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from helpers.backend import Closeable, DeviceTensor, TensorInfo
from helpers.errors import UserError
from helpers.layout import Layout
from helpers.trt.bindings import IOBuffers, match_inputs
from helpers.trt.build import DEFAULT_CACHE_DIR, BuildOptions
from helpers.trt.engine import LoadedEngine
from helpers.trt.runner import Runner, check_method, enqueue_failure
from helpers.trt.runtime import describe_tensorrt, device_identity, log_book, tensorrt_status
from helpers.trt.specs import check_in_profile

if TYPE_CHECKING:
    import tensorrt as trt

    from helpers.cuda.context import CudaContext
    from helpers.cuda.stream import Stream
    from helpers.trt.specs import TensorSpec


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


class _Lane:
    """What one backend owns in the engine's context, freed together by `close()` or, for a
    backend never closed, by the garbage collector on whatever thread it runs (the context is
    pushed there; pycuda would otherwise free out of context and leak)."""

    def __init__(self, engine: LoadedEngine, owns_engine: bool, timed: bool) -> None:
        from helpers.cuda.stream import Stream

        self.engine, self.owns_engine = engine, owns_engine
        self.cuda: CudaContext = engine.cuda
        with self.cuda.activate():
            self.context: trt.IExecutionContext | None = engine.create_execution_context()
            self.stream: Stream | None = Stream(self.cuda)
        self.buffers: IOBuffers | None = IOBuffers(self.context, engine.specs, self.cuda)
        self.runner: Runner | None = Runner(self.context, self.buffers, self.stream, self.cuda, timed)
        self.attached: weakref.WeakSet[Closeable] = weakref.WeakSet()  # e.g. GpuStages

    def free(self) -> None:
        with self.cuda.activate():
            if self.runner is not None and self.buffers is not None and self.stream is not None:
                self.stream.synchronize()  # nothing of ours may still run on what is freed
                self.runner.close()
                self.buffers.free()
                self.stream.close()
            # The last references to the TensorRT objects go while their context is current.
            self.runner = self.buffers = self.stream = self.context = None
        if self.owns_engine:
            self.engine.close()


class TensorRTBackend:
    """An engine with one execution context; `method` is "v3" (default), "v2" or "graph".

    Given `engine=` (a `LoadedEngine`), it is one lane of that engine: its own execution
    context, stream and buffers, and the engine stays open when the lane closes.
    """

    name = "tensorrt"

    def __init__(
        self,
        model: str | Path | None = None,
        method: str = "v3",
        options: BuildOptions | None = None,
        cache_dir: str | Path = DEFAULT_CACHE_DIR,
        poison: bool = True,
        timed: bool = False,
        progress: bool = True,
        engine: LoadedEngine | None = None,
    ):
        self.method = check_method(method)
        self.poison = poison
        if (model is None) == (engine is None):
            raise UserError("give TensorRTBackend a model path or a LoadedEngine (engine=), not both")
        owns = engine is None
        loaded = engine or LoadedEngine(Path(str(model)), options, cache_dir, progress)
        try:
            self._lane = _Lane(loaded, owns, timed)
        except BaseException:
            if owns:
                loaded.close()
            raise
        self.loaded = loaded
        self.name = loaded.name  # results made under trtemu carry its name wherever they go
        self.specs: list[TensorSpec] = loaded.specs
        self._lock = threading.RLock()  # one context, one set of buffers: one run at a time
        self._closed = False
        self._finalizer = weakref.finalize(self, self._lane.free)

    # The lane's parts, through the one object that frees them (see _Lane).
    @property
    def cuda(self) -> CudaContext:
        return self._lane.cuda

    @property
    def engine(self) -> trt.ICudaEngine:
        return self.loaded.engine

    @property
    def context(self) -> trt.IExecutionContext:
        return self._part(self._lane.context)

    @property
    def stream(self) -> Stream:
        return self._part(self._lane.stream)

    @property
    def buffers(self) -> IOBuffers:
        return self._part(self._lane.buffers)

    @property
    def runner(self) -> Runner:
        return self._part(self._lane.runner)

    def _part(self, part: Any) -> Any:
        if part is None:
            raise UserError("this TensorRTBackend was closed; create a new one")
        return part

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
        with self.session():
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
        shapes = self._single_input(name, shape)
        with self.session():
            self.buffers.set_shapes(shapes)
            yield self.buffers.buffers[name].host

    def run_prepared(self) -> dict[str, np.ndarray]:
        """`run` on what was written into `input_array`, without loading a separate array."""
        with self.session():  # re-entered from `run` and inside `input_array`'s block
            if self.poison:
                self.buffers.poison_outputs(self.stream)
            self.runner.run(self.method)
            return self.buffers.read_outputs()

    @contextmanager
    def session(self) -> Iterator[TensorRTBackend]:
        """The run lock held, the backend checked open and its context current, for the block.

        Everything that touches the execution context, stream or buffers runs inside one: a
        `close()` or another thread's run waits for the block to end (freeing registered memory
        before its stream finished is undefined behaviour in TensorRT). Re-entrant.
        """
        self._check_open()
        with self._lock:
            self._check_open()  # closed by another thread while this one waited
            with self.cuda.activate():
                yield self

    def attach(self, user: Closeable) -> None:
        """Close `user` (e.g. GpuStages: its graph holds this backend's addresses) before this
        backend frees anything; held weakly."""
        self._lane.attached.add(user)

    @property
    def stream_handle(self) -> int:
        return self.stream.handle

    @property
    def shape_changes(self) -> int:
        return self.buffers.shape_changes

    def activate(self) -> AbstractContextManager[Any]:
        """The engine's CUDA context, current for the block."""
        return self.cuda.activate()

    def device_tensors(self, input_shape: tuple[int, ...]) -> dict[str, DeviceTensor]:
        """Device address, shape and dtype of every I/O tensor at this input shape (call inside
        `session()`); the addresses change only when the shape does."""
        self._check_open()
        self.buffers.set_shapes(self._single_input(self.inputs[0].name, input_shape))
        return {
            name: DeviceTensor(b.device_ptr, self.buffers.shapes[name], b.host.dtype)
            for name, b in self.buffers.buffers.items()
        }

    def enqueue(self) -> None:
        """execute_async_v3 on the engine's stream on the device buffers as they are: no copies, no
        wait (call inside `session()`); capturable in a CUDA graph."""
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
        """Free graph, buffers, stream and TensorRT objects inside their context, then release
        it; waits for a run in progress on another thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            for user in list(self._lane.attached):  # their graphs hold our buffers' addresses
                user.close()  # re-enters our session: still open here
            self._closed = True
            self._finalizer()

    def __enter__(self) -> TensorRTBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
