"""Frames per second against lanes x batch, GPU stages around a stand-in engine (NOT TensorRT).

Each lane: its own stand-in engine (benchmarks/standin_engine.py: kernels that fill every SM
for a fixed time, then recorded SCRFD outputs of the batch), non-blocking stream, GPU stages
and Detector; one thread per lane runs batches as fast as it can. The engine's time at batch b
is an assumption, stated in every report line: E(b) = E0 + e * b (default 0.3 + 0.2 b ms, so
0.5 ms at batch 1, 1.9 ms at batch 8: a batch costs the GPU less per image, as real engines
do, but not nothing). So the figures show what the Python and the GPU stages around an engine
allow, not what TensorRT would do. Frames come from the stages' pinned frame buffers or from
ordinary (pageable) arrays. Run on the GPU machine, from the repository root:

    python benchmarks/batch_throughput.py --json reports/batch/throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpu_prepost import gpu_machine
from lanes import _engine_ms, in_threads
from prepost import command, cpu_name
from standin_engine import LABEL, recorded_engine

from helpers.atomic import write_text
from helpers.batch.batchify import batchify
from helpers.detector import Detector
from helpers.gpu.stages import GpuStages
from helpers.models import resolve
from helpers.samples import sample_path

SIZE = (640, 640)


class Lane:
    """One lane's detector and the sources of its batch (pinned buffers or pageable copies)."""

    def __init__(
        self, model: Path, photo: np.ndarray, frame: np.ndarray, batch: int, engine_ms: float, pinned: bool
    ):
        engine = recorded_engine(model, photo, SIZE, engine_ms, batch=batch)
        self.engine = engine
        stages = GpuStages(engine)
        self.detector = Detector(engine, stages=stages)
        if pinned:
            self.sources = [stages.frame_buffer(frame.shape, slot) for slot in range(batch)]
            for buffer in self.sources:
                np.copyto(buffer, frame)
        else:
            self.sources = [frame.copy() for _ in range(batch)]


def throughput(lanes: list[Lane], seconds: float) -> dict:
    """Frames/s of all lanes together, one thread per lane, and the median batch latency."""
    for lane in lanes:  # warm up: kernels, buffers, caches
        for _ in range(5):
            lane.detector.run_batch(lane.sources)
    laps, wall = in_threads(
        [lambda lane=lane: lane.detector.run_batch(lane.sources) for lane in lanes], seconds
    )
    frames = sum(len(lap) * len(lane.sources) for lap, lane in zip(laps, lanes, strict=True))
    return {
        "fps": frames / wall,
        "batches": sum(map(len, laps)),
        "wall_s": wall,
        "latency_ms": statistics.median(v for lap in laps for v in lap),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an SCRFD .onnx (default: the model folder's default)")
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--e0", type=float, default=0.3, help="engine ms per batch (default: %(default)s)")
    parser.add_argument("--e", type=float, default=0.2, help="engine ms per image (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=1.0, help="per case (default: %(default)s)")
    parser.add_argument("--json", help="also write the results here (atomically)")
    args = parser.parse_args()
    model = batchify(resolve(args.model))
    photo = cv2.imread(str(sample_path("crowd48.png")))
    machine = {**gpu_machine(), "cpu": f"{os.cpu_count()} x {cpu_name()}"}
    print(f"{LABEL}\n{machine['gpu']}; model {model.name}; E(b) = {args.e0} + {args.e} x b ms (assumed)")
    rows = []
    for label, wh, pinned in (
        ("640x480", (640, 480), True),
        ("640x480", (640, 480), False),
        ("1920x1080", (1920, 1080), True),
    ):
        frame = cv2.resize(photo, wh)
        source = "pinned" if pinned else "pageable"
        base = None
        for batch in args.batch:
            engine_ms = args.e0 + args.e * batch
            for n in args.lanes:
                lanes = [Lane(model, photo, frame, batch, engine_ms, pinned) for _ in range(n)]
                measured = _engine_ms(lanes[0].engine)
                r = throughput(lanes, args.seconds)
                base = base or r["fps"]
                busy = r["batches"] * measured / 1e3 / r["wall_s"]
                row = {
                    "frame": label,
                    "source": source,
                    "batch": batch,
                    "lanes": n,
                    "engine_ms_assumed": round(engine_ms, 3),
                    "engine_ms_measured": measured,
                    "fps": round(r["fps"], 1),
                    "latency_ms": round(r["latency_ms"], 3),
                    "busy": round(busy, 3),
                    "vs_b1_1lane": round(r["fps"] / base, 2),
                }
                rows.append(row)
                print(format_row(row), flush=True)
    if args.json:
        report = {
            "label": LABEL,
            "machine": machine,
            "model": model.name,
            "command": command(),
            "engine_ms": f"E(b) = {args.e0} + {args.e} x b (assumed, not measured from TensorRT)",
            "rows": rows,
        }
        write_text(args.json, json.dumps(report, indent=2) + "\n")


def format_row(row: dict) -> str:
    return (
        f"{row['frame']:>9} {row['source']:>8}  batch {row['batch']:>2}  lanes {row['lanes']}: "
        f"{row['fps']:8.1f} fps  batch latency {row['latency_ms']:6.2f} ms  engine busy {row['busy']:.2f}  "
        f"x{row['vs_b1_1lane']:.2f} of batch 1, 1 lane  (E {row['engine_ms_assumed']:.2f} ms)"
    )


def format_report(report: dict) -> str:
    """A saved report as the run printed it, headed by its label, machine and engine time."""
    head = [
        report["label"],
        f"recorded on the {report['machine']['gpu']} machine"
        + (f" (host CPU {report['machine']['cpu']})" if "cpu" in report["machine"] else "")
        + f"; frames made from the crowd48 sample; model {report['model']}; {report['engine_ms']}",
        f"made by: {report['command']}",
    ]
    return "\n".join(head + [format_row(r) for r in report["rows"]])


if __name__ == "__main__":
    main()
