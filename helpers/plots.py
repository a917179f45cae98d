"""Matplotlib figures the notebooks show; they read detections and never run a model."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from helpers.annotate import annotate
from helpers.detections import Faces
from helpers.detector import Detection


def show(image: np.ndarray, faces: Faces | None = None, title: str = "", ax: Axes | None = None) -> Axes:
    """A BGR image (with faces drawn, if given) on an axis without ticks."""
    ax = ax or plt.subplots(figsize=(6, 6))[1]
    drawn = annotate(image, faces) if faces is not None else image
    ax.imshow(drawn[:, :, ::-1])
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    return ax


def _boxes(ax: Axes, boxes: np.ndarray, colour: str, width: float = 1.0, style: str = "-") -> None:
    for x1, y1, x2, y2 in boxes:
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=width, ls=style))


def canvas_image(det: Detection, image: np.ndarray) -> np.ndarray:
    """The letterboxed canvas as the network saw it (RGB), for drawing candidates on."""
    import cv2

    box = det.letterbox
    canvas = np.zeros((box.height, box.width, 3), np.uint8)
    canvas[: box.new_height, : box.new_width] = cv2.resize(image, (box.new_width, box.new_height))
    return canvas[:, :, ::-1]


def nms_steps(det: Detection, image: np.ndarray, steps: int = 3, threshold: float = 0.4) -> Figure:
    """Candidates, then greedy NMS one kept face at a time: kept (green), current (red),
    what it suppresses (dashed magenta), still undecided (yellow)."""
    from helpers.nms import trace

    cands = det.candidates
    history = trace(cands.boxes, cands.scores, threshold)
    fig, axes = plt.subplots(1, steps + 2, figsize=(3.2 * (steps + 2), 3.4))
    canvas = canvas_image(det, image)
    for ax in axes:
        ax.imshow(canvas)
        ax.set_axis_off()
    _boxes(axes[0], cands.boxes, "yellow", 0.6)
    axes[0].set_title(f"{len(cands)} candidates over the threshold", fontsize=8)
    decided: list[int] = []
    for k, ax in enumerate(axes[1:-1]):
        if k >= len(history):
            break
        kept, removed = history[k]
        undecided = np.setdiff1d(np.arange(len(cands)), [*decided, kept, *removed])
        _boxes(ax, cands.boxes[undecided], "yellow", 0.5)
        _boxes(ax, cands.boxes[[i for i, _ in history[:k]]], "lime", 1.2)
        _boxes(ax, cands.boxes[removed], "magenta", 1.0, "--")
        _boxes(ax, cands.boxes[[kept]], "red", 2.0)
        ax.set_title(f"step {k + 1}: keep {cands.scores[kept]:.2f}, suppress {len(removed)}", fontsize=8)
        decided += [kept, *removed.tolist()]
    _boxes(axes[-1], cands.boxes[[i for i, _ in history]], "lime", 1.5)
    axes[-1].set_title(f"after NMS: {len(history)} faces (from {len(cands)})", fontsize=8)
    fig.tight_layout()
    return fig


def anchor_grid(det: Detection, stride: int, image: np.ndarray) -> Figure:
    """Anchor centres of one stride over the canvas, with the candidates they produced."""
    from helpers.anchors import centres

    box = det.letterbox
    pts = centres(-(-box.height // stride), -(-box.width // stride), stride, 1)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(canvas_image(det, image))
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c="cyan")
    mine = det.candidates[det.candidates.stride == stride]
    _boxes(ax, mine.boxes, "yellow", 0.8)
    ax.set_title(f"stride {stride}: {len(pts)} anchor centres, {len(mine)} over the threshold", fontsize=9)
    ax.set_axis_off()
    return fig


def timing_bars(stages: dict[str, float], title: str) -> Figure:
    """Horizontal bars of milliseconds per stage."""
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(stages)))
    ax.barh(list(stages), list(stages.values()), color="#4c72b0")
    for i, v in enumerate(stages.values()):
        ax.text(v, i, f" {v:.2f} ms", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
