"""Version counters: an in-place write after an op saved a value is an error at backward, never a
silently wrong gradient (PyTorch's saved-variable versions, ``torch/csrc/autograd/saved_variable.cpp``).

What is versioned is memory, not the Tensor object: every write is recorded against the buffer that
owns the written array (``root``: numpy gives views of views the owner as ``base``), so a write
through a view (``y = x.reshape(...)``; ``y.data[0] = 1``), through ``detach()`` or through an array
taken from ``x.data`` reaches every node that saved ``x``, as views share a version counter in PyTorch.

The writes seen are those through tinygraph's public API:

- ``t.data[...] = v``, ``t.data += v``, ``np.add(t.data, 1, out=t.data)``, ``t.data.fill(0)``,
  ``np.copyto(t.data, v)``... — ``Tensor.data`` returns a ``TrackedArray`` view of the value whose
  mutating methods, in-place operators and ``out=`` arguments record the write;
- ``t.data = array`` (the tensor's value becomes other memory);
- ``Tensor``'s in-place methods (``zero_``, ``fill_``, ``copy_``, ``add_``, ``mul_``...), optimizer steps
  and ``Module.load_state_dict``.

Writes numpy makes without a Python call (``t.data.flat[0] = 1``, a ``memoryview``, ctypes, a C
extension writing a buffer) are not seen; call ``increment_version(t)`` after one, like PyTorch's
``torch.autograd.graph.increment_version``. ``np.asarray(t)`` is a read-only view, so it cannot write
unseen.

The cost is paid by writes, which are rare, not by ops, which are many. ``CLOCK[0]`` counts every
recorded write; each op node stamps it at creation (``Tensor._stamp``). A backward runs the check of a
node only if some write happened since the node was made (``node._stamp != CLOCK[0]``): in a training
loop (forward, backward, step) the clock does not move between forward and backward, and the check is
one comparison per node. The check looks up the buffers the node's rule reads (what its op declares in
``saves``) in the table of written buffers.
"""
import threading
import weakref

import numpy as np

from .errors import GraphError

CLOCK = [0]      # writes recorded so far; a node made at clock c was made after exactly c writes
_WRITTEN = {}    # id(owner buffer) -> _Record of the writes to that buffer
_STAMPS_KEPT = 16  # write clocks kept per buffer: enough to name the version a node saved
_lock = threading.Lock()


class _Record:
    __slots__ = ("ref", "version", "stamps")

    def __init__(self, ref):
        self.ref, self.version, self.stamps = ref, 0, []


def root(array):
    """The object that owns ``array``'s memory: the array itself, or the owner its ``base`` names."""
    base = array.base
    while base is not None:
        array = base
        base = getattr(base, "base", None)
    return array


def _forget(key, ref):
    record = _WRITTEN.get(key)
    if record is not None and record.ref is ref:
        del _WRITTEN[key]


def record_write(array):
    """Record one in-place write to ``array``'s memory: every node made before now that saved a value
    living in this memory will refuse to backward."""
    record_writes((array,))


def record_writes(arrays):
    """``record_write`` of each array in turn, under one acquisition of the lock (an optimiser's
    step writes every parameter)."""
    with _lock:
        for array in arrays:
            owner = root(array)
            key = id(owner)
            CLOCK[0] += 1
            record = _WRITTEN.get(key)
            if record is None or _target(record) is not owner:
                try:
                    ref = weakref.ref(owner, lambda ref, key=key: _forget(key, ref))
                except TypeError:  # an owner that takes no weak reference (bytes): hold it
                    ref = _Strong(owner)
                record = _WRITTEN[key] = _Record(ref)
            record.version += 1
            record.stamps.append(CLOCK[0])
            if len(record.stamps) > 2 * _STAMPS_KEPT:
                del record.stamps[:-_STAMPS_KEPT]


class _Strong:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __call__(self):
        return self.value


def _target(record):
    return record.ref()


def version(array):
    """How many writes to ``array``'s memory were recorded (0 if none)."""
    owner = root(array)
    record = _WRITTEN.get(id(owner))
    return record.version if record is not None and _target(record) is owner else 0


def written_since(array, stamp):
    """``(version when the clock was at stamp, version now)`` if ``array``'s memory was written after
    the clock read ``stamp``, else None. The first is exact unless more writes than the last
    ``_STAMPS_KEPT`` came since, when it is an upper bound (reported as such)."""
    owner = root(array)
    record = _WRITTEN.get(id(owner))
    if record is None or _target(record) is not owner or record.stamps[-1] <= stamp:
        return None
    later = sum(1 for s in record.stamps if s > stamp)
    exact = later < len(record.stamps) or record.version == len(record.stamps)
    return record.version - later, record.version, exact


