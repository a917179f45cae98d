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
    """Faces scoring >= threshold, in input-canvas pixels, in level then row order.

    Levels with no candidate (most of them, on most frames) cost one comparison and nothing else.
    """
    width, height = size
    parts = []
    for stride in layout.strides:
        scores = layout.as_rows(outputs[layout.name("score", stride)])[:, 0].astype(np.float32, copy=False)
        centre = centres(-(-height // stride), -(-width // stride), stride, layout.anchors)
        if len(centre) != len(scores):
            raise ValueError(
                f"stride {stride}: {len(scores)} score rows, expected {len(centre)} for a "
                f"{width}x{height} input; the outputs do not belong to this input size"
            )
        rows = np.flatnonzero(scores >= threshold)
        if rows.size:
            boxes, marks = decode_rows(outputs, layout, stride, rows, centre[rows])
            parts.append(Faces(boxes, scores[rows], marks, np.full(len(rows), stride, np.int32), rows))
    if len(parts) == 1:
        return parts[0]
    return Faces.concat(parts) if parts else Faces.empty(layout.landmarks)


def decode_rows(
    outputs: Mapping[str, np.ndarray], layout: Layout, stride: int, rows: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Boxes (n, 4) and landmarks (n, 5, 2) of `rows` of one level, anchored at `points` (n, 2)."""
    dist = layout.as_rows(outputs[layout.name("bbox", stride)])[rows].astype(np.float32, copy=False) * stride
    boxes = np.concatenate([points - dist[:, :2], points + dist[:, 2:]], axis=1)
    if not layout.landmarks:
        return boxes, None
    kps = layout.as_rows(outputs[layout.name("kps", stride)])[rows].astype(np.float32, copy=False) * stride
    return boxes, kps.reshape(-1, 5, 2) + points[:, None, :]
