"""Reverse-mode autodiff: one walk over the graph in reverse topological order, then storing.

``compute_gradient`` is the walk: it returns ``{node: gradient}`` for the nodes asked for and stores
nothing. ``backward`` stores its result into leaves' ``.grad`` (and retained non-leaves');
``grad_of`` returns it for chosen tensors without touching ``.grad`` (like ``torch.autograd.grad``);
``grad``/``value_and_grad`` are the JAX-style function transforms built on it. With
``create_graph=True`` the gradient rules run on Tensors (the ``TENSOR_VJP`` namespace), so the
gradients are themselves differentiable; otherwise they run on raw arrays and cost what numpy costs.
"""
import operator
import threading

import numpy as np

from .errors import GraphError, ShapeError
from .graph import toposort
from .modes import dual_levels, enable_grad, is_anomaly_enabled, no_grad
from .ops import lazy
from .ops.base import check_finite
from .ops.namespaces import NUMPY_VJP, TENSOR_VJP
from .release import sweep
from .tensor import Tensor
from .tracing import RECORDERS
from .versions import CLOCK, check_saved


def _seed(output, grad, create_graph=False):
    """The seed gradient of ``output``: ones for a single element, else ``grad`` checked against its
    shape. Under ``create_graph`` a Tensor ``grad`` stays a Tensor, so the gradients are
    differentiable in it (vjp of vjp)."""
    if grad is None:
        if output.size != 1:
            raise GraphError(
                f"backward: output has shape {output.shape}; gradients can be created implicitly only "
                f"for a single-element output — pass grad= with the output's shape, or reduce first "
                f"(e.g. loss.sum())")
        return np.ones_like(output._data)
    if create_graph and isinstance(grad, Tensor):
        if grad.shape != output.shape:
            raise ShapeError(f"backward: grad has shape {grad.shape} but the output has shape "
                             f"{output.shape}")
        return grad if grad.dtype == output.dtype else grad.astype(output.dtype)
    g = grad._data if isinstance(grad, Tensor) else np.asarray(grad, dtype=output.dtype)
    if g.shape != output.shape:
        raise ShapeError(f"backward: grad has shape {g.shape} but the output has shape {output.shape}")
    return g.astype(output.dtype, copy=False)


def _rule_on_arrays(node, g, arrays=None):
    """``node``'s first-order rule for upstream gradient ``g``, on arrays (``arrays``: its inputs'
    values, by default read from ``node.inputs``): the op's ``vjp_arrays`` when it has one, handed the
    node's cache if its forward left one (``ops.base.Cached``), else its generic ``vjp`` in
    ``NUMPY_VJP``. Results may be lazy (see ``ops.lazy``)."""
    if arrays is None:
        arrays = [t._data for t in node.inputs]
    op = node.op
    if op.vjp_arrays is None:
        return op.vjp(NUMPY_VJP, g, node._data, *arrays)
    cache = node._cache
    if cache is None:
        return op.vjp_arrays(g, node._data, *arrays)
    node._cache = None  # taken: the rule may consume it, so no later pass reads it
    return op.vjp_arrays(g, node._data, *arrays, cache=cache)


def vjp_of(node, g, inputs=None):
    """What ``node``'s first-order rule sends back to each of its inputs for the upstream gradient
    ``g`` (an array, or Tensor, of ``node``'s shape): a tuple with one ndarray per input, None for a
    non-differentiable one. It is the rule ``backward`` runs, with lazy results multiplied out; like
    a backward, it takes the cache the node's forward left, if no backward has taken it yet.

    inputs: the arrays ``node`` was computed from, in order; by default read from ``node.inputs``
    (a backward without ``retain_graph`` frees those links, so a caller holding a ``Graph`` passes
    its nodes' values).
    """
    g = g._data if isinstance(g, Tensor) else np.asarray(g)
    with no_grad():
        grads = _rule_on_arrays(node, g, None if inputs is None else list(inputs))
    return tuple(None if r is None else lazy.materialize(r) for r in grads)


def _rule_on_tensors(node, g):
    """``node``'s rule under ``create_graph``: on Tensors, recorded, so it can be differentiated."""
    return node.op.vjp(TENSOR_VJP, g, node, *node.inputs)


class _FirstOrder:
    """How a first-order walk holds gradients: ndarrays or the lazy forms behind ``ops.lazy``'s
    accumulator; rules run on arrays."""
    seed = staticmethod(lambda array: array)
    add = staticmethod(lazy.accumulate)        # a node's total plus one more contribution
    for_rule = staticmethod(lazy.for_rule)     # what the node's rule receives
    dense = staticmethod(lazy.materialize)     # what callers receive
    values = staticmethod(lazy.materialize)    # what anomaly mode checks
    rule = staticmethod(_rule_on_arrays)


