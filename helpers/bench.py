"""`python -m helpers bench`: every runner and the whole pipeline, measured side by side in one run.

Ratios are only meaningful between numbers taken in the same process on the same machine,
so the report prints them next to the medians and tails (p90, p99) they come from. GPU
stages are timed with CUDA events that are read after the stream finished; the pipeline
with `perf_counter` around each stage.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from helpers.cuda.stream import summarize
from helpers.detector import Detector

Stats = dict[str, float]


@dataclass
class BenchReport:
    """Everything one `bench` run measured, plus what it could not run and why."""

    machine: dict[str, Any]
    run: dict[str, Any] = field(default_factory=dict)  # model, image, input size, repeat: what was timed
    pipeline: dict[str, dict[str, Stats]] = field(default_factory=dict)  # backend -> stage -> stats
    runners: dict[str, dict[str, Any]] = field(default_factory=dict)  # v2/v3/graph -> gpu_ms, wall_ms
    ratios: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def stage_samples(detector: Detector, image: np.ndarray, repeat: int, warmup: int = 3) -> dict[str, Stats]:
    """Per-stage statistics of `repeat` full detections (after a few warm-up runs)."""
    for _ in range(warmup):
        detector.run(image)
    rows = [detector.run(image).timings for _ in range(repeat)]
    stages = {
        "preprocess": [t.preprocess for t in rows],
        "inference": [t.inference for t in rows],
        "postprocess": [t.postprocess for t in rows],
        "total": [t.preprocess + t.inference + t.postprocess for t in rows],
    }
    return {name: summarize(values) for name, values in stages.items()}


def ratio(a: Stats, b: Stats) -> float:
    """median(a) / median(b): above 1 means a takes longer."""
    return round(a["median"] / b["median"], 3) if b["median"] else float("nan")


def add_ratios(report: BenchReport) -> None:
    for backend, stages in report.pipeline.items():
        report.ratios[f"{backend}_pipeline_vs_inference"] = ratio(stages["total"], stages["inference"])


def gpu_runners(model: Path, size: tuple[int, int], repeat: int, report: BenchReport) -> None:
    """execute_v2 / execute_async_v3 / CUDA graph on TensorRT; without TensorRT but with a GPU,
    the CUDA-level stand-in (same copies and synchronisation, not TensorRT), labelled as such."""
    from helpers.cuda.demos import gpu_check
    from helpers.trt.backend import tensorrt_available

    trt_ok, trt_why = tensorrt_available()
    if trt_ok:
        from helpers.trt.runtime import EMULATOR, is_emulator
        from helpers.trt.timing import tensorrt_timings

        found = tensorrt_timings(model, size, iterations=repeat)
        prefix = EMULATOR if is_emulator() else "tensorrt"
    else:
        report.skipped["tensorrt"] = trt_why
        gpu_ok, gpu_why = gpu_check()
        if not gpu_ok:
            report.skipped["cuda stand-in"] = gpu_why
            return
        from helpers.cuda.context import CudaContext
        from helpers.cuda.demos import benchmark, compile_kernels

        ctx = CudaContext.primary()
        try:
            with ctx.activate():
                found = benchmark(compile_kernels()[0], ctx, iterations=repeat)
        finally:
            ctx.release()
        prefix = "cuda stand-in (not TensorRT)"
    report.runners = {f"{prefix} {name}": v for name, v in found["variants"].items()}
    report.ratios.update({f"{prefix}: {k}": round(v, 3) for k, v in found["ratios_of_medians"].items()})


def machine() -> dict[str, Any]:
    from helpers.cuda.doctor import gpu_report, package_versions

    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "gpu": gpu_report(),
        "packages": package_versions(),
    }


def format_report(report: BenchReport) -> str:
    from helpers.cuda.evidence import benchmark_table

    lines = [", ".join(f"{k} {v}" for k, v in report.run.items())] if report.run else []
    head = f"{'':<28}{'median':>9}{'p90':>9}{'p99':>9}  ms"
    for name, stages in report.pipeline.items():
        lines += [f"pipeline {name}", head]
        lines += [
            f"  {stage:<26}{s['median']:>9.3f}{s['p90']:>9.3f}{s['p99']:>9.3f}" for stage, s in stages.items()
        ]
    if report.runners:
        lines += ["runners (CUDA events)", benchmark_table({"variants": report.runners})]
    if report.ratios:
        lines.append("ratios of medians (below 1: the first named is faster)")
        lines += [f"  {k:<52}{v:>8.3f}" for k, v in report.ratios.items()]
    lines += [f"skipped {k}: {v}" for k, v in report.skipped.items()]
    return "\n".join(lines)
