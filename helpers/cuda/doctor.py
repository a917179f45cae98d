"""What this machine offers the workbook: GPU, driver, CUDA libraries, TensorRT, contexts, photos.

Never fails: each probe that cannot run says why. TensorRT counts only if the module has
`Builder`: with only the type stubs installed, `import tensorrt` succeeds as an empty
namespace package.
"""

from __future__ import annotations

import importlib
import platform
import sys
from collections.abc import Mapping
from dataclasses import asdict
from importlib import metadata
from types import ModuleType
from typing import Any

from helpers.cuda.devices import gpu_report
from helpers.photos import photos_line

# import names; versions come from package metadata, so nothing heavy is imported
PACKAGES = ("pycuda", "cuda", "cupy", "torch", "onnxruntime", "tensorrt", "numpy")
OWN_LINE = ("tensorrt",)  # shown on a line of its own in the report, with what kind of tensorrt it is
_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


def package_versions() -> dict[str, str | None]:
    """Installed distribution(s) and version per import name, None when absent."""
    dists = metadata.packages_distributions()
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        names = sorted(set(dists.get(name, ())))
        found[name] = ", ".join(f"{d} {metadata.version(d)}" for d in names) or None
    return found


def _holds_cuda(name: str, module: Any) -> bool:
    """Whether a loaded module is a CUDA user: CPU onnxruntime, the stub-only `tensorrt`
    namespace and a torch that never initialised CUDA are not."""
    if name == "torch":
        cuda = getattr(module, "cuda", None)
        return bool(cuda and cuda.is_initialized())
    if name == "onnxruntime":
        providers: list[str] = getattr(module, "get_available_providers", list)()
        return any(p in providers for p in _GPU_PROVIDERS)
    if name == "tensorrt":
        return hasattr(module, "Builder")
    return True  # cupy, and pycuda.autoinit / autoprimaryctx, which make a context on import


def cuda_users(modules: Mapping[str, ModuleType | None]) -> list[str]:
    """The libraries in `modules` (a snapshot of sys.modules) that hold CUDA in this process."""
    names = ("torch", "cupy", "onnxruntime", "tensorrt", "pycuda.autoinit", "pycuda.autoprimaryctx")
    return [n for n in names if modules.get(n) is not None and _holds_cuda(n, modules[n])]


def tensorrt_report() -> dict[str, Any]:
    """Whether a real TensorRT is importable (stubs alone give an empty namespace package)."""
    try:
        trt = importlib.import_module("tensorrt")
    except Exception as exc:  # absent, or a placeholder wheel whose libraries are missing
        return {"usable": False, "detail": f"not importable ({type(exc).__name__}: {exc})"}
    if not hasattr(trt, "Builder"):
        return {"usable": False, "detail": "only an empty `tensorrt` namespace (type stubs?)"}
    version = str(getattr(trt, "__version__", "unknown"))
    if getattr(trt, "__trtemu__", False):  # the API emulator: label it, never pass it off as TensorRT
        from helpers.trt.runtime import EMULATOR

        return {"usable": True, "version": f"{version}, {EMULATOR}", "emulator": True}
    return {"usable": True, "version": version, "emulator": False}


def onnxruntime_providers() -> list[str] | None:
    try:
        import onnxruntime
    except Exception:  # not installed or broken: the packages section shows which
        return None
    return list(onnxruntime.get_available_providers())


def context_report() -> dict[str, Any]:
    """The context current on the calling thread, or why it cannot be read."""
    from helpers.cuda.context import current_context

    try:
        info = current_context()
    except Exception as exc:  # no GPU / no cuda-python: gpu_report says which
        return {"summary": f"unknown ({type(exc).__name__}: {exc})"}
    return {**asdict(info), "summary": str(info)}


def advice(report: dict[str, Any]) -> list[str]:
    """Plain warnings drawn from a report (pure)."""
    notes = []
    if not report["gpu"]["available"]:
        notes.append("No GPU: the ONNX Runtime CPU path works; TensorRT and CUDA cells cannot run.")
    if not report["tensorrt"]["usable"]:
        notes.append("No TensorRT: engine building and TensorRT inference cannot run here.")
    users = set(report["cuda_users_loaded"])
    if "pycuda.autoinit" in users:
        notes.append(
            "pycuda.autoinit is loaded: it makes a private context; use pycuda.autoprimaryctx "
            "or CudaContext.primary() so TensorRT, torch and pycuda share one context."
        )
    notes += report.get("cuda_versions", [])
    if report["context"].get("is_primary") is False:
        notes.append("A non-primary context is current on this thread: TensorRT will use it here.")
    return notes


def cuda_version_notes(gpu: dict[str, Any]) -> list[str]:
    """CUDA builds that do not fit the driver or each other (see helpers.cuda.versions)."""
    from helpers.cuda.versions import cuda_builds, cuda_python_version, version_notes

    driver = gpu.get("driver_cuda_version")
    major = int(driver.split(".")[0]) if driver else None
    return version_notes(major, cuda_builds(), cuda_python_version())


def doctor() -> dict[str, Any]:
    """Everything above as one plain dict (JSON-serialisable)."""
    loaded = cuda_users(dict(sys.modules))  # before we import any
    gpu = gpu_report()
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gpu": gpu,
        "packages": package_versions(),
        "tensorrt": tensorrt_report(),
        "onnxruntime_providers": onnxruntime_providers(),
        "context": context_report(),
        "cuda_users_loaded": loaded,
        "photos": photos_line(),
    }
    report["cuda_versions"] = cuda_version_notes(gpu)
    report["advice"] = advice(report)
    return report


def format_report(report: dict[str, Any]) -> str:
    """A short human-readable rendering of `doctor()`."""
    gpu = report["gpu"]
    lines = [f"python      {report['python']} on {report['platform']}"]
    if gpu["available"]:
        lines.append(f"driver      CUDA {gpu['driver_cuda_version']}, runtime {gpu['runtime_cuda_version']}")
        lines += [
            f"gpu {d['index']}       {d['name']} (sm {d['compute_capability']}, {d['memory_gib']} GiB)"
            for d in gpu["devices"]
        ]
    else:
        lines.append(f"gpu         {gpu['reason']}")
    trt, installed = report["tensorrt"], report["packages"].get("tensorrt")
    lines.append(
        f"tensorrt    {trt.get('version') if trt['usable'] else trt['detail']}"
        + (f" [{installed}]" if installed else "")
    )
    packages = report["packages"].items()
    lines += [f"{name:<12}{version or '-'}" for name, version in packages if name not in OWN_LINE]
    lines.append(f"ort         providers {report['onnxruntime_providers']}")
    # Without a GPU the context cannot be read for the same reason, already given on the gpu line.
    context = report["context"]["summary"] if gpu["available"] else "none (no GPU, see above)"
    lines.append(f"context     {context}")
    lines.append(f"cuda users  {', '.join(report['cuda_users_loaded']) or 'none'}")
    lines.append(f"photos      {report.get('photos', 'not looked for')}")
    lines += [f"note        {note}" for note in report["advice"]]
    return "\n".join(lines)
