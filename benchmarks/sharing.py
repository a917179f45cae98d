"""What making a `Detector` safe to share costs one thread per frame, side by side in one run.

The Detector looks up its per-thread Preprocessor (a `threading.local`) once per frame, and the
TensorRT backend and GPU stages take an uncontended re-entrant run lock once or twice per
frame. Each is timed against what it replaced (a plain attribute, no lock), in alternating
blocks, and set against one whole CPU frame (ONNX Runtime) on the same machine. Run from the
repository root:

    python benchmarks/sharing.py [--model M] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.detector import Detector
from helpers.models import resolve
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path

CALLS = 100_000


def per_call_us(fn: Callable[[], object], calls: int = CALLS) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def median_pair(a: Callable[[], object], b: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Medians of `a` and `b`, taking turns so drift on a shared machine hits both alike."""
    times_a, times_b = [], []
    for _ in range(repeat):
        times_a.append(per_call_us(a))
        times_b.append(per_call_us(b))
    return statistics.median(times_a), statistics.median(times_b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="scrfd_2.5g")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    detector = Detector(OnnxRuntimeBackend(resolve(args.model), providers=["CPUExecutionProvider"]))
    plain = detector._prep  # what a shared attribute cost: one attribute read
    holder = type("Holder", (), {"prep": plain})()
    lock = threading.RLock()

    def locked() -> None:
        with lock:
            pass

    local_us, attr_us = median_pair(lambda: detector._prep, lambda: holder.prep, args.repeat)
    lock_us, none_us = median_pair(locked, lambda: None, args.repeat)
    image = cv2.imread(str(sample_path("crowd48.png")))
    detector.detect(image)
    frame_ms = statistics.median(
        per_call_us(lambda: detector.detect(image), 5) / 1e3 for _ in range(args.repeat)
    )

    print(f"one CPU frame ({args.model}, ONNX Runtime, crowd48.png): {frame_ms:.2f} ms")
    for what, new, old in [
        ("per-thread Preprocessor look-up vs attribute", local_us, attr_us),
        ("uncontended RLock enter+exit vs nothing", lock_us, none_us),
    ]:
        extra = new - old
        share = extra / (frame_ms * 1e3)
        print(f"{what}: {new:.3f} us vs {old:.3f} us: +{extra:.3f} us, {share:.1e} of a frame")


if __name__ == "__main__":
    main()
