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


def _axis_args(fn_name, axis, dim, keepdims, keepdim):
    """``(axis, keepdims)`` from numpy's ``axis``/``keepdims`` or PyTorch's ``dim``/``keepdim``
    spellings (None: not given; keepdims defaults to False). A TypeError names both if both are."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{fn_name}: got axis={axis!r} and dim={dim!r}; pass one of them (dim is "
                            f"PyTorch's name for axis)")
        axis = dim
    if keepdim is not None:
        if keepdims is not None:
            raise TypeError(f"{fn_name}: got keepdims={keepdims!r} and keepdim={keepdim!r}; pass one of "
                            f"them (keepdim is PyTorch's name for keepdims)")
        keepdims = keepdim
    return axis, bool(keepdims)


def _check_nonempty(fn_name, x, axes):
    """A reduction without an identity (max, min, argmax) cannot reduce an axis of length 0."""
    empty = x.size == 0 if axes is None else builtins.any(x.shape[a] == 0 for a in axes)
    if empty:
        over = "all axes" if axes is None else f"axis {axes[0] if len(axes) == 1 else axes}"
        raise ShapeError(f"{fn_name}: cannot reduce over {over} of a tensor of shape {x.shape}: it has no "
                         f"elements there and {fn_name} has no identity; reduce a non-empty axis")


def sum(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """Sum over ``axis`` (int, tuple or None for all), optionally keeping reduced dims as 1.
    The sum of no elements is 0. ``dim``/``keepdim`` are accepted as PyTorch's spellings."""
    axis, keepdims = _axis_args("sum", axis, dim, keepdims, keepdim)
    x = as_tensor(x)
    return apply(S.Sum(normalize_axes("sum", axis, x.ndim), keepdims), x)


