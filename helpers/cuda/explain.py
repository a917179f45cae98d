"""Known TensorRT / CUDA / pycuda error texts mapped to their cause and fix.

A table of data, matched by case-insensitive substring, so `doctor --explain "<pasted log>"`
can say what went wrong. Each row's `see` names the notebook that teaches the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

_CONTEXT_FIX = (
    "Enqueue from a thread where the context of the stream and buffers is current: do "
    "everything in one thread, or wrap the work in the worker with `with ctx.activate():` "
    "(helpers.cuda.context.run_in_thread), or use the primary context everywhere "
    "(CudaContext.primary() / pycuda.autoprimaryctx instead of pycuda.autoinit; "
    "cudaSetDevice(n) in every thread for GPU n > 0). execute_v2 hides this; it is no fix."
)


@dataclass(frozen=True)
class Explanation:
    """One known failure: the texts that identify it, why it happens, how to fix it."""

    patterns: tuple[str, ...]
    cause: str
    fix: str
    see: str
    title: str = ""  # the heading, where the first pattern does not name every text the row knows

    @property
    def heading(self) -> str:
        return self.title or self.patterns[0]

    def matches(self, text: str) -> bool:
        lowered = text.lower()
        return any(pattern.lower() in lowered for pattern in self.patterns)

    def __str__(self) -> str:
        return f"{self.heading}\n  cause: {self.cause}\n  fix:   {self.fix}\n  see:   {self.see}"


EXPLANATIONS: tuple[Explanation, ...] = (
    Explanation(
        ("invalid resource handle", "CUDA_ERROR_INVALID_HANDLE", "cudaErrorInvalidResourceHandle"),
        "TensorRT launches its kernels in the context current on the calling thread, on a "
        "stream that belongs to another context. Typical: pycuda.autoinit made a private "
        "context on the main thread (stream, buffers), inference runs in a worker thread "
        "where the CUDA runtime made the primary context current; or GPU index > 0 without "
        "cudaSetDevice in the worker. Measured on an H100 (reports/gpu_evidence.json): such a "
        "launch fails with CUDA_ERROR_INVALID_HANDLE while copies on that stream still run, "
        "so outputs come back unwritten.",
        _CONTEXT_FIX,
        "notebooks/03_cuda_context_setup.ipynb",
    ),
    Explanation(
        ("Internal cuTensor permutate execute failed", "cuTensor permutate"),
        "TensorRT's first reformat (transpose) kernel, run through cuTENSOR, met the foreign "
        "stream; the 'invalid resource handle' that follows is the same failure. Nothing "
        "after it ran, so the outputs keep whatever they held (zeros).",
        _CONTEXT_FIX,
        "notebooks/03_cuda_context_setup.ipynb",
    ),
    Explanation(
        ("explicit_context_dependent failed", "no currently active context"),
        "A pycuda object (stream, mem_alloc, pagelocked array, event) was made in a thread "
        "with no pycuda context current. cuda.init() creates none, and a new thread starts "
        "with none.",
        "Make a context current first: `with CudaContext.primary().activate():` (or import "
        "pycuda.autoprimaryctx on the main thread), and push it in worker threads.",
        "notebooks/03_cuda_context_setup.ipynb",
    ),
    Explanation(
        ("The context stack was not empty upon module cleanup",),
        "A pushed pycuda context was never popped (make_context/push without pop, or an "
        "exception skipped the pop), and pycuda aborts the interpreter at exit.",
        "Pair every push with a pop: use `with ctx.activate():`, release contexts with "
        "CudaContext.release(), and avoid make_context in notebooks.",
        "notebooks/03_cuda_context_setup.ipynb",
    ),
    Explanation(
        ("cannot activate out-of-thread context",),
        "A pycuda object was freed or used from a thread other than the one that created "
        "its context, while that context was not current there.",
        "Free buffers and streams where the context is current (HostDeviceBuffer.free, "
        "Stream.close inside `with ctx.activate():`), or keep them in one thread.",
        "notebooks/03_cuda_context_setup.ipynb",
    ),
    Explanation(
        ("cannot activate dead context", "context is destroyed", "CUDA_ERROR_CONTEXT_IS_DESTROYED"),
        "The context was released (detach, autoinit's exit handler) before objects made in it were freed.",
        "Free buffers, streams and engines first, release the context last.",
        "notebooks/03_cuda_context_setup.ipynb",
    ),
    Explanation(
        ("plan file is not compatible", "generated on an incompatible device"),
        "The engine was built by another TensorRT version or for another GPU; plans are "
        "tied to both unless built version/hardware compatible.",
        "Rebuild the engine on this machine with this TensorRT (the engine cache keys on "
        "GPU and TensorRT version), or build with VERSION_COMPATIBLE / "
        "hardware_compatibility_level.",
        "notebooks/02_engine_building.ipynb",
    ),
    Explanation(
        ("Network has dynamic or shape inputs, but no optimization profile has been defined",),
        "The SCRFD ONNX has dynamic H/W (or batch) and the build config has no optimization profile.",
        "Add a profile: p = builder.create_optimization_profile(); p.set_shape(name, min, "
        "opt, max); config.add_optimization_profile(p). Or fix the input shape in the ONNX.",
        "notebooks/02_engine_building.ipynb",
    ),
    Explanation(
        ("Address is not set for",),
        "An input or output tensor had no device address when the enqueue started, so it "
        "was refused (the call returns False).",
        "Call context.set_tensor_address(name, ptr) for every I/O tensor, by name, before "
        "each enqueue, and again after reallocating a buffer.",
        "notebooks/05_execute_v2_vs_v3.ipynb",
    ),
    Explanation(
        (
            "execute_async_v2",
            "get_binding_shape",
            "num_bindings",
            "binding_is_input",
            "max_workspace_size",
            "'build_engine'",
        ),
        "TensorRT 10 removed the binding-index API, execute_async_v2, build_engine and "
        "max_workspace_size; old tutorials still use them.",
        "Use tensor names: set_input_shape + set_tensor_address + execute_async_v3(stream); "
        "build with build_serialized_network; config.set_memory_pool_limit for the workspace.",
        "notebooks/04_binding_allocation.ipynb",
        "TensorRT 8 API removed in TensorRT 10 (bindings, execute_async_v2, build_engine)",
    ),
    Explanation(
        (
            "EXPLICIT_BATCH",
            "platform_has_fast_fp16",
            "BuilderFlag' has no attribute 'FP16'",
            "OBEY_PRECISION_CONSTRAINTS",
        ),
        "TensorRT 11 removed EXPLICIT_BATCH, platform_has_fast_fp16 and the weak-typing "
        "precision flags: networks are strongly typed.",
        "Drop EXPLICIT_BATCH; for FP16 convert the ONNX with ModelOpt AutoCast "
        "(keep_io_types=True) and build normally.",
        "notebooks/04_binding_allocation.ipynb",
        "TensorRT 10 API removed in TensorRT 11 (EXPLICIT_BATCH, platform_has_fast_fp16, FP16 flag)",
    ),
    Explanation(
        ("module 'tensorrt' has no attribute", "libnvinfer"),
        "No usable TensorRT: only the type stubs (an empty namespace package) or the "
        "placeholder wheel are installed, or its libraries are not found.",
        "Install TensorRT for your CUDA (pip install tensorrt-cu12 or tensorrt-cu13 from "
        "NVIDIA's index); `python -m helpers doctor` says what is there.",
        "notebooks/00_environment.ipynb",
    ),
    Explanation(
        ("no CUDA-capable device is detected", "CUDA_ERROR_NO_DEVICE", "cudaErrorNoDevice"),
        "The process sees no NVIDIA GPU: no driver, CUDA_VISIBLE_DEVICES hides it, or the "
        "container was started without GPU access.",
        "Check nvidia-smi and CUDA_VISIBLE_DEVICES; run `python -m helpers doctor`.",
        "notebooks/00_environment.ipynb",
    ),
    Explanation(
        ("all scores zero", "all zero", "all-zero", "scores are zero", "scores are all 0"),
        "The outputs were never written: the enqueue failed (its False return or the "
        "TensorRT log went unread), the host buffer was read before the stream finished, "
        "or outputs were picked by position instead of by name.",
        "Check the bool from execute_async_v3, synchronize the stream before reading, "
        "poison outputs with NaN (HostDeviceBuffer.poison) to see unwritten ones, map "
        "outputs by tensor name, and look for 'invalid resource handle' in the log.",
        "notebooks/05_execute_v2_vs_v3.ipynb",
    ),
    Explanation(
        ("an illegal memory access was encountered", "CUDA_ERROR_ILLEGAL_ADDRESS", "cudaErrorIllegalAddress"),
        "A kernel read or wrote outside a buffer: buffers sized from engine shapes with -1 "
        "(dynamic dims), sized for a smaller input than set_input_shape was given, or freed. "
        "The error is sticky: the process's context is unusable afterwards.",
        "Size buffers from context.get_tensor_shape after set_input_shape (infer_shapes() "
        "must return []), keep them alive until the stream synchronized, restart the process.",
        "notebooks/05_execute_v2_vs_v3.ipynb",
    ),
    Explanation(
        ("operation not permitted when stream is capturing", "StreamCapture", "STREAM_CAPTURE"),
        "Work that cannot be captured ran during CUDA graph capture (a synchronizing call, a "
        "pageable-memory copy, the legacy default stream, a first-run initialisation).",
        "Run one normal enqueue before capturing, capture on a created stream with "
        "page-locked buffers, and fall back to plain enqueue if capture still fails.",
        "notebooks/05_execute_v2_vs_v3.ipynb",
    ),
)


def explain(error_text: str) -> list[Explanation]:
    """The known failures whose identifying text occurs in `error_text`, in table order."""
    return [row for row in EXPLANATIONS if row.matches(error_text)]
