"""A pool of lanes that threads borrow one frame at a time, and that closes only when idle."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

from helpers.backend import Closeable
from helpers.detections import Faces
from helpers.detector import Detector
from helpers.errors import UserError

T = TypeVar("T")
R = TypeVar("R")


class LanePool:
    """`lanes` (detectors that share nothing a frame writes), lent to one thread at a time.

    `closers` (GPU stages, backends, then the engine) are closed in that order once every lane
    is back. A thread must not borrow a second lane while it holds one: with all lanes out, it
    would wait for itself.
    """

    def __init__(self, lanes: Sequence[Detector], closers: Sequence[Closeable] = ()) -> None:
        if not lanes:
            raise UserError("a lane pool needs at least one lane; use lanes=1 or more")
        self.lanes = list(lanes)
        self._idle = list(reversed(self.lanes))  # lane 0 is lent first
        self._closers = list(closers)
        self._cond = threading.Condition()
        self._closing = False
        self._closed = threading.Event()

    def __len__(self) -> int:
        return len(self.lanes)

    @contextmanager
    def lane(self) -> Iterator[Detector]:
        """A lane for the block; waits while all are in use; refused once the pool closes."""
        with self._cond:
            while not self._idle and not self._closing:
                self._cond.wait()
            if self._closing:
                raise UserError("this lane pool was closed; make a new one to detect more frames")
            detector = self._idle.pop()
        try:
            yield detector
        finally:
            with self._cond:
                self._idle.append(detector)
                self._cond.notify_all()

    def detect(self, image: np.ndarray) -> Faces:
        with self.lane() as detector:
            return detector.detect(image)

    def map(self, fn: Callable[[Detector, T], R], items: Iterable[T]) -> list[R]:
        """`fn(lane, item)` for every item, as many at once as there are lanes; results in input
        order. An exception from `fn` is raised after the other items finished (catch what
        should not stop the batch inside `fn`)."""

        def one(item: T) -> R:
            with self.lane() as detector:
                return fn(detector, item)

        with ThreadPoolExecutor(len(self.lanes), thread_name_prefix="lane") as pool:
            futures = [pool.submit(one, item) for item in items]
        return [f.result() for f in futures]

    def close(self) -> None:
        """Refuse new borrows, wait for the lanes in use to come back, then close lanes and
        engine in their order. Idempotent; a second caller waits for the first to finish."""
        with self._cond:
            first = not self._closing
            self._closing = True
            self._cond.notify_all()  # borrowers waiting for a lane get the refusal
            while len(self._idle) < len(self.lanes):
                self._cond.wait()
        if not first:
            self._closed.wait()
            return
        try:
            for closer in self._closers:
                closer.close()
        finally:
            self._closed.set()

    def __enter__(self) -> LanePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
