"""GPU pre/post-processing: the kernels, the host code around them, parity with the CPU path.

Each test runs twice: `gpu` on a real GPU with CuPy (marker `gpu`; skipped by name without
one), and `cpu-emulated` with tests/cuda_on_cpu.py, the same CUDA source compiled for the CPU
behind a stand-in CuPy (skipped by name without g++). The letterbox kernel must equal its NumPy
model bit for bit; the whole GPU path (stand-in engine on ONNX Runtime, or TensorRT where it
runs, trtemu included) must find the CPU path's faces; GPU decode and NMS must give the CPU's
candidates and kept indices exactly on the same outputs; on the GPU, letterbox + engine +
decode must replay from a CUDA graph.
"""

from __future__ import annotations

from contextlib import contextmanager

import cuda_on_cpu
import cv2
import numpy as np
import pytest
from conftest import named_model
from test_batch import mixed_images
from test_gpu_model import FRAMES, load, model_blob
from test_parity import IMAGES, SAMPLES, iou

from helpers.decode import candidates
from helpers.detector import Detector
from helpers.gpu import kernels
from helpers.layout import image_outputs
from helpers.letterbox import fit
from helpers.ort_backend import OnnxRuntimeBackend


def _require_cupy_gpu() -> None:
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() == 0:
            raise RuntimeError("0 devices")
    except Exception as exc:
        pytest.skip(f"no CUDA GPU / CuPy here ({type(exc).__name__}: {exc})")


@pytest.fixture(params=["cpu-emulated", pytest.param("gpu", marks=pytest.mark.gpu)])
def cuda(request, monkeypatch):
    """Where the kernels run: the real GPU, or their C++ build behind a stand-in CuPy."""
    if request.param == "gpu":
        _require_cupy_gpu()
    elif cuda_on_cpu.compiler() is None:
        pytest.skip("no g++ here for the CUDA-on-CPU emulation")
    else:
        cuda_on_cpu.install(monkeypatch)
    yield request.param
    kernels.kernel.cache_clear()
    kernels._module.cache_clear()


@pytest.fixture
def gpu():
    """The real GPU only (CUDA graphs, TensorRT)."""
    _require_cupy_gpu()


