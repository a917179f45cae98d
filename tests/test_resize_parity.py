"""helpers.resize_parity: another resize's faces next to the CPU path's, on the CPU."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers.detector import Detector
from helpers.gpu.resize_model import resize as kernel_resize
from helpers.images import read_image
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.resize_parity import resize_parity
from helpers.samples import sample_path


@pytest.fixture(scope="module")
def detector(default_model) -> Detector:
    return Detector(OnnxRuntimeBackend(default_model, ["CPUExecutionProvider"]))


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return cv2.resize(read_image(sample_path("crowd48.png")), (1920, 1080))


def test_cv2_resize_itself_gives_the_cpu_paths_faces_exactly(detector, frame) -> None:
    parity = resize_parity(detector, frame, lambda image, w, h: cv2.resize(image, (w, h)))
    assert parity.max_pixel_difference == 0 and parity.identical_pixels == 1.0
    assert len(parity.faces) == len(parity.cpu_faces) > 10
    assert parity.box_difference() == 0.0
    assert "largest box corner difference: 0.000 px" in str(parity)


def test_the_kernels_arithmetic_differs_by_one_at_most_and_keeps_the_faces(detector, frame) -> None:
    parity = resize_parity(detector, frame, kernel_resize)
    assert parity.max_pixel_difference <= 1 and parity.identical_pixels > 0.9
    assert len(parity.faces) == len(parity.cpu_faces)
    box = parity.box_difference()
    assert box is not None and box < 1.0


def test_a_resize_that_shifts_pixels_is_measured_not_hidden(detector, frame) -> None:
    brighter = lambda image, w, h: cv2.add(cv2.resize(image, (w, h)), 9)  # noqa: E731
    parity = resize_parity(detector, frame, brighter)
    assert parity.max_pixel_difference == 9 and parity.identical_pixels < 0.1


def test_a_resize_to_another_size_is_refused(detector, frame) -> None:
    with pytest.raises(ValueError, match="not the letterbox's"):
        resize_parity(detector, frame, lambda image, w, h: cv2.resize(image, (w - 1, h)))
