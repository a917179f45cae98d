"""The CUDA layer on a real GPU: contexts per thread, buffers, events, graphs (marker `gpu`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from helpers.cuda.check import CudaError, call
from helpers.cuda.context import CudaContext, current_context, run_in_thread
from helpers.cuda.demos import compile_kernels, context_mismatch, decode_standin, fixes, gpu_check
from helpers.cuda.doctor import doctor
from helpers.cuda.graph import CudaGraph, GraphCaptureError
from helpers.cuda.memory import HostDeviceBuffer
from helpers.cuda.stream import EventTimer, Stream
from helpers.errors import UserError

pytestmark = pytest.mark.gpu


def _require_gpu() -> None:
    try:
        import pycuda.driver as drv
        from cuda.bindings import runtime  # noqa: F401

        drv.init()
        if drv.Device.count() == 0:
            raise RuntimeError("0 devices")
    except Exception as exc:
        pytest.skip(f"no CUDA GPU / pycuda / cuda-python here ({type(exc).__name__}: {exc})")


@pytest.fixture(scope="module")
def ctx() -> Iterator[CudaContext]:
    _require_gpu()
    context = CudaContext.primary()
    yield context
    context.release()


@pytest.fixture
def stream(ctx: CudaContext) -> Iterator[Stream]:
    with ctx.activate():
        made = Stream(ctx)
        yield made
        made.close()


def test_activate_nests_and_restores(ctx: CudaContext) -> None:
    before = current_context()
    with ctx.activate():
        inside = current_context()
        with ctx.activate():
            assert current_context().handle == ctx.handle
        assert current_context() == inside
    assert (inside.handle, inside.is_primary) == (ctx.handle, True)
    assert current_context() == before


def test_private_context_is_popped_and_released_cleanly() -> None:
    _require_gpu()
    before = current_context()
    private = CudaContext.private()
    assert current_context() == before
    with private.activate():
        assert current_context().is_primary is False
    private.release()
    private.release()
    assert current_context() == before
    with pytest.raises(UserError, match="released"), private.activate():
        pass


def test_release_of_primary_leaves_thread_as_it_was() -> None:
    _require_gpu()
    before = current_context()
    CudaContext.primary().release()  # pycuda alone would leave it pushed here
    assert current_context() == before


def test_new_threads_start_without_context_and_run_in_thread_fixes_it(ctx: CudaContext) -> None:
    with ThreadPoolExecutor(1) as pool:
        bare = pool.submit(current_context).result()
    assert bare.handle is None
    worker = run_in_thread(ctx, current_context)
    assert (worker.handle, worker.is_primary) == (ctx.handle, True)
    assert worker.thread.startswith("cuda-worker")
    assert worker.thread != threading.current_thread().name


def test_buffer_round_trip_alignment_and_free(ctx: CudaContext, stream: Stream) -> None:
    with ctx.activate():
        buf = HostDeviceBuffer((3, 5), np.float32, ctx)
        assert buf.nbytes == 60 and buf.device_ptr % 256 == 0
        buf.host[:] = np.arange(15, dtype=np.float32).reshape(3, 5)
        buf.copy_to_device(stream)
        buf.host[:] = 0
        buf.copy_to_host(stream)
        stream.synchronize()
        np.testing.assert_array_equal(buf.host.ravel(), np.arange(15))
        buf.free()
        buf.free()
    with pytest.raises(ValueError, match="freed"):
        _ = buf.device_ptr


@pytest.mark.parametrize("on_stream", [False, True], ids=["sync", "async-on-stream"])
@pytest.mark.parametrize(("dtype", "value"), [(np.float32, np.nan), (np.float16, np.nan), (np.int32, -1)])
def test_poison_fills_the_device(
    ctx: CudaContext, stream: Stream, dtype: Any, value: float, on_stream: bool
) -> None:
    with ctx.activate(), HostDeviceBuffer((7,), dtype, ctx) as buf:
        buf.poison(value, stream=stream if on_stream else None)
        buf.host[:] = 0
        buf.copy_to_host(stream)
        stream.synchronize()
        expected = np.full(7, value, dtype)
        np.testing.assert_array_equal(buf.host, expected)
        if dtype == np.float32:
            assert buf.host.view(np.uint32)[0] == 0x7FC00000


def test_event_timer_reads_after_synchronize(ctx: CudaContext, stream: Stream) -> None:
    with ctx.activate(), HostDeviceBuffer((1, 3, 640, 640), np.float32, ctx) as buf:
        timer = EventTimer(stream)
        for _ in range(2):  # events are reused across iterations
            timer.mark("start")
            buf.copy_to_device(stream)
            timer.mark("copy_in")
            stream.synchronize()
            laps = timer.read()
        assert list(laps) == ["copy_in", "total"]
        assert 0 < laps["copy_in"] == laps["total"] < 100


def _copy_pipeline(src: HostDeviceBuffer, dst: HostDeviceBuffer, stream: Stream) -> Any:
    import pycuda.driver as drv

    def enqueue(handle: int) -> bool:
        assert handle == stream.handle
        src.copy_to_device(stream)
        drv.memcpy_dtod_async(dst.device_ptr, src.device_ptr, src.nbytes, stream.raw)
        dst.copy_to_host(stream)
        return True

    return enqueue


def test_graph_replays_work_captured_on_a_pycuda_stream(ctx: CudaContext, stream: Stream) -> None:
    with (
        ctx.activate(),
        HostDeviceBuffer((1024,), np.float32, ctx) as src,
        HostDeviceBuffer((1024,), np.float32, ctx) as dst,
    ):
        src.host[:] = 1
        with CudaGraph.capture(_copy_pipeline(src, dst, stream), stream.handle) as graph:
            src.host[:] = np.arange(1024)  # the graph reads the host array at replay time
            dst.poison()
            graph.replay(stream.handle)
            stream.synchronize()
            np.testing.assert_array_equal(dst.host, np.arange(1024))


def test_graph_capture_refusal_ends_capture_and_keeps_stream_usable(ctx: CudaContext, stream: Stream) -> None:
    from cuda.bindings import runtime as cudart

    calls = []

    def enqueue(handle: int) -> bool:
        calls.append(handle)
        return len(calls) == 1  # fine in the warm-up, refused while capturing

    with ctx.activate():
        with pytest.raises(GraphCaptureError, match="returned False during CUDA graph capture"):
            CudaGraph.capture(enqueue, stream.handle)
        status = call(cudart.cudaStreamIsCapturing, stream.handle)
        assert status == cudart.cudaStreamCaptureStatus.cudaStreamCaptureStatusNone
        assert call(cudart.cudaGetLastError) is None
        stream.synchronize()


def test_check_raises_named_cuda_error() -> None:
    _require_gpu()
    from cuda.bindings import runtime as cudart

    with pytest.raises(CudaError, match=r"^cudaSetDevice failed: cudaErrorInvalidDevice"):
        call(cudart.cudaSetDevice, 9999)


def test_doctor_sees_gpu_and_primary_context(ctx: CudaContext) -> None:
    with ctx.activate():
        report = doctor()
    assert report["gpu"]["available"] is True
    assert report["gpu"]["devices"][0]["compute_capability"]
    assert report["context"]["is_primary"] is True


@pytest.fixture(scope="module")
def cubin() -> bytes:
    _require_gpu()
    ok, why = gpu_check()
    if not ok:
        pytest.skip(why)
    return compile_kernels()[0]


def test_foreign_stream_launch_fails_unwritten_and_every_fix_writes(cubin: bytes) -> None:
    bug = context_mismatch(cubin)
    assert bug.status == "CUDA_ERROR_INVALID_HANDLE"
    assert not bug.written and len(decode_standin(bug.output)) == 0
    for fix in fixes(cubin):
        assert (fix.name, fix.status, fix.written) == (fix.name, "CUDA_SUCCESS", True)
        assert len(decode_standin(fix.output)) == 1
