"""Unified diffs of two scripts function by function, each hunk headed by its function.

A list of changed lines joins lines of different functions, so a line reads as if it belonged
to its neighbour's function. Here each diff compares one function of the first script with one
of the second (functions nested in it collapsed to their signature, shown by their own diff),
and every `@@` header carries the real line numbers and the `def` the hunk is in, as `git diff`
shows them.
"""

from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path

MODULE = "<module>"  # the top level of a script, its docstring left out and its functions collapsed
_DEF = re.compile(r"^(\s*)(?:async\s+)?(?:def|class)\s")
_Functions = (ast.FunctionDef, ast.AsyncFunctionDef)


def _find(tree: ast.Module, name: str) -> ast.AST:
    node: ast.AST = tree
    for part in name.split("."):
        body = getattr(node, "body", [])
        found = [n for n in body if isinstance(n, (*_Functions, ast.ClassDef)) and n.name == part]
        if not found:
            raise ValueError(f"no {name} in the script")
        node = found[0]
    return node


def function_lines(text: str, name: str = MODULE) -> list[tuple[int, str]]:
    """(line number, text) of function `name` ("main.worker" for a nested one, MODULE for the top
    level), the functions directly inside it collapsed to their signature and `...`."""
    lines = text.splitlines()
    tree = ast.parse(text)
    node = tree if name == MODULE else _find(tree, name)
    if isinstance(node, ast.Module):
        doc = node.body[0] if node.body and ast.get_docstring(node) is not None else None
        first, last = (doc.end_lineno or 0) + 1 if doc else 1, len(lines)
    else:
        assert isinstance(node, (*_Functions, ast.ClassDef))
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        last = node.end_lineno or node.lineno
    hidden: dict[int, int] = {}  # first hidden line -> last one, of each collapsed function
    for child in getattr(node, "body", []):
        if isinstance(child, _Functions):
            hidden[child.body[0].lineno] = child.end_lineno or child.body[0].lineno
    out: list[tuple[int, str]] = []
    number = first
    while number <= last:
        if number in hidden:
            indent = len(lines[number - 1]) - len(lines[number - 1].lstrip())
            out.append((number, " " * indent + "..."))
            number = hidden[number] + 1
            continue
        out.append((number, lines[number - 1]))
        number += 1
    while out and not out[-1][1].strip():
        out.pop()
    return out


def enclosing(lines: list[str], index: int) -> str:
    """The innermost `def`/`class` line that line `index` is in, or that starts there ("" if none)."""
    target = lines[index]
    indent = len(target) - len(target.lstrip()) if target.strip() else 1 << 30
    for line in reversed(lines[: index + 1]):
        found = _DEF.match(line)
        if found and (len(found.group(1)) < indent or line is target):
            return line.strip().rstrip(":")
    return ""


def function_diff(before: Path, before_name: str, after: Path, after_name: str, context: int = 3) -> str:
    """`diff -u` of function `before_name` of `before` against `after_name` of `after`."""
    old = function_lines(before.read_text(encoding="utf-8"), before_name)
    new = function_lines(after.read_text(encoding="utf-8"), after_name)
    a, b = [t for _, t in old], [t for _, t in new]
    out = [f"--- {before.name} {before_name}", f"+++ {after.name} {after_name}"]
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        tag, f1, _, g1, _ = next(op for op in group if op[0] != "equal")
        where = enclosing(a, f1) if tag in ("replace", "delete") else enclosing(b, g1)
        start_old = old[i1][0] if i1 < len(old) else old[-1][0]
        start_new = new[j1][0] if j1 < len(new) else new[-1][0]
        out.append(f"@@ -{start_old},{i2 - i1} +{start_new},{j2 - j1} @@ {where}".rstrip())
        for op, x1, x2, y1, y2 in group:
            if op == "equal":
                out += [" " + line for line in a[x1:x2]]
                continue
            out += ["-" + line for line in a[x1:x2]]
            out += ["+" + line for line in b[y1:y2]]
    return "\n".join(out)
