"""Pre- plus post-processing per frame: insightface's reference, the workbook on the CPU, and on
the GPU (CuPy), side by side in one run on a GPU machine; prints ratios, saves JSON.

The engine in between is ONNX Runtime on the CPU, run once per frame on the GPU-letterboxed
input; its outputs then stay in the device buffers (helpers.gpu.host_engine.HostEngine), so the
GPU post-processing reads real SCRFD outputs in device memory and nothing else is timed: no
TensorRT needed (trtemu not either). GPU wall times include staging the frame into pinned
memory, the upload, both kernels, the wait, the candidate download and NMS; CUDA-event times
come from a separate timed pass. Every frame's cases (CPU and GPU) are built and warmed up before
the first is timed, so no case pays the process's warm-up. The reference is insightface 2.x's
own `model_zoo.SCRFD.detect` when `insightface` is installed (its version in the report), beside
the re-implementation in scrfd_reference.py. Run from the repository root, on the GPU machine:

    python benchmarks/gpu_prepost.py --json reports/gpu_prepost.json
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from insightface_reference import insightface_version
from prepost import (
    INSIGHTFACE,
    case,
    command,
    cpu_name,
    frame_parser,
    medians_in_turns,
    publish,
    source_image,
    warm_up,
)

from helpers.errors import UserError
from helpers.gpu.report import GPU_STEPS, format_report
from helpers.models import resolve

FRAMES = {"640x480": (640, 480), "1920x1080": (1920, 1080)}


def gpu_machine() -> dict:
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return {
        "gpu": name,
        "compute_capability": f"{props['major']}.{props['minor']}",
        "cupy": cupy.__version__,
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cuda_driver": cupy.cuda.runtime.driverGetVersion(),
    }


def event_medians(stages, frame: np.ndarray, size: tuple[int, int], repeat: int) -> dict[str, float]:
    """Median CUDA-event ms of each GPU step over `repeat` timed runs."""
    laps: dict[str, list[float]] = {}
    for _ in range(repeat):
        stages.run(frame, size, 0.5, 0.4)
        for name, ms in stages.gpu_ms.items():
            laps.setdefault(name, []).append(ms)
    return {name: round(statistics.median(v), 4) for name, v in laps.items()}


class FrameCase(NamedTuple):
    """One frame's CPU and GPU pipelines, built and checked, ready to warm up and time."""

    label: str
    frame: np.ndarray
    size: tuple[int, int]
    faces: dict[str, int]
    steps: dict[str, Callable[[], object]]
    engine: Any  # HostEngine: its outputs for this frame stay in the device buffers
    graphed: Any  # GpuStages with a captured graph, closed after timing


def frame_case(model: Path, label: str, frame: np.ndarray, size: tuple[int, int]) -> FrameCase:
    from helpers.gpu.host_engine import HostEngine
    from helpers.gpu.stages import GpuStages

    cpu = case(model, label, frame, size)
    size = cpu.size
    engine = HostEngine(cpu.backend)
    direct, graphed = GpuStages(engine), GpuStages(engine, graph=True)
    found = len(direct.run(frame, size, 0.5, 0.4).faces)  # the engine's outputs for this frame
    engine.recompute = False
    if found != cpu.faces:  # parity is the GPU tests' job; here it is only reported
        print(f"warning: {label}: the GPU path found {found} faces, the CPU path {cpu.faces}")
    graphed.run(frame, size, 0.5, 0.4)  # capture
    steps = dict(cpu.steps)
    steps["gpu"] = lambda: direct.run(frame, size, 0.5, 0.4)
    steps["gpu_graph"] = lambda: graphed.run(frame, size, 0.5, 0.4)
    # A decoder that writes frames straight into the pinned staging buffer: nothing to copy.
    pinned = graphed.frame_buffer(frame.shape)
    np.copyto(pinned, frame)
    steps["gpu_graph_pinned"] = lambda: graphed.run(pinned, size, 0.5, 0.4)
    return FrameCase(label, frame, size, {"cpu": cpu.faces, "gpu": found}, steps, engine, graphed)


def measure(c: FrameCase, repeat: int) -> dict:
    """Medians, CUDA-event times and ratios of one frame (warmed up with the others before)."""
    from helpers.gpu.stages import GpuStages

    t = medians_in_turns(c.steps, repeat)
    events = {
        "gpu": event_medians(GpuStages(c.engine, timed=True), c.frame, c.size, repeat),
        "gpu_graph": event_medians(GpuStages(c.engine, graph=True, timed=True), c.frame, c.size, repeat),
    }
    c.graphed.close()
    reference = t["reference_pre"] + t["reference_post"]
    ours = t["ours_pre"] + t["ours_post"]
    ratios = {
        "reference_vs_cpu": round(reference / ours, 2),
        **{f"reference_vs_{g}": round(reference / t[g], 2) for g in GPU_STEPS},
        **{f"cpu_vs_{g}": round(ours / t[g], 2) for g in GPU_STEPS},
    }
    if INSIGHTFACE in t:
        ratios["insightface_vs_cpu"] = round(t[INSIGHTFACE] / ours, 2)
        ratios |= {f"insightface_vs_{g}": round(t[INSIGHTFACE] / t[g], 2) for g in GPU_STEPS}
    return {
        "frame": c.label,
        "input_size": list(c.size),
        "faces": c.faces,
        "median_ms": {k: round(v, 4) for k, v in t.items()},
        "cuda_event_ms": events,
        "ratios": ratios,
    }


def report(model: Path, frames: dict[str, np.ndarray], size: tuple[int, int], repeat: int) -> dict:
    """Every frame's cases built and warmed up, then timed: the report format_report prints.
    Notebook 06b runs this live on a GPU, with the frames it shows."""
    machine = {
        "cpu": f"{os.cpu_count()} x {cpu_name()}",
        "python": platform.python_version(),
        **gpu_machine(),
    }
    cases = [frame_case(model, label, frame, size) for label, frame in frames.items()]
    warm_up([c.steps for c in cases])
    return {
        "command": command(),
        "model": model.name,
        "insightface": insightface_version(),
        "warm_up": "every case of every frame, 10 calls each, before the first is timed",
        "repeat": repeat,
        "machine": machine,
        "results": [measure(c, repeat) for c in cases],
    }


def main() -> None:
    args = frame_parser(__doc__, 300).parse_args()
    from helpers.gpu.stages import require_cupy

    try:
        require_cupy()
    except UserError as exc:
        raise SystemExit(f"error: {exc}") from None
    image = source_image()
    frames = {label: cv2.resize(image, wh) for label, wh in FRAMES.items()}
    done = report(resolve(args.model), frames, (args.size[0], args.size[1]), args.repeat)
    publish(done, format_report(done), args.json)


if __name__ == "__main__":
    main()
