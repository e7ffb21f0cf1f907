"""Trace once, replay many: ``tg.compile(step_fn)`` (tinygrad's ``TinyJit``, CUDA graphs).

The first call of the compiled step for given input shapes and dtypes runs ``step_fn`` eagerly — the
ordinary engine, the ordinary graph — while a recorder (``tinygraph.tracing``) writes down what the
engine did, in order:

- every node ``apply`` created: its op and which earlier values (nodes or leaves) it read;
- every ``backward()``: the seed, each gradient rule the reverse walk ran (with what it read and
  which inputs its results were added into) and the leaves whose ``.grad`` it stored;
- every optimiser ``step()`` / ``zero_grad()`` (and ``Module.zero_grad``): a unit of the plan that
  runs the optimiser's array update as it is;
- every ``.item()`` / ``float()`` of a traced value.

That record is planned into a ``Plan``: dead nodes dropped, the values each rule reads decided from
the ops' ``saves`` (the others are passed as ``Released`` placeholders, as the eager engine does), every
value freed after its last use, and the whole step emitted as one straight-line Python function whose
locals are the buffers: ``v12 = OP12.forward(v3, L0)`` ... ``r = OP12.vjp_arrays(g7, v12, v3, P4)``...
The gradients are added up as the trace saw them arrive: a slot that only ever receives 2-D
``Product``s of one shape (a recurrent weight's, one per time step) collects them in a list and sums
each group in one call where the eager accumulator would close it (``lazy.sum_group``: the same
matmuls and additions in the same order); one that receives the slices of ops that select blocks of
it (``Op.selection``: each step's row of an input projection) is one zeroed buffer each slice is added
into in place, with the selections indexed in the plan rather than called; and one with exactly two
array contributions is one ``+``. Any other slot goes through ``lazy.accumulate``, as eagerly.
Later calls with inputs of the same shapes and dtypes hand the inputs to that function (read in place,
or copied into the trace's input buffers: see the rules below) and run it: no Tensor, no toposort, no
gradient dict, no release sweep. The numbers are the
eager step's, bit for bit (the same forwards and rules, called in the same order on the same arrays).
Buffers an op was handed with ``out=`` (a recurrent layer's slab) are the trace's own and are reused
by every replay.

The rules of the game (TinyJit's):

- Python control flow is traced, not replayed: a branch taken or a loop length chosen at trace
  time is fixed in the plan. Values read into Python (``.item()``, ``float()``) are the trace's:
  such a number returned by ``step_fn`` as it is (``return loss.item()``) is replaced by the replayed
  value; any other use is warned about (``CompileWarning``). Arrays that steer Python — ``lengths``
  of padded batches, masks computed with numpy — must not change between calls: pass them in
  ``static_argnums`` (their bytes become part of the cache key, a new value re-traces) or keep them
  constant.
- Only ops, backward, optimiser steps, ``zero_grad`` and ``io_callback`` calls are captured. Python
  code that must run at every replay on the replay's values — a check of the loss, gradient clipping
  and a conditional update — goes in ``io_callback(fn, *tensors)`` (JAX's ``io_callback``): the
  replay calls ``fn`` at the same point with that replay's arrays. Other numpy code in ``step_fn``
  runs once; one that writes into arrays tinygraph tracks (``p.data -= lr * p.grad``) is detected and
  warned about. Random values must come from ops (``tinygraph.ops.sources``: dropout's mask is one),
  which replay draws again from the same generator; an array drawn with numpy is a constant.
- Inputs are positional ndarrays or static Python values (numbers, strings, None: part of the cache
  key). A new shape, dtype or static value traces again; every plan is kept (``compiled.plans``).
  The trace runs on a C-ordered copy of each array (the plan's input buffer). After it, the plan
  decides per input how replays take it (``plan.inputs_in_place``, ``plan.inputs_copied`` with the
  reason, both in ``repr(plan)``):

  - *read in place*, without a copy, when everything the replay holds that refers to the buffer is
    a leaf over it or over a view of it (``Tensor._wrap(x)``, ``x[a:b]`` taken with numpy), or the
    source a leaf was copied from (``Tensor(x)``, an array operand of an op): the replay rebuilds
    each such view — same offset, shape and strides — on the caller's array. It reads that array
    through a read-only view while it runs and never writes into it; values it returns that are
    views of it are copied, so changing the array afterwards changes no result. An argument that is
    not C-contiguous (a slice, F order) or not aligned is copied for that call only.
  - *copied* into the buffer at every replay (C order, so reshapes of it inside the step stay views
    the replay reads) otherwise: when an op keeps it as an attribute (cross-entropy's ``targets``, a
    getitem's index array), an optimiser or ``io_callback`` function or the object it closes over
    holds it, a module global or the step's result refers to it, an op writes into it (``out=``),
    the step wrote into it while traced, or a leaf over it requires grad; and for non-number dtypes.
    The check walks what the plan holds (op attributes, containers, bound methods, closures, the
    data in functions' globals; not class attributes).
- Arrays in what a replay returns may be buffers the next replay overwrites when they are views of
  them (they are copied), and leaves and op outputs made during the trace are not updated: only the
  values returned are.
- ``grad_of``/``value_and_grad`` and ``backward(create_graph=True)`` inside a traced step are refused;
  anomaly mode is not checked during replays. Tracing is process-wide: build no graphs in another
  thread meanwhile.
"""
import builtins
import functools
import gc
import sys
import threading
import types
import warnings
import weakref
import zlib

import numpy as np

from . import release
from .autograd import _rule_on_arrays, _seed, _store, compute_gradient
from .errors import CompileError
from .modes import no_grad
from .ops import lazy
from .ops.base import Cached
from .ops.namespaces import NUMPY_VJP
from .release import Released
from .tensor import Tensor
from .tracing import RECORDERS
from .versions import CLOCK, root


class CompileWarning(UserWarning):
    """A traced step does something a replay cannot repeat (see ``tinygraph.jit``)."""


