"""User-facing functions: thin wrappers that validate arguments and apply a primitive, and composite
ops built from primitives (they need no gradient rule of their own).

Arguments. Every tensor argument may be a Tensor, an ndarray, a numpy or Python number, or a (nested)
list or tuple of numbers; a (nested) list or tuple holding Tensors is stacked into one, differentiably
(``as_tensor``). tinygraph holds float32/float64, integers and bool: an argument of any other dtype
(complex, object, str) raises ``DTypeError`` naming the function and the argument.

Dtype promotion (PyTorch's rule, with float64 as the default float). Dtypes fall in three categories,
bool < integer < float, and operands in three ranks: Tensor > ndarray or numpy scalar > Python number
or list. The result has the highest category present; within it, the dtypes of the highest-ranked
operands of that category decide (numpy's ``result_type`` among them). So:

- a Tensor's float dtype wins over a non-Tensor operand of the same or lower category: float32 tensor
  + float64 ndarray, list or number -> float32 (numpy would give float64 for the ndarray);
- two Tensors promote with ``result_type``: float32 + float64 -> float64;
- an integer or bool Tensor meeting a float takes the float's dtype: int64 tensor + float32 tensor
  -> float32 (numpy: float64), int64 tensor + 0.5 -> float64, bool tensor + 2 -> int64;
- with no Tensor, ndarrays outrank numbers: float32 ndarray + 0.5 -> float32; 1.0 + 2.0 -> float64.

An integer operand cast to a narrower integer dtype must keep its values (int8 tensor + 1000 raises
``DTypeError``, as PyTorch refuses the overflow). Float-valued functions (``sin``, ``exp``,
``reciprocal`` ...) compute integer and bool inputs in float64.
"""
import builtins
import numbers
import sys

import numpy as np

from .errors import DTypeError, ShapeError
from .ops import apply
from .ops import fused as FU
from .ops import head as HD
from .ops import math as M
from .ops import shape as S
from .tensor import Tensor


def as_tensor(value, like=None, *, fn=None, arg=None):
    """``value`` (Tensor, ndarray, number, nested list) as a Tensor; a Tensor is returned as it is.

    A non-Tensor meeting a Tensor ``like`` takes like's dtype when its category (bool < integer <
    float) is not higher (the promotion rule in this module's docstring): a float32 ``like`` makes
    0.5, [1, 2] and a float64 ndarray float32. ``like`` that is not a Tensor is ignored. ndarrays are
    copied (a later write to the caller's array does not reach the graph).

    A (nested) list or tuple holding Tensors is stacked along new leading axes with the ``stack`` op,
    so gradients flow back to each Tensor: ``as_tensor([x, x])`` has shape (2,) + x.shape and
    ``sum([x, x])`` has gradient 2 in x. This is what ``jnp.asarray`` does with traced arrays;
    ``torch.tensor`` instead copies the values into a constant (and ``tg.tensor`` does too). Numbers
    in such a list become tensors of the same shape only if that shape is () (stacking needs equal
    shapes), in the Tensors' dtype.

    ``fn`` and ``arg`` name the function and the argument in errors; left None, they are read off the
    calling function in this module (its name, and the parameter holding ``value``) when an error is
    raised, so ``x = as_tensor(x)`` inside ``sum`` reports ``sum: argument x ...``.
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (list, tuple)) and _holds_tensor(value):
        return _stack_nested(fn, arg, value)
    array = _to_array(fn, arg, value)
    if isinstance(like, Tensor) and _CATEGORY[array.dtype.kind] <= _CATEGORY[like._data.dtype.kind] \
            and array.dtype != like._data.dtype:
        array = _cast(fn, arg, array, like._data.dtype, value)
    return Tensor._wrap(array)


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}
_HELD = "tinygraph holds float32/float64, integers or bool"


def _names(fn, arg, value):
    """``fn: argument arg`` for an error message; a None ``fn`` or ``arg`` is read off the frames:
    the first caller outside the conversion helpers, when it is a function of this module (its name;
    the parameter bound to ``value``, or ``name[i][j]`` for an item of a (nested) list parameter),
    else the user's own call of ``as_tensor``. Only runs when an error is raised."""
    if fn is None or arg is None:
        frame = sys._getframe(1)
        while frame is not None and frame.f_code in _HELPER_CODES:
            frame = frame.f_back
        found_fn, found_arg = "as_tensor", "value"
        if frame is not None and frame.f_globals.get("__name__") == __name__:
            scopes = [frame.f_back, frame] if frame.f_code.co_name.startswith("<") else [frame]
            found_fn = scopes[0].f_code.co_name  # a comprehension's function is its caller
            found_arg = next((path for scope in scopes for name, local in scope.f_locals.items()
                              for path in [_path(name, local, value)] if path), found_arg)
        fn, arg = fn or found_fn, arg or found_arg
    return f"{fn}: argument {arg}"


