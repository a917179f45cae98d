"""TensorRT detection, versions, the logger's book, I/O matching, layout by name, run errors."""

from __future__ import annotations

import io
import sys
import types

import numpy as np
import pytest

from helpers.errors import UserError
from helpers.layout import infer_layout
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.trt.backend import tensorrt_available
from helpers.trt.bindings import match_inputs, output_layout, unset_inputs_error
from helpers.trt.runner import METHODS, check_method, enqueue_failure
from helpers.trt.runtime import LogBook, load_tensorrt, major_version, parse_version, tensorrt_status
from helpers.trt.specs import Profile, TensorSpec

REAL_TENSORRT = tensorrt_status()[0]
PROFILE = Profile((1, 3, 128, 128), (1, 3, 640, 640), (1, 3, 640, 640))
IMAGE = TensorSpec("input.1", 0, True, "float32", (1, 3, -1, -1), PROFILE)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("10.13.0.35", (10, 13, 0, 35)),
        ("11.4.0.106", (11, 4, 0, 106)),
        ("10.8.0.post1", (10, 8, 0)),
        ("9.3+cu12", (9, 3)),
    ],
)
def test_parse_version(text, parsed):
    assert parse_version(text) == parsed
    assert major_version(text) == parsed[0]


def test_unreadable_version_is_a_user_error():
    with pytest.raises(UserError, match="cannot read TensorRT version"):
        parse_version("unknown")


@pytest.mark.skipif(REAL_TENSORRT, reason="a real TensorRT is installed here")
def test_without_tensorrt_the_reason_says_so_and_how_to_install():
    ok, why = tensorrt_status()
    assert not ok and "TensorRT is not installed" in why and "pip install tensorrt" in why
    with pytest.raises(UserError, match="TensorRT is not installed"):
        load_tensorrt()
    available, reason = tensorrt_available()
    assert not available and "TensorRT is not installed" in reason


def test_log_book_keeps_warnings_and_errors_only():
    echo = io.StringIO()
    book = LogBook(keep=3, echo=echo)
    book.record("INFO", "chatty")
    book.record("VERBOSE", "chattier")
    book.record("WARNING", "careful")
    book.record("ERROR", "first\nsecond line")
    assert book.errors() == ["first\nsecond line"]
    assert book.last_error("none") == "first"
    assert echo.getvalue() == "[TensorRT] WARNING: careful\n[TensorRT] ERROR: first\nsecond line\n"
    for i in range(5):
        book.record("INTERNAL_ERROR", f"e{i}")
    assert book.errors() == ["e2", "e3", "e4"]
    book.clear()
    assert book.last_error("nothing logged") == "nothing logged"


def test_match_inputs_by_name_shape_and_dtype():
    image = np.zeros((1, 3, 480, 640), np.float32)
    assert match_inputs([IMAGE], {"input.1": image}) == {"input.1": (1, 3, 480, 640)}
    with pytest.raises(UserError, match=r"takes inputs \['input.1'\], got \['images'\]"):
        match_inputs([IMAGE], {"images": image})
    with pytest.raises(UserError, match="complex64"):
        match_inputs([IMAGE], {"input.1": image.astype(np.complex64)})
    with pytest.raises(UserError, match="outside the engine profile"):
        match_inputs([IMAGE], {"input.1": np.zeros((1, 3, 1280, 1280), np.float32)})


def test_unset_inputs_are_named():
    error = unset_inputs_error(["input.1"])
    assert "['input.1']" in str(error) and "set_input_shape" in str(error)


def test_layout_is_mapped_by_name_whatever_the_engine_order(model_path):
    """Real SCRFD output shapes at 640x480, listed in a shuffled 'engine' order."""
    backend = OnnxRuntimeBackend(model_path)
    fixed = model_path.stem == "scrfd_500m_bnkps"
    width, height = (640, 640) if fixed else (640, 480)
    outputs = backend.run({"input.1": np.zeros((1, 3, height, width), np.float32)})
    shapes = {name: array.shape for name, array in outputs.items()}
    names = list(reversed(list(shapes)))  # a different order than ONNX declares
    specs = [IMAGE if not fixed else TensorSpec("input.1", 0, True, "float32", (1, 3, 640, 640))]
    specs += [TensorSpec(n, i + 1, False, "float32", (-1,) * len(shapes[n])) for i, n in enumerate(names)]
    layout = output_layout(specs, shapes, width, height)
    assert layout == infer_layout(shapes, width, height, not fixed)
    for kind, per_stride in layout.outputs.items():
        for stride, name in per_stride.items():
            assert layout.rows(stride, width, height) == layout.as_rows(outputs[name]).shape[0]
            assert name.startswith(kind) or not name.startswith(("score", "bbox", "kps"))


