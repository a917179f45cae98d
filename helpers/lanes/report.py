"""The lanes benchmark's report: where it is kept, and how it reads as a table.

`benchmarks/lanes.py` writes it on a GPU machine (around a stand-in engine, not TensorRT);
notebook 06c shows the recorded one to readers without a GPU, labelled with its machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORT = Path(__file__).resolve().parents[2] / "reports" / "lanes" / "lanes.json"
COLUMNS = ("E ms", "frame", "source", "lanes", "fps", "busy", "x 1 lane")


def load_report(path: Path = REPORT) -> dict[str, Any] | None:
    """The recorded report, or None when there is none (yet) or it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def format_report(report: dict[str, Any]) -> str:
    """fps, engine busy fraction and ratio to one lane per case, under the engine's label and
    over the machine and command they came from."""
    keys = ("engine_ms", "frame", "source", "lanes", "fps", "busy", "vs_1_lane")
    lines = [report["label"], "".join(f"{c:>10}" for c in COLUMNS)]
    lines += ["".join(f"{row[k]:>10}" for k in keys) for row in report["rows"]]
    lines.append(
        f"(busy = frames x E / wall time; {report['gpu']}, model {report['model']}; "
        f"made by: {report['command']})"
    )
    return "\n".join(lines)
