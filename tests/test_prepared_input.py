"""Where pre/post-processing runs: letterbox into the engine's own input, `--preprocess` choices.

A backend with `input_array`/`run_prepared` (TensorRT's pinned host buffer) gets the letterbox
written straight into it; here an ONNX Runtime backend plays that role on the CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from test_cli import assert_one_line_error, cli

from helpers.backend import DeviceEngine, PreparedInput
from helpers.detector import Detector
from helpers.errors import UserError
from helpers.gpu.stages import stages_for
from helpers.images import read_image
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path


class InPlaceBackend(OnnxRuntimeBackend):
    """ONNX Runtime with one reused input array, as TensorRT's backend offers its pinned buffer."""

    def __init__(self, model) -> None:
        super().__init__(model, ["CPUExecutionProvider"])
        self.array: np.ndarray | None = None
        self.prepared_runs = 0

    @contextmanager
    def input_array(self, name: str, shape: tuple[int, ...]) -> Iterator[np.ndarray]:
        if self.array is None or self.array.shape != shape:
            self.array = np.full(shape, np.nan, np.float32)
        yield self.array

    def run_prepared(self) -> dict[str, np.ndarray]:
        self.prepared_runs += 1
        assert self.array is not None
        return self.run({self.inputs[0].name: self.array})


def test_detector_letterboxes_into_the_backend_input(default_model):
    backend = InPlaceBackend(default_model)
    assert isinstance(backend, PreparedInput) and not isinstance(backend, DeviceEngine)
    plain = Detector(OnnxRuntimeBackend(default_model, ["CPUExecutionProvider"]))
    detector = Detector(backend)
    for name in ("crowd48.png", "astronaut.png", "large_face.png", "crowd48.png"):
        image = read_image(sample_path(name))
        want, got = plain.run(image), detector.run(image)
        np.testing.assert_array_equal(got.faces.boxes, want.faces.boxes)
        blob, _ = plain._prep(image, plain.input_size)
        np.testing.assert_array_equal(backend.array, blob)
    assert backend.prepared_runs == 4


def test_preprocess_choices_without_a_device_engine(default_model):
    backend = OnnxRuntimeBackend(default_model, ["CPUExecutionProvider"])
    assert stages_for("cpu", backend) is None
    assert stages_for("auto", backend) is None  # ONNX Runtime: its buffers are host arrays
    with pytest.raises(UserError, match="needs the TensorRT backend"):
        stages_for("gpu", backend)


def test_cli_preprocess_gpu_on_onnxruntime_is_one_line(default_model):
    result = cli("detect", sample_path("astronaut.png"), "--backend", "onnxruntime", "--preprocess", "gpu")
    assert_one_line_error(result, "--preprocess gpu needs the TensorRT backend")


def test_cli_preprocess_cpu_detects(default_model):
    result = cli("detect", sample_path("astronaut.png"), "--preprocess", "cpu")
    assert result.returncode == 0 and "1 face " in result.stdout, result.stderr
