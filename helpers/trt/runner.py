"""One execution context run three ways on the same buffers: execute_v2, v3, a CUDA graph.

- "v2": `execute_v2(addresses in engine I/O order)`, synchronous, on a stream TensorRT does not
  document, so the input copies are synchronized first.
- "v3": async copy in, `execute_async_v3(stream)`, async copy out, one synchronize.
- "graph": the v3 enqueue captured (after a warm-up enqueue) and replayed; captured again
  whenever the input shapes or addresses change, one graph per context.
With `timed`, the "infer" lap of "v2" is the time execute_v2 blocked the host between two
events on our stream (it runs on a stream of its own), so it includes launch overhead that the
v3 lap overlaps; compare the "total" laps. Every call runs with the engine's CUDA context
current, so any thread may call `run`, and every boolean TensorRT returns is checked.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from helpers.errors import UserError
from helpers.trt.bindings import IOBuffers
from helpers.trt.runtime import log_book
from helpers.trt.specs import Shape, execute_v2_bindings

if TYPE_CHECKING:
    import tensorrt as trt

    from helpers.cuda.context import CudaContext
    from helpers.cuda.graph import CudaGraph
    from helpers.cuda.stream import EventTimer, Stream

METHODS = ("v3", "v2", "graph")
GraphKey = tuple[tuple[tuple[str, Shape], ...], tuple[tuple[str, int], ...]]


def check_method(method: str) -> str:
    if method not in METHODS:
        raise UserError(f"execution method {method!r} is unknown; use one of {', '.join(METHODS)}")
    return method


def enqueue_failure(call: str, detail: str) -> UserError:
    """The error for a False from execute_v2 / execute_async_v3, naming the usual causes."""
    return UserError(
        f"{call} returned False ({detail}): usually an I/O tensor without an address, or the "
        "engine, buffers and stream belong to different CUDA contexts; run "
        "`python -m helpers doctor --explain`"
    )


def graph_key(buffers: IOBuffers) -> GraphKey:
    """What a captured graph froze: every tensor's shape and address."""
    return tuple(sorted(buffers.shapes.items())), tuple(sorted(buffers.addresses().items()))


class Runner:
    """Runs `context` on `buffers`; `timings` holds per-stage CUDA-event ms when `timed`."""

    def __init__(
        self,
        context: trt.IExecutionContext,
        buffers: IOBuffers,
        stream: Stream,
        cuda: CudaContext,
        timed: bool = False,
    ):
        from helpers.cuda.stream import EventTimer

        self._context = context
        self._buffers = buffers
        self._stream = stream
        self._cuda = cuda
        self._timer: EventTimer | None = EventTimer(stream) if timed else None
        self._graph: CudaGraph | None = None
        self._graph_key: tuple | None = None
        self._uncapturable = False
        self.timings: dict[str, float] = {}

    @property
    def captured(self) -> bool:
        """Whether a CUDA graph is held (method "graph", after a run whose capture succeeded)."""
        return self._graph is not None

    def run(self, method: str) -> None:
        """Copy host inputs in, execute, copy outputs to host; returns once outputs are readable."""
        steps = {"v2": self._execute_v2, "v3": self._enqueue_v3, "graph": self._replay_graph}
        execute = steps[check_method(method)]
        with self._cuda.activate():
            if method == "graph" and not self._ensure_graph():
                execute = self._enqueue_v3
            self._mark("start")
            self._buffers.copy_inputs(self._stream)
            self._mark("h2d")
            execute()
            self._mark("infer")
            self._buffers.copy_outputs(self._stream)
            self._mark("d2h")
            self._stream.synchronize()
            if self._timer is not None:
                self.timings = self._timer.read()

    def _mark(self, name: str) -> None:
        if self._timer is not None:
            self._timer.mark(name)

    def _execute_v2(self) -> None:
        bindings = execute_v2_bindings(self._buffers.specs, self._buffers.addresses())
        self._stream.synchronize()  # execute_v2 does not run on our stream
        log_book().clear()
        if not self._context.execute_v2(bindings):
            raise enqueue_failure("execute_v2", log_book().last_error("TensorRT logged no error"))

    def _enqueue(self, stream_handle: int) -> bool:
        return self._context.execute_async_v3(stream_handle)

    def _enqueue_v3(self) -> None:
        log_book().clear()
        if not self._enqueue(self._stream.handle):
            raise enqueue_failure("execute_async_v3", log_book().last_error("TensorRT logged no error"))

    def _ensure_graph(self) -> bool:
        """Capture (warm-up enqueue first) unless the graph held froze these shapes and addresses
        and the context's input shapes have not changed since.

        One graph per context, captured again after any change of its input shapes (a partial
        batch, another size, another caller's run): "when change the input shapes, you have to
        re-capture the graph, because some internal state is changed" (NVIDIA's maintainer,
        TensorRT#3798, after the developer guide's CUDA graphs section). False when this engine
        cannot be captured: as in NVIDIA's trtexec, fall back to plain enqueues (once warned)
        rather than fail.
        """
        from helpers.cuda.check import CudaError
        from helpers.cuda.graph import CudaGraph, GraphCaptureError

        key = (*graph_key(self._buffers), self._buffers.shape_changes)
        if self._graph is not None and key == self._graph_key:
            return True
        if self._uncapturable:
            return False
        self.close()
        try:
            self._graph = CudaGraph.capture(self._enqueue, self._stream.handle)
        except (GraphCaptureError, CudaError) as exc:  # refused enqueue, or a capture/instantiate call
            warnings.warn(f"CUDA graph capture failed ({exc}); using execute_async_v3", stacklevel=3)
            self._uncapturable = True
            return False
        self._graph_key = key
        return True

    def _replay_graph(self) -> None:
        if self._graph is None:
            raise UserError("no CUDA graph captured; run with method 'graph' to capture one")
        self._graph.replay(self._stream.handle)

    def close(self) -> None:
        """Drop the captured graph (call with the context current)."""
        if self._graph is not None:
            self._graph.close()
        self._graph, self._graph_key = None, None
