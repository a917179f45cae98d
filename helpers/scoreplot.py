"""Matplotlib drawings of score maps over the letterboxed canvas, for notebooks and the explorer.

Figures are built with matplotlib.figure.Figure, never pyplot, so the explorer
can redraw on every slider move without piling figures up in pyplot's state.
Each heatmap cell is centred on its anchor point (see helpers.scoremap).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from helpers.detector import Detection
from helpers.layout import Layout
from helpers.plots import canvas_image
from helpers.scoremap import Cell, ScoreMap, score_map

CMAP = "inferno"
KEPT = "#39ff14"
SUPPRESSED = "#ff8c00"
PICKED = "#00e5ff"
PADDING = (0.55, 0.55, 0.6, 0.75)


@dataclass(frozen=True)
class Panel:
    """One input size's view: the canvas it saw and its detection at the current thresholds."""

    title: str
    canvas: np.ndarray  # RGB uint8, letterboxed, as helpers.plots.canvas_image draws it
    detection: Detection


def _heatmap(ax: Axes, smap: ScoreMap, threshold: float | None) -> None:
    """Scores over the canvas, padding cells shaded grey.

    Opacity rises steeply with the score, so near misses (0.1-0.4) show as well as peaks
    while the many near-zero cells leave the image visible.
    """
    rgba = ScalarMappable(Normalize(0, 1), CMAP).to_rgba(smap.scores)
    rgba[..., 3] = np.clip(0.05 + 2.5 * smap.scores, 0, 0.9)
    ax.imshow(rgba, extent=smap.extent, interpolation="nearest")
    shade = np.zeros((*smap.padding.shape, 4))
    shade[smap.padding] = PADDING
    ax.imshow(shade, extent=smap.extent, interpolation="nearest")
    h, w = smap.scores.shape
    if threshold is not None and smap.scores.max() >= threshold > smap.scores.min():
        xs, ys = np.arange(w) * smap.stride, np.arange(h) * smap.stride
        ax.contour(xs, ys, smap.scores, levels=[threshold], colors=PICKED, linewidths=0.8)


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
    s, (cx, cy) = cell.where.stride, cell.centre
    ax.add_patch(Rectangle((cx - s / 2, cy - s / 2), s, s, fill=False, ec=PICKED, lw=1.5))
    ax.plot([cx], [cy], "+", color=PICKED, ms=8)
    _boxes(ax, cell.faces.boxes, PICKED, ":", 1.4)
    if cell.faces.landmarks is not None:
        ax.plot(*cell.faces.landmarks[0].T, "o", color=PICKED, ms=3)


def _canvas(ax: Axes, canvas: np.ndarray, title: str) -> None:
    ax.imshow(canvas, alpha=0.75)
    ax.set_title(title, fontsize=9)
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
    """One heatmap panel per input size, faces on top, the picked cell (panel, cell) highlighted."""
    fig = Figure(figsize=(4.6 * len(panels) + 0.6, 4.9), dpi=105, layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for i, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
        det = panel.detection
        _canvas(
            ax, panel.canvas, f"{panel.title} · stride {stride} · anchor {anchor} · score ≥ {threshold:.2f}"
        )
        _heatmap(ax, score_map(det, layout, stride, anchor), threshold)
        _faces(ax, det)
        if picked is not None and picked[0] == i:
            _picked(ax, picked[1])
    fig.colorbar(ScalarMappable(Normalize(0, 1), CMAP), ax=list(axes), shrink=0.8, label="score")
    return fig


def score_map_figure(image: np.ndarray, detection: Detection, layout: Layout, title: str = "") -> Figure:
    """Every (anchor, stride) score map of one detection: anchors down, strides across."""
    canvas = canvas_image(detection, image)
    rows, cols = layout.anchors, len(layout.strides)
    fig = Figure(figsize=(3.2 * cols + 0.8, 3.3 * rows), dpi=90, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for (anchor, col), ax in np.ndenumerate(axes):
        stride = layout.strides[col]
        smap = score_map(detection, layout, stride, anchor)
        h, w = smap.scores.shape
        _canvas(ax, canvas, f"stride {stride} ({w}x{h}) · anchor {anchor} · max {smap.scores.max():.2f}")
        _heatmap(ax, smap, None)
        _faces(ax, detection)
    fig.colorbar(ScalarMappable(Normalize(0, 1), CMAP), ax=axes.ravel().tolist(), shrink=0.6, label="score")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes, for an ipywidgets.Image or a file; light compression redraws faster."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": 1})
    return buf.getvalue()
