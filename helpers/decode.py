"""From raw SCRFD outputs to candidate faces: threshold first, then decode.

The reference decodes every anchor and then filters; thresholding first
decodes only the few hundred rows that can matter, with the same float32
arithmetic, so the numbers are identical and the work is not.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from helpers.anchors import centres
from helpers.detections import Faces
from helpers.layout import Layout


def candidates(
    outputs: Mapping[str, np.ndarray],
    layout: Layout,
    size: tuple[int, int],
    threshold: float,
) -> Faces:
    """Faces scoring >= threshold, in input-canvas pixels, in level then row order."""
    width, height = size
    parts = []
    for stride in layout.strides:
        scores = layout.as_rows(outputs[layout.name("score", stride)])[:, 0]
        rows = np.flatnonzero(scores >= threshold)
        centre = centres(-(-height // stride), -(-width // stride), stride, layout.anchors)
        if len(centre) != len(scores):
            raise ValueError(
                f"stride {stride}: {len(scores)} score rows, expected {len(centre)} for a "
                f"{width}x{height} input; the outputs do not belong to this input size"
            )
        points = centre[rows]
        dist = layout.as_rows(outputs[layout.name("bbox", stride)])[rows] * stride
        boxes = np.concatenate([points - dist[:, :2], points + dist[:, 2:]], axis=1)
        marks = None
        if layout.landmarks:
            kps = layout.as_rows(outputs[layout.name("kps", stride)])[rows] * stride
            marks = kps.reshape(-1, 5, 2) + points[:, None, :]
        parts.append(
            Faces(boxes, scores[rows], marks, np.full(len(rows), stride, np.int32), rows.astype(np.int64))
        )
    return Faces.concat(parts)
