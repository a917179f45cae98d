"""The lint rules as data: code, message, fix, why it fails on a GPU, chapter and sources.

The code that finds each rule lives in `helpers.lint.checks`; keeping the prose here lets
`--explain CODE` and the tests share one table.
"""

from __future__ import annotations

from dataclasses import dataclass

_TRT = "https://github.com/NVIDIA/TensorRT/issues/"
_PYCUDA = "https://github.com/inducer/pycuda/issues/"
_NVDOCS = "https://docs.nvidia.com/deeplearning/tensorrt/latest/"


@dataclass(frozen=True)
class Rule:
    """One mistake the lint finds, with everything `--explain` prints about it."""

    code: str
    message: str
    fix: str
    why: str
    chapter: str
    sources: tuple[str, ...] = ()

    def explain(self) -> str:
        seen = "".join(f"\n  - {s}" for s in self.sources)
        return (
            f"{self.code}: {self.message}\n\nwhy it fails on a GPU:\n  {self.why}\n\nfix:\n  {self.fix}"
            f"\n\nchapter: {self.chapter}" + (f"\n\npublic reports and docs:{seen}" if seen else "")
        )


@dataclass(frozen=True)
class Finding:
    """One rule broken at one place; `cell` is the 1-based notebook cell, None in a script."""

    path: str
    line: int
    column: int
    code: str
    message: str
    fix: str
    cell: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:cell {self.cell}" if self.cell is not None else self.path
        return f"{where}:{self.line}:{self.column}: {self.code} {self.message} (fix: {self.fix})"


_CH03 = "notebooks/03_cuda_context_setup.ipynb"
_CH04 = "notebooks/04_binding_allocation.ipynb"
_CH05 = "notebooks/05_execute_v2_vs_v3.ipynb"
_CH02 = "notebooks/02_engine_building.ipynb"
_CH06 = "notebooks/06_decode_and_nms.ipynb"

RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule(
            "TRT001",
            "pycuda.autoinit / make_context() in a program that starts threads: that context is "
            "current only on the thread that made it",
            "use the primary context (import pycuda.autoprimaryctx, or CudaContext.primary()) and make it "
            "current in each worker (`with ctx.activate():` / ctx.push() ... ctx.pop())",
            "A CUDA context is current per thread. autoinit makes a private context current on the "
            "importing thread only; a worker thread then runs TensorRT in the primary context (or in "
            "none) with a stream and buffers of the private one: 'invalid resource handle', "
            "'cuTensor permutate execute failed', outputs left unwritten.",
            _CH03,
            (f"{_TRT}4427", f"{_TRT}2040", _PYCUDA + "242"),
        ),
        Rule(
            "TRT002",
            "CUDA work in a thread function that makes no CUDA context current",
            "push the context at the top of the thread function (`with ctx.activate():`, ctx.push() with "
            "ctx.pop() in finally, cudaSetDevice(n), or import pycuda.autoprimaryctx inside it)",
            "A new thread has no current context. pycuda fails with 'invalid device context - no currently "
            "active context'; the CUDA runtime silently uses the primary context, which is not the one "
            "the engine, stream and buffers were made in.",
            _CH03,
            (
                f"{_TRT}4427",
                f"{_TRT}3028",
                _PYCUDA + "242",
                "https://github.com/GeekAlexis/FastMOT/issues/65",
                "https://github.com/Linaom1214/TensorRT-For-YOLO-Series/issues/102",
            ),
        ),
        Rule(
            "TRT003",
            "buffer sized from the engine's tensor shape, which is -1 on dynamic dimensions",
            "call context.set_input_shape(name, shape) first and size from context.get_tensor_shape(name)",
            "An engine built from a dynamic ONNX reports -1 for every dynamic dimension; volume() of that "
            "is negative or wrong, so the allocation fails or is too small and TensorRT writes past it "
            "('illegal memory access', sticky for the process).",
            _CH04,
            (f"{_TRT}1564", f"{_TRT}4120", f"{_TRT}2040"),
        ),
        Rule(
            "TRT004",
            "TensorRT call whose result is ignored",
            "check it: `if not context.set_tensor_address(name, ptr): raise RuntimeError(...)`, "
            "`if not context.execute_async_v3(stream.handle): ...`; test "
            "build_serialized_network / deserialize_cuda_engine results against None",
            "These calls report failure by returning False or None, not by raising. Unchecked, a failed "
            "enqueue or a rejected shape leaves the outputs as they were (zeros): 'no faces, high FPS'.",
            _CH05,
            (f"{_TRT}4427",),
        ),
        Rule(
            "TRT005",
            "host array of an async device-to-host copy read with no synchronisation of its stream",
            "call stream.synchronize() (or cudaStreamSynchronize / an event's synchronize) after the copy "
            "and before reading or returning the host array",
            "memcpy_dtoh_async / cudaMemcpyAsync / CuPy get(blocking=False) only enqueue the copy; the host "
            "array holds old data until the stream reaches it. Results then depend on timing: right on a "
            "slow run, stale or zero on a fast one.",
            _CH05,
            (f"{_TRT}930",),
        ),
        Rule(
            "TRT006",
            "TensorRT 8 API removed in TensorRT 10",
            "use its 10.x replacement (named in the message)",
            "TensorRT 10.0 removed the binding-index API, implicit batch and the v1/v2 enqueue calls: the "
            "attribute no longer exists, so the script fails with AttributeError on 10.x and 11.x.",
            _CH04,
            (f"{_TRT}3931", f"{_TRT}930", f"{_TRT}2040"),
        ),
        Rule(
            "TRT007",
            "TensorRT 10 API removed in TensorRT 11",
            "use its 11.x replacement (named in the message); it also works on 10.x",
            "TensorRT 11.0 removed weak typing (the precision BuilderFlags) and the platform_has_* "
            "queries: every network is strongly typed, FP16 comes from an FP16 ONNX (ModelOpt AutoCast).",
            _CH02,
            (_NVDOCS + "api/migration/tensorrt-10x-to-11x-python-api-patterns.html",),
        ),
        Rule(
            "TRT008",
            "enqueue on the legacy default stream (stream handle 0)",
            "create a stream (cuda.Stream(), cudaStreamCreate) and pass its handle",
            "The legacy default stream synchronises with every other stream of the context, serialising "
            "workers, and cannot be captured into a CUDA graph; TensorRT warns that it adds syncs.",
            _CH05,
            ("https://github.com/NVIDIA/TensorRT/blob/v10.13.0/include/NvInferRuntime.h (enqueueV3)",),
        ),
        Rule(
            "TRT009",
            "model outputs taken by position",
            "map outputs by name (dict(zip(output_names, outputs)) or engine.get_tensor_name) and tell "
            "SCRFD's score/bbox/landmark tensors apart by shape",
            "TensorRT may order I/O tensors differently from the ONNX graph, and SCRFD exports differ in "
            "output order and count; outputs[0] is then another stride or another head: wrong boxes or "
            "none, with no error.",
            _CH06,
            ("https://github.com/SthPhoenix/InsightFace-REST/issues/37", f"{_TRT}1042"),
        ),
        Rule(
            "TRT010",
            "cuda.init() alone creates no CUDA context",
            "create or retain one and make it current (import pycuda.autoprimaryctx, or "
            "cuda.Device(0).retain_primary_context().push())",
            "cuda.init() only initialises the driver API. The first allocation or stream then fails with "
            "'invalid device context - no currently active context', the forum's usual 'fix' for "
            "threading errors included.",
            _CH03,
            (_PYCUDA + "251",),
        ),
    )
}
