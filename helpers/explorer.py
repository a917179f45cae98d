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
from helpers.scoremap import (
    Cell,
    best_face_cell,
    best_face_map,
    cell_details,
    merge_sizes,
    redecode,
    top_cells,
)
from helpers.scoreplot import Panel, explorer_figure, png

DYNAMIC_SIZES: dict[str, tuple[tuple[int, int], ...]] = {
    "640": ((640, 640),),
    "320": ((320, 320),),
    "128": ((128, 128),),
    "two sizes 640+128": ((640, 640), (128, 128)),
}
CELLS_LISTED = 25
CONTROLS_WIDTH = "25em"
FIGURE_MIN_PX = 420


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
        ("anchor point", _fmt(cell.anchor_point) + (" · in the padding" if cell.padding else "")),
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
    note = "raw values in strides, as in the tensor; positions in pixels"
    caption = f"<caption style='text-align:left'>{note}</caption>"
    return f"<table class='scrfd-cell-details'>{caption}{body}</table>"


def _styled(widget: w.Widget, css: str) -> w.Widget:
    widget.add_class(css)
    return widget


class Explorer:
    """Per-stride score maps of one detector, with sliders; display it as a notebook cell's result.

    Controls sit in a narrow column beside the figure, the picked cell's table below both, so
    a slider and the picture it changes are on screen together. Where the two do not fit in
    one row (a narrow window), the figure moves under the controls and shrinks to the width.
    """

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
        style = {"description_width": "5.5em"}
        buttons = {**style, "button_width": "3.6em"}
        full = {"width": "100%"}
        self.image = _styled(
            w.Dropdown(options=list(self._paths), description="Image", style=style, layout=full),
            "scrfd-image",
        )
        self.size = _styled(
            w.Dropdown(options=list(sizes.items()), description="Input size", style=style, layout=full),
            "scrfd-size",
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
                value=detector.score_threshold,
                min=0.02,
                max=0.98,
                description="Score ≥",
                layout=full,
                **slider,
            ),
            "scrfd-threshold",
        )
        self.nms = _styled(
            w.FloatSlider(
                value=detector.nms_threshold, min=0.05, max=0.95, description="NMS IoU", layout=full, **slider
            ),
            "scrfd-nms",
        )
        self.cell = _styled(w.Dropdown(description="Cell", style=style, layout=full), "scrfd-cell")
        # Grows to its native width (set per draw), shrinks with the window, wraps under the
        # controls only when less than FIGURE_MIN_PX is left beside them.
        self.figure = _styled(
            w.Image(
                format="png", layout={"flex": f"1 1 {FIGURE_MIN_PX}px", "min_width": "0", "height": "auto"}
            ),
            "scrfd-figure",
        )
        self.details = _styled(w.HTML(), "scrfd-details")
        self.status = _styled(w.HTML(), "scrfd-status")
        controls = [self.image, self.size, self.stride, self.anchor, self.threshold, self.nms, self.cell]
        left = _styled(
            w.VBox([*controls, self.status], layout={"width": CONTROLS_WIDTH, "flex": "0 0 auto"}),
            "scrfd-controls",
        )
        row = w.HBox([left, self.figure], layout={"flex_flow": "row wrap", "align_items": "flex-start"})
        self.widget = _styled(w.VBox([row, self.details]), "scrfd-explorer")
        for control in (self.image, self.size, self.stride, self.anchor, self.threshold, self.nms):
            control.observe(self._refresh, names="value")
        self.cell.observe(self._draw, names="value")
        self._refresh()

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)

    def _best_panel(self) -> int:
        """The panel whose best kept face scores highest (the first panel when none kept a face)."""
        best = [float(p.detection.faces.scores[0]) if len(p.detection.faces) else -1.0 for p in self._panels]
        return int(np.argmax(best))

    def _show_best_face_map(self) -> None:
        """Decode the new image or size, and switch to the map that produced its best face, so the
        view opens on a peak."""
        self._panels = self.panels()
        found = best_face_map(self._panels[self._best_panel()].detection, self.layout)
        if found is not None:
            with self._silenced():
                self.stride.value, self.anchor.value = found

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

    def _label(self, panel: int, cell: Cell) -> str:
        state = "kept" if cell.kept is not None else "suppressed" if cell.passed else "below"
        size = f"{self._panels[panel].title} · " if len(self._panels) > 1 else ""
        return f"{size}({cell.where.x}, {cell.where.y}) · {cell.score:.3f} · {state}"

    def _refresh(self, change: dict | None = None) -> None:
        """List the map's best cells of every size, best first, then redraw.

        A new image or size (and the first view) switches to the best face's map. A threshold
        move keeps the picked cell, so its verdict can be watched changing; anything else picks
        the map's cell on the best face (helpers.scoremap.best_face_cell).
        """
        if self._quiet:
            return
        owner = change["owner"] if change else None
        if owner in (None, self.image, self.size):
            self._show_best_face_map()
        elif owner in (self.threshold, self.nms):
            self._panels = self.panels()
        stride, anchor, nms = self.stride.value, self.anchor.value, self.nms.value
        cells = {
            (i, where): cell_details(panel.detection, self.layout, where, nms)
            for i, panel in enumerate(self._panels)
            for where in top_cells(panel.detection, self.layout, stride, anchor, CELLS_LISTED)
        }
        best = self._best_panel()
        previous = self.cell.value
        if owner in (self.threshold, self.nms) and previous in cells:
            picked = previous
        else:
            picked = (best, best_face_cell(self._panels[best].detection, self.layout, stride, anchor))
        if picked not in cells:
            cells[picked] = cell_details(self._panels[picked[0]].detection, self.layout, picked[1], nms)
        values = sorted(cells, key=lambda v: -cells[v].score)
        with self._silenced():
            self.cell.options = [(self._label(v[0], cells[v]), v) for v in values]
            self.cell.value = picked
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
        native = round(fig.get_figwidth() * fig.dpi)
        self.figure.width = str(native)
        self.figure.layout.max_width = f"{native}px"  # never stretched past its pixels: stays sharp
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
