"""Matplotlib drawings of score maps over the letterboxed canvas, for notebooks and the explorer.

Figures are built with matplotlib.figure.Figure, never pyplot, so the explorer
can redraw on every slider move without piling figures up in pyplot's state.
Each heatmap cell is centred on its anchor point (see helpers.scoremap). The
canvas is drawn in grey so the heatmap's colours never mix with the photo's.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PolyCollection
from matplotlib.colors import FuncNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from helpers.detector import Detection
from helpers.layout import Layout
from helpers.plots import canvas_image
from helpers.scoremap import Cell, ScoreMap, score_map

CMAP = "plasma"
KEPT = "#39ff14"
SUPPRESSED = "#ff8c00"
PICKED = "#00e5ff"
PADDING = (0.55, 0.55, 0.6, 0.75)
# Log-odds colour range: about a typical background cell up to a certain face.
SCORE_RANGE = (0.01, 0.99)
SCORE_TICKS = (0.01, 0.03, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99)
FONT = 10  # points: 14 px at the figures' 100 dpi, readable where the browser shows them 1:1
DPI = 100


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def score_norm() -> FuncNorm:
    """Colours on the log-odds (logit) scale, from SCORE_RANGE[0] to SCORE_RANGE[1].

    SCRFD's scores are sigmoids of the heads' outputs, so log-odds is the network's own
    linear scale: 0.01, 0.1, 0.5 and 0.9 sit at even steps. On a linear scale the whole
    background (about 0.01) and the near misses (0.03 to 0.4) that show what a stride
    responds to share the darkest fifth of the colours, and most maps look empty.
    """
    return FuncNorm((_logit, _sigmoid), *SCORE_RANGE)


@dataclass(frozen=True)
class Panel:
    """One input size's view: the canvas it saw and its detection at the current thresholds."""

    title: str
    canvas: np.ndarray  # RGB uint8, letterboxed, as helpers.plots.canvas_image draws it
    detection: Detection


def _heatmap(ax: Axes, smap: ScoreMap, threshold: float | None) -> None:
    """Scores over the canvas on the log-odds scale, padding cells shaded grey.

    Opacity follows the colour scale, so background cells (at or under SCORE_RANGE[0])
    leave the canvas visible while near misses and peaks stand out.
    """
    level = np.clip(score_norm()(smap.scores), 0, 1)
    rgba = ScalarMappable(cmap=CMAP).to_rgba(level, norm=False)
    rgba[..., 3] = np.clip(2.5 * level, 0, 0.6)
    ax.imshow(rgba, extent=smap.extent, interpolation="nearest")
    shade = np.zeros((*smap.padding.shape, 4))
    shade[smap.padding] = PADDING
    ax.imshow(shade, extent=smap.extent, interpolation="nearest")
    h, w = smap.scores.shape
    if threshold is not None and smap.scores.max() >= threshold > smap.scores.min():
        xs, ys = np.arange(w) * smap.stride, np.arange(h) * smap.stride
        ax.contour(xs, ys, smap.scores, levels=[threshold], colors=PICKED, linewidths=1.2)


def _colorbar(fig: Figure, axes: list[Axes], threshold: float | None, shrink: float) -> None:
    """The score scale, ticked in scores (not log-odds), with the threshold marked."""
    bar = fig.colorbar(
        ScalarMappable(score_norm(), CMAP), ax=axes, shrink=shrink, ticks=SCORE_TICKS, format="%g"
    )
    bar.set_label("score (log-odds scale)", fontsize=FONT)
    bar.ax.tick_params(labelsize=FONT - 1)
    if threshold is not None:
        bar.ax.axhline(threshold, color=PICKED, lw=2.5)


