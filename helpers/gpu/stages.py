"""The whole frame around the engine on the GPU: letterbox in, engine, decode out, one stream.

Every step is enqueued on the engine's own stream with the engine's CUDA context current (the
rules of notebook 03): the frame uploads (one per image), one letterbox launch writing every
image of the batch into the engine's input buffer, the engine, one decode launch reading its
output buffers, and the copy of the batch's candidate count. With `graph=True` that sequence is
captured as one CUDA graph and replayed while the batch, frame shapes and input size stay (any
change captures again): nothing in it allocates or waits. The host then waits once for the
count, copies that many rows back and runs each image's NMS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from helpers.backend import DeviceEngine, DeviceTensor, static_size
from helpers.detector import Detection, Timings
from helpers.errors import UserError
from helpers.gpu.memory import external_stream
from helpers.gpu.postprocess import CAPACITY, GpuDecoder, gpu_nms
from helpers.gpu.preprocess import GpuLetterbox
from helpers.layout import Layout, infer_layout
from helpers.letterbox import Letterbox


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


MAX_GRAPHS = 8  # graphs kept per stages object at one engine input shape (thresholds, frame buffers)


class GpuStages:
    """`Detector(backend, stages=GpuStages(backend))`: pre/post on the GPU around `engine`.

    `timed=True` records CUDA events around each step (read with `gpu_ms` after a run; with a
    graph only the whole replay is timed). Safe to share between threads: a frame runs inside
    the engine's `session()`, so frames on one engine (and its stages) take turns; for frames in
    parallel, give each thread a lane of its own (`helpers.lanes`).
    Detection timings (a batch's shared steps split equally between its images): preprocess =
    staging the frames and enqueueing everything, inference = waiting for the GPU, postprocess
    = bringing candidates back, NMS and rescaling.
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
        self._layouts: dict[tuple[int, int, int], Layout] = {}
        self._graphs: dict[tuple, Any] = {}  # capture key -> CudaGraph, oldest first
        self._key: tuple | None = None  # the last batch's capture key
        self.gpu_ms: dict[str, float] = {}
        engine.attach(self)  # the engine drops our graphs before it frees what they use

    @property
    def captured(self) -> bool:
        """Whether a CUDA graph of the last batch's shapes is held (graph=True, after a run)."""
        return self._key in self._graphs

    def run(
        self, image: np.ndarray, size: tuple[int, int], score_threshold: float, nms_threshold: float
    ) -> Detection:
        return self.run_batch([image], size, score_threshold, nms_threshold)[0]

    def run_batch(
        self,
        images: Sequence[np.ndarray],
        size: tuple[int, int],
        score_threshold: float,
        nms_threshold: float,
    ) -> list[Detection]:
        """Every image (any sizes) through one letterbox launch, one engine run and one decode
        launch; image i's faces come from its own slot. A batch larger than one needs a model
        whose outputs keep the batch (`helpers.batch.batchify`)."""
        n = len(images)
        if not n:
            return []
        with self.engine.session():
            t0 = time.perf_counter()
            tensors = self.engine.device_tensors((n, 3, size[1], size[0]))
            layout = self.layout(tensors, size, n)
            try:
                for slot, image in enumerate(images):
                    self.letterbox.stage(image, slot)
                boxes = self._launch(tensors, layout, size, score_threshold, n)
            except BaseException:
                # Copies already queued read the staging and the slot table: let them finish
                # before the next batch rewrites (or frees) what they read.
                self._stream.synchronize()
                raise
            t1 = time.perf_counter()
            self._stream.synchronize()
            t2 = time.perf_counter()
            found = self.decoder.collect(tensors, layout, size, score_threshold, n)
            t3 = time.perf_counter()
            detections = []
            for cands, box in zip(found, boxes, strict=True):
                t = time.perf_counter()
                kept = gpu_nms(cands.boxes, cands.scores, nms_threshold, self._stream)
                faces = cands[kept].scaled(box.scale) if len(cands) else cands
                post = (t3 - t2) / n + time.perf_counter() - t
                timings = Timings((t1 - t0) * 1e3 / n, (t2 - t1) * 1e3 / n, post * 1e3)
                detections.append(Detection(faces, cands, kept, box, {}, timings))
            if self.timed:
                self.gpu_ms = self._read_events()
        return detections

    def frame_buffer(self, shape: tuple[int, int, int], slot: int = 0) -> np.ndarray:
        """A page-locked (H, W, 3) uint8 array to capture or decode frames into, for image `slot`
        of a batch; passed to `run` / `run_batch` (or the Detector's) at that position it is
        uploaded without a host copy. One per slot and stages object: a thread that fills it
        while another runs a batch of the same shapes would change that batch."""
        with self.engine.session():
            return self.letterbox.buffer(shape, slot)

    def layout(self, tensors: dict[str, DeviceTensor], size: tuple[int, int], batch: int = 1) -> Layout:
        """The SCRFD layout from the engine's concrete output shapes at this size and batch."""
        key = (*size, batch)
        if key not in self._layouts:
            outputs = {name: t.shape for name, t in tensors.items() if name != self.input_name}
            wrong = [f"{n} ({t.dtype})" for n, t in tensors.items() if np.dtype(t.dtype) != np.float32]
            if wrong:
                raise UserError(
                    f"GPU pre/post-processing needs float32 I/O, the engine has {', '.join(wrong)}; "
                    "use --preprocess cpu"
                )
            layout = infer_layout(outputs, size[0], size[1], self.dynamic)
            if batch > 1 and not layout.holds_batch:
                raise UserError(
                    "this model's (N, C) outputs cannot keep images apart; make it batchable first: "
                    "python -m helpers batchify MODEL"
                )
            self._layouts[key] = layout
        return self._layouts[key]

    def _launch(
        self,
        tensors: dict[str, DeviceTensor],
        layout: Layout,
        size: tuple[int, int],
        threshold: float,
        n: int,
    ) -> list[Letterbox]:
        """Enqueue letterbox, engine and decode: directly, or as a replay of their CUDA graph."""
        if not self.graph:
            return self.enqueue(tensors, layout, size, threshold, n)
        boxes = self.letterbox.prepare(size, n)  # the host table the graph's copy node reads
        # Everything the captured nodes froze: shapes, the engine's addresses and our own, and
        # the engine's input shapes staying as they were since the capture.
        engine = (self.engine.shape_changes, *sorted((name, t.ptr, t.shape) for name, t in tensors.items()))
        self._key = key = (n, size, threshold, engine, self.letterbox.addresses(n))
        graph = self._graphs.get(key)
        if graph is None:
            graph = self._capture(key, lambda: self.enqueue(tensors, layout, size, threshold, n))
        if self.timed:
            self._events["start"].record(self._stream)
        graph.replay(self.engine.stream_handle)
        if self.timed:
            self._events["decode"].record(self._stream)
        return boxes

    def _capture(self, key: tuple, enqueue: Callable[[], object]) -> Any:
        """Capture a graph for `key`, first dropping the graphs gone stale (the engine's input
        shapes changed since their capture: TensorRT wants a new capture then, TensorRT#3798; or
        our buffers moved) and the oldest, past MAX_GRAPHS."""
        from helpers.cuda.graph import CudaGraph

        stale = [k for k in self._graphs if k[3] != key[3] or k[4] != self.letterbox.addresses(k[0])]
        while len(self._graphs) - len(stale) >= MAX_GRAPHS:
            stale.append(next(k for k in self._graphs if k not in stale))
        for k in stale:
            self._graphs.pop(k).close()

        def captured(_stream: int) -> bool:
            enqueue()
            return True  # every step raises on failure

        self._graphs[key] = graph = CudaGraph.capture(captured, self.engine.stream_handle)
        return graph

    def enqueue(
        self,
        tensors: dict[str, DeviceTensor],
        layout: Layout,
        size: tuple[int, int],
        threshold: float,
        n: int = 1,
    ) -> list[Letterbox]:
        """Uploads + one letterbox into the engine input, the engine, one decode + the count copy,
        for a batch of `n` staged frames: no waits."""
        timed = self.timed and not self.graph
        if timed:
            self._events["start"].record(self._stream)
        boxes = self.letterbox.enqueue(size, tensors[self.input_name].ptr, n)
        if timed:
            self._events["letterbox"].record(self._stream)
        self.engine.enqueue()
        if timed:
            self._events["engine"].record(self._stream)
        self.decoder.enqueue(tensors, layout, size, threshold, n)
        if timed:
            self._events["decode"].record(self._stream)
        return boxes

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
        """Drop the captured graphs, inside the engine's context (idempotent; the engine calls it
        when it closes, so calling it after the engine's close is fine)."""
        if not self._graphs:
            return
        with self.engine.session():  # not while another thread replays one
            while self._graphs:
                self._graphs.popitem()[1].close()
