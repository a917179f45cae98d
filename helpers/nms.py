"""Greedy NMS with the reference's arithmetic (pixel-inclusive areas, IoU > t suppresses).

Small candidate sets (the usual case) use one IoU matrix and a cheap scan;
large ones fall back to the reference's row-at-a-time loop (`trace`) to bound memory.
"""

from __future__ import annotations

import numpy as np

MATRIX_LIMIT = 512  # n x n float32 temporaries: ~1 MB each at 512


def _iou_against(boxes: np.ndarray, areas: np.ndarray, i: np.ndarray | int, j: np.ndarray) -> np.ndarray:
    """IoU of boxes i (index or column of indices) with boxes j, as the reference computes it."""
    xx1 = np.maximum(boxes[i, 0], boxes[j, 0])
    yy1 = np.maximum(boxes[i, 1], boxes[j, 1])
    xx2 = np.minimum(boxes[i, 2], boxes[j, 2])
    yy2 = np.minimum(boxes[i, 3], boxes[j, 3])
    inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
    return inter / (areas[i] + areas[j] - inter)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of kept boxes, highest score first."""
    n = len(scores)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    if n > MATRIX_LIMIT:
        return np.asarray([i for i, _ in trace(boxes, scores, threshold)], np.int64)
    order = scores.argsort()[::-1]
    over = _overlaps(boxes[order], threshold)
    # Greedy scan that visits only the kept boxes: the next one is the first not yet removed.
    removed = np.zeros(n, bool)
    keep = []
    while True:
        i = int(removed.argmin())
        if removed[i]:
            break
        keep.append(i)
        removed |= over[i]
        removed[i] = True
    return order[np.asarray(keep, np.int64)]


def _overlaps(boxes: np.ndarray, threshold: float) -> np.ndarray:
    """IoU > threshold for every pair, `_iou_against`'s arithmetic on column views, in place."""
    x1, y1, x2, y2 = boxes.T.copy()
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    inter = np.minimum(x2[:, None], x2[None, :])
    inter -= np.maximum(x1[:, None], x1[None, :])
    inter += 1
    np.maximum(inter, 0.0, out=inter)
    h = np.minimum(y2[:, None], y2[None, :])
    h -= np.maximum(y1[:, None], y1[None, :])
    h += 1
    np.maximum(h, 0.0, out=h)
    inter *= h
    union = np.add(areas[:, None], areas[None, :], out=h)
    union -= inter
    return np.divide(inter, union, out=inter) > threshold


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)


def trace(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[tuple[int, np.ndarray]]:
    """Each kept box with the boxes it suppressed, in order: the reference's loop, made visible."""
    areas = _areas(boxes)
    rest = scores.argsort()[::-1]
    steps = []
    while rest.size:
        i, others = rest[0], rest[1:]
        over = _iou_against(boxes, areas, i, others) > threshold
        steps.append((int(i), others[over]))
        rest = others[~over]
    return steps


def iou_with(boxes: np.ndarray, i: int, others: np.ndarray) -> np.ndarray:
    """IoU of box i with `others`, exactly as NMS computes it (for explaining its decisions)."""
    return _iou_against(boxes, _areas(boxes), i, others)