def gpu_canvas(letterbox, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cupy

    with letterbox.stream:  # non-blocking: the canvas fill must be ordered before the letterbox
        canvas = cupy.full((1, 3, size[1], size[0]), np.nan, np.float32)
    letterbox.stage(image)
    letterbox.enqueue(size, canvas.data.ptr)
    return canvas.get(stream=letterbox.stream)


def new_letterbox():
    import cupy

    from helpers.gpu.preprocess import GpuLetterbox

    return GpuLetterbox(cupy.cuda.Stream(non_blocking=True))


@pytest.mark.parametrize("name", IMAGES + SAMPLES)
@pytest.mark.parametrize("size", [(640, 640), (640, 480), (320, 256)])
def test_letterbox_kernel_is_its_model_bit_for_bit(cuda, name, size):

    image = load(name)
    np.testing.assert_array_equal(gpu_canvas(new_letterbox(), image, size), model_blob(image, size)[0])


def test_letterbox_kernel_on_frames_of_changing_shape(cuda):

    letterbox = new_letterbox()
    for seed, (shape, size) in enumerate(FRAMES + FRAMES[::-1]):
        image = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
        np.testing.assert_array_equal(gpu_canvas(letterbox, image, size), model_blob(image, size)[0])


def assert_close_faces(want, got) -> None:
    """The parity goal: same faces, IoU >= 0.99, score within 1e-3, landmarks within 1 px."""
    assert len(got) == len(want)
    if not len(want):
        return
    overlap = iou(want.boxes, got.boxes)
    match = overlap.argmax(axis=1)
    assert overlap.max(axis=1).min() >= 0.99 and len(set(match.tolist())) == len(match)
    assert np.abs(want.scores - got.scores[match]).max() <= 1e-3
    assert np.abs(want.landmarks - got.landmarks[match]).max() <= 1.0


def stand_in(model_path, **kwargs):
    from helpers.gpu.host_engine import HostEngine
    from helpers.gpu.stages import GpuStages

    backend = OnnxRuntimeBackend(model_path, ["CPUExecutionProvider"])
    engine = HostEngine(backend)
    return backend, engine, GpuStages(engine, **kwargs)


@pytest.mark.parametrize("name", IMAGES + SAMPLES)
def test_gpu_stages_find_the_cpu_faces(cuda, model_path, name):
    image = load(name)
    backend, engine, stages = stand_in(model_path)
    cpu_detector = Detector(backend)
    cpu = cpu_detector.run(image)
    gpu = Detector(backend, stages=stages).run(image)
    assert_close_faces(cpu.faces, gpu.faces)
    # On the very outputs the GPU decoded, its candidates and NMS are the CPU's exactly.
    size = cpu.letterbox.width, cpu.letterbox.height
    outputs = backend.run({engine.inputs[0].name: engine.input()})
    want = candidates(outputs, cpu_detector.layout, size, 0.5)
    for field in ("boxes", "scores", "stride", "row"):
        np.testing.assert_array_equal(getattr(gpu.candidates, field), getattr(want, field))


def test_no_process_wide_warning_filters_per_frame(cuda, default_model, monkeypatch):
    """`warnings.catch_warnings` swaps process-wide state and is not thread-safe: the stages make
    their one CuPy stream up front, and a frame (from any thread) never enters it."""
    import warnings

    entered: list[int] = []

    class Counting(warnings.catch_warnings):
        def __enter__(self):
            entered.append(1)
            return super().__enter__()

    backend, _, stages = stand_in(default_model)
    detector = Detector(backend, stages=stages)
    image = load(SAMPLES[0])
    detector.run(image)
    monkeypatch.setattr(warnings, "catch_warnings", Counting)
    for _ in range(3):
        detector.run(image)
    assert entered == []


@pytest.mark.parametrize(
    ("strides", "anchors", "landmarks", "rank"),
    [
        ((8, 16, 32), 2, True, 4),
        ((8, 16, 32), 2, False, 3),
        ((8, 16, 32, 64, 128), 1, True, 2),
        ((8, 16, 32), 3, True, 4),
    ],
)
def test_gpu_decode_reads_every_layout(cuda, tmp_path, strides, anchors, landmarks, rank):
    """Raw NCHW maps, batched rows, no landmarks, five strides: the CPU path's candidates exactly."""
    from synthetic import scrfd_like

    path = scrfd_like(tmp_path / "m.onnx", strides, anchors, landmarks, rank)
    backend, engine, stages = stand_in(path)
    image = load("t1.jpg")
    cpu_detector = Detector(backend, (640, 480), score_threshold=0.3)
    found = Detector(backend, (640, 480), score_threshold=0.3, stages=stages).run(image)
    outputs = backend.run({engine.inputs[0].name: engine.input()})
    want = candidates(outputs, cpu_detector.layout, (640, 480), 0.3)
    assert len(want) > 0
    for field in ("boxes", "scores", "landmarks", "stride", "row"):
        np.testing.assert_array_equal(getattr(found.candidates, field), getattr(want, field))


def test_decode_overflow_is_decoded_on_the_host(cuda, default_model):
    image = load("t1.jpg")
    backend, engine, stages = stand_in(default_model, capacity=8)
    found = Detector(backend, score_threshold=0.05, stages=stages).run(image)
    outputs = backend.run({engine.inputs[0].name: engine.input()})
    want = candidates(outputs, Detector(backend).layout, (640, 640), 0.05)
    assert len(want) > 8
    np.testing.assert_array_equal(found.candidates.boxes, want.boxes)


@pytest.mark.parametrize("n", [600, 3000])
def test_gpu_nms_is_the_cpu_nms(cuda, n):
    import cupy

    from helpers.gpu.postprocess import gpu_nms
    from helpers.nms import nms

    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 900, (n, 2)).astype(np.float32)
    boxes = np.hstack([xy, xy + rng.uniform(5, 120, (n, 2)).astype(np.float32)])
    scores = rng.permutation(n).astype(np.float32) / n
    got = gpu_nms(boxes, scores, 0.4, cupy.cuda.Stream(non_blocking=True))
    np.testing.assert_array_equal(got, nms(boxes, scores, 0.4))


def test_letterbox_and_decode_replay_from_a_cuda_graph(cuda, default_model):
    """Engine outputs fixed (no recompute: capturable): each replay reads the new frame."""
    from helpers.gpu.stages import GpuStages

    _, engine, graphed = stand_in(default_model, graph=True)
    direct = GpuStages(engine)
    first = load("t1.jpg")
    assert len(direct.run(first, (640, 640), 0.5, 0.4).faces) == 6  # outputs of t1 now in place
    engine.recompute = False
    for seed in range(3):
        frame = first if seed == 0 else np.random.default_rng(seed).integers(0, 256, first.shape, np.uint8)
        got = graphed.run(frame, (640, 640), 0.5, 0.4)
        np.testing.assert_array_equal(engine.input(), model_blob(frame, (640, 640))[0])
        want = direct.run(frame, (640, 640), 0.5, 0.4)
        assert len(want.candidates) > 6
        np.testing.assert_array_equal(got.candidates.boxes, want.candidates.boxes)
    assert graphed.captured
    graphed.close()
    assert not graphed.captured


