"""Stand-in demonstrations: the SCRFD context failure, its fixes, stale reads, three ways to run.

TensorRT cannot run on every machine this workbook does (nor on the H100 the evidence was
recorded on), so small kernels launched through the CUDA driver stand in for an engine's
kernels, on buffers of SCRFD's I/O sizes. What they show is CUDA behaviour TensorRT meets in
the same way (which context a thread has, what a stream of another context does, when host
memory is fresh); the compute is not SCRFD's. Notebooks 03 and 05 and scripts/gpu_evidence.py
call these functions; pycuda and cuda-python load only when one runs.
"""

from __future__ import annotations

import ctypes
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

import numpy as np

from helpers.anchors import centres
from helpers.cuda import bindings
from helpers.cuda.check import call, check, error_name
from helpers.cuda.context import CudaContext, current_context, pycuda_driver, run_in_thread
from helpers.cuda.evidence import ratios
from helpers.cuda.memory import HostDeviceBuffer
from helpers.cuda.stream import EventTimer, Stream, time_runs
from helpers.decode import candidates
from helpers.detections import Faces
from helpers.errors import UserError
from helpers.layout import Layout, infer_layout
from helpers.nms import nms

T = TypeVar("T")
Attempt = tuple[str, str]  # (context current on the launching thread, launch status)

SOURCE = r"""
extern "C" __global__ void head(const float* __restrict__ x, int n_in, float* __restrict__ y,
                                int n_out, int taps) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_out) return;
    float acc = 0.f;
    for (int t = 0; t < taps; ++t) acc += x[(i * 97 + t * 7919) % n_in] / (float)(t + 1);
    y[i] = acc;
}
extern "C" __global__ void emit(const float* __restrict__ answer, float* __restrict__ y, int n,
                                long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = answer[i];
}
"""
CANVAS = 640
STRIDES = (8, 16, 32)
ANCHORS = 2
INPUT_SHAPE = (1, 3, CANVAS, CANVAS)
OUTPUT_SHAPE = (16800, 15)  # 16800 anchors at 640x640 x (1 score + 4 box + 10 landmark values)
PLANTED_BOX = (232.0, 168.0, 408.0, 392.0)
_MARKS = np.array([[0.32, 0.4], [0.68, 0.4], [0.5, 0.58], [0.36, 0.76], [0.64, 0.76]])  # in the box
BENCH_TAPS = 32
SPIN_CYCLES = 100_000_000  # about 50 ms at an H100's boost clock: long enough to read too early
WORKER = "camera-worker"


# ---- the stand-in engine's answer, and how the workbook decodes it (pure, CPU) ----


