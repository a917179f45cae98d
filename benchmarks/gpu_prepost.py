"""Pre- plus post-processing per frame: insightface's reference, the workbook on the CPU, and on
the GPU (CuPy), side by side in one run on a GPU machine; prints ratios, saves JSON.

The engine in between is ONNX Runtime on the CPU, run once per frame on the GPU-letterboxed
input; its outputs then stay in the device buffers (helpers.gpu.host_engine.HostEngine), so the
GPU post-processing reads real SCRFD outputs in device memory and nothing else is timed: no
TensorRT needed (trtemu not either). GPU wall times include staging the frame into pinned
memory, the upload, both kernels, the wait, the candidate download and NMS; CUDA-event times
come from a separate timed pass. Run from the repository root, on the GPU machine:

    python benchmarks/gpu_prepost.py --json reports/gpu_prepost.json
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prepost import case, command, cpu_name, frame_parser, medians_in_turns, publish, source_image

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


def measure(model: Path, label: str, frame: np.ndarray, size: tuple[int, int], repeat: int) -> dict:
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
    t = medians_in_turns(steps, repeat)
    events = {
        "gpu": event_medians(GpuStages(engine, timed=True), frame, size, repeat),
        "gpu_graph": event_medians(GpuStages(engine, graph=True, timed=True), frame, size, repeat),
    }
    graphed.close()
    reference = t["reference_pre"] + t["reference_post"]
    ours = t["ours_pre"] + t["ours_post"]
    return {
        "frame": label,
        "input_size": list(size),
        "faces": {"cpu": cpu.faces, "gpu": found},
        "median_ms": {k: round(v, 4) for k, v in t.items()},
        "cuda_event_ms": events,
        "ratios": {
            "reference_vs_cpu": round(reference / ours, 2),
            **{f"reference_vs_{g}": round(reference / t[g], 2) for g in GPU_STEPS},
            **{f"cpu_vs_{g}": round(ours / t[g], 2) for g in GPU_STEPS},
        },
    }


def main() -> None:
    args = frame_parser(__doc__, 300).parse_args()
    from helpers.gpu.stages import require_cupy

    try:
        require_cupy()
    except UserError as exc:
        raise SystemExit(f"error: {exc}") from None
    model = resolve(args.model)
    image = source_image()
    machine = {
        "cpu": f"{os.cpu_count()} x {cpu_name()}",
        "python": platform.python_version(),
        **gpu_machine(),
    }
    size = (args.size[0], args.size[1])
    rows = [measure(model, label, cv2.resize(image, wh), size, args.repeat) for label, wh in FRAMES.items()]
    report = {
        "command": command(),
        "model": model.name,
        "repeat": args.repeat,
        "machine": machine,
        "results": rows,
    }
    publish(report, format_report(report), args.json)


if __name__ == "__main__":
    main()
