"""Atomic file writes, shared by checkpoints, pictures and benchmark results.

A file is written to a temporary file in the target's directory, flushed and fsynced, then renamed
over the target with ``os.replace``: readers see the old file or the new one, never half of one, and a
crash or a full disk leaves the previous file intact.

A process killed in the middle of a write (SIGKILL, power loss) cannot remove its temporary file, so
temporary files carry their owner in their name::

    .<target name>.tmp-<host>-<pid>-<random>

and every write to a target first removes the temporary files of earlier writes to the same target
whose process is gone (same host, pid not running), whose pid is this process's own (a pid reused
after a restart, e.g. in a container), or which are older than ``STALE_SECONDS``; so do temporary
files in the older ``.<target name>.<random>.tmp`` form once they are that old.
"""
import os
import re
import socket
import tempfile
import time
import zlib

STALE_SECONDS = 3600.0      # a temporary file this old belongs to no write in progress
_TAG = ".tmp-"
_NAME_CHARS = 100           # of the target's name kept in its temporary names (NAME_MAX is 255)
_in_progress = set()        # temporary files this process is writing now


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary binary file next to ``path``, fsync it, rename it to ``path``.

    If anything fails the temporary file is removed and ``path`` is untouched. Creates the directory.
    Stale temporary files of killed writes to ``path`` are removed first (see the module docstring).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = _make_temporary(path)
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
    finally:
        _in_progress.discard(tmp)
    _fsync_directory(directory)


def write_bytes_atomic(path, data):
    """``atomic_write`` for a bytes (or str, UTF-8) payload."""
    payload = data.encode() if isinstance(data, str) else data
    atomic_write(path, lambda f: f.write(payload))


def check_writable(path):
    """Raise ``ValueError`` unless ``atomic_write(path, ...)`` can succeed: ``path`` is not empty, is not
    a directory (or another non-file), its directory exists, and a file can be created there (checked by
    creating and removing a temporary file of the kind ``atomic_write`` uses). Nothing else is touched.
    """
    path = os.fspath(path)
    if not path:
        raise ValueError("the path is empty; give a file name such as run.npz")
    if path.endswith(os.sep) or os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory; give a file name inside it, such as "
                         f"{os.path.join(path, 'run.npz')!r}")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise ValueError(f"{path!r} exists and is not a regular file; choose another name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise ValueError(f"the directory {directory!r} of {path!r} {what}; create it first or choose "
                         f"another path")
    try:
        fd, tmp = _make_temporary(path)
    except OSError as exc:
        raise ValueError(f"cannot create files in {directory!r} ({exc.strerror or exc}); choose a "
                         f"writable directory") from None
    os.close(fd)
    os.unlink(tmp)
    _in_progress.discard(tmp)


def temporary_files(path):
    """The temporary files of writes to ``path`` (in progress or left by killed ones), as full paths."""
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    pattern, legacy = _pattern(path), _legacy_pattern(path)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(os.path.join(directory, n) for n in names if pattern.fullmatch(n) or legacy.fullmatch(n))


def remove_stale_temporaries(path):
    """Remove the temporary files of killed writes to ``path``; returns the paths removed."""
    removed = []
    now = time.time()
    for tmp in temporary_files(path):
        if tmp in _in_progress:
            continue
        try:
            old = now - os.stat(tmp).st_mtime > STALE_SECONDS
        except OSError:
            continue
        match = _pattern(path).fullmatch(os.path.basename(tmp))
        ours = match is not None and match.group(1) == _host()
        if old or (ours and (int(match.group(2)) == os.getpid() or not _alive(int(match.group(2))))):
            try:
                os.unlink(tmp)
                removed.append(tmp)
            except OSError:
                pass
    return removed


def _prefix(path):
    return "." + os.path.basename(os.fspath(path))[:_NAME_CHARS] + _TAG


def _pattern(path):
    return re.compile(re.escape(_prefix(path)) + r"([0-9a-f]{8})-(\d+)-[A-Za-z0-9_]+")


def _legacy_pattern(path):
    """Temporary names of earlier versions: ``.<name>.<8 random characters>.tmp`` (no owner)."""
    return re.compile(re.escape("." + os.path.basename(os.fspath(path)) + ".") + r"[A-Za-z0-9_]{8}\.tmp")


def _make_temporary(path):
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    fd, tmp = tempfile.mkstemp(prefix=f"{_prefix(path)}{_host()}-{os.getpid()}-", dir=directory)
    _in_progress.add(tmp)
    return fd, tmp


def _host():
    """This machine, as 8 hex digits (temporary files on a shared file system name their machine)."""
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True   # someone else's process (or a pid we cannot ask about): keep its file
    return True


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
