"""The benchmark's stand-in engine (benchmarks/standin_engine.py, NOT TensorRT) and its report.

On a GPU (marker `gpu`, skipped by name without CuPy and a GPU): the busy kernel lasts E, two
engines on two streams take turns (the kernel fills the GPU), and the GPU stages around the
stand-in find the CPU detector's faces, also from 8 threads over 4 lanes. On the CPU: the
recorded report reads as a labelled table, and its absence is one line.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import shared_image
from standin_engine import LABEL, StandinEngine, recorded_engine
from test_gpu_stages import _require_cupy_gpu, assert_close_faces

from helpers.detector import Detector
from helpers.images import read_image


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return cv2.resize(read_image(shared_image("t1.jpg")), (1920, 1080))


@pytest.fixture
def gpu():
    _require_cupy_gpu()


def _busy_ms(engines: list[StandinEngine]) -> float:
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
@pytest.mark.parametrize("kernels", [1, 20])
@pytest.mark.parametrize("engine_ms", [0.5, 2.0])
def test_the_kernel_lasts_e_and_two_engines_take_turns(gpu, default_model, frame, engine_ms, kernels):
    engines = [recorded_engine(default_model, frame, (640, 640), engine_ms, kernels) for _ in range(2)]
    _busy_ms(engines[:1])  # compile and warm up
    one = float(np.median([_busy_ms(engines[:1]) for _ in range(5)]))
    two = float(np.median([_busy_ms(engines) for _ in range(5)]))
    assert 0.95 * engine_ms <= one <= 1.3 * engine_ms + 0.05, one
    assert two >= 1.8 * engine_ms, two  # the kernel fills the GPU: a second one cannot run beside it


@pytest.mark.gpu
@pytest.mark.parametrize("graph", [False, True])
def test_gpu_stages_around_the_stand_in_find_the_cpu_faces(gpu, default_model, frame, graph):
    from concurrent.futures import ThreadPoolExecutor

    from helpers.gpu.stages import GpuStages
    from helpers.lanes import LanePool
    from helpers.ort_backend import OnnxRuntimeBackend

    cpu = Detector(OnnxRuntimeBackend(default_model, ["CPUExecutionProvider"]), (640, 640)).detect(frame)
    assert len(cpu) >= 3
    engines = [recorded_engine(default_model, frame, (640, 640), 0.5) for _ in range(4)]
    stages = [GpuStages(engine, graph=graph) for engine in engines]
    detectors = [Detector(s.engine, stages=s) for s in stages]  # type: ignore[arg-type]
    with LanePool(detectors, stages) as pool:
        one = pool.detect(frame)
        assert_close_faces(cpu, one)
        with ThreadPoolExecutor(8) as workers:  # 8 threads borrowing 4 lanes
            many = list(workers.map(pool.detect, [frame] * 64))
        if graph:
            assert all(s.captured for s in stages)
    assert all(f.to_json() == one.to_json() for f in many)


def test_the_recorded_report_reads_as_a_labelled_table(tmp_path):
    from helpers.lanes.report import recorded_lanes

    missing = recorded_lanes(tmp_path / "lanes.json")
    assert missing.startswith("not recorded yet") and "\n" not in missing
    row = {"engine_ms": 0.5, "frame": "1920x1080", "source": "pageable", "fps": 1000.4}
    report = {
        "label": LABEL,
        "gpu": "NVIDIA H200",
        "model": "m.onnx",
        "command": "benchmarks/lanes.py --json reports/lanes/lanes.json",
        "rows": [
            {**row, "lanes": 1, "busy": 0.5, "vs_1_lane": 1.0},
            {**row, "lanes": 4, "busy": 0.95, "vs_1_lane": 1.9},
        ],
    }
    (tmp_path / "lanes.json").write_text(json.dumps(report))
    text = recorded_lanes(tmp_path / "lanes.json")
    assert "NVIDIA H200" in text and "not TensorRT" in text and "benchmarks/lanes.py" in text
    cells = [c.strip() for c in text.splitlines()[-1].strip("|").split("|")]
    assert cells == ["0.5", "1920x1080", "pageable", "4", "1000", "0.95", "1.9"]
