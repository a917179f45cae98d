"""Threshold and decode on the GPU, then only the candidates come back: a count, then the rows.

One kernel reads every level's score rows of every image of a batch in the engine's output
buffers, decodes the rows at or over the threshold with the CPU path's float32 arithmetic and
appends them, tagged with their image, (atomic slots) to a preallocated table; one count for the
whole batch is copied back in the same stream, then one copy of that many rows. The host sorts
the few rows into the CPU path's order (image, level, row) and splits them by image, so each
image's NMS sees exactly what `helpers.decode.candidates` would give for it. NMS runs on the
host for a few candidates and as a GPU bitmask of suppressions for many.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from helpers.backend import DeviceTensor
from helpers.decode import candidates
from helpers.detections import Faces
from helpers.gpu.kernels import BLOCK, LEVEL_FIELDS, RECORD, kernel
from helpers.gpu.memory import device_array, pinned, to_host
from helpers.layout import Layout, image_outputs
from helpers.nms import nms

CAPACITY = 4096  # candidate rows kept on the GPU; past it the frame is decoded on the host
GPU_NMS_FROM = 512  # candidates from which the IoU tests run on the GPU (fewer: the host's pairs)
MAX_GRID_Y = 65535  # the suppress kernel's grid has one row of blocks per box


def level_table(tensors: Mapping[str, DeviceTensor], layout: Layout, size: tuple[int, int]) -> np.ndarray:
    """Per level: score, bbox, kps addresses, rows, grid width, stride, first global row."""
    width, height = size
    table = np.zeros((len(layout.strides), LEVEL_FIELDS), np.uint64)
    start = 0
    for i, stride in enumerate(layout.strides):
        rows = layout.rows(stride, width, height)
        kps = tensors[layout.name("kps", stride)].ptr if layout.landmarks else 0
        score, bbox = tensors[layout.name("score", stride)].ptr, tensors[layout.name("bbox", stride)].ptr
        table[i, :7] = (score, bbox, kps, rows, -(-width // stride), stride, start)
        start += rows
    return table


class GpuDecoder:
    """Preallocated candidate table, counter and their pinned host copies, on one stream (a CuPy
    stream object: the engine's); uploads go on it too, since it does not wait for others."""

    def __init__(self, stream: Any, capacity: int = CAPACITY) -> None:
        import cupy

        self.stream = stream
        self.capacity = capacity
        with stream:
            self._records = cupy.empty((capacity, RECORD), np.float32)
            self._count = cupy.zeros(1, np.uint32)
        self.host_count = pinned((1,), np.uint32)
        self._host_records = pinned((capacity, RECORD), np.float32)
        self._tables: dict[tuple, tuple[Any, int]] = {}

    def enqueue(
        self,
        tensors: Mapping[str, DeviceTensor],
        layout: Layout,
        size: tuple[int, int],
        threshold: float,
        images: int = 1,
    ) -> None:
        """Reset the count, decode the candidates of all `images` and copy the count back, all on
        the stream."""
        import cupy

        table, total = self._table(tensors, layout, size)
        stream = self.stream.ptr
        rt = cupy.cuda.runtime
        rt.memsetAsync(self._count.data.ptr, 0, self._count.nbytes, stream)
        args = (
            table,
            np.int32(len(layout.strides)),
            np.int32(total),
            np.int32(images),
            np.int32(layout.anchors),
            np.int32(layout.nchw),
            np.float32(threshold),
            self._records,
            np.uint32(self.capacity),
            self._count,
        )
        with self.stream:
            kernel("decode")((-(-(total * images) // BLOCK),), (BLOCK,), args)
        to_host(self._count.data.ptr, self.host_count, self.host_count.nbytes, stream)

    def _table(self, tensors: Mapping[str, DeviceTensor], layout: Layout, size: tuple[int, int]) -> tuple:
        # The tensors (names, addresses, shapes) determine the layout, so they key the table.
        key = (size, tuple(sorted((name, t.ptr, t.shape) for name, t in tensors.items())))
        if key not in self._tables:
            import cupy

            host = level_table(tensors, layout, size)
            with self.stream:  # ordered before the decode that reads it
                table = cupy.asarray(host)
            self._tables[key] = (table, int(sum(layout.rows(s, *size) for s in layout.strides)))
        return self._tables[key]

    def collect(
        self,
        tensors: Mapping[str, DeviceTensor],
        layout: Layout,
        size: tuple[int, int],
        threshold: float,
        images: int = 1,
    ) -> list[Faces]:
        """Wait for the count, bring back that many rows, order them as the CPU path does: each
        image's candidates.

        Past `capacity` candidates the outputs themselves are copied back and decoded on the
        host (a low threshold on a busy batch), so the answer is the same, only slower.
        """
        stream = self.stream
        stream.synchronize()
        n = int(self.host_count[0])
        if n > self.capacity:
            names = {name for per_stride in layout.outputs.values() for name in per_stride.values()}
            host = {name: device_array(tensors[name], self).get(stream=stream) for name in names}
            if not layout.holds_batch:  # (rows, C) outputs: one image, no batch axis to slice
                return [candidates(host, layout, size, threshold)]
            return [candidates(image_outputs(host, i), layout, size, threshold) for i in range(images)]
        if not n:
            return [Faces.empty(layout.landmarks) for _ in range(images)]
        to_host(self._records.data.ptr, self._host_records, n * RECORD * 4, stream.ptr)
        stream.synchronize()
        return faces_from_records(self._host_records[:n], layout, images)


def faces_from_records(records: np.ndarray, layout: Layout, images: int = 1) -> list[Faces]:
    """The decode kernel's rows (in whatever order the atomics gave) as each image's CPU-path
    candidates: image, then level, then row order."""
    rec = records[np.lexsort((records[:, 16], records[:, 15], records[:, 17]))]
    strides = np.asarray(layout.strides, np.int32)[rec[:, 15].astype(np.intp)]
    marks = rec[:, 5:15].reshape(-1, 5, 2) if layout.landmarks else None
    faces = Faces(rec[:, 1:5], rec[:, 0], marks, strides, rec[:, 16].astype(np.int64))
    bounds = np.searchsorted(rec[:, 17], np.arange(images + 1, dtype=np.float32))
    return [faces[bounds[i] : bounds[i + 1]] for i in range(images)]


def greedy_scan(mask: np.ndarray) -> list[int]:
    """Greedy NMS over a suppression bitmask (n, words) of uint64: row i bit j = i suppresses j.

    Python integers hold the removed set, so a step is a shift and, for a kept box, one OR.
    """
    removed, keep = 0, []
    for i in range(len(mask)):
        if not (removed >> i) & 1:
            keep.append(i)
            removed |= int.from_bytes(mask[i].astype("<u8").tobytes(), "little")
    return keep


def gpu_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, stream: Any) -> np.ndarray:
    """`helpers.nms.nms`, with the IoU tests of many boxes done on the GPU as a bitmask.

    The order (the CPU's argsort) and the greedy scan stay on the host, so the kept indices are
    the CPU path's exactly; the GPU computes each box's suppressions with the same arithmetic.
    """
    n = len(scores)
    if n < GPU_NMS_FROM or n > MAX_GRID_Y:
        return nms(boxes, scores, threshold)
    import cupy

    order = scores.argsort()[::-1]
    words = -(-n // 64)
    with stream:
        device = cupy.asarray(np.ascontiguousarray(boxes[order], np.float32))
        mask = cupy.empty((n, words), np.uint64)
        kernel("suppress")((-(-words // 64), n), (64,), (device, np.int32(n), np.float32(threshold), mask))
        rows = mask.get(stream=stream)
    return order[np.asarray(greedy_scan(rows), np.int64)]
