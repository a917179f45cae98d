"""The whole frame around the engine on the GPU: letterbox in, engine, decode out, one stream.

Every step is enqueued on the engine's own stream with the engine's CUDA context current (the
rules of notebook 03): the frame upload, the letterbox kernel writing the engine's input
buffer, the engine, the decode kernel reading its output buffers, and the copy of the candidate
count. With `graph=True` that sequence is captured once per frame shape as one CUDA graph and
replayed: nothing in it allocates or waits. The host then waits once for the count, copies that
many rows back and runs NMS.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from helpers.backend import DeviceEngine, DeviceTensor, static_size
from helpers.detector import Detection, Timings
from helpers.errors import UserError
from helpers.gpu.memory import external_stream
from helpers.gpu.postprocess import CAPACITY, GpuDecoder, gpu_nms
from helpers.gpu.preprocess import GpuLetterbox
from helpers.layout import Layout, infer_layout
from helpers.letterbox import Letterbox, fit


def require_cupy() -> None:
    """Refuse, in one line, where CuPy cannot run the stages."""
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # ImportError, or CUDARuntimeError without a driver or GPU
        raise UserError(
            f"GPU pre/post-processing needs CuPy and a CUDA GPU ({type(exc).__name__}: {exc}); "
            "pip install cupy-cuda12x (or cupy-cuda13x), or use --preprocess cpu"
        ) from None


def stages_for(choice: str, backend: object, graph: bool = False) -> GpuStages | None:
    """The stages `--preprocess` asks for: "cpu" none, "gpu" GPU stages or a one-line error,
    "auto" GPU stages when the backend is a device engine (TensorRT) and CuPy runs here."""
    if choice not in ("auto", "gpu", "cpu"):
        raise UserError(f"--preprocess {choice!r} is unknown; use auto, gpu or cpu")
    if choice == "cpu":
        return None
    if not isinstance(backend, DeviceEngine):
        if choice == "gpu":
            raise UserError(
                "--preprocess gpu needs the TensorRT backend (its buffers live on the GPU); use "
                "--backend tensorrt, or --preprocess cpu"
            )
        return None
    if choice == "auto":
        try:
            require_cupy()
        except UserError:
            return None
    return GpuStages(backend, graph=graph)


class GpuStages:
    """`Detector(backend, stages=GpuStages(backend))`: pre/post on the GPU around `engine`.

    `timed=True` records CUDA events around each step (read with `gpu_ms` after a run; with a
    graph only the whole replay is timed). Safe to share between threads: a frame runs inside
    the engine's `session()`, so frames on one engine (and its stages) take turns; for frames in
    parallel, give each thread a lane of its own (`helpers.lanes`).
    Detection timings: preprocess = staging the frame and enqueueing everything, inference =
    waiting for the GPU, postprocess = bringing candidates back, NMS and rescaling.
    """

    def __init__(
        self, engine: DeviceEngine, graph: bool = False, timed: bool = False, capacity: int = CAPACITY
    ) -> None:
        require_cupy()
        self.engine = engine
        self.graph = graph
        self.timed = timed
        self.dynamic = static_size(engine.inputs[0]) is None
        self.input_name = engine.inputs[0].name
        with engine.session():
            import cupy

            self._stream = external_stream(engine.stream_handle)  # one per stages object
            self.letterbox = GpuLetterbox(self._stream)
            self.decoder = GpuDecoder(self._stream, capacity)
            self._events = {name: cupy.cuda.Event() for name in ("start", "letterbox", "engine", "decode")}
        self._layouts: dict[tuple[int, int], Layout] = {}
        self._captured: Any = None
        self._captured_key: tuple | None = None
        self.gpu_ms: dict[str, float] = {}
        engine.attach(self)  # the engine drops our graph before it frees what the graph uses

    @property
    def captured(self) -> bool:
        """Whether a CUDA graph of the last frame's shape is held (graph=True, after a run)."""
        return self._captured is not None

    def run(
        self, image: np.ndarray, size: tuple[int, int], score_threshold: float, nms_threshold: float
    ) -> Detection:
        with self.engine.session():
            t0 = time.perf_counter()
            tensors = self.engine.device_tensors((1, 3, size[1], size[0]))
            layout = self.layout(tensors, size)
            self.letterbox.stage(image)
            box = self._launch(tensors, layout, size, score_threshold)
            t1 = time.perf_counter()
            self._stream.synchronize()
            t2 = time.perf_counter()
            cands = self.decoder.collect(tensors, layout, size, score_threshold)
            kept = gpu_nms(cands.boxes, cands.scores, nms_threshold, self._stream)
            faces = cands[kept].scaled(box.scale) if len(cands) else cands
            t3 = time.perf_counter()
            if self.timed:
                self.gpu_ms = self._read_events()
        timings = Timings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return Detection(faces, cands, kept, box, {}, timings)

    def frame_buffer(self, shape: tuple[int, int, int]) -> np.ndarray:
        """A page-locked (H, W, 3) uint8 array to capture or decode frames into; passed to `run`
        (or `Detector.run`) it is uploaded without a host copy. One per stages object: a thread
        that fills it while another runs a frame of the same shape would change that frame."""
        with self.engine.session():
            return self.letterbox.buffer(shape)

    def layout(self, tensors: dict[str, DeviceTensor], size: tuple[int, int]) -> Layout:
        """The SCRFD layout from the engine's concrete output shapes at this size."""
        if size not in self._layouts:
            outputs = {name: t.shape for name, t in tensors.items() if name != self.input_name}
            wrong = [f"{n} ({t.dtype})" for n, t in tensors.items() if np.dtype(t.dtype) != np.float32]
            if wrong:
                raise UserError(
                    f"GPU pre/post-processing needs float32 I/O, the engine has {', '.join(wrong)}; "
                    "use --preprocess cpu"
                )
            self._layouts[size] = infer_layout(outputs, size[0], size[1], self.dynamic)
        return self._layouts[size]

    def _launch(
        self, tensors: dict[str, DeviceTensor], layout: Layout, size: tuple[int, int], threshold: float
    ) -> Letterbox:
        """Enqueue letterbox, engine and decode: directly, or as a replay of their CUDA graph."""
        staging = self.letterbox.staging
        assert staging is not None  # staged by run()
        if not self.graph:
            return self.enqueue(tensors, layout, size, threshold)
        # Everything the captured nodes froze: shapes, the engine's addresses and our own.
        engine_ptrs = tuple(sorted((n, t.ptr) for n, t in tensors.items()))
        key = (staging.shape, size, threshold, engine_ptrs, self.letterbox.addresses)
        if key != self._captured_key:
            from helpers.cuda.graph import CudaGraph

            self.close()

            def enqueue(_stream: int) -> bool:
                self.enqueue(tensors, layout, size, threshold)
                return True  # every step raises on failure

            self._captured = CudaGraph.capture(enqueue, self.engine.stream_handle)
            self._captured_key = key
        if self.timed:
            self._events["start"].record(self._stream)
        self._captured.replay(self.engine.stream_handle)
        if self.timed:
            self._events["decode"].record(self._stream)
        return fit(staging.shape[:2], size)

    def enqueue(
        self, tensors: dict[str, DeviceTensor], layout: Layout, size: tuple[int, int], threshold: float
    ) -> Letterbox:
        """Upload + letterbox into the engine input, the engine, decode + count copy: no waits."""
        timed = self.timed and not self.graph
        if timed:
            self._events["start"].record(self._stream)
        box = self.letterbox.enqueue(size, tensors[self.input_name].ptr)
        if timed:
            self._events["letterbox"].record(self._stream)
        self.engine.enqueue()
        if timed:
            self._events["engine"].record(self._stream)
        self.decoder.enqueue(tensors, layout, size, threshold)
        if timed:
            self._events["decode"].record(self._stream)
        return box

    def _read_events(self) -> dict[str, float]:
        import cupy

        e = self._events
        if self.graph:
            return {"total": cupy.cuda.get_elapsed_time(e["start"], e["decode"])}
        return {
            "upload+letterbox": cupy.cuda.get_elapsed_time(e["start"], e["letterbox"]),
            "engine": cupy.cuda.get_elapsed_time(e["letterbox"], e["engine"]),
            "decode": cupy.cuda.get_elapsed_time(e["engine"], e["decode"]),
            "total": cupy.cuda.get_elapsed_time(e["start"], e["decode"]),
        }

    def close(self) -> None:
        """Drop the captured graph, inside the engine's context (idempotent; the engine calls it
        when it closes, so calling it after the engine's close is fine)."""
        if self._captured is None:
            return
        with self.engine.session():  # not while another thread replays it
            if self._captured is not None:
                self._captured.close()
            self._captured, self._captured_key = None, None
