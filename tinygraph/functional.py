"""User-facing functions: thin wrappers that validate arguments and apply a primitive, and composite
ops built from primitives (they need no gradient rule of their own).

Every function accepts Tensors, ndarrays or Python numbers. A Python number takes the dtype of the
tensor it meets, so float32 stays float32.
"""
import builtins
import numbers

import numpy as np

from .errors import DTypeError, ShapeError
from .ops import apply
from .ops import fused as FU
from .ops import head as HD
from .ops import math as M
from .ops import shape as S
from .tensor import Tensor, to_array


def as_tensor(value, like=None):
    """``value`` as a Tensor; a Python number adopts the floating dtype of ``like``."""
    if isinstance(value, Tensor):
        return value
    if like is not None and isinstance(value, numbers.Number) and like._data.dtype.kind == "f":
        return Tensor._wrap(np.asarray(value, dtype=like._data.dtype))
    return Tensor._wrap(to_array(value))


def _binary(op):
    def fn(x, y):
        if not isinstance(x, Tensor):
            x = as_tensor(x, y)
        elif not isinstance(y, Tensor):
            y = as_tensor(y, x)
        return apply(op, x, y)
    fn.__name__ = fn.__qualname__ = op.name
    fn.__doc__ = f"Elementwise ``{op.name}`` with numpy broadcasting."
    return fn


def _unary(op):
    def fn(x):
        return apply(op, as_tensor(x))
    fn.__name__ = fn.__qualname__ = op.name
    fn.__doc__ = f"Elementwise ``{op.name}``; output has the input's shape and dtype."
    return fn


add, sub, mul, div = (_binary(op()) for op in (M.Add, M.Sub, M.Mul, M.Div))
maximum, _pow_tensors = _binary(M.Maximum()), _binary(M.Pow())
lt, le, gt, ge, eq, ne = (_binary(op()) for op in (
    M.Less, M.LessEqual, M.Greater, M.GreaterEqual, M.Equal, M.NotEqual))
neg, exp, log, tanh, sigmoid, relu, sqrt, abs, sign = (_unary(op()) for op in (
    M.Neg, M.Exp, M.Log, M.Tanh, M.Sigmoid, M.Relu, M.Sqrt, M.Abs, M.Sign))
_matmul = _binary(M.MatMul())


def pow(x, exponent):
    """``x ** exponent``; a Python-number exponent uses the cheaper ``pow_const`` rule."""
    if isinstance(exponent, numbers.Number) and isinstance(x, Tensor):
        return apply(M.PowConst(exponent), x)
    return _pow_tensors(x, exponent)


def matmul(x, y):
    """(..., m, k) @ (..., k, n) -> (..., m, n), numpy semantics (1-D operands are promoted)."""
    return _matmul(x, y)


def where(cond, x, y):
    """Pick from ``x`` where ``cond`` is true, else from ``y`` (all three broadcast together)."""
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        x = as_tensor(x)
    x = as_tensor(x, y if isinstance(y, Tensor) else None)
    y = as_tensor(y, x)
    cond = as_tensor(cond)
    if cond.dtype != np.bool_:
        raise DTypeError(f"where: the condition must be a bool tensor, got {cond.dtype}; compare first "
                         f"(e.g. x > 0)")
    return apply(M.Where(), cond, x, y)


# --- reductions ---------------------------------------------------------------------------------
def normalize_axes(op_name, axis, ndim):
    """``axis`` (int, tuple or None) as a sorted tuple of non-negative axes, or None for all."""
    if axis is None:
        return None
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise DTypeError(f"{op_name}: axis must be an int, a tuple of ints or None, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op_name}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op_name}: axis {axis} repeats an axis")
    return tuple(sorted(out))


def sum(x, axis=None, keepdims=False):
    """Sum over ``axis`` (int, tuple or None for all), optionally keeping reduced dims as 1."""
    x = as_tensor(x)
    return apply(S.Sum(normalize_axes("sum", axis, x.ndim), bool(keepdims)), x)


