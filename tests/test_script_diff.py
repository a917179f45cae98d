"""helpers.script_diff: every changed line shows in its own function, with real line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.script_diff import MODULE, enclosing, function_diff, function_lines

BEFORE = '''"""Doc."""

import os


def main() -> None:
    a = 1

    def worker(i: int) -> None:
        print(i)
        print(a)

    worker(a)
'''
AFTER = '''"""Doc, changed."""

import os
import sys


def run(i: int) -> None:
    print(i, file=sys.stderr)


def main() -> None:
    a = 2

    def worker(i: int) -> None:
        run(i)
        print(a)

    worker(a)
'''


@pytest.fixture
def scripts(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "a.py").write_text(BEFORE)
    (tmp_path / "b.py").write_text(AFTER)
    return tmp_path / "a.py", tmp_path / "b.py"


def test_nested_functions_are_collapsed_and_get_their_own_diff(scripts) -> None:
    a, b = scripts
    main = function_diff(a, "main", b, "main")
    assert "-    a = 1\n+    a = 2" in main
    assert "print(i)" not in main and "\n     def worker(i: int) -> None:\n         ...\n" in main + "\n"
    worker = function_diff(a, "main.worker", b, "main.worker")
    assert "-        print(i)\n+        run(i)" in worker
    assert "@@ -9,3 +14,3 @@ def worker(i: int) -> None" in worker  # the real line numbers


def test_the_top_level_leaves_out_the_docstring_and_collapses_functions(scripts) -> None:
    a, b = scripts
    top = function_diff(a, MODULE, b, MODULE)
    assert "Doc" not in top
    assert "+import sys" in top and "+def run(i: int) -> None:\n+    ..." in top
    assert "print(i, file" not in top


def test_a_hunk_header_names_the_function_of_its_first_change(scripts) -> None:
    a, b = scripts
    diff = function_diff(a, "main.worker", b, "run")
    assert diff.splitlines()[2].endswith("def worker(i: int) -> None")
    lines = [text for _, text in function_lines(AFTER, "main")]
    assert enclosing(lines, lines.index("    a = 2")) == "def main() -> None"


def test_an_unknown_function_is_named(scripts) -> None:
    a, b = scripts
    with pytest.raises(ValueError, match=r"no main\.missing"):
        function_diff(a, "main.missing", b, "main")