def test_methods_and_failure_message():
    assert METHODS == ("v3", "v2", "graph")
    assert check_method("graph") == "graph"
    with pytest.raises(UserError, match="use one of v3, v2, graph"):
        check_method("v1")
    text = str(enqueue_failure("execute_async_v3", "Address is not set for input tensor input.1"))
    assert text.startswith("execute_async_v3 returned False (Address is not set")
    assert "python -m helpers doctor --explain" in text


class FakeCuda:
    """Stands in for CudaContext: activation is a no-op, release is counted."""

    def __init__(self) -> None:
        self.released = 0

    def activate(self):
        import contextlib

        return contextlib.nullcontext(self)

    def release(self) -> None:
        self.released += 1


class FakeBuffers:
    def __init__(self) -> None:
        self.specs, self.shapes, self.freed = [], {"input.1": (1, 3, 640, 640)}, False
        self.shape_changes = 0

    def addresses(self) -> dict:
        return {"input.1": 0x1000}

    def copy_inputs(self, stream) -> None: ...

    def copy_outputs(self, stream) -> None: ...

    def free(self) -> None:
        self.freed = True


class FakeStream:
    handle = 0x77

    def synchronize(self) -> None: ...

    def close(self) -> None: ...


def test_graph_capture_failing_in_a_cuda_call_falls_back_to_v3(monkeypatch):
    """Begin-capture, synchronize or instantiate raising CudaError must not bypass the fallback."""
    from helpers.cuda.check import CudaError
    from helpers.cuda.graph import CudaGraph
    from helpers.trt.runner import Runner

    enqueued = []

    class Context:
        def execute_async_v3(self, stream_handle):
            enqueued.append(stream_handle)
            return True

    def refuse(enqueue, stream):
        raise CudaError("cudaErrorStreamCaptureUnsupported", 900, "cudaStreamBeginCapture")

    monkeypatch.setattr(
        CudaGraph, "capture", classmethod(lambda cls, enqueue, stream: refuse(enqueue, stream))
    )
    runner = Runner(Context(), FakeBuffers(), FakeStream(), FakeCuda())
    with pytest.warns(UserWarning, match="CUDA graph capture failed .*StreamCaptureUnsupported"):
        runner.run("graph")
    runner.run("graph")  # remembered as uncapturable: no second attempt, no second warning
    assert enqueued == [0x77, 0x77]