def _path(name, local, value, depth=4):
    """``name``, or ``name[i]...`` down to the item of (nested) lists that is ``value``, or None."""
    if local is value:
        return name
    if depth and isinstance(local, (list, tuple)) and not name.startswith("."):
        for i, item in enumerate(local):
            path = _path(f"{name}[{i}]", item, value, depth - 1)
            if path:
                return path
    return None


def _to_array(fn, arg, value):
    """A new ndarray of ``value`` (not a Tensor), or a DTypeError/ShapeError naming fn and arg."""
    try:
        array = np.array(value)
    except (ValueError, TypeError, OverflowError) as exc:  # ragged nesting, an unconvertible object
        raise ShapeError(f"{_names(fn, arg, value)} cannot be converted to an array ({exc}); pass a "
                         f"number, an ndarray, a Tensor or a list of equal-length lists") from None
    if array.dtype.kind not in _CATEGORY:
        what = "" if isinstance(value, np.ndarray) else f" (a {type(value).__name__})"
        raise DTypeError(f"{_names(fn, arg, value)} has dtype {array.dtype}{what}, which is not "
                         f"supported; {_HELD}")
    return array


def _cast(fn, arg, array, dtype, value=None):
    """``array`` (converted from ``value``) as ``dtype``; an integer cast must keep every value (no
    silent wrap-around)."""
    cast = array.astype(dtype)
    if dtype.kind in "iu" and not np.array_equal(cast, array):
        named = _names(fn, arg, array if value is None else value)
        raise DTypeError(f"{named} holds values outside the range of {dtype} (from "
                         f"{array.min()} to {array.max()}), the dtype of the tensor it meets; convert "
                         f"the tensor to a wider dtype first")
    return cast


def _holds_tensor(seq):
    """Whether a (nested) list or tuple holds a Tensor anywhere."""
    for item in seq:
        if isinstance(item, Tensor) or isinstance(item, (list, tuple)) and _holds_tensor(item):
            return True
    return False


def _stack_nested(fn, arg, seq):
    """A (nested) sequence holding Tensors as one Tensor, stacked differentiably (see ``as_tensor``)."""
    if not seq:
        raise ShapeError(f"{_names(fn, arg, seq)} holds an empty list beside tensors")
    parts = [_stack_nested(fn, arg, item) if isinstance(item, (list, tuple)) and _holds_tensor(item)
             else item for item in seq]
    tensors = [p for p in parts if isinstance(p, Tensor)]
    dtype = np.result_type(*(t._data.dtype for t in tensors))
    parts = [as_tensor(p, tensors[0], fn=fn, arg=arg) for p in parts]
    parts = [p if p._data.dtype == dtype else astype(p, dtype) for p in parts]
    shapes = [p.shape for p in parts]
    if len(set(shapes)) > 1:
        raise ShapeError(f"{_names(fn, arg, seq)} is a list of tensors of shapes {shapes}; a list "
                         f"holding tensors is stacked, which needs one shape")
    return apply(S.Stack(0, None), *parts)


def _codes(code):
    """``code`` and the code objects nested in it (its comprehensions)."""
    yield code
    for const in code.co_consts:
        if hasattr(const, "co_consts"):
            yield from _codes(const)


_HELPER_CODES = {c for f in (as_tensor, _names, _to_array, _cast, _stack_nested) for c in _codes(f.__code__)}


def promote(fn, names, values):
    """``values`` (anything ``as_tensor`` takes) as Tensors of one dtype family, by the promotion
    rule in this module's docstring. Tensors are returned as they are unless their category is below
    the result's (an integer Tensor meeting a float is cast, not differentiably: integers have no
    gradient); Tensors of one category are left for numpy's ``result_type`` inside the op."""
    items, top, deciding = [], (-1, -1), []
    for name, value in zip(names, values):
        if isinstance(value, Tensor) or isinstance(value, (list, tuple)) and _holds_tensor(value):
            rank = 2  # a list holding Tensors is stacked into a Tensor
        else:
            rank = 1 if isinstance(value, (np.ndarray, np.generic)) else 0
        value = as_tensor(value, fn=fn, arg=name)
        dtype = value._data.dtype
        key = (_CATEGORY[dtype.kind], rank)  # the category decides first, then the rank
        if key > top:
            top, deciding = key, [dtype]
        elif key == top:
            deciding.append(dtype)
        items.append((value, key))
    dtype = deciding[0] if len(deciding) == 1 else np.result_type(*deciding)
    out = []
    for (t, (category, rank)), name in zip(items, names):
        if category < top[0] or rank < 2 and t._data.dtype != dtype:
            t = astype(t, dtype) if rank == 2 else Tensor._wrap(_cast(fn, name, t._data, dtype))
        out.append(t)
    return out


