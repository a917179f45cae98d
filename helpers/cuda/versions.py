"""Which CUDA major each installed CUDA library was built for, and what does not fit together.

A CUDA 13 wheel on a CUDA 12 driver fails at its first call; cuda-python 13 next to a TensorRT
built for CUDA 12 puts two CUDA runtimes in one process. pip resolves the newest wheels
(CUDA 13) unless told otherwise, so these mismatches are common and worth naming.
"""

from __future__ import annotations

import re
from importlib import metadata

# distribution name -> CUDA major, for wheels that carry it in their name
_BUILD_NAME = re.compile(r"^(tensorrt|cupy|nvidia-cuda-runtime)[-_]cu(?:da)?(\d+)", re.I)
_CUDA_PYTHON = ("cuda-bindings", "cuda-python")
NATIVE_HANDLE_SINCE = (12, 9, 1)
CUDA_PYTHON_PINS = {12: "cuda-python>=12.9.1,<13", 13: "cuda-python>=13,<14"}


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def onnxruntime_gpu_cuda(version: str) -> int:
    """The CUDA major of PyPI's onnxruntime-gpu wheel: 11 before 1.19, 12 up to 1.26, then 13."""
    numbers = _numbers(version)
    return 11 if numbers < (1, 19) else 12 if numbers < (1, 27) else 13


def cuda_builds() -> dict[str, int]:
    """{"tensorrt": 12, "cupy": 13, "cuda-python": 12, ...} for what is installed."""
    builds: dict[str, int] = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        match = _BUILD_NAME.match(name)
        if match:
            builds.setdefault(match.group(1).lower(), int(match.group(2)))
        elif name in _CUDA_PYTHON and "cuda-python" not in builds:
            builds["cuda-python"] = _numbers(dist.version)[0]
        elif name == "onnxruntime-gpu":  # its wheel name carries no CUDA major
            builds["onnxruntime-gpu"] = onnxruntime_gpu_cuda(dist.version)
    return builds


def cuda_python_version() -> tuple[int, ...] | None:
    for name in _CUDA_PYTHON:
        try:
            return _numbers(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue
    return None


def version_notes(
    driver_major: int | None, builds: dict[str, int], cuda_python: tuple[int, ...] | None
) -> list[str]:
    """Plain warnings about CUDA builds that do not fit the driver or each other (pure)."""
    notes = []
    if driver_major is not None:
        for lib, major in sorted(builds.items()):
            if major > driver_major:
                notes.append(
                    f"{lib} is a CUDA {major} build but the driver supports CUDA {driver_major}: "
                    f"install the cu{driver_major} build or update the driver"
                )
    trt, cp = builds.get("tensorrt"), builds.get("cuda-python")
    if trt is not None and cp is not None and trt != cp:
        pin = CUDA_PYTHON_PINS.get(trt, f"cuda-python=={trt}.*")
        notes.append(
            f"cuda-python {cp}.x next to TensorRT built for CUDA {trt}: two CUDA runtimes in one "
            f"process; pip install '{pin}'"
        )
    if cuda_python is not None and cuda_python < NATIVE_HANDLE_SINCE:
        notes.append(
            f"cuda-python {'.'.join(map(str, cuda_python))} predates 12.9.1 (no get_cuda_native_handle; "
            "handles are read with int()): upgrade to 12.9.1 or newer of your CUDA major"
        )
    return notes
