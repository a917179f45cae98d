"""Frames per second against lanes, with the GPU stages around a stand-in engine (NOT TensorRT).

Each lane: its own stand-in engine of fixed duration E (benchmarks/standin_engine.py: one
kernel that fills every SM for E, then recorded SCRFD outputs), non-blocking stream, GPU stages
and Detector; one thread per lane detects frames as fast as it can. Lanes' engines take turns on
the GPU as real engines would, so the engine's busy fraction (frames x E / wall time) says how
well lanes hide one frame's upload, host copy and post-processing behind another's engine time.
Frames come from ordinary (pageable) numpy arrays or from the stages' pinned frame buffers.
Run on the GPU machine, from the repository root:

    python benchmarks/lanes.py --json reports/lanes/lanes.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from standin_engine import LABEL, recorded_engine

from helpers.atomic import write_text
from helpers.detector import Detector
from helpers.gpu.stages import GpuStages
from helpers.models import resolve
from helpers.samples import sample_path

FRAMES = {"640x480": (640, 480), "1920x1080": (1920, 1080)}


def make_lanes(model: Path, photo: np.ndarray, n: int, engine_ms: float) -> list[tuple[Detector, GpuStages]]:
    lanes = []
    for _ in range(n):
        engine = recorded_engine(model, photo, (640, 640), engine_ms)
        stages = GpuStages(engine)
        lanes.append((Detector(engine, stages=stages), stages))
    return lanes


def in_threads(steps: list[Callable[[], object]], seconds: float) -> tuple[list[list[float]], float]:
    """Each step called in a loop on a thread of its own for about `seconds`, all released at
    once: the ms of every call per thread, and the wall time."""
    laps: list[list[float]] = [[] for _ in steps]
    start = threading.Barrier(len(steps) + 1)
    deadline = [0.0]

    def work(i: int) -> None:
        start.wait()
        while (t := time.perf_counter()) < deadline[0]:
            steps[i]()
            laps[i].append((time.perf_counter() - t) * 1e3)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(steps))]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    deadline[0] = t0 + seconds
    start.wait()
    for t in threads:
        t.join()
    return laps, time.perf_counter() - t0


def throughput(
    lanes: list[tuple[Detector, GpuStages]], frame: np.ndarray, pinned: bool, seconds: float
) -> dict:
    """Frames/s of all lanes together, each lane one thread, for about `seconds`."""
    sources = []
    for _, stages in lanes:
        if pinned:
            buffer = stages.frame_buffer(frame.shape)
            np.copyto(buffer, frame)
            sources.append(buffer)
        else:
            sources.append(frame.copy())
    for (detector, _), source in zip(lanes, sources, strict=True):  # warm up: kernels, buffers
        for _ in range(5):
            detector.detect(source)
    steps = [lambda d=d, s=s: d.detect(s) for (d, _), s in zip(lanes, sources, strict=True)]
    laps, wall = in_threads(steps, seconds)
    frames = sum(map(len, laps))
    return {"frames": frames, "wall_s": wall, "fps": frames / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an SCRFD .onnx (default: the model folder's default)")
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--engine-ms", type=float, nargs="+", default=[0.5, 2.0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per case (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="0.3 s per case, lanes 1 2 4")
    parser.add_argument(
        "--switch-interval", type=float, help="sys.setswitchinterval (s): how often threads take the GIL"
    )
    parser.add_argument("--json", help="also write the results here (atomically)")
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.quick:
        args.seconds, args.lanes = 0.3, [1, 2, 4]
    import cupy

    model = resolve(args.model)
    photo = cv2.imread(str(sample_path("crowd48.png")))
    props = cupy.cuda.runtime.getDeviceProperties(0)
    gpu = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    print(f"{LABEL}\nGPU {gpu}, host {platform.processor() or platform.machine()}, model {model.name}")
    print(
        f"busy = frames x the engine's measured duration / wall time; GIL switch {sys.getswitchinterval()} s"
    )
    check = make_lanes(model, photo, 1, 0.5)[0][0]
    want = len(Detector(recorded_engine(model, photo, (640, 640), 0.5)).detect(photo))
    got = len(check.detect(photo))
    print(
        f"check: the stand-in's recorded outputs give {got} faces through the GPU stages, {want} on the CPU"
    )
    rows = []
    for engine_ms in args.engine_ms:
        pools = {n: make_lanes(model, photo, n, engine_ms) for n in args.lanes}
        measured = _engine_ms(pools[args.lanes[0]][0][0].backend)
        for label, (w, h) in FRAMES.items():
            frame = cv2.resize(photo, (w, h))
            for pinned in (False, True):
                host = _host_ms(pools[args.lanes[0]][0][0], frame, pools[args.lanes[0]][0][1], pinned)
                print(
                    f"E {engine_ms} ms {label} {'pinned' if pinned else 'pageable'}: one lane's host ms "
                    f"{host}"
                )
                base = None
                for n in args.lanes:
                    r = throughput(pools[n], frame, pinned, args.seconds)
                    busy = r["frames"] * measured / 1e3 / r["wall_s"]
                    base = base or r["fps"]
                    row = {
                        "engine_ms": engine_ms,
                        "engine_ms_measured": measured,
                        "frame": label,
                        "source": "pinned" if pinned else "pageable",
                        "lanes": n,
                        "fps": round(r["fps"], 1),
                        "busy": round(busy, 3),
                        "vs_1_lane": round(r["fps"] / base, 2),
                    }
                    rows.append(row)
                    print(
                        f"E {engine_ms:>3} ms  {label:>9}  {row['source']:>8}  lanes {n}: "
                        f"{row['fps']:8.1f} fps  busy {row['busy']:.2f}  x{row['vs_1_lane']:.2f} of 1 lane"
                    )
    if args.json:
        report = {
            "label": LABEL,
            "gpu": gpu,
            "model": model.name,
            "command": " ".join(sys.argv),
            "rows": rows,
        }
        write_text(args.json, json.dumps(report, indent=2) + "\n")


def _host_ms(detector: Detector, frame: np.ndarray, stages: GpuStages, pinned: bool) -> dict[str, float]:
    """Median host ms per step of one lane's frame (pre: stage + enqueue, wait, post: collect + NMS)."""
    source = frame
    if pinned:
        source = stages.frame_buffer(frame.shape)
        np.copyto(source, frame)
    steps: dict[str, list[float]] = {"pre": [], "wait": [], "post": []}
    for _ in range(50):
        t = detector.run(source).timings
        for name, ms in zip(steps, (t.preprocess, t.inference, t.postprocess), strict=True):
            steps[name].append(ms)
    return {name: round(float(np.median(v)), 3) for name, v in steps.items()}


def _engine_ms(engine) -> float:
    """The stand-in's real duration: the median of CUDA events around 5 enqueues, after one that
    pays the kernel's first launch (timed, it read 85 ms on the H200)."""
    import cupy

    laps = []
    for _ in range(6):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record(engine.stream)
        engine.enqueue()
        end.record(engine.stream)
        end.synchronize()
        laps.append(cupy.cuda.get_elapsed_time(start, end))
    return round(float(np.median(laps[1:])), 3)


if __name__ == "__main__":
    main()
