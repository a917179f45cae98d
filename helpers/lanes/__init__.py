"""Parallel lanes: one model loaded once, N detectors that threads borrow a frame at a time.

A lane is a `Detector` with its own scratch and, on TensorRT, its own execution context,
stream, buffers and GPU stages on the one shared engine (`helpers.trt.engine.LoadedEngine`);
on ONNX Runtime the lanes share one `InferenceSession`, which may be run from many threads.
While one lane waits on a host copy another's engine runs, so the GPU stays busy.
"""

from helpers.lanes.open import onnxruntime_lanes, tensorrt_lanes
from helpers.lanes.pool import Lane, LanePool

__all__ = ["Lane", "LanePool", "onnxruntime_lanes", "tensorrt_lanes"]
