"""A stand-in engine of known duration for throughput benchmarks: NOT TensorRT.

trtemu cannot time an engine (it computes on the CPU), so throughput figures use this instead:
a `DeviceEngine` whose `enqueue()` launches one kernel that fills every SM (2 blocks of 1024
threads per SM) and spins on the GPU's nanosecond timer for a fixed time E, then copies SCRFD
outputs recorded once from ONNX Runtime into the output buffers, all on the engine's stream.
Lanes' engines therefore take turns on the GPU as a real engine's would, and the GPU stages
around it decode real SCRFD outputs. Label every figure made with it "stand-in engine, not
TensorRT".
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from helpers.backend import Closeable, DeviceTensor, TensorInfo
from helpers.errors import UserError

SPIN = r"""
extern "C" __global__ void spin(unsigned long long ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < ns);
}
"""
LABEL = "stand-in engine (fixed-time CUDA kernel + recorded SCRFD outputs), not TensorRT"


class StandinEngine:
    """`DeviceEngine` (and, for `Detector`'s layout probe, `Backend`) of fixed duration `engine_ms`."""

    name = "stand-in engine, not TensorRT"

    def __init__(
        self, inputs: list[TensorInfo], recorded: dict[str, np.ndarray], engine_ms: float, kernels: int = 1
    ) -> None:
        import cupy

        if kernels < 1:
            raise UserError(f"kernels {kernels}: give 1 or more (a real engine is many layer kernels)")
        self.engine_ms = engine_ms
        self.kernels = kernels  # E split into this many back-to-back kernels, as an engine's layers
        self._inputs = inputs
        self._recorded_host = recorded
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._lock = threading.RLock()
        name = inputs[0].name
        self.input_shape = tuple(int(d) for d in inputs[0].shape)
        with self.stream:
            self._arrays = {name: cupy.zeros(self.input_shape, np.float32)}
            self._arrays.update({k: cupy.empty(v.shape, v.dtype) for k, v in recorded.items()})
            self._recorded = {k: cupy.asarray(v) for k, v in recorded.items()}
        self.stream.synchronize()
        self._spin = cupy.RawKernel(SPIN, "spin")
        sms = cupy.cuda.Device().attributes["MultiProcessorCount"]
        self._grid = (2 * sms,)

    @property
    def inputs(self) -> list[TensorInfo]:
        return self._inputs

    @property
    def outputs(self) -> list[TensorInfo]:
        return [TensorInfo(k, tuple(v.shape), str(v.dtype)) for k, v in self._recorded_host.items()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The recorded outputs (what `Detector` probes the layout with)."""
        return {k: v.copy() for k, v in self._recorded_host.items()}

    @property
    def stream_handle(self) -> int:
        return int(self.stream.ptr)

    shape_changes = 0  # recorded at one input shape, which never changes

    def activate(self) -> AbstractContextManager[Any]:
        return nullcontext()  # CuPy's primary context, current through the runtime

    def session(self) -> AbstractContextManager[Any]:
        return self._lock

    def attach(self, user: Closeable) -> None:
        """Nothing closes under the stages: CuPy frees these arrays."""

    def device_tensors(self, input_shape: tuple[int, ...]) -> dict[str, DeviceTensor]:
        if tuple(input_shape) != self.input_shape:
            raise UserError(f"the stand-in engine was recorded at {self.input_shape}, not {input_shape}")
        return {k: DeviceTensor(int(a.data.ptr), tuple(a.shape), a.dtype) for k, a in self._arrays.items()}

    def enqueue(self) -> None:
        import cupy

        with self.stream:
            ns = np.uint64(int(self.engine_ms * 1e6 / self.kernels))
            for _ in range(self.kernels):  # other streams' small kernels may run between them
                self._spin(self._grid, (1024,), (ns,))
        rt = cupy.cuda.runtime
        for k, src in self._recorded.items():
            dst = self._arrays[k]
            rt.memcpyAsync(dst.data.ptr, src.data.ptr, src.nbytes, rt.memcpyDeviceToDevice, self.stream.ptr)


def recorded_engine(
    model: Any, image: np.ndarray, size: tuple[int, int], engine_ms: float, kernels: int = 1, batch: int = 1
) -> StandinEngine:
    """A stand-in whose outputs are ONNX Runtime's for `batch` copies of `image` letterboxed to
    `size` (a batch larger than one needs a batchable model: helpers.batch.batchify)."""
    from helpers.letterbox import Preprocessor
    from helpers.ort_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(model, providers=["CPUExecutionProvider"])
    blob, _ = Preprocessor()(image, size)
    blob = np.repeat(blob, batch, axis=0)
    name = backend.inputs[0].name
    outputs = backend.run({name: blob})
    return StandinEngine([TensorInfo(name, tuple(blob.shape), "float32")], outputs, engine_ms, kernels)
