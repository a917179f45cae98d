"""Score maps and cells agree with helpers.decode and helpers.nms, on real models and hand-made tensors."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.decode import candidates
from helpers.detector import Detection, Detector
from helpers.errors import UserError
from helpers.images import read_image
from helpers.layout import Layout
from helpers.letterbox import Letterbox, fit
from helpers.nms import nms
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path
from helpers.scoremap import (
    CellIndex,
    candidate_cell,
    cell_details,
    cell_of,
    face_cell,
    merge_sizes,
    redecode,
    row_of,
    score_map,
    top_cells,
)

NMS = 0.4


@pytest.fixture(scope="module")
def detector(default_model) -> Detector:
    return Detector(OnnxRuntimeBackend(default_model, providers=["CPUExecutionProvider"]), nms_threshold=NMS)


def _hand_layout(nchw: bool = False) -> Layout:
    outputs = {k: {s: f"{k}_{s}" for s in (8, 16, 32)} for k in ("score", "bbox", "kps")}
    return Layout((8, 16, 32), 2, True, False, nchw, True, outputs)


def _hand_detection(layout: Layout, box: Letterbox) -> Detection:
    """Random low scores plus three high ones at stride 8: rows 10 and 12 overlap, row 400 stands apart."""
    rng = np.random.default_rng(3)
    outputs = {}
    for s in layout.strides:
        rows = layout.rows(s, box.width, box.height)
        score = rng.uniform(0, 0.3, (rows, 1)).astype(np.float32)
        outputs[f"score_{s}"] = score
        outputs[f"bbox_{s}"] = rng.uniform(0.5, 2.5, (rows, 4)).astype(np.float32)
        outputs[f"kps_{s}"] = rng.normal(0, 1, (rows, 10)).astype(np.float32)
    outputs["score_8"][[10, 12, 400], 0] = (0.9, 0.8, 0.7)
    outputs["bbox_8"][[10, 12]] = ((2, 2, 2, 2), (2, 2, 2, 2.2))
    return _detection_from(layout, box, outputs)


def _detection_from(layout: Layout, box: Letterbox, outputs: dict[str, np.ndarray]) -> Detection:
    """What Detector.run returns for these outputs, at threshold 0.5 and NMS 0.4."""
    cands = candidates(outputs, layout, (box.width, box.height), 0.5)
    kept = nms(cands.boxes, cands.scores, NMS)
    return Detection(cands[kept].scaled(box.scale), cands, kept, box, outputs)


def _to_nchw(array: np.ndarray, box: Letterbox, stride: int, anchors: int) -> np.ndarray:
    """(rows, C) back to the raw head's (1, A*C, h, w), the inverse of Layout.as_rows."""
    h, w = -(-box.height // stride), -(-box.width // stride)
    return np.ascontiguousarray(array.reshape(h, w, anchors * array.shape[1]).transpose(2, 0, 1)[None])


def test_every_kept_face_points_to_its_own_cell(detector):
    image = read_image(sample_path("crowd48.png"))
    det = detector.run(image, (640, 640))
    assert len(det.faces) > 20
    for i in range(len(det.faces)):
        cell = cell_details(det, detector.layout, face_cell(det, detector.layout, i), NMS)
        assert cell.kept == i and cell.passed and cell.suppressed_by is None
        np.testing.assert_array_equal(cell.original.boxes[0], det.faces.boxes[i])
        np.testing.assert_array_equal(cell.original.landmarks[0], det.faces.landmarks[i])
        assert cell.score == det.faces.scores[i]


def test_suppressed_candidates_name_a_kept_face_that_overlaps_them(detector):
    det = detector.run(read_image(sample_path("crowd48.png")), (640, 640))
    layout = detector.layout
    suppressed = np.setdiff1d(np.arange(len(det.candidates)), det.kept)
    assert suppressed.size > 20
    for i in suppressed:
        cell = cell_details(det, layout, candidate_cell(det, layout, int(i)), NMS)
        assert cell.passed and cell.kept is None and cell.iou > NMS
        np.testing.assert_array_equal(cell.faces.boxes[0], det.candidates.boxes[i])
        suppressor = det.candidates[det.kept[cell.suppressed_by : cell.suppressed_by + 1]]
        assert suppressor.scores[0] >= cell.score


def test_padding_cells_are_those_past_the_resized_image(detector):
    image = read_image(sample_path("crowd48.png"))  # 512x384: the 640 canvas pads its bottom 160 rows
    det = detector.run(image, (640, 640))
    assert det.letterbox.new_height == 480
    smap = score_map(det, detector.layout, 32, 0)
    assert smap.scores.shape == (20, 20) and smap.extent == (-16, 624, 624, -16)
    assert smap.padding[15:].all() and not smap.padding[:15].any()
    assert cell_details(det, detector.layout, CellIndex(32, 1, 3, 15), NMS).padding
    assert not cell_details(det, detector.layout, CellIndex(32, 1, 3, 14), NMS).padding


def test_score_map_reads_rows_with_anchors_innermost():
    layout, box = _hand_layout(), fit((480, 640), (256, 128))
    det = _hand_detection(layout, box)
    rows = det.outputs["score_16"][:, 0]
    smap = score_map(det, layout, 16, 1)
    assert smap.scores.shape == (8, 16)
    assert smap.scores[2, 3] == rows[(2 * 16 + 3) * 2 + 1]


def test_hand_made_cells_match_decode_and_nms():
    layout, box = _hand_layout(), fit((480, 640), (128, 128))
    det = _hand_detection(layout, box)
    first = cell_details(det, layout, cell_of(layout, box, 8, 10), NMS)
    second = cell_details(det, layout, cell_of(layout, box, 8, 12), NMS)
    alone = cell_details(det, layout, cell_of(layout, box, 8, 400), NMS)
    assert first.kept is not None and alone.kept is not None
    assert second.suppressed_by == first.kept and second.iou > NMS
    assert second.where == CellIndex(8, 0, 6, 0) and second.anchor_point == (48.0, 0.0)
    np.testing.assert_array_equal(second.distances, det.outputs["bbox_8"][12])
    np.testing.assert_array_equal(second.faces.boxes[0], np.array([32, -16, 64, 17.6], np.float32))
    low = cell_details(det, layout, CellIndex(8, 1, 0, 0), NMS)
    assert not low.passed and low.kept is None and low.suppressed_by is None


def test_nchw_outputs_give_the_same_cells():
    rows, box = _hand_layout(), fit((480, 640), (128, 128))
    nchw = _hand_layout(nchw=True)
    det = _hand_detection(rows, box)
    raw = {name: _to_nchw(a, box, int(name.split("_")[1]), 2) for name, a in det.outputs.items()}
    det_nchw = _detection_from(nchw, box, raw)
    where = cell_of(rows, box, 8, 12)
    a, b = cell_details(det, rows, where, NMS), cell_details(det_nchw, nchw, where, NMS)
    np.testing.assert_array_equal(a.faces.boxes, b.faces.boxes)
    np.testing.assert_array_equal(a.kps, b.kps)
    assert (a.suppressed_by, a.score) == (b.suppressed_by, b.score)


def test_redecode_matches_a_fresh_run(detector):
    image = read_image(sample_path("crowd48.png"))
    det = detector.run(image, (320, 320))
    low = Detector(detector.backend, score_threshold=0.3, nms_threshold=0.6).run(image, (320, 320))
    again = redecode(det, detector.layout, 0.3, 0.6)
    np.testing.assert_array_equal(again.faces.boxes, low.faces.boxes)
    np.testing.assert_array_equal(again.kept, low.kept)


def test_two_sizes_find_the_large_face_that_640_misses(detector):
    image = read_image(sample_path("large_face.png"))
    runs = [detector.run(image, s) for s in ((640, 640), (128, 128))]
    assert len(runs[0].faces) == 0 and len(runs[1].faces) == 1
    merged = merge_sizes(runs, NMS)
    np.testing.assert_array_equal(merged.boxes, detector.detect_sizes(image, [(640, 640), (128, 128)]).boxes)


def test_top_cells_are_best_first_and_start_at_the_best_face(detector):
    det = detector.run(read_image(sample_path("astronaut.png")), (640, 640))
    best = face_cell(det, detector.layout, 0)
    cells = top_cells(det, detector.layout, best.stride, best.anchor, 5)
    scores = [cell_details(det, detector.layout, c, NMS).score for c in cells]
    assert cells[0] == best and scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (CellIndex(64, 0, 0, 0), "stride 64"),
        (CellIndex(8, 2, 0, 0), "anchor 2"),
        (CellIndex(32, 0, 4, 0), "outside the 4x4 map"),
    ],
)
def test_bad_cells_are_one_line_user_errors(where, message):
    layout, box = _hand_layout(), fit((100, 100), (128, 128))
    with pytest.raises(UserError, match=message):
        row_of(layout, box, where)


def test_wrong_nms_threshold_is_reported():
    layout, box = _hand_layout(), fit((480, 640), (128, 128))
    det = _hand_detection(layout, box)
    with pytest.raises(UserError, match="NMS threshold"):
        cell_details(det, layout, cell_of(layout, box, 8, 12), 0.99)


def test_missing_faces_and_candidates_are_user_errors():
    layout, box = _hand_layout(), fit((480, 640), (128, 128))
    det = _hand_detection(layout, box)
    with pytest.raises(UserError, match="face 2 does not exist"):
        face_cell(det, layout, 2)
    with pytest.raises(UserError, match="candidate -1 does not exist"):
        candidate_cell(det, layout, -1)
