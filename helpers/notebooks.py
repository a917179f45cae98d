"""Run the workbook's notebooks headless and check how they are committed.

The tests and the GPU report execute notebooks the same way: nbclient, the python3 kernel,
working folder notebooks/ (so relative paths in cells hold), the environment inherited (so
SCRFD_MODEL_DIR reaches the kernel). nbformat and nbclient come with the `notebooks` extra.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LAST = 8  # 08 is the last notebook: it points to no next one
_LINK = re.compile(r"\]\((\d\d)_[\w.-]+\.ipynb\)")


def notebook_files(folder: Path = NOTEBOOKS) -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def execute(path: Path, timeout: int = 300, allow_errors: bool = False) -> Any:
    """The notebook at `path`, executed top to bottom; raises on the first failing cell unless
    `allow_errors` (then every cell runs and errors stay in the outputs)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def output_problems(nb: Any) -> list[str]:
    """Code cells committed with outputs or execution counts (a tutorial is committed clean)."""
    return [
        f"cell {i} has {'outputs' if cell.get('outputs') else 'an execution count'}"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def ending_problems(nb: Any, number: int, folder: Path = NOTEBOOKS) -> list[str]:
    """The last cell must be 'What you should remember' and link the next notebook (n + 1)."""
    last = nb.cells[-1] if nb.cells else None
    if last is None or last.cell_type != "markdown" or "what you should remember" not in last.source.lower():
        return ["the last cell is not a markdown 'What you should remember' cell"]
    if number >= LAST:
        return []
    links = [m for m in _LINK.finditer(last.source) if int(m.group(1)) == number + 1]
    if not links:
        return [f"the last cell links no notebook {number + 1:02d}_*.ipynb"]
    existing = {p.name for p in folder.glob(f"{number + 1:02d}_*.ipynb")}
    target = links[0].group(0)[2:-1]
    if existing and target not in existing:
        return [f"the last cell links {target}, but the next notebook is {sorted(existing)}"]
    return []


def error_outputs(nb: Any) -> list[str]:
    """'ename: evalue' of every error output of an executed notebook."""
    return [
        f"{out.ename}: {out.evalue}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.output_type == "error"
    ]
