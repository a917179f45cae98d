"""Run the workbook's notebooks headless and check how they are committed.

The tests and the GPU report execute notebooks the same way: nbclient, the python3 kernel,
working folder notebooks/ (so relative paths in cells hold), the environment inherited (so
SCRFD_MODEL_DIR reaches the kernel). nbformat and nbclient come with the `notebooks` extra.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from helpers.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BENCHMARKS = ROOT / "benchmarks"
LAST = 8  # 08 is the last notebook: it points to no next one
_LINK = re.compile(r"\]\((\d\d)_[\w.-]+\.ipynb\)")


def benchmark_module(name: str) -> ModuleType:
    """A module of benchmarks/ (such as the faithful insightface reference), loaded from its file.

    benchmarks/ stays outside the package on purpose, so no sys.path edit is needed and the
    kernel's working folder does not matter: the path comes from this checkout's location.
    """
    path = BENCHMARKS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmarks.{name}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise UserError(f"no {path}: benchmarks/ comes with a clone of the repository, not with the package")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook_files(folder: Path = NOTEBOOKS) -> list[Path]:
    """The numbered notebooks, in order (a letter after the number inserts a chapter)."""
    return sorted(folder.glob("[0-9][0-9]*_*.ipynb"))  # 06b_ sorts after 06_, before 07_


def execute(path: Path, timeout: int = 300, allow_errors: bool = False, cwd: Path | None = None) -> Any:
    """The notebook at `path`, executed top to bottom; raises on the first failing cell unless
    `allow_errors` (then every cell runs and errors stay in the outputs). The kernel starts in
    the notebook's folder, as JupyterLab starts it, unless `cwd` says otherwise."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(cwd or path.parent)}},
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


# Code that only works while the kernel runs in notebooks/: a sys.path edit or a "../" path.
_CWD_DEPENDENT = re.compile(r"sys\.path|[\"']\.\./")


def cwd_dependencies(nb: Any) -> list[str]:
    """Code lines that depend on the kernel's working folder (use helpers.notebooks.ROOT instead)."""
    return [
        f"cell {i}: {line.strip()}"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if _CWD_DEPENDENT.search(line)
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
