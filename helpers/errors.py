"""One exception type for problems the user can fix.

The CLI prints these as a single line (problem and fix) instead of a
traceback; anything else escaping is a bug in the workbook.
"""


class UserError(Exception):
    """A bad input or environment, with a message that names the fix."""
