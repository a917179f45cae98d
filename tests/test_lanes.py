"""Parallel lanes on the CPU: the pool's borrowing, order and close, ONNX Runtime lanes shared by
8 threads (every result equal to one thread's), the shared engine's lifetime, `detect --workers`."""

from __future__ import annotations

import glob
import json
import threading
import types

import numpy as np
import pytest
from conftest import SHARED_IMAGES
from test_cli import assert_one_line_error, cli

from helpers.errors import UserError
from helpers.lanes import Lane, LanePool, onnxruntime_lanes
from helpers.lanes.open import ort_threads


class Tag:
    """A stand-in detector: `detect` returns its own name with the input."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.backend = types.SimpleNamespace(name="fake")

    def detect(self, image):
        return (self.name, image)


def tag_pool(n: int, log: list) -> LanePool:
    lanes = [Lane(Tag(f"lane{i}"), [lambda i=i: log.append(f"close lane{i}")]) for i in range(n)]  # type: ignore[arg-type]
    return LanePool(lanes, after=lambda: log.append("close engine"))


def test_a_borrow_waits_for_a_free_lane_and_lanes_come_back():
    pool = tag_pool(1, [])
    second_has_it = threading.Event()

    def second() -> None:
        with pool.lane():
            second_has_it.set()

    with pool.lane() as first:
        assert first.name == "lane0"
        thread = threading.Thread(target=second)
        thread.start()
        assert not second_has_it.wait(0.2)  # the only lane is out
    assert second_has_it.wait(5)
    thread.join(5)
    with pool.lane() as again:
        assert again is first


def test_map_keeps_input_order_over_many_threads():
    pool = tag_pool(3, [])
    items = list(range(50))
    results = pool.map(items, workers=8)  # type: ignore[arg-type]
    assert [image for _, image in results] == items
    assert {name for name, _ in results} <= {"lane0", "lane1", "lane2"}


def test_close_waits_for_lanes_in_use_refuses_new_borrows_and_closes_once_in_order():
    log: list[str] = []
    pool = tag_pool(2, log)
    borrowed, release = threading.Event(), threading.Event()

    def worker() -> None:
        with pool.lane():
            borrowed.set()
            release.wait(5)

    thread = threading.Thread(target=worker)
    thread.start()
    assert borrowed.wait(5)
    closer = threading.Thread(target=pool.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive() and log == []  # a lane is still running: nothing closed under it
    with pytest.raises(UserError, match="lane pool is closed") as refused, pool.lane():
        pass
    assert "\n" not in str(refused.value)
    release.set()
    closer.join(5)
    thread.join(5)
    assert not closer.is_alive()
    assert log == ["close lane1", "close lane0", "close engine"]
    pool.close()  # idempotent
    assert len(log) == 3


def test_bad_counts_are_one_line_errors():
    with pytest.raises(UserError, match="at least one lane"):
        LanePool([])
    with pytest.raises(UserError, match="workers 0 is not positive"):
        list(tag_pool(1, []).imap(lambda d, x: x, [1], workers=0))
    with pytest.raises(UserError, match="0 lanes asked for"):
        onnxruntime_lanes("unused.onnx", 0)


def test_onnxruntime_threads_split_the_cores_between_lanes():
    assert ort_threads(1, 16) == 0  # one lane: ONNX Runtime's own default
    assert ort_threads(4, 16) == 4
    assert ort_threads(8, 2) == 1


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    from helpers.images import read_image
    from helpers.samples import sample_path

    paths = sorted(glob.glob(str(SHARED_IMAGES / "*.jpg")) + glob.glob(str(SHARED_IMAGES / "*.png")))
    paths.append(str(sample_path("astronaut.png")))
    return [read_image(p) for p in paths]


def test_eight_threads_over_onnxruntime_lanes_give_one_threads_results(default_model, photos):
    from helpers.detector import Detector
    from helpers.ort_backend import OnnxRuntimeBackend

    one = Detector(OnnxRuntimeBackend(default_model))
    frames = [photos[i % len(photos)] for i in range(40)]
    reference = [one.detect(f).to_json() for f in frames]
    with onnxruntime_lanes(default_model, lanes=3) as pool:
        assert pool.shared is pool.first.backend  # one InferenceSession for every lane
        assert len({id(lane.detector) for lane in pool.lanes}) == 3  # scratch of their own
        results = pool.map(frames, workers=8)
    assert [r.to_json() for r in results] == reference
    assert any(len(r) for r in results)  # faces were found, not just empty frames compared


def test_detect_workers_json_equals_one_workers_in_input_order(tmp_path, default_model):
    from helpers.samples import sample_path

    images = [str(p) for p in sorted(SHARED_IMAGES.glob("*.jpg"))] + [str(sample_path("astronaut.png"))]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"nope")
    images = [*images, str(bad), *reversed(images)]
    outputs = {}
    for workers in (1, 3):
        out = tmp_path / f"w{workers}.json"
        result = cli(
            "detect",
            *images,
            "--backend",
            "onnxruntime",
            "--workers",
            workers,
            "--json",
            out,
            env={"SCRFD_MODEL_DIR": str(default_model.parent)},
        )
        assert result.returncode == 1
        assert_one_line_error(result, "broken.jpg could not be decoded")
        outputs[workers] = json.loads(out.read_text())
    for entry in (*outputs[1], *outputs[3]):
        entry.pop("timings_ms")  # measured, so never equal between runs
    assert json.dumps(outputs[3]) == json.dumps(outputs[1])
    assert [e["image"] for e in outputs[3]] == [i for i in images if i != str(bad)]
    assert any(e["detections"] for e in outputs[3])


def test_detect_workers_must_be_positive(default_model):
    from helpers.samples import sample_path

    result = cli(
        "detect",
        sample_path("astronaut.png"),
        "--workers",
        "0",
        env={"SCRFD_MODEL_DIR": str(default_model.parent)},
    )
    assert_one_line_error(result, "0 lanes asked for")


def test_the_shared_engine_closes_after_its_last_lane():
    from test_trt_runtime_logic import FakeCuda

    from helpers.trt.engine import LoadedEngine

    cuda = FakeCuda()
    engine = LoadedEngine.__new__(LoadedEngine)
    engine.__dict__.update(
        cuda=cuda,
        engine=object(),
        _runtime=object(),
        _lock=threading.Lock(),
        _lanes=2,
        _closing=False,
        _closed=False,
    )
    engine.close()
    assert cuda.released == 0 and hasattr(engine, "engine")  # two lanes still use it
    with pytest.raises(UserError, match="LoadedEngine was closed"):
        engine.open_lane()
    engine.lane_closed()
    assert cuda.released == 0
    engine.lane_closed()
    assert cuda.released == 1 and not hasattr(engine, "engine")
    engine.close()
    assert cuda.released == 1


def test_the_benchmark_report_reads_as_a_labelled_table(tmp_path):
    from helpers.lanes.report import format_report, load_report

    assert load_report(tmp_path / "none.json") is None
    row = {"frame": "1920x1080", "source": "pageable", "busy_ms": 0.5, "lanes": 2, "fps": 1000.0}
    report = {
        "engine": "stand-in engine, not TensorRT",
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
