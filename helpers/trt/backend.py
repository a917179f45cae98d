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
from helpers.trt.build import DEFAULT_CACHE_DIR, BuildOptions, build_engine
from helpers.trt.cache import describe_mismatch, plan_manifest
from helpers.trt.runner import Runner, check_method, enqueue_failure
from helpers.trt.runtime import (
    EMULATOR,
    current_target,
    describe_tensorrt,
    device_identity,
    is_emulator,
    load_tensorrt,
    log_book,
    logger,
    tensorrt_status,
)
from helpers.trt.specs import check_in_profile, specs_from_engine

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


def load_plan(
    model: Path, options: BuildOptions, cache_dir: str | Path, progress: bool
) -> tuple[bytes, Path]:
    """Plan bytes and the plan's path: built (or cached) for an .onnx file, read for anything else."""
    if model.suffix.lower() == ".onnx":
        built = build_engine(model, options, cache_dir, progress=progress)
        return built.plan, built.entry.plan
    try:
        return model.read_bytes(), model
    except OSError as exc:
        raise UserError(f"cannot read plan {model}: {exc.strerror}; check the path") from None


def deserialize(plan: bytes, source: Path, device: int) -> tuple[trt.Runtime, trt.ICudaEngine]:
    """Runtime and engine (keep both); a plan made for another TensorRT or GPU is refused by name.

    `source` is the plan's path: its manifest (`.json` beside it), when present, is checked first.
    """
    load_tensorrt()
    import tensorrt as trt

    manifest = plan_manifest(source)
    if isinstance(manifest, dict):
        target = current_target(device).fields()
        wanted = {k: target[k] for k in ("tensorrt_version", "compute_capability")}
        differences = describe_mismatch(manifest, wanted)
        if differences:
            raise UserError(
                f"plan {source.name} is not compatible here ({'; '.join(differences)}); rebuild it "
                "from the ONNX with `python -m helpers build MODEL`"
            )
    log_book().clear()
    runtime = trt.Runtime(logger())
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise UserError(
            f"TensorRT cannot load plan {source.name} ({log_book().last_error('no reason logged')}); "
            "plans only run on the TensorRT version and GPU they were built for: rebuild with "
            "`python -m helpers build MODEL`"
        )
    return runtime, engine


def _open(
    plan: bytes, source: Path, device: int, cuda: CudaContext
) -> tuple[trt.Runtime, trt.ICudaEngine, trt.IExecutionContext, list[TensorSpec], Stream]:
    """Runtime, engine, execution context, I/O specs and stream, made with `cuda` current.

    A function of its own so that, when it fails, its frame (holding the TensorRT objects) is
    finished and `drop_frames` can free them inside the context.
    """
    from helpers.cuda.stream import Stream

    runtime, engine = deserialize(plan, source, device)
    context = engine.create_execution_context()
    if context is None:  # e.g. not enough device memory for its activations
        raise UserError(
            "create_execution_context failed ("
            + log_book().last_error("TensorRT logged no error")
            + "); free GPU memory or build with a smaller --max profile"
        )
    return runtime, engine, context, specs_from_engine(engine), Stream(cuda)


class TensorRTBackend:
    """An engine with one execution context; `method` is "v3" (default), "v2" or "graph"."""

    name = "tensorrt"

    def __init__(
        self,
        model: str | Path,
        method: str = "v3",
        options: BuildOptions | None = None,
        cache_dir: str | Path = DEFAULT_CACHE_DIR,
        poison: bool = True,
        timed: bool = False,
        progress: bool = True,
    ):
        from helpers.cuda.context import CudaContext, drop_frames

        self.method = check_method(method)
        self.poison = poison
        options = options or BuildOptions()
        plan, plan_path = load_plan(Path(model), options, cache_dir, progress)
        self.cuda = CudaContext.primary(options.device)
        try:
            with self.cuda.activate():
                self._runtime, self.engine, self.context, self.specs, self.stream = _open(
                    plan, plan_path, options.device, self.cuda
                )
        except BaseException as exc:
            with self.cuda.activate():  # TensorRT objects held by the traceback go in their context
                drop_frames(exc)
            self.cuda.release()
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
        """Free graph, buffers, stream and TensorRT objects inside their context, then release it."""
        with self._lock:  # waits for a run in progress on another thread
            if self._closed:
                return
            self._closed = True
            with self.cuda.activate():
                self.runner.close()
                self.buffers.free()
                self.stream.close()
                # Drop every reference to the TensorRT objects while their context is current.
                del self.runner, self.buffers, self.context, self.engine, self._runtime
            self.cuda.release()

    def __enter__(self) -> TensorRTBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
