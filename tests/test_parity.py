"""helpers must find what insightface's own pipeline finds, on real models and photos."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from conftest import shared_image
from scrfd_reference import ReferenceSCRFD

from helpers.detector import Detector
from helpers.images import read_image
from helpers.letterbox import Preprocessor
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path

IMAGES = ["t1.jpg", "mask_white.jpg", "Tom_Hanks_54745.png"]
SAMPLES = ["astronaut.png", "crowd48.png", "large_face.png"]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def assert_same_faces(ref_det, ref_kps, faces):
    assert len(faces) == len(ref_det)
    if not len(faces):
        return
    overlap = iou(ref_det[:, :4], faces.boxes)
    match = overlap.argmax(axis=1)
    assert overlap.max(axis=1).min() >= 0.99
    assert len(set(match.tolist())) == len(match)
    assert np.abs(ref_det[:, 4] - faces.scores[match]).max() <= 1e-3
    assert np.abs(ref_kps - faces.landmarks[match]).max() <= 1.0


@pytest.mark.parametrize("image", IMAGES + SAMPLES)
@pytest.mark.parametrize("size", [(640, 640), (480, 640), (320, 256)])
def test_matches_reference(model_path, image, size):
    path = shared_image(image) if image in IMAGES else sample_path(image)
    img = read_image(path)
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    reference = ReferenceSCRFD(session)
    size = reference.input_size or size  # static models run at their own size, as in insightface
    det, kps = reference.detect(img, size)
    faces = Detector(OnnxRuntimeBackend(model_path), size).detect(img)
    assert_same_faces(det, kps, faces)


def test_all_three_models_find_six_faces_in_the_group_photo(model_path):
    img = read_image(shared_image("t1.jpg"))
    assert len(Detector(OnnxRuntimeBackend(model_path)).detect(img)) == 6


@pytest.mark.parametrize("shape", [(886, 1280), (1, 1), (37, 2000), (2000, 37), (640, 640)])
def test_blob_is_bit_identical_to_the_reference(shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    blob, box = Preprocessor()(img, (640, 480))
    ref = ReferenceSCRFD.__new__(ReferenceSCRFD)
    canvas, scale = ref.preprocess(img, (640, 480))
    expected = cv2.dnn.blobFromImage(canvas, 1 / 128, (640, 480), (127.5,) * 3, swapRB=True)
    np.testing.assert_array_equal(blob, expected)
    assert box.scale == scale


def test_extreme_aspect_ratio_still_gets_one_pixel_row():
    """The reference computes a zero-height resize here and crashes; we keep one row."""
    blob, box = Preprocessor()(np.full((1, 5000, 3), 200, np.uint8), (640, 640))
    assert (box.new_width, box.new_height) == (640, 1)
    assert blob[0, 0, 0, 0] == (200 - 127.5) / 128 and blob[0, 0, 1, 0] == (0 - 127.5) / 128


def test_buffers_are_reused_but_never_leak_between_images():
    prep = Preprocessor()
    big = np.full((640, 640, 3), 255, np.uint8)
    small = np.zeros((10, 640, 3), np.uint8)
    first, _ = prep(big, (640, 640))
    assert first.max() > 0.99
    second, _ = prep(small, (640, 640))
    assert second is first  # same buffer: no per-frame allocation
    assert np.all(second == (0 - 127.5) / 128)  # the big image's pixels are gone
