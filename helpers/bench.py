"""`python -m helpers bench`: every runner and the whole pipeline, measured side by side in one run.

Ratios are only meaningful between numbers taken in the same process on the same machine,
so the report prints them next to the medians and tails (p90, p99) they come from. GPU
stages are timed with CUDA events that are read after the stream finished; the pipeline
with `perf_counter` around each stage.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
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
    pipeline: dict[str, dict[str, Stats]] = field(default_factory=dict)  # backend -> stage -> stats
    runners: dict[str, dict[str, Stats]] = field(default_factory=dict)  # v2/v3/graph -> stage -> stats
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


def runner_samples(run: Callable[[], dict[str, float]], repeat: int, warmup: int = 5) -> dict[str, Stats]:
    """Statistics of CUDA-event stage timings returned by `run` (one dict of ms per call)."""
    for _ in range(warmup):
        run()
    rows = [run() for _ in range(repeat)]
    return {stage: summarize([r[stage] for r in rows]) for stage in rows[0]}


def ratio(a: Stats, b: Stats) -> float:
    """median(a) / median(b): below 1 means a is faster."""
    return round(a["median"] / b["median"], 3) if b["median"] else float("nan")


def add_ratios(report: BenchReport) -> None:
    r = report.runners
    if "v3" in r and "v2" in r:
        report.ratios["v3_vs_v2_total"] = ratio(r["v3"]["total"], r["v2"]["total"])
    if "graph" in r and "v3" in r:
        report.ratios["graph_vs_v3_total"] = ratio(r["graph"]["total"], r["v3"]["total"])
    for backend, stages in report.pipeline.items():
        report.ratios[f"{backend}_pipeline_vs_inference"] = ratio(stages["total"], stages["inference"])


def tensorrt_runners(model: Path, size: tuple[int, int], repeat: int) -> dict[str, dict[str, Stats]]:
    """v2, v3 and the CUDA graph on one engine's buffers, each timed with CUDA events."""
    from helpers.trt.backend import TensorRTBackend
    from helpers.trt.build import BuildOptions

    w, h = size
    blob = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)
    out = {}
    for method in ("v2", "v3", "graph"):
        with TensorRTBackend(model, method, BuildOptions(sizes=((1, 3, h, w),)), timed=True) as backend:
            name = backend.inputs[0].name

            def once(backend: TensorRTBackend = backend, name: str = name) -> dict[str, float]:
                backend.run({name: blob})
                return backend.timings

            out[method] = runner_samples(once, repeat)
    return out


def machine() -> dict[str, Any]:
    from helpers.cuda.doctor import gpu_report, package_versions

    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "gpu": gpu_report(),
        "packages": package_versions(),
    }


def format_report(report: BenchReport) -> str:
    lines = []
    head = f"{'':<28}{'median':>9}{'p90':>9}{'p99':>9}  ms"
    for title, table in (("pipeline", report.pipeline), ("runner", report.runners)):
        for name, stages in table.items():
            lines.append(f"{title} {name}")
            lines.append(head)
            lines += [
                f"  {stage:<26}{s['median']:>9.3f}{s['p90']:>9.3f}{s['p99']:>9.3f}"
                for stage, s in stages.items()
            ]
    if report.ratios:
        lines.append("ratios of medians (below 1: the first is faster)")
        lines += [f"  {k:<40}{v:>8.3f}" for k, v in report.ratios.items()]
    lines += [f"skipped {k}: {v}" for k, v in report.skipped.items()]
    return "\n".join(lines)