def compile(step_fn=None, *, static_argnums=()):
    """``step_fn`` traced once per input signature and replayed afterwards (see ``tinygraph.jit``).

    ``step_fn(*args)``: positional ndarrays (the batch: inputs, targets...) and static values; it
    builds the graph, calls ``backward()`` and optimiser steps, and returns None, a Tensor, a number
    (``loss.item()``) or a tuple/list/dict of them. ``static_argnums``: positions of arguments keyed by
    value (ndarrays by their bytes) rather than by shape and dtype. Usable as ``@tg.compile``.

    Returns a ``CompiledStep``: ``compiled(*args)`` gives what ``step_fn`` returns (Tensors as new
    Tensors around the replayed arrays, ``.item()`` results as the replayed numbers).
    """
    if step_fn is None:
        return functools.partial(compile, static_argnums=static_argnums)
    if not callable(step_fn):
        raise CompileError(f"compile: step_fn must be callable, got {type(step_fn).__name__}")
    return CompiledStep(step_fn, static_argnums)


def io_callback(fn, *values):
    """``fn(*arrays)``, called now and, inside a traced step, again at this point of every replay.

    ``values``: Tensors (or arrays) whose current arrays ``fn`` receives, read-only. Outside a traced
    step this is just ``fn(*arrays)``. While ``tg.compile`` traces a step, ``fn`` runs as an opaque unit:
    nothing it does is recorded (its own ops, optimiser steps and ``zero_grad`` calls run eagerly,
    at trace time and in each replay), and the plan calls it again in every replay, after the nodes
    and rules before it and before those after it, with the replay's arrays. Its return value is
    returned at trace time only; a replay discards it, so ``fn`` passes results out through the objects
    it closes over (the trainer appends each update's gradient norm to a list). An exception raised
    by ``fn`` in a replay stops the replay there and propagates.
    """
    if not callable(fn):
        raise CompileError(f"io_callback: fn must be callable, got {type(fn).__name__}")
    for k, v in enumerate(values):
        if not isinstance(v, (Tensor, np.ndarray)):
            raise CompileError(f"io_callback: value {k} is a {type(v).__name__}; pass Tensors or arrays "
                               f"(Python numbers can be closed over by fn)")
    if RECORDERS and RECORDERS[-1].tracing():
        return RECORDERS[-1].callback(fn, values)
    return fn(*(_read_only(v._data if isinstance(v, Tensor) else v) for v in values))


def _read_only(array):
    view = np.asarray(array).view(np.ndarray)
    view.flags.writeable = False
    return view


class CompiledStep:
    """What ``tg.compile`` returns. ``plans``: ``{signature: Plan}``; ``plan``: the last one run;
    ``traces``: how many times ``step_fn`` was traced."""

    def __init__(self, step_fn, static_argnums=()):
        self.step_fn = step_fn
        self.static_argnums = frozenset((static_argnums,) if isinstance(static_argnums, int)
                                        else static_argnums)
        self.plans = {}
        self.plan = None
        self.traces = 0
        functools.update_wrapper(self, step_fn, updated=())

    def __call__(self, *args):
        key = self._signature(args)
        plan = self.plans.get(key)
        if plan is None:
            plan, result = self._trace(args)
            self.plans[key] = plan
            self.plan = plan
            return result
        self.plan = plan
        return plan.run(args)

    def signature(self, *args):
        """The key ``plans`` is keyed by for a call with ``args``: a plan exists for it when
        ``compiled.signature(*args) in compiled.plans`` (a call with it replays, others trace)."""
        return self._signature(args)

    def _signature(self, args):
        key = []
        for i, a in enumerate(args):
            if i in self.static_argnums:
                if isinstance(a, np.ndarray):
                    key.append(("static-array", a.shape, a.dtype.str, a.tobytes()))
                else:
                    try:
                        hash(a)
                    except TypeError:
                        raise CompileError(f"compile: static argument {i} ({type(a).__name__}) is not "
                                           f"hashable; a static argument is keyed by value") from None
                    key.append(("static", type(a), a))
            elif type(a) is np.ndarray:
                key.append((a.shape, a.dtype.str))
            elif isinstance(a, np.ndarray):  # a subclass (Tensor.data's view): its values, as an array
                key.append((a.shape, a.dtype.str))
            elif a is None or isinstance(a, (bool, int, float, str)):
                key.append(("static", type(a), a))
            elif isinstance(a, Tensor):
                raise CompileError(f"compile: argument {i} is a Tensor; pass its array (t.numpy()) — a "
                                   f"compiled step's inputs are ndarrays copied into its buffers")
            else:
                raise CompileError(f"compile: argument {i} is a {type(a).__name__}; a compiled step takes "
                                   f"ndarrays (the batch) and static numbers, strings or None")
        return tuple(key)

    def _trace(self, args):
        if RECORDERS:
            raise CompileError("compile: a compiled step was called while another step is being traced")
        buffers = {}   # argument position -> the plan's own input buffer
        call_args = list(args)
        for i, a in enumerate(args):
            if isinstance(a, np.ndarray) and i not in self.static_argnums:
                buffers[i] = np.array(a, copy=True, subok=False, order="C")   # C order: reshapes stay views
                call_args[i] = buffers[i]
        recorder = _Recorder(buffers.values())
        RECORDERS.append(recorder)
        try:
            result = self.step_fn(*call_args)
        finally:
            RECORDERS.remove(recorder)
        self.traces += 1
        plan = Plan(recorder, result, buffers, getattr(self.step_fn, "__qualname__", "step"), args)
        return plan, result

    def __repr__(self):
        name = getattr(self.step_fn, "__qualname__", repr(self.step_fn))
        return f"<compiled {name}: {len(self.plans)} plan(s), {self.traces} trace(s)>"


# --- recording ---------------------------------------------------------------------------------------
class _NodeRecord:
    __slots__ = ("op", "args", "shape", "dtype", "nbytes", "owns", "scope")


