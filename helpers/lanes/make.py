"""Lane pools for the two backends: one engine (or session) loaded once, N lanes on it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers.backend import Closeable
from helpers.detector import Detector
from helpers.errors import UserError
from helpers.lanes.pool import LanePool

if TYPE_CHECKING:
    from helpers.trt.engine import LoadedEngine


def check_lanes(lanes: int) -> int:
    if lanes < 1:
        raise UserError(f"{lanes} lanes: give 1 or more (e.g. one per frame you want in flight)")
    return lanes


def onnxruntime_lanes(
    model: str | Path, lanes: int, providers: list[str] | None = None, **detector: Any
) -> LanePool:
    """`lanes` detectors on one ONNX Runtime session, which may be run from many threads at once
    (onnxruntime#114); each run gets cores / lanes intra-op threads, so lanes do not oversubscribe."""
    from helpers.ort_backend import OnnxRuntimeBackend

    threads = max(1, (os.cpu_count() or 1) // check_lanes(lanes))
    backend = OnnxRuntimeBackend(model, providers, threads=threads)
    return LanePool([Detector(backend, **detector) for _ in range(lanes)])


def tensorrt_lane(
    engine: LoadedEngine, method: str, gpu_stages: bool, made: list[Closeable], **detector: Any
) -> Detector:
    """One lane on `engine`: its own execution context, non-blocking stream, buffers and (with
    `gpu_stages`) GPU stages, appended to `made` in the order they must be closed in reverse."""
    from helpers.trt.backend import TensorRTBackend

    backend = TensorRTBackend(engine=engine, method=method)
    made.append(backend)
    stages = None
    if gpu_stages:
        from helpers.gpu.stages import GpuStages

        stages = GpuStages(backend, graph=method == "graph")
        made.append(stages)
    return Detector(backend, stages=stages, **detector)


def tensorrt_lanes(
    model: str | Path,
    lanes: int,
    method: str = "v3",
    gpu_stages: bool = False,
    options: Any = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    **detector: Any,
) -> LanePool:
    """`lanes` detectors on one TensorRT engine, deserialised once, each a `tensorrt_lane`, all in
    the engine's primary context. With method "graph" each lane captures its own CUDA graphs."""
    from helpers.trt.build import DEFAULT_CACHE_DIR
    from helpers.trt.engine import LoadedEngine

    check_lanes(lanes)
    engine = LoadedEngine(model, options, cache_dir or DEFAULT_CACHE_DIR, progress)
    made: list[Closeable] = [engine]  # closed in reverse: stages, backends, the engine last
    try:
        detectors = [tensorrt_lane(engine, method, gpu_stages, made, **detector) for _ in range(lanes)]
    except BaseException:
        for item in reversed(made):
            item.close()
        raise
    return LanePool(detectors, list(reversed(made)))
