"""A lint result as text (one finding a line, the way ruff and flake8 print) or as JSON for tools."""

from __future__ import annotations

import json
from dataclasses import asdict

from helpers.errors import UserError
from helpers.lint.engine import LintResult
from helpers.lint.rules import RULES


def format_text(result: LintResult) -> str:
    """The findings one a line, then a one-line count."""
    lines = [str(f) for f in result.findings]
    n = len(result.findings)
    lines.append("no findings" if not n else f"{n} finding{'s' if n != 1 else ''}; --explain CODE says why")
    return "\n".join(lines)


def to_json(result: LintResult) -> str:
    return json.dumps(
        {"findings": [asdict(f) for f in result.findings], "errors": result.errors, "status": result.status},
        indent=2,
    )


def explain(code: str) -> str:
    """What `--explain CODE` prints; an unknown code is a one-line error listing the known ones."""
    rule = RULES.get(code.strip().upper())
    if rule is None:
        raise UserError(f"no lint rule {code!r}; the rules are {', '.join(RULES)}")
    return rule.explain()
