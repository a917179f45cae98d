"""A face-detection service written the way the workbook teaches: lint must find nothing here.

Per-worker primary context made current in the worker, per-worker execution context and
stream, every TensorRT status checked, the stream synchronised before the host outputs are read,
outputs mapped by name. Not executed by the tests: it is lint input.
"""

import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pycuda.driver as cuda
import tensorrt as trt

LOGGER = trt.Logger(trt.Logger.WARNING)
STRIDES = (8, 16, 32)


def load_engine(path):
    runtime = trt.Runtime(LOGGER)
    with open(path, "rb") as f:
        engine = runtime.deserialize_cuda_engine(f.read())
    if engine is None:
        raise RuntimeError(f"{path}: TensorRT could not deserialize the engine")
    return runtime, engine


class Worker:
    """Everything one thread needs: its own execution context, stream and buffers."""

    def __init__(self, engine, shape):
        self.engine = engine
        self.context = engine.create_execution_context()
        self.stream = cuda.Stream()
        self.names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in self.names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if not self.context.set_input_shape(self.inputs[0], shape):
            raise RuntimeError(f"input shape {shape} is outside the engine's profile")
        self.host, self.device = {}, {}
        for name in self.names:
            dims = tuple(self.context.get_tensor_shape(name))
            dtype = trt.nptype(engine.get_tensor_dtype(name))
            self.host[name] = cuda.pagelocked_empty(trt.volume(dims), dtype).reshape(dims)
            self.device[name] = cuda.mem_alloc(self.host[name].nbytes)
            if not self.context.set_tensor_address(name, int(self.device[name])):
                raise RuntimeError(f"TensorRT refused the address of {name}")

    def infer(self, image):
        name = self.inputs[0]
        np.copyto(self.host[name], image)
        cuda.memcpy_htod_async(self.device[name], self.host[name], self.stream)
        if not self.context.execute_async_v3(self.stream.handle):
            raise RuntimeError("execute_async_v3 failed to enqueue")
        outputs = [n for n in self.names if n not in self.inputs]
        for out in outputs:
            cuda.memcpy_dtoh_async(self.host[out], self.device[out], self.stream)
        self.stream.synchronize()
        return {out: self.host[out].copy() for out in outputs}


def serve(engine_path, jobs, results, shape=(1, 3, 640, 640)):
    cuda.init()
    ctx = cuda.Device(0).retain_primary_context()
    ctx.push()
    try:
        _, engine = load_engine(engine_path)
        worker = Worker(engine, shape)
        while (job := jobs.get()) is not None:
            key, image = job
            scores = {n: a for n, a in worker.infer(image).items() if a.shape[-1] == 1}
            results.put((key, scores))
    finally:
        ctx.pop()


def batch(engine_path, images):
    def one(image):
        ctx = cuda.Device(0).retain_primary_context()
        ctx.push()
        try:
            _, engine = load_engine(engine_path)
            return Worker(engine, image.shape).infer(image)
        finally:
            ctx.pop()

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, images))


def main(engine_path, frames):
    jobs, results = queue.Queue(), queue.Queue()
    threads = [threading.Thread(target=serve, args=(engine_path, jobs, results)) for _ in range(2)]
    for t in threads:
        t.start()
    for i, frame in enumerate(frames):
        jobs.put((i, frame))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    return [results.get() for _ in frames]
