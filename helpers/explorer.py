"""The interactive score-map explorer: ipywidgets wired to helpers.scoremap and helpers.scoreplot.

Only a new image or input size runs the model; the raw outputs are cached per
(image, size), so the threshold and NMS sliders only re-decode, which takes
milliseconds. Every widget has a stable description and a `scrfd-*` CSS class
for the browser test.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import ipywidgets as w
import numpy as np
from numpy.typing import ArrayLike

from helpers.detector import Detection, Detector
from helpers.images import read_image
from helpers.plots import canvas_image
from helpers.samples import all_samples
from helpers.scoremap import Cell, cell_details, face_cell, merge_sizes, redecode, top_cells
from helpers.scoreplot import Panel, explorer_figure, png

DYNAMIC_SIZES: dict[str, tuple[tuple[int, int], ...]] = {
    "640": ((640, 640),),
    "320": ((320, 320),),
    "128": ((128, 128),),
    "two sizes 640+128": ((640, 640), (128, 128)),
}
CELLS_LISTED = 25


def _fmt(values: ArrayLike) -> str:
    return ", ".join(f"{v:.2f}" for v in np.ravel(values))


def _verdict(cell: Cell) -> str:
    if not cell.passed:
        return "below the score threshold: never decoded"
    if cell.kept is not None:
        return f"kept by NMS as face #{cell.kept}"
    return f"suppressed by face #{cell.suppressed_by} (IoU {cell.iou:.2f})"


def cell_table(title: str, cell: Cell) -> str:
    """The picked cell as a small HTML table: raw tensor values, decoded face, NMS verdict."""
    where = cell.where
    rows = [
        ("cell", f"{title} · stride {where.stride} · anchor {where.anchor} · x {where.x}, y {where.y}"),
        ("output row", str(cell.row)),
        ("score", f"{cell.score:.4f}"),
        ("anchor point", _fmt(cell.centre) + (" · in the padding" if cell.padding else "")),
        ("raw bbox (l, t, r, b)", _fmt(cell.distances)),
        ("raw kps", "none" if cell.kps is None else _fmt(cell.kps)),
        ("box on the canvas", _fmt(cell.faces.boxes)),
        ("box in the image", _fmt(cell.original.boxes)),
        (
            "landmarks in the image",
            "none" if cell.original.landmarks is None else _fmt(cell.original.landmarks),
        ),
        ("NMS", _verdict(cell)),
    ]
    body = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    caption = "<caption>raw values in strides, as in the tensor; positions in pixels</caption>"
    return f"<table class='scrfd-cell-details'>{caption}{body}</table>"


def _styled(widget: w.Widget, css: str) -> w.Widget:
    widget.add_class(css)
    return widget


class Explorer:
    """Per-stride score maps of one detector, with sliders; display it as a notebook cell's result."""

    def __init__(self, detector: Detector, images: Sequence[str | Path] = ()):
        self.detector = detector
        self.layout = detector.layout
        paths = [*all_samples(), *(Path(p) for p in images)]
        self._paths = {p.name: p for p in paths}
        self._pixels: dict[str, np.ndarray] = {}
        self._runs: dict[tuple[str, tuple[int, int]], Detection] = {}
        self._quiet = False
        self._panels: list[Panel] = []
        fixed = detector.fixed_size
        sizes = {f"{fixed[0]}x{fixed[1]} (static model)": (fixed,)} if fixed else DYNAMIC_SIZES
        style = {"description_width": "7em"}
        buttons = {**style, "button_width": "4em"}
        self.image = _styled(
            w.Dropdown(options=list(self._paths), description="Image", style=style), "scrfd-image"
        )
        self.size = _styled(
            w.Dropdown(options=list(sizes.items()), description="Input size", style=style), "scrfd-size"
        )
        self.stride = _styled(
            w.ToggleButtons(options=self.layout.strides, description="Stride", style=buttons), "scrfd-stride"
        )
        self.anchor = _styled(
            w.ToggleButtons(options=list(range(self.layout.anchors)), description="Anchor", style=buttons),
            "scrfd-anchor",
        )
        slider = {"step": 0.01, "continuous_update": False, "readout_format": ".2f", "style": style}
        self.threshold = _styled(
            w.FloatSlider(
                value=detector.score_threshold, min=0.02, max=0.98, description="Score ≥", **slider
            ),
            "scrfd-threshold",
        )
        self.nms = _styled(
            w.FloatSlider(value=detector.nms_threshold, min=0.05, max=0.95, description="NMS IoU", **slider),
            "scrfd-nms",
        )
        self.cell = _styled(
            w.Dropdown(description="Cell", style=style, layout={"width": "100%"}), "scrfd-cell"
        )
        self.figure = _styled(
            w.Image(format="png", layout={"flex": "0 0 auto", "align_self": "flex-start"}), "scrfd-figure"
        )
        self.details = _styled(w.HTML(), "scrfd-details")
        self.status = _styled(w.HTML(), "scrfd-status")
        controls = [self.image, self.size, self.stride, self.anchor, self.threshold, self.nms, self.cell]
        left = w.VBox([*controls, self.status, self.details], layout={"width": "38em", "flex": "0 0 auto"})
        self.widget = _styled(w.HBox([left, self.figure], layout={"flex_flow": "row wrap"}), "scrfd-explorer")
        self._start_at_best_face()
        for control in (self.image, self.size, self.stride, self.anchor, self.threshold, self.nms):
            control.observe(self._refresh, names="value")
        self.cell.observe(self._draw, names="value")
        self._refresh()

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)

    def _start_at_best_face(self) -> None:
        """Open on the map that produced the best face, so the first view shows a peak."""
        first = self._run(self.image.value, self.size.value[0])
        if len(first.faces):
            where = face_cell(first, self.layout, 0)
            self.stride.value, self.anchor.value = where.stride, where.anchor

    def _run(self, name: str, size: tuple[int, int]) -> Detection:
        """The model's outputs for (image, size), computed once."""
        if name not in self._pixels:
            self._pixels[name] = read_image(self._paths[name])
        key = (name, size)
        if key not in self._runs:
            self._runs[key] = self.detector.run(self._pixels[name], size)
        return self._runs[key]

    def panels(self) -> list[Panel]:
        """Each selected input size's canvas and detection, at the sliders' thresholds."""
        name = self.image.value
        out = []
        for size in self.size.value:
            det = redecode(self._run(name, size), self.layout, self.threshold.value, self.nms.value)
            out.append(Panel(f"{size[0]}x{size[1]}", canvas_image(det, self._pixels[name]), det))
        return out

    @contextmanager
    def _silenced(self) -> Iterator[None]:
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def _refresh(self, change: dict | None = None) -> None:
        """List the map's best cells of every size, best first, then redraw.

        A threshold move keeps the picked cell, so its verdict can be watched changing;
        anything else starts again at the best cell.
        """
        self._panels = self.panels()
        scored = []
        for i, panel in enumerate(self._panels):
            det = panel.detection
            for where in top_cells(det, self.layout, self.stride.value, self.anchor.value, CELLS_LISTED):
                cell = cell_details(det, self.layout, where, self.nms.value)
                state = "kept" if cell.kept is not None else "suppressed" if cell.passed else "below"
                label = f"{panel.title} · ({where.x}, {where.y}) · score {cell.score:.3f} · {state}"
                scored.append((-cell.score, label, (i, where)))
        options = [(label, value) for _, label, value in sorted(scored, key=lambda t: t[0])]
        keep = change is not None and change["owner"] in (self.threshold, self.nms)
        previous = self.cell.value
        with self._silenced():
            self.cell.options = options
            self.cell.value = previous if keep and previous in [v for _, v in options] else options[0][1]
        self._draw()

    def _draw(self, _change: object = None) -> None:
        if self._quiet:
            return
        panel_index, where = self.cell.value
        panel = self._panels[panel_index]
        cell = cell_details(panel.detection, self.layout, where, self.nms.value)
        fig = explorer_figure(
            self._panels,
            self.layout,
            self.stride.value,
            self.anchor.value,
            self.threshold.value,
            (panel_index, cell),
        )
        self.figure.value = png(fig)
        self.figure.width = str(round(fig.get_figwidth() * fig.dpi))  # native size: sharp, not stretched
        self.details.value = cell_table(panel.title, cell)
        self.status.value = self._summary()

    def _summary(self) -> str:
        counts = [
            f"{p.title}: {len(p.detection.faces)} kept of {len(p.detection.candidates)}" for p in self._panels
        ]
        if len(self._panels) > 1:
            merged = merge_sizes([p.detection for p in self._panels], self.nms.value)
            counts.append(f"merged across sizes: {len(merged)} kept")
        return "<b>Faces</b> " + " · ".join(counts)
