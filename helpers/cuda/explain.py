"""Known TensorRT / CUDA / pycuda error texts mapped to their cause and fix.

A table of data, matched by case-insensitive substring, so `doctor --explain "<pasted log>"`
can say what went wrong, in the order the texts appear in the log. Each row's `see` names the
notebook that teaches the fix; `sources` are public reports where users met that text.
"""

from __future__ import annotations

from dataclasses import dataclass

_CONTEXT_FIX = (
    "Enqueue from a thread where the context of the stream and buffers is current: do "
    "everything in one thread, or wrap the work in the worker with `with ctx.activate():` "
    "(helpers.cuda.context.run_in_thread), or use the primary context everywhere "
    "(CudaContext.primary() / pycuda.autoprimaryctx instead of pycuda.autoinit; "
    "cudaSetDevice(n) in every thread for its GPU n, 0 included). execute_v2 hides this; it is no fix."
)


@dataclass(frozen=True)
class Explanation:
    """One known failure: the texts that identify it, why it happens, how to fix it."""

    patterns: tuple[str, ...]
    cause: str
    fix: str
    see: str
    title: str = ""  # the heading, where the first pattern does not name every text the row knows
    sources: tuple[str, ...] = ()  # public reports where users met this failure
    lint: tuple[str, ...] = ()  # `python -m helpers lint` rules that find this mistake in a script

    @property
    def heading(self) -> str:
        return self.title or self.patterns[0]

    def position(self, lowered: str) -> int | None:
        """Where in `lowered` (a lower-cased log) this failure's text first appears; None if nowhere."""
        found = [i for i in (lowered.find(p.lower()) for p in self.patterns) if i >= 0]
        return min(found) if found else None

    def matches(self, text: str) -> bool:
        return self.position(text.lower()) is not None

    def __str__(self) -> str:
        seen = f"\n  seen:  {', '.join(self.sources)}" if self.sources else ""
        lint = (
            f"\n  lint:  `python -m helpers lint YOUR_SCRIPT.py` finds it as {', '.join(self.lint)}"
            f" (`python -m helpers lint --explain {self.lint[0]}`)"
            if self.lint
            else ""
        )
        return f"{self.heading}\n  cause: {self.cause}\n  fix:   {self.fix}\n  see:   {self.see}{seen}{lint}"


_TRT = "https://github.com/NVIDIA/TensorRT/issues/"
_NEWER_ENV = (
    "`python -m helpers doctor` shows the GPU's sm and the CUDA the driver supports; install a "
    "TensorRT that supports that GPU (environment-cu12.yml or environment-cu13.yml, or "
    "`GPU=1 bash setup.sh`, install a current 10.x/11.x) and rebuild the engine on this machine."
)