def _boxes(ax: Axes, boxes: np.ndarray, colour: str, style: str, width: float) -> None:
    """All boxes as one collection: hundreds of candidates stay one artist, so redraws stay fast."""
    x1, y1, x2, y2 = np.asarray(boxes, np.float64).reshape(-1, 4).T
    corners = np.stack([np.stack(c, axis=1) for c in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))], axis=1)
    ax.add_collection(
        PolyCollection(
            list(corners), facecolors="none", edgecolors=colour, linestyles=style, linewidths=width
        )
    )


def _faces(ax: Axes, detection: Detection) -> None:
    """Kept faces solid, candidates that NMS suppressed dashed; canvas pixels."""
    cands = detection.candidates
    suppressed = np.ones(len(cands), bool)
    suppressed[detection.kept] = False
    _boxes(ax, cands.boxes[suppressed], SUPPRESSED, "--", 0.8)
    _boxes(ax, cands.boxes[detection.kept], KEPT, "-", 1.6)


def _picked(ax: Axes, cell: Cell) -> None:
    """The chosen cell's square, its anchor point, and the face it decodes to."""
    s, (cx, cy) = cell.where.stride, cell.anchor_point
    ax.add_patch(Rectangle((cx - s / 2, cy - s / 2), s, s, fill=False, ec=PICKED, lw=1.5))
    ax.plot([cx], [cy], "+", color=PICKED, ms=8)
    _boxes(ax, cell.faces.boxes, PICKED, ":", 1.4)
    if cell.faces.landmarks is not None:
        ax.plot(*cell.faces.landmarks[0].T, "o", color=PICKED, ms=3)


def _canvas(ax: Axes, canvas: np.ndarray, title: str) -> None:
    grey = canvas @ np.array([0.299, 0.587, 0.114])
    ax.imshow(0.45 * 255 + 0.55 * grey, cmap="gray", vmin=0, vmax=255)  # faded, so the heat stands out
    ax.set_title(title, fontsize=FONT)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(-0.5, canvas.shape[1] - 0.5)
    ax.set_ylim(canvas.shape[0] - 0.5, -0.5)


def explorer_figure(
    panels: Sequence[Panel],
    layout: Layout,
    stride: int,
    anchor: int,
    threshold: float,
    picked: tuple[int, Cell] | None,
) -> Figure:
    """One heatmap panel per input size, faces on top, the picked cell (panel, cell) highlighted.

    About 560 px wide for one panel and 800 for two, so it fits beside the explorer's
    controls in a notebook without being scaled down much.
    """
    side = 4.6 if len(panels) == 1 else 3.5
    fig = Figure(figsize=(side * len(panels) + 1.0, side + 0.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for i, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
        det = panel.detection
        _canvas(ax, panel.canvas, f"{panel.title}: stride {stride}, anchor {anchor}")
        _heatmap(ax, score_map(det, layout, stride, anchor), threshold)
        _faces(ax, det)
        if picked is not None and picked[0] == i:
            _picked(ax, picked[1])
    _colorbar(fig, list(axes), threshold, 0.9)
    return fig


def score_map_figure(image: np.ndarray, detection: Detection, layout: Layout, title: str = "") -> Figure:
    """Every (anchor, stride) score map of one detection: anchors down, strides across."""
    canvas = canvas_image(detection, image)
    rows, cols = layout.anchors, len(layout.strides)
    fig = Figure(figsize=(3.0 * cols + 1.0, 3.2 * rows + 0.4), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for (anchor, col), ax in np.ndenumerate(axes):
        stride = layout.strides[col]
        smap = score_map(detection, layout, stride, anchor)
        h, w = smap.scores.shape
        _canvas(ax, canvas, f"stride {stride} ({w}x{h}), anchor {anchor}: max {smap.scores.max():.2f}")
        _heatmap(ax, smap, None)
        _faces(ax, detection)
    _colorbar(fig, axes.ravel().tolist(), None, 0.7)
    if title:
        fig.suptitle(title, fontsize=FONT + 1)
    return fig


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes, for an ipywidgets.Image or a file; light compression redraws faster."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": 1})
    return buf.getvalue()
