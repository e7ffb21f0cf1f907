"""Releasing the values no gradient rule reads (PyTorch's saved tensors, minitorch's
``ctx.save_for_backward``).

Every op declares in ``saves`` which of its values its gradient rule reads (see ``tinygraph.ops.base``).
The engine releases a node's value when

(a) no consumer's rule reads it, nor its own rule (for its output);
(b) it is an op output (never a leaf or parameter), recorded with grad enabled;
(c) it is not retained (``retain_grad()``) and was not kept by ``keep_values()``;
(d) nothing outside the graph can reach the Tensor any more: its only references are its consumers'
    ``inputs`` tuples. A tensor the user still holds keeps its value (PyTorch's semantics);
(e) releasing it frees memory worth a sweep: it owns a buffer of at least ``MIN_BYTES`` (a smaller
    one frees less than its placeholder and its share of a sweep cost, a few hundred ns in CPython;
    ``MIN_BYTES = 0`` releases every value), or it is a view of a releasable input (the gates sliced
    out of a pre-activation: released together, their buffer goes). A view of anything else (a
    leaf, a saved value, a buffer a layer owns, like a recurrent layer's slab) frees nothing.

A released value is replaced by a ``Released`` placeholder that keeps ``shape``, ``dtype``, ``ndim``
and ``size``, so the graph can still be walked and drawn and rules can still read shapes; every other
use raises a ``GraphError`` that names the op, its scope and how to keep the value.

How (d) is decided, in CPython. A tensor that (a)-(c) and (e) still allow is *releasable*: its
``_uses`` is >= 0 and counts how often it appears in consumers' ``inputs`` (-1: never released, for
leaves, saved, released and kept values; one slot, so a Tensor is no larger). ``apply`` counts the new
node's releasable inputs, sets ``_uses = -1`` on those its rule reads, and appends the new node to
``PENDING`` when it is releasable or still has a releasable input. ``sweep`` runs when ``PENDING``
has doubled since the last sweep (at least ``FLOOR`` entries), when backward starts and in
``Graph.of``. It compares
``sys.getrefcount(t)`` of each releasable ``t`` with the references the engine accounts for: ``_uses``
and the sweep's own three (PENDING's slot, the loop variable, getrefcount's argument). Equal: only
consumers hold ``t``, and its value goes. None at all: ``t`` is garbage and goes with its node.

That count must stay exact. A consumer that died unseen (a dropped branch) would leave ``_uses`` one
too high, and a user's own reference could then pass for the dead consumer's. So every consumer of a
releasable tensor stays in ``PENDING`` (alive) while that tensor is releasable; a releasable node
that only ``PENDING`` holds is garbage, and the sweep that drops it decrements its inputs' counts.
A sweep goes oldest first, so a node's inputs are decided before the node is (it leaves ``PENDING``
once neither it nor any of its inputs is releasable). ``backward`` without ``retain_graph`` sets
``inputs`` to None as it walks, which no count sees: it calls ``sweep(forget=True)`` first, after
which everything still releasable is kept for good.

The arithmetic is CPython's (checked on 3.11; 3.14 counts references differently):
``tests/test_release.py`` checks it reference by reference. Sweeps take a lock; graphs may be built
by several threads.
"""
import contextlib
import math
import sys
import threading

import numpy as np

from .errors import GraphError

PENDING = []   # nodes whose value, or an input's value, may still be released; in creation order
MIN_BYTES = 1024  # see (e): smaller buffers are never released
FLOOR = 512    # the smallest pending length that triggers a sweep from ``apply``
threshold = FLOOR  # ``apply`` sweeps when len(PENDING) reaches it; twice what the last sweep kept
_OWN_REFS = 3  # sys.getrefcount(t) in ``sweep``: PENDING's slot, the loop variable, the argument
_keeping = 0   # active ``keep_values()`` blocks
_sweeping = threading.Lock()


def sweep(forget=False, wait=True):
    """Release every pending value that (a)-(e) of the module docstring allow; drop garbage nodes.

    ``forget``: afterwards keep every value still pending for good and empty ``PENDING`` (before a
    backward that frees the graph's ``inputs``, after which the counts would be wrong).
    ``wait=False`` (from ``apply``): skip the sweep if another one is running (another thread, or a
    finalizer that built a node during this one).
    """
    if not PENDING or not _sweeping.acquire(wait):
        return
    try:
        _sweep(forget)
    finally:
        _sweeping.release()