EXPLANATIONS: tuple[Explanation, ...] = (
    Explanation(
        ("invalid resource handle", "CUDA_ERROR_INVALID_HANDLE", "cudaErrorInvalidResourceHandle"),
        "TensorRT launches its kernels in the context current on the calling thread (inferred from "
        "a CUDA stand-in, not observed in TensorRT), on a stream that belongs to another context. "
        "Typical: pycuda.autoinit made a private "
        "context on the main thread (stream, buffers), inference runs in a worker thread "
        "where the CUDA runtime made the primary context current; or GPU index > 0 without "
        "cudaSetDevice in the worker. Measured on an H100 with a CUDA-level stand-in, not TensorRT "
        "(reports/gpu_evidence.json): such a "
        "launch fails with CUDA_ERROR_INVALID_HANDLE while copies on that stream still run, "
        "so outputs come back unwritten.",
        _CONTEXT_FIX,
        "notebooks/03_cuda_context_setup.ipynb",
        sources=(f"{_TRT}4427", f"{_TRT}4191", "https://github.com/microsoft/onnxruntime/pull/24010"),
        lint=("TRT001", "TRT002"),
    ),
    Explanation(
        ("Internal cuTensor permutate execute failed", "cuTensor permutate"),
        "TensorRT's reformat (transpose) kernel, run through cuTENSOR, failed. It has more than one "
        "cause; the line next to it says which. Followed by 'invalid resource handle' (the SCRFD "
        "case): it is the first launch that failed, not the first kernel: one resolved in the "
        "worker's current CUDA context met a stream of another (inferred), and the outputs keep "
        "whatever they held (zeros). Next to 'no kernel image is available for "
        "execution on the device': this TensorRT has no kernels for the GPU's architecture.",
        "For 'invalid resource handle': " + _CONTEXT_FIX + " For 'no kernel image': " + _NEWER_ENV,
        "notebooks/03_cuda_context_setup.ipynb",
        sources=(f"{_TRT}4427", "https://github.com/NVIDIA/Stable-Diffusion-WebUI-TensorRT/issues/165"),
        lint=("TRT001", "TRT002"),
    ),
    Explanation(
        (
            "no kernel image is available for execution on the device",
            "is not supported by this TensorRT release",
            "Assertion major >= 0 && major < 10 failed",
            "cudaErrorNoKernelImageForDevice",
            "CUDA_ERROR_NO_BINARY_FOR_GPU",
        ),
        "The installed TensorRT (or a CUDA library it loads) has no kernels for this GPU's "
        "architecture: the GPU is newer than the release (Blackwell, e.g. GeForce RTX 50xx, needs "
        "TensorRT 10.8 or later) or older than it supports (TensorRT 10.5 dropped Volta, sm 7.0; "
        "Pascal, sm 6.x, is refused). A build then skips every tactic ('Skipping tactic ... no "
        "kernel image', often beside 'cuTensor permutate execute failed') and produces no engine.",
        _NEWER_ENV,
        "notebooks/00_environment.ipynb",
        sources=(
            "https://github.com/NVIDIA/Stable-Diffusion-WebUI-TensorRT/issues/165",
            f"{_TRT}4317",
            "https://github.com/lightvector/KataGo/issues/1041",
            "https://github.com/ArgoHA/D-FINE-seg/issues/20",
        ),
    ),
    Explanation(
        (
            "CUDA driver version is insufficient for CUDA runtime version",
            "cudaErrorInsufficientDriver",
            "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
            "forward compatibility was attempted on non supported HW",
        ),
        "The CUDA libraries in the environment need a newer driver than the one installed: the "
        "CUDA 13 wheels (tensorrt-cu13, cuda-python 13, onnxruntime-gpu 1.27+, cupy-cuda13x) need "
        "driver 580 or newer, the CUDA 12 ones 525 or newer; or a container brings CUDA "
        "forward-compatibility libraries that this GPU does not support.",
        "`nvidia-smi` shows the newest CUDA the driver supports (top right). Install the "
        "environment for that major (environment-cu12.yml, or `CUDA_MAJOR=12 GPU=1 bash setup.sh`) "
        "or update the driver.",
        "notebooks/00_environment.ipynb",
        sources=(
            "https://github.com/nagadomi/nunif/issues/702",
            "https://github.com/NVIDIA-AI-IOT/torch2trt/issues/711",
            "https://github.com/wang-xinyu/tensorrtx/issues/901",
        ),
    ),
    Explanation(
        ("Cuda Runtime (invalid argument)", "cudaErrorInvalidValue"),
        "A CUDA call inside TensorRT got an argument that is not valid in the current context. "
        "At exit ('defaultAllocator.cpp::deallocate'): TensorRT freed its memory after the context "
        "was gone, typically pycuda.autoinit's exit handler popped it before the engine and "
        "execution context were deleted. During an enqueue ('runner.cpp::execute', "
        "'genericReformat ... executeMemcpy'): a tensor address is not device memory of this "
        "context (a freed or host buffer, one from another context or GPU) or is too small "
        "for the shape that was set.",
        "Delete the execution context and engine before the CUDA context is released (the "
        "workbook's TensorRTBackend.close() does it in order); allocate buffers in the engine's "
        "context after set_input_shape, sized from context.get_tensor_shape.",
        "notebooks/04_binding_allocation.ipynb",
        sources=(
            f"{_TRT}3025",
            f"{_TRT}2894",
            f"{_TRT}3469",
            "https://github.com/ChuRuaNh0/FastSam_Awsome_TensorRT/issues/9",
        ),
    ),
    Explanation(
        ("explicit_context_dependent failed", "no currently active context"),
        "A pycuda object (stream, mem_alloc, pagelocked array, event) was made in a thread "
        "with no pycuda context current. cuda.init() creates none, and a new thread starts "
        "with none.",
        "Make a context current first: `with CudaContext.primary().activate():` (or import "
        "pycuda.autoprimaryctx on the main thread), and push it in worker threads.",
        "notebooks/03_cuda_context_setup.ipynb",
        sources=("https://github.com/OpenPPL/ppq/issues/511",),
        lint=("TRT010", "TRT002"),
    ),
    Explanation(
        ("failed: not initialized", "initialization error", "CUDA_ERROR_NOT_INITIALIZED"),
        "The CUDA driver is not initialised in this process: a pycuda call ran before "
        "pycuda.driver.init() (which pycuda.autoinit / autoprimaryctx call on import), or the "
        "process was forked after CUDA had started (multiprocessing's default 'fork' on Linux, "
        "web-server worker processes); CUDA does not survive a fork.",
        "Call pycuda.driver.init() (or import pycuda.autoprimaryctx) before any other pycuda call; "
        "with multiprocessing use the 'spawn' start method and create engines, contexts and "
        "buffers inside the worker; in a web server load the model after the workers start.",
        "notebooks/03_cuda_context_setup.ipynb",
        sources=(
            "https://github.com/wang-xinyu/tensorrtx/issues/1149",
            "https://github.com/cong/yolov5_deepsort_tensorrt/issues/3",
        ),
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
        (
            "cuMemcpyHtoDAsync failed: invalid argument",
            "cuMemcpyDtoHAsync failed: invalid argument",
            "cuMemcpyHtoD failed: invalid argument",
        ),
        "The host array and the device buffer of a copy do not match: the image was preprocessed "
        "to another size than the buffers were made for (an SCRFD export at 640 fed 1280x736, "
        "buffers sized from an engine shape with -1), or the host array is not one contiguous "
        "block of the expected dtype.",
        "Size buffers after set_input_shape for the size you feed (context.get_tensor_shape), "
        "check host.nbytes equals the device buffer's size, and copy from np.ascontiguousarray "
        "of the right dtype (float32 unless the engine says otherwise).",
        "notebooks/04_binding_allocation.ipynb",
        sources=(
            "https://github.com/jkjung-avt/tensorrt_demos/issues/266",
            "https://github.com/OpenPPL/ppq/issues/461",
            "https://github.com/Star-Clouds/CenterFace/issues/71",
        ),
        lint=("TRT003",),
    ),
    Explanation(
        (
            "plan file is not compatible",
            "generated on an incompatible device",
            "Version tag does not match",
        ),
        "The engine was built by another TensorRT version or for another GPU; plans are "
        "tied to both unless built version/hardware compatible.",
        "Rebuild the engine on this machine with this TensorRT (the engine cache keys on "
        "GPU and TensorRT version), or build with VERSION_COMPATIBLE / "
        "hardware_compatibility_level.",
        "notebooks/02_engine_building.ipynb",
        sources=(f"{_TRT}2195", "https://github.com/yuvraj108c/ComfyUI-Upscaler-Tensorrt/issues/34"),
    ),
    Explanation(
        ("Magic tag does not match", "kPLAN_MAGIC_TAG"),
        "The bytes given to deserialize_cuda_engine are not a TensorRT plan: an .onnx file, a "
        "truncated or text file, or a plan another tool saved behind a header of its own.",
        "Pass the bytes that build_serialized_network produced, read with open(path, 'rb'); with "
        "the workbook, `python -m helpers build MODEL` writes them into the engine cache "
        "(data/engines/).",
        "notebooks/02_engine_building.ipynb",
        sources=("https://github.com/lix19937/tensorrt-insight/issues/65", f"{_TRT}2915"),
    ),
    Explanation(
        (
            "getPluginCreator could not find plugin",
            "IPluginCreator not found in Plugin Registry",
            "Plugin not found, are the plugin name, version, and namespace correct",
        ),
        "The ONNX or the engine uses an operator TensorRT runs as a plugin, and no plugin of "
        "that name is registered in this process: TensorRT's own plugins were not initialised, "
        "a custom plugin library was not loaded, or the ONNX has an op TensorRT does not support "
        "(it then tries a plugin of the op's name). insightface's SCRFD exports need no plugin.",
        "Call trt.init_libnvinfer_plugins(logger, '') before parsing or deserializing; load a "
        "custom plugin's library (ctypes.CDLL) first; or re-export the ONNX without that op.",
        "notebooks/02_engine_building.ipynb",
        sources=(f"{_TRT}1457", f"{_TRT}263", "https://github.com/onnx/onnx-tensorrt/issues/553"),
    ),
    Explanation(
        ("Network has dynamic or shape inputs, but no optimization profile has been defined",),
        "The SCRFD ONNX has dynamic H/W (or batch) and the build config has no optimization profile.",
        "Add a profile: p = builder.create_optimization_profile(); p.set_shape(name, min, "
        "opt, max); config.add_optimization_profile(p). Or fix the input shape in the ONNX.",
        "notebooks/02_engine_building.ipynb",
        sources=("https://github.com/SthPhoenix/InsightFace-REST/issues/83",),
    ),
    Explanation(
        ("does not satisfy any optimization profile", "exceed min ~ max range"),
        "set_input_shape got an input size outside the engine's optimization profile (min..max): "
        "e.g. a 1280x736 frame on an engine built for at most 640x640.",
        "Rebuild with the sizes you feed: `python -m helpers build MODEL --size 1x3x736x1280` "
        "(`detect --input-size 1280 736` widens the profile itself), or letterbox every frame "
        "to a size inside the profile.",
        "notebooks/02_engine_building.ipynb",
        sources=(f"{_TRT}4011", "https://github.com/yuvraj108c/ComfyUI-Upscaler-Tensorrt/issues/14"),
    ),
    Explanation(
        ("InstanceNormalization does not support dynamic inputs",),
        "The scrfd_*_gnkps exports use GroupNorm, exported as InstanceNormalization, which older "
        "TensorRT ONNX parsers cannot import with a dynamic input size.",
        "Build at one fixed size (`python -m helpers build MODEL --min 640 --opt 640 --max 640`) "
        "or fix the input shape in the ONNX before building.",
        "notebooks/02_engine_building.ipynb",
        sources=("https://github.com/deepinsight/insightface/issues/1980",),
    ),
    Explanation(
        ("generated with INT64 weights", "Attempting to cast down to INT32"),
        "A warning, not an error: SCRFD exports keep shape constants in INT64 and the ONNX parser "
        "casts them to INT32. It is in almost every SCRFD build log and is not why anything failed.",
        "Nothing to fix; look for the lines logged as errors ([E]) instead.",
        "notebooks/02_engine_building.ipynb",
        sources=(
            "https://github.com/SthPhoenix/InsightFace-REST/issues/44",
            "https://github.com/SthPhoenix/InsightFace-REST/issues/83",
        ),
    ),
    Explanation(
        ("Could not find any implementation for node",),
        "No implementation (tactic) of that layer fits the builder's memory limit: the workspace "
        "was set too small, or other processes hold most of the GPU's memory.",
        "Raise --workspace (or leave it unset: TensorRT may then use the GPU's memory), free the GPU "
        "of other users during the build.",
        "notebooks/02_engine_building.ipynb",
        sources=(
            f"{_TRT}1766",
            "https://github.com/dusty-nv/jetson-inference/issues/1499",
            "https://github.com/wang-xinyu/tensorrtx/issues/855",
        ),
    ),
    Explanation(
        ("Address is not set for",),
        "An input or output tensor had no device address when the enqueue started, so it "
        "was refused (the call returns False).",
        "Call context.set_tensor_address(name, ptr) for every I/O tensor, by name, before "
        "each enqueue, and again after reallocating a buffer.",
        "notebooks/05_execute_v2_vs_v3.ipynb",
        sources=("https://github.com/hamdiboukamcha/Yolo-V11-cpp-TensorRT/issues/6",),
        lint=("TRT004",),
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
        sources=(f"{_TRT}3965",),
        lint=("TRT006",),
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
        lint=("TRT007",),
    ),
    Explanation(
        ("module 'tensorrt' has no attribute", "libnvinfer"),
        "No usable TensorRT: only the type stubs (an empty namespace package) or the "
        "placeholder wheel are installed, or its libraries are not found.",
        "Install TensorRT for your driver's CUDA major (`GPU=1 bash setup.sh`, or "
        "environment-cu12.yml / environment-cu13.yml; pip install tensorrt-cu12 or tensorrt-cu13 "
        "with --extra-index-url https://pypi.nvidia.com); `python -m helpers doctor` says what is there.",
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
        "The outputs were never written (the enqueue failed, and its False return or the "
        "TensorRT log went unread) or were read too early (the host buffer before the stream "
        "finished). Outputs picked by position instead of by name are another fault: written, "
        "but the wrong tensors, which gives wrong faces or none rather than zero scores.",
        "Check the bool from execute_async_v3, synchronize the stream before reading, "
        "poison outputs with NaN (HostDeviceBuffer.poison) to see unwritten ones, map "
        "outputs by tensor name, and look for 'invalid resource handle' in the log.",
        "notebooks/05_execute_v2_vs_v3.ipynb",
        lint=("TRT004", "TRT005", "TRT009"),
    ),
    Explanation(
        ("an illegal memory access was encountered", "CUDA_ERROR_ILLEGAL_ADDRESS", "cudaErrorIllegalAddress"),
        "A kernel read or wrote outside a buffer: buffers sized from engine shapes with -1 "
        "(dynamic dims), sized for a smaller input than set_input_shape was given, or freed. "
        "The error is sticky: the process's context is unusable afterwards.",
        "Size buffers from context.get_tensor_shape after set_input_shape (infer_shapes() "
        "must return []), keep them alive until the stream synchronized, restart the process.",
        "notebooks/05_execute_v2_vs_v3.ipynb",
        sources=(f"{_TRT}1469",),
        lint=("TRT003",),
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
    """The known failures whose identifying text occurs in `error_text`, in the order they first
    appear there (a pasted log reads top to bottom; ties keep table order)."""
    lowered = error_text.lower()
    found = [(at, i) for i, row in enumerate(EXPLANATIONS) if (at := row.position(lowered)) is not None]
    return [EXPLANATIONS[i] for _, i in sorted(found)]
