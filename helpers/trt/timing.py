"""execute_v2, execute_async_v3 and a CUDA graph timed on one TensorRT engine, where TensorRT is.

The TensorRT runner (helpers.trt.runner) runs all three on the same buffers and times each
stage with CUDA events; this collects those laps per method into the same table notebook 05
prints for the CUDA-level stand-in. Outputs are not NaN-poisoned here: the poisoning's extra
synchronisation would be timed too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from helpers.cuda.evidence import ratios
from helpers.cuda.stream import time_runs

LABELS = {"v2": "execute_v2", "v3": "execute_async_v3", "graph": "cuda_graph"}


def tensorrt_timings(
    model: str | Path, size: tuple[int, int] = (640, 640), warmup: int = 20, iterations: int = 200
) -> dict[str, Any]:
    """CUDA-event laps (h2d, infer, d2h) and wall time per call for each method, one engine."""
    from helpers.trt.backend import TensorRTBackend
    from helpers.trt.build import BuildOptions
    from helpers.trt.runner import check_method

    width, height = size
    options = BuildOptions(sizes=((1, 3, height, width),))  # the profile must take this size
    backend = TensorRTBackend(model, options=options, poison=False, timed=True, progress=False)
    try:
        inputs = {backend.inputs[0].name: np.random.default_rng(0).random((1, 3, height, width), np.float32)}

        def step() -> dict[str, float]:
            backend.run(inputs)
            return backend.timings

        variants = {}
        for method, label in LABELS.items():
            backend.method = check_method(method)
            variants[label] = time_runs(step, warmup, iterations)
    finally:
        backend.close()
    return {"variants": variants, "ratios_of_medians": ratios(variants)}
