"""A stand-in engine for GPU benchmarks: NOT TensorRT. A CUDA kernel keeps the whole GPU busy for
a fixed time E, then recorded SCRFD outputs are copied into the output buffers.

trtemu cannot time an engine, so throughput benchmarks need something that occupies the GPU as a
real engine does: `enqueue()` launches `occupy` with 2 blocks x 1024 threads on every SM (every
thread slot of the GPU), each spinning on `%globaltimer` until E has passed, so two lanes'
engines cannot overlap on the GPU, as two TensorRT engines that fill it would not. The outputs
come from one real ONNX Runtime run of the model on a real photo (`record`, done once at set-up),
so the GPU stages decode real faces around it. Label anything measured with it with `LABEL`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.backend import DeviceTensor, TensorInfo
from helpers.detections import Faces
from helpers.errors import UserError
from helpers.gpu.host_engine import HostEngine

LABEL = "stand-in engine (CUDA kernel busy for E ms + recorded SCRFD outputs), not TensorRT"

_OCCUPY = r"""
extern "C" __global__ void occupy(unsigned long long ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < ns);
}
"""
BLOCKS_PER_SM, THREADS = 2, 1024  # 2048 resident threads per SM: the whole SM on sm_80/sm_90


@dataclass(frozen=True)
class Recording:
    """One ONNX Runtime run: the engine input it took and the outputs and faces it gave."""

    input_name: str
    input_shape: tuple[int, ...]
    outputs: dict[str, np.ndarray]
    faces: Faces  # the CPU detector's faces on the frame, in its pixels


def record(model: str | Path, frame: np.ndarray, size: tuple[int, int] = (640, 640)) -> Recording:
    """Run the model once on `frame` (ONNX Runtime, CPU) at input `size` and keep what it gave."""
    from helpers.detector import Detector
    from helpers.ort_backend import OnnxRuntimeBackend

    detector = Detector(OnnxRuntimeBackend(model, ["CPUExecutionProvider"]), size)
    run = detector.run(frame)
    name = detector.input_name
    shape = (1, 3, run.letterbox.height, run.letterbox.width)
    return Recording(name, shape, {k: np.ascontiguousarray(v) for k, v in run.outputs.items()}, run.faces)


class Replay:
    """A `Backend` that gives the recorded outputs whatever its input."""

    name = "stand-in (not TensorRT)"

    def __init__(self, recording: Recording) -> None:
        self.recording = recording

    @property
    def inputs(self) -> list[TensorInfo]:
        r = self.recording
        return [TensorInfo(r.input_name, r.input_shape, "float32")]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [TensorInfo(k, v.shape, str(v.dtype)) for k, v in self.recording.outputs.items()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.recording.outputs.items()}


class StandInEngine(HostEngine):
    """`DeviceEngine` (helpers.backend) that is not TensorRT: busy E ms on the whole GPU, then
    the recorded outputs. One per lane (own non-blocking stream and buffers), in the primary
    context that CuPy uses; `run` (the recorded outputs) lets a `Detector` sniff the layout."""

    label = LABEL
    name = Replay.name

    def __init__(self, recording: Recording, busy_ms: float) -> None:
        import cupy

        if busy_ms < 0:
            raise UserError(f"busy time {busy_ms} ms is negative; use e.g. 0.5 or 2")
        super().__init__(Replay(recording), recompute=False)
        self.recording = recording
        self.busy_ms = busy_ms
        self.run = self.backend.run
        self.outputs = self.backend.outputs
        self._kernel = cupy.RawKernel(_OCCUPY, "occupy")
        self.grid = (BLOCKS_PER_SM * cupy.cuda.Device().attributes["MultiProcessorCount"],)
        with self.stream:  # non-blocking: default-stream uploads would not be ordered with it
            self._recorded = {k: cupy.asarray(v) for k, v in recording.outputs.items()}
        self.device_tensors(recording.input_shape)  # the buffers, made once
        self.stream.synchronize()

    def device_tensors(self, input_shape: tuple[int, ...]) -> dict[str, DeviceTensor]:
        if tuple(input_shape) != self.recording.input_shape:
            raise UserError(
                f"the stand-in engine replays outputs recorded at {self.recording.input_shape}, "
                f"not {tuple(input_shape)}; record at that input size"
            )
        return super().device_tensors(input_shape)

    def enqueue(self) -> None:
        """The busy kernel, then the recorded outputs copied in, on the stream: no host wait,
        capturable in a CUDA graph."""
        import cupy

        self._kernel(self.grid, (THREADS,), (np.uint64(round(self.busy_ms * 1e6)),), stream=self.stream)
        for name, recorded in self._recorded.items():
            cupy.cuda.runtime.memcpyAsync(
                self._arrays[name].data.ptr,
                recorded.data.ptr,
                recorded.nbytes,
                cupy.cuda.runtime.memcpyDeviceToDevice,
                self.stream.ptr,
            )