class WatchedLock:
    """An RLock that says when another thread starts waiting for it: no sleeps in the tests."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.RLock()
        self.waiting = threading.Event()

    def acquire(self) -> bool:
        if not self._lock.acquire(blocking=False):
            self.waiting.set()
            self._lock.acquire()
        return True

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> WatchedLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def fake_backend(buffers, runner):
    """A TensorRTBackend over fakes: the real run, session and close logic, no GPU."""
    import weakref

    from helpers.trt.backend import TensorRTBackend, _Lane

    cuda = FakeCuda()
    lane = _Lane.__new__(_Lane)
    engine = types.SimpleNamespace(cuda=cuda, close=cuda.release, engine=object())
    lane.__dict__.update(
        engine=engine,
        owns_engine=True,
        cuda=cuda,
        context=object(),
        stream=FakeStream(),
        buffers=buffers,
        runner=runner,
        attached=weakref.WeakSet(),
    )
    backend = TensorRTBackend.__new__(TensorRTBackend)
    backend.__dict__.update(
        _lane=lane,
        loaded=engine,
        specs=[IMAGE],
        poison=False,
        method="v3",
        _lock=WatchedLock(),
        _closed=False,
        _finalizer=weakref.finalize(backend, lane.free),
    )
    return backend, cuda


def test_close_waits_for_a_run_in_progress_on_another_thread():
    """close() from one thread while another runs must not free buffers in use."""
    import threading

    buffers = FakeBuffers()
    backend, cuda = fake_backend(buffers, types.SimpleNamespace(close=lambda: None))
    backend._lock.acquire()  # a run holds the lock
    closer = threading.Thread(target=backend.close)
    closer.start()
    assert backend._lock.waiting.wait(5)  # close is blocked on the run's lock
    assert not buffers.freed and cuda.released == 0
    backend._lock.release()  # the run ends
    closer.join(5)
    assert buffers.freed and cuda.released == 1
    with pytest.raises(UserError, match="was closed"):
        backend.run({"input.1": np.zeros((1, 3, 640, 640), np.float32)})
    backend.close()  # idempotent
    assert cuda.released == 1


def test_in_place_input_keeps_other_threads_out_until_it_has_run():
    """A Detector on a shared backend writes the pinned input, then runs: another thread's run
    (which overwrites that buffer) or close (which frees it) must not come in between."""
    import threading

    class Buffers(FakeBuffers):
        def __init__(self) -> None:
            super().__init__()
            self.buffers = {"input.1": types.SimpleNamespace(host=np.zeros((1, 3, 640, 640), np.float32))}

        def set_shapes(self, shapes) -> bool:
            return False

        def load(self, arrays) -> None:
            np.copyto(self.buffers["input.1"].host, arrays["input.1"])

        def read_outputs(self) -> dict:
            return {"input.1": self.buffers["input.1"].host.copy()}

    buffers = Buffers()
    runner = types.SimpleNamespace(run=lambda method: None, close=lambda: None)
    backend, cuda = fake_backend(buffers, runner)
    ran = backend.run({"input.1": np.full((1, 3, 640, 640), 2.0, np.float32)})
    assert (ran["input.1"] == 2.0).all()
    with backend.input_array("input.1", (1, 3, 640, 640)) as target:
        target[...] = 1.0
        closer = threading.Thread(target=backend.close)
        closer.start()
        assert backend._lock.waiting.wait(5)
        assert not buffers.freed  # close waits for the prepared run
        outputs = backend.run_prepared()
    closer.join(5)
    assert (outputs["input.1"] == 1.0).all() and buffers.freed and cuda.released == 1


def test_a_backend_never_closed_is_freed_in_its_context_by_the_collector():
    """Dropped without close(): the finalizer frees the lane with its context pushed."""
    import gc

    buffers = FakeBuffers()
    backend, cuda = fake_backend(buffers, types.SimpleNamespace(close=lambda: None))
    del backend
    gc.collect()
    assert buffers.freed and cuda.released == 1


def test_stages_attached_to_a_backend_are_closed_before_it_frees():
    buffers = FakeBuffers()
    backend, _ = fake_backend(buffers, types.SimpleNamespace(close=lambda: None))
    order: list[str] = []

    class Stages:
        def close(self) -> None:
            order.append("stages" if not buffers.freed else "stages after free")

    stages = Stages()
    backend.attach(stages)
    backend.close()
    stages.close()  # after the backend's close: no error
    assert order == ["stages", "stages after free"]


def test_emulator_is_named_wherever_tensorrt_is_described(monkeypatch):
    from helpers.trt.runtime import EMULATOR, describe_tensorrt, is_emulator

    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(Builder=object, __version__="10.13.0"))
    assert not is_emulator() and describe_tensorrt("10.13.0") == "TensorRT 10.13.0"
    fake = types.SimpleNamespace(Builder=object, __version__="10.4.0", __trtemu__=True)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    assert is_emulator()
    assert describe_tensorrt("10.4.0") == f"{EMULATOR} 10.4.0" and "not TensorRT" in EMULATOR


def test_log_book_is_per_thread():
    """A worker's errors are its own: another thread neither reads nor clears them."""
    import threading

    book = LogBook(echo=None)
    book.clear()
    logged, cleared = threading.Event(), threading.Event()
    seen: dict[str, str] = {}

    def worker() -> None:
        book.clear()
        book.record("ERROR", "worker failed")
        logged.set()
        cleared.wait(5)
        seen["worker"] = book.last_error("lost")

    thread = threading.Thread(target=worker)
    thread.start()
    logged.wait(5)
    seen["main"] = book.last_error("nothing here")
    book.clear()  # clears the main thread's view only
    cleared.set()
    thread.join()
    assert seen == {"main": "nothing here", "worker": "worker failed"}


def test_log_book_shows_tensorrt_own_threads_to_every_caller():
    """Lines from a thread Python did not start (a builder's helper) reach whoever cleared before."""
    import _thread
    import threading

    book = LogBook(echo=None)
    book.clear()
    done = threading.Event()

    def foreign() -> None:
        book.record("ERROR", "from a builder thread")
        done.set()

    _thread.start_new_thread(foreign, ())
    done.wait(5)
    assert book.last_error("none") == "from a builder thread"
    book.clear()
    assert book.last_error("none") == "none"


