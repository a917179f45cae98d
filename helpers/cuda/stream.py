"""A created CUDA stream, CUDA-event timing that is actually read, and latency statistics.

TensorRT wants a created stream (the legacy default stream makes it add synchronisations).
Timing must come from events read after the stream finished: InsightFace-REST records
events and never reads them, and wall-clock time around an async call measures the enqueue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from helpers.cuda.context import CudaContext, pycuda_driver, within
from helpers.errors import UserError

NON_BLOCKING = 0x1  # CU_STREAM_NON_BLOCKING: no implicit synchronisation with the legacy stream


class Stream:
    """A non-blocking pycuda stream made in `ctx` (or the current context); `.handle` goes to
    TensorRT.

    Non-blocking because a blocking stream that captures a CUDA graph makes the legacy default
    stream unusable for every other thread (`cudaErrorStreamCaptureImplicit`, measured on an
    H200). The price: nothing on the default stream is ordered before this stream's work, so
    every upload for the engine is enqueued on this stream.
    """

    def __init__(self, ctx: CudaContext | None = None) -> None:
        self.ctx = ctx
        with within(ctx):
            self.raw: Any = pycuda_driver().Stream(flags=NON_BLOCKING)

    @property
    def handle(self) -> int:
        return int(self.raw.handle)

    def synchronize(self) -> None:
        """Wait until everything enqueued on the stream has run."""
        self.raw.synchronize()

    def is_done(self) -> bool:
        return bool(self.raw.is_done())

    def close(self) -> None:
        """Destroy the stream now, inside its context (idempotent)."""
        with within(self.ctx):
            self.raw = None


def as_pycuda(stream: Stream | Any | None) -> Any:
    """The pycuda stream behind a `Stream` (a raw pycuda stream or None passes through)."""
    return stream.raw if isinstance(stream, Stream) else stream


class EventTimer:
    """Milliseconds between named CUDA events recorded on one stream (None: default stream).

    `mark(name)` after each enqueued step; after the stream finished, `read()` gives the time
    from each mark to the next and the total. Events are made once and reused per iteration.
    """

    def __init__(self, stream: Stream | Any | None = None) -> None:
        self._stream = as_pycuda(stream)
        self._events: dict[str, Any] = {}

    def mark(self, name: str) -> None:
        """Record the event `name` on the stream (created in the current context first time)."""
        if name not in self._events:
            self._events[name] = pycuda_driver().Event()
        self._events[name].record(self._stream)

    def read(self) -> dict[str, float]:
        """{mark: ms since the previous mark, ..., "total": first to last mark}."""
        if len(self._events) < 2:
            raise UserError("EventTimer needs two marks at least: mark before and after the work")
        if not all(event.query() for event in self._events.values()):
            raise UserError("timing read before the GPU finished: synchronize the stream first")
        names = list(self._events)
        laps = {b: self._ms(a, b) for a, b in pairwise(names)}
        laps["total"] = self._ms(names[0], names[-1])
        return laps

    def _ms(self, start: str, end: str) -> float:
        return float(self._events[end].time_since(self._events[start]))


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, p90, p99, mean and count of latency samples (ms): the numbers to report."""
    values = np.asarray(samples, dtype=np.float64)
    if values.size == 0:
        raise UserError("no timing samples to summarize: run at least one iteration")
    median, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "median": float(median),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(values.mean()),
        "n": int(values.size),
    }


def time_runs(step: Callable[[], dict[str, float]], warmup: int, n: int) -> dict[str, Any]:
    """Warm up, then time n runs of `step`, which returns its CUDA-event laps (ms) once finished.

    Gives summaries of each GPU lap and of the host wall time per call.
    """
    for _ in range(warmup):
        step()
    laps: dict[str, list[float]] = {}
    wall: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        lap = step()
        wall.append((time.perf_counter() - start) * 1e3)
        for name, ms in lap.items():
            laps.setdefault(name, []).append(ms)
    return {"gpu_ms": {name: summarize(v) for name, v in laps.items()}, "wall_ms": summarize(wall)}
