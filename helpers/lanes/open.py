"""Lane pools for each backend: ONNX Runtime for CPU users, TensorRT with one shared engine."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.detector import Detector
from helpers.errors import UserError
from helpers.lanes.pool import Lane, LanePool

if TYPE_CHECKING:
    from helpers.trt.build import BuildOptions


def check_lanes(lanes: int) -> int:
    if lanes < 1:
        raise UserError(f"{lanes} lanes asked for; use 1 or more (e.g. --workers 4)")
    return lanes


def _pool(make_lane: Callable[[], Lane], lanes: int, shared: object, after: Callable[[], None]) -> LanePool:
    """`lanes` lanes from `make_lane`; if one fails, those made (then `after`) close first."""
    made: list[Lane] = []
    try:
        for _ in range(check_lanes(lanes)):
            made.append(make_lane())
    except BaseException:
        for lane in reversed(made):
            lane.close()
        after()
        raise
    pool = LanePool(made, after)
    pool.shared = shared
    return pool


def ort_threads(lanes: int, cores: int | None = None) -> int:
    """intra_op_num_threads per session run so N lanes share the cores without oversubscribing
    them; 0 (ONNX Runtime's default, one per core) for a single lane."""
    if lanes == 1:
        return 0
    return max(1, (cores or os.cpu_count() or 1) // lanes)


def onnxruntime_lanes(
    model: str | Path,
    lanes: int = 2,
    input_size: tuple[int, int] | None = None,
    score_threshold: float = 0.5,
    nms_threshold: float = 0.4,
    providers: list[str] | None = None,
) -> LanePool:
    """N detectors over one InferenceSession (its `run` may be called concurrently), each with
    its own pre/post-processing scratch."""
    from helpers.ort_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(model, providers, threads=ort_threads(check_lanes(lanes)))
    return _pool(
        lambda: Lane(Detector(backend, input_size, score_threshold, nms_threshold)),
        lanes,
        backend,
        lambda: None,
    )


def tensorrt_lanes(
    model: str | Path,
    lanes: int = 2,
    method: str = "v3",
    options: BuildOptions | None = None,
    preprocess: str = "cpu",
    input_size: tuple[int, int] | None = None,
    score_threshold: float = 0.5,
    nms_threshold: float = 0.4,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> LanePool:
    """N lanes on one engine, deserialised once: each its own execution context, stream,
    buffers and (`preprocess` "gpu"/"auto", as `detect --preprocess`) GPU stages, all in the
    engine's primary context. `pool.shared` is the `LoadedEngine`; it closes after every lane."""
    from helpers.gpu.stages import stages_for
    from helpers.trt.backend import TensorRTBackend
    from helpers.trt.build import DEFAULT_CACHE_DIR
    from helpers.trt.engine import LoadedEngine

    engine = LoadedEngine(model, options, cache_dir or DEFAULT_CACHE_DIR, progress)

    def lane() -> Lane:
        backend = TensorRTBackend(engine, method)
        try:
            stages = stages_for(preprocess, backend, graph=method == "graph")
            detector = Detector(backend, input_size, score_threshold, nms_threshold, stages=stages)
        except BaseException:
            backend.close()
            raise
        closers = [stages.close, backend.close] if stages is not None else [backend.close]
        return Lane(detector, closers)

    return _pool(lane, lanes, engine, engine.close)
