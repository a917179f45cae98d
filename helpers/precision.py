"""An fp16 copy of an ONNX model, to ask "is my FP16 mismatch real?" without a GPU.

This tests FP16 *rounding*, not FP16 kernels: ONNX Runtime's CPU provider has
few float16 kernels, so it casts back and runs most of the graph in float32
(on scrfd_2.5g with ORT 1.32: 138 Casts after basic optimisation against the
copy's 14, and none of the 57 Convs takes float16). What changes is the
weights and the values between nodes, rounded to float16. Inputs and outputs
stay float32 so the same buffers and decode serve both.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from pathlib import Path

from helpers.atomic import write_bytes

PRECISIONS = ("fp32", "fp16")
CPU_FP16_NOTE = (
    "fp16 on ONNX Runtime's CPU provider: FP16 rounding of weights and between nodes, "
    "most kernels still float32; FP16 kernels need a GPU (TensorRT)"
)


def fp16_model(path: Path, cache_dir: Path | None = None) -> Path:
    """Path of `path` converted to fp16 (float32 I/O), cached by the source's content hash."""
    import onnx
    from onnxconverter_common import float16

    data = path.read_bytes()
    folder = cache_dir or Path(tempfile.gettempdir()) / "scrfd-workbook-fp16"
    target = folder / f"{path.stem}.{hashlib.sha256(data).hexdigest()[:16]}.fp16.onnx"
    if not target.is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns once per weight it rounds to fp16's range
            converted = float16.convert_float_to_float16(onnx.load_from_string(data), keep_io_types=True)
        write_bytes(target, converted.SerializeToString())
    return target
