"""The recorded lanes benchmark as a table, for readers without a GPU (notebook 06c, README)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.tables import markdown_table

REPORT = Path(__file__).resolve().parents[2] / "reports" / "lanes" / "lanes.json"
COLUMNS = ("engine_ms", "frame", "source", "lanes", "fps", "busy", "vs_1_lane")


def lanes_table(report: dict) -> str:
    """A markdown table of the cases under the report's label (machine, stand-in engine)."""
    head = f"Recorded on {report['gpu']}: {report['label']}. Command: `{report['command']}`\n\n"
    rows = ([f"{row[c]:.0f}" if c == "fps" else row[c] for c in COLUMNS] for row in report["rows"])
    return head + markdown_table(COLUMNS, rows)


def recorded_lanes(path: Path = REPORT) -> str:
    """The table of the recorded run, or one line saying it was not recorded yet."""
    if not path.is_file():
        return f"not recorded yet: run `python benchmarks/lanes.py --json {path.name}` on a GPU machine"
    return lanes_table(json.loads(path.read_text()))
