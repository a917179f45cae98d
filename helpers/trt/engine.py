"""One deserialised engine that many execution contexts share: the unit parallel lanes stand on.

TensorRT allows many `IExecutionContext`s per engine, each on its own stream, so one engine
(its weights deserialised once) can serve several frames at once. A `LoadedEngine` holds the
runtime, the engine, its I/O specs and the device's primary CUDA context; every lane (a
`TensorRTBackend` made on it) opens an execution context and a stream in that context. The
engine is destroyed last: `close()` waits for the last lane to close.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.errors import UserError
from helpers.trt.build import DEFAULT_CACHE_DIR, BuildOptions, build_engine
from helpers.trt.cache import describe_mismatch, plan_manifest
from helpers.trt.runtime import current_target, load_tensorrt, log_book, logger
from helpers.trt.specs import specs_from_engine

if TYPE_CHECKING:
    import tensorrt as trt

    from helpers.cuda.stream import Stream


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


class LoadedEngine:
    """Runtime + engine + specs + primary context; lanes borrow it, it closes after the last."""

    def __init__(
        self,
        model: str | Path,
        options: BuildOptions | None = None,
        cache_dir: str | Path = DEFAULT_CACHE_DIR,
        progress: bool = True,
    ):
        from helpers.cuda.context import CudaContext, drop_frames

        options = options or BuildOptions()
        plan, plan_path = load_plan(Path(model), options, cache_dir, progress)
        self.cuda = CudaContext.primary(options.device)
        try:
            with self.cuda.activate():
                self._runtime, self.engine = deserialize(plan, plan_path, options.device)
                self.specs = specs_from_engine(self.engine)
        except BaseException as exc:
            with self.cuda.activate():  # TensorRT objects held by the traceback go in their context
                drop_frames(exc)
            self.cuda.release()
            raise
        self._lock = threading.Lock()
        self._lanes = 0
        self._closing = False
        self._closed = False

    def open_lane(self) -> tuple[trt.IExecutionContext, Stream]:
        """A new execution context and its own stream (call inside `cuda.activate()`)."""
        from helpers.cuda.stream import Stream

        with self._lock:
            if self._closing:
                raise UserError("this LoadedEngine was closed; load the engine again")
            context = self.engine.create_execution_context()
            if context is None:  # e.g. not enough device memory for its activations
                raise UserError(
                    "create_execution_context failed ("
                    + log_book().last_error("TensorRT logged no error")
                    + "); free GPU memory, use fewer lanes or build with a smaller --max profile"
                )
            stream = Stream(self.cuda)
            self._lanes += 1
            return context, stream

    @property
    def lanes(self) -> int:
        """Lanes open on this engine now."""
        return self._lanes

    def lane_closed(self) -> None:
        """A lane freed its context and stream; the last one out finishes a pending `close()`."""
        with self._lock:
            self._lanes -= 1
            last = self._closing and self._lanes == 0
        if last:
            self._free()

    def close(self) -> None:
        """Destroy engine and runtime inside their context, now or when the last lane closes."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            idle = self._lanes == 0
        if idle:
            self._free()

    def _free(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with self.cuda.activate():
            del self.engine, self._runtime
        self.cuda.release()

    def __enter__(self) -> LoadedEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
