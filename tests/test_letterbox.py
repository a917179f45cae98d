"""The fast letterbox stays bit-identical to cv2.dnn.blobFromImage frame after frame.

It keeps the padding of the last geometry and writes into caller buffers, so these tests run
sequences of images of changing shape through one Preprocessor, and dirty `out` buffers.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scrfd_reference import ReferenceSCRFD

from helpers.letterbox import Preprocessor


def reference_blob(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    canvas, _ = ReferenceSCRFD.__new__(ReferenceSCRFD).preprocess(img, size)
    return cv2.dnn.blobFromImage(canvas, 1 / 128, size, (127.5,) * 3, swapRB=True)


def image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# wide, tall, exactly the resized size (no resize), tiny upscale, back to wide, a 1-row resize
SEQUENCE = [(480, 640), (886, 1280), (640, 300), (480, 640), (112, 112), (366, 680), (5, 900), (480, 640)]


@pytest.mark.parametrize("size", [(640, 640), (640, 480), (320, 256)])
def test_changing_geometry_stays_bit_identical(size):
    prep = Preprocessor()
    for seed, (h, w) in enumerate(SEQUENCE):
        img = image(h, w, seed)
        blob, _ = prep(img, size)
        np.testing.assert_array_equal(blob, reference_blob(img, size), err_msg=f"frame {seed}: {w}x{h}")


def test_writes_into_a_dirty_out_buffer_padding_included():
    prep = Preprocessor()
    out = np.full((1, 3, 480, 640), 7.0, np.float32)
    for seed, (h, w) in enumerate(SEQUENCE):
        img = image(h, w, seed)
        out[...] = np.float32(seed)  # someone else wrote into the buffer between frames
        blob, _ = prep(img, (640, 480), out=out)
        assert blob is out
        np.testing.assert_array_equal(out, reference_blob(img, (640, 480)))


def test_own_blob_is_reused_and_untouched_by_out_calls():
    prep = Preprocessor()
    first, _ = prep(image(300, 640, 1), (640, 640))
    kept = first.copy()
    prep(image(640, 200, 2), (640, 640), out=np.empty((1, 3, 640, 640), np.float32))
    np.testing.assert_array_equal(first, kept)
    second, _ = prep(image(300, 640, 3), (640, 640))
    assert second is first


def test_grayscale_is_spread_over_three_planes():
    gray = np.random.default_rng(0).integers(0, 256, (200, 300), dtype=np.uint8)
    blob, _ = Preprocessor()(gray, (640, 640))
    np.testing.assert_array_equal(blob, reference_blob(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), (640, 640)))


@pytest.mark.parametrize(
    "out", [np.empty((1, 3, 640, 640), np.float16), np.empty((1, 3, 480, 640), np.float32)]
)
def test_a_wrong_out_buffer_is_refused(out):
    with pytest.raises(ValueError, match="out must be"):
        Preprocessor()(image(100, 100, 0), (640, 640), out=out)


def test_other_channel_counts_are_refused():
    with pytest.raises(ValueError, match="expected a BGR"):
        Preprocessor()(np.zeros((10, 10, 4), np.uint8), (640, 640))
