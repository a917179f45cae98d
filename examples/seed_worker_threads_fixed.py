"""The seed's pattern, fixed: one worker thread per video stream, each one correct on its own.

The changes from `seed_worker_threads.py`, each explained in a notebook chapter
(notebooks/05b_your_script_fixed.ipynb walks through them):
1. the device's primary context, pushed in every worker before any CUDA call (03);
2. one execution context, one non-blocking stream and one set of buffers per worker (03, 04);
3. every return value checked, the TensorRT log's errors collected per worker (05, 08);
4. the stream synchronised, and that checked, before any output is read (05);
5. outputs poisoned with NaN before each run, so "never written" cannot read as "no face" (04);
6. outputs by name, their meaning from their shapes (01, 04).

    python examples/seed_worker_threads_fixed.py --model scrfd_2.5g.onnx --image photo.jpg --workers 2
"""

from __future__ import annotations

import contextlib
import json
import threading

import numpy as np
import pycuda.driver as cuda
import tensorrt as trt
from plain_scrfd import arguments, by_shape, count_faces, io_names, letterbox, load_engine

NAN_BITS = 0x7FC00000  # a float32 quiet NaN, for memset_d32
NON_BLOCKING = 1  # CU_STREAM_NON_BLOCKING: no implicit syncs with the legacy default stream


class ErrorLog(trt.ILogger):
    """Prints like trt.Logger and keeps each thread's errors, so a worker can report its own."""

    def __init__(self) -> None:
        trt.ILogger.__init__(self)
        self.local = threading.local()

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        if severity <= trt.ILogger.Severity.WARNING:
            print(f"[TRT] {severity.name}: {msg}", flush=True)
        if severity <= trt.ILogger.Severity.ERROR:
            self.errors().append(msg)

    def errors(self) -> list[str]:
        if not hasattr(self.local, "errors"):
            self.local.errors = []
        return self.local.errors


# Only for trtemu, the emulator these runs were recorded with: it could not answer a context whose
# first enqueue came while another worker's did, so there the workers set up one at a time and
# then start together. TensorRT needs neither (creating contexts is thread safe, one context per
# thread is its model): with it the lock is a no-op and every worker starts on its own.
TRTEMU = bool(getattr(trt, "__trtemu__", False))
SETUP = threading.Lock() if TRTEMU else contextlib.nullcontext()


def run_frames(
    engine: trt.ICudaEngine, log: ErrorLog, blob: np.ndarray, frames: int, ready: threading.Barrier | None
) -> int:
    """One worker's frames with its own context, stream and buffers; the primary context is current.

    Every worker sets up with one warm-up enqueue (as trtexec warms up); under trtemu one at a
    time, then all together (see SETUP).
    """
    input_name, output_names = io_names(engine)
    with SETUP:
        context = engine.create_execution_context()
    if context is None:
        raise RuntimeError("create_execution_context returned None")
    if not context.set_input_shape(input_name, blob.shape):
        raise RuntimeError(f"set_input_shape({input_name}, {blob.shape}) refused")
    stream = cuda.Stream(flags=NON_BLOCKING)
    host = {
        n: cuda.pagelocked_empty(tuple(context.get_tensor_shape(n)), np.float32)
        for n in (input_name, *output_names)
    }
    device = {n: cuda.mem_alloc(a.nbytes) for n, a in host.items()}
    try:
        for name, allocation in device.items():
            if not context.set_tensor_address(name, int(allocation)):
                raise RuntimeError(f"set_tensor_address({name}) refused")
        with SETUP:
            if not context.execute_async_v3(stream.handle):  # warm-up: the outputs are rewritten below
                raise RuntimeError(f"execute_async_v3 returned False: {log.errors()[-1:]}")
            stream.synchronize()  # done before the next worker's warm-up
        if ready is not None:
            ready.wait(timeout=300)
        faces = 0
        for _ in range(frames):
            np.copyto(host[input_name], blob)
            cuda.memcpy_htod_async(device[input_name], host[input_name], stream)
            for name in output_names:
                cuda.memset_d32_async(device[name], NAN_BITS, host[name].size, stream)
            if not context.execute_async_v3(stream.handle):
                raise RuntimeError(f"execute_async_v3 returned False: {log.errors()[-1:]}")
            for name in output_names:
                cuda.memcpy_dtoh_async(host[name], device[name], stream)
            stream.synchronize()  # raises if a kernel faulted after the enqueue returned
            unwritten = [n for n in output_names if np.isnan(host[n]).all()]
            if unwritten:
                raise RuntimeError(f"outputs never written: {unwritten}")
            faces = count_faces(*by_shape({n: host[n] for n in output_names}))
        return faces
    finally:
        for allocation in device.values():
            allocation.free()  # in this thread, while its context is current
        for array in host.values():
            array.base.free()


def main() -> None:
    args, image = arguments(__doc__, device=True)
    blob, _ = letterbox(image)

    cuda.init()
    primary = cuda.Device(args.device).retain_primary_context()  # the context TensorRT's runtime uses
    log = ErrorLog()
    primary.push()
    try:
        engine = load_engine(args.model, log)
    finally:
        cuda.Context.pop()

    ready = threading.Barrier(args.workers) if TRTEMU else None

    def worker(index: int, engine: trt.ICudaEngine) -> None:
        result: dict = {"script": "fixed", "worker": index, "frames": args.frames, "faces": None}
        primary.push()  # before any CUDA call in this thread
        try:
            result["faces"] = run_frames(engine, log, blob, args.frames, ready)
        except (RuntimeError, cuda.Error, threading.BrokenBarrierError) as error:
            if ready is not None:
                ready.abort()  # the other workers stop waiting for this one
            log.errors().append(f"{type(error).__name__}: {error}")
        finally:
            cuda.Context.pop()
        print(json.dumps({**result, "errors": log.errors()}), flush=True)

    threads = [threading.Thread(target=worker, args=(i, engine)) for i in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    primary.push()
    try:
        del engine  # released in its context
    finally:
        cuda.Context.pop()
        primary.detach()


if __name__ == "__main__":
    main()
