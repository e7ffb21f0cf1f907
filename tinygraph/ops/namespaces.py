"""The two namespaces ``B`` a generic gradient rule ``vjp(B, g, out, *inputs)`` computes with.

``NUMPY_VJP``: plain numpy on arrays, for first-order backward. ``TENSOR_VJP``: differentiable
tinygraph functions on Tensors, for ``create_graph=True``, so the very same rule builds a graph that
can be differentiated again. Both have the same entries with the same signatures; a rule uses only
these, operators, and the methods ndarray and Tensor share.
"""
import numpy as np

from .base import apply, unbroadcast
from .lazy import Scatter
from .shape import IndexAdd


def softmax(x):
    """Softmax over the last axis, shifted by the max so it cannot overflow."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class NUMPY_VJP:
    """The namespace first-order gradient rules compute with: plain numpy, no graph."""
    where = staticmethod(np.where)
    tanh = staticmethod(np.tanh)
    concat = staticmethod(lambda arrays, axis: np.concatenate(arrays, axis=axis))
    softmax = staticmethod(softmax)
    log = staticmethod(np.log)
    sign = staticmethod(np.sign)
    broadcast_to = staticmethod(np.broadcast_to)
    unbroadcast = staticmethod(unbroadcast)
    index_add = staticmethod(Scatter)  # lazy: the engine adds it where it is needed


class TENSOR_VJP:
    """The namespace gradient rules compute with under ``create_graph=True``: differentiable ops.

    ``tinygraph.functional`` imports the ops package, so its functions are looked up when called.
    """
    unbroadcast = staticmethod(unbroadcast)

    @staticmethod
    def where(cond, x, y): return F.where(cond, x, y)

    @staticmethod
    def tanh(x): return F.tanh(x)

    @staticmethod
    def concat(tensors, axis): return F.concat(tensors, axis=axis)

    @staticmethod
    def softmax(x): return F.softmax(x)

    @staticmethod
    def log(x): return F.log(x)

    @staticmethod
    def sign(x): return F.sign(x)

    @staticmethod
    def broadcast_to(x, shape): return F.broadcast_to(x, shape)

    @staticmethod
    def index_add(shape, index, g, accumulate): return apply(IndexAdd(shape, index, accumulate), g)


from .. import functional as F  # noqa: E402  (functional imports this package: resolved at call time)
