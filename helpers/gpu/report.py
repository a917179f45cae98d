"""The GPU pre/post benchmark's report: where it is kept, and how it reads as a table.

`benchmarks/gpu_prepost.py` writes it on a GPU machine; notebook 06b shows the recorded one to
readers without a GPU, labelled with the machine it ran on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORT = Path(__file__).resolve().parents[2] / "reports" / "gpu_prepost.json"
GPU_STEPS = ("gpu", "gpu_graph", "gpu_graph_pinned")


def load_report(path: Path = REPORT) -> dict[str, Any] | None:
    """The recorded report, or None when there is none (yet) or it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def format_report(report: dict[str, Any]) -> str:
    """Medians per frame (wall), the ratios, the CUDA-event laps and the machine, as text."""
    rows, machine = report["results"], report["machine"]
    real = report.get("insightface") and all("insightface" in r["median_ms"] for r in rows)
    lines = [
        f"recorded on {machine['gpu']} ({machine['cpu']}): pre+post per frame, median ms (wall)",
        f"{'frame':<11}{'faces':>6}"
        + (f"{'insightface':>13}" if real else "")
        + f"{'reference':>11}{'cpu':>9}"
        + "".join(f"{g:>18}" for g in GPU_STEPS),
    ]
    for r in rows:
        m = r["median_ms"]
        ref, ours = m["reference_pre"] + m["reference_post"], m["ours_pre"] + m["ours_post"]
        lines.append(
            f"{r['frame']:<11}{r['faces']['gpu']:>6}"
            + (f"{m['insightface']:>13.3f}" if real else "")
            + f"{ref:>11.3f}{ours:>9.3f}"
            + "".join(f"{m[g]:>18.3f}" for g in GPU_STEPS)
        )
    lines.append(
        f"insightface = insightface {report['insightface']}'s SCRFD.detect; reference = a re-implementation"
        if real
        else "reference = benchmarks/scrfd_reference.py (insightface's pipeline re-implemented)"
    )
    lines.append("ratios (reference or cpu time / the other's; above 1: the other is faster)")
    lines += [f"{r['frame']:<11}" + "  ".join(f"{k} {v:.2f}" for k, v in r["ratios"].items()) for r in rows]
    lines.append("CUDA events, median ms")
    for r in rows:
        for variant, laps in r["cuda_event_ms"].items():
            lines.append(
                f"{r['frame']:<11}{variant:<11}" + "  ".join(f"{k} {v:.4f}" for k, v in laps.items())
            )
    warmed = "every case warmed up first" if report.get("warm_up") else "recorded before warm-ups were added"
    lines.append(
        f"({report['repeat']} runs each, {warmed}, model {report['model']}; {machine['cpu']}; "
        f"{machine['gpu']}, CuPy {machine['cupy']}; made by: {report['command']})"
    )
    return "\n".join(lines)


def speed_table(report: dict[str, Any]) -> str:
    """The README's GPU Speed table (markdown), every number and ratio read from `report`."""
    real = bool(report.get("insightface")) and all("insightface" in r["median_ms"] for r in report["results"])
    first = [f"insightface {report['insightface']} (CPU)"] if real else []
    head = [
        *first,
        "re-implementation (CPU)",
        "`helpers` CPU",
        "GPU",
        "GPU + CUDA graph",
        "graph, frame pinned",
    ]
    lines = ["| frame | " + " | ".join(head) + " |", "| --- |" + " --- |" * len(head)]
    for r in report["results"]:
        m = r["median_ms"]
        base = m["insightface"] if real else m["reference_pre"] + m["reference_post"]
        ours = m["ours_pre"] + m["ours_post"]
        cells = [m["insightface"]] if real else []
        cells += [m["reference_pre"] + m["reference_post"], ours, *(m[g] for g in GPU_STEPS)]
        text = [
            f"{v:.2f} ms" if i < len(first) + 1 else f"{v:.2f} ms ({base / v:.1f}×)"
            for i, v in enumerate(cells)
        ]
        lines.append(f"| {r['frame'].replace('x', '×')} | " + " | ".join(text) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m helpers.gpu.report: the Speed table of the recorded report
    recorded = load_report()
    print(
        speed_table(recorded) if recorded else f"no report at {REPORT}: run benchmarks/gpu_prepost.py --json"
    )