class _Recorder:
    """Receives the engine's hooks while a step is traced (``tinygraph.tracing``) and keeps the
    program: a list of events, each a tuple whose first item names its kind."""

    def __init__(self, buffers):
        self.thread = threading.get_ident()
        self.program = []
        self.nodes = []              # _NodeRecord per node, in creation order
        self.node_of = {}            # id(tensor) -> (node index, weakref to the tensor)
        self.leaves = []             # leaf tensors read (strong: parameters, constants)
        self.leaf_of = {}            # id(tensor) -> ("n", k) for a leaf aliasing node k, else ("l", j)
        self.geometry = {}           # (address, shape, strides, dtype) of a node's array -> (k, weakref)
        self.fresh = {}              # id(root memory) of arrays a replay allocates anew -> weakref
        self.persistent = {id(b) for b in buffers}   # memory that is the same in every replay
        self.buffers = list(buffers)
        self.items = []              # (value, tensor description) per .item() call
        self.backwards = 0
        self.unit_writes = 0         # writes recorded by optimiser units (versions.CLOCK)
        self.clock = CLOCK[0]
        self.grad_slots = 0

    def tracing(self):
        """Whether the calling thread is the one tracing (other threads' graphs are not the step's)."""
        return threading.get_ident() == self.thread

    _mine = tracing

    # -- values
    def value(self, t, what="a tensor"):
        """("n", k) for node k's output, ("l", j) for leaf j, registering a new leaf."""
        ref = self.node_of.get(id(t))
        if ref is not None and ref[1]() is t:
            return ("n", ref[0])
        known = self.leaf_of.get(id(t))
        if known is not None:
            return known
        data = t._data
        if type(data) is Released:
            raise CompileError(f"compile: the step reads {what} whose value was released")
        if t.op is not None and t.requires_grad:
            raise CompileError(
                f"compile: the step reads a tensor computed outside it that requires grad (output of op "
                f"'{t.op.name}', shape {t.shape}); a backward would reach into a graph the plan does not "
                f"hold. Pass its value as an input, or detach() it")
        alias = self.geometry.get(_geometry(data))
        if alias is not None and alias[1]() is not None:
            value = ("n", alias[0])   # detach() of a traced value: the replayed node's value
        elif self._is_fresh(data):
            raise CompileError(
                f"compile: the step reads a leaf (shape {t.shape}, {t.dtype}) made from a traced value "
                f"by numpy code outside ops; a replay would see the traced numbers. Use detach() or an op")
        else:
            self.persistent.add(id(root(data)))
            value = ("l", len(self.leaves))
        self.leaves.append(t)  # strong: the plan reads it (and ids stay unique)
        self.leaf_of[id(t)] = value
        return value

    def _is_fresh(self, array):
        r = root(array)
        ref = self.fresh.get(id(r))
        return ref is not None and ref() is r

    # -- hooks
    def node(self, op, inputs, out):
        if not self._mine():
            return
        args = tuple(self.value(t, f"input {k} of op '{op.name}'") for k, t in enumerate(inputs))
        data = out._data
        k = len(self.nodes)
        rec = _NodeRecord()
        rec.op, rec.args, rec.shape, rec.dtype = op, args, data.shape, data.dtype
        rec.nbytes, rec.owns, rec.scope = data.nbytes, data.base is None, out.scope
        self.nodes.append(rec)
        self.node_of[id(out)] = (k, weakref.ref(out))
        self.geometry[_geometry(data)] = (k, weakref.ref(data))
        given = getattr(op, "_out", None)
        if isinstance(given, np.ndarray):
            self.persistent.add(id(root(given)))
        r = root(data)
        if id(r) not in self.persistent:
            try:
                self.fresh[id(r)] = weakref.ref(r)
            except TypeError:
                pass
        self.program.append(("fwd", k))

    def leaf(self, tensor, source):
        """``Tensor(source)`` copied ``source``: from an input buffer, replays copy it again."""
        if not self._mine():
            return
        if isinstance(source, Tensor):
            source = source._data
        if not isinstance(source, np.ndarray):
            return
        source = source.view(np.ndarray)
        alias = self.geometry.get(_geometry(source))
        if alias is not None and alias[1]() is not None:
            j = self._constant_leaf(tensor)
            self.program.append(("refresh", j, ("n", alias[0])))
        elif any(root(source) is b for b in self.buffers):
            j = self._constant_leaf(tensor)
            self.program.append(("refresh", j, source))
        elif self._is_fresh(source):
            raise CompileError(
                f"compile: Tensor(...) copies a part of a traced value (shape {source.shape}) made by "
                f"numpy code; a replay would see the traced numbers. Use an op (indexing, reshape)")

    def _constant_leaf(self, tensor):
        j = len(self.leaves)
        self.leaves.append(tensor)
        self.leaf_of[id(tensor)] = ("l", j)
        return j

    def item(self, tensor, value):
        if not self._mine():
            return
        ref = self.node_of.get(id(tensor))
        if ref is not None and ref[1]() is tensor:
            source = ("n", ref[0])
        else:
            source = self.leaf_of.get(id(tensor))
        if source is None:  # a tensor from outside the step: its value is not the step's
            return
        self.program.append(("item", len(self.items), source))
        self.items.append((value, f"{tensor.shape} {tensor.dtype}"))

    def optimizer(self, owner, method, args):
        if not self._mine():
            method(*args)
            return
        before = CLOCK[0]
        method(*args)
        self.unit_writes += CLOCK[0] - before
        self.program.append(("call", method, args, type(owner).__name__ + "." + method.__name__.lstrip("_")))

    def callback(self, fn, values):
        """``io_callback`` while tracing: run ``fn`` unrecorded now and record the call."""
        sources = tuple(self.value(v, f"value {k} of io_callback") if isinstance(v, Tensor) else
                        self.value(Tensor._wrap(v), f"value {k} of io_callback")
                        for k, v in enumerate(values))
        arrays = [_read_only(v._data if isinstance(v, Tensor) else v) for v in values]
        before = CLOCK[0]
        position = RECORDERS.index(self)
        RECORDERS.pop(position)    # fn is opaque: what it does runs again in every replay, not recorded
        try:
            result = fn(*arrays)
        finally:
            RECORDERS.insert(position, self)
        self.unit_writes += CLOCK[0] - before
        name = getattr(fn, "__qualname__", type(fn).__name__)
        self.program.append(("host", fn, sources, f"io_callback {name}"))
        return result

    def gradient(self, wanted, create_graph):
        raise CompileError("compile: a traced step may differentiate only with backward() "
                           "(grad_of, grad and value_and_grad inside a compiled step are not supported)")

    def backward(self, output, grad, retain_graph, create_graph):
        if create_graph:
            raise CompileError("compile: backward(create_graph=True) inside a compiled step is not "
                               "supported; a replay runs first-order rules on arrays")
        if not isinstance(output, Tensor):
            raise CompileError(f"compile: backward of a {type(output).__name__}")
        seed = _seed(output, grad)
        if isinstance(grad, Tensor) and (self.node_of.get(id(grad), (0, lambda: None))[1]() is grad):
            raise CompileError("compile: backward(grad=...) with a traced tensor as grad is not supported")
        source = self.value(output, "the output of backward()")
        slots = {}   # id(tensor) -> gradient slot, for this backward call

        def slot(t):
            s = slots.get(id(t))
            if s is None:
                s = slots[id(t)] = self.grad_slots
                self.grad_slots += 1
            return s
        constant = None if grad is None else np.array(seed)
        self.program.append(("seed", slot(output), source, constant))
        recorder, contributed = self, set()

        def rule(node, g):
            ref = recorder.node_of.get(id(node))
            if ref is None or ref[1]() is not node:
                raise CompileError(f"compile: backward reached op '{node.op.name}', built outside the "
                                   f"traced step")
            had_cache = node._cache is not None
            results = _rule_on_arrays(node, g)
            targets = []
            for k, (t, tg) in enumerate(zip(node.inputs, results)):
                if tg is None or not t.requires_grad:
                    continue
                s = slot(t)
                targets.append((k, s, s not in contributed, _form(tg)))
                contributed.add(s)
            recorder.program.append(("rule", ref[0], slot(node), had_cache, tuple(targets)))
            return results

        mode = _RecordingMode(rule)
        with no_grad():
            found = compute_gradient([output], [seed], None, retain_graph, False, mode=mode)
            stores = []
            for t in reversed(list(found)):   # backward stores in popitem order
                if t.op is None:
                    stores.append((self.value(t), slots[id(t)]))
            self.program.append(("store", tuple(stores)))
            while found:
                _store(*found.popitem(), False)
        self.backwards += 1


