"""A backend plus the SCRFD pipeline: letterbox, run, decode, NMS, rescale.

The layout is sniffed once by running the model, because declared output
shapes can lie; after that every call is preprocessing, one backend run and
a threshold-first decode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from helpers.backend import Backend, PreparedInput, static_size
from helpers.decode import candidates
from helpers.detections import Faces
from helpers.errors import UserError
from helpers.layout import Layout, image_outputs, infer_layout
from helpers.letterbox import Letterbox, Preprocessor
from helpers.nms import nms

DEFAULT_SIZE = (640, 640)


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    """Reject input sizes the strides cannot tile, before any model runs."""
    w, h = size
    if w <= 0 or h <= 0 or w % 32 or h % 32:
        raise UserError(f"input size {w}x{h} is not a positive multiple of 32; use e.g. 640 or 640 480")
    return w, h


def check_threshold(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise UserError(f"{name} {value} is outside [0, 1]; pass a value such as 0.5")
    return value


def probe_shapes(backend: Backend, size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """Run the model once on a blank canvas: the real output shapes, whatever the graph declares."""
    inp = backend.inputs[0]
    if len(backend.inputs) != 1 or len(inp.shape) != 4:
        raise UserError(
            f"not an SCRFD model: expected one NCHW image input, found {[i.name for i in backend.inputs]}"
        )
    w, h = size
    dtype = np.float16 if inp.dtype == "float16" else np.float32
    try:
        outs = backend.run({inp.name: np.zeros((1, 3, h, w), dtype)})
    except Exception as exc:
        raise UserError(f"the model failed on a {w}x{h} input ({str(exc).splitlines()[0][:160]})") from None
    return {k: tuple(v.shape) for k, v in outs.items()}


def sniff_layout(backend: Backend, size: tuple[int, int]) -> Layout:
    """The layout read off the real shapes of one run."""
    dynamic = static_size(backend.inputs[0]) is None
    return infer_layout(probe_shapes(backend, size), size[0], size[1], dynamic)


@dataclass
class Timings:
    """Milliseconds spent in each stage of the last detection."""

    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in vars(self).items()}


@dataclass
class Detection:
    """Everything one detection produced, for the score-map explorer and reports."""

    faces: Faces  # kept faces, original-image pixels, best first
    candidates: Faces  # all faces over the threshold, canvas pixels, level order
    kept: np.ndarray  # indices into candidates that NMS kept
    letterbox: Letterbox
    outputs: dict[str, np.ndarray]  # empty when the stages ran on the GPU: the outputs never left it
    timings: Timings = field(default_factory=Timings)


class Stages(Protocol):
    """Pre-processing, the engine and post-processing done elsewhere (helpers.gpu: on the GPU)."""

    def run(
        self, image: np.ndarray, size: tuple[int, int], score_threshold: float, nms_threshold: float
    ) -> Detection: ...

    def run_batch(
        self,
        images: Sequence[np.ndarray],
        size: tuple[int, int],
        score_threshold: float,
        nms_threshold: float,
    ) -> list[Detection]: ...


def postprocess(
    outputs: dict[str, np.ndarray],
    layout: Layout,
    box: Letterbox,
    score_threshold: float,
    nms_threshold: float,
) -> tuple[Faces, Faces, np.ndarray]:
    """(kept faces in original pixels, candidates in canvas pixels, kept indices) of one run."""
    cands = candidates(outputs, layout, (box.width, box.height), score_threshold)
    kept = nms(cands.boxes, cands.scores, nms_threshold)
    if not len(cands):  # the common empty frame: nothing to select or rescale
        return cands, cands, kept
    return cands[kept].scaled(box.scale), cands, kept


def merge(found: list[Faces], nms_threshold: float) -> Faces:
    """Faces of several input sizes merged by one more NMS."""
    merged = Faces.concat(found)
    return merged[nms(merged.boxes, merged.scores, nms_threshold)]


class Detector:
    """SCRFD on any backend; static-input models always run at their own size.

    Safe to share between threads: scratch buffers are per thread, and every backend and the
    GPU stages serialise what they must. For frames in parallel, use `helpers.lanes`.
    """

    def __init__(
        self,
        backend: Backend,
        input_size: tuple[int, int] | None = None,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        stages: Stages | None = None,
    ):
        self.backend = backend
        self.stages = stages  # e.g. helpers.gpu.GpuStages(backend): letterbox and decode on the GPU
        self.fixed_size = static_size(backend.inputs[0])
        self.requested_size = check_size(input_size) if input_size else None
        self.input_size = self.fixed_size or self.requested_size or DEFAULT_SIZE
        self.score_threshold = check_threshold("score threshold", score_threshold)
        self.nms_threshold = check_threshold("NMS threshold", nms_threshold)
        self.layout = sniff_layout(backend, self.input_size)
        self.input_name = backend.inputs[0].name
        # Exports converted without keep_io_types take float16; the blob is made in float32.
        self.input_dtype = np.dtype(backend.inputs[0].dtype) if backend.inputs[0].dtype == "float16" else None
        # Decided once: isinstance against a runtime-checkable Protocol costs ~14 us a frame.
        self._in_place: PreparedInput | None = (
            backend if isinstance(backend, PreparedInput) and self.input_dtype is None else None
        )
        self._local = threading.local()  # a Preprocessor per thread: its blobs are reused

    @property
    def _prep(self) -> Preprocessor:
        """This thread's preprocessor: threads sharing the detector never share scratch buffers.

        The look-up costs 0.2 us a frame more than an attribute (`benchmarks/sharing.py`, 2-core
        CPU); a shared one made threads read each other's half-written blobs (10-39 % of faces wrong).
        """
        try:
            return self._local.prep
        except AttributeError:
            self._local.prep = Preprocessor()
            return self._local.prep

    @property
    def size_overridden(self) -> bool:
        """True when the user asked for a size the static model cannot take."""
        return bool(self.fixed_size and self.requested_size and self.fixed_size != self.requested_size)

    def run(self, image: np.ndarray, size: tuple[int, int] | None = None) -> Detection:
        """Detect at one input size, keeping the intermediate results."""
        size = self.fixed_size or (check_size(size) if size else self.input_size)
        if self.stages is not None:
            return self.stages.run(image, size, self.score_threshold, self.nms_threshold)
        t0 = time.perf_counter()
        if self._in_place is not None:
            # Letterbox straight into the engine's pinned input: no blob, no copy.
            with self._in_place.input_array(self.input_name, (1, 3, size[1], size[0])) as target:
                _, box = self._prep(image, size, out=target)
                t1 = time.perf_counter()
                outputs = self._in_place.run_prepared()
        else:
            blob, box = self._prep(image, size)
            t1 = time.perf_counter()
            feed = blob if self.input_dtype is None else blob.astype(self.input_dtype)
            outputs = self.backend.run({self.input_name: feed})
        t2 = time.perf_counter()
        faces, cands, kept = postprocess(outputs, self.layout, box, self.score_threshold, self.nms_threshold)
        t3 = time.perf_counter()
        timings = Timings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return Detection(faces, cands, kept, box, outputs, timings)

    def detect(self, image: np.ndarray) -> Faces:
        return self.run(image).faces

    def run_batch(self, images: Sequence[np.ndarray], size: tuple[int, int] | None = None) -> list[Detection]:
        """Detect in every image with one backend run; image i's faces come from its own slot.

        Each image (any size) is letterboxed into slot i of an (N, 3, H, W) input: with GPU
        stages in one launch on the GPU, on TensorRT the engine's pinned input, else a blob kept
        per thread and batch size (so several threads may call this at once). The batch run's
        time is shared equally; pre- and post-processing are each image's own.
        """
        if not images:
            return []
        size = self.fixed_size or (check_size(size) if size else self.input_size)
        self._check_batch(len(images))
        if self.stages is not None:
            return self.stages.run_batch(images, size, self.score_threshold, self.nms_threshold)
        shape = (len(images), 3, size[1], size[0])
        if self._in_place is not None:
            with self._in_place.input_array(self.input_name, shape) as target:
                boxes, pre = self.letterbox_batch(images, size, target)
                t1 = time.perf_counter()
                outputs = self._in_place.run_prepared()
        else:
            blob = self._batch_blob(shape)
            boxes, pre = self.letterbox_batch(images, size, blob)
            t1 = time.perf_counter()
            feed = blob if self.input_dtype is None else blob.astype(self.input_dtype)
            outputs = self.backend.run({self.input_name: feed})
        share = (time.perf_counter() - t1) * 1e3 / len(images)
        return self.decode_batch(outputs, boxes, [Timings(p, share) for p in pre])

    def letterbox_batch(
        self, images: Sequence[np.ndarray], size: tuple[int, int], out: np.ndarray
    ) -> tuple[list[Letterbox], list[float]]:
        """Each image into its slot of `out` (N, 3, H, W): the letterboxes and the ms each took."""
        boxes, pre = [], []
        for i, image in enumerate(images):
            t0 = time.perf_counter()
            boxes.append(self._prep(image, size, out=out[i : i + 1])[1])
            pre.append((time.perf_counter() - t0) * 1e3)
        return boxes, pre

    def decode_batch(
        self, outputs: dict[str, np.ndarray], boxes: list[Letterbox], timings: list[Timings]
    ) -> list[Detection]:
        """Decode and NMS each image of a batch run on its own rows; adds each one's post time."""
        found = []
        for i, (box, timing) in enumerate(zip(boxes, timings, strict=True)):
            t0 = time.perf_counter()
            own = image_outputs(outputs, i) if self.layout.holds_batch else outputs  # (N, C): one image
            faces, cands, kept = postprocess(own, self.layout, box, self.score_threshold, self.nms_threshold)
            timing.postprocess = (time.perf_counter() - t0) * 1e3
            found.append(Detection(faces, cands, kept, box, own, timing))
        return found

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Faces]:
        return [d.faces for d in self.run_batch(images)]

    def _check_batch(self, count: int) -> None:
        if count > 1 and not self.layout.holds_batch:
            raise UserError(
                "this model's (N, C) outputs cannot keep images apart; make it batchable first: "
                "python -m helpers batchify MODEL"
            )

    def _batch_blob(self, shape: tuple[int, ...]) -> np.ndarray:
        """This thread's (N, 3, H, W) input for one batch shape, reused by its later batches."""
        blobs: dict[tuple[int, ...], np.ndarray] = self._local.__dict__.setdefault("batch_blobs", {})
        blob = blobs.get(shape)
        if blob is None:
            blob = blobs[shape] = np.empty(shape, np.float32)
        return blob

    def run_sizes(self, image: np.ndarray, sizes: list[tuple[int, int]]) -> tuple[Faces, Timings]:
        """Detect at each size and merge before one NMS (insightface 2.x's two-scale detection); the
        timings are summed over the sizes, the merge counted as postprocessing.

        A small size sees faces that fill the frame, which the 640 input
        can miss; merging before NMS keeps the best box of each face.
        """
        self._check_sizes(sizes)
        return self._merged([self.run(image, s) for s in sizes])

    def run_batch_sizes(
        self, images: Sequence[np.ndarray], sizes: list[tuple[int, int]]
    ) -> list[tuple[Faces, Timings]]:
        """`run_sizes` for every image, one backend run per size for the whole batch."""
        self._check_sizes(sizes)
        per_size = [self.run_batch(images, s) for s in sizes]
        return [self._merged([runs[i] for runs in per_size]) for i in range(len(images))]

    def _check_sizes(self, sizes: list[tuple[int, int]]) -> None:
        if self.fixed_size and len(set(sizes)) > 1:
            w, h = self.fixed_size
            raise UserError(
                f"this model has a static {w}x{h} input; several input sizes need a dynamic export"
            )

    def _merged(self, runs: list[Detection]) -> tuple[Faces, Timings]:
        """One image's runs at several sizes merged by one NMS; the merge counts as postprocessing."""
        t0 = time.perf_counter()
        faces = runs[0].faces if len(runs) == 1 else merge([r.faces for r in runs], self.nms_threshold)
        merging = (time.perf_counter() - t0) * 1e3
        timings = Timings(
            sum(r.timings.preprocess for r in runs),
            sum(r.timings.inference for r in runs),
            sum(r.timings.postprocess for r in runs) + merging,
        )
        return faces, timings

    def detect_sizes(self, image: np.ndarray, sizes: list[tuple[int, int]]) -> Faces:
        return self.run_sizes(image, sizes)[0]
