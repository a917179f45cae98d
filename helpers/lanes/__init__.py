"""Parallel lanes: one model serving several frames at once, one lane per frame in flight.

A lane is a `Detector` on its own execution context, stream, buffers and GPU stages (TensorRT,
one engine deserialised once) or on a shared ONNX Runtime session. Threads borrow a lane for a
frame and give it back: `with pool.lane() as detector: ...`, or `pool.detect(image)`,
`pool.map(fn, items)`.
"""

from helpers.lanes.make import onnxruntime_lanes, tensorrt_lanes
from helpers.lanes.pool import LanePool

__all__ = ["LanePool", "onnxruntime_lanes", "tensorrt_lanes"]
