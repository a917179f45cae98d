"""Greedy NMS with the reference's arithmetic (pixel-inclusive areas, IoU > t suppresses).

Below PAIRS_FROM candidates (most frames) one IoU matrix and a cheap scan. From there to
TRACE_FROM (a crowd at the usual threshold) only pairs that can overlap are tested: sorted by
left edge, each box meets the boxes starting before its right edge + 1, of which those whose
y-ranges meet too, a few per face instead of all n^2 pairs (190 candidates of a 48-face crowd:
1.9x faster than the matrix, `benchmarks/nms.py`). A pair left out has no overlap in the float32
arithmetic either, so the kept indices are the reference's exactly. Above TRACE_FROM (a low
threshold's thousands of stacked boxes) the reference's row-at-a-time loop (`trace`), which
removes many boxes per step, is faster still and bounds memory.
"""

from __future__ import annotations

import numpy as np

PAIRS_FROM = 64  # candidates from which pruned pairs beat the matrix (benchmarks/nms.py)
TRACE_FROM = 513  # candidates from which the row loop beats the pairs on stacked boxes


def _iou_against(boxes: np.ndarray, areas: np.ndarray, i: np.ndarray | int, j: np.ndarray) -> np.ndarray:
    """IoU of boxes i (index or column of indices) with boxes j, as the reference computes it."""
    x1, y1, x2, y2 = boxes.T  # column views: gathers from them cost a third less than boxes[i, 0]
    xx1 = np.maximum(x1[i], x1[j])
    yy1 = np.maximum(y1[i], y1[j])
    xx2 = np.minimum(x2[i], x2[j])
    yy2 = np.minimum(y2[i], y2[j])
    inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
    return inter / (areas[i] + areas[j] - inter)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of kept boxes, highest score first."""
    n = len(scores)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    if n >= TRACE_FROM:
        return np.asarray([i for i, _ in trace(boxes, scores, threshold)], np.int64)
    order = scores.argsort()[::-1]
    ranked = boxes[order]
    if n < PAIRS_FROM or threshold < 0:  # below 0 even pairs that do not meet suppress
        return order[_scan_matrix(_iou_matrix(ranked) > threshold)]
    first, second = _pairs(ranked)
    over = _iou_against(ranked, _areas(ranked), first, second) > threshold
    return order[_scan_pairs(n, first[over], second[over])]


def _iou_matrix(boxes: np.ndarray) -> np.ndarray:
    idx = np.arange(len(boxes))
    return _iou_against(boxes, _areas(boxes), idx[:, None], idx[None, :])


def _scan_matrix(over: np.ndarray) -> np.ndarray:
    """Greedy scan that visits only the kept boxes: the next one is the first not yet removed."""
    removed = np.zeros(len(over), bool)
    keep = []
    while True:
        i = int(removed.argmin())
        if removed[i]:
            break
        keep.append(i)
        removed |= over[i]
        removed[i] = True
    return np.asarray(keep, np.int64)


def _scan_pairs(n: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Greedy scan in score order over overlapping (better, worse) pairs: a box not yet removed is
    kept and removes the worse boxes it overlaps."""
    by_first = np.argsort(first, kind="stable")
    starts = np.searchsorted(first[by_first], np.arange(n + 1)).tolist()
    suppressed = second[by_first].tolist()
    removed = [False] * n
    keep = []
    for i in range(n):
        if removed[i]:
            continue
        keep.append(i)
        for j in suppressed[starts[i] : starts[i + 1]]:
            removed[j] = True
    return np.asarray(keep, np.int64)


def _pairs(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(better, worse) indices of every pair whose boxes may overlap.

    Boxes overlap only where x1_j < x2_i + 1 and y1_j < y2_i + 1 both ways (the +1 of
    pixel-inclusive widths), tested in float64, where x + 1 is exact: float32 rounding keeps
    every pair left out at a width or height <= 0.
    """
    n = len(boxes)
    x1, y1, x2, y2 = boxes.T.astype(np.float64)
    by_x = np.argsort(x1, kind="stable")
    reach = np.searchsorted(x1[by_x], x2[by_x] + 1.0, side="left")
    start = np.arange(1, n + 1)
    counts = np.maximum(reach - start, 0)
    total = int(counts.sum())
    a = np.repeat(np.arange(n), counts)
    i, j = by_x[a], by_x[np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + start[a]]
    meet = (y1[j] < y2[i] + 1.0) & (y1[i] < y2[j] + 1.0)
    i, j = i[meet], j[meet]
    return np.minimum(i, j), np.maximum(i, j)


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
