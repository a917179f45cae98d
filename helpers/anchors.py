"""Anchor points of each feature level, built once per (height, width, stride).

SCRFD measures boxes from each cell's top-left corner (x * s, y * s), not its centre; `centres`
keeps its older name (notebook 06).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def centres(height: int, width: int, stride: int, anchors: int) -> np.ndarray:
    """(rows, 2) x, y of every anchor, row-major over the map, anchors innermost.

    Read-only so a caller cannot corrupt the cache.
    """
    ys, xs = np.mgrid[:height, :width]
    grid = np.stack([xs, ys], axis=-1).astype(np.float32).reshape(-1, 2) * stride
    out = np.repeat(grid, anchors, axis=0) if anchors > 1 else grid
    out.flags.writeable = False
    return out
