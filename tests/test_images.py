"""Awkward but valid images work; broken ones fail with one line that names the fix."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers.detector import Detector
from helpers.errors import UserError
from helpers.images import read_image
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path


@pytest.fixture(scope="module")
def detector(default_model):
    return Detector(OnnxRuntimeBackend(default_model))


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return read_image(sample_path("astronaut.png"))


def write(path, image):
    assert cv2.imwrite(str(path), image)
    return path


@pytest.mark.parametrize(
    "convert",
    [
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY),
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2BGRA),
        lambda im: im.astype(np.uint16) * 257,
    ],
    ids=["grayscale", "rgba", "16-bit"],
)
def test_awkward_formats_still_find_the_face(tmp_path, detector, face, convert):
    path = write(tmp_path / "x.png", convert(face))
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (*face.shape[:2], 3)
    assert len(detector.detect(image)) == 1


def test_one_pixel_image_runs(tmp_path, detector):
    image = read_image(write(tmp_path / "p.png", np.full((1, 1, 3), 128, np.uint8)))
    assert len(detector.detect(image)) == 0


def test_very_large_image_runs(tmp_path, detector, face):
    big = cv2.resize(face, (6000, 6000))
    assert len(detector.detect(read_image(write(tmp_path / "big.jpg", big)))) == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "does not exist"),
        (lambda p: (p.mkdir(), p)[1], "is a directory"),
        (lambda p: (p.write_bytes(b""), p)[1], "is empty"),
        (lambda p: (p.write_bytes(b"not an image at all"), p)[1], "could not be decoded"),
        (lambda p: (p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40), p)[1], "could not be decoded"),
    ],
    ids=["missing", "directory", "empty", "garbage", "truncated-png"],
)
def test_bad_files_name_the_problem(tmp_path, make, message):
    with pytest.raises(UserError, match=message):
        read_image(make(tmp_path / "bad.png"))