class ShapeContext:
    """An execution context that derives an (N, 100, 1) output from an (N, 3, H, W) input."""

    def __init__(self) -> None:
        self.shape: tuple[int, ...] = ()
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name, shape) -> bool:
        self.shape = tuple(shape)
        return True

    def infer_shapes(self) -> list[str]:
        return []

    def get_tensor_shape(self, name):
        n, _, h, w = self.shape
        return self.shape if name == "input.1" else (n, h * w // 64, 1)

    def set_tensor_address(self, name, ptr) -> bool:
        self.addresses[name] = ptr
        return True


class HostOnlyBuffer:
    """HostDeviceBuffer's sizing logic over plain NumPy (the address is the host array's)."""

    made = 0

    def __init__(self, shape, dtype=np.float32, ctx=None) -> None:
        HostOnlyBuffer.made += 1
        self._flat = np.zeros(int(np.prod(shape)), dtype)
        self.host = self._flat.reshape(shape)
        self.device_ptr = self._flat.ctypes.data

    def reshape(self, shape) -> bool:
        count = int(np.prod(shape))
        if count > self._flat.size:
            return False
        self.host = self._flat[:count].reshape(shape)
        return True

    def free(self) -> None: ...


def test_buffers_keep_their_addresses_for_smaller_batches(monkeypatch):
    """A batch of 2 after one of 4 reuses the memory (graphs captured on it stay valid); only a
    tensor that outgrows its memory moves, and set_shapes says so."""
    from helpers.cuda import memory
    from helpers.trt.bindings import IOBuffers

    monkeypatch.setattr(memory, "HostDeviceBuffer", HostOnlyBuffer)
    output = TensorSpec("out", 1, False, "float32", (-1, -1, 1))
    context = ShapeContext()
    buffers = IOBuffers(context, [IMAGE, output], FakeCuda())
    assert buffers.set_shapes({"input.1": (4, 3, 64, 64)})  # first allocation
    first = buffers.addresses()
    assert not buffers.set_shapes({"input.1": (2, 3, 64, 64)})
    assert buffers.addresses() == first == context.addresses
    assert buffers.buffers["out"].host.shape == (2, 64, 1) and buffers.shapes["input.1"] == (2, 3, 64, 64)
    assert not buffers.set_shapes({"input.1": (4, 3, 32, 64)})  # smaller spatially: fits too
    assert buffers.set_shapes({"input.1": (5, 3, 64, 64)})  # outgrows: moves, addresses re-set
    assert buffers.addresses() != first and buffers.addresses() == context.addresses


def test_graph_method_captures_again_after_every_input_shape_change(monkeypatch):
    """TensorRT wants a new capture after a shape change (TensorRT#3798): alternating batches
    capture every time, the same batch replays, and a change made by another caller in between
    (the counter moved, the shapes look the same) captures too."""
    from helpers.cuda.graph import CudaGraph
    from helpers.trt.runner import Runner

    made: list[FakeGraph] = []

    class FakeGraph:
        def __init__(self, key) -> None:
            self.key, self.replays, self.closed = key, 0, False

        def replay(self, stream) -> None:
            self.replays += 1

        def close(self) -> None:
            self.closed = True

    buffers = FakeBuffers()
    monkeypatch.setattr(
        CudaGraph,
        "capture",
        classmethod(lambda cls, enqueue, stream: made.append(FakeGraph(dict(buffers.shapes))) or made[-1]),
    )
    runner = Runner(types.SimpleNamespace(), buffers, FakeStream(), FakeCuda())
    for n in (4, 4, 2, 4):
        if buffers.shapes["input.1"][0] != n:
            buffers.shapes, buffers.shape_changes = {"input.1": (n, 3, 640, 640)}, buffers.shape_changes + 1
        runner.run("graph")
    assert [g.key["input.1"][0] for g in made] == [4, 2, 4] and [g.replays for g in made] == [2, 1, 1]
    assert [g.closed for g in made] == [True, True, False]
    buffers.shape_changes += 1  # another caller went to another shape and back
    runner.run("graph")
    assert len(made) == 4 and made[2].closed
    runner.close()
    assert all(g.closed for g in made)
