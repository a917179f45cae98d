"""The benchmarks' reference is insightface 2.x's own SCRFD, and it finds what helpers finds."""

from __future__ import annotations

import onnxruntime as ort
import pytest
from insightface_reference import RecordedSession, insightface_missing, insightface_scrfd
from prepost import warm_up
from test_parity import assert_same_faces

from helpers.detector import Detector
from helpers.images import read_image
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path

needs_insightface = pytest.mark.skipif(bool(insightface_missing()), reason=insightface_missing() or "")


def session(model_path) -> ort.InferenceSession:
    return ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])


@needs_insightface
@pytest.mark.parametrize("image", ["astronaut.png", "crowd48.png"])
def test_insightface_2x_finds_the_faces_helpers_finds(model_path, image):
    img = read_image(sample_path(image))
    real = insightface_scrfd(session(model_path))
    size = real.static_input_size or (640, 640)
    det, kps = real.detect(img, input_size=size)
    assert_same_faces(det, kps, Detector(OnnxRuntimeBackend(model_path), size).detect(img))


@needs_insightface
def test_insightface_2x_runs_dynamic_models_at_two_sizes_by_default(model_path):
    real = insightface_scrfd(session(model_path))
    expected = [real.static_input_size] if real.static_input_size else [(128, 128), (640, 640)]
    assert real.input_sizes == expected  # the two scales the notebooks attribute to 2.x


def test_recorded_session_runs_once_per_shape(model_path):
    recorded = RecordedSession(session(model_path))
    blob = Detector(OnnxRuntimeBackend(model_path), (640, 640))._prep(
        read_image(sample_path("astronaut.png")), (640, 640)
    )[0]
    name = recorded.get_inputs()[0].name
    outputs = [o.name for o in recorded.get_outputs()]
    first = recorded.run(outputs, {name: blob})
    assert recorded.run(outputs, {name: blob}) is first and list(recorded.recorded) == [blob.shape]


def test_warm_up_runs_every_case_before_anything_is_timed():
    calls: list[str] = []
    cases = [{s: (lambda s=s: calls.append(s)) for s in (f"{c}a", f"{c}b")} for c in "xy"]
    warm_up(cases, calls=3)
    assert calls == ["xa"] * 3 + ["xb"] * 3 + ["ya"] * 3 + ["yb"] * 3


def test_gpu_report_says_where_it_was_recorded_and_which_insightface():
    from helpers.gpu.report import format_report

    m = {"reference_pre": 1.5, "reference_post": 0.9, "ours_pre": 0.5, "ours_post": 0.1, "insightface": 2.75}
    row = {
        "frame": "640x480",
        "faces": {"cpu": 6, "gpu": 6},
        "median_ms": m | {"gpu": 0.2, "gpu_graph": 0.15, "gpu_graph_pinned": 0.1},
        "cuda_event_ms": {},
        "ratios": {},
    }
    machine = {"cpu": "16 x Some CPU", "gpu": "NVIDIA H200", "cupy": "14.2.0"}
    report = {"results": [row], "machine": machine, "repeat": 9, "model": "m.onnx", "command": "python x"}
    old = format_report(report)
    assert old.startswith("recorded on NVIDIA H200") and "2.750" not in old and "before warm-ups" in old
    new = format_report(report | {"insightface": "2.1", "warm_up": "every case"})
    assert "2.750" in new and "insightface 2.1" in new and "every case warmed up first" in new


def test_speed_table_reads_every_number_from_the_report():
    from helpers.gpu.report import speed_table

    m = {"reference_pre": 1.5, "reference_post": 0.9, "ours_pre": 0.5, "ours_post": 0.1}
    gpu = {"gpu": 0.2, "gpu_graph": 0.15, "gpu_graph_pinned": 0.1}
    report = {"results": [{"frame": "640x480", "median_ms": m | gpu}]}
    row = speed_table(report).splitlines()[2]
    assert (
        row == "| 640×480 | 2.40 ms | 0.60 ms (4.0×) | 0.20 ms (12.0×) | 0.15 ms (16.0×) | 0.10 ms (24.0×) |"
    )
    report = {
        "insightface": "2.1",
        "results": [{"frame": "640x480", "median_ms": m | gpu | {"insightface": 3.0}}],
    }
    table = speed_table(report).splitlines()
    assert "insightface 2.1 (CPU)" in table[0] and table[2].startswith(
        "| 640×480 | 3.00 ms | 2.40 ms | 0.60 ms (5.0×)"
    )
