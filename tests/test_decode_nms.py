"""Decode and NMS on hand-made tensors: exact numbers, edge cases, both NMS paths."""

from __future__ import annotations

import numpy as np
import pytest
from scrfd_reference import ReferenceSCRFD

from helpers.anchors import centres
from helpers.decode import candidates
from helpers.detections import Faces
from helpers.layout import Layout
from helpers.nms import nms

LAYOUT = Layout(
    (8, 16, 32),
    2,
    True,
    False,
    False,
    True,
    {k: {s: f"{k}{s}" for s in (8, 16, 32)} for k in ("score", "bbox", "kps")},
)


def blank_outputs(w: int = 64, h: int = 64) -> dict[str, np.ndarray]:
    out = {}
    for s in LAYOUT.strides:
        rows = LAYOUT.rows(s, w, h)
        out[f"score{s}"] = np.zeros((rows, 1), np.float32)
        out[f"bbox{s}"] = np.zeros((rows, 4), np.float32)
        out[f"kps{s}"] = np.zeros((rows, 10), np.float32)
    return out


def reference_nms(boxes, scores, thr):
    ref = ReferenceSCRFD.__new__(ReferenceSCRFD)
    ref.nms_thresh = thr
    dets = np.hstack([boxes, scores[:, None]]).astype(np.float32)
    return np.asarray(ref.nms(dets))


def test_anchor_centres_match_the_reference_and_are_read_only():
    c = centres(2, 3, 16, 2)
    expected = np.stack(np.mgrid[:2, :3][::-1], axis=-1).astype(np.float32)
    expected = np.stack([(expected * 16).reshape(-1, 2)] * 2, axis=1).reshape(-1, 2)
    np.testing.assert_array_equal(c, expected)
    assert centres(2, 3, 16, 2) is c
    with pytest.raises(ValueError):
        c[0, 0] = 1


def test_one_cell_decodes_to_the_expected_box_and_landmarks():
    out = blank_outputs()
    row = (1 * 4 + 2) * 2 + 1  # stride 16: y=1, x=2, second anchor -> centre (32, 16)
    out["score16"][row] = 0.9
    out["bbox16"][row] = [1, 0.5, 2, 1.5]
    out["kps16"][row] = [0, 0, 1, 1, -1, 0.5, 0, 2, 0.25, -0.25]
    faces = candidates(out, LAYOUT, (64, 64), 0.5)
    assert len(faces) == 1 and faces.stride[0] == 16 and faces.row[0] == row
    np.testing.assert_array_equal(faces.boxes[0], [32 - 16, 16 - 8, 32 + 32, 16 + 24])
    np.testing.assert_array_equal(faces.landmarks[0], [[32, 16], [48, 32], [16, 24], [32, 48], [36, 12]])


def test_threshold_is_inclusive_and_nothing_found_is_empty():
    out = blank_outputs()
    out["score8"][5] = 0.5
    assert len(candidates(out, LAYOUT, (64, 64), 0.5)) == 1
    assert len(candidates(out, LAYOUT, (64, 64), 0.51)) == 0
    empty = candidates(blank_outputs(), LAYOUT, (64, 64), 0.5)
    assert empty.boxes.shape == (0, 4) and empty.landmarks.shape == (0, 5, 2)


def test_outputs_of_another_size_are_refused():
    with pytest.raises(ValueError, match="do not belong to this input size"):
        candidates(blank_outputs(64, 64), LAYOUT, (96, 64), 0.5)


def test_nan_scores_are_never_faces():
    out = blank_outputs()
    for s in LAYOUT.strides:
        out[f"score{s}"][:] = np.nan  # what outputs TensorRT never wrote look like after poisoning
    assert len(candidates(out, LAYOUT, (64, 64), 0.0)) == 0


