"""Atomic writes: whole files only, with the permissions any new file gets under the umask."""

from __future__ import annotations

import os
import stat

import pytest

from helpers.atomic import check_folder, write_bytes, write_text
from helpers.errors import UserError


@pytest.fixture
def umask():
    """Set a umask for one test and put the old one back."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_get_the_usual_permissions_under_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    path = write_text(tmp_path / "out" / "r.json", "[]\n")
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_text() == "[]\n"


def test_overwrite_replaces_the_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.bin"
    write_bytes(path, b"x" * 1000)
    write_bytes(path, b"short")
    assert path.read_bytes() == b"short"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_a_failed_write_leaves_neither_file_nor_temp(tmp_path, monkeypatch):
    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_bytes(tmp_path / "a.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_is_named_in_one_line():
    with pytest.raises(UserError, match=r"^cannot write /proc/ann: .*; choose a writable location$"):
        check_folder("/proc/ann")
