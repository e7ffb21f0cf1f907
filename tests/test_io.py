"""Atomic writes: all or nothing, and ordinary permissions."""
import os
import stat

import pytest

from tinygraph.io import atomic_write, write_bytes_atomic


def test_written_file_has_the_permissions_open_would_give(tmp_path):
    path = tmp_path / "a.txt"
    write_bytes_atomic(path, "hello")
    mask = os.umask(0)
    os.umask(mask)
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.bin"
    write_bytes_atomic(path, b"old")

    def fail(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.bin"]
