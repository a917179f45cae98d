"""Frames per second against parallel lanes, around a stand-in engine (NOT TensorRT) on the GPU.

Lanes 1, 2, 4, 8 (each its own stand-in engine, stream, buffers and GPU stages, borrowed from a
helpers.lanes.LanePool by as many worker threads), at 640x480 and 1920x1080, frames from
ordinary pageable numpy arrays and from each lane's pinned `GpuStages.frame_buffer`, with an
engine time E of 0.5 and 2 ms; all side by side in one run. The engine is
benchmarks/standin_engine.py: a kernel occupying the whole GPU for E, so lanes' engines
serialise as TensorRT's would, then recorded SCRFD outputs. Busy fraction = frames x E / wall
time: how much of the time the engine was running. Run on the GPU machine, from the repo root:

    python benchmarks/lanes.py --json reports/lanes/lanes.json | tee reports/lanes/lanes.txt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpu_prepost import gpu_machine
from prepost import source_image
from standin_engine import LABEL, Recording, StandInEngine, record

from helpers.detector import Detector
from helpers.lanes import LanePool
from helpers.lanes.report import HEADER, format_report, format_row
from helpers.models import resolve

FRAMES = {"640x480": (640, 480), "1920x1080": (1920, 1080)}
SOURCES = ("pageable", "pinned")


def lane_pool(recording: Recording, lanes: int, busy_ms: float, graph: bool) -> LanePool:
    from helpers.gpu.stages import GpuStages

    size = (recording.input_shape[3], recording.input_shape[2])
    stages = [GpuStages(StandInEngine(recording, busy_ms), graph=graph) for _ in range(lanes)]
    detectors = [Detector(s.engine, size, stages=s) for s in stages]  # type: ignore[arg-type]
    return LanePool(detectors, stages)


def measure(pool: LanePool, frame: np.ndarray, source: str, frames: int, faces: int) -> float:
    """Wall seconds for `frames` frames through the pool on one thread per lane; every frame
    must give the recording's `faces` faces."""
    if source == "pinned":  # each lane's own page-locked staging buffer, filled once
        buffers = {}
        for detector in pool.lanes:
            buffer = detector.stages.frame_buffer(frame.shape)  # type: ignore[union-attr]
            buffer[...] = frame
            buffers[id(detector)] = buffer
        pick = lambda detector, i: buffers[id(detector)]  # noqa: E731
    else:  # a few distinct ordinary arrays, as decoded frames are
        copies = [frame.copy() for _ in range(4)]
        pick = lambda detector, i: copies[i % len(copies)]  # noqa: E731

    def job(detector: Detector, i: int) -> int:
        return len(detector.run(pick(detector, i)).faces)

    pool.map(job, range(4 * len(pool)))  # warm-up: kernels compiled, graphs captured
    start = time.perf_counter()
    found = pool.map(job, range(frames))
    wall = time.perf_counter() - start
    if set(found) != {faces}:
        raise SystemExit(f"the lanes found {sorted(set(found))} faces, the recording {faces}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="ONNX model whose outputs are recorded (default: the model folder's)")
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--busy-ms", type=float, nargs="+", default=[0.5, 2.0], help="engine time E")
    parser.add_argument("--frames", type=int, default=400, help="frames per measurement")
    parser.add_argument("--quick", action="store_true", help="60 frames per measurement: a smoke run")
    parser.add_argument("--graph", action="store_true", help="replay letterbox+engine+decode as CUDA graphs")
    parser.add_argument("--json", help="also write the report here (atomically)")
    args = parser.parse_args()
    frames = 60 if args.quick else args.frames
    model = resolve(args.model)
    photo = source_image()
    rows, found = [], {}
    print(f"{LABEL}; GPU stages{' with CUDA graphs' if args.graph else ''}; {frames} frames each")
    print(HEADER)
    for label, (w, h) in FRAMES.items():
        frame = cv2.resize(photo, (w, h))
        recording = record(model, frame)
        found[label] = len(recording.faces)
        for busy_ms in args.busy_ms:
            for source in SOURCES:
                base = None
                for lanes in args.lanes:
                    with lane_pool(recording, lanes, busy_ms, args.graph) as pool:
                        wall = measure(pool, frame, source, frames, len(recording.faces))
                    fps = frames / wall
                    base = base or fps
                    row = {
                        "frame": label,
                        "source": source,
                        "busy_ms": busy_ms,
                        "lanes": lanes,
                        "fps": round(fps, 1),
                        "busy": round(frames * busy_ms / 1e3 / wall, 3),
                        "ratio_to_1_lane": round(fps / base, 2),
                    }
                    rows.append(row)
                    print(format_row(row), flush=True)
    report = {
        "engine": LABEL,
        "machine": gpu_machine(),
        "command": "python " + " ".join(sys.argv),
        "model": model.name,
        "frames_per_measurement": frames,
        "graph": args.graph,
        "faces_per_frame": found,
        "rows": rows,
    }
    print(format_report(report).splitlines()[-1])
    if args.json:
        from helpers.atomic import write_text

        write_text(args.json, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
