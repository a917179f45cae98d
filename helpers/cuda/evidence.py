"""The GPU evidence recorded on an H100 (reports/gpu_evidence.json), and timing tables.

Notebooks 03 and 05 run their CUDA cells live where a GPU is; without one they show what the
same demonstrations gave on the H100, labelled with the machine, date and command. Timing
results, live or recorded, stand-in or TensorRT, print through the same table.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

EVIDENCE = Path(__file__).resolve().parents[2] / "reports" / "gpu_evidence.json"
REPRODUCE = (
    "to reproduce it on your GPU, from the repository root (needs pycuda, cuda-python and nvcc):\n"
    "  python scripts/gpu_evidence.py --out my_evidence.json"
)


def load_recorded(path: Path = EVIDENCE) -> dict[str, Any] | None:
    """The recorded report, or None where the checkout has none."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def recorded_header(report: dict[str, Any], command: bool = False) -> str:
    """Which machine and when (and with `command`, how to reproduce it): the label every recorded
    output carries. The command shown is the one a reader runs, not the one the record came from
    (that one also installed wheels on the recording machine)."""
    gpu = report.get("doctor", {}).get("gpu", {})
    device = gpu["devices"][0]["name"] if gpu.get("devices") else "an unknown GPU"
    label = (
        f"RECORDED on {device} (CUDA driver {gpu.get('driver_cuda_version', '?')}), "
        f"{report.get('recorded_at', 'date not recorded')}; CUDA-level stand-in, not TensorRT"
    )
    return f"{label}\n{REPRODUCE}" if command else label


def recorded_source(path: Path = EVIDENCE) -> str:
    """The label of the recorded evidence with the command that reproduces it on your GPU."""
    report = load_recorded(path)
    if report is None:
        return f"no recorded evidence at {path}: {REPRODUCE}"
    return recorded_header(report, command=True)


def recorded_checks(*names: str, path: Path = EVIDENCE) -> str:
    """The recorded observations `names` (all when none given), under the label."""
    report = load_recorded(path)
    if report is None:
        return f"no recorded evidence at {path}: {REPRODUCE}"
    rows = {c["name"]: c for c in report.get("checks", [])}
    lines = [recorded_header(report)]
    for name in names or tuple(rows):
        row = rows.get(name)
        text = f"{row['observed']}  [{'as expected' if row['pass'] else 'NOT as expected'}]" if row else "-"
        lines.append(f"  {name}: {text}")
    return "\n".join(lines)


def recorded_benchmark(path: Path = EVIDENCE) -> str:
    """The recorded stand-in benchmark as a table, under the label."""
    report = load_recorded(path)
    if report is None or "benchmark" not in report:
        return f"no recorded benchmark at {path}: {REPRODUCE}"
    return f"{recorded_header(report)}\n\n{benchmark_table(report['benchmark'])}"


def ratios(variants: dict[str, Any]) -> dict[str, float]:
    """Each variant's median over the previous one's, GPU (events) and wall (host) time."""
    names = list(variants)
    found = {}
    for before, after in pairwise(names):
        a, b = variants[before], variants[after]
        found[f"gpu {after} / {before}"] = b["gpu_ms"]["total"]["median"] / a["gpu_ms"]["total"]["median"]
        found[f"wall {after} / {before}"] = b["wall_ms"]["median"] / a["wall_ms"]["median"]
    return found


def benchmark_table(results: dict[str, Any]) -> str:
    """A fixed-width table of `{"variants": {name: {"gpu_ms", "wall_ms"}}, "ratios_of_medians"}`."""
    head = f"{'variant':<18}{'GPU med':>9}{'p90':>8}{'p99':>8}{'wall med':>10}{'p99':>8}"
    head += "  GPU split (medians, ms)"
    lines = [head, "-" * len(head)]
    for name, r in results["variants"].items():
        gpu, wall = r["gpu_ms"], r["wall_ms"]
        total = gpu["total"]
        split = ", ".join(f"{k} {v['median']:.3f}" for k, v in gpu.items() if k != "total")
        lines.append(
            f"{name:<18}{total['median']:>9.3f}{total['p90']:>8.3f}{total['p99']:>8.3f}"
            f"{wall['median']:>10.3f}{wall['p99']:>8.3f}  {split}"
        )
    n = next(iter(results["variants"].values()))["wall_ms"]["n"]
    lines.append(f"(ms; {n} timed runs each)")
    lines += [f"{key}: {value:.3f}" for key, value in results.get("ratios_of_medians", {}).items()]
    return "\n".join(lines)
