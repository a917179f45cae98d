"""Static checks for the reader's own TensorRT/pycuda script: the seed's mistakes, by line.

`lint_paths` parses files, folders and notebooks with `ast` and never imports or runs them;
`rules.RULES` holds each rule's explanation, `checks` the code that finds it.
"""

from helpers.lint.engine import LintResult, lint_paths
from helpers.lint.rules import RULES, Finding, Rule

__all__ = ["RULES", "Finding", "LintResult", "Rule", "lint_paths"]
