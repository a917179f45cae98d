"""Turn cuda-python's `(err, *values)` results into values or a `CudaError`.

cuda-python never raises: each call returns its status first, and code that does not look
(NVIDIA's own notebook helper compared the whole tuple) keeps running on garbage. `check`
makes the status impossible to miss and names the likely cause.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from helpers.errors import UserError

_FOREIGN = (
    "a stream, event, kernel or buffer of another CUDA context is used here; make one "
    "context current for all of it (see `python -m helpers doctor --explain`)"
)
_NO_CONTEXT = "no live CUDA context is current on this thread; activate one (CudaContext.activate)"
_HINT_ROWS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("CUDA_ERROR_INVALID_HANDLE", "cudaErrorInvalidResourceHandle"), _FOREIGN),
    (("CUDA_ERROR_INVALID_CONTEXT", "cudaErrorDeviceUninitialized"), _NO_CONTEXT),
    (
        ("CUDA_ERROR_CONTEXT_IS_DESTROYED", "cudaErrorContextIsDestroyed"),
        "the context was released while its objects were still in use; release it last",
    ),
    (
        ("CUDA_ERROR_ILLEGAL_ADDRESS", "cudaErrorIllegalAddress"),
        "a kernel touched memory outside its buffers (sized for another shape, or freed); "
        "the process's context is now unusable: fix the sizes and restart",
    ),
    (
        ("CUDA_ERROR_NO_DEVICE", "cudaErrorNoDevice"),
        "no CUDA GPU is visible: check nvidia-smi and CUDA_VISIBLE_DEVICES",
    ),
    (
        ("CUDA_ERROR_OUT_OF_MEMORY", "cudaErrorMemoryAllocation"),
        "GPU memory is full: free buffers or lower the TensorRT workspace limit",
    ),
    (
        (
            "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED",
            "cudaErrorStreamCaptureInvalidated",
            "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
            "cudaErrorStreamCaptureUnsupported",
        ),
        "the enqueued work cannot be captured in a CUDA graph; run it without a graph",
    ),
    (
        ("CUDA_ERROR_NOT_READY", "cudaErrorNotReady"),
        "the GPU work has not finished: synchronize the stream before reading results",
    ),
)
HINTS: dict[str, str] = {name: hint for names, hint in _HINT_ROWS for name in names}


class CudaError(UserError):
    """A failed CUDA call, with the error's name and what usually causes it."""

    def __init__(self, name: str, code: int, call: str = "") -> None:
        self.name, self.code, self.hint = name, code, HINTS.get(name, "")
        where = f"{call} failed: " if call else ""
        super().__init__(f"{where}{name} ({code})" + (f": {self.hint}" if self.hint else ""))


def error_name(err: Any) -> str:
    """The enum name of a cuda-python status (`CUDA_SUCCESS`, `cudaErrorInvalidValue`...)."""
    return str(getattr(err, "name", err))


def check(result: Any, call: str = "") -> Any:
    """Return what a cuda-python call returned after its status; raise `CudaError` on failure.

    `(err,)` gives None, `(err, x)` gives x, `(err, x, y)` gives (x, y). A bare status is
    accepted too.
    """
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise CudaError(error_name(err), int(err), call)
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def call(fn: Callable[..., Any], *args: Any) -> Any:
    """`check(fn(*args))`, naming `fn` in the error."""
    return check(fn(*args), getattr(fn, "__name__", repr(fn)))