def max(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """Max over ``axis`` (int, tuple or None for all); ties share the gradient equally.

    numpy semantics: returns the values only, also with an axis (``torch.max(x, dim)``'s
    ``(values, indices)`` is ``max(x, dim=d), argmax(x, dim=d)``). An empty reduced axis raises
    ShapeError.
    """
    axis, keepdims = _axis_args("max", axis, dim, keepdims, keepdim)
    x = as_tensor(x)
    axes = normalize_axes("max", axis, x.ndim)
    _check_nonempty("max", x, axes)
    return apply(S.Max(axes, keepdims), x)


def mean(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """Mean over ``axis``: ``sum / count``; the mean of no elements is NaN (as numpy and torch)."""
    axis, keepdims = _axis_args("mean", axis, dim, keepdims, keepdim)
    x = as_tensor(x)
    axes = normalize_axes("mean", axis, x.ndim)
    count = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
    return sum(x, axes, keepdims) * (1.0 / count if count else float("nan"))


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


# === reduce: reductions, scans, linear algebra, sorting (ops in ops/reduce.py) =======================
# ``sum``, ``max``, ``mean``, ``_axis_args`` and ``_check_nonempty`` are in the reductions section above.
import string as _string  # noqa: E402

from .ops import reduce as RD  # noqa: E402


def _operand(fn_name, arg, value, like=None):
    """``value`` as a Tensor; an unsupported dtype (complex, object, str) names the function and the
    argument. A Python number adopts the floating dtype of ``like``."""
    if isinstance(value, Tensor):
        return value
    if like is not None and isinstance(value, numbers.Number) and like._data.dtype.kind == "f":
        return Tensor._wrap(np.asarray(value, dtype=like._data.dtype))
    return Tensor._wrap(to_array(value, what=f"{fn_name}: argument {arg}"))


def _alias(fn_name, name, value, default, torch_name, torch_value):
    """``value``, or PyTorch's spelling ``torch_value`` when given; giving both (``value`` not at its
    ``default``) is a TypeError. For arguments whose numpy default is not None (``axis=-1``)."""
    if torch_value is None:
        return value
    if value is not default and value != default:
        raise TypeError(f"{fn_name}: got {name}={value!r} and {torch_name}={torch_value!r}; pass one of "
                        f"them ({torch_name} is PyTorch's name for {name})")
    return torch_value


def _int_arg(fn_name, arg, value, low=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DTypeError(f"{fn_name}: {arg} must be an int, got {value!r}")
    if low is not None and value < low:
        raise ShapeError(f"{fn_name}: {arg} must be >= {low}, got {value}")
    return int(value)


def _one_axis(fn_name, axis, ndim):
    """``axis`` (one int) as a non-negative axis; a tuple is refused (the function takes one axis)."""
    if isinstance(axis, (tuple, list)):
        raise DTypeError(f"{fn_name}: axis must be a single int, got {axis!r}")
    if ndim == 0:
        raise ShapeError(f"{fn_name}: needs a tensor with at least 1 dimension, got a 0-d tensor")
    return normalize_axes(fn_name, axis, ndim)[0]


def min(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """Min over ``axis`` (int, tuple or None for all); ties share the gradient equally.

    numpy semantics: the values only, also with an axis (for torch's indices use ``argmin``). An
    empty reduced axis raises ShapeError.
    """
    axis, keepdims = _axis_args("min", axis, dim, keepdims, keepdim)
    x = _operand("min", "x", x)
    axes = normalize_axes("min", axis, x.ndim)
    _check_nonempty("min", x, axes)
    return apply(RD.Min(axes, keepdims), x)


def prod(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """Product over ``axis`` (int, tuple or None for all); the product of no elements is 1. The
    gradient is exact with zeros in the input (the product of the other elements)."""
    axis, keepdims = _axis_args("prod", axis, dim, keepdims, keepdim)
    x = _operand("prod", "x", x)
    return apply(RD.Prod(normalize_axes("prod", axis, x.ndim), keepdims), x)


def _ddof(fn_name, ddof, correction, unbiased):
    """numpy's ``ddof`` from one of ``ddof``, torch's ``correction`` or ``unbiased`` (default 0)."""
    given = {k: v for k, v in (("ddof", ddof), ("correction", correction), ("unbiased", unbiased))
             if v is not None}
    if len(given) > 1:
        raise TypeError(f"{fn_name}: got {', '.join(f'{k}={v!r}' for k, v in given.items())}; pass one "
                        f"of ddof (numpy), correction or unbiased (PyTorch)")
    if unbiased is not None:
        if not isinstance(unbiased, (bool, np.bool_)):
            raise DTypeError(f"{fn_name}: unbiased must be True or False, got {unbiased!r}")
        return 1 if unbiased else 0
    value = ddof if ddof is not None else correction if correction is not None else 0
    name = "ddof" if ddof is not None else "correction"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DTypeError(f"{fn_name}: {name} must be a number (0 for the population variance, 1 for the "
                         f"sample variance), got {value!r}")
    return value


def var(x, axis=None, ddof=None, keepdims=None, *, dim=None, keepdim=None, correction=None,
        unbiased=None):
    """Variance over ``axis``: ``sum((x - mean)**2) / (N - ddof)``, N the reduced count.

    numpy's default ``ddof=0`` (PyTorch defaults to ``correction=1``: pass ``ddof=1``,
    ``correction=1`` or ``unbiased=True`` for the sample variance). An empty reduction, or
    ``ddof >= N``, gives NaN or inf without an exception, as numpy and torch.
    """
    axis, keepdims = _axis_args("var", axis, dim, keepdims, keepdim)
    ddof = _ddof("var", ddof, correction, unbiased)
    x = _operand("var", "x", x)
    return apply(RD.Var(normalize_axes("var", axis, x.ndim), keepdims, ddof), x)


def std(x, axis=None, ddof=None, keepdims=None, *, dim=None, keepdim=None, correction=None,
        unbiased=None):
    """Standard deviation ``sqrt(var(x, ...))``, same arguments as ``var`` (numpy's ddof=0 default)."""
    axis, keepdims = _axis_args("std", axis, dim, keepdims, keepdim)
    ddof = _ddof("std", ddof, correction, unbiased)
    x = _operand("std", "x", x)
    return sqrt(apply(RD.Var(normalize_axes("std", axis, x.ndim), keepdims, ddof), x))


def _scan(fn_name, op_cls, x, axis, dim):
    axis, _ = _axis_args(fn_name, axis, dim, None, None)
    x = _operand(fn_name, "x", x)
    if axis is None:  # numpy: the flattened input
        x, axis = reshape(x, (-1,)), 0
    return apply(op_cls(_one_axis(fn_name, axis, x.ndim)), x)


def cumsum(x, axis=None, *, dim=None):
    """Running sum along ``axis`` (None: of the flattened input, numpy's default); same shape."""
    return _scan("cumsum", RD.CumSum, x, axis, dim)


def cumprod(x, axis=None, *, dim=None):
    """Running product along ``axis`` (None: flattened); gradients are exact with zeros in x."""
    return _scan("cumprod", RD.CumProd, x, axis, dim)


def diff(x, n=1, axis=-1, *, dim=None):
    """``n``-th forward difference along ``axis``: ``out[i] = x[i+1] - x[i]`` applied n times, so
    that axis has length ``max(len - n, 0)``; ``n=0`` returns x."""
    axis = _alias("diff", "axis", axis, -1, "dim", dim)
    x = _operand("diff", "x", x)
    n = _int_arg("diff", "n", n, low=0)
    axis = _one_axis("diff", axis, x.ndim)
    return x if n == 0 else apply(RD.Diff(n, axis), x)


# --- contractions ---
def _letters(count, avoid=""):
    free = [c for c in _string.ascii_letters if c not in avoid]
    if count > len(free):
        raise ShapeError(f"einsum: needs {count} distinct labels, more than the 52 letters available")
    return free[:count]


def _parse_einsum(subscripts, shapes):
    """Explicit, ellipsis-free subscripts for these operand shapes (numpy's rules: ``...`` stands for
    the leading dimensions, right-aligned across operands; the implicit output is the ``...``
    dimensions then the labels used once, in alphabetical order). Returns the canonical string."""
    if not isinstance(subscripts, str):
        raise DTypeError(f"einsum: subscripts must be a string such as 'ij,jk->ik', got {subscripts!r}")
    spec = subscripts.replace(" ", "")
    if spec.count("->") > 1 or ("-" in spec.replace("->", "")) or (">" in spec.replace("->", "")):
        raise ShapeError(f"einsum: subscripts {subscripts!r} must have the form 'ab,bc->ac' (at most "
                         f"one '->')")
    lhs, arrow, output = spec.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ShapeError(f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s), got "
                         f"{len(shapes)} operand(s)")
    for term in terms + [output]:
        rest = term.replace("...", "", 1)
        bad = sorted(set(c for c in rest if c not in _string.ascii_letters))
        if bad:
            raise ShapeError(f"einsum: subscripts {subscripts!r} contain {''.join(bad)!r}; labels are "
                             f"letters a-z, A-Z, and '...' (at most once per operand)")
    used = "".join(set(spec) & set(_string.ascii_letters))
    ellipsis_dims = []
    for term, shape in zip(terms, shapes):
        named = len(term.replace("...", ""))
        if ("..." in term and named > len(shape)) or ("..." not in term and named != len(shape)):
            raise ShapeError(f"einsum: operand {term!r} has {named} label(s) for a tensor of shape "
                             f"{shape} ({len(shape)} dimensions)")
        ellipsis_dims.append(len(shape) - named if "..." in term else 0)
    width = builtins.max(ellipsis_dims, default=0)
    broadcast = "".join(_letters(width, used))
    # an operand's '...' stands for the last e of the broadcast dimensions (right-aligned)
    inputs = [term.replace("...", broadcast[width - e:] if e else "")
              for term, e in zip(terms, ellipsis_dims)]
    if arrow:
        if "..." in output:
            output = output.replace("...", broadcast)
        elif width and builtins.any(ellipsis_dims):
            raise ShapeError(f"einsum: subscripts {subscripts!r}: the output needs '...' for the "
                             f"dimensions the inputs' '...' stand for")
        for c in output:
            if output.count(c) > 1:
                raise ShapeError(f"einsum: output label {c!r} repeats in {subscripts!r}")
            if c not in "".join(inputs):
                raise ShapeError(f"einsum: output label {c!r} of {subscripts!r} is in no operand")
    else:
        joined = "".join(terms)
        output = broadcast + "".join(sorted(c for c in set(joined) if c in _string.ascii_letters
                                            and joined.count(c) == 1))
    sizes = {}
    for term, shape in zip(inputs, shapes):
        for c in set(term):
            within = {n for d, n in zip(term, shape) if d == c}
            if len(within) > 1:
                raise ShapeError(f"einsum: label {c!r} repeats in operand {term!r} over dimensions of "
                                 f"different sizes, shape {shape}")
            n = within.pop()
            if n != 1 and sizes.setdefault(c, n) != n:
                raise ShapeError(f"einsum: label {c!r} stands for dimensions of sizes {sizes[c]} and {n} "
                                 f"(only size 1 broadcasts)")
    return ",".join(inputs) + "->" + output


def einsum(subscripts, *operands, optimize=False):
    """Einstein summation, numpy's ``einsum(subscripts, *operands)`` as one node.

    ``subscripts`` labels each operand's dimensions with letters: ``'ij,jk->ik'`` (matrix product),
    ``'ii->'`` (trace), ``'ii->i'`` (diagonal), ``'bij,bjk->bik'`` (batched), ``'...ij->...ji'``
    (``...`` for leading dimensions, broadcast across operands); without ``->`` the output is the
    ``...`` dimensions then the labels used exactly once, alphabetically. Size-1 dimensions
    broadcast. ``optimize``: numpy's contraction-order search (True for BLAS on large operands).
    """
    if not operands:
        raise ShapeError("einsum: needs at least one operand")
    tensors = [_operand("einsum", f"operands[{k}]", t) for k, t in enumerate(operands)]
    canonical = _parse_einsum(subscripts, [t.shape for t in tensors])
    return apply(RD.Einsum(canonical, bool(optimize)), *tensors)


def _contract(a, b, axes_a, axes_b):
    """Sum over the paired axes of a and b -> a's other axes then b's. numpy's tensordot algorithm:
    both operands transposed and reshaped to matrices (views, or one copy when the transpose is not
    contiguous), then one matmul, whose rules are BLAS products too."""
    free_a = [d for d in range(a.ndim) if d not in axes_a]
    free_b = [d for d in range(b.ndim) if d not in axes_b]
    k = int(np.prod([a.shape[d] for d in axes_a]))
    left = _transposed(a, free_a + list(axes_a))
    right = _transposed(b, list(axes_b) + free_b)
    product = matmul(reshape(left, (-1, k)), reshape(right, (k, -1)))
    return reshape(product, tuple(a.shape[d] for d in free_a) + tuple(b.shape[d] for d in free_b))


def _transposed(x, axes):
    """``x`` with its axes in this order (no node when the order is already the identity)."""
    return x if axes == list(range(x.ndim)) else transpose(x, tuple(axes))


def tensordot(a, b, axes=2):
    """Sum products over the given axes (numpy's ``tensordot``): ``axes=N`` pairs the last N axes of
    a with the first N of b; ``axes=(axes_a, axes_b)`` pairs them explicitly (ints or sequences of
    equal length). Result: a's remaining axes, then b's."""
    a = _operand("tensordot", "a", a)
    b = _operand("tensordot", "b", b, a)
    if isinstance(axes, numbers.Integral) and not isinstance(axes, bool):
        if not 0 <= axes <= builtins.min(a.ndim, b.ndim):
            raise ShapeError(f"tensordot: axes={axes} must lie in [0, {builtins.min(a.ndim, b.ndim)}] for "
                             f"shapes {a.shape} and {b.shape}")
        axes_a, axes_b = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    elif isinstance(axes, (tuple, list)) and len(axes) == 2:
        pair = [list(p) if isinstance(p, (tuple, list)) else [p] for p in axes]
        if len(pair[0]) != len(pair[1]):
            raise ShapeError(f"tensordot: axes {axes!r} pair {len(pair[0])} axes of a with "
                             f"{len(pair[1])} of b; give as many for each")
        axes_a, axes_b = [], []
        for lst, t, out in ((pair[0], a, axes_a), (pair[1], b, axes_b)):
            for d in lst:
                out.append(normalize_axes("tensordot", _int_arg("tensordot", "axes", d), t.ndim)[0])
            if len(set(out)) != len(out):
                raise ShapeError(f"tensordot: axes {axes!r} repeat an axis")
    else:
        raise DTypeError(f"tensordot: axes must be an int or a pair of int sequences, got {axes!r}")
    for i, j in zip(axes_a, axes_b):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(f"tensordot: axis {i} of a {a.shape} has size {a.shape[i]}, axis {j} of b "
                             f"{b.shape} has size {b.shape[j]}; paired axes must have equal sizes")
    return _contract(a, b, axes_a, axes_b)


def dot(a, b):
    """numpy's ``dot``: a 0-d operand multiplies; 1-d and 2-d operands (and an N-d with a 1-d)
    are ``matmul``; otherwise sums over a's last axis and b's second-to-last, giving
    ``a.shape[:-1] + b.shape[:-2] + b.shape[-1:]``."""
    a = _operand("dot", "a", a)
    b = _operand("dot", "b", b, a)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    k = 0 if b.ndim == 1 else b.ndim - 2
    if a.shape[-1] != b.shape[k]:
        raise ShapeError(f"dot: shapes {a.shape} and {b.shape} are not aligned: the last axis of a "
                         f"({a.shape[-1]}) must match axis {k} of b ({b.shape[k]})")
    if a.ndim <= 2 and b.ndim <= 2 or a.ndim == 1 or b.ndim == 1:
        return matmul(a, b)
    return _contract(a, b, [a.ndim - 1], [k])


def inner(a, b):
    """numpy's ``inner``: sum over the last axes of a and b (a 0-d operand multiplies); result
    ``a.shape[:-1] + b.shape[:-1]``."""
    a = _operand("inner", "a", a)
    b = _operand("inner", "b", b, a)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"inner: the last axes of {a.shape} and {b.shape} differ ({a.shape[-1]} and "
                         f"{b.shape[-1]})")
    return _contract(a, b, [a.ndim - 1], [b.ndim - 1])


def outer(a, b):
    """numpy's ``outer``: both operands flattened, ``out[i, j] = a[i] * b[j]`` (M, N)."""
    a = _operand("outer", "a", a)
    b = _operand("outer", "b", b, a)
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


def kron(a, b):
    """Kronecker product (numpy's ``kron``): the shorter shape is padded with leading 1s, and
    ``out[i*nb + j] = a[i] * b[j]`` along every axis, so out.shape = a.shape * b.shape."""
    a = _operand("kron", "a", a)
    b = _operand("kron", "b", b, a)
    ndim = builtins.max(a.ndim, b.ndim)
    sa = (1,) * (ndim - a.ndim) + a.shape
    sb = (1,) * (ndim - b.ndim) + b.shape
    spread_a = reshape(a, tuple(n for m in sa for n in (m, 1)))  # (a0, 1, a1, 1, ...)
    spread_b = reshape(b, tuple(n for m in sb for n in (1, m)))  # (1, b0, 1, b1, ...)
    return reshape(spread_a * spread_b, tuple(m * n for m, n in zip(sa, sb)))


# --- diagonals and triangles ---
def diagonal(x, offset=0, axis1=0, axis2=1, *, dim1=None, dim2=None):
    """The ``offset``-th diagonal over ``axis1``/``axis2`` (torch: ``dim1``/``dim2``): those axes
    are removed and the diagonal (``x[..., i, i + offset]``) is appended as the last axis."""
    axis1 = _alias("diagonal", "axis1", axis1, 0, "dim1", dim1)
    axis2 = _alias("diagonal", "axis2", axis2, 1, "dim2", dim2)
    x = _operand("diagonal", "x", x)
    if x.ndim < 2:
        raise ShapeError(f"diagonal: needs a tensor with at least 2 dimensions, got shape {x.shape}")
    offset = _int_arg("diagonal", "offset", offset)
    a1 = normalize_axes("diagonal", _int_arg("diagonal", "axis1", axis1), x.ndim)[0]
    a2 = normalize_axes("diagonal", _int_arg("diagonal", "axis2", axis2), x.ndim)[0]
    if a1 == a2:
        raise ShapeError(f"diagonal: axis1 and axis2 must differ, both are {a1}")
    return apply(RD.Diagonal(offset, a1, a2), x)


def trace(x, offset=0, axis1=0, axis2=1):
    """Sum of the ``offset``-th diagonal over ``axis1``/``axis2`` (numpy's ``trace``): a scalar for
    a matrix, the remaining axes otherwise."""
    return sum(diagonal(x, offset, axis1, axis2), axis=-1)


def diag(v, k=0):
    """numpy's ``diag``: a 1-d ``v`` (n,) -> an (n + |k|, n + |k|) matrix with v on the k-th
    diagonal; a 2-d ``v`` -> its k-th diagonal."""
    v = _operand("diag", "v", v)
    k = _int_arg("diag", "k", k)
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ShapeError(f"diag: v must be 1-d (to build a matrix) or 2-d (to take a diagonal), got "
                         f"shape {v.shape}")
    n = v.shape[0]
    size = n + builtins.abs(k)
    index = (np.arange(n) + builtins.max(-k, 0), np.arange(n) + builtins.max(k, 0))
    return apply(S.IndexAdd((size, size), index, False), v)


def _triangle(fn_name, x, k, diagonal_, lower):
    k = _alias(fn_name, "k", k, 0, "diagonal", diagonal_)
    x = _operand(fn_name, "x", x)
    k = _int_arg(fn_name, "k", k)
    if x.ndim == 0:
        raise ShapeError(f"{fn_name}: needs a tensor with at least 1 dimension, got a 0-d tensor")
    rows_cols = x.shape[-2:]
    mask = np.tri(*rows_cols, k=k, dtype=bool) if lower else ~np.tri(*rows_cols, k=k - 1, dtype=bool)
    return where(mask, x, Tensor._wrap(np.zeros((), x.dtype)))


def tril(x, k=0, *, diagonal=None):
    """Lower triangle of the last two axes: elements above the k-th diagonal set to 0 (numpy's
    ``tril``; a 1-d x is broadcast to a square matrix first, as numpy). torch's ``diagonal`` = k."""
    return _triangle("tril", x, k, diagonal, lower=True)


def triu(x, k=0, *, diagonal=None):
    """Upper triangle of the last two axes: elements below the k-th diagonal set to 0."""
    return _triangle("triu", x, k, diagonal, lower=False)


# --- sorting ---
def _sort_args(fn_name, x, axis, dim, descending):
    axis = _alias(fn_name, "axis", axis, -1, "dim", dim)
    x = _operand(fn_name, "x", x)
    if not isinstance(descending, (bool, np.bool_)):
        raise DTypeError(f"{fn_name}: descending must be True or False, got {descending!r}")
    if axis is None:  # numpy: the flattened input
        x, axis = reshape(x, (-1,)), 0
    return x, _one_axis(fn_name, axis, x.ndim), bool(descending)


def sort(x, axis=-1, descending=False, stable=True, *, dim=None):
    """Values sorted along ``axis`` (None: the flattened input), ascending unless ``descending``.
    The sort is stable (``stable`` is accepted for PyTorch and ignored). Returns the values only
    (torch's ``(values, indices)`` is ``sort(x), argsort(x)``); the gradient of each sorted position
    goes to the element that was moved there."""
    x, axis, descending = _sort_args("sort", x, axis, dim, descending)
    return apply(RD.Sort(axis, descending), x)


def argsort(x, axis=-1, descending=False, stable=True, *, dim=None):
    """int64 positions that sort ``x`` along ``axis`` (stable: tied elements keep their order, also
    when ``descending``). Not differentiable."""
    x, axis, descending = _sort_args("argsort", x, axis, dim, descending)
    return apply(RD.ArgSort(axis, descending), x)


def _arg_reduce(fn_name, op_cls, x, axis, keepdims, dim, keepdim):
    axis, keepdims = _axis_args(fn_name, axis, dim, keepdims, keepdim)
    x = _operand(fn_name, "x", x)
    if axis is not None:
        axis = _one_axis(fn_name, axis, x.ndim)
    _check_nonempty(fn_name, x, None if axis is None else (axis,))
    return apply(op_cls(axis, keepdims), x)


def argmax(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """int64 position of the first maximum along ``axis`` (an int; None: in the flattened input).
    Not differentiable; an empty axis raises ShapeError."""
    return _arg_reduce("argmax", RD.ArgMax, x, axis, keepdims, dim, keepdim)


def argmin(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """int64 position of the first minimum along ``axis`` (an int; None: in the flattened input)."""
    return _arg_reduce("argmin", RD.ArgMin, x, axis, keepdims, dim, keepdim)
# === end of reduce ====================================================================================
