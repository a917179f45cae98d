"""Lanes on the CPU (ONNX Runtime), as CI can run them: threads borrowing lanes get the one-thread
faces, in input order; close waits for lanes in use and refuses new borrows. The TensorRT lanes
are tested on a GPU in tests/test_sharing_gpu.py."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from test_cli import cli
from test_sharing import THREADS, frames, same

from helpers.detector import Detector
from helpers.errors import UserError
from helpers.lanes import LanePool, onnxruntime_lanes
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path


def test_threads_over_one_pool_get_one_thread_results(default_model):
    images = frames()
    want = [
        Detector(OnnxRuntimeBackend(default_model, providers=["CPUExecutionProvider"])).detect(i)
        for i in images
    ]
    with onnxruntime_lanes(default_model, 3, providers=["CPUExecutionProvider"]) as pool:
        assert len(pool) == 3
        jobs = list(range(len(images))) * 8
        got = pool.map(lambda lane, i: (i, lane.detect(images[i])), jobs)
        direct: list[tuple[int, object]] = []

        def borrow(indices: list[int]) -> None:
            direct.extend((i, pool.detect(images[i])) for i in indices)

        threads = [threading.Thread(target=borrow, args=(jobs[k::THREADS],)) for k in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [i for i, _ in got] == jobs  # input order
    assert all(same(faces, want[i]) for i, faces in got + direct)
    assert len(direct) == len(jobs)


class Closer:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def close(self) -> None:
        self.log.append(self.name)


def test_close_waits_for_lanes_in_use_then_closes_in_order(default_model):
    detector = Detector(OnnxRuntimeBackend(default_model, providers=["CPUExecutionProvider"]))
    log: list[str] = []
    pool = LanePool(
        [detector, detector], [Closer(log, "stages"), Closer(log, "backend"), Closer(log, "engine")]
    )
    borrowed, finish = threading.Event(), threading.Event()

    def frame() -> None:
        with pool.lane():
            borrowed.set()
            finish.wait(10)

    worker = threading.Thread(target=frame)
    worker.start()
    assert borrowed.wait(10)
    closer = threading.Thread(target=pool.close)
    closer.start()
    with pool._cond:  # close() has begun: it set the flag and notified
        assert pool._cond.wait_for(lambda: pool._closing, 10)
    with pytest.raises(UserError, match="lane pool was closed"):
        pool.detect(np.zeros((64, 64, 3), np.uint8))
    assert log == []  # a lane is still out: nothing closed under it
    finish.set()
    worker.join(10)
    closer.join(10)
    assert log == ["stages", "backend", "engine"]
    pool.close()  # idempotent
    assert log == ["stages", "backend", "engine"]


def test_a_borrower_waiting_for_a_lane_is_refused_when_the_pool_closes(default_model):
    detector = Detector(OnnxRuntimeBackend(default_model, providers=["CPUExecutionProvider"]))
    pool = LanePool([detector])
    errors: list[str] = []
    with pool.lane():
        waiter = threading.Thread(target=lambda: errors.append(_refusal(pool)))
        waiter.start()
        closer = threading.Thread(target=pool.close)
        closer.start()
        with pool._cond:
            assert pool._cond.wait_for(lambda: pool._closing, 10)
    waiter.join(10)
    closer.join(10)
    assert errors and "lane pool was closed" in errors[0]


def _refusal(pool: LanePool) -> str:
    try:
        with pool.lane():
            return "lent a lane"
    except UserError as exc:
        return str(exc)


def test_bad_lane_counts_are_one_line_errors(default_model):
    with pytest.raises(UserError, match="give 1 or more"):
        onnxruntime_lanes(default_model, 0)
    with pytest.raises(UserError, match="at least one lane"):
        LanePool([])
    done = cli("detect", str(sample_path("astronaut.png")), "--workers", "0")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "--workers 0" in done.stderr


def test_detect_with_workers_writes_the_one_worker_json(default_model, tmp_path):
    """Same faces, same order, same failures, also in batches over lanes; only the timings (and
    the batched model's path) differ."""
    images = [str(sample_path(n)) for n in ("crowd48.png", "astronaut.png", "large_face.png")]
    images.insert(1, str(tmp_path / "missing.jpg"))
    runs = {}
    for workers in ("1", "3"):
        out = tmp_path / f"w{workers}.json"
        done = cli("detect", *images, "--backend", "onnxruntime", "--workers", workers, "--json", str(out))
        assert done.returncode == 1 and "1 of 4 images failed" in done.stderr
        runs[workers] = [
            {k: v for k, v in r.items() if k != "timings_ms"} for r in json.loads(out.read_text())
        ]
    assert runs["1"] == runs["3"] and [r["image"] for r in runs["1"]] == [images[0], *images[2:]]