def test_a_frame_drives_the_engine_only_inside_its_session(cuda, default_model):
    """The stages share the engine's buffers: shapes, enqueue and the read-back all happen inside
    one `session()` (the backend's run lock, closed check and context), or another thread's
    frame or `close()` reallocates them under the kernels."""
    backend, engine, stages = stand_in(default_model)
    depth, seen = [0], []
    session, device_tensors, enqueue = engine.session, engine.device_tensors, engine.enqueue

    @contextmanager
    def counted():
        with session():
            depth[0] += 1
            try:
                yield engine
            finally:
                depth[0] -= 1

    def tracked(fn):
        return lambda *a: seen.append(depth[0]) or fn(*a)

    engine.session, engine.device_tensors, engine.enqueue = counted, tracked(device_tensors), tracked(enqueue)
    Detector(backend, stages=stages).run(load(SAMPLES[0]))
    assert seen and all(d == 1 for d in seen), seen


def test_a_moved_frame_buffer_makes_the_graph_capture_again(cuda, default_model, monkeypatch):
    """The graph froze the staging and device-frame addresses: once `frame_buffer()` moved them,
    the next frame captures again instead of replaying into freed memory."""
    from helpers.cuda import graph

    _, engine, stages = stand_in(default_model, graph=True)
    engine.recompute = False  # outputs as they are: the stand-in engine is capturable on a GPU too
    frame = load(SAMPLES[0])
    stages.run(frame, (640, 640), 0.5, 0.4)
    captures: list[int] = []
    capture = graph.CudaGraph.capture
    monkeypatch.setattr(graph.CudaGraph, "capture", lambda *a: captures.append(1) or capture(*a))
    held = stages.letterbox._staging[0], stages.letterbox._device[0]  # so new buffers cannot reuse them
    stages.frame_buffer((frame.shape[0] + 16, frame.shape[1] + 16, 3))
    buffer = stages.frame_buffer(frame.shape)
    buffer[...] = frame
    assert buffer.ctypes.data != held[0].ctypes.data and stages.letterbox._device[0] is not held[1]
    stages.run(buffer, (640, 640), 0.5, 0.4)
    assert captures == [1]
    stages.run(buffer, (640, 640), 0.5, 0.4)
    assert captures == [1] and stages.captured  # same addresses: a replay
    stages.close()


def bgr(images: list[np.ndarray]) -> list[np.ndarray]:
    """The GPU letterbox takes BGR (H, W, 3) frames: mixed_images' grayscale one, converted."""
    return [image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) for image in images]


@pytest.fixture(scope="module")
def batchable(tmp_path_factory):
    """scrfd_2.5g rewritten to a dynamic batch (its stock (rows, C) outputs mix the images)."""
    from helpers.batch.batchify import batchify

    return batchify(named_model("scrfd_2.5g"), cache_dir=tmp_path_factory.mktemp("batchable"))


def test_letterbox_kernel_writes_each_image_of_a_batch_into_its_slot(cuda):
    """One launch for frames of different shapes; a smaller batch of other shapes next."""
    import cupy

    letterbox = new_letterbox()
    frames = bgr(mixed_images())
    for chunk, size in ((frames[:4], (640, 480)), (frames[3:5], (320, 256)), (frames[:1], (640, 640))):
        with letterbox.stream:
            canvas = cupy.full((len(chunk), 3, size[1], size[0]), np.nan, np.float32)
        for slot, image in enumerate(chunk):
            letterbox.stage(image, slot)
        boxes = letterbox.enqueue(size, canvas.data.ptr, len(chunk))
        got = canvas.get(stream=letterbox.stream)
        for i, image in enumerate(chunk):
            np.testing.assert_array_equal(got[i], model_blob(image, size)[0][0], err_msg=f"slot {i}")
            assert boxes[i] == fit(image.shape[:2], size)


def assert_batch_is_each_images_own(engine, layout, found, images, threshold) -> None:
    """On the outputs the GPU decoded: each image's candidates are the CPU path's on its own rows."""
    outputs = engine.backend.run({engine.inputs[0].name: engine.input()})
    assert len(found) == len(images)
    for i, detection in enumerate(found):
        size = detection.letterbox.width, detection.letterbox.height
        want = candidates(image_outputs(outputs, i), layout, size, threshold)
        for field in ("boxes", "scores", "landmarks", "stride", "row"):
            np.testing.assert_array_equal(getattr(detection.candidates, field), getattr(want, field))


def test_gpu_stages_batch_gives_each_image_its_own_faces(cuda, batchable):
    """Mixed sizes, batches of 4, a partial 2 and 1: the one-at-a-time CPU faces per image, and the
    CPU path's candidates exactly on the very outputs the GPU decoded."""
    backend, engine, stages = stand_in(batchable)
    single = Detector(backend, (640, 480))
    batched = Detector(backend, (640, 480), stages=stages)
    images = bgr(mixed_images())
    for chunk in (images[:4], images[4:], images[:1]):
        found = batched.run_batch(chunk)
        assert_batch_is_each_images_own(engine, single.layout, found, chunk, 0.5)
        for image, detection in zip(chunk, found, strict=True):
            assert_close_faces(single.run(image).faces, detection.faces)
    assert sum(len(d.faces) for d in found) > 0


