"""Write files so a reader never sees half of one: temp file in the same folder, then rename.

The temp file is created with mode 0o666 like any new file, so the user's umask gives it the
usual permissions (`mkstemp` would leave every written file private, 0600).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from helpers.errors import UserError


def check_writable(path: str | Path) -> Path:
    """Fail before the work, not after it: can a file be created at `path`?"""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory; give a file name to write to")
    check_folder(path.parent, path)
    return path


def check_folder(folder: str | Path, named: str | Path | None = None) -> Path:
    """Can files be created in `folder` (made if missing)? Errors name `named`, else the folder."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe."):
            pass
    except OSError as exc:
        what = named if named is not None else folder
        raise UserError(f"cannot write {what}: {exc.strerror or exc}; choose a writable location") from None
    return folder


def _new_temp(path: Path) -> tuple[int, Path]:
    """An exclusive new file beside `path`, permissions from the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = check_writable(path)
    fd, tmp = _new_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))