class _CreateGraph:
    """How a ``create_graph`` walk holds gradients: Tensors, added with recorded ops."""
    seed = staticmethod(lambda g: g if isinstance(g, Tensor) else Tensor._wrap(g))
    add = staticmethod(operator.add)
    for_rule = staticmethod(lambda g, op: g)
    dense = staticmethod(lambda g: g)
    values = staticmethod(lambda g: g._data)
    rule = staticmethod(_rule_on_tensors)


def compute_gradient(outputs, seeds, wanted=None, retain_graph=False, create_graph=False,
                     release_first=True, mode=None):
    """``{node: gradient}``: d(sum_k <outputs[k], seeds[k]>) / d node for every requested node that
    the outputs depend on (tinygrad's ``compute_gradient``). Stores nothing.

    outputs: Tensors that require grad; seeds: one ndarray per output, of its shape and dtype.
    wanted: the Tensors whose gradients to return; None means every leaf that requires grad and every
    tensor that called ``retain_grad()`` (what ``backward`` stores). A gradient is a dense ndarray
    (a Tensor with ``create_graph``) and may share memory with arrays the rules handed on: copy it
    before storing it anywhere a user may write.

    The walk pops nodes off the topological order, so gradients and, unless ``retain_graph``, the
    nodes' links (``node.inputs = None``) are freed as soon as they are used. With ``create_graph``
    the rules run on Tensors; call it under ``enable_grad()`` so they are recorded.
    ``release_first=False`` (only with ``retain_graph``) skips the sweep that releases what no rule
    reads: a walk run per op (``tinygraph.forward.derived_jvp``) would otherwise sweep the whole
    pending list every time, which ``apply`` only does when it has doubled.

    ``mode``: how gradients are held and rules run (``_FirstOrder`` or ``_CreateGraph`` by default;
    ``tinygraph.jit`` passes one that records the walk).
    """
    if mode is None:
        if RECORDERS and RECORDERS[-1].tracing():  # a traced step differentiates with backward() only
            RECORDERS[-1].gradient(wanted, create_graph)
        mode = _CreateGraph if create_graph else _FirstOrder
    for out in outputs:
        if not out.requires_grad:
            raise GraphError(
                f"backward: the output (shape {out.shape}) does not require grad — no input it depends "
                f"on has requires_grad=True, or it was computed inside no_grad()")
    if release_first or not retain_graph:
        sweep(forget=not retain_graph)  # release what no rule reads; the walk below frees ``inputs``
    add, for_rule, rule = mode.add, mode.for_rule, mode.rule
    order = toposort(outputs, requires_grad_only=True)
    grads = {}  # id(node) -> its gradient so far, in the mode's representation
    for out, seed in zip(outputs, seeds):
        prev, seed = grads.get(id(out)), mode.seed(seed)
        grads[id(out)] = seed if prev is None else add(prev, seed)
    wanted_ids = None if wanted is None else {id(t) for t in wanted}
    anomaly = is_anomaly_enabled()
    found = {}
    while order:
        node = order.pop()  # reverse topological order; popping lets used arrays be freed early
        g = grads.pop(id(node), None)
        if g is None:
            continue
        op = node.op
        g = for_rule(g, op)
        if anomaly:
            check_finite(node, mode.values(g), "gradient")
        if (op is None or node._retain) if wanted_ids is None else id(node) in wanted_ids:
            found[node] = mode.dense(g)
        if op is None:
            continue
        if node._stamp != CLOCK[0]:  # a write happened since the node was made: is it one it read?
            check_saved(node)
        input_grads = rule(node, g)
        if anomaly:
            _check_input_grads(node, input_grads, mode.values)
        for t, tg in zip(node.inputs, input_grads):
            if tg is None or not t.requires_grad:
                continue
            key = id(t)
            prev = grads.get(key)
            grads[key] = tg if prev is None else add(prev, tg)
        if not retain_graph:
            node.inputs = None  # frees the arrays only this graph held
    return found


def _check_input_grads(node, input_grads, values):
    """Anomaly mode: blame the op whose gradient rule produced a NaN/Inf (a derivative infinite at a
    point), not the node the gradient flows into."""
    for argnum, g in enumerate(input_grads):
        if g is not None:
            check_finite(node, values(g), f"gradient for input {argnum}")


