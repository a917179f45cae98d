"""Capture one enqueue (e.g. `execute_async_v3`) into a CUDA graph and replay it in one launch.

pycuda has no capture API, so this uses the CUDA runtime through cuda-python, whose calls
accept pycuda's `stream.handle` int (checked on an H100: reports/gpu_evidence.json). The
recipe is trtexec's: one ordinary enqueue first (keeps lazy initialisation out of the
graph), capture in thread-local mode, keep only the executable graph. A graph freezes the
addresses and shapes in effect: capture again after set_input_shape / set_tensor_address.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from helpers.cuda import bindings
from helpers.cuda.check import call, check, error_name
from helpers.errors import UserError

Enqueue = Callable[[int], bool]


class GraphCaptureError(UserError):
    """The enqueue cannot be captured; run it without a graph (plain enqueue)."""


def _runtime() -> Any:
    return bindings.runtime()


class CudaGraph:
    """An instantiated graph of the work one `enqueue(stream)` call puts on a stream."""

    def __init__(self, graph_exec: Any) -> None:
        self._exec: Any = graph_exec

    @classmethod
    def capture(cls, enqueue: Enqueue, stream: int) -> CudaGraph:
        """Warm up, then capture `enqueue(stream)`; it must return True both times.

        `stream` is a created stream's handle (capture refuses the legacy default stream),
        and the context that owns it must be current on this thread.
        """
        rt = _runtime()
        if not enqueue(stream):
            raise GraphCaptureError("the warm-up enqueue returned False: fix it before capturing")
        call(rt.cudaStreamSynchronize, stream)
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        call(rt.cudaStreamBeginCapture, stream, mode)
        enqueued = False
        try:
            enqueued = bool(enqueue(stream))
        finally:
            err, graph = rt.cudaStreamEndCapture(stream)
            if not enqueued or int(err):
                _discard(rt, graph)
        if not enqueued:
            raise GraphCaptureError(
                "enqueue returned False during CUDA graph capture: run it without a graph"
            )
        if int(err):
            raise GraphCaptureError(
                f"CUDA graph capture failed ({error_name(err)}): the enqueue does work that "
                "cannot be captured; run it without a graph"
            )
        try:
            graph_exec = call(rt.cudaGraphInstantiate, graph, 0)
        finally:
            call(rt.cudaGraphDestroy, graph)
        return cls(graph_exec)

    def replay(self, stream: int) -> None:
        """Launch the captured work on `stream` (asynchronous, like the enqueue it replaces)."""
        if self._exec is None:
            raise UserError("this CUDA graph was closed: capture it again")
        call(_runtime().cudaGraphLaunch, self._exec, stream)

    def close(self) -> None:
        """Destroy the executable graph (idempotent)."""
        if self._exec is not None:
            call(_runtime().cudaGraphExecDestroy, self._exec)
            self._exec = None

    def __enter__(self) -> CudaGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _discard(rt: Any, graph: Any) -> None:
    """Destroy a half-captured graph and clear the error the failed capture left behind."""
    if graph is not None and bindings.native(graph):
        check(rt.cudaGraphDestroy(graph))
    rt.cudaGetLastError()
