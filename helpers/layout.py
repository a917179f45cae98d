"""Which SCRFD output is score, bbox or landmarks for which stride, for one image or a batch.

Exports differ in output order, names, rank (N,C) / (1,N,C) / (1,A*C,H,W) and
even in the shapes they declare, and TensorRT may reorder I/O tensors. So the
layout is worked out from the shapes a real run produces, never from position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from helpers.errors import UserError

KINDS = ("score", "bbox", "kps")
_CHANNELS = {1: "score", 4: "bbox", 10: "kps"}
# Output count -> feature levels; 6/9 are the 3-stride exports, 10/15 the 5-stride ones.
_LEVELS = {6: 3, 9: 3, 10: 5, 15: 5}
_FIRST_STRIDE = 8


@dataclass(frozen=True)
class Layout:
    """The decoded meaning of an SCRFD model's outputs."""

    strides: tuple[int, ...]
    anchors: int
    landmarks: bool
    batched: bool
    nchw: bool
    dynamic_input: bool
    outputs: Mapping[str, Mapping[int, str]]  # kind -> stride -> output name

    def name(self, kind: str, stride: int) -> str:
        return self.outputs[kind][stride]

    def rows(self, stride: int, width: int, height: int) -> int:
        """Anchor rows a level has at this input size (conv arithmetic rounds up)."""
        return -(-height // stride) * -(-width // stride) * self.anchors

    @property
    def holds_batch(self) -> bool:
        """(B, N, C) and (B, A*C, H, W) outputs keep images apart; (N, C) rows hold one image only."""
        return self.batched or self.nchw

    def as_rows(self, array: np.ndarray) -> np.ndarray:
        """View one raw output as (rows, channels), whatever rank the export uses."""
        if array.ndim == 2:
            return array
        if array.ndim == 3:
            return array[0]
        # (1, A*C, h, w) -> (h, w, A*C) -> (h*w*A, C), the order the head flattens to.
        maps = array[0]
        return np.ascontiguousarray(maps.transpose(1, 2, 0)).reshape(-1, maps.shape[0] // self.anchors)

    def to_json(self) -> dict:
        return {
            "strides": list(self.strides),
            "anchors_per_location": self.anchors,
            "landmarks": self.landmarks,
            "batched": self.batched,
            "dynamic_input": self.dynamic_input,
            "outputs": {
                kind: ({str(s): n for s, n in self.outputs[kind].items()} if kind in self.outputs else None)
                for kind in KINDS
            },
        }


def image_outputs(outputs: Mapping[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
    """Image `index` of a batch run's (B, ...) outputs, as the batch-1 views a single run gives."""
    return {name: value[index : index + 1] for name, value in outputs.items()}


def _rows_channels(shape: tuple[int, ...], nchw: bool, anchors: int | None) -> tuple[int, int]:
    if nchw:
        a = anchors or 1
        return shape[2] * shape[3] * a, shape[1] // a
    return shape[-2], shape[-1]


def _nchw_anchors(shapes: list[tuple[int, ...]]) -> int:
    """Anchors per location of raw NCHW maps: the score maps carry A channels."""
    return min(s[1] for s in shapes)


def infer_layout(
    shapes: Mapping[str, tuple[int, ...]], width: int, height: int, dynamic_input: bool
) -> Layout:
    """Work out the layout from real output shapes at a known input size.

    Raises UserError naming what does not fit, so a non-SCRFD model fails with
    one readable line rather than an IndexError deep in decoding.
    """
    levels = _LEVELS.get(len(shapes))
    if levels is None:
        raise UserError(
            f"not an SCRFD model: it has {len(shapes)} outputs, SCRFD exports have 6, 9, 10 or 15 "
            "(score/bbox[/landmarks] per stride); check that this is a face-detector export"
        )
    ranks = {len(s) for s in shapes.values()}
    if len(ranks) != 1 or ranks.pop() not in (2, 3, 4):
        raise UserError(
            f"not an SCRFD model: output ranks {sorted(len(s) for s in shapes.values())} are not all "
            "(N,C), (1,N,C) or (1,A*C,H,W)"
        )
    rank = len(next(iter(shapes.values())))
    nchw = rank == 4
    if rank in (3, 4) and len({s[0] for s in shapes.values()}) != 1:
        raise UserError(
            f"not an SCRFD model layout this workbook reads: the outputs disagree on the batch size "
            f"({sorted({s[0] for s in shapes.values()})}); each output must hold every image of the batch"
        )
    anchors_hint = _nchw_anchors(list(shapes.values())) if nchw else None
    by_kind: dict[str, list[tuple[int, str]]] = {}
    for name, shape in shapes.items():
        rows, channels = _rows_channels(shape, nchw, anchors_hint)
        kind = _CHANNELS.get(channels)
        if kind is None:
            raise UserError(
                f"not an SCRFD model: output {name!r} has {channels} channels per anchor; "
                "SCRFD outputs have 1 (score), 4 (bbox) or 10 (landmarks)"
            )
        by_kind.setdefault(kind, []).append((rows, name))
    return _assemble(by_kind, levels, width, height, dynamic_input, rank, anchors_hint)


def _assemble(
    by_kind: dict[str, list[tuple[int, str]]],
    levels: int,
    width: int,
    height: int,
    dynamic_input: bool,
    rank: int,
    anchors_hint: int | None,
) -> Layout:
    landmarks = "kps" in by_kind
    expected = {"score", "bbox", "kps"} if landmarks else {"score", "bbox"}
    counts = {k: len(v) for k, v in by_kind.items()}
    if set(by_kind) != expected or any(c != levels for c in counts.values()):
        raise UserError(
            f"not an SCRFD model: outputs per kind {counts}, expected {levels} each of "
            f"{', '.join(sorted(expected))}"
        )
    strides = tuple(_FIRST_STRIDE << i for i in range(levels))
    first = max(rows for rows, _ in by_kind["score"])
    cells = -(-height // strides[0]) * -(-width // strides[0])
    anchors = anchors_hint or first // cells
    if anchors < 1 or anchors * cells != first:
        raise UserError(
            f"not an SCRFD model: {first} rows at the finest level do not match a "
            f"{width}x{height} input with stride {strides[0]}"
        )
    layout = Layout(strides, anchors, landmarks, rank == 3, rank == 4, dynamic_input, {})
    outputs: dict[str, dict[int, str]] = {}
    for kind, entries in by_kind.items():
        per_stride = {}
        for rows, name in entries:
            match = [s for s in strides if layout.rows(s, width, height) == rows]
            if len(match) != 1 or match[0] in per_stride:
                raise UserError(
                    f"not an SCRFD model: {kind} output {name!r} has {rows} rows, which fits no single "
                    f"stride of {list(strides)} at {width}x{height} with {anchors} anchors"
                )
            per_stride[match[0]] = name
        outputs[kind] = dict(sorted(per_stride.items()))
    return Layout(strides, anchors, landmarks, rank == 3, rank == 4, dynamic_input, outputs)