@pytest.mark.parametrize("n", [0, 1, 2, 50, 200, 3000])
@pytest.mark.parametrize("thr", [0.0, 0.4, 0.7, 1.0])
def test_nms_equals_the_reference(n, thr):
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 500, (n, 2)).astype(np.float32)
    wh = rng.uniform(5, 80, (n, 2)).astype(np.float32)
    boxes = np.hstack([xy, xy + wh])
    scores = rng.permutation(n).astype(np.float32) / max(n, 1)  # distinct: no tie ambiguity
    keep = nms(boxes, scores, thr)
    ref = reference_nms(boxes, scores, thr) if n else np.zeros(0, np.int64)
    np.testing.assert_array_equal(np.sort(scores[keep])[::-1], scores[keep])
    np.testing.assert_array_equal(keep, ref)


def test_nms_identical_boxes_keep_the_best_one():
    boxes = np.tile(np.array([[10, 10, 50, 50]], np.float32), (4, 1))
    scores = np.array([0.6, 0.9, 0.7, 0.8], np.float32)
    assert nms(boxes, scores, 0.4).tolist() == [1]


def test_nms_disjoint_boxes_are_all_kept_best_first():
    boxes = np.array([[0, 0, 10, 10], [100, 100, 110, 110], [200, 0, 210, 10]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.7], np.float32), 0.4).tolist() == [1, 2, 0]


def test_faces_select_scale_and_serialise():
    faces = Faces(
        np.array([[10, 20, 30, 40], [0, 0, 4, 4]], np.float32),
        np.array([0.9, 0.6], np.float32),
        np.arange(20, dtype=np.float32).reshape(2, 5, 2),
        np.array([8, 16], np.int32),
        np.array([3, 7]),
    )
    one = faces[faces.scores > 0.7]
    assert len(one) == 1 and one.row.tolist() == [3]
    half = faces.scaled(0.5)
    assert half.boxes[0].tolist() == [20, 40, 60, 80]
    js = half.to_json()
    assert js[1] == {
        "box": [0.0, 0.0, 8.0, 8.0],
        "score": 0.6,
        "landmarks": [[20.0, 22.0], [24.0, 26.0], [28.0, 30.0], [32.0, 34.0], [36.0, 38.0]],
    }
    assert Faces.empty(landmarks=False).to_json() == []


def greedy_over_every_pair(boxes: np.ndarray, scores: np.ndarray, thr: float) -> np.ndarray:
    """Greedy NMS testing all n^2 pairs with the same arithmetic: what the pair pruning must equal."""
    from helpers.nms import _areas, _iou_against

    order = scores.argsort()[::-1]
    ranked = boxes[order]
    idx = np.arange(len(ranked))
    over = _iou_against(ranked, _areas(ranked), idx[:, None], idx[None, :]) > thr
    removed, keep = np.zeros(len(ranked), bool), []
    for i in idx:
        if not removed[i]:
            keep.append(i)
            removed |= over[i]
    return order[np.asarray(keep, np.int64)]


@pytest.mark.parametrize("thr", [-0.1, 0.0, 0.4, 0.9])
def test_pruned_pairs_give_the_all_pairs_nms_on_edge_cases(thr):
    """Boxes that touch (x1 = x2 + 1 and + 1 - ulp), share left edges, are inverted or are
    points, on a grid where many meet: the pruning drops only pairs that cannot overlap."""
    rng = np.random.default_rng(11)
    x = rng.integers(0, 40, 300).astype(np.float32)
    y = rng.integers(0, 40, 300).astype(np.float32)
    w = rng.integers(-3, 12, 300).astype(np.float32)
    boxes = np.stack([x, y, x + w, y + rng.integers(-3, 12, 300).astype(np.float32)], axis=1)
    touch = np.array([[0, 0, 9, 9], [10, 0, 19, 9], [np.nextafter(np.float32(10), np.float32(0)), 0, 15, 9]])
    boxes = np.vstack([boxes, touch.astype(np.float32)])
    scores = rng.permutation(len(boxes)).astype(np.float32) / len(boxes)
    np.testing.assert_array_equal(nms(boxes, scores, thr), greedy_over_every_pair(boxes, scores, thr))