def _form(g):
    """How a rule's gradient for one input looked in the trace, for the plan's accumulation:
    ("product", K, shape, dtype) for a ``Product`` of 2-D factors (left (M, K)), "array" for an
    ndarray, None for any other form."""
    kind = type(g)
    if kind is np.ndarray:
        return "array"
    if kind is lazy.Product and g.left.ndim == 2 and g.right.ndim == 2:
        return ("product", g.left.shape[1], g.shape, g.dtype)
    if kind is lazy.Scatter and not g.accumulate:
        return ("scatter", g.shape, g.values.dtype)
    return None


def _accumulation(program, nodes):
    """How the plan adds up each gradient slot with several contributions, from the forms the trace
    saw: ``(grouped, paired, scattered)``. ``scattered``: slot -> (shape, dtype) for a slot whose
    contributions all come from ops that select a block of it (``Op.selection``: the steps of a
    sequence sliced out of one projection), added into one zeroed buffer in place, as the eager
    accumulator adds their ``Scatter``s. ``grouped``: slot -> per contribution whether it closes a group, for
    a slot whose contributions are all 2-D Products of one shape and dtype (a recurrent weight's
    gradient, one per time step): the plan collects them in a list and sums each group in one call
    (``lazy.sum_group``) where the eager accumulator closes it, the same sums in the same order.
    ``paired``: slots with exactly two array contributions (a hidden state's gradient, from its
    output and from the next step), added with one ``+`` as ``accumulate`` does, without a call."""
    forms, seeded, by_selection = {}, set(), {}
    for ev in program:
        if ev[0] == "seed":
            seeded.add(ev[1])
        elif ev[0] == "rule":
            selects = nodes[ev[1]].op.selection() is not None
            for _, dst, _, form in ev[4]:
                forms.setdefault(dst, []).append(form)
                by_selection[dst] = by_selection.get(dst, True) and selects
    grouped, paired, scattered = {}, set(), {}
    for slot, seen in forms.items():
        if slot in seeded or len(seen) < 2:
            continue
        first = seen[0]
        if seen == ["array", "array"]:
            paired.add(slot)
        elif any(type(f) is not tuple or f[0] != first[0] for f in seen):
            continue
        elif first[0] == "product" and all(f[2:] == first[2:] for f in seen):
            grouped[slot] = lazy.group_flushes([f[1] for f in seen], lazy.flush_at(first[2], first[3]))
        elif first[0] == "scatter" and by_selection[slot] and all(f == first for f in seen):
            scattered[slot] = first[1:]
    return grouped, paired, scattered


class _RecordingMode:
    """``autograd._FirstOrder`` with a rule that records the walk (``compute_gradient(mode=...)``)."""

    def __init__(self, rule):
        self.seed = lambda array: array
        self.add, self.for_rule = lazy.accumulate, lazy.for_rule
        self.dense = self.values = lazy.materialize
        self.rule = rule


def _geometry(a):
    return (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str)


