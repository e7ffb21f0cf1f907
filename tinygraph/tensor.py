"""Tensor: an ndarray plus its place in the graph (``op`` and ordered ``inputs``).

A 0-d tensor is the scalar case, so micrograd-style scalar expressions use the same class. Operators
and methods only dispatch to ops (see ``tinygraph.functional``); the engine lives in ``autograd``.
"""
import numpy as np

from .errors import DTypeError, ShapeError
from .modes import current_scope, current_step
from .release import Released

_FLOAT_KINDS = "f"


def to_array(data, dtype=None, what="tensor"):
    """Validate and convert user data to an ndarray (float64 by default for Python floats)."""
    if isinstance(data, Tensor):
        data = data._data
    array = np.array(data, dtype=dtype) if dtype is not None else np.array(data)
    if array.dtype.kind not in "fiub":
        raise DTypeError(
            f"{what}: dtype {array.dtype} is not supported (got {type(data).__name__}); "
            f"use numbers: float32/float64 for values, integers for indices, bool for masks")
    return array


class Tensor:
    """An n-dimensional array that records how it was computed.

    Attributes:
        data: the ``np.ndarray`` value; a ``Released`` placeholder (shape and dtype only) once the
            engine released it: no gradient rule reads it and nothing outside the graph held this
            tensor (see ``tinygraph.release``; a tensor you hold keeps its value).
        grad: the accumulated gradient (an ndarray of ``data``'s shape and dtype) or None. After
            ``backward(create_graph=True)`` it is a Tensor, itself differentiable.
        requires_grad: whether gradients flow to this tensor.
        op: the op that produced it (None for a leaf), with ``inputs`` its ordered arguments.
        name, scope: labels for graph walking and drawing (``scope`` like ``"lstm/t=3/forget_gate"``).

    Inside a forward-mode level the tensor may carry tangents (``tinygraph.forward``: ``make_dual``,
    ``unpack_dual``), kept in the private ``_tangent`` slot; ``detach()`` drops them.
    """
    __slots__ = ("_data", "grad", "requires_grad", "op", "inputs", "name", "scope", "_retain", "_site",
                 "_step", "_cache", "_uses", "_tangent", "__weakref__")
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad=False, name=None, dtype=None):
        self._data = to_array(data, dtype)
        self.grad = None
        self.op = None
        self.inputs = ()
        self.name = name
        self.scope = current_scope()
        self._retain = False
        self._site = None
        self._step = current_step()
        self._cache = None
        self._uses = -1  # never released (tinygraph.release)
        self._tangent = None  # {forward-mode level: tangent} (tinygraph.forward)
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # --- the value ------------------------------------------------------------------------------
    @property
    def data(self):
        """The value: an ndarray, or a ``Released`` placeholder (see the class docstring)."""
        return self._data

    @data.setter
    def data(self, value):
        self._data = value

    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    is_leaf = property(lambda self: self.op is None)

    def item(self):
        if self._data.size != 1:
            raise ShapeError(f"item: only a single-element tensor converts to a Python number, this one "
                             f"has shape {self.shape}; index or reduce it first")
        return self._data.item()

    def numpy(self):
        """The underlying array (shared, like ``torch.Tensor.numpy``)."""
        if type(self._data) is Released:
            raise self._data.error()
        return self._data

    def __array__(self, dtype=None, copy=None):
        data = self.numpy()
        return data if dtype is None else data.astype(dtype)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        if self._data.size != 1:
            raise ShapeError(f"bool: the truth value of a tensor of shape {self.shape} is ambiguous; "
                             f"reduce it first, e.g. bool((x > 0).data.all())")
        return bool(self._data)

    def __float__(self):
        return float(self._data)

    __hash__ = object.__hash__

    def __repr__(self):
        if type(self._data) is Released:  # says why instead of failing: graphs get printed node by node
            body = f"<released, shape {self.shape}: {self._data.error()}>"
        else:
            body = np.array2string(self._data, precision=4, threshold=20, separator=", ", prefix="tensor(")
        extras = []
        if self.dtype != np.float64 and self.dtype.kind == "f":
            extras.append(f"dtype={self.dtype}")
        if self.op is not None:
            extras.append(f"op={self.op.name}")
        if self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        if self.scope:
            extras.append(f"scope={self.scope!r}")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"

    # --- autograd switches ----------------------------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.dtype.kind not in _FLOAT_KINDS:
            raise DTypeError(
                f"requires_grad: only floating-point tensors can require grad, this one is "
                f"{self.dtype} with shape {self.shape}; convert it with .astype(np.float64) first")
        if not requires_grad and self.op is not None:
            raise ValueError("requires_grad_(False) on a non-leaf tensor; use .detach() instead")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward, and its value."""
        self._retain = True
        self._uses = -1  # kept for good (tinygraph.release)
        return self

    def detach(self):
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor._wrap(self.numpy(), name=self.name)

    @classmethod
    def _wrap(cls, array, requires_grad=False, name=None):
        """A leaf around an already validated ndarray (no copy)."""
        t = cls.__new__(cls)
        t._data, t.grad, t.requires_grad, t.op, t.inputs = array, None, requires_grad, None, ()
        t.name, t.scope, t._retain, t._site = name, current_scope(), False, None
        t._step = current_step()
        t._cache = None
        t._uses = -1
        t._tangent = None
        return t

    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (reverse topological walk)."""
        from .autograd import backward
        backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    def graph(self):
        """The explicit ``Graph`` that computes this tensor."""
        from .graph import Graph
        return Graph.of(self)

    # --- operators dispatch to ops --------------------------------------------------------------
    def __add__(self, other): return F.add(self, other)
    def __radd__(self, other): return F.add(other, self)
    def __sub__(self, other): return F.sub(self, other)
    def __rsub__(self, other): return F.sub(other, self)
    def __mul__(self, other): return F.mul(self, other)
    def __rmul__(self, other): return F.mul(other, self)
    def __truediv__(self, other): return F.div(self, other)
    def __rtruediv__(self, other): return F.div(other, self)
    def __pow__(self, other): return F.pow(self, other)
    def __rpow__(self, other): return F.pow(other, self)
    def __matmul__(self, other): return F.matmul(self, other)
    def __rmatmul__(self, other): return F.matmul(other, self)
    def __neg__(self): return F.neg(self)
    def __lt__(self, other): return F.lt(self, other)
    def __le__(self, other): return F.le(self, other)
    def __gt__(self, other): return F.gt(self, other)
    def __ge__(self, other): return F.ge(self, other)
    def __eq__(self, other): return F.eq(self, other)
    def __ne__(self, other): return F.ne(self, other)
    def __getitem__(self, index): return F.getitem(self, index)

    def exp(self): return F.exp(self)
    def log(self): return F.log(self)
    def tanh(self): return F.tanh(self)
    def sigmoid(self): return F.sigmoid(self)
    def relu(self): return F.relu(self)
    def sqrt(self): return F.sqrt(self)
    def abs(self): return F.abs(self)
    def sum(self, axis=None, keepdims=False): return F.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return F.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return F.max(self, axis, keepdims)
    def reshape(self, *shape): return F.reshape(self, shape[0] if len(shape) == 1 else shape)
    def transpose(self, *axes): return F.transpose(self, axes[0] if len(axes) == 1 else (axes or None))
    def swapaxes(self, axis1, axis2): return F.swapaxes(self, axis1, axis2)
    def broadcast_to(self, shape): return F.broadcast_to(self, shape)
    def astype(self, dtype): return F.astype(self, dtype)
    def clip(self, low=None, high=None): return F.clip(self, low, high)
    def softmax(self, axis=-1): return F.softmax(self, axis)
    def log_softmax(self, axis=-1): return F.log_softmax(self, axis)
    def logsumexp(self, axis=-1, keepdims=False): return F.logsumexp(self, axis, keepdims)
    T = property(lambda self: F.transpose(self, None))


tensor = Tensor

from . import functional as F  # noqa: E402  (operators above resolve F at call time)
