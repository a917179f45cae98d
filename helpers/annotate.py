"""Draw faces on an image: boxes, scores and the five landmarks, colour-coded by stride."""

from __future__ import annotations

import cv2
import numpy as np

from helpers.detections import Faces

# BGR; one colour per landmark (eyes, nose, mouth corners) as insightface draws them.
LANDMARK_COLOURS = ((0, 0, 255), (0, 255, 255), (255, 0, 255), (0, 255, 0), (255, 0, 0))
STRIDE_COLOURS = {8: (0, 200, 0), 16: (0, 165, 255), 32: (255, 80, 0), 64: (200, 0, 200), 128: (0, 0, 200)}


def annotate(image: np.ndarray, faces: Faces) -> np.ndarray:
    """A copy of `image` with `faces` drawn on it; line width follows the image size."""
    out = image.copy()
    thick = max(1, round(max(image.shape[:2]) / 500))
    for i in range(len(faces)):
        x1, y1, x2, y2 = np.round(faces.boxes[i]).astype(int).tolist()
        colour = STRIDE_COLOURS.get(int(faces.stride[i]), (255, 255, 255))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
        cv2.putText(
            out,
            f"{faces.scores[i]:.2f}",
            (x1, max(y1 - 3, 10)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thick,
            colour,
            thick,
        )
        if faces.landmarks is not None:
            points = np.round(faces.landmarks[i]).astype(int).tolist()
            for (x, y), c in zip(points, LANDMARK_COLOURS, strict=True):
                cv2.circle(out, (x, y), thick + 1, c, -1)
    return out
