"""cuda-python's driver and runtime modules, whichever layout the installed version has.

cuda-python 12.6.1 moved `cuda.cuda` / `cuda.cudart` to `cuda.bindings.driver` / `.runtime`,
and only 12.9.1 added `cuda.bindings.utils.get_cuda_native_handle` (NVIDIA's samples pin
12.8/12.9.0). Users arrive with any of them, so both layouts work and handles fall back to
`int()`, which every version accepts (newer ones with a deprecation warning).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from functools import cache
from types import ModuleType
from typing import Any

from helpers.cuda.versions import CUDA_PYTHON_PINS
from helpers.errors import UserError

INSTALL_HINT = " or ".join(f"pip install '{pin}' (CUDA {major})" for major, pin in CUDA_PYTHON_PINS.items())
_LAYOUTS = {
    "driver": (("cuda.bindings", "driver"), ("cuda", "cuda")),
    "runtime": (("cuda.bindings", "runtime"), ("cuda", "cudart")),
}


def _module(kind: str) -> ModuleType:
    # Every graph replay asks, from any thread: once imported, skip the import machinery and
    # catch_warnings, which swaps the process-wide filters (not thread-safe).
    for package, name in _LAYOUTS[kind]:
        module = sys.modules.get(f"{package}.{name}")
        if module is not None and sys.modules.get(package) is not None:
            return module
    for package, name in _LAYOUTS[kind]:
        try:
            with warnings.catch_warnings():  # the old layout warns that it is deprecated
                warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
                importlib.import_module(package)  # honours a package blocked in sys.modules
                return importlib.import_module(f"{package}.{name}")
        except ImportError:
            continue
    raise UserError(f"cuda-python is not installed (no cuda.bindings.{kind}): {INSTALL_HINT}")


def driver() -> Any:
    """The CUDA driver API module (`cuda.bindings.driver`, or `cuda.cuda` before 12.6.1)."""
    return _module("driver")


def runtime() -> Any:
    """The CUDA runtime API module (`cuda.bindings.runtime`, or `cuda.cudart` before 12.6.1)."""
    return _module("runtime")


@cache
def _native_handle() -> Any:
    try:
        from cuda.bindings.utils import get_cuda_native_handle
    except ImportError:  # cuda-python before 12.9.1
        return None
    return get_cuda_native_handle


def native(handle: Any) -> int:
    """The integer value of a cuda-python handle object (CUcontext, CUstream, CUgraph, ...)."""
    get = _native_handle()
    if get is None or isinstance(handle, int):
        return int(handle)
    return int(get(handle))
