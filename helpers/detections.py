"""The one result type every backend, notebook and the CLI share.

Boxes, scores and the five landmarks stay together, with provenance (which
stride and which row of that level's output produced each face) so the
score-map explorer can point back to the raw tensor cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Faces:
    """Faces found in one image; coordinates in the pixels of `scale`'s frame."""

    boxes: np.ndarray  # (n, 4) float32 x1, y1, x2, y2
    scores: np.ndarray  # (n,) float32
    landmarks: np.ndarray | None  # (n, 5, 2) float32, None for exports without landmarks
    stride: np.ndarray  # (n,) int32 feature level of each face
    row: np.ndarray  # (n,) int64 row within that level's output (cell * anchors + anchor)

    @classmethod
    def empty(cls, landmarks: bool = True) -> Faces:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 5, 2), np.float32) if landmarks else None,
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
        )

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, keep: np.ndarray | slice | list[int]) -> Faces:
        return Faces(
            self.boxes[keep],
            self.scores[keep],
            None if self.landmarks is None else self.landmarks[keep],
            self.stride[keep],
            self.row[keep],
        )

    def scaled(self, factor: float) -> Faces:
        """Divide coordinates by `factor` (the letterbox scale) to get original pixels."""
        return Faces(
            self.boxes / factor,
            self.scores,
            None if self.landmarks is None else self.landmarks / factor,
            self.stride,
            self.row,
        )

    @staticmethod
    def concat(parts: list[Faces]) -> Faces:
        landmarks = (
            None
            if any(p.landmarks is None for p in parts)
            else np.concatenate([p.landmarks for p in parts if p.landmarks is not None])
        )
        return Faces(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            landmarks,
            np.concatenate([p.stride for p in parts]),
            np.concatenate([p.row for p in parts]),
        )

    def to_json(self) -> list[dict]:
        """The CLI's per-face objects, rounded to what a pixel position can mean."""
        boxes = np.round(self.boxes.astype(np.float64), 2).tolist()
        scores = np.round(self.scores.astype(np.float64), 5).tolist()
        marks = (
            [None] * len(self)
            if self.landmarks is None
            else np.round(self.landmarks.astype(np.float64), 2).tolist()
        )
        return [{"box": b, "score": s, "landmarks": m} for b, s, m in zip(boxes, scores, marks, strict=True)]
