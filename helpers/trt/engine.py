"""A deserialised engine in its CUDA context, shared by every backend (lane) made on it.

Deserialising is the slow, memory-hungry step; TensorRT lets one engine serve many execution
contexts, "allowing the same engine to be used for the execution of multiple batches
simultaneously" (NVIDIA's IExecutionContext docs), each with its own stream and buffers. So the
engine is loaded once and each lane (a `TensorRTBackend`) makes only its execution context.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.errors import UserError
from helpers.trt.build import DEFAULT_CACHE_DIR, BuildOptions, build_engine
from helpers.trt.cache import describe_mismatch, plan_manifest
from helpers.trt.runtime import EMULATOR, current_target, is_emulator, load_tensorrt, log_book, logger
from helpers.trt.specs import specs_from_engine

if TYPE_CHECKING:
    import tensorrt as trt

    from helpers.cuda.context import CudaContext
    from helpers.trt.specs import TensorSpec


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
    """Runtime, engine and I/O specs, made in the device's primary context; closes last."""

    def __init__(
        self,
        model: str | Path,
        options: BuildOptions | None = None,
        cache_dir: str | Path = DEFAULT_CACHE_DIR,
        progress: bool = True,
    ) -> None:
        from helpers.cuda.context import CudaContext, drop_frames

        options = options or BuildOptions()
        plan, plan_path = load_plan(Path(model), options, cache_dir, progress)
        self.device = options.device
        self.cuda: CudaContext = CudaContext.primary(options.device)
        try:
            with self.cuda.activate():
                self.runtime, self.engine = deserialize(plan, plan_path, options.device)
                self.specs: list[TensorSpec] = specs_from_engine(self.engine)
        except BaseException as exc:
            with self.cuda.activate():  # TensorRT objects held by the traceback go in their context
                drop_frames(exc)
            self.cuda.release()
            raise
        self.name = EMULATOR if is_emulator() else "tensorrt"
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def create_execution_context(self) -> trt.IExecutionContext:
        """A new execution context (call inside `cuda.activate()`); refused once closed."""
        with self._lock:
            if self._closed:
                raise UserError("this engine was closed; load it again")
            log_book().clear()
            context = self.engine.create_execution_context()
        if context is None:  # e.g. not enough device memory for its activations
            raise UserError(
                "create_execution_context failed ("
                + log_book().last_error("TensorRT logged no error")
                + "); free GPU memory, use fewer lanes, or build with a smaller --max profile"
            )
        return context

    def close(self) -> None:
        """Free engine and runtime inside their context, then release it (idempotent). Close
        every backend made on it first: their execution contexts need the engine."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with self.cuda.activate():
                del self.engine, self.runtime
            self.cuda.release()

    def __enter__(self) -> LoadedEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
