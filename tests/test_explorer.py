"""The explorer's widgets, driven from Python as the browser would: which cell it shows, and when."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.detector import Detector
from helpers.explorer import Explorer
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.scoremap import Cell, best_face_cell, cell_details, face_cell
from helpers.scoreplot import explorer_figure, score_norm


@pytest.fixture(scope="module")
def explorer(default_model) -> Explorer:
    detector = Detector(OnnxRuntimeBackend(default_model, providers=["CPUExecutionProvider"]))
    return Explorer(detector)


def _picked(explorer: Explorer) -> tuple[int, Cell]:
    panel, where = explorer.cell.value
    return panel, cell_details(explorer._panels[panel].detection, explorer.layout, where, explorer.nms.value)


def test_a_new_image_opens_on_the_best_face_and_its_map(explorer):
    explorer.size.value = explorer.size.options[0][1]
    explorer.stride.value = 8
    explorer.image.value = "crowd48.png"
    det = explorer._panels[0].detection
    best = face_cell(det, explorer.layout, 0)
    assert (explorer.stride.value, explorer.anchor.value) == (best.stride, best.anchor)
    assert explorer.cell.value == (0, best)
    assert _picked(explorer)[1].kept == 0


def test_a_stride_without_faces_shows_its_cell_on_the_best_face(explorer):
    explorer.image.value = "astronaut.png"
    det = explorer._panels[0].detection
    best = det.candidates.boxes[det.kept[0]]
    other = next(s for s in explorer.layout.strides if s != face_cell(det, explorer.layout, 0).stride)
    explorer.stride.value = other
    _, cell = _picked(explorer)
    x, y = cell.anchor_point
    assert cell.where.stride == other and cell.kept is None
    assert best[0] <= x <= best[2] and best[1] <= y <= best[3]
    assert np.all(cell.faces.boxes[0, 2:] > cell.faces.boxes[0, :2]), "a real box, not an all-zero one"
    assert explorer.cell.value in [v for _, v in explorer.cell.options]


def test_a_threshold_move_keeps_the_picked_cell(explorer):
    explorer.image.value = "crowd48.png"
    explorer.cell.value = explorer.cell.options[3][1]
    kept = explorer.cell.value
    explorer.threshold.value = 0.3
    assert explorer.cell.value == kept
    explorer.threshold.value = 0.5


def test_two_sizes_open_on_the_size_that_found_the_large_face(explorer):
    if explorer.detector.fixed_size:
        pytest.skip("the default model has a static input size")
    explorer.image.value = "large_face.png"
    explorer.size.value = ((640, 640), (128, 128))
    panel, cell = _picked(explorer)
    assert explorer._panels[panel].title == "128x128" and cell.kept == 0


def test_best_face_cell_falls_back_to_the_map_peak_without_faces(explorer):
    explorer.size.value = explorer.size.options[0][1]
    explorer.image.value = "large_face.png"
    det = explorer._panels[0].detection
    if len(det.faces):
        pytest.skip("this model finds the large face at 640")
    where = best_face_cell(det, explorer.layout, 32, 0)
    scores = det.outputs[explorer.layout.name("score", 32)]
    assert cell_details(det, explorer.layout, where).score == pytest.approx(
        float(explorer.layout.as_rows(scores)[0::2].max())
    )


def test_the_figure_fits_beside_the_controls(explorer):
    """One panel at most 600 px wide, two at most 850: beside a 25em column in a 1400 px window."""
    for sizes, limit in ((1, 600), (2, 850)):
        fig = explorer_figure(explorer._panels[:1] * sizes, explorer.layout, 16, 0, 0.5, None)
        assert fig.get_figwidth() * fig.dpi <= limit


def test_the_colour_scale_spreads_low_scores():
    """Log-odds: a near miss (0.1) gets a quarter of the colours, not a tenth; 0.5 sits in the middle."""
    norm = score_norm()
    assert norm(0.5) == pytest.approx(0.5)
    assert norm(0.1) > 0.25 and norm(0.9) < 0.75
    assert norm(0.01) == pytest.approx(0.0) and norm(0.99) == pytest.approx(1.0)
