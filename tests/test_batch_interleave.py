"""helpers.batch.interleave: a naively patched batch axis interleaves the images' rows."""

from __future__ import annotations

import numpy as np

from helpers.batch.interleave import interleaving
from helpers.detector import Detector
from helpers.images import read_image
from helpers.letterbox import Preprocessor
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import SAMPLES, sample_path


def test_the_naive_batch_gives_image_0_every_images_rows(default_model) -> None:
    detector = Detector(OnnxRuntimeBackend(default_model, ["CPUExecutionProvider"]))
    pre = Preprocessor()
    images = [read_image(sample_path(name)) for name in SAMPLES]
    blob = np.concatenate([pre(image, detector.input_size)[0].copy() for image in images])
    found = interleaving(default_model, blob, detector.layout.name("score", 8), detector.layout.anchors)
    if found.refused:  # an export with a Resize to constant batch-1 sizes does not run at all
        assert "does not run at batch 3" in str(found)
        return
    assert found.images == 3 and found.batch_rows == 3 * found.rows
    assert not found.first_rows_are_image_0
    assert found.every_nth_group == (True, True, True)
    assert "every third group" in str(found)
