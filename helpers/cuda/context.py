"""Which CUDA context is current on a thread, and pycuda contexts that are current on purpose.

TensorRT uses the CUDA runtime, which works in whatever context is current on the calling
thread, and makes the device's primary context current where none is. pycuda streams and
buffers belong to the context they were made in. Enqueue from a thread where another context
is current and kernels meet streams of a foreign context: "invalid resource handle", outputs
never written. `current_context` shows what is current; `CudaContext` makes it right.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from helpers.cuda import bindings
from helpers.cuda.bindings import native
from helpers.cuda.check import call
from helpers.errors import UserError

T = TypeVar("T")


def pycuda_driver() -> Any:
    """`pycuda.driver`, initialised; imported here so CPU-only machines never load it."""
    try:
        import pycuda.driver as drv
    except ImportError as exc:
        raise UserError(f"pycuda is not usable here ({exc}): pip install pycuda") from exc
    drv.init()
    return drv


def cuda_driver() -> Any:
    """cuda-python's driver API, initialised."""
    drv = bindings.driver()
    call(drv.cuInit, 0)
    return drv


@dataclass(frozen=True)
class ContextInfo:
    """The driver context current on one thread: what the CUDA runtime (TensorRT) will use."""

    thread: str
    handle: int | None
    device: int | None
    is_primary: bool | None

    def __str__(self) -> str:
        if self.handle is None:
            return (
                f"thread {self.thread!r}: no CUDA context current; the CUDA runtime (TensorRT) "
                "would make the primary context of the current device (0 by default) current"
            )
        kind = "the primary context" if self.is_primary else "a NON-primary context"
        return f"thread {self.thread!r}: {kind} 0x{self.handle:x} of device {self.device}"


def current_context() -> ContextInfo:
    """Report the context current on the calling thread (driver view, shared by the runtime)."""
    drv = cuda_driver()
    thread = threading.current_thread().name
    handle = native(call(drv.cuCtxGetCurrent))
    if not handle:
        return ContextInfo(thread, None, None, None)
    device = int(call(drv.cuCtxGetDevice))
    return ContextInfo(thread, handle, device, handle == _primary_handle(drv, device))


def _primary_handle(drv: Any, device: int) -> int | None:
    """The device's primary context, without creating it (None while it is inactive)."""
    dev = call(drv.cuDeviceGet, device)
    _flags, active = call(drv.cuDevicePrimaryCtxGetState, dev)
    if not active:
        return None
    handle = native(call(drv.cuDevicePrimaryCtxRetain, dev))
    call(drv.cuDevicePrimaryCtxRelease, dev)
    return handle


class CudaContext:
    """A pycuda context that is current only inside `activate()`; `primary()` is the one to use.

    The primary context is shared with the CUDA runtime, TensorRT, torch and cupy, so objects
    made in it stay valid wherever any of them made it current. `private()` is what
    `pycuda.autoinit` creates, kept for demonstrating the failure.
    """

    def __init__(self, ctx: Any, device: int, is_primary: bool) -> None:
        self._ctx: Any = ctx
        self._handle = int(ctx.handle)
        self._device = device
        self._is_primary = is_primary
        self._depth = threading.local()  # activate() nesting on each thread

    @classmethod
    def primary(cls, device: int = 0) -> CudaContext:
        """Retain the device's primary context (not made current: use `activate()`)."""
        return cls(pycuda_driver().Device(device).retain_primary_context(), device, True)

    @classmethod
    def private(cls, device: int = 0) -> CudaContext:
        """Create a separate context as `pycuda.autoinit` does, and pop it at once."""
        drv = pycuda_driver()
        ctx = drv.Device(device).make_context()
        drv.Context.pop()
        return cls(ctx, device, False)

    @property
    def handle(self) -> int:
        return self._handle

    @property
    def device(self) -> int:
        return self._device

    @property
    def is_primary(self) -> bool:
        return self._is_primary

    def __repr__(self) -> str:
        kind = "primary" if self._is_primary else "private"
        state = "" if self._ctx is not None else ", released"
        return f"CudaContext({kind}, device={self._device}, handle=0x{self._handle:x}{state})"

    @contextmanager
    def activate(self) -> Iterator[CudaContext]:
        """Make this context current on the calling thread for the block, then pop it.

        Re-entrant, and the way to use it from worker threads: a new thread has no context.
        """
        if self._ctx is None:
            raise UserError(f"{self!r} was released: create the context again")
        self._ctx.push()
        self._depth.n = getattr(self._depth, "n", 0) + 1
        try:
            yield self
        finally:
            self._depth.n -= 1
            pycuda_driver().Context.pop()

    def release(self) -> None:
        """Drop this context (idempotent). Free its streams and buffers first.

        Works whatever the caller has current (`pycuda.autoinit`'s context, the primary one
        from `pycuda.autoprimaryctx`, nothing): the thread ends with the context stack it had.
        pycuda's detach of a primary context releases it but leaves it on the driver's stack,
        under the caller's context that detach pushes back; both are undone here.
        """
        if self._ctx is None:
            return
        if getattr(self._depth, "n", 0):
            raise UserError(f"release {self!r} after its `activate()` block, not inside it")
        drv = pycuda_driver()
        callers = drv.Context.get_current()  # pycuda's top of stack, re-pushed by detach
        self._ctx.push()
        self._ctx.detach()
        self._ctx = None
        if self._is_primary:
            driver = cuda_driver()
            if callers is None:
                call(driver.cuCtxPopCurrent)  # the released primary context
            else:
                top = call(driver.cuCtxPopCurrent)  # the caller's, pushed back by detach
                call(driver.cuCtxPopCurrent)  # the released primary context under it
                call(driver.cuCtxPushCurrent, top)

    close = release


def drop_frames(exc: BaseException) -> None:
    """Free the locals of every finished frame in `exc`'s traceback (and its causes) now.

    A saved exception keeps its frames' locals alive: a TensorRT builder, network or execution
    context would be destroyed whenever the exception is, in whatever context is current then
    (another device's, or none). Call this inside the right context; the lines stay printable.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__


def within(ctx: CudaContext | None) -> AbstractContextManager[Any]:
    """`ctx.activate()`, or nothing when ctx is None (the caller made a context current)."""
    return ctx.activate() if ctx is not None else nullcontext()


def run_in_thread(ctx: CudaContext, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` on a new worker thread with `ctx` current there; return its result.

    The pattern for inference from worker threads: push the context of the stream and
    buffers around the work, pop it after. A long-lived worker does the same with
    `with ctx.activate():` around its loop.
    """

    def work() -> T:
        with ctx.activate():
            return fn(*args)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuda-worker") as pool:
        return pool.submit(work).result()
