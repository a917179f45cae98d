"""An fp16 copy of an ONNX model, to ask "is my FP16 mismatch real?" without a GPU.

ONNX Runtime on the CPU runs the converted graph in half precision, which is
enough to see whether the faces change; inputs and outputs stay float32 so
the same buffers and decode serve both.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from pathlib import Path

from helpers.atomic import write_bytes

PRECISIONS = ("fp32", "fp16")


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
