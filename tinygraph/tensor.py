"""Tensor: an ndarray plus its place in the graph (``op`` and ordered ``inputs``).

A 0-d tensor is the scalar case, so micrograd-style scalar expressions use the same class. Operators
and methods only dispatch to ops (see ``tinygraph.functional``); the engine lives in ``autograd``.
"""
import numbers

import numpy as np

from .errors import DTypeError, GraphError, ShapeError
from .modes import _current_scope as current_scope, _current_step as current_step  # builtins: hot
from .release import Released
from .tracing import RECORDERS
from .versions import TrackedArray, record_write, root, tracked, version

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
        shape, ndim, size: numpy's; ``size`` is the element count, a property. PyTorch's ``t.size()``
            is ``t.shape`` here, its ``t.numel()`` and ``t.dim()`` exist as methods.

    Inside a forward-mode level the tensor may carry tangents (``tinygraph.forward``: ``make_dual``,
    ``unpack_dual``), kept in the private ``_tangent`` slot; ``detach()`` drops them.
    """
    __slots__ = ("_data", "grad", "requires_grad", "op", "inputs", "name", "scope", "_retain", "_site",
                 "_step", "_cache", "_uses", "_stamp", "_tangent", "__weakref__")
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad=False, name=None, dtype=None):
        self._data = to_array(data, dtype)
        if RECORDERS:  # tinygraph.compile: a leaf copied from an array may be copied from an input
            RECORDERS[-1].leaf(self, data)
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
        self._stamp = 0
        self._tangent = None  # {forward-mode level: tangent} (tinygraph.forward)
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # --- the value ------------------------------------------------------------------------------
    @property
    def data(self):
        """The value, as an ndarray view that records in-place writes (``tinygraph.versions``): write
        into it freely, and a backward through a node that saved the old value raises instead of
        giving a wrong gradient. A ``Released`` placeholder once the engine released the value."""
        return tracked(self._data)

    @data.setter
    def data(self, value):
        """Make ``value`` (an ndarray, no copy, or array-like) this tensor's value; a node that saved
        the old value refuses to backward. ``t.data += 1`` writes in place and counts once."""
        if isinstance(value, Tensor):
            value = value._data
        array = value.view(np.ndarray) if isinstance(value, np.ndarray) else to_array(value, what="data")
        if array.dtype.kind not in "fiub":
            raise DTypeError(f"data: dtype {array.dtype} is not supported; tensors hold float32/float64, "
                             f"integers or bool")
        if self.requires_grad and array.dtype.kind != "f":
            raise DTypeError(f"data: this tensor requires grad, so its value must be floating point, "
                             f"got {array.dtype}")
        current = self._data
        if _same_memory(current, array):
            return  # the value of an augmented assignment (t.data += 1): written, and counted, in place
        self._data = array
        record_write(array)

    @property
    def version(self):
        """How many in-place writes the memory of this tensor's value has seen (PyTorch's
        ``_version``); views of one buffer share it."""
        return version(self._data) if isinstance(self._data, np.ndarray) else 0

    shape = property(lambda self: self._data.shape,
                     doc="The dimensions, a tuple of ints (numpy's; PyTorch's ``size()``).")
    dtype = property(lambda self: self._data.dtype,
                     doc="The numpy dtype of the value: float32 or float64, an integer type, or bool.")
    ndim = property(lambda self: self._data.ndim,
                    doc="The number of dimensions, ``len(shape)`` (PyTorch's ``dim()``).")
    size = property(lambda self: self._data.size,
                    doc="The number of elements, numpy's property (PyTorch's ``numel()``; its ``size()``"
                        " is ``shape``).")
    is_leaf = property(lambda self: self.op is None,
                       doc="Whether no op produced this tensor: made by the user (or by ``detach``), or "
                           "a parameter.")

    def item(self):
        """The value of a one-element tensor as a Python number; any other size raises ShapeError."""
        if self._data.size != 1:
            raise ShapeError(f"item: only a single-element tensor converts to a Python number, this one "
                             f"has shape {self.shape}; index or reduce it first")
        value = self._data.item()
        if RECORDERS:  # tinygraph.compile: a traced value read into Python
            RECORDERS[-1].item(self, value)
        return value

    def numpy(self):
        """The underlying array (shared, like ``torch.Tensor.numpy``; writes into it are recorded,
        as through ``data``)."""
        if type(self._data) is Released:
            raise self._data.error()
        return tracked(self._data)

    def __array__(self, dtype=None, copy=None):
        """For ``np.asarray(t)``: a read-only view (a write through it could not be recorded), or a
        copy when numpy asks for one."""
        if type(self._data) is Released:
            raise self._data.error()
        data = self._data if dtype is None else self._data.astype(dtype, copy=False)
        if copy:
            return data.copy() if data is self._data else data
        view = data.view(np.ndarray)
        view.flags.writeable = False
        return view

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
        return float(self.item())  # any single-element tensor, as PyTorch (numpy 2 refuses shape (1,))

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
        """Set ``requires_grad`` in place and return self (PyTorch's). Only a floating-point tensor can
        require grad (DTypeError otherwise), and only a leaf can stop (ValueError: use ``detach()``)."""
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

    # --- in-place writes: recorded (tinygraph.versions), never part of the graph ---------------------
    def _write(self, op_name, value, combine=None):
        """``self.data[...] = value`` (or ``combine(self.data, value)`` in place) for the in-place
        methods: ``value`` broadcasts to this tensor's shape and is cast to its dtype."""
        from .modes import is_grad_enabled
        if self.requires_grad and is_grad_enabled():
            raise GraphError(
                f"{op_name}: in-place write into a tensor that requires grad (shape {self.shape}); "
                f"in-place methods are not recorded in the graph. Update parameters inside "
                f"tg.no_grad(), or compute out of place (x = x + y)")
        if type(self._data) is Released:
            raise self._data.error()
        other = value._data if isinstance(value, Tensor) else to_array(value, what=op_name)
        if type(other) is Released:
            raise other.error()
        try:
            result_shape = np.broadcast_shapes(self.shape, other.shape)
        except ValueError:
            result_shape = None
        if result_shape != self.shape:
            raise ShapeError(f"{op_name}: a value of shape {other.shape} does not broadcast to this "
                             f"tensor's shape {self.shape}")
        if not np.can_cast(other.dtype, self.dtype, "same_kind"):
            raise DTypeError(f"{op_name}: cannot write {other.dtype} values into a {self.dtype} tensor "
                             f"in place; cast the value first")
        if combine is None:
            np.copyto(self._data, other, casting="same_kind")
        else:
            combine(self._data, other, out=self._data, casting="same_kind")
        record_write(self._data)
        return self

    def zero_(self):
        """Set every element to 0 in place; returns self."""
        return self._write("zero_", 0)

    def fill_(self, value):
        """Set every element to ``value`` in place; returns self."""
        return self._write("fill_", value)

    def copy_(self, src):
        """Copy ``src`` (broadcast to this shape, cast to this dtype) into this tensor; returns self."""
        return self._write("copy_", src)

    def add_(self, other, alpha=1):
        """``self += alpha * other`` in place (``alpha`` as in ``torch.Tensor.add_``); returns self."""
        return self._write("add_", other if alpha == 1 else _scaled(other, alpha), np.add)

    def sub_(self, other, alpha=1):
        """``self -= alpha * other`` in place; returns self."""
        return self._write("sub_", other if alpha == 1 else _scaled(other, alpha), np.subtract)

    def mul_(self, other):
        """``self *= other`` in place; returns self."""
        return self._write("mul_", other, np.multiply)

    def div_(self, other):
        """``self /= other`` in place; returns self."""
        return self._write("div_", other, np.true_divide)

    def detach(self):
        """A new leaf sharing this tensor's data, cut from the graph."""
        if type(self._data) is Released:
            raise self._data.error()
        return Tensor._wrap(self._data, name=self.name)

    @classmethod
    def _wrap(cls, array, requires_grad=False, name=None):
        """A leaf around an already validated ndarray (no copy)."""
        if type(array) is TrackedArray:  # a value taken from ``.data``: the same memory, untracked
            array = array.view(np.ndarray)
        t = cls.__new__(cls)
        t._data, t.grad, t.requires_grad, t.op, t.inputs = array, None, requires_grad, None, ()
        t.name, t.scope, t._retain, t._site = name, current_scope(), False, None
        t._step = current_step()
        t._cache = None
        t._uses = -1
        t._stamp = 0
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

    def exp(self):
        """e ** x elementwise (``tg.exp``)."""
        return F.exp(self)

    def log(self):
        """Natural logarithm elementwise (``tg.log``)."""
        return F.log(self)

    def tanh(self):
        """Hyperbolic tangent elementwise (``tg.tanh``)."""
        return F.tanh(self)

    def sigmoid(self):
        """1 / (1 + e ** -x) elementwise, without overflow (``tg.sigmoid``)."""
        return F.sigmoid(self)

    def relu(self):
        """max(x, 0) elementwise (``tg.relu``)."""
        return F.relu(self)

    def sqrt(self):
        """Square root elementwise (``tg.sqrt``)."""
        return F.sqrt(self)

    def abs(self):
        """Absolute value elementwise (``tg.abs``; also ``absolute``, and Python's ``abs(t)``)."""
        return F.abs(self)

    def reshape(self, *shape):
        """``t.reshape(2, 3)``, ``t.reshape((2, 3))`` or ``t.reshape(-1)`` (one -1 stands for the rest)."""
        return F.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes):
        """numpy: ``t.transpose()`` reverses the axes, ``t.transpose((2, 0, 1))`` or
        ``t.transpose(2, 0, 1)`` permutes them. Two ints are PyTorch's ``transpose(dim0, dim1)``, a
        swap of two axes, so on a 2-D tensor ``t.transpose(0, 1)`` swaps (numpy would read it as the
        identity permutation: write ``t.transpose((0, 1))`` for that)."""
        if len(axes) == 2 and all(isinstance(a, numbers.Integral) for a in axes):
            return F._transpose_dims(self, *axes)
        return F.transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    def swapaxes(self, axis1, axis2):
        """Axes ``axis1`` and ``axis2`` exchanged (``tg.swapaxes``)."""
        return F.swapaxes(self, axis1, axis2)

    def broadcast_to(self, shape):
        """Repeated to ``shape`` by numpy's broadcasting rule (``tg.broadcast_to``)."""
        return F.broadcast_to(self, shape)

    def astype(self, dtype):
        """Cast to ``dtype`` (``tg.astype``); a cast to integers or bool cuts the gradient."""
        return F.astype(self, dtype)

    def clip(self, low=None, high=None):
        """Values limited to [low, high], a None bound leaving that side open (``tg.clip``; also
        ``clamp``)."""
        return F.clip(self, low, high)

    def softmax(self, axis=-1):
        """Probabilities along ``axis``: exp(x) / sum(exp(x)), computed stably (``tg.softmax``)."""
        return F.softmax(self, axis)

    def log_softmax(self, axis=-1):
        """Log-probabilities along ``axis``: x - logsumexp(x), computed stably (``tg.log_softmax``)."""
        return F.log_softmax(self, axis)

    def logsumexp(self, axis=-1, keepdims=False):
        """log(sum(exp(x))) over ``axis`` without overflow; ``keepdims`` keeps that axis as size 1
        (``tg.logsumexp``)."""
        return F.logsumexp(self, axis, keepdims)

    T = property(lambda self: F.transpose(self, None),
                 doc="The axes reversed, numpy's ``T``: (m, n) -> (n, m); a 1-D tensor keeps its shape.")

    # --- elementwise math (tinygraph.ops.elementwise) ------------------------------------------------
    def __mod__(self, other): return F.mod(self, other)
    def __rmod__(self, other): return F.mod(other, self)
    def __abs__(self): return F.abs(self)
    def __pos__(self): return self  # +x is x: no node (as torch.positive)

    def sin(self):
        """Sine elementwise (``tg.sin``)."""
        return F.sin(self)

    def cos(self):
        """Cosine elementwise (``tg.cos``)."""
        return F.cos(self)

    def tan(self):
        """Tangent elementwise (``tg.tan``)."""
        return F.tan(self)

    def arcsin(self):
        """Inverse sine elementwise, defined on [-1, 1] (``tg.arcsin``; also ``asin``)."""
        return F.arcsin(self)

    def arccos(self):
        """Inverse cosine elementwise, defined on [-1, 1] (``tg.arccos``; also ``acos``)."""
        return F.arccos(self)

    def arctan(self):
        """Inverse tangent elementwise (``tg.arctan``; also ``atan``)."""
        return F.arctan(self)

    def sinh(self):
        """Hyperbolic sine elementwise (``tg.sinh``)."""
        return F.sinh(self)

    def cosh(self):
        """Hyperbolic cosine elementwise (``tg.cosh``)."""
        return F.cosh(self)

    def arcsinh(self):
        """Inverse hyperbolic sine elementwise (``tg.arcsinh``; also ``asinh``)."""
        return F.arcsinh(self)

    def arccosh(self):
        """Inverse hyperbolic cosine elementwise, defined for x >= 1 (``tg.arccosh``; also ``acosh``)."""
        return F.arccosh(self)

    def arctanh(self):
        """Inverse hyperbolic tangent elementwise, defined on (-1, 1) (``tg.arctanh``; also ``atanh``)."""
        return F.arctanh(self)

    asin, acos, atan, asinh, acosh, atanh = arcsin, arccos, arctan, arcsinh, arccosh, arctanh

    def exp2(self):
        """2 ** x elementwise (``tg.exp2``)."""
        return F.exp2(self)

    def expm1(self):
        """e ** x - 1 elementwise, exact for small x (``tg.expm1``)."""
        return F.expm1(self)

    def log2(self):
        """Base-2 logarithm elementwise (``tg.log2``)."""
        return F.log2(self)

    def log10(self):
        """Base-10 logarithm elementwise (``tg.log10``)."""
        return F.log10(self)

    def log1p(self):
        """log(1 + x) elementwise, exact for small x (``tg.log1p``)."""
        return F.log1p(self)

    def square(self):
        """x * x elementwise (``tg.square``)."""
        return F.square(self)

    def reciprocal(self):
        """1 / x elementwise, in a floating dtype (``tg.reciprocal``)."""
        return F.reciprocal(self)

    def floor(self):
        """The largest integer <= x elementwise, in x's dtype; no gradient (``tg.floor``)."""
        return F.floor(self)

    def ceil(self):
        """The smallest integer >= x elementwise, in x's dtype; no gradient (``tg.ceil``)."""
        return F.ceil(self)

    def neg(self):
        """-x elementwise (``tg.neg``; also ``negative``, and the operator ``-t``)."""
        return F.neg(self)

    def sign(self):
        """-1, 0 or 1 by the sign of each element; no gradient (``tg.sign``)."""
        return F.sign(self)

    def isnan(self):
        """True where the value is NaN: a bool tensor of this shape (``tg.isnan``)."""
        return F.isnan(self)

    def isinf(self):
        """True where the value is +inf or -inf: a bool tensor of this shape (``tg.isinf``)."""
        return F.isinf(self)

    def isfinite(self):
        """True where the value is neither NaN nor infinite: a bool tensor (``tg.isfinite``)."""
        return F.isfinite(self)

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        """NaN, +inf and -inf replaced by ``nan``, ``posinf`` and ``neginf`` (None: the dtype's largest and
        smallest finite values; ``tg.nan_to_num``)."""
        return F.nan_to_num(self, nan, posinf, neginf)

    def arctan2(self, other):
        """The angle in (-pi, pi] of the point whose y coordinate is this tensor and x coordinate ``other``:
        numpy's ``arctan2(self, other)`` (``tg.arctan2``; also ``atan2``)."""
        return F.arctan2(self, other)

    atan2 = arctan2

    def hypot(self, other):
        """sqrt(self ** 2 + other ** 2) elementwise, without overflow (``tg.hypot``)."""
        return F.hypot(self, other)

    def logaddexp(self, other):
        """log(exp(self) + exp(other)) elementwise, without overflow (``tg.logaddexp``)."""
        return F.logaddexp(self, other)

    def remainder(self, other):
        """``self % other``, with other's sign as Python's ``%`` (``tg.mod``)."""
        return F.mod(self, other)

    def maximum(self, other):
        """Elementwise max of self and ``other``; ties split the gradient equally (``tg.maximum``)."""
        return F.maximum(self, other)

    def minimum(self, other):
        """Elementwise min of self and ``other``; NaN propagates (``tg.minimum``)."""
        return F.minimum(self, other)

    def fmax(self, other):
        """Elementwise max of self and ``other``, ignoring NaN (``tg.fmax``)."""
        return F.fmax(self, other)

    def fmin(self, other):
        """Elementwise min of self and ``other``, ignoring NaN (``tg.fmin``)."""
        return F.fmin(self, other)

    negative, absolute, clamp = neg, abs, clip
    # ==============================================================================================
    # --- shape area: layout methods in PyTorch's and numpy's spellings, copies, casts, sizes --------
    # ``size`` stays numpy's property, the element count (the codebase relies on it): PyTorch's
    # ``t.size()`` is ``t.shape`` here and its ``t.numel()`` is ``t.numel()`` or ``t.size``.
    # ==============================================================================================
    def view(self, *shape):
        """PyTorch's ``view``: ``reshape`` (``t.view(-1)``, ``t.view(2, 3)``); the value may be a copy
        when numpy cannot view it, which changes nothing for gradients (tensors are not written in
        place)."""
        return F.reshape(self, shape[0] if len(shape) == 1 else shape)

    def unsqueeze(self, dim):
        """A size-1 axis inserted at ``dim``, in [-ndim - 1, ndim] (``tg.unsqueeze``)."""
        return F.unsqueeze(self, dim)

    def squeeze(self, axis=None, **dim):
        """Remove size-1 axes: all (``t.squeeze()``) or the given ones (``axis`` or PyTorch's ``dim``),
        each of which must have size 1."""
        return F.squeeze(self, axis, **dim)

    def permute(self, *dims):
        """``t.permute(2, 0, 1)`` or ``t.permute((2, 0, 1))``: axis ``dims[k]`` becomes axis k."""
        return F.permute(self, dims[0] if len(dims) == 1 else dims)

    def movedim(self, source, destination):
        """Axes ``source`` moved to positions ``destination``, the others keeping their order
        (``tg.moveaxis``; also ``moveaxis``)."""
        return F.moveaxis(self, source, destination)

    moveaxis = movedim

    def flatten(self, start_dim=0, end_dim=-1):
        """PyTorch's ``flatten``: axes ``start_dim`` .. ``end_dim`` merged (all of them by default)."""
        return F.flatten(self, start_dim, end_dim)

    def ravel(self):
        """The elements as one axis, (size,), in C order (``tg.ravel``)."""
        return F.ravel(self)

    def flip(self, *axis, **dims):
        """``t.flip()`` (numpy: every axis), ``t.flip(0)``, ``t.flip(0, 1)``, ``t.flip((0, 1))``,
        ``t.flip(dims=(0,))`` (PyTorch)."""
        return F.flip(self, None if not axis else axis[0] if len(axis) == 1 else axis, **dims)

    def roll(self, *args, **kwargs):
        """``t.roll(shift, axis=None)``; PyTorch's ``t.roll(shifts, dims)`` too (see ``tg.roll``)."""
        return F.roll(self, *args, **kwargs)

    def repeat(self, repeats, axis=None, **dim):
        """numpy's ``repeat``: each element repeated (``t.repeat(2)`` on [a, b] is [a, a, b, b]; see
        ``tg.repeat``). PyTorch's ``Tensor.repeat`` means numpy's ``tile``: use ``t.tile``."""
        return F.repeat(self, repeats, axis, **dim)

    def tile(self, *reps):
        """``t.tile(2, 1)`` or ``t.tile((2, 1))``: copies side by side (PyTorch's ``Tensor.repeat``)."""
        return F.tile(self, reps[0] if len(reps) == 1 else reps)

    def expand(self, *sizes):
        """PyTorch's ``expand``: broadcast to ``sizes``, -1 keeping a size (``t.expand(2, -1)``)."""
        return F.expand(self, *sizes)

    def expand_as(self, other):
        """``expand(*other.shape)``: broadcast to ``other``'s shape (``tg.expand_as``)."""
        return F.expand_as(self, other)

    def clone(self):
        """A copy in the graph: gradients flow through it (``detach`` cuts them)."""
        return F.clone(self)

    def tolist(self):
        """The value as nested Python lists of Python numbers (a 0-d tensor: one number)."""
        return self.numpy().tolist()

    def pow(self, exponent):
        """``self ** exponent`` (``tg.pow``; a Python-number exponent takes the cheaper rule)."""
        return F.pow(self, exponent)

    def numel(self):
        """The number of elements (PyTorch's ``numel()``; numpy's ``size``, kept as the property)."""
        return self._data.size

    def dim(self):
        """The number of dimensions (PyTorch; numpy's ``ndim``)."""
        return self._data.ndim

    @property
    def mT(self):
        """The last two axes swapped: (..., m, n) -> (..., n, m)."""
        if self._data.ndim < 2:
            raise ShapeError(f"mT: needs at least 2 dimensions, got shape {self.shape}")
        return F.swapaxes(self, -1, -2)

    # Casts, PyTorch's spellings. Defined last: inside the class body they shadow the builtins
    # ``float``, ``int`` and ``bool``; ``float(t)`` still calls ``__float__`` (a Python float).
    def double(self):
        """Cast to float64: ``astype(float64)``."""
        return F.astype(self, np.float64)

    def float(self):
        """``astype(float32)`` (PyTorch's ``float()``); Python's ``float(t)`` stays a Python float."""
        return F.astype(self, np.float32)

    def long(self):
        """``astype(int64)``: the result does not require grad."""
        return F.astype(self, np.int64)

    def int(self):
        """``astype(int32)``: the result does not require grad."""
        return F.astype(self, np.int32)

    def bool(self):
        """``astype(bool)``: the result does not require grad."""
        return F.astype(self, np.bool_)
    # --- end of the shape area's methods ------------------------------------------------------------
    # --- reduce: reductions, scans, linear algebra, sorting (tinygraph.functional) ----------------
    # numpy semantics and names, PyTorch's dim/keepdim accepted: ``x.max(dim=1)`` is the values only
    # (for torch's indices use ``x.argmax(dim=1)``), ``x.sort()`` returns the sorted values (it does
    # not sort in place as ndarray.sort does). numpy has no ``diag`` method, so neither has Tensor.
    def sum(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        """Sum over ``axis`` (an int, a tuple, None for all; PyTorch's ``dim``), reduced axes kept as size 1
        with ``keepdims`` (``keepdim``); see ``tg.sum``."""
        return F.sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        """Mean over ``axis`` (``dim``), ``keepdims`` as in ``sum``; of no elements it is NaN
        (``tg.mean``)."""
        return F.mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        """The largest values over ``axis`` (``dim``), as in ``sum``: the values only, for the indices use
        ``argmax`` (``tg.max``)."""
        return F.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def min(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        """The smallest values over ``axis`` (``dim``), as in ``sum``: the values only, for the indices use
        ``argmin`` (``tg.min``)."""
        return F.min(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def prod(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        """Product over ``axis`` (``dim``), as in ``sum``; exact gradients with zeros in it
        (``tg.prod``)."""
        return F.prod(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def var(self, axis=None, ddof=None, keepdims=None, *, dim=None, keepdim=None, correction=None,
            unbiased=None):
        """Variance over ``axis`` (``dim``), numpy's ``ddof=0`` by default: ``ddof=1``, ``correction=1`` or
        ``unbiased=True`` give the sample variance, PyTorch's default (``tg.var``)."""
        return F.var(self, axis, ddof, keepdims, dim=dim, keepdim=keepdim, correction=correction,
                     unbiased=unbiased)

    def std(self, axis=None, ddof=None, keepdims=None, *, dim=None, keepdim=None, correction=None,
            unbiased=None):
        """Standard deviation: ``sqrt(var(...))``, with ``var``'s arguments (``tg.std``)."""
        return F.std(self, axis, ddof, keepdims, dim=dim, keepdim=keepdim, correction=correction,
                     unbiased=unbiased)

    def cumsum(self, axis=None, *, dim=None):
        """Running sum along ``axis`` (``dim``; None: of the flattened tensor; ``tg.cumsum``)."""
        return F.cumsum(self, axis, dim=dim)

    def cumprod(self, axis=None, *, dim=None):
        """Running product along ``axis`` (``dim``; None: of the flattened tensor; ``tg.cumprod``)."""
        return F.cumprod(self, axis, dim=dim)

    def argmax(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        """int64 positions of the first maximum along ``axis`` (``dim``; None: in the flattened tensor); not
        differentiable (``tg.argmax``)."""
        return F.argmax(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmin(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        """int64 positions of the first minimum along ``axis`` (``dim``; None: in the flattened tensor); not
        differentiable (``tg.argmin``)."""
        return F.argmin(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def sort(self, axis=-1, descending=False, stable=True, *, dim=None):
        """The values sorted along ``axis`` (``dim``), ascending unless ``descending``, as a new tensor (not
        in place, unlike ``ndarray.sort``; ``tg.sort``)."""
        return F.sort(self, axis, descending, stable, dim=dim)

    def argsort(self, axis=-1, descending=False, stable=True, *, dim=None):
        """int64 positions that sort the values along ``axis`` (``dim``), stable; not differentiable
        (``tg.argsort``)."""
        return F.argsort(self, axis, descending, stable, dim=dim)

    def dot(self, other):
        """numpy's ``dot`` of this tensor and ``other``: ``matmul`` for 1-D and 2-D operands
        (``tg.dot``)."""
        return F.dot(self, other)

    def trace(self, offset=0, axis1=0, axis2=1):
        """Sum of the ``offset``-th diagonal over ``axis1`` and ``axis2`` (``tg.trace``)."""
        return F.trace(self, offset, axis1, axis2)

    def diagonal(self, offset=0, axis1=0, axis2=1, *, dim1=None, dim2=None):
        """The ``offset``-th diagonal over ``axis1``/``axis2`` (PyTorch: ``dim1``/``dim2``), those axes
        replaced by one last axis (``tg.diagonal``)."""
        return F.diagonal(self, offset, axis1, axis2, dim1=dim1, dim2=dim2)

    def tril(self, k=0, *, diagonal=None):
        """The lower triangle of the last two axes: elements above the ``k``-th diagonal (PyTorch:
        ``diagonal``) set to 0 (``tg.tril``)."""
        return F.tril(self, k, diagonal=diagonal)

    def triu(self, k=0, *, diagonal=None):
        """The upper triangle of the last two axes: elements below the ``k``-th diagonal (PyTorch:
        ``diagonal``) set to 0 (``tg.triu``)."""
        return F.triu(self, k, diagonal=diagonal)
    # --- end of reduce ------------------------------------------------------------------------------


tensor = Tensor


def _scaled(value, alpha):
    array = value._data if isinstance(value, Tensor) else to_array(value)
    return array * np.asarray(alpha, dtype=array.dtype if array.dtype.kind == "f" else None)


def _same_memory(a, b):
    """Whether ndarrays ``a`` and ``b`` are the same values in the same memory (same buffer, offset,
    shape, strides and dtype)."""
    return (isinstance(a, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype
            and a.strides == b.strides and root(a) is root(b)
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])

from . import functional as F  # noqa: E402  (operators above resolve F at call time)