@cache
def _planted(box: tuple[float, float, float, float]) -> np.ndarray:
    table = np.zeros(OUTPUT_SHAPE, np.float32)
    table[:, 0], table[:, 1:5] = 0.01, 1.0
    x1, y1, x2, y2 = box
    marks = np.array([x1, y1]) + _MARKS * [x2 - x1, y2 - y1]
    stride, start = 16, (CANVAS // 8) ** 2 * ANCHORS
    side = CANVAS // stride
    cell = round((y1 + y2) / 2 / stride) * side + round((x1 + x2) / 2 / stride)
    for anchor, score in enumerate((0.9, 0.85)):
        row = cell * ANCHORS + anchor
        px, py = centres(side, side, stride, ANCHORS)[row]
        table[start + row, 0] = score
        table[start + row, 1:5] = np.array([px - x1, py - y1, x2 - px, y2 - py]) / stride
        table[start + row, 5:] = ((marks - [px, py]) / stride).ravel()
    table.flags.writeable = False
    return table


def planted_output(box: tuple[float, float, float, float] = PLANTED_BOX) -> np.ndarray:
    """What a working engine returns for a 640x640 canvas holding one face: SCRFD's 16800 x 15 rows.

    Columns: score, 4 box distances and 10 landmark offsets (in strides); levels 8, 16, 32 one
    after the other. Two anchors at stride 16 score 0.9 and 0.85 for `box`, every other row
    0.01. The stand-in engine "computes" exactly this, so a run either decodes to this face or,
    if its output was never written, to none.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    return _planted((x1, y1, x2, y2)).copy()


def standin_outputs(table: np.ndarray) -> tuple[dict[str, np.ndarray], Layout]:
    """The table split into SCRFD's nine named outputs, and their layout (found from shapes)."""
    outputs: dict[str, np.ndarray] = {}
    start = 0
    for stride in STRIDES:
        part = table[start : start + (CANVAS // stride) ** 2 * ANCHORS]
        start += len(part)
        outputs |= {
            f"score_{stride}": part[:, :1],
            f"bbox_{stride}": part[:, 1:5],
            f"kps_{stride}": part[:, 5:],
        }
    layout = infer_layout({name: a.shape for name, a in outputs.items()}, CANVAS, CANVAS, False)
    return outputs, layout


def decode_standin(table: np.ndarray, threshold: float = 0.5, nms_threshold: float = 0.4) -> Faces:
    """The detector's post-processing on the table: helpers.decode.candidates, then helpers.nms."""
    outputs, layout = standin_outputs(table)
    found = candidates(outputs, layout, (CANVAS, CANVAS), threshold)
    return found[nms(found.boxes, found.scores, nms_threshold)]


def describe_output(output: np.ndarray, poison: float = np.nan) -> str:
    """One line on what an output buffer holds: the engine's answer, still poison, or other."""
    if np.array_equal(output, planted_output()):
        return "the engine's answer (written)"
    unwritten = np.isnan(output).all() if np.isnan(poison) else (output == poison).all()
    return f"all {poison} (not written)" if unwritten else "partly written / other values"


# ---- the GPU side ----


def find_nvcc() -> str | None:
    """nvcc on PATH, else CUDA's usual install path."""
    return shutil.which("nvcc") or shutil.which("/usr/local/cuda/bin/nvcc")


def gpu_check() -> tuple[bool, str]:
    """Whether the live cells can run here (pycuda, cuda-python, a GPU, nvcc), and what was found."""
    try:
        import cuda.bindings  # noqa: F401

        drv = pycuda_driver()
        count = drv.Device.count()
    except Exception as exc:  # no pycuda, no cuda-python, no driver: all mean "no live GPU cells"
        return False, f"no GPU cells here ({type(exc).__name__}: {exc})"
    if count == 0:
        return False, "no GPU cells here: the CUDA driver reports 0 devices"
    if find_nvcc() is None:
        return False, "no GPU cells here: nvcc (needed to build the stand-in kernels) is not on PATH"
    major, minor = drv.Device(0).compute_capability()
    return True, f"GPU: {drv.Device(0).name()} (sm {major}.{minor}); the cells below run live"


def compile_kernels() -> tuple[bytes, str]:
    """The stand-in kernels compiled with nvcc (through pycuda) for GPU 0, and how."""
    from pycuda.compiler import compile as nvcc_compile

    nvcc = find_nvcc()
    if nvcc is None:
        raise UserError("nvcc is not on PATH: install the CUDA toolkit to build the stand-in kernels")
    major, minor = pycuda_driver().Device(0).compute_capability()
    cubin = nvcc_compile(SOURCE, nvcc=nvcc, arch=f"sm_{major}{minor}", no_extern_c=True)
    return cubin, f"nvcc ({nvcc}) via pycuda.compiler, sm_{major}{minor}"


class Kernels:
    """The stand-in kernels, loaded into the context current on the calling thread.

    That is what the CUDA runtime does with every kernel it launches: it loads it into
    whatever context is current. Launches
    return their raw status, which callers may (wrongly, like the SCRFD report) ignore.
    """

    def __init__(self, cubin: bytes) -> None:
        driver = bindings.driver()
        self._driver = driver
        self.module = call(driver.cuModuleLoadData, np.frombuffer(cubin, np.uint8).ctypes.data)
        self._head = call(driver.cuModuleGetFunction, self.module, b"head")
        self._emit = call(driver.cuModuleGetFunction, self.module, b"emit")

    def _launch(self, fn: Any, n: int, stream: int, values: tuple, types: tuple) -> Any:
        grid = (n + 255) // 256
        return self._driver.cuLaunchKernel(fn, grid, 1, 1, 256, 1, 1, 0, stream, (values, types), 0)[0]

    def head(self, stream: int, x: HostDeviceBuffer, y: HostDeviceBuffer, taps: int) -> Any:
        """Compute stand-in: every output reads `taps` scattered inputs (for timing)."""
        values = (x.device_ptr, x.host.size, y.device_ptr, y.host.size, taps)
        types = (ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int)
        return self._launch(self._head, y.host.size, stream, values, types)

    def emit(self, stream: int, answer: HostDeviceBuffer, y: HostDeviceBuffer, cycles: int = 0) -> Any:
        """Engine stand-in: spin `cycles` clocks, then write the planted answer into `y`."""
        values = (answer.device_ptr, y.device_ptr, y.host.size, cycles)
        types = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong)
        return self._launch(self._emit, y.host.size, stream, values, types)

    def unload(self) -> None:
        call(self._driver.cuModuleUnload, self.module)


def expected_head(x: np.ndarray, n_out: int, taps: int) -> np.ndarray:
    """What `head` computes, in float64 NumPy."""
    flat = x.reshape(-1).astype(np.float64)
    i = np.arange(n_out, dtype=np.int64)[:, None]
    t = np.arange(taps, dtype=np.int64)[None, :]
    return (flat[(i * 97 + t * 7919) % flat.size] / (t + 1)).sum(axis=1)


def in_worker(fn: Callable[[], T]) -> T:
    """Run fn on a plain new thread, as the SCRFD report's per-camera workers do; re-raise."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except Exception as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, name=WORKER)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def runtime_call() -> None:
    """A first CUDA runtime call, as TensorRT makes: with no context current, it makes the primary one."""
    call(bindings.runtime().cudaFree, 0)


def error_text(fn: Callable[[], Any]) -> str:
    """What calling fn raises, as 'Type: message' ('no error' if nothing)."""
    try:
        fn()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


@contextmanager
def engine_buffers(ctx: CudaContext) -> Iterator[tuple[Stream, HostDeviceBuffer, HostDeviceBuffer]]:
    """A stream, the engine's answer on the device and an output buffer, all made in `ctx`."""
    with ctx.activate():
        stream = Stream(ctx)
        answer = HostDeviceBuffer(OUTPUT_SHAPE, np.float32, ctx)
        output = HostDeviceBuffer(OUTPUT_SHAPE, np.float32, ctx)
        answer.host[:] = planted_output()
        answer.copy_to_device(stream)
        stream.synchronize()
    try:
        yield stream, answer, output
    finally:
        with ctx.activate():
            answer.free()
            output.free()
            stream.close()


@dataclass(frozen=True)
class Launch:
    """One stand-in enqueue: where it ran, what the launch returned, what the output holds."""

    name: str
    how: str
    context: str  # the context current on the launching thread
    status: str
    output: np.ndarray = field(repr=False)
    poison: float = np.nan

    @property
    def written(self) -> bool:
        return bool(np.array_equal(self.output, planted_output()))

    def __str__(self) -> str:
        return (
            f"{self.how}\n  launched in: {self.context}\n  launch status: {self.status}\n"
            f"  output: {describe_output(self.output, self.poison)}"
        )


def _launch_here(cubin: bytes, stream: Stream, answer: HostDeviceBuffer, output: HostDeviceBuffer) -> Attempt:
    """Enqueue the engine stand-in on `stream` from the calling thread, as TensorRT would."""
    runtime_call()
    kernels = Kernels(cubin)
    status = error_name(kernels.emit(stream.handle, answer, output))
    kernels.unload()
    return str(current_context()), status


def _scenario(
    cubin: bytes,
    name: str,
    how: str,
    ctx: CudaContext,
    launch_with: Callable[[Callable[[], Attempt]], Attempt],
    poison: float = np.nan,
) -> Launch:
    """Objects in `ctx`, output poisoned, one enqueue via `launch_with`, output read back."""
    with engine_buffers(ctx) as (stream, answer, output):
        with ctx.activate():
            output.poison(poison)
        context, status = launch_with(lambda: _launch_here(cubin, stream, answer, output))
        with ctx.activate():
            output.copy_to_host(stream)
            stream.synchronize()
            host = output.host.copy()
    return Launch(name, how, context, status, host, poison)


def _with(ctx: CudaContext) -> Callable[[Callable[[], T]], T]:
    """A launcher that runs the work on this thread with `ctx` current."""

    def launch(fn: Callable[[], T]) -> T:
        with ctx.activate():
            return fn()

    return launch


def context_mismatch(cubin: bytes, poison: float = np.nan) -> Launch:
    """The SCRFD failure: objects of a pycuda.autoinit-style private context, enqueue from a worker.

    In the worker the runtime makes the primary context current, the kernels land there, and
    the stream belongs to the private context: the launch fails, and its status is ignored.
    """
    private = CudaContext.private()
    try:
        how = "the bug: stream and buffers of a private context, enqueue from a plain worker thread"
        return _scenario(cubin, "bug", how, private, in_worker, poison)
    finally:
        private.release()


def fixes(cubin: bytes) -> list[Launch]:
    """The three fixes, each on fresh objects: one thread; push in the worker; primary everywhere."""
    private, primary = CudaContext.private(), CudaContext.primary()
    try:
        return [
            _scenario(
                cubin, "fix_one_thread", "fix 1: everything on one thread, its context current",
                private, _with(private),
            ),
            _scenario(
                cubin, "fix_push_in_worker", "fix 2: the worker pushes the objects' context (run_in_thread)",
                private, lambda fn: run_in_thread(private, fn),
            ),
            _scenario(
                cubin, "fix_primary_everywhere", "fix 3: objects in the primary context, plain worker",
                primary, in_worker,
            ),
        ]  # fmt: skip
    finally:
        private.release()
        primary.release()


def foreign_stream_observations(cubin: bytes) -> dict[str, str]:
    """What else happens in the worker (primary current) with a private context's stream.

    A copy on that stream still succeeds, so the output copy brings back whatever the buffer
    held; only kernels of the current context fail on it. That is why the report saw zeros,
    not an exception.
    """
    cudart = bindings.runtime()
    private = CudaContext.private()
    with engine_buffers(private) as (stream, answer, output):
        with private.activate():
            kernels = Kernels(cubin)
            module = pycuda_driver().module_from_buffer(cubin)
            emit = module.get_function("emit")

        def observe() -> dict[str, str]:
            runtime_call()
            d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
            copy = cudart.cudaMemcpyAsync(
                output.host.ctypes.data, output.device_ptr, output.nbytes, d2h, stream.handle
            )
            n = output.host.size
            args = (np.intp(answer.device_ptr), np.intp(output.device_ptr), np.int32(n), np.int64(0))
            return {
                "cudart_copy_on_private_stream": error_name(copy[0]),
                "kernel_and_stream_of_private_ctx": error_name(kernels.emit(stream.handle, answer, output)),
                "pycuda_launch_of_private_kernel": error_text(
                    lambda: emit(*args, block=(256, 1, 1), grid=((n + 255) // 256, 1), stream=stream.raw)
                ),
            }

        observed = in_worker(observe)
        with private.activate():
            stream.synchronize()
            kernels.unload()
            module = emit = None  # unload pycuda's module while its context is current
    private.release()
    return observed


def cuda_init_creates_no_context() -> dict[str, str]:
    """The forum's `cuda.init()` fix, in a fresh thread: still no context, so pycuda objects fail."""

    def probe() -> dict[str, str]:
        drv = pycuda_driver()  # = cuda.init()
        return {
            "context after cuda.init()": str(current_context()),
            "cuda.Stream() then": error_text(drv.Stream),
        }

    return in_worker(probe)


@dataclass(frozen=True)
class EarlyRead:
    """An async copy read before and after `stream.synchronize()`."""

    status: str
    done_when_read: bool
    early: np.ndarray = field(repr=False)
    timer_before_sync: str
    late: np.ndarray = field(repr=False)
    elapsed_ms: float

    def __str__(self) -> str:
        return (
            f"launch status: {self.status}; stream finished when read: {self.done_when_read}\n"
            f"  read before synchronize: {describe_output(self.early, 0.0)}\n"
            f"  EventTimer.read() before synchronize: {self.timer_before_sync}\n"
            f"  read after synchronize:  {describe_output(self.late, 0.0)}"
            f" ({self.elapsed_ms:.1f} ms of GPU work)"
        )


def read_before_sync(cubin: bytes, ctx: CudaContext, cycles: int = SPIN_CYCLES) -> EarlyRead:
    """Enqueue a slow engine stand-in and the output copy, read the host buffer at once, then properly."""
    with engine_buffers(ctx) as (stream, answer, output), ctx.activate():
        kernels = Kernels(cubin)
        output.poison(0.0)
        timer = EventTimer(stream)
        timer.mark("start")
        status = error_name(kernels.emit(stream.handle, answer, output, cycles))
        output.copy_to_host(stream)
        timer.mark("end")
        early, done = output.host.copy(), stream.is_done()  # the bug: no synchronize
        too_soon = error_text(timer.read)
        stream.synchronize()
        result = EarlyRead(status, done, early, too_soon, output.host.copy(), timer.read()["total"])
        kernels.unload()
    return result


def benchmark(cubin: bytes, ctx: CudaContext, warmup: int = 30, iterations: int = 300) -> dict[str, Any]:
    """The three ways to run, with the `head` stand-in on SCRFD-sized buffers, CUDA-event timed.

    "v2-like": blocking copies and a launch on the default stream, then a device synchronize.
    "v3-like": async copy in, launch, async copy out on a created stream, one synchronize.
    "graph": that v3-like enqueue captured once (after a warm-up) and replayed.
    """
    import pycuda.driver as drv

    with ctx.activate():
        stream = Stream(ctx)
        x = HostDeviceBuffer(INPUT_SHAPE, np.float32, ctx)
        y = HostDeviceBuffer(OUTPUT_SHAPE, np.float32, ctx)
        x.host[:] = np.random.default_rng(2).standard_normal(INPUT_SHAPE, dtype=np.float32)
        kernels = Kernels(cubin)

        def sync_iteration(timer: EventTimer) -> None:
            timer.mark("start")
            drv.memcpy_htod(x.device_ptr, x.host)
            timer.mark("copy_in")
            check(kernels.head(0, x, y, BENCH_TAPS), "cuLaunchKernel")
            timer.mark("compute")
            drv.Context.synchronize()
            drv.memcpy_dtoh(y.host, y.device_ptr)
            timer.mark("copy_out")
            drv.Context.synchronize()

        def async_iteration(timer: EventTimer) -> None:
            timer.mark("start")
            x.copy_to_device(stream)
            timer.mark("copy_in")
            check(kernels.head(stream.handle, x, y, BENCH_TAPS), "cuLaunchKernel")
            timer.mark("compute")
            y.copy_to_host(stream)
            timer.mark("copy_out")
            stream.synchronize()

        def enqueue(handle: int) -> bool:
            x.copy_to_device(stream)
            status = kernels.head(handle, x, y, BENCH_TAPS)
            y.copy_to_host(stream)
            return error_name(status) == "CUDA_SUCCESS"

        from helpers.cuda.graph import CudaGraph

        graph = CudaGraph.capture(enqueue, stream.handle)

        def graph_iteration(timer: EventTimer) -> None:
            timer.mark("start")
            graph.replay(stream.handle)
            timer.mark("graph")
            stream.synchronize()

        variants = {
            name: time_runs(_reading(iteration, EventTimer(on)), warmup, iterations)
            for name, iteration, on in (
                ("v2_like_sync", sync_iteration, None),
                ("v3_like_async", async_iteration, stream),
                ("graph_replay", graph_iteration, stream),
            )
        }
        y.poison()
        graph.replay(stream.handle)
        stream.synchronize()
        want = expected_head(x.host, 4096, BENCH_TAPS)
        correct = bool(np.allclose(y.host.ravel()[:4096], want, rtol=1e-4, atol=1e-4))
        graph.close()
        kernels.unload()
        x.free()
        y.free()
        stream.close()
    return {"variants": variants, "ratios_of_medians": ratios(variants), "graph_output_correct": correct}


def _reading(iteration: Callable[[EventTimer], None], timer: EventTimer) -> Callable[[], dict[str, float]]:
    """One iteration that marks `timer`, then its laps (the iteration ends synchronized)."""

    def step() -> dict[str, float]:
        iteration(timer)
        return timer.read()

    return step
