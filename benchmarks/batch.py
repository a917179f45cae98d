"""Per-frame pre- plus post-processing at batch 1, 4, 8 and 16, side by side in one run.

The CPU path of helpers: letterbox every frame into its slot of one (N, 3, H, W) input, then
decode and NMS each image on its own rows of one batch run's outputs. The outputs come from one
ONNX Runtime run of the batchable model (helpers.batch), so only the Python around the engine is
timed. With a CUDA GPU and CuPy, also the GPU stages (helpers.gpu) at batch N, from ordinary
(pageable) arrays and from the stages' pinned frame buffers: staging, one upload per image, one
letterbox launch, one decode launch, the wait, one count and one candidate download, each
image's NMS. Their engine (helpers.gpu.host_engine, recompute off) leaves real SCRFD outputs of
these frames in device memory and adds no time: no TensorRT, no trtemu. Every case is warmed up
first and the cases take turns (blocks of 10) so that a shared machine's drift hits them alike.
Frames: the shared group photo at 640x480 and 1920x1080. Throughput with an engine in between:
benchmarks/batch_throughput.py. Run from the repository root (a default run: about 1 minute):

    python benchmarks/batch.py [--model M] [--repeat 200] [--json reports/batch/h200.json]
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prepost import command, cpu_name, frame_parser, medians_in_turns, publish, source_image

from helpers.batch.batchify import batchify
from helpers.detector import Detector, Timings
from helpers.models import resolve
from helpers.ort_backend import OnnxRuntimeBackend

BATCHES = (1, 4, 8, 16)
FRAMES = {"640x480": (640, 480), "1920x1080": (1920, 1080)}
PATHS = ("cpu", "gpu_pageable", "gpu_pinned")


def steps(detector: Detector, frame: np.ndarray, batch: int) -> tuple[dict[str, Callable[[], object]], int]:
    """The pre and post steps of one batch of `frame`, and the faces each image gets."""
    w, h = detector.input_size
    frames = [frame] * batch
    blob = np.empty((batch, 3, h, w), np.float32)
    boxes, _ = detector.letterbox_batch(frames, detector.input_size, blob)
    outputs = detector.backend.run({detector.input_name: blob})
    fresh = lambda: [Timings() for _ in frames]  # noqa: E731
    found = detector.decode_batch(outputs, boxes, fresh())
    faces = {len(d.faces) for d in found}
    if len(faces) != 1:
        raise SystemExit(f"batch {batch}: the images of one batch found {sorted(faces)} faces")
    return {
        f"pre_b{batch}": lambda: detector.letterbox_batch(frames, detector.input_size, blob),
        f"post_b{batch}": lambda: detector.decode_batch(outputs, boxes, fresh()),
    }, faces.pop()


def gpu_steps(backend: OnnxRuntimeBackend, frame: np.ndarray, size: tuple[int, int]) -> tuple[dict, set[int]]:
    """The GPU stages' whole batch (pageable and pinned sources) per batch size, and the faces per
    image they found (checked equal for every image and batch)."""
    from helpers.gpu.host_engine import HostEngine
    from helpers.gpu.stages import GpuStages

    engine = HostEngine(backend)
    stages = GpuStages(engine)
    stages.run_batch([frame] * max(BATCHES), size, 0.5, 0.4)  # real outputs of these frames in place
    engine.recompute = False
    pinned = [stages.frame_buffer(frame.shape, slot) for slot in range(max(BATCHES))]
    for buffer in pinned:
        np.copyto(buffer, frame)
    pageable = [frame.copy() for _ in range(max(BATCHES))]
    cases, faces = {}, set()
    for batch in BATCHES:
        for name, sources in (("gpu_pageable", pageable[:batch]), ("gpu_pinned", pinned[:batch])):
            faces |= {len(d.faces) for d in stages.run_batch(sources, size, 0.5, 0.4)}
            cases[f"{name}_b{batch}"] = lambda s=sources: stages.run_batch(s, size, 0.5, 0.4)
    return cases, faces


def gpu_available() -> bool:
    try:
        from helpers.gpu.stages import require_cupy

        require_cupy()
        return True
    except Exception:
        return False


def measure(detector: Detector, label: str, frame: np.ndarray, repeat: int, gpu: bool) -> dict:
    cases: dict[str, Callable[[], object]] = {}
    faces = {}
    for batch in BATCHES:
        found, faces[batch] = steps(detector, frame, batch)
        cases.update(found)
    paths = ["cpu"]
    if gpu:
        found, gpu_faces = gpu_steps(detector.backend, frame, detector.input_size)
        if gpu_faces != {faces[1]}:
            raise SystemExit(f"{label}: the GPU stages found {sorted(gpu_faces)} faces, the CPU {faces[1]}")
        cases.update(found)
        paths += ["gpu_pageable", "gpu_pinned"]
    for fn in cases.values():  # warm every case before any is timed
        fn()
    t = medians_in_turns(cases, repeat)
    per_frame = {"cpu": {b: (t[f"pre_b{b}"] + t[f"post_b{b}"]) / b for b in BATCHES}}
    for path in paths[1:]:
        per_frame[path] = {b: t[f"{path}_b{b}"] / b for b in BATCHES}
    return {
        "frame": label,
        "input_size": list(detector.input_size),
        "faces_per_image": faces[1],
        "median_ms_per_batch": {k: round(v, 4) for k, v in t.items()},
        "prepost_ms_per_frame": {
            p: {str(b): round(v, 4) for b, v in r.items()} for p, r in per_frame.items()
        },
        "per_frame_vs_batch1": {
            p: {str(b): round(v / r[1], 3) for b, v in r.items()} for p, r in per_frame.items()
        },
    }


def format_report(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"Pre+post per frame (ms), {report['model']}, recorded on "
        + (f"the {machine['gpu']} machine" if "gpu" in machine else report.get("recorded_on", "a machine"))
        + f" (host CPU {machine['cpu']})"
    ]
    lines.append(
        f"{'frame':<11}{'path':<14}{'faces':>6}"
        + "".join(f"{f'batch {b}':>10}" for b in BATCHES)
        + "   b8/b1"
    )
    for r in report["results"]:
        for path, per in r["prepost_ms_per_frame"].items():
            row = "".join(f"{per[str(b)]:>10.3f}" for b in BATCHES)
            ratio = r["per_frame_vs_batch1"][path]["8"]
            lines.append(f"{r['frame']:<11}{path:<14}{r['faces_per_image']:>6}{row}   {ratio:.2f}")
    lines.append(
        f"(medians over {report['repeat']} batches, blocks of 10 in turn; inference not timed; gpu = "
        "the whole batch through the GPU stages, wall time, engine time excluded)"
    )
    lines += [f"not measured: {line}" for line in report["not_measured"]]
    return "\n".join(lines)


def main() -> None:
    args = frame_parser(__doc__, 200).parse_args()
    model = resolve(args.model)
    backend = OnnxRuntimeBackend(batchify(model), ["CPUExecutionProvider"])
    detector = Detector(backend, (args.size[0], args.size[1]))
    image = source_image()
    gpu = gpu_available()
    rows = [measure(detector, label, cv2.resize(image, wh), args.repeat, gpu) for label, wh in FRAMES.items()]
    machine = {"cpu": f"{os.cpu_count()} x {cpu_name()}", "python": platform.python_version()}
    if gpu:
        from gpu_prepost import gpu_machine

        machine.update(gpu_machine())
    report = {
        "command": command(),
        "model": model.name,
        "repeat": args.repeat,
        "machine": machine,
        "results": rows,
        "not_measured": [] if gpu else ["GPU stages: no CUDA GPU with CuPy here"],
    }
    publish(report, format_report(report), args.json)


if __name__ == "__main__":
    main()
