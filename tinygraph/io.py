"""Atomic file writes, shared by checkpoints, pictures and benchmark results.

A file is written to a temporary file in the target's directory, flushed and fsynced, then renamed
over the target with ``os.replace``: readers see the old file or the new one, never half of one, and a
crash or a full disk leaves the previous file intact.
"""
import os
import tempfile


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary binary file next to ``path``, fsync it, rename it to ``path``.

    If anything fails the temporary file is removed and ``path`` is untouched. Creates the directory.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the result should look like open()'s
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def write_bytes_atomic(path, data):
    """``atomic_write`` for a bytes (or str, UTF-8) payload."""
    payload = data.encode() if isinstance(data, str) else data
    atomic_write(path, lambda f: f.write(payload))


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory):
    """Make the rename itself durable (not possible on every platform; harmless to skip there)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
