"""A CPU stand-in for CuPy, so the GPU stages' host code and their CUDA C run in CI without a GPU.

The kernels' CUDA source is compiled as C++ (g++, no FMA contraction, like `--fmad=false`) with
a shim that runs every thread of a launch in a loop; "device memory" is host memory and copies
are memmoves, executed at once (one stream, in order). It checks the plumbing and the kernels'
arithmetic and indexing, not CUDA itself (streams, contexts, graphs: a "graph" here replays
the recorded Python enqueue): the GPU tests do that.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import numpy as np

SHIM = r"""
#include <math.h>
#include <string.h>
#include <algorithm>
struct Dim { unsigned x, y, z; };
static Dim blockIdx, blockDim, threadIdx, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
using std::min; using std::max;
static inline int __float2int_rn(float f) { return (int)nearbyintf(f); }
static inline unsigned atomicAdd(unsigned* p, unsigned v) { unsigned old = *p; *p += v; return old; }
static inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, sizeof d); return d; }
"""
LAUNCHER = """
extern "C" void launch_{name}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, {params}) {{
    gridDim = Dim{{gx, gy, gz}}; blockDim = Dim{{bx, by, 1}};
    for (unsigned z = 0; z < gz; ++z) for (unsigned y = 0; y < gy; ++y) for (unsigned x = 0; x < gx; ++x)
        for (unsigned ty = 0; ty < by; ++ty) for (unsigned tx = 0; tx < bx; ++tx) {{
            blockIdx = Dim{{x, y, z}}; threadIdx = Dim{{tx, ty, 0}};
            {name}({args});
        }}
}}
"""
KERNEL = re.compile(r'extern "C" __global__ void (\w+)\((.*?)\)\s*\{', re.S)
CTYPES = {
    "int": ctypes.c_int,
    "unsigned int": ctypes.c_uint,
    "float": ctypes.c_float,
    "double": ctypes.c_double,
}


def compiler() -> str | None:
    return shutil.which("g++")


def kernel_params(source: str) -> dict[str, list[tuple[str, str]]]:
    """name -> [(C type, parameter name)] of every kernel in the CUDA source."""
    found = {}
    for name, params in KERNEL.findall(source):
        pairs = []
        for param in " ".join(params.split()).split(","):
            ctype, _, pname = param.strip().replace("__restrict__", "").rpartition(" ")
            pairs.append((" ".join(ctype.split()), pname.strip()))
        found[name] = pairs
    return found


def build(source: str) -> tuple[ctypes.CDLL, dict[str, list[tuple[str, str]]]]:
    params = kernel_params(source)
    launchers = "".join(
        LAUNCHER.format(
            name=name, params=", ".join(f"{t} {p}" for t, p in pairs), args=", ".join(p for _, p in pairs)
        )
        for name, pairs in params.items()
    )
    code = SHIM + source + launchers
    folder = Path(tempfile.gettempdir()) / "scrfd-cuda-on-cpu"
    folder.mkdir(exist_ok=True)
    lib = folder / f"k{hashlib.sha256(code.encode()).hexdigest()[:16]}.so"
    if not lib.exists():
        src = lib.with_suffix(".cpp")
        src.write_text(code)
        cmd = ["g++", "-O2", "-std=c++14", "-ffp-contract=off", "-shared", "-fPIC", str(src), "-o", str(lib)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(lib)), params


class Memory:
    def __init__(self, ptr: int, size: int = 0, owner: object = None, device_id: int = -1) -> None:
        self.ptr, self.size, self.owner = ptr, size, owner


class MemoryPointer:
    def __init__(self, mem: Memory, offset: int) -> None:
        self.mem, self.ptr = mem, mem.ptr + offset


class FakeArray:
    """A "device" array: host memory behind an address, with cupy's few methods used here."""

    def __init__(self, host: np.ndarray) -> None:
        self.host = host
        self.data = MemoryPointer(Memory(host.ctypes.data, host.nbytes, host), 0)
        self.shape, self.dtype, self.nbytes = host.shape, host.dtype, host.nbytes

    def __getitem__(self, key: Any) -> FakeArray:
        return FakeArray(self.host[key])

    def get(self, stream: Any = None) -> np.ndarray:
        return self.host.copy()

    def set(self, value: np.ndarray, stream: Any = None) -> None:
        self.host[...] = value


def ndarray(shape: tuple, dtype: Any, memptr: MemoryPointer) -> FakeArray:
    count = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = (ctypes.c_char * count).from_address(memptr.ptr)
    return FakeArray(np.frombuffer(buffer, dtype).reshape(shape))


