"""Finding a real TensorRT, reading its version, and collecting what its logger says.

With only `tensorrt-stubs` installed, `import tensorrt` succeeds as an empty namespace
package, so a real TensorRT is recognised by what the module holds (`Builder`), not by
whether the import raises.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
from collections import deque
from types import ModuleType
from typing import TYPE_CHECKING, TextIO

from helpers.errors import UserError
from helpers.trt.cache import Target

if TYPE_CHECKING:
    import tensorrt as trt

INSTALL_HINT = "pip install tensorrt-cu12 (tensorrt-cu13 for CUDA 13), see README"
MIN_MAJOR = 10  # the name-based I/O API, no execute_async_v2; 11.x is handled too
# Severities as TensorRT names them, most severe first; WARNING and above are kept.
_KEPT = ("INTERNAL_ERROR", "ERROR", "WARNING")


def tensorrt_status() -> tuple[bool, str]:
    """(True, version) when a real TensorRT 10+ imports, else (False, why not)."""
    try:
        import tensorrt
    except ImportError as exc:
        return False, f"TensorRT is not installed ({exc}); {INSTALL_HINT}"
    if not hasattr(tensorrt, "Builder"):
        return False, f"TensorRT is not installed (only its type stubs are); {INSTALL_HINT}"
    version = str(tensorrt.__version__)
    if major_version(version) < MIN_MAJOR:
        return (
            False,
            f"TensorRT {version} is too old: the workbook needs {MIN_MAJOR}.x or newer; {INSTALL_HINT}",
        )
    return True, version


EMULATOR = "trtemu (TensorRT API emulator, not TensorRT)"


def is_emulator() -> bool:
    """True when `tensorrt` is trtemu, the API emulator used to run this code without TensorRT.

    Its timings and numerics are ONNX Runtime's on the CPU: every report must say so.
    """
    module = sys.modules.get("tensorrt")
    return bool(getattr(module, "__trtemu__", False)) and tensorrt_status()[0]


def describe_tensorrt(version: str) -> str:
    """'TensorRT 10.13.0', or the emulator's name and version when that is what is loaded."""
    return f"{EMULATOR} {version}" if is_emulator() else f"TensorRT {version}"


def load_tensorrt() -> ModuleType:
    """The real `tensorrt` module, or a UserError that says how to install it.

    Callers that want typed access call this first, then `import tensorrt as trt`.
    """
    ok, why = tensorrt_status()
    if not ok:
        raise UserError(why)
    import tensorrt

    return tensorrt


def parse_version(text: str) -> tuple[int, ...]:
    """'10.13.0.35' -> (10, 13, 0, 35); suffixes such as '.post1' or '+cuda12' are ignored."""
    match = re.match(r"\d+(?:\.\d+)*", text.strip())
    if match is None:
        raise UserError(f"cannot read TensorRT version {text!r}; expected something like 10.13.0")
    return tuple(int(p) for p in match.group().split("."))


def major_version(text: str) -> int:
    return parse_version(text)[0]


class LogBook:
    """What TensorRT logged at WARNING or above, kept so a failed call can say why.

    Per thread: `clear()` and `errors()` see what TensorRT logged on the calling thread since
    its last `clear()`, so a worker never reads, or wipes, another worker's errors. Lines
    TensorRT logs from threads of its own (a builder's helpers) are not any caller's: every
    thread sees those that came after its `clear()`. The lock is for those threads.
    """

    def __init__(self, keep: int = 50, echo: TextIO | None = sys.stderr):
        # (sequence number, logging thread's ident or None for TensorRT's own, severity, text)
        self._lines: deque[tuple[int, int | None, str, str]] = deque(maxlen=keep)
        self._count = 0
        self._lock = threading.Lock()
        self._since = threading.local()  # each thread's sequence number at its clear()
        self._echo = echo

    def record(self, severity: str, message: str) -> None:
        if severity not in _KEPT:
            return
        thread = threading.current_thread()
        # A thread Python did not start (TensorRT's own) shows up as a dummy thread object.
        ident = None if isinstance(thread, threading._DummyThread) else thread.ident
        with self._lock:
            self._count += 1
            self._lines.append((self._count, ident, severity, message))
        if self._echo is not None:
            print(f"[TensorRT] {severity}: {message}", file=self._echo)

    def errors(self) -> list[str]:
        """This thread's errors since its last `clear()` (and TensorRT's own threads')."""
        me, since = threading.get_ident(), getattr(self._since, "n", 0)
        with self._lock:
            return [m for n, who, s, m in self._lines if n > since and who in (me, None) and s != "WARNING"]

    def last_error(self, default: str) -> str:
        """The last error line, for a one-line UserError; `default` when TensorRT said nothing."""
        errors = self.errors()
        return errors[-1].strip().splitlines()[0] if errors else default

    def clear(self) -> None:
        """Forget, for this thread only, what was logged so far."""
        with self._lock:
            self._since.n = self._count


_BOOK = LogBook()


def log_book() -> LogBook:
    """The book behind `logger()`; clear it before a step whose errors you want to report."""
    return _BOOK


@functools.cache
def logger() -> trt.ILogger:
    """The one TensorRT logger of this process (WARNING and above, into `log_book()`).

    One logger for builder and runtime alike: TensorRT warns when they are given different ones.
    """
    load_tensorrt()
    import tensorrt as trt

    kept = frozenset(getattr(trt.ILogger.Severity, name) for name in _KEPT)

    class _BookLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            # An ILogger subclass receives every severity (only trt.Logger filters): during a
            # build that is thousands of VERBOSE lines, each crossing into Python.
            if severity in kept:
                _BOOK.record(severity.name, msg)

    return _BookLogger()


def device_identity(device: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability such as '9.0') of a CUDA device, or a UserError."""
    from helpers.cuda.devices import gpu_report

    report = gpu_report()
    if not report["available"]:
        raise UserError(str(report["reason"]))
    devices = report["devices"]
    if not 0 <= device < len(devices):
        raise UserError(f"GPU {device} does not exist: this machine has {len(devices)}; use --device 0")
    return str(devices[device]["name"]), str(devices[device]["compute_capability"])


def current_target(device: int = 0) -> Target:
    """TensorRT version and GPU identity: the facts a plan is tied to."""
    trt = load_tensorrt()
    name, capability = device_identity(device)
    return Target(str(trt.__version__), name, capability)
