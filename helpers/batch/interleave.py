"""What a naively patched batch axis does to a stock SCRFD export: every image's rows interleaved.

Each head ends in Transpose(perm=[2, 3, 0, 1]) then Reshape(-1, C), so with the input's batch axis
made dynamic and nothing else changed, the rows come out ordered (cell, image, anchor). This runs
the stock export on each image alone and the naive one on the batch, and says what it found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.batch.batchify import load, naive_batch

CPU = ["CPUExecutionProvider"]


@dataclass(frozen=True)
class Interleaving:
    """One output of a naive batch run against each image's own run of the stock export."""

    images: int
    rows: int  # of one image's own run
    batch_rows: int  # of the naive batch run
    first_rows_are_image_0: bool  # what a decoder taking the first `rows` for image 0 assumes
    every_nth_group: tuple[bool, ...]  # image i's rows are the i-th of every `images` anchor groups
    anchors: int
    refused: str = ""  # why the naive model did not run at this batch ("" when it ran)

    def __str__(self) -> str:
        if self.refused:
            return f"the naively patched model does not run at batch {self.images}: {self.refused}"
        lines = [
            f"{self.batch_rows} rows for {self.images} images; image 0's first {self.rows} rows equal "
            f"its own run: {self.first_rows_are_image_0}"
        ]
        lines += [
            f"image {i}: its own rows are every {_nth(self.images)} group of {self.anchors}: {same}"
            for i, same in enumerate(self.every_nth_group)
        ]
        return "\n".join(lines)


def _nth(n: int) -> str:
    return {2: "second", 3: "third", 4: "fourth"}.get(n, f"{n}th")


def interleaving(model: Path, blob: np.ndarray, output: str, anchors: int) -> Interleaving:
    """`output` of the naive batch run of `blob` (N, 3, H, W) against each image's own run."""
    import onnxruntime as ort

    stock = ort.InferenceSession(str(model), providers=CPU)
    feed = stock.get_inputs()[0].name
    own = [stock.run([output], {feed: x[None]})[0].reshape(-1) for x in blob]
    naive = ort.InferenceSession(naive_batch(load(model)).SerializeToString(), providers=CPU)
    count, rows = len(blob), len(own[0])
    try:
        mixed = naive.run([output], {feed: blob})[0].reshape(-1)
    except Exception as exc:  # some exports do not even run: a Resize to constant batch-1 sizes
        return Interleaving(count, rows, 0, False, (), anchors, str(exc).splitlines()[0][:160])
    cells = mixed.reshape(-1, count, anchors)  # (cell, image, anchor)
    every = tuple(bool(np.array_equal(cells[:, i].reshape(-1), own[i])) for i in range(count))
    return Interleaving(count, rows, len(mixed), bool(np.array_equal(mixed[:rows], own[0])), every, anchors)