def _sweep(forget):
    global threshold
    pending, kept = PENDING, []
    refcount, new, hold = sys.getrefcount, Released.__new__, kept.append
    count = len(pending)  # what is appended meanwhile (another thread) waits for the next sweep
    if _keeping:  # keep_values(): nothing pending is released, ever
        for i in range(count):
            pending[i]._uses = -1
    for i in range(count):  # oldest first: a node's inputs are decided before it
        t = pending[i]
        if t._uses >= 0:
            refs = refcount(t) - _OWN_REFS
            if refs == t._uses and refs:  # only its consumers' inputs hold it: release it
                t._uses = -1
                data, placeholder = t._data, new(Released)  # Released.of, inlined: sweeps make many
                placeholder.shape, placeholder.dtype = data.shape, data.dtype
                placeholder.op, placeholder.scope = t.op, t.scope
                t._data = placeholder
            elif forget:
                t._uses = -1  # kept for good: the counts are about to go stale
                continue
            elif refs:
                hold(t)  # held outside the graph
                continue
            else:  # nothing but PENDING holds it: garbage, its inputs tuple goes with it
                _uncount(t.inputs)
                continue
        if forget:
            continue  # nothing stays pending
        for s in t.inputs or ():  # it stays while the count of an input relies on it
            if s._uses >= 0:
                hold(t)
                break
        s = None  # the loop variable would be one more reference to an input still to be looked at
    t = data = None
    pending[:count] = kept
    threshold = max(FLOOR, 2 * len(pending))


def _uncount(inputs):
    for s in inputs or ():
        if s._uses > 0:
            s._uses -= 1


def overwritten(tensors):
    """Release the values of ``tensors`` now: their buffers were overwritten in place, so what they
    hold is no longer theirs (a recurrent layer's fused steps write their rows over the input
    projection they consumed). Afterwards reading one raises a released value's ``GraphError``
    instead of showing another tensor's numbers. Only for values no gradient rule reads — the
    caller's contract, as for any in-place write of an op's output."""
    for t in tensors:
        if type(t._data) is not Released:
            t._uses = -1   # decided: the sweep leaves it alone
            t._data = Released.of(t)


@contextlib.contextmanager
def keep_values():
    """Release nothing: every value still pending while the block runs, and every value computed in
    it, is kept for good (for debugging: inspect any node of a graph built inside).

    Process-wide, not per thread: a block in one thread keeps the values of all.
    """
    global _keeping
    _keeping += 1
    try:
        yield
    finally:
        try:
            sweep()  # while still keeping: what the block computed is marked kept
        finally:
            _keeping -= 1


class Released:
    """Stands for the value of a node the engine released.  Keeps ``shape``, ``dtype``, ``ndim``,
    ``size`` (and ``len``); arithmetic, indexing, numpy conversion and any other attribute raise
    ``GraphError``. ``repr`` says what it is, so walking or printing a graph never fails on it."""
    __slots__ = ("shape", "dtype", "op", "scope")  # op: the Op (or its name)

    def __init__(self, shape, dtype, op="?", scope=""):
        self.shape, self.dtype, self.op, self.scope = tuple(shape), np.dtype(dtype), op, scope

    @classmethod
    def of(cls, tensor):
        """The placeholder for ``tensor``'s value (an op output)."""
        data, p = tensor._data, cls.__new__(cls)
        p.shape, p.dtype, p.op, p.scope = data.shape, data.dtype, tensor.op, tensor.scope
        return p

    ndim = property(lambda self: len(self.shape), doc="The number of dimensions of the released value.")
    size = property(lambda self: math.prod(self.shape), doc="The element count of the released value.")

    def error(self):
        """The ``GraphError`` any use of the value raises: it names the op, its scope, the shape and
        dtype, and the three ways to keep such a value."""
        op = self.op if isinstance(self.op, str) else self.op.name
        return GraphError(
            f"the value of op '{op}' (scope '{self.scope or '<root>'}', shape {self.shape}, "
            f"{self.dtype}) was released: no gradient rule reads it and nothing outside the graph held "
            f"the tensor. To keep such a value, hold a reference to the tensor (a variable, a list) "
            f"while the graph is built, call .retain_grad() on it, or build the graph inside "
            f"tg.keep_values()")

    def _fail(self, *args, **kwargs):
        raise self.error()

    def __getattr__(self, name):  # only reached for what a placeholder does not have
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # optional protocols (copy, pickle, numpy's probes) are absent
        raise self.error()

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d value")
        return self.shape[0]

    def __repr__(self):
        op = self.op if isinstance(self.op, str) else self.op.name
        return (f"<released {self.dtype} value of shape {self.shape} of op '{op}' "
                f"(scope '{self.scope or '<root>'}')>")

    __hash__ = object.__hash__
    # numpy's protocols: np.asarray(p), np.tanh(p), np.sum(p) and ndarray (op) p all end here
    __array__ = __array_ufunc__ = __array_function__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _fail
    __pow__ = __rpow__ = __matmul__ = __rmatmul__ = __neg__ = __pos__ = __abs__ = __invert__ = _fail
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _fail
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _fail
    __getitem__ = __setitem__ = __iter__ = __contains__ = _fail
    __bool__ = __float__ = __int__ = __index__ = __complex__ = _fail
    __iadd__ = __isub__ = __imul__ = __itruediv__ = _fail