def max(x, axis=None, keepdims=False):
    """Max over ``axis``; ties share the gradient equally."""
    x = as_tensor(x)
    axes = normalize_axes("max", axis, x.ndim)
    if x.size == 0:
        raise ShapeError(f"max: cannot reduce an empty tensor of shape {x.shape}")
    return apply(S.Max(axes, bool(keepdims)), x)


def mean(x, axis=None, keepdims=False):
    """Mean over ``axis``: ``sum / count``."""
    x = as_tensor(x)
    axes = normalize_axes("mean", axis, x.ndim)
    count = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
    return sum(x, axes, keepdims) * (1.0 / count)


# --- shapes ---------------------------------------------------------------------------------------
def reshape(x, shape):
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(int(n) for n in shape)
    return apply(S.Reshape(shape), as_tensor(x))


def transpose(x, axes=None):
    """Permute axes; ``None`` reverses them (``x.T``)."""
    x = as_tensor(x)
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(int(a) % builtins.max(x.ndim, 1) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of {x.shape}")
    return apply(S.Transpose(axes), x)


def swapaxes(x, axis1, axis2):
    x = as_tensor(x)
    axes = list(range(x.ndim))
    a, b = normalize_axes("swapaxes", axis1, x.ndim)[0], normalize_axes("swapaxes", axis2, x.ndim)[0]
    axes[a], axes[b] = axes[b], axes[a]
    return apply(S.Transpose(tuple(axes)), x)


def broadcast_to(x, shape):
    return apply(S.BroadcastTo(tuple(shape)), as_tensor(x))


def astype(x, dtype):
    """Cast to ``dtype``; a cast to integers or bool cuts the gradient (it is zero almost everywhere)."""
    x = as_tensor(x)
    dtype = np.dtype(dtype)
    if dtype.kind not in "fiub":
        raise DTypeError(f"astype: cannot convert a tensor to {dtype}; tensors hold floats, integers or bools")
    if x.dtype == dtype:
        return x
    out = apply(S.AsType(dtype), x)
    if dtype.kind != "f":
        out.requires_grad = False
    return out


def _index_part(part):
    if isinstance(part, Tensor):
        part = part._data
    if isinstance(part, list):
        part = np.asarray(part)
    if isinstance(part, np.ndarray) and part.dtype.kind not in "iub":
        raise DTypeError(f"getitem: index arrays must hold integers or bools, got {part.dtype}")
    return part


def getitem(x, index):
    """``x[index]``: ints, slices, None, Ellipsis, integer/bool arrays; gradients scatter-add."""
    index = tuple(_index_part(p) for p in index) if isinstance(index, tuple) else _index_part(index)
    return apply(S.GetItem(index), as_tensor(x))


def concat(tensors, axis=0):
    """Join along an existing ``axis``."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ShapeError("concat: needs at least one tensor")
    return apply(S.Concat(normalize_axes("concat", axis, tensors[0].ndim)[0]), *tensors)


def stack(tensors, axis=0, out=None):
    """Join same-shaped tensors along a new ``axis`` (one node).

    ``out``: an ndarray of the stacked shape to write into, as in numpy; inputs that are already
    views of their place in it are not copied (a recurrent layer stacks its slab's rows this way).
    """
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ShapeError("stack: needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ShapeError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    axis = normalize_axes("stack", axis, tensors[0].ndim + 1)[0]
    if out is not None:
        _check_out("stack", out, tensors[0].shape[:axis] + (len(tensors),) + tensors[0].shape[axis:],
                   tensors[0].dtype)
    return apply(S.Stack(axis, out), *tensors)


def _check_out(op_name, out, shape, dtype):
    """``out`` must be an ndarray of exactly the result's shape and dtype."""
    if not isinstance(out, np.ndarray) or out.shape != tuple(shape) or out.dtype != dtype:
        got = f"{out.shape} {out.dtype}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ShapeError(f"{op_name}: out must be an ndarray of the result's shape {tuple(shape)} and "
                         f"dtype {dtype}, got {got}")


def split(x, sections, axis=0):
    """Split into ``sections`` equal parts (an int) or at the given indices (a list), like numpy."""
    x = as_tensor(x)
    axis = normalize_axes("split", axis, x.ndim)[0]
    n = x.shape[axis]
    if isinstance(sections, numbers.Integral):
        if sections <= 0 or n % sections:
            raise ShapeError(f"split: cannot split axis {axis} of size {n} into {sections} equal parts")
        bounds = list(range(0, n + 1, n // sections))
    else:
        bounds = [0, *sections, n]
    lead = (slice(None),) * axis
    return [x[lead + (slice(a, b),)] for a, b in zip(bounds[:-1], bounds[1:])]


def clip(x, low=None, high=None):
    """Limit values to [low, high]; the gradient is zero where a bound is active."""
    x = as_tensor(x)
    if low is not None:
        x = where(x < low, low, x)
    if high is not None:
        x = where(x > high, high, x)
    return x


# --- composites for classification ------------------------------------------------------------------
def logsumexp(x, axis=-1, keepdims=False):
    """log(sum(exp(x))) over ``axis``, shifted by the (constant) max so it never overflows."""
    x = as_tensor(x)
    axis = normalize_axes("logsumexp", axis, x.ndim)
    shift = Tensor._wrap(np.max(x._data, axis=axis, keepdims=True))
    shift._data = np.where(np.isfinite(shift._data), shift._data, 0).astype(x.dtype)
    out = log(sum(exp(x - shift), axis, keepdims=True)) + shift
    return out if keepdims else reshape(out, np.squeeze(out._data, axis=axis).shape)


def log_softmax(x, axis=-1):
    """x - logsumexp(x): log-probabilities, numerically stable."""
    x = as_tensor(x)
    normalize_axes("log_softmax", axis, x.ndim)  # errors name the function the user called
    return x - logsumexp(x, axis, keepdims=True)


def softmax(x, axis=-1):
    """exp(log_softmax(x)): probabilities along ``axis``."""
    x = as_tensor(x)
    normalize_axes("softmax", axis, x.ndim)
    return exp(log_softmax(x, axis))


def _check_targets(op_name, targets, num_classes, batch_shape, per="row of the logits"):
    targets = targets._data if isinstance(targets, Tensor) else np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise DTypeError(f"{op_name}: class targets must be integers, got dtype {targets.dtype}; "
                         f"pass class indices, not one-hot or float labels")
    if targets.shape != batch_shape:
        raise ShapeError(f"{op_name}: targets have shape {targets.shape}, expected {batch_shape} "
                         f"(one class index per {per})")
    if targets.size and (targets.min() < 0 or targets.max() >= num_classes):
        raise ShapeError(f"{op_name}: targets must lie in [0, {num_classes}), got values from "
                         f"{targets.min()} to {targets.max()}")
    return targets


def cross_entropy(logits, targets, reduction="mean"):
    """Softmax cross-entropy. logits (N, C) or (C,); targets int (N,) or (); reduction mean|sum|none.

    One fused node (the composed ``-log_softmax(logits)[range(N), targets]`` is its tested definition).
    """
    logits = as_tensor(logits)
    if logits.ndim not in (1, 2):
        raise ShapeError(f"cross_entropy: logits must be (N, C) or (C,), got {logits.shape}; "
                         f"reshape sequences to (T*B, C)")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    targets = _check_targets("cross_entropy", targets, logits.shape[-1], logits.shape[:-1])
    if logits.ndim == 1:
        out = apply(FU.CrossEntropy(targets.reshape(1), reduction), reshape(logits, (1, -1)))
        return reshape(out, ()) if reduction == "none" else out
    if len(logits) == 0:
        raise ShapeError("cross_entropy: logits have no rows (N = 0)")
    return apply(FU.CrossEntropy(targets, reduction), logits)


def linear_cross_entropy(x, weight, bias, targets, reduction="mean"):
    """Softmax cross-entropy of the linear head ``x @ weight.T + bias``, as one node.

    x (..., H), e.g. a (T, B, H) sequence of hidden states; weight (V, H); bias (V,) or None; targets
    int with shape x.shape[:-1], in [0, V). reduction "mean" | "sum" -> (), "none" -> x.shape[:-1].
    Equal to ``cross_entropy(affine(x, weight, bias).reshape(N, V), targets.reshape(N), reduction)``
    with N = prod(x.shape[:-1]) (reshaped back for "none"), but where that holds the (N, V) logits for
    backward and builds their (N, V) gradient beside them, this node holds only the (N, V) gradient
    ``softmax - onehot``, made in place of the logits during forward. The gradient of ``x`` is
    produced lazily: a ``stack`` of per-step states gets it one (B, H) block per step, never the
    whole (T, B, H) at once.
    """
    x, weight = as_tensor(x), as_tensor(weight)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"linear_cross_entropy: reduction must be 'mean', 'sum' or 'none', got "
                         f"{reduction!r}")
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear_cross_entropy: x {x.shape} does not fit weight {weight.shape}; "
                         f"expected x (..., H) and weight (V, H) with the same H, e.g. hidden states "
                         f"(T, B, H) and a head weight (vocabulary, H)")
    V = weight.shape[0]
    bias = Tensor._wrap(np.zeros(V, dtype=weight.dtype)) if bias is None else as_tensor(bias)
    if bias.shape != (V,):
        raise ShapeError(f"linear_cross_entropy: bias has shape {bias.shape}, expected ({V},) to match "
                         f"weight {weight.shape} (V, H)")
    if V == 0 or x.size == 0:
        raise ShapeError(f"linear_cross_entropy: x {x.shape} and weight {weight.shape} leave no rows or "
                         f"no classes")
    targets = _check_targets("linear_cross_entropy", targets, V, x.shape[:-1],
                             per=f"position of x's leading dims {x.shape[:-1]}")
    return apply(HD.LinearCrossEntropy(targets, reduction), x, weight, bias)


def mse_loss(prediction, target, reduction="mean"):
    """Mean squared error; prediction and target must have the same shape (no silent broadcasting)."""
    prediction = as_tensor(prediction)
    target = as_tensor(target, prediction)
    if prediction.shape != target.shape:
        raise ShapeError(f"mse_loss: prediction {prediction.shape} and target {target.shape} differ; "
                         f"broadcasting here is almost always a bug, reshape explicitly")
    diff = prediction - target
    return _reduce("mse_loss", diff * diff, reduction)


def _reduce(op_name, losses, reduction):
    if reduction == "mean":
        return mean(losses)
    if reduction == "sum":
        return sum(losses)
    if reduction == "none":
        return losses
    raise ValueError(f"{op_name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def embedding(weight, indices):
    """Rows of ``weight`` (num_embeddings, dim) at integer ``indices`` (any shape) -> indices.shape + (dim,)."""
    weight = as_tensor(weight)
    indices = indices._data if isinstance(indices, Tensor) else np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise DTypeError(f"embedding: indices must be integers, got {indices.dtype}")
    if indices.size and (indices.min() < 0 or indices.max() >= weight.shape[0]):
        raise ShapeError(f"embedding: indices must lie in [0, {weight.shape[0]}), got values from "
                         f"{indices.min()} to {indices.max()}")
    return weight[indices]


# --- fused blocks for linear layers and recurrent cells (see ops/fused.py) ---------------------------
def affine(x, weight, bias, out=None):
    """x @ weight.T + bias in one node.  x (..., in), weight (out, in), bias (out,) -> (..., out).

    ``out``: an ndarray (N, out) to write into, N the product of x's leading dimensions (it may be a
    strided view, e.g. a recurrent slab's gate columns); the node's value is a view of it.
    """
    x, weight, bias = as_tensor(x), as_tensor(weight), as_tensor(bias)
    if out is not None:
        _check_out("affine", out, (int(np.prod(x.shape[:-1])), weight.shape[0]),
                   np.result_type(x.dtype, weight.dtype, bias.dtype))
    return apply(FU.Affine(input_grad=x.requires_grad, out=out), x, weight, bias)


def _check_cell(op_name, gates, p, state, weight_hh):
    if state[0].ndim == 2:  # runs every time step: plain comparisons, no temporaries
        B, H = state[0].shape
        if p.shape == (B, gates * H) and weight_hh.shape == (gates * H, H) and \
                all(s.shape == (B, H) for s in state):
            return
    states = ", ".join(str(s.shape) for s in state)
    raise ShapeError(f"{op_name}: expected input projection (B, {gates}*H), state(s) (B, H) and "
                     f"weight_hh ({gates}*H, H); got projection {p.shape}, state(s) {states}, "
                     f"weight_hh {weight_hh.shape}")


def _cell_out(op_cls, out, h):
    """Check a cell block's ``out`` buffer: (B, width*H) of h's dtype (see ``ops.fused``)."""
    if out is not None:
        _check_out(op_cls.name, out, (h.shape[0], op_cls.width * h.shape[-1]), h.dtype)
    return out


def rnn_cell(p, h, weight_hh, bias_hh, nonlinearity="tanh", out=None):
    """One Elman step from the input projection p = x @ W_ih.T + b_ih: act(p + h @ W_hh.T + b_hh).

    p, h (B, H); weight_hh (H, H); bias_hh (H,) -> h' (B, H). ``out`` (B, H): where to write h'
    (it may be p itself, which is then consumed).
    """
    if nonlinearity not in FU.ACTIVATIONS:
        raise ValueError(f"rnn_cell: nonlinearity must be one of {sorted(FU.ACTIVATIONS)}, got {nonlinearity!r}")
    p, h, weight_hh, bias_hh = map(as_tensor, (p, h, weight_hh, bias_hh))
    _check_cell("rnn_cell", 1, p, (h,), weight_hh)
    op = FU.RNNCellBlock(nonlinearity, _cell_out(FU.RNNCellBlock, out, h))
    return apply(op, p, h, weight_hh, bias_hh)


def lstm_cell(p, h, c, weight_hh, bias_hh, out=None):
    """One LSTM step (gates i, f, g, o) from the input projection p (B, 4H) -> (h', c'), each (B, H).

    ``out`` (B, 6H): where to write [h' | c' | i f g o] (its gate columns may be p itself).
    """
    p, h, c, weight_hh, bias_hh = map(as_tensor, (p, h, c, weight_hh, bias_hh))
    _check_cell("lstm_cell", 4, p, (h, c), weight_hh)
    H = h.shape[-1]
    block = apply(FU.LSTMCellBlock(_cell_out(FU.LSTMCellBlock, out, h)), p, h, c, weight_hh, bias_hh)
    return block[:, :H], block[:, H:2 * H]


def gru_cell(p, h, weight_hh, bias_hh, out=None):
    """One GRU step (gates r, z, n) from the input projection p (B, 3H) -> h' (B, H).

    ``out`` (B, 5H): where to write [h' | r z n | hn] (columns H:4H may be p itself).
    """
    p, h, weight_hh, bias_hh = map(as_tensor, (p, h, weight_hh, bias_hh))
    _check_cell("gru_cell", 3, p, (h,), weight_hh)
    block = apply(FU.GRUCellBlock(_cell_out(FU.GRUCellBlock, out, h)), p, h, weight_hh, bias_hh)
    return block[:, :h.shape[-1]]


# ==================================================================================================
# --- shape area: layout functions, creation functions ---------------------------------------------
# ==================================================================================================
# Every function here accepts numpy's argument names (``axis``, ``keepdims``) and PyTorch's (``dim``,
# ``keepdim``); bad input raises ShapeError/DTypeError naming the function, the argument and the
# allowed values.
from . import random as _random  # noqa: E402
from .ops import layout as LA  # noqa: E402

_UNSET = object()


def _axis_args(fn_name, axis=_UNSET, dim=_UNSET, default=None, axis_name="axis", dim_name="dim"):
    """The axis argument given as numpy's ``axis`` or PyTorch's ``dim`` (not both), else ``default``.

    Private to the shape area: a shared ``_axis_args`` is being written beside ``normalize_axes`` and
    replaces this one at merge.
    """
    if axis is not _UNSET and dim is not _UNSET:
        raise ShapeError(f"{fn_name}: give {axis_name}= or {dim_name}= (the same argument), not both")
    if axis is not _UNSET:
        return axis
    return default if dim is _UNSET else dim


def _input(fn_name, x, argument="x"):
    """``x`` as a Tensor; data numpy cannot hold as numbers is a DTypeError naming ``fn_name``."""
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor._wrap(to_array(x, what=f"{fn_name}: argument {argument}"))
    except ValueError:  # numpy's "inhomogeneous shape": a ragged nested list
        raise ShapeError(f"{fn_name}: argument {argument} is a ragged nested sequence; rows must have "
                         f"equal lengths") from None


def _int(fn_name, argument, value, low=None):
    """``value`` as a Python int (bools and floats refused), at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DTypeError(f"{fn_name}: {argument} must be an int, got {value!r}")
    if low is not None and value < low:
        raise ShapeError(f"{fn_name}: {argument} must be >= {low}, got {value}")
    return int(value)


def _axis(fn_name, axis, ndim, argument="axis"):
    """One axis in [-ndim, ndim) as a non-negative int."""
    axis = _int(fn_name, argument, axis)
    if ndim == 0:
        raise ShapeError(f"{fn_name}: {argument} {axis} is out of range: the tensor is 0-d and has no axes")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{fn_name}: {argument} {axis} is out of range for a tensor with {ndim} "
                         f"dimensions (allowed: {-ndim} to {ndim - 1})")
    return axis % ndim


def _axes(fn_name, axis, ndim, argument="axis"):
    """An int or a sequence of distinct axes in [-ndim, ndim) as a tuple of non-negative ints, in the
    order given."""
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = tuple(_axis(fn_name, a, ndim, argument) for a in axes)
    if len(set(out)) != len(out):
        raise ShapeError(f"{fn_name}: {argument} {axis!r} repeats an axis")
    return out


def _shape_arg(fn_name, shape, argument="shape"):
    """``(2, 3)``, ``[2, 3]``, ``2`` or the varargs ``(2, 3)`` / ``((2, 3),)`` as a tuple of ints >= 0."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(_int(fn_name, argument, n, low=0) for n in shape)


# --- creation -------------------------------------------------------------------------------------
def _dtype(fn_name, dtype, default=np.float64):
    dtype = np.dtype(default if dtype is None else dtype)
    if dtype.kind not in "fiub":
        raise DTypeError(f"{fn_name}: dtype {dtype} is not supported; allowed: float32/float64 (and "
                         f"other floats), integers, bool")
    return dtype


def _created(array, requires_grad, name):
    return Tensor._wrap(array, name=name).requires_grad_(True) if requires_grad else \
        Tensor._wrap(array, name=name)


def zeros(*shape, dtype=None, requires_grad=False, name=None):
    """Zeros of ``shape``: ``zeros(2, 3)`` or ``zeros((2, 3))``; float64 unless ``dtype``."""
    return _created(np.zeros(_shape_arg("zeros", shape), _dtype("zeros", dtype)), requires_grad, name)


def ones(*shape, dtype=None, requires_grad=False, name=None):
    """Ones of ``shape``: ``ones(2, 3)`` or ``ones((2, 3))``; float64 unless ``dtype``."""
    return _created(np.ones(_shape_arg("ones", shape), _dtype("ones", dtype)), requires_grad, name)


def _fill_dtype(fn_name, fill_value, dtype):
    """``dtype``, or the one numpy and PyTorch infer from a Python fill value: bool, int64, float64."""
    if dtype is not None:
        return _dtype(fn_name, dtype)
    if isinstance(fill_value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(fill_value, numbers.Integral):
        return np.dtype(np.int64)
    if isinstance(fill_value, numbers.Real):
        return np.dtype(np.float64)
    raise DTypeError(f"{fn_name}: fill_value must be a real number or a bool, got {fill_value!r}")


def full(shape, fill_value, dtype=None, requires_grad=False, name=None):
    """``shape`` (an int or a tuple) filled with ``fill_value``; the dtype follows the value (bool,
    int64, float64) unless given, as in numpy and PyTorch."""
    shape = _shape_arg("full", (shape,))
    return _created(np.full(shape, fill_value, _fill_dtype("full", fill_value, dtype)), requires_grad, name)


def _like(fn_name, x, dtype):
    x = _input(fn_name, x)
    return x.shape, _dtype(fn_name, dtype, default=x.dtype)


def zeros_like(x, dtype=None, requires_grad=False, name=None):
    """Zeros of ``x``'s shape and dtype (or ``dtype``)."""
    shape, dtype = _like("zeros_like", x, dtype)
    return _created(np.zeros(shape, dtype), requires_grad, name)


def ones_like(x, dtype=None, requires_grad=False, name=None):
    """Ones of ``x``'s shape and dtype (or ``dtype``)."""
    shape, dtype = _like("ones_like", x, dtype)
    return _created(np.ones(shape, dtype), requires_grad, name)


def full_like(x, fill_value, dtype=None, requires_grad=False, name=None):
    """``x``'s shape filled with ``fill_value``, in ``x``'s dtype (or ``dtype``)."""
    shape, dtype = _like("full_like", x, dtype)
    _fill_dtype("full_like", fill_value, None)  # refuses a non-number
    return _created(np.full(shape, fill_value, dtype), requires_grad, name)


def eye(n, m=None, k=0, dtype=None, requires_grad=False, name=None):
    """The (n, m) matrix (m defaults to n) with ones on diagonal ``k`` (0 main, > 0 above)."""
    n = _int("eye", "n", n, low=0)
    m = n if m is None else _int("eye", "m", m, low=0)
    return _created(np.eye(n, m, _int("eye", "k", k), dtype=_dtype("eye", dtype)), requires_grad, name)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False, name=None):
    """``[start, stop)`` by ``step`` (``arange(n)`` is 0..n-1). All-int arguments give int64, any float
    gives float64 (numpy and PyTorch), unless ``dtype``."""
    if stop is None:
        start, stop = 0, start
    for argument, value in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise DTypeError(f"arange: {argument} must be a real number, got {value!r}")
    if step == 0:
        raise ShapeError("arange: step must not be 0")
    ints = all(isinstance(v, numbers.Integral) for v in (start, stop, step))
    dtype = _dtype("arange", dtype, default=np.int64 if ints else np.float64)
    return _created(np.arange(start, stop, step).astype(dtype, copy=False), requires_grad, name)


def linspace(start, stop, num=_UNSET, endpoint=True, dtype=None, requires_grad=False, name=None,
             steps=_UNSET):
    """``num`` (PyTorch: ``steps``; default 50 as numpy) evenly spaced values from ``start`` to ``stop``
    (included unless ``endpoint=False``); float64 unless ``dtype``."""
    num = _int("linspace", "num", _axis_args("linspace", num, steps, 50, "num", "steps"), low=0)
    for argument, value in (("start", start), ("stop", stop)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise DTypeError(f"linspace: {argument} must be a real number, got {value!r}")
    values = np.linspace(start, stop, num, endpoint=bool(endpoint))
    return _created(values.astype(_dtype("linspace", dtype), copy=False), requires_grad, name)


def _random_dtype(fn_name, dtype):
    dtype = _dtype(fn_name, dtype)
    if dtype not in (np.float32, np.float64):
        raise DTypeError(f"{fn_name}: dtype {dtype} is not supported; allowed: float32, float64")
    return dtype


def rand(*shape, dtype=None, requires_grad=False, name=None):
    """Uniform [0, 1) values of ``shape`` from the global generator (``tg.manual_seed``)."""
    dtype = _random_dtype("rand", dtype)
    values = _random.default_generator().random(_shape_arg("rand", shape), dtype=dtype)
    return _created(values, requires_grad, name)


def randn(*shape, dtype=None, requires_grad=False, name=None):
    """Standard normal values of ``shape`` from the global generator (``tg.manual_seed``)."""
    dtype = _random_dtype("randn", dtype)
    values = _random.default_generator().standard_normal(_shape_arg("randn", shape), dtype=dtype)
    return _created(values, requires_grad, name)
