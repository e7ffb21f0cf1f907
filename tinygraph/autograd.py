"""Reverse-mode autodiff: one walk over the graph in reverse topological order.

``backward`` accumulates into leaves' ``.grad``; ``grad_of`` returns gradients for chosen tensors
without touching ``.grad`` (like ``torch.autograd.grad``); ``grad``/``value_and_grad`` are the JAX-style
function transforms built on it. With ``create_graph=True`` the gradient rules run on Tensors (the
``TENSOR_VJP`` namespace), so the gradients are themselves differentiable; otherwise they run on raw
arrays and cost what numpy costs.
"""
import numpy as np

from . import functional as F
from .errors import GraphError, ShapeError
from .graph import toposort
from .modes import enable_grad, is_anomaly_enabled, no_grad
from .ops import NUMPY_VJP, apply, unbroadcast
from .ops.base import Product, accumulate, check_finite, materialize
from .ops.shape import IndexAdd
from .release import sweep
from .tensor import Tensor


class TENSOR_VJP:
    """The namespace gradient rules compute with under ``create_graph=True``: differentiable ops."""
    log = staticmethod(F.log)
    tanh = staticmethod(F.tanh)
    sign = staticmethod(F.sign)
    concat = staticmethod(F.concat)
    softmax = staticmethod(F.softmax)
    broadcast_to = staticmethod(F.broadcast_to)
    unbroadcast = staticmethod(unbroadcast)
    where = staticmethod(F.where)

    @staticmethod
    def index_add(shape, index, g, accumulate):
        return apply(IndexAdd(shape, index, accumulate), g)


def _seed(output, grad):
    if grad is None:
        if output.size != 1:
            raise GraphError(
                f"backward: output has shape {output.shape}; gradients can be created implicitly only "
                f"for a single-element output — pass grad= with the output's shape, or reduce first "
                f"(e.g. loss.sum())")
        return np.ones_like(output.data)
    g = grad.data if isinstance(grad, Tensor) else np.asarray(grad, dtype=output.dtype)
    if g.shape != output.shape:
        raise ShapeError(f"backward: grad has shape {g.shape} but the output has shape {output.shape}")
    return g.astype(output.dtype, copy=False)


def _run(outputs, seeds, retain_graph, create_graph, capture=None):
    """Propagate ``seeds`` from ``outputs`` back through the graph.

    ``capture``: ids of tensors whose gradient is returned instead of being accumulated into leaves.
    """
    for out in outputs:
        if not out.requires_grad:
            raise GraphError(
                f"backward: the output (shape {out.shape}) does not require grad — no input it depends "
                f"on has requires_grad=True, or it was computed inside no_grad()")
    sweep(forget=not retain_graph)  # release what no rule reads; the walk below frees ``inputs``
    order = toposort(outputs, requires_grad_only=True)
    grads = {}
    for out, seed in zip(outputs, seeds):
        seed = Tensor._wrap(seed) if create_graph else seed
        grads[id(out)] = seed if id(out) not in grads else grads[id(out)] + seed
    captured = {}
    anomaly = is_anomaly_enabled()
    B = TENSOR_VJP if create_graph else NUMPY_VJP
    while order:
        node = order.pop()  # reverse topological order; popping lets used arrays be freed early
        g = grads.pop(id(node), None)
        if g is None:
            continue
        op = node.op
        # an op that only slices g (stack) takes a lazy Product as it is, so a (T, B, H) gradient is
        # multiplied out one step at a time; everything else, and everything users see, is dense
        lazy = type(g) is Product and op is not None and op.lazy_grad
        if not create_graph and not lazy:
            g = materialize(g)
        if anomaly:
            check_finite(node, g.data if create_graph else materialize(g), "gradient")
        if capture is not None and id(node) in capture:
            captured[id(node)] = materialize(g) if lazy else g
            if op is None:
                continue
        if op is None:
            if capture is None:
                _accumulate(node, g, create_graph)
            continue
        if node._retain and capture is None:
            node.grad = g if create_graph else np.array(materialize(g))
        inputs = node.inputs
        if create_graph:
            input_grads = op.vjp(B, g, node, *inputs)
        else:
            input_grads = op.vjp(B, g, node.data, *[t.data for t in inputs])
        if anomaly:
            _check_input_grads(node, input_grads, create_graph)
        for t, tg in zip(inputs, input_grads):
            if tg is None or not t.requires_grad:
                continue
            key = id(t)
            prev = grads.get(key)
            if prev is None:
                grads[key] = tg
            else:
                grads[key] = prev + tg if create_graph else accumulate(prev, tg)
        if not retain_graph:
            node.inputs = None  # frees the arrays only this graph held
    return captured


def _check_input_grads(node, input_grads, create_graph):
    """Anomaly mode: blame the op whose gradient rule produced a NaN/Inf (sqrt at 0), not the node the
    gradient flows into."""
    for argnum, g in enumerate(input_grads):
        if g is not None:
            check_finite(node, g.data if create_graph else materialize(g), f"gradient for input {argnum}")


def _accumulate(leaf, g, create_graph):
    if create_graph:
        leaf.grad = g if leaf.grad is None else leaf.grad + g
    elif leaf.grad is None:
        leaf.grad = np.array(g, dtype=leaf.dtype)  # own copy: rules may hand one array to several inputs
    else:
        leaf.grad = leaf.grad + g


def backward(output, grad=None, retain_graph=False, create_graph=False):
    """Accumulate d(output)/d(leaf) into ``.grad`` of every leaf that requires grad."""
    retain_graph = retain_graph or create_graph
    if create_graph:
        with enable_grad():
            _run([output], [_seed(output, grad)], retain_graph, True)
    else:
        with no_grad():
            _run([output], [_seed(output, grad)], retain_graph, False)


def grad_of(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
            allow_unused=False):
    """Gradients of ``outputs`` w.r.t. ``inputs`` as a tuple of Tensors (``torch.autograd.grad``).

    Leaves' ``.grad`` are not touched. Unused inputs get zeros, or None with ``allow_unused``.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    seeds = [_seed(o, g) for o, g in zip(outputs, grad_outputs)]
    retain_graph = create_graph if retain_graph is None else retain_graph
    with (enable_grad() if create_graph else no_grad()):
        captured = _run(outputs, seeds, retain_graph, create_graph, capture={id(t) for t in inputs})
    result = []
    for t in inputs:
        g = captured.get(id(t))
        if g is None and not allow_unused:
            g = np.zeros_like(t.data)
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
            array = a.data if isinstance(a, Tensor) else np.asarray(a)
            if array.dtype.kind != "f":
                array = array.astype(np.float64)
            args[i] = Tensor._wrap(array, requires_grad=True)
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
