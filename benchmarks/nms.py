"""Greedy NMS: `helpers.nms.nms` (the IoU matrix below 64 candidates, pruned pairs to 512, the
reference's row loop above) against what it did before (the matrix up to 512, the row loop
above), side by side in one run on the same candidates, checked to keep the same indices first.

Candidates: a real decode (scrfd_2.5g on the 48-face crowd sample and the 6-face group photo, at
640x640, threshold 0.5, and the crowd at 0.05), and 3,000 random boxes. Prints median
microseconds and the ratio; run from the repository root:

    python benchmarks/nms.py [--repeat 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prepost import cpu_name, source_image

from helpers.detector import Detector
from helpers.images import read_image
from helpers.models import resolve
from helpers.nms import _iou_matrix, _scan_matrix, nms, trace
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path


def before_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """helpers.nms before the pruning: the IoU matrix up to 512 candidates, the row loop above."""
    if len(scores) > 512:
        return np.asarray([i for i, _ in trace(boxes, scores, threshold)], np.int64)
    order = scores.argsort()[::-1]
    return order[_scan_matrix(_iou_matrix(boxes[order]) > threshold)]


def median_us(fn, repeat: int) -> float:
    fn()
    laps = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        laps.append((time.perf_counter() - t) * 1e6)
    return statistics.median(laps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    backend = OnnxRuntimeBackend(resolve(None), ["CPUExecutionProvider"])
    crowd = read_image(sample_path("crowd48.png"))
    sets = {}
    for label, image, thr in (
        ("crowd48", crowd, 0.5),
        ("group photo", source_image(), 0.5),
        ("crowd48 @0.05", crowd, 0.05),
    ):
        cands = Detector(backend, score_threshold=thr).run(image).candidates
        sets[label] = (cands.boxes, cands.scores)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 900, (3000, 2)).astype(np.float32)
    sets["3000 random"] = (
        np.hstack([xy, xy + rng.uniform(5, 120, (3000, 2)).astype(np.float32)]),
        rng.permutation(3000).astype(np.float32),
    )
    print(f"NMS at IoU 0.4, median us over {args.repeat} calls, {cpu_name()}")
    for label, (boxes, scores) in sets.items():
        if not np.array_equal(nms(boxes, scores, 0.4), before_nms(boxes, scores, 0.4)):
            raise SystemExit(f"{label}: the two NMS keep different boxes")
        old = median_us(lambda b=boxes, s=scores: before_nms(b, s, 0.4), args.repeat)
        new = median_us(lambda b=boxes, s=scores: nms(b, s, 0.4), args.repeat)
        print(
            f"{label:>14}: {len(scores):5d} candidates  before {old:8.1f}  now {new:8.1f}  x{old / new:.2f}"
        )


if __name__ == "__main__":
    main()
