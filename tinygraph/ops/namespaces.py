"""The two namespaces ``B`` a generic gradient rule ``vjp(B, g, out, *inputs)`` computes with.

``NUMPY_VJP``: plain numpy on arrays, for first-order backward. ``TENSOR_VJP``: differentiable
tinygraph functions on Tensors, for ``create_graph=True``, so the very same rule builds a graph that
can be differentiated again. Both have the same entries with the same signatures; a rule uses only
these, operators, and the methods ndarray and Tensor share.

A name neither class defines falls back to numpy's function of that name (``NUMPY_VJP.cos`` is
``np.cos``) and to ``tinygraph.functional``'s (``TENSOR_VJP.cos`` is ``tg.functional.cos``), so an
op whose rule needs ``B.cos`` only needs ``cos`` to exist in both; the entries written out below
differ from that default.
"""
import numpy as np

from .base import apply, unbroadcast
from .lazy import Product, Scatter
from .shape import IndexAdd


def softmax(x):
    """Softmax over the last axis, shifted by the max so it cannot overflow."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class _FallsBack(type):
    """``B.<name>`` for a name the class does not define: ``cls.fallback(name)``, looked up once."""
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        function = cls.fallback(name)
        setattr(cls, name, staticmethod(function))
        return function


def _numpy_function(name):
    """numpy's function ``name``, for a name ``NUMPY_VJP`` does not define; AttributeError if numpy
    has none."""
    function = getattr(np, name, None)
    if not callable(function):
        raise AttributeError(f"NUMPY_VJP has no {name!r}: numpy has no function of that name")
    return function


def _functional(name):
    """``tinygraph.functional``'s function ``name``, for a name ``TENSOR_VJP`` does not define;
    AttributeError if it has none."""
    if not callable(getattr(F, name, None)):
        raise AttributeError(f"TENSOR_VJP has no {name!r}: tinygraph.functional has no function of "
                             f"that name")
    return getattr(F, name)


class NUMPY_VJP(metaclass=_FallsBack):
    """The namespace first-order gradient rules compute with: plain numpy, no graph."""
    fallback = staticmethod(_numpy_function)
    where = staticmethod(np.where)
    tanh = staticmethod(np.tanh)
    @staticmethod
    def concat(arrays, axis):
        """``np.concatenate(arrays, axis=axis)``: TENSOR_VJP's ``concat`` spelled for arrays."""
        return np.concatenate(arrays, axis=axis)

    softmax = staticmethod(softmax)
    log = staticmethod(np.log)
    sign = staticmethod(np.sign)
    broadcast_to = staticmethod(np.broadcast_to)
    unbroadcast = staticmethod(unbroadcast)
    index_add = staticmethod(Scatter)  # lazy: the engine adds it where it is needed

    @staticmethod
    def weight_grad(g, x):
        """``g.T @ x`` for rows g (N, out) and x (N, in): a linear map's weight gradient (out, in),
        left lazy (a ``Product``), so the accumulator sums a shared weight's per-step gradients in a
        few large matmuls (``lazy.ProductSum``)."""
        return Product(g.T, x)

    @staticmethod
    def apply(op, *arrays):
        """``op``'s forward on arrays: the tangent rule of a linear op is the op itself."""
        return op.forward(*arrays)


class TENSOR_VJP(metaclass=_FallsBack):
    """The namespace gradient rules compute with under ``create_graph=True``: differentiable ops.

    ``tinygraph.functional`` imports the ops package, so its functions are looked up when called.
    """
    fallback = staticmethod(_functional)
    unbroadcast = staticmethod(unbroadcast)

    @staticmethod
    def where(cond, x, y):
        """``tg.where``: elements of x where ``cond``, else of y."""
        return F.where(cond, x, y)

    @staticmethod
    def tanh(x):
        """``tg.tanh``, differentiable."""
        return F.tanh(x)

    @staticmethod
    def concat(tensors, axis):
        """``tg.concat`` of ``tensors`` along ``axis``."""
        return F.concat(tensors, axis=axis)

    @staticmethod
    def softmax(x):
        """``tg.softmax`` over the last axis."""
        return F.softmax(x)

    @staticmethod
    def log(x):
        """``tg.log``, differentiable."""
        return F.log(x)

    @staticmethod
    def sign(x):
        """``tg.sign`` (no gradient)."""
        return F.sign(x)

    @staticmethod
    def broadcast_to(x, shape):
        """``tg.broadcast_to``: x broadcast to ``shape``."""
        return F.broadcast_to(x, shape)

    @staticmethod
    def weight_grad(g, x):
        """``g.T @ x``, differentiable (NUMPY_VJP's lazy ``Product`` on Tensors)."""
        return F.matmul(F.transpose(g, None), x)

    @staticmethod
    def index_add(shape, index, g, accumulate):
        """Zeros of ``shape`` with ``g`` added at ``index``, as a differentiable ``index_add`` node
        (NUMPY_VJP's lazy ``Scatter`` on Tensors)."""
        return apply(IndexAdd(shape, index, accumulate), g)

    @staticmethod
    def apply(op, *tensors):
        """``op`` applied to Tensors, recorded (``tinygraph.ops.apply``)."""
        return apply(op, *tensors)


from .. import functional as F  # noqa: E402  (functional imports this package: resolved at call time)
