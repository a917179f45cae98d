"""Small Markdown tables for the notebooks, rendered from the workbook's own data.

Notebooks show the explain table, dataclass lists and engine-inspector layers as tables
built from the objects themselves, so the text never drifts from the code. Every function
returns a Markdown string; wrap it in `IPython.display.Markdown` to render it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import Any

from helpers.cuda.explain import Explanation

# Engine-inspector keys worth a column, in this order, when a layer is a JSON object.
LAYER_KEYS = ("Name", "LayerType", "TacticName")


def cell(value: Any) -> str:
    """One table cell: floats to 3 significant digits, pipes escaped, line breaks as <br>, None as a dash."""
    text = "–" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; every row must have one value per header."""
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + " --- |" * len(headers)]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {list(row)} has {len(row)} values for {len(headers)} columns")
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def dataclass_table(items: Iterable[Any], columns: Sequence[str] | None = None) -> str:
    """One row per dataclass instance, one column per field (or the `columns` asked for)."""
    items = list(items)
    if not items:
        return "_(none)_"
    if not all(is_dataclass(i) and not isinstance(i, type) for i in items):
        raise TypeError("dataclass_table takes dataclass instances")
    names = list(columns) if columns else [f.name for f in fields(items[0])]
    return markdown_table(names, [[getattr(i, n) for n in names] for i in items])


def mapping_table(data: Mapping[str, Any], headers: tuple[str, str] = ("field", "value")) -> str:
    """A two-column table of a flat mapping; nested values are shown as compact JSON."""
    rows = [[k, json.dumps(v) if isinstance(v, dict | list) else v] for k, v in data.items()]
    return markdown_table(headers, rows)


def _link(see: str, relative_to: str) -> str:
    target = see.removeprefix(relative_to)
    return f"[{target.removesuffix('.ipynb')}]({target})"


def _report_link(url: str) -> str:
    """[TensorRT#4427](url) for an issue or pull request on GitHub."""
    parts = url.rstrip("/").split("/")
    return f"[{parts[-3]}#{parts[-1]}]({url})" if len(parts) >= 4 and parts[-1].isdigit() else url


def explain_table(rows: Iterable[Explanation], relative_to: str = "notebooks/") -> str:
    """Symptom -> cause -> fix, one row per known failure; the notebook link is made relative,
    followed by the public reports of that failure."""
    body = []
    for row in rows:
        first, *others = row.patterns
        symptom = f"`{first}`" + (f"<br>also: {', '.join(f'`{p}`' for p in others)}" if others else "")
        seen = f"<br>seen: {', '.join(_report_link(u) for u in row.sources)}" if row.sources else ""
        body.append([symptom, row.cause, row.fix, _link(row.see, relative_to) + seen])
    return markdown_table(("symptom (text in the log)", "cause", "fix", "notebook"), body)


def layer_rows(inspector_json: str) -> list[list[str]]:
    """Rows (one per layer) of an engine inspector's JSON report.

    With ProfilingVerbosity.DETAILED each layer is an object (name, type, tactic, formats);
    with LAYER_NAMES_ONLY it is just its name; both are read. A report that is not the
    inspector's JSON gives a ValueError.
    """
    try:
        report = json.loads(inspector_json)
    except ValueError as exc:
        raise ValueError(f"not an engine inspector JSON report ({exc})") from None
    layers = report.get("Layers") if isinstance(report, dict) else None
    if not isinstance(layers, list):
        raise ValueError("the report has no 'Layers' list; was it built with profiling verbosity NONE?")
    rows = []
    for layer in layers:
        if isinstance(layer, dict):
            rows.append([str(layer.get(k, "–")) for k in LAYER_KEYS])
        else:
            rows.append([str(layer), "–", "–"])
    return rows


def layer_table(inspector_json: str, limit: int = 25) -> str:
    """The first `limit` layers of an inspector report as a table, with the total count."""
    rows = layer_rows(inspector_json)
    table = markdown_table(("layer", "type", "tactic"), rows[:limit])
    more = f"\n\n_{len(rows) - limit} more layers not shown._" if len(rows) > limit else ""
    return f"{len(rows)} layers\n\n{table}{more}"
