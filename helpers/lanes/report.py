"""The lanes benchmark's report: where it is kept, and how it reads as a table.

`benchmarks/lanes.py` writes it on a GPU machine (around a stand-in engine, not TensorRT);
notebook 06c shows the recorded one to readers without a GPU, labelled with its machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORT = Path(__file__).resolve().parents[2] / "reports" / "lanes" / "lanes.json"
HEADER = f"{'frame':>9} {'source':>8} {'E ms':>5} {'lanes':>5} {'fps':>8} {'busy':>6} {'x 1 lane':>8}"


def load_report(path: Path = REPORT) -> dict[str, Any] | None:
    """The recorded report, or None when there is none (yet) or it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def format_row(row: dict[str, Any]) -> str:
    return (
        f"{row['frame']:>9} {row['source']:>8} {row['busy_ms']:>5} {row['lanes']:>5} {row['fps']:>8} "
        f"{row['busy']:>6} {row['ratio_to_1_lane']:>8}"
    )


def format_report(report: dict[str, Any]) -> str:
    """The table, the engine's label and the machine and command it came from."""
    machine = report["machine"]
    lines = [f"{report['engine']}; {report['frames_per_measurement']} frames each", HEADER]
    lines += [format_row(r) for r in report["rows"]]
    lines.append(
        f"(busy = frames x E / wall time; model {report['model']}; {machine['gpu']}, CuPy {machine['cupy']}; "
        f"made by: {report['command']})"
    )
    return "\n".join(lines)
