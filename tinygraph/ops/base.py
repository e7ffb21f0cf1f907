"""The op protocol, the registry, and ``apply`` — the single place where a graph node is created.

An op is a small class with ``forward`` (arrays in, array out) and ``vjp`` (the gradient rule) side by
side. ``vjp(B, g, out, *inputs)`` returns exactly one gradient per input, in order (``None`` for an input
that is not differentiable). It is a pure function of the upstream gradient ``g``, the forward output
``out`` and the inputs; the engine does the accumulation.

``B`` is the namespace the rule computes with (``tinygraph.ops.namespaces``). First-order backward
passes ``NUMPY_VJP`` and raw arrays, so it costs what hand-written numpy costs; ``create_graph=True``
passes ``TENSOR_VJP`` and Tensors, so the very same rule builds a differentiable graph (grad-of-grad,
Hessian-vector products). Rules only use operators, the methods ndarray and Tensor share (``sum reshape
transpose swapaxes astype``, indexing) and the handful of functions in ``B``.

An op may also define ``vjp_arrays(self, g, out, *inputs)`` beside ``vjp``: the same rule for arrays
only, written for speed (in-place numpy, one buffer, lazy results), with the same return convention.
First-order backward runs it instead of ``vjp(NUMPY_VJP, ...)``; ``vjp`` stays the definition, which
``create_graph=True`` runs and the second-order tests check, and a registry test checks the two agree.
A forward may return ``Cached(value, cache)`` to leave values on the node for that fast rule; an op
object itself holds only its constructor parameters, so one op may be applied any number of times.

Forward mode: ``jvp(B, tangents, out, *inputs)`` returns the output's tangent given one tangent per
input (``tangents[k]`` has ``inputs[k]``'s shape and dtype, or is None for an input that carries
none); it returns None when the result is zero. Like ``vjp`` it uses only ``B``, operators and the
shared methods, so it runs on arrays and, recorded, on Tensors. The engine broadcasts a returned
tangent to the output's shape. An op without its own ``jvp`` gets one derived from ``vjp`` (which is
linear in ``g``); elementwise ops write theirs, it is cheaper. ``apply`` runs the rule right after
``forward``, before anything is released, so a jvp rule may read any value, declared in ``saves`` or
not (``tinygraph.forward`` says which namespace it runs in).

Subclassing ``Op`` with a ``name`` registers the op in ``OPS``; ``tinygraph.testing`` reads the
registry, so every op is covered by the gradient property tests as soon as it exists
(``class MyOp(Op, register=False)`` keeps a private or throwaway op out of it). ``sample`` names
the shape family the tests draw inputs from; ``domain`` bounds the values (an op defined for x > 0
only says so); ``kinks`` are points where the op is not differentiable, kept away from in numerical
checks.

``saves`` names the values the gradient rule reads, by the names of ``vjp``'s parameters (the first
after ``g`` is the output, ``out``): ``("x", "y")`` for a product of its inputs, ``("out",)`` for an
op whose derivative is written from its output, ``()`` for a sum, whose rule only reads ``x.shape``. Shapes and dtypes are not values: a rule may always use them. The
engine releases every other value once nothing outside the graph holds it (``tinygraph.release``).
An op that declares nothing (``saves = None``, e.g. a user's op) keeps everything: conservative and
correct. A variadic parameter (``*xs``) names all the inputs it collects.
"""
import inspect

import numpy as np

from .. import release
from ..tracing import RECORDERS
from ..errors import AnomalyError, ShapeError
from ..modes import _current_scope as current_scope, _current_step as current_step  # builtins: hot
from ..modes import _is_anomaly_enabled as is_anomaly_enabled, _is_grad_enabled as is_grad_enabled
from ..tensor import Tensor
from ..versions import CLOCK

OPS = {}
"""``{name: Op subclass}`` of every registered primitive, in definition order (the property tests
walk it)."""
PENDING = release.PENDING  # the same list: sweeps change it in place
# ``tinygraph.forward.propagate`` while a forward-mode level is open in any thread, else None: one
# global read is all forward mode costs ``apply`` when it is off
tangent_hook = None


