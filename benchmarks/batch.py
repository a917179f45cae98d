"""Per-frame pre- plus post-processing at batch 1, 4, 8 and 16, side by side in one run.

The CPU path of helpers: letterbox every frame into its slot of one (N, 3, H, W) input, then
decode and NMS each image on its own rows of one batch run's outputs. The outputs come from one
ONNX Runtime run of the batchable model (helpers.batch), so only the Python around the engine is
timed; every case is warmed up first and the cases take turns (blocks of 10) so that a shared
machine's drift hits them alike. Frames: the shared group photo at 640x480 and 1920x1080.

Not measured here: the GPU stages at batch N (helpers.gpu still takes one image per run on this
branch) and the throughput with the lanes branch's stand-in engine (not merged here); the report
says so in `not_measured`. Run from the repository root (a default run: about 1 minute):

    python benchmarks/batch.py [--model M] [--repeat 200] [--json reports/batch/cpu.json]
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
NOT_MEASURED = [
    "GPU stages at batch N: helpers.gpu runs one image per call (not built yet)",
    "throughput with the stand-in engine (benchmarks/standin_engine.py, not TensorRT) at batch N: "
    "not built yet",
]


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


def measure(detector: Detector, label: str, frame: np.ndarray, repeat: int) -> dict:
    cases: dict[str, Callable[[], object]] = {}
    faces = {}
    for batch in BATCHES:
        found, faces[batch] = steps(detector, frame, batch)
        cases.update(found)
    for fn in cases.values():  # warm every case before any is timed
        fn()
    t = medians_in_turns(cases, repeat)
    per_frame = {b: (t[f"pre_b{b}"] + t[f"post_b{b}"]) / b for b in BATCHES}
    return {
        "frame": label,
        "input_size": list(detector.input_size),
        "faces_per_image": faces[1],
        "median_ms_per_batch": {k: round(v, 4) for k, v in t.items()},
        "prepost_ms_per_frame": {str(b): round(v, 4) for b, v in per_frame.items()},
        "per_frame_vs_batch1": {str(b): round(v / per_frame[1], 3) for b, v in per_frame.items()},
    }


def format_report(report: dict) -> str:
    lines = [f"CPU pre+post per frame (ms), {report['model']}, {report['machine']['cpu']}"]
    lines.append(f"{'frame':<11}{'faces':>6}" + "".join(f"{f'batch {b}':>10}" for b in BATCHES) + "   b8/b1")
    for r in report["results"]:
        row = "".join(f"{r['prepost_ms_per_frame'][str(b)]:>10.3f}" for b in BATCHES)
        lines.append(f"{r['frame']:<11}{r['faces_per_image']:>6}{row}   {r['per_frame_vs_batch1']['8']:.2f}")
    lines.append(f"(medians over {report['repeat']} batches, blocks of 10 in turn; inference not timed)")
    lines += [f"not measured: {line}" for line in report["not_measured"]]
    return "\n".join(lines)


def main() -> None:
    args = frame_parser(__doc__, 200).parse_args()
    model = resolve(args.model)
    backend = OnnxRuntimeBackend(batchify(model), ["CPUExecutionProvider"])
    detector = Detector(backend, (args.size[0], args.size[1]))
    image = source_image()
    rows = [measure(detector, label, cv2.resize(image, wh), args.repeat) for label, wh in FRAMES.items()]
    report = {
        "command": command(),
        "model": model.name,
        "repeat": args.repeat,
        "machine": {"cpu": f"{os.cpu_count()} x {cpu_name()}", "python": platform.python_version()},
        "results": rows,
        "not_measured": NOT_MEASURED,
    }
    publish(report, format_report(report), args.json)


if __name__ == "__main__":
    main()
