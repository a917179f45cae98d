"""Matplotlib figures the notebooks show; they read detections and never run a model."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from helpers.annotate import annotate
from helpers.detections import Faces
from helpers.detector import Detection
from helpers.layout import Layout
from helpers.scoremap import cell_of, grid

FONT = 10  # points: 14 px at matplotlib's 100 dpi, readable where JupyterLab shows the figure 1:1


def show(image: np.ndarray, faces: Faces | None = None, title: str = "", ax: Axes | None = None) -> Axes:
    """A BGR image (with faces drawn, if given) on an axis without ticks."""
    ax = ax or plt.subplots(figsize=(6, 6))[1]
    drawn = annotate(image, faces) if faces is not None else image
    ax.imshow(drawn[:, :, ::-1])
    ax.set_title(title, fontsize=FONT)
    ax.set_axis_off()
    return ax


def _boxes(
    ax: Axes, boxes: np.ndarray, colour: str, width: float = 1.0, style: str = "-", fill: float = 0.0
) -> None:
    """x1, y1, x2, y2 boxes as rectangles; `fill` is the opacity of a tint inside them."""
    face = to_rgba(colour, fill) if fill else "none"
    for x1, y1, x2, y2 in boxes:
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fc=face, ec=colour, lw=width, ls=style))


def canvas_image(det: Detection, image: np.ndarray) -> np.ndarray:
    """The letterboxed canvas as the network saw it (RGB), for drawing candidates on."""
    import cv2

    box = det.letterbox
    canvas = np.zeros((box.height, box.width, 3), np.uint8)
    canvas[: box.new_height, : box.new_width] = cv2.resize(image, (box.new_width, box.new_height))
    return canvas[:, :, ::-1]


def _crop(ax: Axes, box: np.ndarray, pad: float) -> None:
    """Zoom `ax` on a square around `box` (x1, y1, x2, y2), `pad` pixels beyond its longer side;
    the square may reach past the canvas, so a box at the edge stays centred and whole."""
    x1, y1, x2, y2 = box
    half = max(x2 - x1, y2 - y1) / 2 + pad
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    ax.set_xlim(cx - half, cx + half)
    ax.set_ylim(cy + half, cy - half)


def _image_area(ax: Axes, det: Detection) -> None:
    """Show the resized image, not the letterbox padding below or right of it."""
    ax.set_xlim(0, det.letterbox.new_width)
    ax.set_ylim(det.letterbox.new_height, 0)


NMS_LEGEND = (
    ("candidate not decided yet", "yellow", "-"),
    ("kept in an earlier round", "lime", "-"),
    ("kept in this round (tinted)", "red", "-"),
    ("suppressed by it (IoU over the threshold)", "magenta", "-"),
)


def telling_rounds(boxes: np.ndarray, history: list[tuple[int, np.ndarray]], steps: int) -> list[int]:
    """The `steps` NMS rounds (in order) whose suppressed boxes stand out most from the kept one.

    Suppressed boxes of the first rounds often coincide with the kept box to a pixel, so those
    rounds show nothing; rounds that suppress something, least overlapping first, show it.
    """
    from helpers.nms import iou_with

    def clarity(k: int) -> tuple[bool, float]:
        kept, removed = history[k]
        return (not len(removed), float(iou_with(boxes, kept, removed).min()) if len(removed) else 1.0)

    return sorted(sorted(range(len(history)), key=clarity)[:steps])


def nms_steps(det: Detection, image: np.ndarray, steps: int = 3, threshold: float = 0.4) -> Figure:
    """Greedy NMS as a reader can follow it: every candidate and the result over the image (top),
    then `steps` of its rounds where the suppressed boxes are visible, each zoomed on the face it
    keeps (bottom)."""
    from matplotlib.lines import Line2D

    from helpers.nms import iou_with, trace

    cands = det.candidates
    history = trace(cands.boxes, cands.scores, threshold)
    canvas = canvas_image(det, image)
    fig = plt.figure(figsize=(10, 8.8), layout="constrained")
    top, bottom = np.ravel(fig.subfigures(2, 1, squeeze=False, height_ratios=[4.1, 4.7]))
    before, after = top.subplots(1, 2)
    rounds = bottom.subplots(1, steps, squeeze=False)[0]
    for ax in (before, after, *rounds):
        ax.imshow(canvas)
        ax.set_xticks([])
        ax.set_yticks([])
    _boxes(before, cands.boxes, "yellow", 0.8)
    before.set_title(f"{len(cands)} candidates over the score threshold", fontsize=FONT)
    _boxes(after, cands.boxes[[i for i, _ in history]], "lime", 1.2)
    after.set_title(f"after NMS: {len(history)} faces kept", fontsize=FONT)
    for ax in (before, after):
        _image_area(ax, det)
    shown = telling_rounds(cands.boxes, history, steps)
    for ax in rounds[len(shown) :]:
        ax.set_axis_off()
    for k, ax in zip(shown, rounds, strict=False):
        kept, removed = history[k]
        decided = [j for i, gone in history[:k] for j in (i, *gone.tolist())]
        undecided = np.setdiff1d(np.arange(len(cands)), [*decided, kept, *removed])
        _boxes(ax, cands.boxes[undecided], "yellow", 0.8)
        _boxes(ax, cands.boxes[[i for i, _ in history[:k]]], "lime", 1.5)
        _boxes(ax, cands.boxes[[kept]], "red", 1.6, fill=0.2)
        _boxes(ax, cands.boxes[removed], "magenta", 0.9)  # thin, on top: they lie within pixels of it
        ious = iou_with(cands.boxes, kept, removed)
        span = f"IoU {ious.min():.2f} to {ious.max():.2f}" if len(ious) else "no overlap over the threshold"
        ax.set_title(
            f"round {k + 1} of {len(history)}: keep score {cands.scores[kept]:.2f}\n"
            f"suppress {len(removed)} ({span})",
            fontsize=FONT,
        )
        size = cands.boxes[kept, 2:] - cands.boxes[kept, :2]
        _crop(ax, cands.boxes[kept], float(size.max()) * 0.08)  # tight: a pixel's offset shows
    bottom.suptitle(
        f"{len(shown)} of the {len(history)} rounds, those whose suppressed boxes stand out most, "
        "zoomed on the face each keeps",
        fontsize=FONT,
    )
    handles = [Line2D([], [], color=c, ls=ls, lw=2, label=label) for label, c, ls in NMS_LEGEND]
    bottom.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=FONT - 1, frameon=False)
    return fig


def anchor_grid(det: Detection, layout: Layout, stride: int, image: np.ndarray) -> Figure:
    """Anchor points of one stride over the canvas (left) and zoomed on that stride's best
    candidate (right): each cell's anchor point is its top-left corner (x·s, y·s), and the
    face's box is measured from it (left, top, right, bottom distances)."""
    box = det.letterbox
    h, w = grid(box, stride)
    ys, xs = np.mgrid[:h, :w] * stride
    canvas = canvas_image(det, image)
    fig, (whole, zoom) = plt.subplots(1, 2, figsize=(10, 5.6), layout="constrained")
    for ax in (whole, zoom):
        ax.imshow(canvas)
        ax.set_xticks([])
        ax.set_yticks([])
    whole.scatter(xs, ys, s=2, c="cyan")
    whole.set_xlim(-0.5, canvas.shape[1] - 0.5)
    whole.set_ylim(canvas.shape[0] - 0.5, -0.5)
    mine = det.candidates[det.candidates.stride == stride]
    _boxes(whole, mine.boxes, "yellow", 0.8)
    whole.set_title(
        f"stride {stride}: {h * w} anchor points (cyan),\n{len(mine)} candidates over the threshold (yellow)",
        fontsize=FONT,
    )
    if not len(mine):
        zoom.set_axis_off()
        return fig
    best = int(np.argmax(mine.scores))
    where = cell_of(layout, box, stride, int(mine.row[best]))
    px, py = where.x * stride, where.y * stride
    x1, y1, x2, y2 = mine.boxes[best]
    for g in range(0, w * stride + 1, stride):
        zoom.axvline(g, color="white", lw=0.7, alpha=0.7)
    for g in range(0, h * stride + 1, stride):
        zoom.axhline(g, color="white", lw=0.7, alpha=0.7)
    zoom.scatter(xs, ys, s=22, c="cyan", zorder=3)
    zoom.add_patch(Rectangle((px, py), stride, stride, fill=False, ec="red", lw=2.5, zorder=4))
    zoom.plot([px], [py], "o", color="red", ms=9, zorder=5)
    _boxes(zoom, mine.boxes[[best]], "yellow", 2.0)
    off = 0.3 * stride  # labels beside their arrows, not on them
    arrows = (((x1, py), "l", px - x1, (0, -off)), ((x2, py), "r", x2 - px, (0, -off)),
              ((px, y1), "t", py - y1, (off, 0)), ((px, y2), "b", y2 - py, (off, 0)))  # fmt: skip
    for end, name, value, (dx, dy) in arrows:
        zoom.annotate("", end, (px, py), arrowprops={"arrowstyle": "->", "color": "red", "lw": 1.8})
        zoom.text(
            (px + end[0]) / 2 + dx,
            (py + end[1]) / 2 + dy,
            f"{name} = {value / stride:.2f}·{stride}",
            fontsize=FONT - 1,
            ha="center" if dx == 0 else "left",
            va="bottom" if dx == 0 else "center",
            bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 1.5},
        )
    _crop(zoom, mine.boxes[best], 1.5 * stride)
    zoom.set_title(
        f"cell ({where.x}, {where.y}) (red square) and its anchor point ({px}, {py}),\n"
        f"its top-left corner; the box (score {mine.scores[best]:.2f}) is measured from it",
        fontsize=FONT,
    )
    return fig