class Op:
    """A primitive: ``forward`` on arrays and its gradient rule ``vjp`` side by side (the protocol is
    this module's docstring). Constructor arguments are the op's parameters (an axis, a shape);
    ``apply(op, *tensors)`` runs it and records the node. A subclass with a ``name`` is registered in
    ``OPS``; the class attributes below declare what the property tests draw and what the rule reads."""
    name = None
    differentiable = True   # False: the output never requires grad (piecewise-constant outputs)
    sample = None           # which input family the property tests draw from (see tinygraph.testing)
    domain = (-3.0, 3.0)    # value range for property tests
    kinks = ()              # non-differentiable points the numerical check keeps away from
    distinct = False        # property tests draw distinct values (for a gradient not unique at ties)
    lazy_grad = False       # True: first-order vjp may receive g as a lazy ``Product`` (it only slices g)
    saves = None            # vjp parameter names whose values the rule reads; None: all of them
    _saves_out, _saved_inputs = True, None  # ``saves`` resolved by __init_subclass__ (see saved_plan)
    _plan = (False, True, True)  # apply's: (not _saves_out, _saved_inputs or True: all, differentiable)

    def __init_subclass__(cls, register=True, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._saves_out, cls._saved_inputs = saved_plan(cls)
        cls._plan = (not cls._saves_out, True if cls._saved_inputs is None else cls._saved_inputs,
                     cls.differentiable)
        if register and cls.name is not None:
            if cls.name in OPS:
                raise ValueError(f"op name {cls.name!r} registered twice")
            OPS[cls.name] = cls

    def forward(self, *arrays):
        """The output array for the input ``arrays`` (ndarrays, one per input, in order). For inputs
        it cannot take it may raise ValueError, IndexError or TypeError: ``apply`` turns that into a
        ``ShapeError`` with ``explain``'s reason."""
        raise NotImplementedError

    def vjp(self, B, g, out, *inputs):
        """The gradient rule: one gradient per input, in order, each of its input's shape (None for
        an input that is not differentiable), given the upstream gradient ``g`` (``out``'s shape),
        the output and the inputs; computed with the namespace ``B`` (``NUMPY_VJP`` on arrays,
        ``TENSOR_VJP`` on Tensors for ``create_graph=True``). A pure function: the engine
        accumulates."""
        raise NotImplementedError(f"{self.name}: no gradient rule")

    vjp_arrays = None  # optional: ``vjp_arrays(self, g, out, *inputs)``, the first-order rule on arrays

    def jvp(self, B, tangents, out, *inputs):
        """The output's tangent J v for one tangent per input (None: none), derived from ``vjp``.

        ``vjp`` is linear in g, so <vjp(u), v> is linear in u and its gradient in u is J v: the
        rule runs once on Tensors for a placeholder u, and a backward through it gives J v
        (``tinygraph.forward.derived_jvp``). That is a small graph per op: 65 us for a (4, 4)
        tanh under ``no_grad``, whose forward takes 1 us; an op's own ``jvp`` costs what its
        arithmetic costs (``affine``'s adds 5.5 us to its 4.3 us).
        """
        from ..forward import derived_jvp
        return derived_jvp(self, B, tangents, out, inputs)

    def selection(self):
        """The basic index ``i`` when this op's output is ``x[i]`` of its one input (a view) and its
        gradient adds ``g`` back into x's at ``i`` (a ``Scatter``); None, the default, for every other
        op. A compiled plan then indexes in place of the forward call and adds each step's gradient
        into one buffer in place of the rule and the accumulation (``tinygraph.jit``)."""
        return None

    def explain(self, *arrays):
        """A readable reason why ``forward`` rejected these arrays (only called on failure)."""
        shapes = ", ".join(str(a.shape) for a in arrays)
        return f"{self.name}: cannot apply to inputs of shape {shapes}"

    def attrs(self):
        """The op's parameters, for repr and drawing (``axis``, ``shape``...)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self):
        attrs = ", ".join(f"{k}={v!r}" for k, v in self.attrs().items())
        return f"{self.name}({attrs})"


def saved_plan(cls):
    """``(saves_out, saved input positions or None for every input)`` from ``cls.saves``, checked
    against the parameters of ``cls.vjp`` (after ``self, B, g``: the output, then the inputs)."""
    saves = cls.saves
    if saves is None:
        return True, None
    label = f"op {cls.name or cls.__qualname__!r} ({cls.__module__}.{cls.__qualname__})"
    if isinstance(saves, str) or not all(isinstance(n, str) for n in saves):
        raise TypeError(f"{label}: saves must be a tuple of vjp parameter names, got {saves!r} "
                        f"(one name is written ('out',), with the comma)")
    params = list(inspect.signature(cls.vjp).parameters.values())[3:]
    names = [p.name for p in params]
    unknown = [n for n in saves if n not in names]
    if unknown:
        raise ValueError(
            f"{label}: saves names {', '.join(map(repr, unknown))}, which "
            f"{'is not a parameter' if len(unknown) == 1 else 'are not parameters'} of its "
            f"vjp(self, B, g, {', '.join(names)}); declare the names of the values its gradient "
            f"rule reads, {names[0] if names else 'out'!r} for the output")
    inputs = params[1:]
    if any(p.kind is p.VAR_POSITIONAL and p.name in saves for p in inputs):
        return names[0] in saves, None  # a saved *xs: every input (conservative for a mixed signature)
    return names[0] in saves, tuple(k for k, p in enumerate(inputs) if p.name in saves)


def apply(op, *inputs):
    """Run ``op`` on Tensors and return the output node (recorded unless inside ``no_grad()``)."""
    if len(inputs) == 1:  # the common arities without a comprehension (a function call in 3.11)
        arrays = (inputs[0]._data,)
    elif len(inputs) == 2:
        arrays = (inputs[0]._data, inputs[1]._data)
    else:
        arrays = [t._data for t in inputs]
    try:
        data = op.forward(*arrays)
    except (ValueError, IndexError, TypeError) as exc:
        reason = op.explain(*arrays)
        if type(op).explain is Op.explain:  # the generic message: numpy's reason adds the detail
            reason = f"{reason} ({exc})"
        raise ShapeError(reason) from None
    cache = None
    if not isinstance(data, np.ndarray):
        if type(data) is Cached:
            data, cache = data.value, data.cache
        data = np.asarray(data)
    out = Tensor.__new__(Tensor)
    out._data = data
    out.grad = None
    out.name = None
    out.scope = current_scope()
    out._retain = False
    out._site = None
    out._step = current_step()
    out._cache = None
    out._stamp = CLOCK[0]  # the write clock: a later write to what its rule reads is refused (versions)
    out._tangent = None
    if is_grad_enabled():
        out.op = op
        out.inputs = inputs
        # what the rule reads is saved; the rest may be released (tinygraph.release)
        hold, saved, differentiable = op._plan
        requires = held = False
        for t in inputs:
            if t.requires_grad:
                requires = True
            if t._uses >= 0:  # counted only while releasable: only then does the count matter
                t._uses += 1
                held = True
        out.requires_grad = requires = requires and differentiable
        if requires:  # only a node backward can reach keeps what its rule may read
            out._cache = cache
        if held and saved:  # a releasable input the rule reads is saved, for good
            if saved is True:
                for t in inputs:
                    t._uses = -1
            else:
                for k in saved:
                    inputs[k]._uses = -1
            held = False
            for t in inputs:
                if t._uses >= 0:
                    held = True
                    break
        if hold:  # worth a sweep if releasing it frees memory (tinygraph.release, (e))
            hold = held if data.base is not None else data.nbytes >= release.MIN_BYTES
        out._uses = 0 if hold else -1  # >= 0: releasable, and its consumers' references counted
        if hold or held:  # it may be released, or an input's count relies on it
            PENDING.append(out)
            if tangent_hook is not None:  # before the sweep: a jvp rule may read any value
                tangent_hook(op, inputs, out)
            if len(PENDING) >= release.threshold:
                release.sweep(wait=False)
        elif tangent_hook is not None:
            tangent_hook(op, inputs, out)
    else:
        out.op = None
        out.inputs = ()
        out.requires_grad = False
        out._uses = -1
        if tangent_hook is not None:
            tangent_hook(op, inputs, out)
    if is_anomaly_enabled():
        out._site = creation_site()
        check_finite(out, data, "forward value")
    if RECORDERS:  # tinygraph.compile is tracing a step
        RECORDERS[-1].node(op, inputs, out)
    return out


class Cached:
    """What ``forward`` returns to leave values for its own first-order rule: ``Cached(value, cache)``.

    ``apply`` makes ``value`` the node's data and keeps ``cache`` on the node it creates (when that node
    requires grad), never on the op. The first first-order backward through the node takes it off the
    node and hands it to ``vjp_arrays(g, out, *inputs, cache=cache)``, so the rule may consume it (scale
    it in place and pass it on). Later passes (a second backward with ``retain_graph=True``, a drawing
    after backward) and direct calls of ``vjp_arrays`` get no cache, and the rule recomputes what it
    needs; the generic ``vjp`` (``create_graph``) never reads it, so an op returning ``Cached``
    defines ``vjp_arrays``.
    """
    __slots__ = ("value", "cache")

    def __init__(self, value, cache):
        self.value, self.cache = value, cache


def creation_site():
    """``file:line`` of the first caller frame outside tinygraph's engine."""
    import os
    import sys

    engine_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(engine_dir + os.sep):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def check_finite(node, array, what):
    """Raise ``AnomalyError`` naming the node if ``array`` holds NaN or Inf (anomaly mode only)."""
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "Inf"
        shapes = ", ".join(str(t.shape) for t in node.inputs) if node.inputs else "-"
        raise AnomalyError(
            f"{bad} in the {what} of op '{node.op.name if node.op else 'leaf'}'"
            f" (scope '{node.scope or '<root>'}', input shapes {shapes}, output shape {node.shape}),"
            f" created at {node._site or '<created outside detect_anomaly>'}")


def unbroadcast(g, shape):
    """Sum ``g`` (broadcast from ``shape``) back down to ``shape``; works on ndarrays and Tensors."""
    if g.shape == shape:
        return g
    lead = len(g.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    if axes:
        g = g.sum(axis=axes)
    return g.reshape(shape)