_PYTHON_NUMBERS = (float, int)  # exact types: not bool, not numpy scalars (the general path)


def _binary(op, names=("x", "y")):
    def fn(x, y):
        # the common cases first: two Tensors of one dtype (numpy shares dtype objects), a float
        # Tensor and a Python float or int (which takes the Tensor's dtype)
        if isinstance(x, Tensor):
            if isinstance(y, Tensor):
                if x._data.dtype is y._data.dtype:
                    return apply(op, x, y)
            elif type(y) in _PYTHON_NUMBERS and x._data.dtype.kind == "f":
                return apply(op, x, Tensor._wrap(np.array(y, x._data.dtype)))
        elif type(x) in _PYTHON_NUMBERS and isinstance(y, Tensor) and y._data.dtype.kind == "f":
            return apply(op, Tensor._wrap(np.array(x, y._data.dtype)), y)
        return apply(op, *promote(op.name, names, (x, y)))
    fn.__name__ = fn.__qualname__ = op.name
    fn.__doc__ = f"Elementwise ``{op.name}`` with numpy broadcasting and the module's dtype promotion."
    return fn


def _unary(op, floats=False):
    """The function applying the unary ``op``; ``floats``: integer and bool inputs are computed in
    float64 (numpy would give float16 for bool, and integers for ``reciprocal``)."""
    def fn(x):
        if not isinstance(x, Tensor):
            x = as_tensor(x, fn=op.name, arg="x")
        if floats and x._data.dtype.kind != "f":
            x = astype(x, np.float64)
        return apply(op, x)
    fn.__name__ = fn.__qualname__ = op.name
    fn.__doc__ = f"Elementwise ``{op.name}``; output has the input's shape and (floating) dtype."
    return fn


add, sub, mul, div = (_binary(op()) for op in (M.Add, M.Sub, M.Mul, M.Div))
maximum, _pow_tensors = _binary(M.Maximum()), _binary(M.Pow())
lt, le, gt, ge, eq, ne = (_binary(op()) for op in (
    M.Less, M.LessEqual, M.Greater, M.GreaterEqual, M.Equal, M.NotEqual))
neg, relu, abs, sign = (_unary(op()) for op in (M.Neg, M.Relu, M.Abs, M.Sign))
exp, log, tanh, sigmoid, sqrt = (_unary(op(), floats=True) for op in (
    M.Exp, M.Log, M.Tanh, M.Sigmoid, M.Sqrt))
_matmul = _binary(M.MatMul())


def pow(x, exponent):
    """``x ** exponent``; a Python-number exponent uses the cheaper ``pow_const`` rule."""
    if isinstance(exponent, numbers.Real):
        return apply(M.PowConst(exponent), as_tensor(x, fn="pow", arg="x"))
    return _pow_tensors(x, exponent)


def matmul(x, y):
    """(..., m, k) @ (..., k, n) -> (..., m, n), numpy semantics (1-D operands are promoted)."""
    return _matmul(x, y)


def where(cond, x, y):
    """Pick from ``x`` where ``cond`` is true, else from ``y`` (all three broadcast together)."""
    x, y = promote("where", ("x", "y"), (x, y))
    cond = as_tensor(cond, fn="where", arg="condition")
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
def _max_shift(x, axes):
    """The max over ``axes`` (kept as size-1 dims), as a constant, 0 where it is not finite: what
    exp-sums are shifted by so they cannot overflow."""
    shift = np.max(x._data, axis=axes, keepdims=True) if x.size else np.zeros(
        tuple(1 if a in axes else n for a, n in enumerate(x.shape)), x.dtype)
    return Tensor._wrap(np.where(np.isfinite(shift), shift, 0).astype(x.dtype))


def _log_sum_exp_shifted(x, axes):
    """``(z, log(sum(exp(z))))`` with ``z = x - max``: the log-normalizer relative to the max."""
    z = x - _max_shift(x, axes)
    return z, log(sum(exp(z), axes, keepdims=True))


def logsumexp(x, axis=-1, keepdims=False):
    """log(sum(exp(x))) over ``axis``, shifted by the (constant) max so it never overflows."""
    x = as_tensor(x)
    axes = normalize_axes("logsumexp", axis, x.ndim)
    axes = tuple(range(x.ndim)) if axes is None else axes
    shift = _max_shift(x, axes)
    out = log(sum(exp(x - shift), axes, keepdims=True)) + shift
    return out if keepdims else reshape(out, tuple(n for a, n in enumerate(out.shape) if a not in axes))


