"""What sharing costs a frame when nobody contends: the per-thread preprocessor look-up and the
run lock, against one whole CPU detection, measured side by side in one run.

    python benchmarks/sharing.py
"""

from __future__ import annotations

import sys
import threading
import timeit
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.detector import Detector
from helpers.models import resolve
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path


def per_call_us(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    detector = Detector(OnnxRuntimeBackend(resolve(None), providers=["CPUExecutionProvider"]))
    image = cv2.imread(str(sample_path("crowd48.png")))
    lock = threading.RLock()

    def locked() -> None:
        with lock:
            pass

    lookup = per_call_us(lambda: detector._prep, 200_000)
    run_lock = per_call_us(locked, 200_000)
    frame = per_call_us(lambda: detector.detect(image), 5)
    print(f"per-thread preprocessor look-up {lookup:.3f} us, uncontended run lock {run_lock:.3f} us")
    print(f"one CPU detection (ONNX Runtime, 640x640, 48 faces) {frame / 1e3:.1f} ms")
    print(f"sharing costs {(lookup + run_lock) / frame:.2e} of a frame (the TensorRT backend adds one")
    print("context push/pop per session, which this CPU machine cannot measure)")


if __name__ == "__main__":
    main()
