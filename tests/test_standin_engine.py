"""The benchmark's stand-in engine (benchmarks/standin_engine.py, NOT TensorRT).

On the CPU: the recording is one real ONNX Runtime run whose outputs decode to the CPU
detector's faces. On a GPU (marker `gpu`, skipped by name without CuPy and a GPU): the busy
kernel lasts E, two engines on two streams serialise (the kernel fills the GPU), and the GPU
stages around the stand-in find the recorded faces, also from 8 threads over 4 lanes.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import shared_image
from standin_engine import LABEL, Recording, StandInEngine, record
from test_gpu_stages import _require_cupy_gpu, assert_close_faces

from helpers.detector import Detector, postprocess
from helpers.images import read_image
from helpers.layout import infer_layout


@pytest.fixture(scope="module")
def recording(default_model) -> tuple[np.ndarray, Recording]:
    frame = cv2.resize(read_image(shared_image("t1.jpg")), (1920, 1080))
    return frame, record(default_model, frame)


def test_the_recording_is_a_real_run_that_decodes_to_the_cpu_faces(recording, default_model):
    from helpers.letterbox import fit

    frame, rec = recording
    assert rec.input_shape == (1, 3, 640, 640) and len(rec.faces) >= 3
    shapes = {k: v.shape for k, v in rec.outputs.items()}
    layout = infer_layout(shapes, 640, 640, True)
    faces, _, _ = postprocess(rec.outputs, layout, fit(frame.shape[:2], (640, 640)), 0.5, 0.4)
    assert faces.to_json() == rec.faces.to_json()
    assert "not TensorRT" in LABEL


@pytest.fixture
def gpu():
    _require_cupy_gpu()


def _busy_ms(engines: list[StandInEngine]) -> float:
    """Event-timed ms from before the first engine's kernel to after every engine's."""
    import cupy

    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    first = engines[0].stream
    start.record(first)
    for engine in engines[1:]:
        engine.stream.wait_event(start)
    for engine in engines:
        engine.enqueue()
    for engine in engines[1:]:
        done = cupy.cuda.Event()
        done.record(engine.stream)
        first.wait_event(done)
    end.record(first)
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end)


@pytest.mark.gpu
@pytest.mark.parametrize("busy_ms", [0.5, 2.0])
def test_the_kernel_lasts_e_and_two_engines_serialise(gpu, recording, busy_ms):
    _, rec = recording
    engines = [StandInEngine(rec, busy_ms) for _ in range(2)]
    _busy_ms(engines[:1])  # compile and warm up
    one = float(np.median([_busy_ms(engines[:1]) for _ in range(5)]))
    two = float(np.median([_busy_ms(engines) for _ in range(5)]))
    assert 0.95 * busy_ms <= one <= 1.3 * busy_ms + 0.05, one
    assert two >= 1.8 * busy_ms, two  # the kernel fills the GPU: a second one cannot run beside it


@pytest.mark.gpu
@pytest.mark.parametrize("graph", [False, True])
def test_gpu_stages_around_the_stand_in_find_the_recorded_faces(gpu, recording, graph):
    from helpers.gpu.stages import GpuStages
    from helpers.lanes import LanePool

    frame, rec = recording
    stages = [GpuStages(StandInEngine(rec, 0.5), graph=graph) for _ in range(4)]
    detectors = [Detector(s.engine, (640, 640), stages=s) for s in stages]  # type: ignore[arg-type]
    with LanePool(detectors, stages) as pool:
        one = pool.detect(frame)
        assert_close_faces(rec.faces, one)
        many = pool.map(lambda detector, image: detector.detect(image), [frame] * 64)
        if graph:
            assert all(s._captured is not None for s in stages)
    assert all(f.to_json() == one.to_json() for f in many)


def test_the_benchmark_report_reads_as_a_labelled_table(tmp_path):
    from helpers.lanes.report import format_report, load_report

    assert load_report(tmp_path / "none.json") is None
    row = {"frame": "1920x1080", "source": "pageable", "busy_ms": 0.5, "lanes": 2, "fps": 1000.0}
    report = {
        "engine": LABEL,
        "frames_per_measurement": 60,
        "model": "m.onnx",
        "command": "python benchmarks/lanes.py",
        "machine": {"gpu": "NVIDIA H200", "cupy": "13"},
        "rows": [
            {**row, "busy": 0.5, "ratio_to_1_lane": 1.0},
            {**row, "lanes": 4, "busy": 0.95, "ratio_to_1_lane": 1.9},
        ],
    }
    text = format_report(report)
    assert "not TensorRT" in text and "NVIDIA H200" in text and "python benchmarks/lanes.py" in text
    assert text.splitlines()[3].split() == ["1920x1080", "pageable", "0.5", "4", "1000.0", "0.95", "1.9"]
