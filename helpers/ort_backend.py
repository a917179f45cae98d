"""ONNX Runtime behind the backend interface: the reference every engine is compared with."""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType

import numpy as np

from helpers.backend import TensorInfo
from helpers.errors import UserError

_PREFERRED = ("CUDAExecutionProvider", "CPUExecutionProvider")


def _dims(shape: list) -> tuple[int | str, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else (d or "?") for d in shape)


def _dtype(ort_type: str) -> str:
    """'tensor(float)' -> 'float32', as NumPy names it."""
    name = ort_type.removeprefix("tensor(").removesuffix(")")
    return {"float": "float32", "double": "float64"}.get(name, name)


@functools.cache
def load_cuda_libraries(ort: ModuleType) -> None:
    """Make the CUDA and cuDNN wheels of onnxruntime-gpu[cuda,cudnn] findable, once per process.

    ORT finds a system CUDA by itself but pip's nvidia-* wheels only after preload_dlls
    (ORT >= 1.21); without it the CUDA provider fails and ORT quietly runs on the CPU.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        preload()


class OnnxRuntimeBackend:
    """An ONNX Runtime session; CUDA provider when installed, else CPU."""

    name = "onnxruntime"

    def __init__(self, model: str | Path, providers: list[str] | None = None, threads: int = 0):
        import onnxruntime as ort

        ort.set_default_logger_severity(3)
        available = ort.get_available_providers()
        chosen = providers or [p for p in _PREFERRED if p in available]
        if "CUDAExecutionProvider" in chosen:
            load_cuda_libraries(ort)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(model), options, providers=chosen)
        except Exception as exc:  # ORT raises several unrelated types for a bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"cannot load model {model}: {first[:200]}; check that it is a complete ONNX file"
            ) from None
        self.providers = self.session.get_providers()

    @property
    def inputs(self) -> list[TensorInfo]:
        return [TensorInfo(i.name, _dims(i.shape), _dtype(i.type)) for i in self.session.get_inputs()]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [TensorInfo(o.name, _dims(o.shape), _dtype(o.type)) for o in self.session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, inputs), strict=True))