@pytest.mark.parametrize("landmarks", [True, False])
def test_gpu_decode_reads_each_image_of_raw_maps(cuda, tmp_path, landmarks):
    """(N, A*C, H, W) maps: image b's rows start b * rows * C into each map."""
    from synthetic import scrfd_like

    from helpers.batch.batchify import batchify

    path = batchify(scrfd_like(tmp_path / "m.onnx", (8, 16, 32), 2, landmarks, 4), cache_dir=tmp_path)
    backend, engine, stages = stand_in(path)
    detector = Detector(backend, (640, 480), score_threshold=0.3, stages=stages)
    images = bgr(mixed_images())[:3]
    found = detector.run_batch(images)
    assert all(len(d.candidates) for d in found)
    assert_batch_is_each_images_own(engine, Detector(backend, (640, 480)).layout, found, images, 0.3)


def test_graphs_are_captured_again_when_the_batch_changes(cuda, batchable, monkeypatch):
    """Frames of the same shapes but new pixels replay; a batch of another size changes the
    engine's input shape, so it captures again (TensorRT wants that after a shape change), and so
    does the return to the first size. Each replay letterboxes its own frames and decodes what a
    direct run decodes on the same (fixed) outputs."""
    from helpers.cuda import graph
    from helpers.gpu.stages import GpuStages

    _, engine, graphed = stand_in(batchable, graph=True)
    direct = GpuStages(engine)
    images = bgr(mixed_images())
    direct.run_batch(images[:3], (640, 480), 0.5, 0.4)  # real outputs for a batch of 3 in place
    engine.recompute = False  # outputs as they are: capturable on a GPU too
    captures: list[int] = []
    capture = graph.CudaGraph.capture
    monkeypatch.setattr(graph.CudaGraph, "capture", lambda *a: captures.append(1) or capture(*a))
    rng = np.random.default_rng(3)
    noise = [rng.integers(0, 256, image.shape, np.uint8) for image in images[:3]]
    for chunk, captured in ((images[:3], 1), (noise, 1), (noise[:2], 2), (images[:2], 2), (images[:3], 3)):
        got = graphed.run_batch(chunk, (640, 480), 0.5, 0.4)
        assert len(captures) == captured
        blob = engine.input()
        for i, image in enumerate(chunk):
            np.testing.assert_array_equal(blob[i], model_blob(image, (640, 480))[0][0])
        want = direct.run_batch(chunk, (640, 480), 0.5, 0.4)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g.candidates.boxes, w.candidates.boxes)
        assert graphed.captured
    graphed.close()


@pytest.fixture
def tensorrt_backend(gpu, model_path):
    from helpers.trt.backend import TensorRTBackend, tensorrt_available

    ok, why = tensorrt_available()
    if not ok:
        pytest.skip(f"TensorRT not installed or not usable here: {why}")
    backend = TensorRTBackend(model_path, progress=False)
    yield backend
    backend.close()


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.parametrize("graph", [False, True])
def test_tensorrt_engine_with_gpu_stages_finds_the_cpu_faces(tensorrt_backend, model_path, graph):
    from helpers.gpu.stages import GpuStages

    stages = GpuStages(tensorrt_backend, graph=graph, timed=True)
    gpu_detector = Detector(tensorrt_backend, stages=stages)
    cpu_detector = Detector(OnnxRuntimeBackend(model_path, ["CPUExecutionProvider"]))
    for name in IMAGES + SAMPLES:
        image = load(name)
        for _ in range(2):  # the second run of a graph is a replay
            assert_close_faces(cpu_detector.detect(image), gpu_detector.detect(image))
    assert stages.gpu_ms["total"] > 0
    stages.close()


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_cpu_letterbox_writes_into_the_pinned_input(tensorrt_backend, model_path):
    """Detector's CPU path on TensorRT: the blob goes straight into the engine's host buffer."""
    cpu_detector = Detector(OnnxRuntimeBackend(model_path, ["CPUExecutionProvider"]))
    detector = Detector(tensorrt_backend)
    for name in IMAGES + SAMPLES:
        image = load(name)
        assert_close_faces(cpu_detector.detect(image), detector.detect(image))
    name = detector.input_name
    blob, _ = cpu_detector._prep(load("t1.jpg"), detector.input_size)
    detector.detect(load("t1.jpg"))
    np.testing.assert_array_equal(tensorrt_backend.buffers.buffers[name].host, blob)