# --- the plan -----------------------------------------------------------------------------------------
class Plan:
    """One traced step, planned: a straight-line program over buffers (see ``tinygraph.jit``).

    Attributes:
        nodes: forward nodes replayed (after dead ones were dropped); ``traced_nodes``: all recorded.
        rules: gradient rules replayed; ``units``: optimiser calls; ``backwards``: backward() calls.
        buffers: value buffers (node outputs that own memory; views of a slab or of an input are
            not buffers of their own) and ``bytes`` their total size; ``peak_bytes``: the most of
            them alive at once under the plan's frees; ``persistent_bytes``: the buffers of the
            inputs copied and ``out=`` buffers (a recurrent layer's slab) every replay reuses.
            Gradient arrays, which the rules allocate as they run and the plan drops after their
            last use, are not counted.
        leaves: leaf tensors read (parameters, constants). ``source``: the generated program.
        inputs_in_place: the argument positions a replay reads in place (the caller's arrays, not
            copied); ``inputs_copied``: ``{position: reason}`` of those copied into the plan's
            buffers at every replay (see ``tinygraph.jit``).
        ops: ``{op name: count}`` of the replayed forward nodes.
    """

    def __init__(self, recorder, result, buffers, name="step", args=None):
        self.name = name
        self._buffers = dict(buffers)   # the inputs copied at every replay (the others leave it)
        self.traced_nodes = len(recorder.nodes)
        self.backwards = recorder.backwards
        self._warn_uncaptured(recorder)
        self._template, self._returned_items = self._result_template(result, recorder)
        self._stored = {leaf[1] for ev in recorder.program if ev[0] == "store" for leaf, _ in ev[1]
                        if leaf[0] == "l"}
        self._cleared = {j for j in self._stored if recorder.leaves[j].grad is None}
        self._warn_items(recorder)
        self._build(recorder, args)

    # -- checks at trace time
    def _warn_uncaptured(self, rec):
        writes = CLOCK[0] - rec.clock - rec.unit_writes
        if writes > 0:
            warnings.warn(
                f"compile({self.name}): the step made {writes} in-place write(s) into tracked arrays outside "
                f"optimiser steps (e.g. p.data -= lr * p.grad); replays do not repeat them. Use a "
                f"tg.optim optimiser", CompileWarning, stacklevel=5)

    def _warn_items(self, rec):
        unused = [i for i in range(len(rec.items)) if i not in self._returned_items]
        if unused:
            warnings.warn(
                f"compile({self.name}): the step read {len(unused)} traced value(s) into Python (.item() / "
                f"float()) and did not return them as they are; Python code using them ran once, at "
                f"trace time, and replays reuse its result", CompileWarning, stacklevel=5)

    def _result_template(self, result, rec):
        """A description of ``result`` whose leaves are ("v", value), ("i", item) or ("c", constant)."""
        items = {}
        for i, (value, _) in enumerate(rec.items):
            items.setdefault(id(value), i)
        returned = set()

        def walk(x, where):
            if isinstance(x, Tensor):
                ref = rec.node_of.get(id(x))
                if ref is not None and ref[1]() is x:
                    return ("v", ("n", ref[0]))
                known = rec.leaf_of.get(id(x))
                if known is not None and known[0] == "n":
                    return ("v", known)
                return ("c", x)
            if isinstance(x, (bool, int, float, complex, np.number, np.bool_)):
                i = items.get(id(x))
                if i is not None and rec.items[i][0] is x:
                    returned.add(i)
                    return ("i", i)
                return ("c", x)
            if x is None or isinstance(x, str):
                return ("c", x)
            if isinstance(x, (tuple, list)):
                return (type(x), [walk(v, f"{where}[{k}]") for k, v in enumerate(x)])
            if isinstance(x, dict):
                return (dict, {k: walk(v, f"{where}[{k!r}]") for k, v in x.items()})
            raise CompileError(f"compile({self.name}): {where} is a {type(x).__name__}; a compiled step "
                               f"returns None, Tensors, numbers, or tuples, lists and dicts of them")
        return walk(result, "the step's result"), returned

    # -- planning
    def _build(self, rec, args):
        program, nodes = rec.program, rec.nodes
        # which forward nodes are needed: read by a rule, an item, the result or a later needed
        # node, or run for their effect (an out= buffer written, a random draw)
        needed = [False] * len(nodes)
        results = []
        self._collect(self._template, results)
        for kind, value in results:
            if kind == "v" and value[0] == "n":
                needed[value[1]] = True
        for ev in program:
            if ev[0] == "rule":
                needed[ev[1]] = True
            elif ev[0] in ("item", "refresh") and isinstance(ev[2], tuple) and ev[2][0] == "n":
                needed[ev[2][1]] = True
            elif ev[0] == "seed" and ev[2][0] == "n":
                needed[ev[2][1]] = True
            elif ev[0] == "host":
                for source in ev[2]:
                    if source[0] == "n":
                        needed[source[1]] = True
        for k in range(len(nodes) - 1, -1, -1):
            op = nodes[k].op
            if getattr(op, "random", False) or isinstance(getattr(op, "_out", None), np.ndarray):
                needed[k] = True
            if needed[k]:
                for a in nodes[k].args:
                    if a[0] == "n":
                        needed[a[1]] = True
        self._place_inputs(rec, args)
        self._emit(rec, needed, results)

    # -- inputs read in place
    def _place_inputs(self, rec, args):
        """Which inputs a replay reads in place (``inputs_in_place``) and which it copies into the
        plan's buffer (``inputs_copied``, with the reason), from what the plan holds after the trace.

        An input is read in place when every reference the replay has into its buffer is one the
        replay can rebuild on the caller's array: a leaf over it (or over a view of it) that only
        feeds ops, and the source of a leaf copied from it (``Tensor(x)``, an array operand of an
        op). Anything else the replay reaches that holds the buffer or a view of it — an op's
        attribute (cross-entropy's ``targets``), an object an optimiser or ``io_callback`` function
        holds, a module global, the step's result — would keep reading the traced values, so that
        input stays copied, as are inputs the trace wrote into and inputs that are not numbers.
        """
        copied, candidates = {}, {}        # position -> reason; id(buffer) -> position
        for i, buf in self._buffers.items():
            if buf.dtype.kind not in "biufc":
                copied[i] = f"dtype {buf.dtype}: only number and bool arrays are read in place"
            elif buf.size == 0:
                copied[i] = "empty"
            elif args is None or not _same_bytes(buf, args[i]):
                copied[i] = "the traced step wrote into it"
            else:
                candidates[id(buf)] = i

        def drop(array, reason):
            i = candidates.pop(id(root(array)), None)
            if i is not None:
                copied[i] = reason
        for n in rec.nodes:
            out = getattr(n.op, "_out", None)
            if isinstance(out, np.ndarray):
                drop(out, f"op '{n.op.name}' writes into it (out=)")
        rebound, holders = {}, []    # leaf j -> position; (object the replay holds, what it is)
        for j, t in enumerate(rec.leaves):
            if rec.leaf_of[id(t)] != ("l", j):
                continue            # a leaf standing for a node's value: the replay reads the node
            data = t._data
            i = candidates.get(id(root(data))) if isinstance(data, np.ndarray) else None
            if i is not None:
                if not (t.requires_grad or j in self._stored):
                    rebound[j] = i
                    continue
                drop(data, f"leaf {j} over it requires grad (the plan stores its .grad)")
            holders.append((t, f"leaf {j} {t.shape}"))
        for ev in rec.program:
            if ev[0] == "call":
                holders.append(((ev[1], ev[2]), ev[3]))
            elif ev[0] == "host":
                holders.append((ev[1], ev[3]))
            elif ev[0] == "seed" and ev[3] is not None:
                holders.append((ev[3], "backward's grad"))
            elif ev[0] == "refresh" and not isinstance(ev[2], tuple) and \
                    id(root(ev[2])) not in candidates:   # (a view of a candidate is rebuilt)
                holders.append((ev[2], f"the array leaf {ev[1]} is copied from"))
        holders += [(n.op, f"op '{n.op.name}'") for n in rec.nodes]
        holders.append((self._template, "the step's result"))
        if candidates:
            buffers = {key: self._buffers[i] for key, i in candidates.items()}
            with warnings.catch_warnings():   # objects the walk touches may warn when read (deprecated)
                warnings.simplefilter("ignore")
                reached = _reaching(holders, buffers)
            for key, what in reached.items():
                i = candidates.pop(key)
                copied[i] = f"{what} holds a reference to it"
        if candidates:
            drop_globals = _module_globals_holding([self._buffers[i] for i in candidates.values()])
            for buf in drop_globals:
                drop(buf, "a module global refers to it")
        self.inputs_in_place = tuple(sorted(candidates.values()))
        self.inputs_copied = dict(sorted(copied.items()))
        self._in_place = {i: self._buffers.pop(i) for i in self.inputs_in_place}   # traced buffers
        self._in_place_ids = {id(b): i for i, b in self._in_place.items()}
        self._rebound = {j: i for j, i in rebound.items() if i in self._in_place}

    def _view_of_input(self, array, i):
        """Source text of ``array`` (a view of input i's traced buffer) rebuilt on the argument
        ``A{i}``: the same offset, shape and strides."""
        buf = self._in_place[i]
        if array.shape == buf.shape and array.strides == buf.strides and \
                _address(array) == _address(buf) and array.dtype == buf.dtype:
            return f"A{i}"
        names = self._env.setdefault("_dtypes", {})   # dtype -> its name in the source
        key = names.setdefault(array.dtype, f"DT{len(names)}")
        self._env[key] = array.dtype
        return (f"ndarray({array.shape!r}, {key}, A{i}, {_address(array) - _address(buf)}, "
                f"{array.strides!r})")

    @staticmethod
    def _collect(template, out):
        kind, body = template
        if kind in ("v", "i"):
            out.append(template)
        elif kind == "c":
            pass
        elif kind is dict:
            for v in body.values():
                Plan._collect(v, out)
        else:
            for v in body:
                Plan._collect(v, out)

    def _emit(self, rec, needed, results):
        """The program as Python source (one function), its constants, and the statistics."""
        nodes, program = rec.nodes, rec.program
        env = {"ndarray": np.ndarray, "Cached": Cached, "asarray": np.asarray, "ones_like": np.ones_like,
               "copyto": np.copyto, "zeros": np.zeros, "for_rule": lazy.for_rule, "acc": lazy.accumulate,
               "materialize": lazy.materialize, "sum_group": lazy.sum_group, "store": _store,
               "unwrap": _unwrap, "NUMPY_VJP": NUMPY_VJP}
        lines = []          # (statement, values it reads)
        reads = {}          # value name -> index of the last statement reading it
        name = lambda v: f"v{v[1]}" if v[0] == "n" else f"L{v[1]}"  # noqa: E731
        leaves = rec.leaves
        self._env = env
        # a leaf standing for a node's value is read as the node's (v{k}); one over an input read in
        # place is rebuilt on the argument A{i} (the plan does not hold its Tensor)
        live_leaves = [j for j, t in enumerate(leaves) if rec.leaf_of[id(t)] == ("l", j)
                       and j not in self._rebound]
        for j in live_leaves:
            env[f"T{j}"] = leaves[j]

        def emit(stmt, *values):
            for v in values:
                reads[v] = len(lines)
            lines.append(stmt)

        def read_leaves():
            for j in live_leaves:
                emit(f"L{j} = T{j}._data")

        placeholders = {}   # (shape, dtype, op name) -> the name of its Released placeholder

        def released(n):
            # What a rule gets for a value it does not read (not in its op's saves): one placeholder
            # per shape, dtype and op kind, not one per node, since the plan keeps them all; a rule
            # reading one would have failed in the trace already, on the same path.
            key = (n.shape, n.dtype, n.op.name)
            if key not in placeholders:
                placeholders[key] = f"P{len(placeholders)}"
                env[placeholders[key]] = Released(n.shape, n.dtype, n.op.name,
                                                  f"a node of compiled step {self.name}")
            return placeholders[key]
        for j, i in self._rebound.items():
            emit(f"L{j} = {self._view_of_input(leaves[j]._data, i)}")
        read_leaves()
        cached_needed = set(ev[1] for ev in program if ev[0] == "rule" and ev[3])
        grouped, paired, scattered = _accumulation(program, nodes)
        added = {}          # grouped slot -> contributions emitted so far

        def close_group(slot):
            # the Products collected since the last group closed, summed before the slot is read
            closes = grouped.get(slot)
            if closes is not None and not closes[-1]:
                lines.append(f"g{slot} = sum_group(g{slot}, F{slot})")
                lines.append(f"del F{slot}")
        counts, self.ops = 0, {}
        rules = units = 0
        for ev in program:
            kind = ev[0]
            if kind == "fwd":
                k = ev[1]
                if not needed[k]:
                    continue
                rec_k = nodes[k]
                env[f"OP{k}"] = rec_k.op
                args = [name(a) for a in rec_k.args]
                selection = rec_k.op.selection()
                if selection is not None:   # a view: indexed here, without a call
                    env[f"IDX{k}"] = selection
                    emit(f"v{k} = {args[0]}[IDX{k}]", *args)
                    if rec_k.shape == ():   # a numpy scalar, of which apply makes an array
                        emit(f"v{k} = asarray(v{k})")
                else:
                    emit(f"v{k} = OP{k}.forward({', '.join(args)})", *args)
                    if k in cached_needed:
                        emit(f"v{k}, c{k} = unwrap(v{k})")
                    else:
                        emit(f"if v{k}.__class__ is not ndarray: v{k} = unwrap(v{k})[0]")
                counts += 1
                self.ops[rec_k.op.name] = self.ops.get(rec_k.op.name, 0) + 1
            elif kind == "refresh":
                j, src = ev[1], ev[2]
                if isinstance(src, tuple):
                    emit(f"copyto(T{j}._data, {name(src)}, casting='unsafe')", name(src))
                elif id(root(src)) in self._in_place_ids:   # rebuilt on the argument read in place
                    view = self._view_of_input(src, self._in_place_ids[id(root(src))])
                    emit(f"copyto(T{j}._data, {view}, casting='unsafe')")
                else:
                    env[f"S{j}"] = src
                    emit(f"copyto(T{j}._data, S{j}, casting='unsafe')")
            elif kind == "item":
                emit(f"i{ev[1]} = {name(ev[2])}.item()", name(ev[2]))
            elif kind == "call":
                env[f"C{units}"] = functools.partial(ev[1], *ev[2])
                emit(f"C{units}()  # {ev[3]}")
                units += 1
                read_leaves()   # an update may rebind a parameter's array
            elif kind == "host":
                env[f"C{units}"] = ev[1]
                env["readonly"] = _read_only
                args = [name(v) for v in ev[2]]
                emit(f"C{units}({', '.join(f'readonly({a})' for a in args)})  # {ev[3]}", *args)
                units += 1
                read_leaves()
            elif kind == "seed":
                gs, src, constant = ev[1], ev[2], ev[3]
                if constant is None:
                    emit(f"g{gs} = ones_like({name(src)})", name(src))
                else:
                    env[f"SEED{gs}"] = constant
                    emit(f"g{gs} = SEED{gs}")
            elif kind == "rule":
                k, gs, had_cache, targets = ev[1:]
                rec_k = nodes[k]
                op = rec_k.op
                env[f"OP{k}"] = op
                # the rule called on the op itself: no bound method or partial object per node
                rule = f"OP{k}.vjp_arrays(" if op.vjp_arrays is not None else f"OP{k}.vjp(NUMPY_VJP, "
                saved = op._saved_inputs
                args = [f"v{k}" if op._saves_out else released(rec_k)]
                for pos, a in enumerate(rec_k.args):
                    if saved is None or pos in saved or a[0] == "l":
                        args.append(name(a))
                    else:
                        args.append(released(nodes[a[1]]))
                value_args = [a for a in args if a[0] in "vL"]
                extra = f", cache=c{k}" if had_cache else ""
                # an ndarray gradient (the common case) is what for_rule would hand on: no call
                grad = f"(g{gs} if g{gs}.__class__ is ndarray else for_rule(g{gs}, OP{k}))"
                close_group(gs)
                if targets and targets[0][1] in scattered:   # its Scatter added into the buffer here
                    _, dst, first, _ = targets[0]
                    if first:
                        env[f"SHAPE{dst}"], env[f"DTYPE{dst}"] = scattered[dst]
                        lines.append(f"g{dst} = zeros(SHAPE{dst}, DTYPE{dst})")
                    lines.append(f"g{dst}[IDX{k}] += {grad}")
                    lines.append(f"g{gs} = None")
                    rules += 1
                    continue
                emit(f"r = {rule}{grad}, {', '.join(args)}{extra})", *value_args)
                lines.append(f"g{gs} = None")
                for pos, dst, first, _ in targets:
                    closes = grouped.get(dst)
                    if closes is not None:
                        i = added[dst] = added.get(dst, -1) + 1
                        if i == 0:
                            lines.append(f"g{dst} = None")
                        lines.append(f"F{dst} = [r[{pos}]]" if i == 0 or closes[i - 1]
                                     else f"F{dst}.append(r[{pos}])")
                        if closes[i]:
                            lines.append(f"g{dst} = sum_group(g{dst}, F{dst})")
                            lines.append(f"del F{dst}")
                    elif first:
                        lines.append(f"g{dst} = r[{pos}]")
                    elif dst in paired:
                        lines.append(f"g{dst} = g{dst} + r[{pos}] if g{dst}.__class__ is ndarray is "
                                     f"r[{pos}].__class__ else acc(g{dst}, r[{pos}])")
                    else:
                        lines.append(f"g{dst} = acc(g{dst}, r[{pos}])")
                rules += 1
            elif kind == "store":
                for leaf, gs in ev[1]:
                    j = leaf[1] if leaf[0] == "l" else None
                    if j is None:   # a leaf aliasing a node: find its tensor
                        continue
                    close_group(gs)
                    lines.append(f"store(T{j}, g{gs} if g{gs}.__class__ is ndarray else "
                                 f"materialize(for_rule(g{gs}, None)), False)")
                    lines.append(f"g{gs} = None")
        for j in sorted(self._cleared):   # .grad dropped by code the plan does not replay (p.grad = None)
            lines.append(f"T{j}.grad = None")
        outs = []
        for kind, value in results:
            if kind == "v":
                outs.append(name(value))
                reads[name(value)] = len(lines)
            else:
                outs.append(f"i{value}")
        # frees: a buffer of at least release.MIN_BYTES is dropped after the statement that reads it last
        sizes = {f"v{k}": n.nbytes for k, n in enumerate(nodes) if needed[k] and n.owns}
        free_after = {}
        for v, last in reads.items():
            if sizes.get(v, 0) >= release.MIN_BYTES:
                free_after.setdefault(last, []).append(v)
        body = []
        for i, stmt in enumerate(lines):
            body.append(stmt)
            if i in free_after:
                body.append(f"del {', '.join(free_after[i])}")
        body.append(f"return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
        params = ", ".join(f"A{i}" for i in self.inputs_in_place)
        source = f"def replay({params}):\n" + "\n".join("    " + s for s in body) + "\n"
        # The plan is held between steps, so its size counts (at T = 2000 the program has ~28000
        # lines): the globals' names are interned, so the code object's names are the same strings,
        # and the text is kept compressed (``source`` unpacks it).
        env = {sys.intern(k): v for k, v in env.items()}
        exec(builtins.compile(source, f"<tinygraph plan {self.name}>", "exec"), env)
        self._replay = env["replay"]
        self._source = zlib.compress(source.encode())
        del self._env, self._in_place, self._in_place_ids   # the traced buffers are not kept
        self.nodes, self.rules, self.units = counts, rules, units
        self.leaves = len(leaves)
        owned = [(f"v{k}", n.nbytes) for k, n in enumerate(nodes) if needed[k] and n.owns]
        self.buffers = len(owned)
        self.bytes = sum(b for _, b in owned)
        self.peak_bytes = self._peak(body, dict(owned))
        self.persistent_bytes = sum(b.nbytes for b in self._buffers.values()) + sum(
            {id(root(n.op._out)): root(n.op._out).nbytes for n in nodes
             if isinstance(getattr(n.op, "_out", None), np.ndarray)}.values())

    @property
    def source(self):
        """The generated program: one function, ``replay(A0, ...)``, taking the inputs read in place."""
        return zlib.decompress(self._source).decode()

    @staticmethod
    def _peak(body, sizes):
        """The most bytes of node values alive at once, under the plan's frees."""
        alive, total, peak = set(), 0, 0
        for stmt in body:
            if stmt.startswith("del "):
                for v in stmt[4:].split(", "):
                    if v in alive:
                        alive.discard(v)
                        total -= sizes[v]
            elif " = " in stmt:
                target = stmt.split(" = ", 1)[0].split(",")[0]
                if target in sizes and target not in alive:
                    alive.add(target)
                    total += sizes[target]
                    peak = max(peak, total)
        return peak

    # -- replay
    def run(self, args):
        """Replay the step on ``args`` (same signature as the trace); returns the step's result."""
        for i, buf in self._buffers.items():
            np.copyto(buf, args[i])
        bound = []
        for i in self.inputs_in_place:
            a = args[i]
            # a read-only view: a replay never writes into the caller's array; an argument the
            # views cannot be rebuilt on as traced (not C-contiguous, or unaligned) is copied for
            # this call
            flags = a.flags
            a = a.view(np.ndarray) if flags.c_contiguous and flags.aligned else np.array(a, order="C")
            a.flags.writeable = False
            bound.append(a)
        with no_grad():
            values = self._replay(*bound)
        return self._rebuild(self._template, iter(values))

    def _rebuild(self, template, values):
        kind, body = template
        if kind == "v":
            array = next(values)
            return Tensor._wrap(array.copy() if array.base is not None else array)
        if kind == "i":
            return next(values)
        if kind == "c":
            return body
        if kind is dict:
            return {k: self._rebuild(v, values) for k, v in body.items()}
        return kind(self._rebuild(v, values) for v in body)

    def __repr__(self):
        top = ", ".join(f"{k} x{v}" for k, v in sorted(self.ops.items(), key=lambda kv: -kv[1])[:4])
        return (f"<Plan {self.name}: {self.nodes} nodes ({self.traced_nodes} traced; {top}), "
                f"{self.rules} rules, {self.backwards} backward, {self.units} optimiser units, "
                f"{self.buffers} buffers, {_mb(self.bytes)} ({_mb(self.peak_bytes)} peak, "
                f"{_mb(self.persistent_bytes)} persistent), {self.leaves} leaves, "
                f"inputs {self._inputs_text()}>")

    def _inputs_text(self):
        """``"0 read in place, 1 copied (why)"``: how a replay takes each input."""
        parts = [f"{i} read in place" for i in self.inputs_in_place]
        parts += [f"{i} copied ({why})" for i, why in self.inputs_copied.items()]
        return ", ".join(sorted(parts, key=lambda p: int(p.split()[0]))) or "none"


def _address(array):
    return array.__array_interface__["data"][0]


def _same_bytes(buffer, array):
    """Whether the C-ordered ``buffer`` still holds ``array``'s bytes (nothing wrote into it)."""
    a = np.ascontiguousarray(array)
    return np.array_equal(buffer.reshape(-1).view(np.uint8), a.reshape(-1).view(np.uint8))


_OPAQUE = (types.ModuleType, type, str, bytes, int, float, complex, bool, type(None),
           types.CodeType, types.BuiltinFunctionType, types.WrapperDescriptorType,
           types.MethodDescriptorType, types.GetSetDescriptorType, types.MemberDescriptorType)
_REACH_LIMIT = 500_000   # objects walked before giving up (the inputs are then copied)


def _extent(array):
    """``(first, end)``: the addresses of the bytes ``array`` can read."""
    first = end = _address(array)
    for n, stride in zip(array.shape, array.strides):
        if stride < 0:
            first += stride * (n - 1)
        else:
            end += stride * (n - 1)
    return first, end + array.itemsize


def _reaching(holders, buffers):
    """``{id(buffer): what}`` for the ``buffers`` (``{id: array}``) whose memory an ndarray reachable
    from one of ``holders`` ((object, what it is) pairs) reads — a view of one, or any array over
    its bytes — through attributes, containers, bound methods, partials and functions (closures,
    defaults and the data in their globals); modules and classes are not entered. Every buffer is
    returned when the walk grows too large."""
    extents = {key: _extent(b) for key, b in buffers.items()}
    found, seen, walked, made = {}, set(), 0, []   # made: objects made here, alive while ids are seen
    for start, what in holders:
        stack = [start]
        while stack:
            obj = stack.pop()
            if id(obj) in seen or isinstance(obj, _OPAQUE):
                continue
            seen.add(id(obj))
            walked += 1
            if walked > _REACH_LIMIT:
                return {key: f"a step too large to check ({_REACH_LIMIT} objects)" for key in buffers}
            if isinstance(obj, np.ndarray):
                key = id(root(obj))
                if key in buffers:
                    found.setdefault(key, what)
                elif obj.size:   # an array over a buffer's bytes by another route (a memoryview)
                    first, end = _extent(obj)
                    for key, (lo, hi) in extents.items():
                        if first < hi and lo < end:
                            found.setdefault(key, what)
                if obj.dtype.hasobject:
                    made.append(obj.ravel().tolist())
                    stack.extend(made[-1])
                continue
            if isinstance(obj, types.FunctionType):
                stack += [obj.__closure__, obj.__defaults__, obj.__kwdefaults__, obj.__dict__]
                if id(obj.__globals__) not in seen:   # the data a function's globals hold
                    seen.add(id(obj.__globals__))
                    stack += [v for v in obj.__globals__.values()
                              if not isinstance(v, (types.FunctionType, types.BuiltinFunctionType))]
                continue
            stack += gc.get_referents(obj)
    return found


def _module_globals_holding(buffers):
    """The ``buffers`` a module's globals refer to directly (code run at replays may read them)."""
    modules = {id(vars(m)) for m in list(sys.modules.values()) if isinstance(m, types.ModuleType)}
    ids = {id(b): b for b in buffers}
    held = []
    for ref in gc.get_referrers(*buffers):
        if type(ref) is dict and id(ref) in modules:
            held += [ids[id(v)] for v in ref.values() if id(v) in ids]
    return held


def _unwrap(value):
    """``(array, cache)`` from what a forward returned, as ``apply`` takes it apart."""
    cache = None
    if type(value) is Cached:
        value, cache = value.value, value.cache
    return np.asarray(value), cache


def _mb(n):
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"
