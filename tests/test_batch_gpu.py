"""Batches through a TensorRT engine: every image of a batch equals its own run, for v2, v3 and a
CUDA graph, with the batch changing between runs (buffers resized, the graph captured again).

Needs a real TensorRT (or trtemu, the TensorRT API emulator, not TensorRT) with pycuda and a CUDA
GPU; elsewhere skipped by name. On the H200: PYTHONPATH=<trtemu> pytest tests/test_batch_gpu.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import MODEL_NAMES, named_model
from test_batch import mixed_images
from test_batch_cli import held_out_images
from test_cli import cli

from helpers.batch.batchify import batchify
from helpers.detector import Detector
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.trt.backend import TensorRTBackend, tensorrt_available
from helpers.trt.build import BuildOptions
from helpers.trt.runner import METHODS

AVAILABLE, WHY = tensorrt_available()
pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.gpu,
    pytest.mark.skipif(not AVAILABLE, reason=f"TensorRT not installed or not usable here: {WHY}"),
]
FP32_TOL = {"rtol": 1e-2, "atol": 1e-2}  # as tests/test_trt_engine.py: TF32 on Ampere and newer
BOX_TOL_PX = 0.5


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    return held_out_images(tmp_path_factory.mktemp("held_out"))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


def size_of(name: str) -> tuple[int, int]:
    return (640, 640) if name.endswith("bnkps") else (640, 480)


def engine(name: str, method: str, cache_dir) -> TensorRTBackend:
    w, h = size_of(name)
    options = BuildOptions(batch=(1, 4, 8), sizes=((1, 3, h, w),))
    model = batchify(named_model(name), cache_dir=cache_dir)
    return TensorRTBackend(model, method, options, cache_dir=cache_dir, progress=False)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_image_of_an_engine_batch_equals_its_own_run(name, method, cache_dir):
    w, h = size_of(name)
    x = np.random.default_rng(7).normal(0, 0.5, (8, 3, h, w)).astype(np.float32)
    reference = OnnxRuntimeBackend(named_model(name), providers=["CPUExecutionProvider"])
    with engine(name, method, cache_dir) as backend:
        for n in (3, 8, 1, 3):  # the batch changes between runs
            both = backend.run({"input.1": x[:n]})
            assert all(v.shape[0] == n and not np.isnan(v).any() for v in both.values())
            for i in range(n):
                own = backend.run({"input.1": x[i : i + 1]})
                for key, value in own.items():
                    np.testing.assert_allclose(both[key][i : i + 1], value, err_msg=key, **FP32_TOL)
            ort = reference.run({"input.1": x[n - 1 : n]})
            for key, value in ort.items():
                np.testing.assert_allclose(
                    both[key][n - 1].reshape(value.shape), value, err_msg=key, **FP32_TOL
                )


@pytest.mark.parametrize("method", METHODS)
def test_detector_batch_on_an_engine_gives_the_one_at_a_time_faces(method, cache_dir):
    name = "scrfd_2.5g"
    single = Detector(OnnxRuntimeBackend(named_model(name)), size_of(name))
    images = mixed_images()
    with engine(name, method, cache_dir) as backend:
        batched = Detector(backend, size_of(name))
        for chunk in (images[:4], images[4:], images[:1]):  # 4, a partial 2, then 1
            for image, found in zip(chunk, batched.run_batch(chunk), strict=True):
                want = single.run(image).faces
                assert len(found.faces) == len(want)
                np.testing.assert_allclose(found.faces.boxes, want.boxes, atol=BOX_TOL_PX)


@pytest.mark.parametrize("graph", [False, True])
def test_gpu_stages_on_an_engine_batch_give_the_one_at_a_time_faces(graph, cache_dir):
    """One letterbox launch, the engine, one decode launch for the batch; partial batches and a
    return to the full one (with graph=True each change of batch captures again: TensorRT wants
    that after a shape change), then frames of other shapes in the first slots."""
    from test_gpu_stages import assert_close_faces, bgr

    from helpers.gpu.stages import GpuStages

    name = "scrfd_2.5g"
    single = Detector(OnnxRuntimeBackend(named_model(name)), size_of(name))
    images = bgr(mixed_images())
    with engine(name, "v3", cache_dir) as backend:
        stages = GpuStages(backend, graph=graph)
        batched = Detector(backend, size_of(name), stages=stages)
        for chunk in (images[:4], images[:4], images[:2], images[:4], images[:1], images[:2], images[4:]):
            found = batched.run_batch(chunk)
            for image, detection in zip(chunk, found, strict=True):
                assert_close_faces(single.run(image).faces, detection.faces)
        assert stages.captured == graph
        assert len(stages._graphs) == graph  # only the graph of the engine's current input shape
        stages.close()


def test_graph_method_captures_again_for_each_batch_change(cache_dir, monkeypatch):
    """Batches 4, 4, 2, 2, 4 on one execution context: a capture at each change of batch (TensorRT
    wants one after a shape change), replays in between, and every image equals its v3 run."""
    from helpers.cuda import graph

    captures: list[int] = []
    capture = graph.CudaGraph.capture
    monkeypatch.setattr(graph.CudaGraph, "capture", lambda *a: captures.append(1) or capture(*a))
    name = "scrfd_2.5g"
    w, h = size_of(name)
    x = np.random.default_rng(11).normal(0, 0.5, (4, 3, h, w)).astype(np.float32)
    with engine(name, "v3", cache_dir) as v3:
        want = v3.run({"input.1": x})
    with engine(name, "graph", cache_dir) as backend:
        for n in (4, 4, 2, 2, 4):
            got = backend.run({"input.1": x[:n]})
            for key, value in want.items():
                np.testing.assert_allclose(got[key], value[:n], err_msg=key, **FP32_TOL)
        assert backend.runner.captured and len(captures) == 3


@pytest.mark.parametrize("preprocess", ["cpu", "gpu"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_detect_batch_4_on_tensorrt_gives_the_one_at_a_time_faces(name, preprocess, held_out):
    """The held-out check on the engine: nine images of mixed sizes (one unreadable), batches of
    4, 4 and a partial 1, with the CPU path or the GPU stages: each image's faces are the ones
    a run per image finds (boxes within BOX_TOL_PX: the batch and single engines differ)."""
    model, images = named_model(name), held_out
    args = ("detect", *images, "--model", model, "--backend", "tensorrt", "--preprocess", preprocess)
    one = cli(*args, "--json", "-")
    batched = cli(*args, "--batch", "4", "--json", "-")
    assert one.returncode == batched.returncode == 1, batched.stderr[-2000:]  # the broken image
    assert "Traceback" not in batched.stderr
    want, got = json.loads(one.stdout), json.loads(batched.stdout)
    assert [e["image"] for e in got] == [e["image"] for e in want] == [i for i in images if "broken" not in i]
    for w, g in zip(want, got, strict=True):
        assert len(g["detections"]) == len(w["detections"]), g["image"]
        for a, b in zip(w["detections"], g["detections"], strict=True):
            np.testing.assert_allclose(a["box"], b["box"], atol=BOX_TOL_PX, err_msg=g["image"])
    assert sum(len(e["detections"]) for e in got) > 50
