"""The notebooks' figures: readable where JupyterLab shows them, and drawing what their titles say."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from helpers.cuda.diagram import context_diagram
from helpers.detector import Detection, Detector
from helpers.images import read_image
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.plots import anchor_grid, nms_steps, op_histogram, timing_bars
from helpers.samples import sample_path
from helpers.scoremap import candidate_cell

# JupyterLab shows an output image at its own size up to about 1000 px (a 1400 px window with
# the file browser open) and shrinks anything wider; below 9 points text is hard to read even 1:1.
MAX_WIDTH_PX = 1020
MIN_FONT_PT = 9


def _texts(fig: Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]


def assert_readable(fig: Figure) -> None:
    fig.canvas.draw()
    width = fig.get_window_extent().width
    assert width <= MAX_WIDTH_PX, f"{width:.0f} px wide: JupyterLab shrinks it"
    small = [(t.get_text(), t.get_fontsize()) for t in _texts(fig) if t.get_fontsize() < MIN_FONT_PT]
    assert not small, f"text under {MIN_FONT_PT} pt: {small[:3]}"
    plt.close(fig)


@pytest.fixture(scope="module")
def crowd(default_model) -> tuple[Detector, Detection, np.ndarray]:
    detector = Detector(OnnxRuntimeBackend(default_model, providers=["CPUExecutionProvider"]))
    image = read_image(sample_path("crowd48.png"))
    return detector, detector.run(image), image


def test_the_context_diagram_is_readable_and_its_fix_has_no_private_context() -> None:
    fig = context_diagram()
    failure, fix = fig.axes
    assert any("private context A" in t.get_text() for t in _texts(failure))
    assert not any("private" in t.get_text().lower() for t in fix.texts if "no private" not in t.get_text())
    assert_readable(fig)


def test_nms_steps_zoom_on_each_round_and_name_its_overlaps(crowd) -> None:
    detector, det, image = crowd
    fig = nms_steps(det, image, steps=3, threshold=detector.nms_threshold)
    rounds = [ax for ax in fig.axes if ax.get_title().startswith("round")]
    assert len(rounds) == 3
    for ax in rounds:
        width = abs(np.subtract(*ax.get_xlim()))
        assert width < det.letterbox.new_width / 3, "a round is zoomed on its face, not the whole image"
        assert "IoU" in ax.get_title()
    assert_readable(fig)


def test_anchor_grid_zoom_puts_the_anchor_point_at_its_cell_top_left_corner(crowd) -> None:
    detector, det, image = crowd
    best = int(np.argmax(det.candidates.scores))
    stride = int(det.candidates.stride[best])
    fig = anchor_grid(det, detector.layout, stride, image)
    zoom = fig.axes[1]
    cell = next(p for p in zoom.patches if isinstance(p, Rectangle) and p.get_edgecolor()[:3] == (1, 0, 0))
    where = candidate_cell(det, detector.layout, best)
    assert cell.get_xy() == (where.x * stride, where.y * stride)
    assert (cell.get_width(), cell.get_height()) == (stride, stride)
    assert "anchor point" in zoom.get_title() and "top-left corner" in zoom.get_title()
    assert_readable(fig)


def test_small_figures_are_readable() -> None:
    assert_readable(timing_bars({"preprocess": 1.2, "inference": 40.0, "postprocess": 0.4}, "warm runs"))
    assert_readable(op_histogram({f"model_{i}.onnx": {"Conv": 60, "Transpose": 9} for i in range(3)}))


def test_nms_figure_shows_the_rounds_whose_suppressed_boxes_stand_out(crowd) -> None:
    from helpers.nms import iou_with, trace
    from helpers.plots import telling_rounds

    detector, det, _ = crowd
    boxes = det.candidates.boxes
    history = trace(boxes, det.candidates.scores, detector.nms_threshold)
    shown = telling_rounds(boxes, history, 3)
    assert shown == sorted(shown) and len(shown) == 3
    least = {k: float(iou_with(boxes, i, gone).min()) for k, (i, gone) in enumerate(history) if len(gone)}
    assert all(k in least for k in shown), "every round shown suppresses something"
    assert max(least[k] for k in shown) <= min(v for k, v in least.items() if k not in shown)
