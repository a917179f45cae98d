"""Face-level parity: matching, pixel errors, verdicts, and the fp16 question answered on the CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import assert_one_line_error, cli

from helpers.compare import Config, face_parity, match_faces, verdict
from helpers.detections import Faces
from helpers.errors import UserError
from helpers.samples import sample_path


def faces(boxes, scores=None, stride=8) -> Faces:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    marks = np.repeat(boxes[:, None, :2], 5, axis=1) + 5
    return Faces(
        boxes, np.asarray(scores or [0.9] * n, np.float32), marks, np.full(n, stride, np.int32), np.arange(n)
    )


def test_matching_is_one_to_one_and_best_first():
    a = faces([[0, 0, 10, 10], [100, 100, 120, 120]])
    b = faces([[101, 101, 121, 121], [0, 0, 10, 11], [300, 300, 310, 310]])
    assert sorted(match_faces(a, b)) == [(0, 1), (1, 0)]


def test_parity_reports_missing_extra_and_pixel_errors():
    a = faces([[0, 0, 40, 40], [100, 100, 120, 120], [50, 0, 60, 10]])
    b = faces([[3, 4, 40, 40], [100, 100, 120, 120], [400, 400, 410, 410]], [0.8, 0.9, 0.9])
    p = face_parity(a, b)
    assert (p.matched, p.missing, p.extra) == (2, 1, 1)
    assert p.box_error_px == pytest.approx(5.0)  # the (0,0) corner moved by (3, 4)
    assert p.landmark_error_px == pytest.approx(5.0)
    assert p.score_delta == pytest.approx(0.1)
    assert p.per_stride == {
        8: {"matched": 2, "box_error_px": pytest.approx(5.0), "landmark_error_px": pytest.approx(5.0)}
    }
    assert verdict(p) == "DIFFERENT FACES"


def test_identical_faces_are_the_same():
    a = faces([[0, 0, 10, 10]])
    p = face_parity(a, a)
    assert (p.matched, p.missing, p.extra, p.box_error_px) == (1, 0, 0, 0.0)
    assert verdict(p) == "same faces"
    assert verdict(face_parity(Faces.empty(), Faces.empty())) == "same faces"


def test_config_specs(default_model):
    c = Config.parse("precision=fp16,size=640x480")
    assert c.model == default_model and c.precision == "fp16" and c.input_size == (640, 480)
    assert Config.parse("").input_size == (640, 640)
    for bad, text in [
        ("size=641", "multiple of 32"),
        ("colour=red", "bad configuration part"),
        ("size=big", "bad size"),
    ]:
        with pytest.raises(UserError, match=text):
            Config.parse(bad)


def test_fp16_on_the_cpu_finds_the_same_faces(tmp_path, default_model):
    out = tmp_path / "c.json"
    result = cli(
        "compare",
        sample_path("crowd48.png"),
        "--a",
        "backend=onnxruntime",
        "--b",
        "backend=onnxruntime,precision=fp16",
        "--json",
        out,
        env={"SCRFD_MODEL_DIR": str(default_model.parent)},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    [row] = report["images"]
    assert row["faces_a"] == row["faces_b"] == 48 and row["verdict"] == "same faces"
    assert row["faces"]["box_error_px"] < 1.0
    kinds = {(t["kind"], t["stride"]) for t in row["tensors"]}
    assert kinds == {(k, s) for k in ("score", "bbox", "kps") for s in (8, 16, 32)}
    assert all(0 < t["max_abs"] < 0.1 for t in row["tensors"])  # rounding really ran: errors are not zero
    assert "most kernels still float32" in report["note"]


def test_the_cpu_fp16_note_only_where_onnx_runtime_runs_fp16(default_model):
    from helpers.compare import cpu_fp16_note

    assert cpu_fp16_note(Config(default_model), Config(default_model, precision="fp16")) is not None
    on_gpu = Config(default_model, backend="tensorrt", precision="fp16")
    assert cpu_fp16_note(Config(default_model), on_gpu) is None
    assert cpu_fp16_note(Config(default_model), Config(default_model)) is None


def test_two_sizes_disagree_on_the_large_face(default_model):
    result = cli(
        "compare",
        sample_path("large_face.png"),
        "--a",
        "backend=onnxruntime,size=640",
        "--b",
        "backend=onnxruntime,size=128",
        env={"SCRFD_MODEL_DIR": str(default_model.parent)},
    )
    assert result.returncode == 0 and "DIFFERENT FACES" in result.stdout


def test_unknown_precision_is_refused(default_model):
    result = cli(
        "compare",
        sample_path("astronaut.png"),
        "--b",
        "precision=int3",
        env={"SCRFD_MODEL_DIR": str(default_model.parent)},
    )
    assert_one_line_error(result, "precision 'int3'")
