"""Saves killed with SIGKILL leave the previous checkpoint whole, and their temporary files are removed
by the next save; the rules for which temporary files are stale.

``TINYGRAPH_KILLS`` sets the number of kills (default 50).
"""
import os
import signal
import time

import numpy as np
import pytest

from rnn_models.checkpoint import load_checkpoint, save_checkpoint
from tinygraph import io as tio
from tinygraph.io import atomic_write, check_writable, remove_stale_temporaries, temporary_files

KILLS = int(os.environ.get("TINYGRAPH_KILLS", "50"))
BIG = np.random.default_rng(0).standard_normal(2**20)     # 8 MB: a save takes tens of ms


class Weights:
    """A model stand-in: ``version`` marks which save a file came from."""

    def __init__(self, version, big=True):
        self.version, self.big = version, big

    def state_dict(self):
        return {"version": np.array(float(self.version)), "w": BIG + self.version if self.big else BIG[:4]}


def check_is(loaded, version, big):
    assert float(loaded.model_state["version"]) == version
    np.testing.assert_array_equal(loaded.model_state["w"], Weights(version, big).state_dict()["w"])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_sigkill_in_the_middle_of_saving(tmp_path):
    """A child process saves a big checkpoint; the test kills it with SIGKILL at a random moment after
    its temporary file appears. The file at the path is then always a whole checkpoint (the previous
    one, or the new one if the save had finished), and the next save leaves no temporary file."""
    path = tmp_path / "ck.npz"
    rng = np.random.default_rng(1)
    save_checkpoint(path, Weights(0))
    previous = (0, True)
    durations = []  # how long a save's temporary file exists (from its creation to the rename that
    for _ in range(3):  # ends the write, not to the child's exit): the shortest of three
        pid, started = start_saving(path, 0)
        while temporary_files(path):
            time.sleep(0.0002)
        durations.append(time.perf_counter() - started)
        os.waitpid(pid, 0)
    duration = min(durations)
    check_is(load_checkpoint(path), 0, True)
    mid_write = finished = 0
    for kill in range(1, KILLS + 1):
        pid, _ = start_saving(path, kill)
        time.sleep(rng.uniform(0, 0.9 * duration))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        left = temporary_files(path)
        mid_write += bool(left)
        loaded = load_checkpoint(path)
        if float(loaded.model_state["version"]) == kill:   # it finished before the kill
            finished += 1
            previous = (kill, True)
        check_is(loaded, *previous)
        # the next save (a small one, to keep the test quick) removes what the killed one left
        save_checkpoint(path, Weights(-kill, big=False))
        assert temporary_files(path) == [] and os.listdir(tmp_path) == ["ck.npz"]
        previous = (-kill, False)
        check_is(load_checkpoint(path), *previous)
    print(f"\n{KILLS} SIGKILLs: {KILLS} loads whole, {mid_write} killed mid-write (temporary file left "
          f"behind), {finished} after the save had finished; 0 temporary files after the next save")
    assert mid_write >= KILLS // 3    # many kills really landed in the middle of a write


def start_saving(path, version):
    """Fork a child that saves ``Weights(version)`` to ``path``; returns its pid and the time its
    temporary file appeared."""
    pid = os.fork()
    if pid == 0:   # the child: save, then leave without running any of pytest's machinery
        try:
            save_checkpoint(path, Weights(version))
        finally:
            os._exit(0)
    waited = time.perf_counter()
    while not temporary_files(path) and os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.perf_counter() - waited > 30:
            raise AssertionError("the child never started writing")
        time.sleep(0.0002)
    return pid, time.perf_counter()


# --- which temporary files are stale --------------------------------------------------------------------
def temporary(path, host=None, pid=None, age=0.0, tag="abcd1234"):
    """A temporary file for ``path`` as atomic_write names them, owned by ``host``/``pid``."""
    name = f"{tio._prefix(path)}{host or tio._host()}-{pid or os.getpid()}-{tag}"
    tmp = path.parent / name
    tmp.write_bytes(b"half a checkpoint")
    if age:
        stamp = time.time() - age
        os.utime(tmp, (stamp, stamp))
    return tmp


def dead_pid():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_stale_and_live_temporary_files(tmp_path):
    path = tmp_path / "c.npz"
    dead = temporary(path, pid=dead_pid())
    mine = temporary(path)                                  # this pid, but no write in progress
    live = temporary(path, pid=1)                           # init: alive, someone else's
    remote = temporary(path, host="0badf00d", pid=dead_pid())   # another machine: cannot tell
    old_live = temporary(path, pid=1, age=2 * tio.STALE_SECONDS, tag="old_one1")
    legacy_new = tmp_path / ".c.npz.k2j4h5l6.tmp"
    legacy_new.write_bytes(b"x")
    legacy_old = tmp_path / ".c.npz.a1b2c3d4.tmp"
    legacy_old.write_bytes(b"x")
    os.utime(legacy_old, (time.time() - 2 * tio.STALE_SECONDS,) * 2)
    other_target = temporary(tmp_path / "d.npz", pid=dead_pid())
    removed = remove_stale_temporaries(path)
    assert sorted(removed) == sorted(str(p) for p in (dead, mine, old_live, legacy_old))
    assert all(p.exists() for p in (live, remote, legacy_new, other_target))


def test_a_write_removes_stale_files_but_not_its_own(tmp_path):
    path = tmp_path / "c.npz"
    stale = temporary(path, pid=dead_pid()) if hasattr(os, "fork") else temporary(path, age=1e9)
    seen = []

    def write(f):
        seen.append(temporary_files(path))   # during the write: only our own temporary file
        f.write(b"new")
    atomic_write(path, write)
    assert not stale.exists() and len(seen[0]) == 1 and not os.path.exists(seen[0][0])
    assert os.listdir(tmp_path) == ["c.npz"] and path.read_bytes() == b"new"


def test_a_very_long_name_still_gets_a_temporary_file(tmp_path):
    path = tmp_path / ("n" * 240 + ".npz")
    atomic_write(path, lambda f: f.write(b"x"))
    assert path.read_bytes() == b"x" and os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("make,message", [
    (lambda d: "", "the path is empty"),
    (lambda d: str(d), "is a directory"),
    (lambda d: str(d) + os.sep, "is a directory"),
    (lambda d: str(d / "missing" / "c.npz"), "does not exist; create it first"),
    (lambda d: ((d / "file").write_bytes(b""), str(d / "file" / "c.npz"))[1], "is not a directory"),
    (lambda d: (os.mkfifo(d / "fifo"), str(d / "fifo"))[1], "exists and is not a regular file"),
])
def test_check_writable_refuses(tmp_path, make, message):
    target = make(tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match=message):
        check_writable(target)
    assert sorted(os.listdir(tmp_path)) == before


def test_check_writable_refuses_a_read_only_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(ValueError, match="cannot create files in"):
            check_writable(locked / "c.npz")
    finally:
        locked.chmod(0o700)


def test_check_writable_accepts_and_leaves_nothing(tmp_path):
    check_writable(tmp_path / "new.npz")
    (tmp_path / "old.npz").write_bytes(b"keep")
    check_writable(tmp_path / "old.npz")
    assert sorted(os.listdir(tmp_path)) == ["old.npz"] and (tmp_path / "old.npz").read_bytes() == b"keep"
