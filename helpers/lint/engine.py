"""Walk files, folders and notebooks; parse each with `ast` and run every check on it.

A notebook's code cells are joined into one program (the thread started in cell 5 runs the
function of cell 3) and each finding is mapped back to `PATH:cell N:LINE:COL`, N counting every
cell of the notebook from 1 and LINE the line inside that cell. IPython magics and shell lines
become `pass` so the rest of the cell is still checked. A `# noqa` or `# noqa: TRT004` comment
on a line silences that line.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from helpers.lint.checks import CHECKS
from helpers.lint.program import Program
from helpers.lint.rules import RULES, Finding

_SKIP_DIRS = frozenset({".git", ".venv", "venv", "__pycache__", "node_modules", ".ipynb_checkpoints", ".tox"})
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z0-9, ]+))?", re.IGNORECASE)
_MAGIC = re.compile(r"^(\s*)(?:[%!]|\w[\w., ]*=\s*!)|^\s*\S.*\?\s*$")
_PYTHON_CELL_MAGICS = ("%%time", "%%timeit", "%%capture")


@dataclass
class LintResult:
    """Every finding, and every file that could not be read or parsed (one line each)."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> int:
        """The exit status: 2 when a file failed, 1 with findings, 0 when clean."""
        return 2 if self.errors else 1 if self.findings else 0


@dataclass(frozen=True)
class Source:
    """One program's text, and for a notebook where each of its lines came from."""

    path: str
    code: str
    cells: tuple[tuple[int, int], ...] = ()  # per program line: (cell number, line in cell)

    def where(self, line: int) -> tuple[int | None, int]:
        if not self.cells:
            return None, line
        cell, in_cell = self.cells[line - 1]
        return cell, in_cell


def _python_line(line: str) -> str:
    """A magic or shell line replaced by `pass` at its indentation, so line numbers stay."""
    match = _MAGIC.match(line)
    return f"{match.group(1) or ''}pass" if match else line


def notebook_source(path: str, raw: str) -> Source:
    """The code cells of a notebook as one program, with each line's cell and cell line."""
    try:
        cells = json.loads(raw)["cells"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a notebook ({exc.__class__.__name__}: {exc})") from None
    lines: list[str] = []
    where: list[tuple[int, int]] = []
    for number, cell in enumerate(cells, 1):
        if cell.get("cell_type") != "code":
            continue
        body = cell.get("source", "")
        body = "".join(body) if isinstance(body, list) else str(body)
        cell_lines = body.splitlines()
        if cell_lines and cell_lines[0].startswith("%%"):
            if not cell_lines[0].startswith(_PYTHON_CELL_MAGICS):
                continue  # %%bash, %%writefile...: not Python
            cell_lines[0] = "pass"
        for i, line in enumerate(cell_lines, 1):
            lines.append(_python_line(line))
            where.append((number, i))
        lines.append("")  # a cell ends its last statement
        where.append((number, len(cell_lines) + 1))
    return Source(path, "\n".join(lines) + "\n", tuple(where))


def _silenced(line: str, code: str) -> bool:
    match = _NOQA.search(line)
    if not match:
        return False
    codes = match.group("codes")
    return codes is None or code in {c.strip().upper() for c in codes.split(",")}


def lint_source(source: Source) -> list[Finding]:
    """Every finding in one program (raises SyntaxError when it does not parse)."""
    flags = ast.PyCF_ONLY_AST | (ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if source.cells else 0)  # Jupyter awaits
    program = Program(compile(source.code, source.path, "exec", flags, dont_inherit=True))
    lines = source.code.splitlines()
    findings = {}
    for code, check in CHECKS.items():
        rule = RULES[code]
        for node, detail in check(program):
            line, column = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
            if _silenced(lines[line - 1] if line <= len(lines) else "", code):
                continue
            cell, in_cell = source.where(line)
            message = f"{rule.message}: {detail}" if detail else rule.message
            findings[(line, column, code)] = Finding(
                source.path, in_cell, column, code, message, rule.fix, cell
            )
    return [findings[k] for k in sorted(findings)]


def files_under(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The .py and .ipynb files of `paths`: files as given, folders searched (hidden folders skipped)."""
    for given in map(Path, paths):
        if given.is_dir():
            for path in sorted(given.rglob("*")):
                parts = path.relative_to(given).parts
                hidden = any(p in _SKIP_DIRS or p.startswith(".") for p in parts[:-1])
                if path.suffix in (".py", ".ipynb") and path.is_file() and not hidden:
                    yield path
        else:
            yield given


def _read(path: Path) -> Source:
    raw = path.read_bytes()
    if path.suffix == ".ipynb":
        return notebook_source(str(path), raw.decode("utf-8"))
    encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)  # a coding cookie, a BOM
    return Source(str(path), raw.decode(encoding))


def lint_paths(paths: Iterable[str | Path]) -> LintResult:
    """Lint every file of `paths`; a file that fails is one error line and the others still run."""
    result = LintResult()
    for path in files_under(paths):
        try:
            source = _read(path)
        except FileNotFoundError:
            result.errors.append(f"{path}: no such file or folder; check the path")
            continue
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            result.errors.append(
                f"{path}: cannot read it ({why}); lint reads Python source (UTF-8 or as its coding line "
                "says) and .ipynb notebooks"
            )
            continue
        try:
            result.findings += lint_source(source)
        except SyntaxError as exc:
            cell, line = source.where(exc.lineno or 1)
            where = f"{path}:cell {cell}:{line}" if cell is not None else f"{path}:{line}"
            result.errors.append(
                f"{where}:{exc.offset or 1}: cannot parse it ({exc.msg}); lint checks Python 3 source"
            )
    return result
