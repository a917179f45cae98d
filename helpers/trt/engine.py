"""A deserialised engine in its CUDA context, shared by every backend (lane) made on it.

Deserialising is the slow, memory-hungry step; TensorRT lets one engine serve many execution
contexts, "allowing the same engine to be used for the execution of multiple batches
simultaneously" (NVIDIA's IExecutionContext docs), each with its own stream and buffers. So the
engine is loaded once and each lane (a `TensorRTBackend`) makes only its execution context. The
same docs add: "If the engine supports dynamic shapes, each execution context in concurrent use
must use a separate optimization profile" (NvInferRuntime.h, 10.x and 11.1). So on an engine
with dynamic inputs each context gets a profile of its own, taken here and given back when its
lane closes; build with `BuildOptions(profiles=N)` for N lanes (`tensorrt_lanes` does).
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
        self.dynamic = any(spec.is_input and spec.dynamic for spec in self.specs)
        self._free_profiles = list(range(self.engine.num_optimization_profiles)) if self.dynamic else []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def create_execution_context(self, stream_handle: int) -> tuple[trt.IExecutionContext, int | None]:
        """A new execution context and the profile it alone uses (None on a static engine), set on
        `stream_handle` (call inside `cuda.activate()`, then synchronise the stream before the
        context's first enqueue); refused once closed or when every profile is in use."""
        with self._lock:
            if self._closed:
                raise UserError("this engine was closed; load it again")
            profile = self._take_profile()
            log_book().clear()
            context = self.engine.create_execution_context()
            if context is None:  # e.g. not enough device memory for its activations
                self._give_back(profile)
                raise UserError(
                    "create_execution_context failed ("
                    + log_book().last_error("TensorRT logged no error")
                    + "); free GPU memory, use fewer lanes, or build with a smaller --max profile"
                )
            if profile and not context.set_optimization_profile_async(
                profile, stream_handle
            ):  # 0: the default
                self._give_back(profile)
                raise UserError(
                    f"set_optimization_profile_async({profile}) was refused ("
                    + log_book().last_error("TensorRT logged no error")
                    + "); rebuild the engine"
                )
        return context, profile

    def release_profile(self, profile: int | None) -> None:
        """Give back a closed lane's profile, for the next context."""
        with self._lock:
            self._give_back(profile)

    def _take_profile(self) -> int | None:
        if not self.dynamic:
            return None  # no dynamic shapes: any number of contexts share the implicit profile
        if not self._free_profiles:
            n = self.engine.num_optimization_profiles
            raise UserError(
                f"all {n} optimization profile{'s' if n > 1 else ''} of this engine are in use by other "
                "execution contexts, and TensorRT needs one per context in concurrent use on an engine "
                "with dynamic inputs; build with BuildOptions(profiles=N) for N lanes (tensorrt_lanes "
                "does), or close a lane first"
            )
        return self._free_profiles.pop(0)

    def _give_back(self, profile: int | None) -> None:
        if profile is not None:
            self._free_profiles.append(profile)
            self._free_profiles.sort()

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