def check_saved(node):
    """Raise ``GraphError`` if a value ``node``'s rule reads was written after ``node`` was made."""
    op = node.op
    saved = []
    if op._saves_out:
        saved.append(("its output", node))
    positions = range(len(node.inputs)) if op._saved_inputs is None else op._saved_inputs
    for k in positions:
        saved.append((f"input {k}", node.inputs[k]))
    for role, t in saved:
        data = t._data
        if not isinstance(data, np.ndarray):
            continue  # released: no rule reads it
        seen = written_since(data, node._stamp)
        if seen is None:
            continue
        then, now, exact = seen
        label = f"'{t.name}'" if t.name else ("a leaf" if t.op is None else f"the output of op '{t.op.name}'")
        where = f", scope '{node.scope}'" if node.scope else ""
        raise GraphError(
            f"backward: {role} of op '{op.name}'{where} ({label}, shape {t.shape}, {t.dtype}) was "
            f"modified in place after the op saved it for its gradient: it is at version {now}, the op "
            f"saved version {then if exact else f'<= {then}'}. An in-place write (t.data[...] = ..., "
            f"t.data = ..., an in-place method such as add_, an optimizer step) between forward and "
            f"backward would give a wrong gradient; run the forward again after the write, or write "
            f"into a copy (t.data.copy(), t.clone()) instead")


# --- the view Tensor.data returns ------------------------------------------------------------------
def _plain(value):
    return value.view(np.ndarray) if isinstance(value, TrackedArray) else value


def _plain_all(values):
    return tuple(_plain(v) for v in values)


class TrackedArray(np.ndarray):
    """An ndarray view of a Tensor's value that records the writes made through it (see the module
    docstring). Results of arithmetic on it are plain ndarrays; its views (slices, ``.T``,
    ``.reshape``) are tracked too."""

    def __setitem__(self, index, value):
        np.ndarray.__setitem__(self.view(np.ndarray), index, value)
        record_write(self)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        written = [a for a in kwargs.get("out", ()) if isinstance(a, TrackedArray)]
        if method == "at" and isinstance(inputs[0], TrackedArray):
            written.append(inputs[0])
        if "out" in kwargs:
            kwargs["out"] = _plain_all(kwargs["out"])
        result = getattr(ufunc, method)(*_plain_all(inputs), **kwargs)
        for a in written:
            record_write(a)
        return result

    def __array_function__(self, func, types, args, kwargs):
        target = _WRITES_ARGUMENT.get(func)
        written = None
        if target is not None:
            written = args[target] if len(args) > target else kwargs.get(_WRITES_NAME[func])
        args = tuple(_plain_all(a) if type(a) in (list, tuple) else _plain(a) for a in args)
        kwargs = {k: _plain(v) for k, v in kwargs.items()}
        result = func(*args, **kwargs)
        if isinstance(written, TrackedArray):
            record_write(written)
        return result

    def _mutating(name):
        method = getattr(np.ndarray, name)

        def mutate(self, *args, **kwargs):
            result = method(self.view(np.ndarray), *args, **kwargs)
            record_write(self)
            return result
        mutate.__name__ = name
        mutate.__doc__ = method.__doc__
        return mutate

    fill, sort, put, partition, setfield = map(_mutating, ("fill", "sort", "put", "partition", "setfield"))
    del _mutating

    def byteswap(self, inplace=False):
        """numpy's ``byteswap``; with ``inplace=True`` the write is recorded as one."""
        result = np.ndarray.byteswap(self.view(np.ndarray), inplace)
        if inplace:
            record_write(self)
        return result

    def __repr__(self):
        return repr(self.view(np.ndarray))


# numpy functions that write into one of their arguments: position (and keyword name) of that argument
_WRITES_ARGUMENT = {np.copyto: 0, np.put: 0, np.place: 0, np.putmask: 0, np.fill_diagonal: 0,
                    np.put_along_axis: 0}
_WRITES_NAME = {np.copyto: "dst", np.put: "a", np.place: "arr", np.putmask: "a",
                np.fill_diagonal: "a", np.put_along_axis: "arr"}


def tracked(array):
    """``array`` as the view ``Tensor.data`` hands out (anything that is not an ndarray unchanged)."""
    return array.view(TrackedArray) if type(array) is np.ndarray else array


def increment_version(value):
    """Record a write that tinygraph cannot see (a memoryview, ctypes, ``.flat``): ``value`` is a
    Tensor or an ndarray; every node that saved a value in its memory will refuse to backward."""
    from .tensor import Tensor
    array = value._data if isinstance(value, Tensor) else value
    if not isinstance(array, np.ndarray):
        raise TypeError(f"increment_version: expected a Tensor or an ndarray, got {type(value).__name__}")
    record_write(array)
