"""The one interface every inference engine sits behind.

A backend takes named inputs and returns named outputs, as Polygraphy's
runners do; detection, comparison and benchmarks never care which engine ran.
Outputs are keyed by name because engines may reorder them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    """A declared input or output: dims are ints, or strings for dynamic axes."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


class Backend(Protocol):
    """Runs a model: named inputs in, named outputs out."""

    name: str

    @property
    def inputs(self) -> list[TensorInfo]: ...

    @property
    def outputs(self) -> list[TensorInfo]: ...

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def static_size(info: TensorInfo) -> tuple[int, int] | None:
    """(width, height) of an NCHW image input whose spatial dims are fixed."""
    if len(info.shape) != 4:
        return None
    h, w = info.shape[2], info.shape[3]
    return (w, h) if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0 else None