def log_softmax(x, axis=-1):
    """x - logsumexp(x): log-probabilities, numerically stable.

    Computed as ``z - log(sum(exp(z)))`` with ``z = x - max(x)``: the max cancels exactly, so equal
    logits of 1e16 give log(1/2), where ``x - logsumexp(x)`` would round the log-sum away (float64
    carries 16 digits).
    """
    x = as_tensor(x)
    axes = normalize_axes("log_softmax", axis, x.ndim)
    z, log_norm = _log_sum_exp_shifted(x, tuple(range(x.ndim)) if axes is None else axes)
    return z - log_norm


def softmax(x, axis=-1):
    """Probabilities along ``axis``: ``e / sum(e)`` with ``e = exp(x - max(x))`` (2 ulps where
    ``exp(log_softmax(x))`` loses |log p| ulps, 30 for p = 1e-13)."""
    x = as_tensor(x)
    axes = normalize_axes("softmax", axis, x.ndim)
    axes = tuple(range(x.ndim)) if axes is None else axes
    e = exp(x - _max_shift(x, axes))
    return e / sum(e, axes, keepdims=True)


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


# --- elementwise math (tinygraph.ops.elementwise) and numpy/PyTorch aliases ---------------------------
from .ops import elementwise as EW  # noqa: E402

sin, cos, tan, arcsin, arccos, arctan = (_unary(op(), floats=True) for op in (
    EW.Sin, EW.Cos, EW.Tan, EW.Arcsin, EW.Arccos, EW.Arctan))
sinh, cosh, arcsinh, arccosh, arctanh = (_unary(op(), floats=True) for op in (
    EW.Sinh, EW.Cosh, EW.Arcsinh, EW.Arccosh, EW.Arctanh))
exp2, expm1, log2, log10, log1p, reciprocal = (_unary(op(), floats=True) for op in (
    EW.Exp2, EW.Expm1, EW.Log2, EW.Log10, EW.Log1p, EW.Reciprocal))
square, floor, ceil = (_unary(op()) for op in (EW.Square, EW.Floor, EW.Ceil))
isnan, isinf, isfinite = (_unary(op()) for op in (EW.IsNan, EW.IsInf, EW.IsFinite))
arctan2 = _binary(EW.Arctan2(), names=("y", "x"))
hypot, logaddexp, mod, minimum, fmin, fmax = (_binary(op()) for op in (
    EW.Hypot, EW.LogAddExp, EW.Mod, EW.Minimum, EW.Fmin, EW.Fmax))
arctan2.__doc__ = "The angle of the point (x, y), in (-pi, pi]: numpy's ``arctan2(y, x)``, broadcasting."
logaddexp.__doc__ = ("log(exp(x) + exp(y)) without overflow, broadcasting; gradients sigmoid(x - y) and "
                     "sigmoid(y - x).")
mod.__doc__ = ("``x % y`` with y's sign (numpy's ``mod``, Python's ``%``), broadcasting; gradients 1 "
               "and -floor(x / y) away from the jumps at integer x / y.")
minimum.__doc__ = "Elementwise min (NaN propagates), broadcasting; ties split the gradient equally."
fmin.__doc__ = "Elementwise min ignoring NaN, broadcasting; ties split the gradient equally."
fmax.__doc__ = "Elementwise max ignoring NaN, broadcasting; ties split the gradient equally."


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """NaN -> ``nan``, +inf -> ``posinf``, -inf -> ``neginf`` (None: the dtype's largest/smallest
    finite value), as numpy. Output has x's shape and dtype; the gradient passes where x is finite
    and is 0 where a value was replaced."""
    x = as_tensor(x, fn="nan_to_num", arg="x")
    for name, value in (("nan", nan), ("posinf", posinf), ("neginf", neginf)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise DTypeError(f"nan_to_num: {name} must be a real number or None, got {value!r}")
    return apply(EW.NanToNum(float(nan), None if posinf is None else float(posinf),
                             None if neginf is None else float(neginf)), x)


# numpy's names and PyTorch's short names for the same functions
fabs = absolute = abs
negative = neg
power = pow
multiply = mul
subtract = sub
divide = true_divide = div
remainder = mod
atan2 = arctan2
asin, acos, atan, asinh, acosh, atanh = arcsin, arccos, arctan, arcsinh, arccosh, arctanh
clamp = clip
# --- end of elementwise math ---------------------------------------------------------------------------
