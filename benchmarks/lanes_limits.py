"""What bounds the lanes' engine busy fraction, around the stand-in engine (NOT TensorRT).

benchmarks/lanes.py shows the busy fraction staying under 0.9 with 2-8 lanes, and pinned frames
gaining nothing from lanes. Recorded on an H200 (reports/lanes/lanes_limits.txt), neither the
Python around a frame nor the GIL's switch interval explains it: with no engine (E = 0) two lanes
run 1.75x one lane, and a 0.2 ms switch interval changes nothing. The suspect is the stand-in
itself: one kernel that fills every SM for all of E lets no other lane's small kernels
(letterbox, decode, NMS, on whose results that lane's host waits) run until it ends, so lanes
fall into step behind each engine. A real engine is many layer kernels, between which other
streams' kernels are scheduled. This runs the same lanes with E as 1 kernel and as `--kernels`
kernels back to back, side by side in one run (1080p pageable frames, GPU stages), and keeps
the switch-interval comparison. Run on the GPU machine, from the repository root:

    python benchmarks/lanes_limits.py --json reports/lanes/lanes_limits.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lanes import _host_ms, throughput
from standin_engine import LABEL, recorded_engine

from helpers.atomic import write_text
from helpers.detector import Detector
from helpers.gpu.stages import GpuStages
from helpers.images import read_image
from helpers.models import resolve
from helpers.photos import photo_dir
from helpers.samples import sample_path

INTERVALS = (0.005, 0.0002)


def make_lanes(model: Path, photo: np.ndarray, n: int, engine_ms: float, kernels: int) -> list:
    lanes = []
    for _ in range(n):
        stages = GpuStages(recorded_engine(model, photo, (640, 640), engine_ms, kernels))
        lanes.append((Detector(stages.engine, stages=stages), stages))  # type: ignore[arg-type]
    return lanes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--engine-ms", type=float, nargs="+", default=[0.5, 2.0])
    parser.add_argument("--kernels", type=int, default=20, help="E split into this many kernels")
    parser.add_argument("--seconds", type=float, default=0.6, help="per case (default: %(default)s)")
    parser.add_argument("--json", help="also write the results here (atomically)")
    args = parser.parse_args()
    model = resolve(None)
    photos = {
        "crowd48.png": read_image(sample_path("crowd48.png")),
        "t1.jpg": read_image(photo_dir() / "t1.jpg"),
    }
    print(f"{LABEL}; 1920x1080 pageable frames, GPU stages, model {model.name}")
    rows = []
    for name, photo in photos.items():
        frame = cv2.resize(photo, (1920, 1080))
        for engine_ms in [0.0, *args.engine_ms]:
            for kernels in (1, args.kernels) if engine_ms else (1,):
                pools = {n: make_lanes(model, photo, n, engine_ms, kernels) for n in args.lanes}
                detector, stages = pools[args.lanes[0]][0]
                host = _host_ms(detector, frame, stages)
                print(f"{name} E {engine_ms} ms in {kernels} kernel(s): one lane's host ms per frame {host}")
                for interval in INTERVALS if kernels == 1 else INTERVALS[:1]:
                    sys.setswitchinterval(interval)
                    for n in args.lanes:
                        r = throughput(pools[n], frame, False, args.seconds)
                        busy = r["frames"] * engine_ms / 1e3 / r["wall_s"]
                        row = {
                            "photo": name,
                            "engine_ms": engine_ms,
                            "kernels": kernels,
                            "switch_interval_ms": interval * 1e3,
                            "lanes": n,
                            "fps": round(r["fps"], 1),
                            "busy": round(busy, 3),
                            "host_ms": host,
                        }
                        rows.append(row)
                        switch = f"switch {interval * 1e3:>4.1f} ms"
                        print(f"  {switch}, lanes {n}: {r['fps']:.1f} fps, busy {busy:.2f}", flush=True)
    sys.setswitchinterval(INTERVALS[0])
    if args.json:
        report = {"label": LABEL, "model": model.name, "command": " ".join(sys.argv), "rows": rows}
        write_text(args.json, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
