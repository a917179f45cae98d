"""One exception type for problems the user can fix.

The CLI prints these as a single line (problem and fix) instead of a traceback; anything else
escaping is a bug in the workbook. In IPython (a notebook), importing this module makes the
shell show them the same way: one line, `UserError: <problem>; <fix>`.
"""

from __future__ import annotations

import sys
from typing import Any


class UserError(Exception):
    """A bad input or environment, with a message that names the fix."""


def one_line(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> list[str]:
    """IPython's custom-exception handler: show the error's one line instead of its traceback.

    The handler displays it itself (IPython ignores what it returns); the cell still fails."""
    line = [f"{etype.__name__}: {value}"]
    shell._showtraceback(etype, value, line)
    return line


def _show_user_errors_in_one_line() -> None:
    ipython = sys.modules.get("IPython")  # never imported here: only a running shell matters
    shell = ipython.get_ipython() if ipython else None
    if shell is not None:
        shell.set_custom_exc((UserError,), one_line)


_show_user_errors_in_one_line()
