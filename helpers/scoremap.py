"""Score maps and single cells of an SCRFD detection, tied back to the decoded faces.

A face is one row of one level's outputs; this module goes both ways between
that row, its (stride, anchor, x, y) cell on the feature map, its raw numbers
and what decode and NMS made of it, so a notebook can point at a pixel of a
heatmap and say why a face is there or is not.

Where a cell sits: SCRFD places the anchor of cell (x, y) at (x * s, y * s) on
the letterboxed canvas, the cell's top-left corner, not its centre
((x + 0.5) * s) as many detectors do. The distances are measured from that
point. So a heatmap drawn over the canvas centres each cell on (x * s, y * s)
and spans [x * s - s/2, x * s + s/2): half a cell up and left of the naive
[x * s, (x + 1) * s) placement, which would put every face half a cell off
its own score peak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from helpers.anchors import centres
from helpers.decode import decode_rows
from helpers.detections import Faces
from helpers.detector import Detection, Timings, merge, postprocess
from helpers.errors import UserError
from helpers.layout import Layout
from helpers.letterbox import Letterbox
from helpers.nms import iou_with


@dataclass(frozen=True)
class CellIndex:
    """One anchor of one feature-map cell."""

    stride: int
    anchor: int
    x: int
    y: int


@dataclass(frozen=True)
class ScoreMap:
    """One (stride, anchor) score map laid over the canvas."""

    stride: int
    anchor: int
    scores: np.ndarray  # (h, w) float32
    padding: np.ndarray  # (h, w) bool: anchor point outside the resized image
    extent: tuple[float, float, float, float]  # left, right, bottom, top for imshow(origin="upper")


@dataclass(frozen=True, eq=False)
class Cell:
    """Everything one anchor of one cell produced, from raw tensor to NMS verdict."""

    where: CellIndex
    row: int  # row within the level's output, as Faces.row counts it
    score: float
    distances: np.ndarray  # (4,) raw left, top, right, bottom in strides, as in the tensor
    kps: np.ndarray | None  # (10,) raw landmark offsets in strides, as in the tensor
    anchor_point: tuple[float, float]  # (x * s, y * s) on the canvas: the cell's top-left corner
    faces: Faces  # the one decoded face, canvas pixels
    original: Faces  # the same face in original-image pixels
    padding: bool
    passed: bool  # score >= the detection's threshold: it is one of detection.candidates
    kept: int | None  # index into detection.faces when NMS kept it
    suppressed_by: int | None  # index into detection.faces of the face that suppressed it
    iou: float | None  # IoU with that face, as NMS computed it


def _check(layout: Layout, stride: int, anchor: int) -> None:
    if stride not in layout.strides:
        raise UserError(f"stride {stride} is not one of this model's strides {list(layout.strides)}")
    if not 0 <= anchor < layout.anchors:
        raise UserError(f"anchor {anchor} is out of range; this model has {layout.anchors} per cell")


def grid(letterbox: Letterbox, stride: int) -> tuple[int, int]:
    """(h, w) of a level's map: the convolutions round up."""
    return -(-letterbox.height // stride), -(-letterbox.width // stride)


def level_scores(detection: Detection, layout: Layout, stride: int) -> np.ndarray:
    """(h, w, anchors) scores of one level; rows run over the map with anchors innermost."""
    scores = layout.as_rows(detection.outputs[layout.name("score", stride)])[:, 0]
    return scores.reshape(*grid(detection.letterbox, stride), layout.anchors)


def padding_mask(letterbox: Letterbox, stride: int) -> np.ndarray:
    """(h, w) True where the cell's anchor point lies outside the resized image."""
    h, w = grid(letterbox, stride)
    ys, xs = np.mgrid[:h, :w] * stride
    return (xs >= letterbox.new_width) | (ys >= letterbox.new_height)


def score_map(detection: Detection, layout: Layout, stride: int, anchor: int) -> ScoreMap:
    _check(layout, stride, anchor)
    h, w = grid(detection.letterbox, stride)
    half = stride / 2
    extent = (-half, w * stride - half, h * stride - half, -half)
    scores = level_scores(detection, layout, stride)[:, :, anchor]
    return ScoreMap(stride, anchor, scores, padding_mask(detection.letterbox, stride), extent)


def row_of(layout: Layout, letterbox: Letterbox, where: CellIndex) -> int:
    _check(layout, where.stride, where.anchor)
    h, w = grid(letterbox, where.stride)
    if not (0 <= where.x < w and 0 <= where.y < h):
        raise UserError(f"cell ({where.x}, {where.y}) is outside the {w}x{h} map of stride {where.stride}")
    return (where.y * w + where.x) * layout.anchors + where.anchor


def cell_of(layout: Layout, letterbox: Letterbox, stride: int, row: int) -> CellIndex:
    """The inverse of row_of."""
    cell, anchor = divmod(int(row), layout.anchors)
    y, x = divmod(cell, grid(letterbox, stride)[1])
    return CellIndex(stride, anchor, x, y)


def candidate_cell(detection: Detection, layout: Layout, index: int) -> CellIndex:
    """Which cell produced candidate `index` (an index into detection.candidates)."""
    if not 0 <= index < len(detection.candidates):
        raise UserError(f"candidate {index} does not exist; this detection has {len(detection.candidates)}")
    cands = detection.candidates
    return cell_of(layout, detection.letterbox, int(cands.stride[index]), int(cands.row[index]))


def face_cell(detection: Detection, layout: Layout, face: int) -> CellIndex:
    """Which cell produced kept face `face` (an index into detection.faces)."""
    if not 0 <= face < len(detection.faces):
        raise UserError(f"face {face} does not exist; this detection kept {len(detection.faces)}")
    return candidate_cell(detection, layout, int(detection.kept[face]))


def _raw(detection: Detection, layout: Layout, kind: str, stride: int, row: int) -> np.ndarray:
    return layout.as_rows(detection.outputs[layout.name(kind, stride)])[row]


def _nms_verdict(
    detection: Detection, index: int, nms_threshold: float
) -> tuple[int | None, int | None, float | None]:
    """(kept face, suppressing face, its IoU) for candidate `index`, as greedy NMS decided it.

    Kept faces are in NMS order, so the first with IoU over the threshold is the one that
    removed this candidate (any earlier one would have removed it first).
    """
    hit = np.flatnonzero(detection.kept == index)
    if hit.size:
        return int(hit[0]), None, None
    boxes = np.concatenate([detection.candidates.boxes[detection.kept], detection.candidates.boxes[[index]]])
    ious = iou_with(boxes, len(boxes) - 1, np.arange(len(boxes) - 1))
    over = np.flatnonzero(ious > nms_threshold)
    if not over.size:
        raise UserError(
            f"no kept face overlaps this candidate by more than IoU {nms_threshold}; "
            "pass the NMS threshold the detection was made with"
        )
    return None, int(over[0]), float(ious[over[0]])


def cell_details(detection: Detection, layout: Layout, where: CellIndex, nms_threshold: float = 0.4) -> Cell:
    """Raw numbers, decoded face and NMS verdict of one cell; `nms_threshold` must be the detection's."""
    box, stride = detection.letterbox, where.stride
    row = row_of(layout, box, where)
    point = centres(*grid(box, stride), stride, layout.anchors)[row]
    raw = _raw(detection, layout, "bbox", stride, row)
    raw_kps = _raw(detection, layout, "kps", stride, row) if layout.landmarks else None
    score = level_scores(detection, layout, stride).reshape(-1)[row]
    boxes, marks = decode_rows(detection.outputs, layout, stride, np.array([row]), point[None])
    face = Faces(boxes, np.array([score]), marks, np.array([stride], np.int32), np.array([row], np.int64))
    cands = detection.candidates
    match = np.flatnonzero((cands.stride == stride) & (cands.row == row))
    verdict = _nms_verdict(detection, int(match[0]), nms_threshold) if match.size else (None, None, None)
    return Cell(
        where,
        row,
        float(score),
        raw,
        raw_kps,
        (float(point[0]), float(point[1])),
        face,
        face.scaled(box.scale),
        bool(point[0] >= box.new_width or point[1] >= box.new_height),
        bool(match.size),
        *verdict,
    )


def top_cells(detection: Detection, layout: Layout, stride: int, anchor: int, count: int) -> list[CellIndex]:
    """The `count` best-scoring cells of one map, best first: candidates and near misses alike."""
    scores = score_map(detection, layout, stride, anchor).scores
    best = np.argsort(-scores, axis=None, kind="stable")[:count]
    return [CellIndex(stride, anchor, int(i % scores.shape[1]), int(i // scores.shape[1])) for i in best]


def best_face_map(detection: Detection, layout: Layout) -> tuple[int, int] | None:
    """(stride, anchor) of the map that produced the best kept face; None when no face was kept."""
    if not len(detection.faces):
        return None
    where = face_cell(detection, layout, 0)
    return where.stride, where.anchor


def best_face_cell(detection: Detection, layout: Layout, stride: int, anchor: int) -> CellIndex:
    """The cell of one map to show first: where this map meets the best face.

    The best kept face this map produced, if any; else this map's best cell on the best
    face (anchor point inside its box, or the nearest one for a face smaller than a cell),
    so the table shows what this stride made of that face; with no face at all, the map's
    best cell.
    """
    cands = detection.candidates
    own = np.flatnonzero(
        (cands.stride[detection.kept] == stride) & (cands.row[detection.kept] % layout.anchors == anchor)
    )
    if own.size:
        return face_cell(detection, layout, int(own[0]))
    if not len(detection.faces):
        return top_cells(detection, layout, stride, anchor, 1)[0]
    scores = score_map(detection, layout, stride, anchor).scores
    ys, xs = np.mgrid[: scores.shape[0], : scores.shape[1]] * stride
    x1, y1, x2, y2 = cands.boxes[detection.kept[0]]
    inside = (xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)
    if inside.any():
        flat = int(np.argmax(np.where(inside, scores, -np.inf)))
    else:
        flat = int(np.argmin((xs - (x1 + x2) / 2) ** 2 + (ys - (y1 + y2) / 2) ** 2))
    y, x = divmod(flat, scores.shape[1])
    return CellIndex(stride, anchor, x, y)


def redecode(detection: Detection, layout: Layout, score_threshold: float, nms_threshold: float) -> Detection:
    """The same outputs decoded at other thresholds, as Detector.run would: no model run."""
    box = detection.letterbox
    faces, cands, kept = postprocess(detection.outputs, layout, box, score_threshold, nms_threshold)
    return Detection(faces, cands, kept, box, detection.outputs, Timings())


def merge_sizes(detections: Sequence[Detection], nms_threshold: float) -> Faces:
    """Kept faces of several input sizes merged by one more NMS, as Detector.detect_sizes does."""
    return merge([d.faces for d in detections], nms_threshold)