class Stream:
    _next = 0x1000

    def __init__(self, non_blocking: bool = False) -> None:
        Stream._next += 16
        self.ptr = Stream._next

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def synchronize(self) -> None:
        pass


class ExternalStream(Stream):
    def __init__(self, ptr: int, device_id: int = -1) -> None:
        self.ptr = ptr


class Event:
    def record(self, stream: Any = None) -> None:
        pass


class Function:
    def __init__(self, lib: ctypes.CDLL, name: str, params: list[tuple[str, str]]) -> None:
        self.fn = getattr(lib, f"launch_{name}")
        self.types = [CTYPES.get(t, ctypes.c_void_p) for t, _ in params]
        self.fn.argtypes = [ctypes.c_uint] * 5 + self.types

    def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
        assert len(args) == len(self.types), "kernel argument count"
        values = []
        for arg, ctype in zip(args, self.types, strict=True):
            if isinstance(arg, FakeArray):
                assert ctype is ctypes.c_void_p, "an array passed for a scalar parameter"
                values.append(arg.data.ptr)
            else:
                assert isinstance(arg, np.generic), "pass numpy scalars: their type is the C type"
                values.append(int(arg) if ctype is ctypes.c_void_p else arg.item())
        assert len(block) < 3 or block[2] == 1, "3-D blocks are not emulated"
        grid, block = (*grid, 1, 1)[:3], (*block, 1)[:2]
        self.fn(*grid, *block, *values)


class RawModule:
    def __init__(self, code: str, options: tuple = ()) -> None:
        assert "--fmad=false" in options
        self.lib, self.params = build(code)

    def get_function(self, name: str) -> Function:
        return Function(self.lib, name, self.params[name])


def _copy(dst: int, src: int, size: int, kind: int, stream: int) -> None:
    ctypes.memmove(dst, src, size)


def _memset(ptr: int, value: int, size: int, stream: int) -> None:
    ctypes.memset(ptr, value, size)


class RecordedGraph:
    """helpers.cuda.graph.CudaGraph's interface: `capture` keeps the enqueue (with the arguments it
    closed over, as a graph keeps its nodes' arguments) and `replay` runs it again."""

    def __init__(self, enqueue: Any) -> None:
        self._enqueue: Any = enqueue
        self.replays = 0

    @classmethod
    def capture(cls, enqueue: Any, stream: int) -> RecordedGraph:
        assert enqueue(stream) and enqueue(stream)  # warm-up, then the "capture"
        return cls(enqueue)

    def replay(self, stream: int) -> None:
        assert self._enqueue is not None, "replay after close"
        self._enqueue(stream)
        self.replays += 1

    def close(self) -> None:
        self._enqueue = None


def modules() -> dict[str, types.ModuleType]:
    """Fake `cupy` and `cupyx` modules, to put into sys.modules."""
    cupy = types.ModuleType("cupy")
    cupy.__version__ = "cpu-emulation"
    cupy.empty = lambda shape, dtype=np.float32: FakeArray(np.empty(shape, dtype))
    cupy.zeros = lambda shape, dtype=np.float32: FakeArray(np.zeros(shape, dtype))
    cupy.full = lambda shape, value, dtype=np.float32: FakeArray(np.full(shape, value, dtype))
    cupy.asarray = lambda a: FakeArray(np.array(a))
    cupy.ndarray = ndarray
    cupy.RawModule = RawModule
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        memcpyAsync=_copy,
        memsetAsync=_memset,
        memcpyHostToDevice=1,
        memcpyDeviceToHost=2,
    )
    cupy.cuda = types.SimpleNamespace(
        runtime=runtime,
        Stream=Stream,
        ExternalStream=ExternalStream,
        Event=Event,
        UnownedMemory=Memory,
        MemoryPointer=MemoryPointer,
        get_elapsed_time=lambda start, end: 0.0,
    )
    cupyx = types.ModuleType("cupyx")
    cupyx.empty_pinned = lambda shape, dtype=np.float32: np.empty(shape, dtype)
    return {"cupy": cupy, "cupyx": cupyx}


def install(monkeypatch: Any) -> None:
    """Use the CPU stand-in for the rest of a test (kernel caches cleared both ways)."""
    from helpers.cuda import graph
    from helpers.gpu import kernels

    for name, module in modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(graph, "CudaGraph", RecordedGraph)
    kernels.kernel.cache_clear()
    kernels._module.cache_clear()