def timing_bars(stages: dict[str, float], title: str) -> Figure:
    """Horizontal bars of milliseconds per stage."""
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.45 * len(stages)), layout="constrained")
    ax.barh(list(stages), list(stages.values()), color="#4c72b0")
    for i, v in enumerate(stages.values()):
        ax.text(v, i, f" {v:.2f} ms", va="center", fontsize=FONT - 1)
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds", fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.set_title(title, fontsize=FONT)
    ax.margins(x=0.15)
    return fig


def op_histogram(ops: dict[str, dict[str, int]], top: int = 8) -> Figure:
    """The `top` most common ONNX operators of each model (name -> op counts); Transpose and
    Reshape, which may become TensorRT Shuffle/reformat layers (copies), in red."""
    fig, axes = plt.subplots(1, len(ops), figsize=(3.4 * len(ops), 3.4), squeeze=False, layout="constrained")
    for ax, (name, counts) in zip(axes[0], ops.items(), strict=True):
        shown = dict(list(counts.items())[:top])
        colours = ["tab:red" if k in ("Transpose", "Reshape") else "tab:blue" for k in shown]
        ax.barh(list(shown), list(shown.values()), color=colours)
        ax.invert_yaxis()
        ax.set_title(f"{name}: {sum(counts.values())} nodes", fontsize=FONT)
        ax.set_xlabel("nodes of this type", fontsize=FONT)
        ax.tick_params(labelsize=FONT - 1)
    fig.suptitle(
        "most common operators; red: Transpose and Reshape (may become Shuffle/reformat layers in TensorRT)",
        fontsize=FONT,
    )
    return fig
