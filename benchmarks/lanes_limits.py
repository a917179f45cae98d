"""What bounds the lanes' engine busy fraction: host time per frame under the GIL, and the
interpreter's thread switch interval. Around the stand-in engine (NOT TensorRT).

benchmarks/lanes.py shows the busy fraction staying under 0.9 with 2-8 lanes. This runs the same
lanes (1080p pageable frames, GPU stages) on two photos (48 faces, 6 faces), with E = 0 (no
engine: the host-bound ceiling, frames/s that the Python around a frame allows), 0.5 and 2 ms,
under Python's default switch interval (5 ms) and a short one (0.2 ms: a thread whose GPU wait
ended gets the GIL back sooner from a thread running Python), side by side in one run. Run on
the GPU machine, from the repository root:

    python benchmarks/lanes_limits.py --json reports/lanes/lanes_limits.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lanes import _host_ms, make_lanes, throughput
from prepost import SHARED
from standin_engine import LABEL

from helpers.atomic import write_text
from helpers.images import read_image
from helpers.models import resolve
from helpers.samples import sample_path

INTERVALS = (0.005, 0.0002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--engine-ms", type=float, nargs="+", default=[0.0, 0.5, 2.0])
    parser.add_argument("--seconds", type=float, default=0.6, help="per case (default: %(default)s)")
    parser.add_argument("--json", help="also write the results here (atomically)")
    args = parser.parse_args()
    model = resolve(None)
    photos = {"crowd48.png": read_image(sample_path("crowd48.png")), "t1.jpg": read_image(SHARED / "t1.jpg")}
    print(f"{LABEL}; 1920x1080 pageable frames, GPU stages, model {model.name}")
    rows = []
    for name, photo in photos.items():
        frame = cv2.resize(photo, (1920, 1080))
        for engine_ms in args.engine_ms:
            pools = {n: make_lanes(model, photo, n, engine_ms) for n in args.lanes}
            detector, stages = pools[args.lanes[0]][0]
            host = _host_ms(detector, frame, stages)
            print(f"{name} E {engine_ms} ms: one lane's host ms per frame {host}")
            for interval in INTERVALS:
                sys.setswitchinterval(interval)
                for n in args.lanes:
                    r = throughput(pools[n], frame, False, args.seconds)
                    busy = r["frames"] * engine_ms / 1e3 / r["wall_s"]
                    row = {
                        "photo": name,
                        "engine_ms": engine_ms,
                        "switch_interval_ms": interval * 1e3,
                        "lanes": n,
                        "fps": round(r["fps"], 1),
                        "busy": round(busy, 3),
                        "host_ms": host,
                    }
                    rows.append(row)
                    print(
                        f"  switch {interval * 1e3:>4.1f} ms lanes {n}: {r['fps']:8.1f} fps busy {busy:.2f}",
                        flush=True,
                    )
    sys.setswitchinterval(INTERVALS[0])
    if args.json:
        report = {"label": LABEL, "model": model.name, "command": " ".join(sys.argv), "rows": rows}
        write_text(args.json, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
