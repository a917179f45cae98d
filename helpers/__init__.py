"""SCRFD -> TensorRT workbook helpers.

The decode core (layout, letterbox, decode, NMS, detections) imports no GPU
library; backends sit above it; `helpers.cuda` and `helpers.trt` hold the only
code that touches CUDA or TensorRT, and nothing below them imports them.
"""

__version__ = "0.1.0"