_accumulating = threading.Lock()  # backward passes in several threads may share leaves


def _store(node, g, create_graph):
    """``node.grad`` after this backward: a retained non-leaf holds this backward's gradient, a leaf
    accumulates across backward calls (under a lock: concurrent backward passes into one parameter
    add up exactly). Stored arrays are copies (rules may hand one array to several inputs)."""
    if node.op is not None:
        node.grad = g if create_graph else np.array(g)
        return
    with _accumulating:
        _accumulate(node, g, create_graph)


def _accumulate(node, g, create_graph):
    if node.op is not None:
        node.grad = g if create_graph else np.array(g)
    elif create_graph:
        node.grad = g if node.grad is None else node.grad + g
    elif node.grad is None:
        node.grad = np.array(g, dtype=node.dtype)
    else:
        node.grad = node.grad + g


def backward(output, grad=None, retain_graph=False, create_graph=False):
    """Accumulate d(output)/d(leaf) into ``.grad`` of every leaf that requires grad (and set ``.grad``
    of every tensor that called ``retain_grad()``)."""
    retain_graph = retain_graph or create_graph
    if RECORDERS and RECORDERS[-1].tracing():  # tinygraph.compile: the recorder runs and records it
        return RECORDERS[-1].backward(output, grad, retain_graph, create_graph)
    with (enable_grad() if create_graph else no_grad()):
        grads = compute_gradient([output], [_seed(output, grad, create_graph)], None, retain_graph,
                                 create_graph)
        while grads:
            _store(*grads.popitem(), create_graph)


def grad_of(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
            allow_unused=False):
    """Gradients of ``outputs`` w.r.t. ``inputs`` as a tuple of Tensors (``torch.autograd.grad``).

    Leaves' ``.grad`` are not touched. Unused inputs get zeros, or None with ``allow_unused``.
    With ``create_graph`` a Tensor in ``grad_outputs`` stays in the graph: the gradients are
    differentiable in it. While a forward-mode level is visible (``tinygraph.forward``) the backward is
    built with ``create_graph`` whatever the flag says, so the gradients carry tangents.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    retain_graph = create_graph if retain_graph is None else retain_graph
    create_graph = create_graph or bool(dual_levels())  # tangents flow only through recorded ops
    seeds = [_seed(o, g, create_graph) for o, g in zip(outputs, grad_outputs)]
    with (enable_grad() if create_graph else no_grad()):
        grads = compute_gradient(outputs, seeds, inputs, retain_graph, create_graph)
    result = []
    for t in inputs:
        g = grads.get(t)  # Tensors hash by identity
        if g is None and not allow_unused:
            g = np.zeros_like(t._data)
        result.append(g if g is None or isinstance(g, Tensor) else Tensor._wrap(g))
    return tuple(result)


def value_and_grad(fn, argnums=0, create_graph=False):
    """``fn(*args) -> (value, gradient)``; the gradient w.r.t. ``args[argnums]`` (a tuple of them when
    ``argnums`` is a tuple). ``fn`` must return a single-element Tensor.

    Arguments may be arrays, numbers or Tensors; with ``create_graph`` Tensor arguments stay connected
    to their graph, so ``grad(grad(f))`` works.
    """
    def wrapped(*args):
        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        args = list(args)
        for i in nums:
            if i >= len(args):
                raise ValueError(f"grad: argnums {argnums} but only {len(args)} arguments were given")
            a = args[i]
            if isinstance(a, Tensor) and (create_graph and a.requires_grad):
                continue
            array = a._data if isinstance(a, Tensor) else np.asarray(a)
            if array.dtype.kind != "f":
                array = array.astype(np.float64)
            args[i] = Tensor._wrap(array, requires_grad=True)
            if isinstance(a, Tensor) and a._tangent is not None:  # forward over reverse
                args[i]._tangent = dict(a._tangent)
        with enable_grad():
            value = fn(*args)
        if not isinstance(value, Tensor) or value.size != 1:
            raise GraphError(f"grad: the function must return a single-element Tensor, got "
                             f"{getattr(value, 'shape', type(value).__name__)}")
        grads = grad_of(value, [args[i] for i in nums], create_graph=create_graph)
        return value, (grads[0] if isinstance(argnums, int) else grads)
    return wrapped


def grad(fn, argnums=0, create_graph=False):
    """JAX-style ``grad``: a function returning d fn / d args[argnums] as Tensor(s)."""
    vg = value_and_grad(fn, argnums, create_graph)

    def wrapped(*args):
        return vg(*args)[1]
    return wrapped
