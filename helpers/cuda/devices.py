"""The GPUs this machine has, read through cuda-python without creating a context.

Its own module so that the TensorRT layer (plans are tied to a GPU) and `doctor` can both ask,
with no import running from `helpers.cuda` up into `helpers.trt`.
"""

from __future__ import annotations

from typing import Any

from helpers.cuda.check import call


def gpu_report() -> dict[str, Any]:
    """Driver, runtime and devices through cuda-python; {"available": False, "reason"} if none."""
    try:
        from helpers.cuda import bindings

        driver, runtime = bindings.driver(), bindings.runtime()
        call(driver.cuInit, 0)
        count = call(driver.cuDeviceGetCount)
    except Exception as exc:  # no cuda-python, no libcuda, no device: all mean "no GPU"
        return {"available": False, "reason": f"no GPU usable here ({type(exc).__name__}: {exc})"}
    if not count:
        return {"available": False, "reason": "no GPU: the driver reports 0 devices"}
    return {
        "available": True,
        "driver_cuda_version": _version(call(driver.cuDriverGetVersion)),
        "runtime_cuda_version": _version(call(runtime.cudaRuntimeGetVersion)),
        "devices": [_device(driver, i) for i in range(count)],
    }


def _version(number: int) -> str:
    return f"{number // 1000}.{number % 1000 // 10}"


def _device(driver: Any, index: int) -> dict[str, Any]:
    dev = call(driver.cuDeviceGet, index)
    attr = driver.CUdevice_attribute
    major = call(driver.cuDeviceGetAttribute, attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)
    minor = call(driver.cuDeviceGetAttribute, attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)
    name = call(driver.cuDeviceGetName, 256, dev)
    return {
        "index": index,
        "name": name.split(b"\0", 1)[0].decode(),
        "compute_capability": f"{major}.{minor}",
        "memory_gib": round(call(driver.cuDeviceTotalMem, dev) / 2**30, 1),
    }
