"""One `Detector` shared by worker threads, as a service shares it: every result is the one-thread
result. Runs in CI on ONNX Runtime (CPU); the GPU setups are in tests/test_sharing_gpu.py.

Before per-thread scratch buffers, 8 threads over these frames gave 10-15 % wrong faces on a
2-core machine and 34-39 % on 16 cores, silently.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from helpers.detections import Faces
from helpers.detector import Detector
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path

THREADS, ROUNDS = 8, 12


def frames() -> list[np.ndarray]:
    """Different sizes and contents, so a blob or scratch buffer of one frame shows in another."""
    import cv2

    crowd = cv2.imread(str(sample_path("crowd48.png")))
    astronaut = cv2.imread(str(sample_path("astronaut.png")))
    return [
        crowd,
        astronaut,
        crowd[:, ::-1].copy(),
        cv2.resize(astronaut, (333, 517)),
        crowd[40:400, 10:600].copy(),
    ]


def same(a: Faces, b: Faces) -> bool:
    return len(a) == len(b) and np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)


def shared_results(detector: Detector, images: list[np.ndarray]) -> tuple[list[Faces], list[Faces]]:
    """(one thread's faces per frame, the shared runs' faces that differ from them)."""
    want = [detector.detect(image) for image in images]
    jobs = [i for _ in range(ROUNDS) for i in range(len(images))]
    start = threading.Barrier(THREADS)

    def work(indices: list[int]) -> list[tuple[int, Faces]]:
        start.wait()  # all threads at once, so their frames overlap
        return [(i, detector.detect(images[i])) for i in indices]

    with ThreadPoolExecutor(THREADS) as pool:
        chunks = pool.map(work, [jobs[k::THREADS] for k in range(THREADS)])
    return want, [faces for chunk in chunks for i, faces in chunk if not same(faces, want[i])]


@pytest.mark.parametrize("size", [(640, 640), (640, 480)])
def test_detector_shared_by_threads_gives_one_thread_results(default_model, size):
    detector = Detector(OnnxRuntimeBackend(default_model, providers=["CPUExecutionProvider"]), size)
    want, wrong = shared_results(detector, frames())
    assert sum(len(w) for w in want) > 0
    assert not wrong, f"{len(wrong)} of {ROUNDS * len(want)} shared runs differ from one thread"


def test_each_thread_has_its_own_preprocessor(default_model):
    detector = Detector(OnnxRuntimeBackend(default_model, providers=["CPUExecutionProvider"]))
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(detector._prep)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(p) for p in seen}) == 3
    assert detector._prep is detector._prep
