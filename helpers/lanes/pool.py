"""Borrow a lane for a frame, give it back: a blocking pool of detectors over one model."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from helpers.detections import Faces
from helpers.detector import Detection, Detector
from helpers.errors import UserError

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Lane:
    """One detector and what to close after it (GPU stages, then its backend), in that order."""

    detector: Detector
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


class LanePool:
    """`with pool.lane() as detector:` from any thread; `close()` waits for lanes in use.

    A borrow blocks while every lane is busy. After `close()` began, a borrow is refused with a
    one-line error; `close()` waits for the lanes out on loan, then closes every lane, then the
    shared model (`after`, e.g. the TensorRT engine), each once.
    """

    def __init__(self, lanes: list[Lane], after: Callable[[], None] = lambda: None) -> None:
        if not lanes:
            raise UserError("a lane pool needs at least one lane; ask for lanes=1 or more")
        self.lanes = list(lanes)
        self._free = deque(self.lanes)
        self._cond = threading.Condition()
        self._after = after
        self.shared: object = None  # the model the lanes share (a backend, a LoadedEngine)
        self._closing = False
        self._closed = False

    @property
    def size(self) -> int:
        return len(self.lanes)

    @property
    def name(self) -> str:
        """The backend's name (e.g. "onnxruntime", "tensorrt"), for reports."""
        return str(self.lanes[0].detector.backend.name)

    @property
    def first(self) -> Detector:
        """A detector to read settings from (input size, layout); do not run it outside `lane()`."""
        return self.lanes[0].detector

    @contextmanager
    def lane(self) -> Iterator[Detector]:
        """A free lane's detector for the block (waiting for one if all are busy)."""
        with self._cond:
            while not self._free and not self._closing:
                self._cond.wait()
            if self._closing:
                raise UserError("this lane pool is closed; open a new one to detect more frames")
            lane = self._free.popleft()
        try:
            yield lane.detector
        finally:
            with self._cond:
                self._free.append(lane)
                self._cond.notify_all()

    def run(self, image: np.ndarray) -> Detection:
        with self.lane() as detector:
            return detector.run(image)

    def detect(self, image: np.ndarray) -> Faces:
        with self.lane() as detector:
            return detector.detect(image)

    def imap(
        self, fn: Callable[[Detector, T], R], items: Iterable[T], workers: int | None = None
    ) -> Iterator[R]:
        """`fn(detector, item)` for every item on `workers` threads (default: one per lane),
        yielded in input order as they finish; one worker runs them on the calling thread."""
        workers = self.size if workers is None else workers
        if workers < 1:
            raise UserError(f"workers {workers} is not positive; use 1 or more")

        def job(item: T) -> R:
            with self.lane() as detector:
                return fn(detector, item)

        if workers == 1:
            yield from map(job, items)
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="lane") as pool:
            yield from pool.map(job, items)

    def map(self, images: Iterable[np.ndarray], workers: int | None = None) -> list[Faces]:
        """The faces of every image, in input order."""
        return list(self.imap(lambda detector, image: detector.detect(image), images, workers))

    def close(self) -> None:
        """Refuse new borrows, wait for lanes in use to come back, then close lanes and model."""
        with self._cond:
            if self._closing:
                while not self._closed:
                    self._cond.wait()
                return
            self._closing = True
            self._cond.notify_all()  # waiting borrowers get the one-line error
            while len(self._free) < len(self.lanes):
                self._cond.wait()
        try:
            for lane in reversed(self.lanes):
                lane.close()
        finally:
            self._after()
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def __enter__(self) -> LanePool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
