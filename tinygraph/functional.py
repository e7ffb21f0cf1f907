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

from .errors import AnomalyError, DTypeError, ShapeError
from .modes import is_anomaly_enabled
from .ops import apply
from .ops import fused as FU
from .ops import head as HD
from .ops import math as M
from .ops import shape as S
from .tensor import Tensor, to_array
from .tracing import RECORDERS


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
    tensor = Tensor._wrap(array)
    if RECORDERS and isinstance(value, np.ndarray):   # tinygraph.compile: copied from an input buffer?
        RECORDERS[-1].leaf(tensor, value)
    return tensor


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
        given, value = value, as_tensor(value, fn=fn, arg=name)
        dtype = value._data.dtype
        key = (_CATEGORY[dtype.kind], rank)  # the category decides first, then the rank
        if key > top:
            top, deciding = key, [dtype]
        elif key == top:
            deciding.append(dtype)
        items.append((value, key, given))
    dtype = deciding[0] if len(deciding) == 1 else np.result_type(*deciding)
    out = []
    for (t, (category, rank), given), name in zip(items, names):
        if category < top[0] or rank < 2 and t._data.dtype != dtype:
            if rank == 2:
                t = astype(t, dtype)
            else:
                t = Tensor._wrap(_cast(fn, name, t._data, dtype))
                if RECORDERS and isinstance(given, np.ndarray):   # tinygraph.compile (as in as_tensor)
                    RECORDERS[-1].leaf(t, given)
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
    fn.__doc__ = (f"Elementwise ``{op.name}`` of x and y broadcast together (numpy's rule; shapes that do not "
                  f"broadcast raise ShapeError naming both), " + (
                      "in the dtype of this module's promotion rule." if op.differentiable else
                      "compared in the dtype of this module's promotion rule: a bool output, not "
                      "differentiable."))
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
    fn.__doc__ = (f"Elementwise ``{op.name}``: x's shape and "
                  + ("a floating dtype (integer and bool x are computed in float64)." if floats else "dtype.")
                  + ("" if op.differentiable else " Not differentiable: piecewise constant."))
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
    """The elements of ``x`` (in C order) with ``shape``: an int or a tuple of ints, one of which may
    be -1 for the size the others leave."""
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    shape = tuple(_int("reshape", "shape", n, low=-1) for n in shape)
    if shape.count(-1) > 1:
        raise ShapeError(f"reshape: shape {shape} has more than one -1; one -1 may stand for the rest")
    return apply(S.Reshape(shape), _input("reshape", x))


def transpose(x, axes=None):
    """Permute axes: axis ``axes[k]`` of ``x`` becomes axis k; ``None`` reverses them (``x.T``)."""
    x = _input("transpose", x)
    axes = tuple(reversed(range(x.ndim))) if axes is None else _permutation("transpose", axes, x.shape)
    return apply(S.Transpose(axes), x)


def swapaxes(x, axis1, axis2):
    """``x`` with axes ``axis1`` and ``axis2`` exchanged (negative axes count from the end): (2, 3, 4)
    with 0, -1 gives (4, 3, 2). An axis out of range raises ShapeError."""
    x = as_tensor(x)
    axes = list(range(x.ndim))
    a, b = normalize_axes("swapaxes", axis1, x.ndim)[0], normalize_axes("swapaxes", axis2, x.ndim)[0]
    axes[a], axes[b] = axes[b], axes[a]
    return apply(S.Transpose(tuple(axes)), x)


def broadcast_to(x, shape):
    """``x`` repeated to ``shape`` by numpy's broadcasting rule (aligned from the right, size-1 axes
    stretched, new axes in front); the gradient sums back over the broadcast axes. A shape ``x`` does
    not broadcast to raises ShapeError."""
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


class _Unset:
    """The default of an argument with a numpy and a PyTorch spelling (``axis`` and ``dim``): the
    spelling not given."""
    def __repr__(self): return "<not given>"


_UNSET = _Unset()


def concat(tensors, axis=0, *, dim=_UNSET):
    """Join along an existing ``axis`` (PyTorch: ``dim``); ``axis`` None joins the flattened tensors.
    ``concat``, ``concatenate`` and ``cat`` are this one function."""
    tensors = _as_tensors("concat", tensors)
    axis = _one_of("concat", axis, dim, default=0)
    if axis is None:
        tensors, axis = [reshape(t, (-1,)) for t in tensors], 0
    return apply(S.Concat(_axis("concat", axis, tensors[0].ndim)), *tensors)


def stack(tensors, axis=0, out=None, assume_filled=False):
    """Join same-shaped tensors along a new ``axis`` (one node).

    ``out``: an ndarray of the stacked shape to write into, as in numpy; inputs that are already
    views of their place in it cost no memory. ``assume_filled=True`` (with ``out``) is a promise,
    like numpy's ``assume_unique``: every input *is* its slice of ``out``, written there in place by
    the op that made it at every run of the graph (a recurrent layer's slab rows), so the forward
    copies nothing (T copy calls fewer). Checking it costs what it saves, so only anomaly mode
    (``tg.detect_anomaly``) checks it.
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
        if assume_filled and is_anomaly_enabled():
            _check_filled(tensors, axis, out)
    elif assume_filled:
        raise ValueError("stack: assume_filled=True needs out= (the buffer the inputs already live in)")
    return apply(S.Stack(axis, out, assume_filled), *tensors)


def _check_filled(tensors, axis, out):
    """Each tensor's array is exactly its slice of ``out`` along ``axis``: same memory, shape, strides."""
    lead = (slice(None),) * axis
    for k, t in enumerate(tensors):
        place, array = out[lead + (k,)], t._data
        if (array.ctypes.data, array.strides) != (place.ctypes.data, place.strides):
            raise AnomalyError(f"stack(assume_filled=True): input {k} {t.shape} is not the view "
                               f"out[{', '.join([':'] * axis + [str(k)])}] of out {out.shape}; "
                               f"without assume_filled its values are copied into out")


def _check_out(op_name, out, shape, dtype):
    """``out`` must be an ndarray of exactly the result's shape and dtype."""
    if not isinstance(out, np.ndarray) or out.shape != tuple(shape) or out.dtype != dtype:
        got = f"{out.shape} {out.dtype}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ShapeError(f"{op_name}: out must be an ndarray of the result's shape {tuple(shape)} and "
                         f"dtype {dtype}, got {got}")


def split(x, indices_or_sections, axis=0, *, dim=_UNSET):
    """numpy's ``split`` along ``axis`` (PyTorch: ``dim``): an int N gives N equal parts (an error if
    they cannot be equal: see ``array_split``); a list of indices cuts before each, as slices do
    (``[2, 5]`` gives ``x[:2], x[2:5], x[5:]``; negative indices count from the end). Each part is a
    ``getitem`` of ``x``. (PyTorch's ``split`` takes part sizes instead.)"""
    return _split("split", x, indices_or_sections, _one_of("split", axis, dim, 0), True)


def _split(fn_name, x, indices_or_sections, axis, equal):
    x = _input(fn_name, x)
    axis = _axis(fn_name, axis, x.ndim, "axis")
    n = x.shape[axis]
    if isinstance(indices_or_sections, (numbers.Integral, np.ndarray)) and np.ndim(indices_or_sections) == 0:
        k = _int(fn_name, "indices_or_sections", int(indices_or_sections), low=1)
        if equal and n % k:
            raise ShapeError(f"{fn_name}: axis {axis} of size {n} does not split into {k} equal parts; "
                             f"give a divisor of {n}, a list of indices, or use array_split")
        q, r = divmod(n, k)
        bounds = [0, *np.cumsum([q + 1] * r + [q] * (k - r)).tolist()]
    else:
        if not isinstance(indices_or_sections, (list, tuple, np.ndarray)):
            raise DTypeError(f"{fn_name}: indices_or_sections must be an int or a list of ints, got "
                             f"{indices_or_sections!r}")
        indices = [_int(fn_name, "indices_or_sections", int(i) if isinstance(i, np.integer) else i)
                   for i in np.asarray(indices_or_sections, dtype=object).ravel()]
        bounds = [0, *indices, n]
    lead = (slice(None),) * axis
    return [getitem(x, lead + (slice(a, b),)) for a, b in zip(bounds[:-1], bounds[1:])]


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
    """The max over ``axes`` (kept as size-1 dims), 0 where it is not finite: what exp-sums are
    shifted by so they cannot overflow; a constant for the gradient (the ``max_shift`` op)."""
    return apply(RD.MaxShift(tuple(axes)), x)


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
def affine(x, weight, bias=None, out=None):
    """x @ weight.T [+ bias] in one node.  x (..., in), weight (out, in), bias (out,) or None ->
    (..., out).

    ``out``: an ndarray (N, out) to write into, N the product of x's leading dimensions (it may be a
    strided view, e.g. a recurrent slab's gate columns); the node's value is a view of it.
    """
    x, weight, bias = as_tensor(x), as_tensor(weight), _optional(bias)
    if out is not None:
        _check_out("affine", out, (int(np.prod(x.shape[:-1])), weight.shape[0]),
                   np.result_type(x.dtype, weight.dtype, *(b.dtype for b in bias)))
    return apply(FU.Affine(input_grad=x.requires_grad, out=out), x, weight, *bias)


def _optional(t):
    """An optional input (a bias) as the op's trailing inputs: (), or (the tensor,)."""
    return () if t is None else (as_tensor(t),)


def _check_cell(op_name, gates, p, state, weight_hh, bias_hh):
    """``bias_hh``: the op's trailing bias inputs, () or (b,)."""
    if state[0].ndim == 2:  # runs every time step: plain comparisons, no temporaries
        B, H = state[0].shape
        if p.shape == (B, gates * H) and weight_hh.shape == (gates * H, H) and \
                all(s.shape == (B, H) for s in state) and all(b.shape == (gates * H,) for b in bias_hh):
            return
    states = ", ".join(str(s.shape) for s in state)
    bias = "".join(f", bias_hh {b.shape}" for b in bias_hh)
    raise ShapeError(f"{op_name}: expected input projection (B, {gates}*H), state(s) (B, H), "
                     f"weight_hh ({gates}*H, H) and bias_hh ({gates}*H,) or None; got projection "
                     f"{p.shape}, state(s) {states}, weight_hh {weight_hh.shape}{bias}")


def _cell_out(op_cls, out, h):
    """Check a cell block's ``out`` buffer: (B, width*H) of h's dtype (see ``ops.fused``)."""
    if out is not None:
        _check_out(op_cls.name, out, (h.shape[0], op_cls.width * h.shape[-1]), h.dtype)
    return out


def rnn_cell(p, h, weight_hh, bias_hh=None, nonlinearity="tanh", out=None):
    """One Elman step from the input projection p = x @ W_ih.T + b_ih: act(p + h @ W_hh.T [+ b_hh]).

    p, h (B, H); weight_hh (H, H); bias_hh (H,) or None (already in p, as ``RNNCell`` adds it) ->
    h' (B, H). ``out`` (B, H): where to write h' (it may be p itself, which is then consumed).
    """
    if nonlinearity not in FU.ACTIVATIONS:
        raise ValueError(f"rnn_cell: nonlinearity must be one of {sorted(FU.ACTIVATIONS)}, got {nonlinearity!r}")
    p, h, weight_hh, bias_hh = *map(as_tensor, (p, h, weight_hh)), _optional(bias_hh)
    _check_cell("rnn_cell", 1, p, (h,), weight_hh, bias_hh)
    op = FU.RNNCellBlock(nonlinearity, _cell_out(FU.RNNCellBlock, out, h))
    return apply(op, p, h, weight_hh, *bias_hh)


def lstm_cell(p, h, c, weight_hh, bias_hh=None, out=None):
    """One LSTM step (gates i, f, g, o) from the input projection p (B, 4H) -> (h', c'), each (B, H).

    bias_hh (4H,) or None (already in p, as ``LSTMCell`` adds it). ``out`` (B, 6H): where to write
    [h' | c' | i f g o] (its gate columns may be p itself).
    """
    p, h, c, weight_hh, bias_hh = *map(as_tensor, (p, h, c, weight_hh)), _optional(bias_hh)
    _check_cell("lstm_cell", 4, p, (h, c), weight_hh, bias_hh)
    H = h.shape[-1]
    block = apply(FU.LSTMCellBlock(_cell_out(FU.LSTMCellBlock, out, h)), p, h, c, weight_hh, *bias_hh)
    return block[:, :H], block[:, H:2 * H]


def gru_cell(p, h, weight_hh, bias_hh, out=None):
    """One GRU step (gates r, z, n) from the input projection p (B, 3H) -> h' (B, H).

    ``out`` (B, 5H): where to write [h' | r z n | hn] (columns H:4H may be p itself).
    """
    p, h, weight_hh, bias_hh = map(as_tensor, (p, h, weight_hh, bias_hh))
    _check_cell("gru_cell", 3, p, (h,), weight_hh, (bias_hh,))
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
isnan.__doc__ = "True where x is NaN: bool of x's shape, not differentiable."
isinf.__doc__ = "True where x is +inf or -inf: bool of x's shape, not differentiable."
isfinite.__doc__ = "True where x is neither NaN nor infinite: bool of x's shape, not differentiable."
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
less, less_equal, greater, greater_equal, equal, not_equal = lt, le, gt, ge, eq, ne
# --- end of elementwise math ---------------------------------------------------------------------------
# ==================================================================================================
# --- shape area: layout functions, creation functions ---------------------------------------------
# ==================================================================================================
# Every function here accepts numpy's argument names (``axis``, ``keepdims``) and PyTorch's (``dim``,
# ``keepdim``); bad input raises ShapeError/DTypeError naming the function, the argument and the
# allowed values.
from . import random as _random  # noqa: E402
from .ops import layout as LA  # noqa: E402

def _one_of(fn_name, axis, dim=_UNSET, default=None, axis_name="axis", dim_name="dim"):
    """The argument given as numpy's ``axis`` or as PyTorch's ``dim`` (``axis`` holds its default
    ``default`` when only ``dim`` is given; both given is an error).

    (``_axis_args`` beside ``normalize_axes`` does the same for the reductions' axis and keepdims.)
    """
    if dim is _UNSET:
        return axis
    if not (axis is default or (type(axis) is type(default) and axis == default)):
        raise ShapeError(f"{fn_name}: give {axis_name}= or {dim_name}= (the same argument), not both")
    return dim


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


def linspace(start, stop, num=50, endpoint=True, dtype=None, requires_grad=False, name=None,
             steps=_UNSET):
    """``num`` (PyTorch: ``steps``; default 50 as numpy) evenly spaced values from ``start`` to ``stop``
    (included unless ``endpoint=False``); float64 unless ``dtype``."""
    num = _int("linspace", "num", _one_of("linspace", num, steps, 50, "num", "steps"), low=0)
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


# --- layout: composites of reshape/transpose/broadcast_to/getitem/concat, and the ops.layout ops ----
def squeeze(x, axis=None, *, dim=_UNSET):
    """Remove axes of size 1: all of them (``axis`` None), or the given ones (int or tuple), each of
    which must have size 1 (as numpy; PyTorch ignores a named axis of another size)."""
    x = _input("squeeze", x)
    axis = _one_of("squeeze", axis, dim)
    if axis is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    axes = _axes("squeeze", axis, x.ndim)
    wrong = [a for a in axes if x.shape[a] != 1]
    if wrong:
        ones = tuple(a for a, n in enumerate(x.shape) if n == 1)
        raise ShapeError(f"squeeze: axis {wrong[0]} of shape {x.shape} has size {x.shape[wrong[0]]}; only "
                         f"axes of size 1 can be removed (here: {ones or 'none'})")
    return reshape(x, tuple(n for a, n in enumerate(x.shape) if a not in axes))


def expand_dims(x, axis=None, *, dim=_UNSET):
    """Insert axes of size 1 so that they sit at ``axis`` (int or tuple) of the result, which has
    ``x.ndim + len(axis)`` dimensions (numpy): x (2, 3), axis (0, -1) -> (1, 2, 3, 1)."""
    x = _input("expand_dims", x)
    axis = _one_of("expand_dims", axis, dim)
    if axis is None:
        raise ShapeError("expand_dims: axis is required (an int or a tuple of ints)")
    count = len(axis) if isinstance(axis, (tuple, list)) else 1
    axes = _axes("expand_dims", axis, x.ndim + count)
    sizes = iter(x.shape)
    return reshape(x, tuple(1 if a in axes else next(sizes) for a in range(x.ndim + count)))


def unsqueeze(x, dim):
    """PyTorch's ``unsqueeze``: one axis of size 1 inserted at ``dim`` (in [-ndim-1, ndim])."""
    x = _input("unsqueeze", x)
    return expand_dims(x, _axis("unsqueeze", dim, x.ndim + 1, "dim"))


def _permutation(fn_name, dims, shape, argument="axes"):
    """``dims`` as a tuple of non-negative axes, checked to be a permutation of range(len(shape))."""
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    ndim = len(shape)
    for d in dims:
        _int(fn_name, argument, d)
    if len(dims) != ndim or sorted(d % ndim for d in dims if -ndim <= d < ndim) != list(range(ndim)):
        raise ShapeError(f"{fn_name}: {argument} {dims} is not a permutation of the {ndim} axes "
                         f"{tuple(range(ndim))} of shape {shape} (negative axes count from the end)")
    return tuple(int(d) % ndim for d in dims)


def _transpose_dims(x, dim0, dim1):
    """PyTorch's ``transpose(x, dim0, dim1)``: two different axes swapped (``Tensor.transpose`` with
    two ints)."""
    x = _input("transpose", x)
    a, b = _axis("transpose", dim0, x.ndim, "dim0"), _axis("transpose", dim1, x.ndim, "dim1")
    if a == b:
        raise ShapeError(f"transpose: dims ({dim0}, {dim1}) name one axis of shape {x.shape} twice; give "
                         f"two different axes to swap, or a permutation tuple such as (1, 0)")
    axes = list(range(x.ndim))
    axes[a], axes[b] = b, a
    return apply(S.Transpose(tuple(axes)), x)


def permute(x, dims, *more):
    """PyTorch's ``permute``: axis ``dims[k]`` of ``x`` becomes axis k, ``permute(x, (2, 0, 1))`` or
    ``permute(x, 2, 0, 1)``; numpy's ``transpose(x, axes)``."""
    x = _input("permute", x)
    if more or not isinstance(dims, (tuple, list)):
        dims = (dims, *more)
    return apply(S.Transpose(_permutation("permute", dims, x.shape, "dims")), x)


def moveaxis(x, source, destination):
    """Move axes ``source`` (int or tuple) to positions ``destination`` (same length), the others
    keeping their order (numpy; PyTorch's ``movedim``): x (2, 3, 4), 0 -> -1 gives (3, 4, 2)."""
    x = _input("moveaxis", x)
    source = _axes("moveaxis", source, x.ndim, "source")
    destination = _axes("moveaxis", destination, x.ndim, "destination")
    if len(source) != len(destination):
        raise ShapeError(f"moveaxis: source {source} and destination {destination} must name as many "
                         f"axes")
    order = [a for a in range(x.ndim) if a not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return apply(S.Transpose(tuple(order)), x)


movedim = moveaxis


def ravel(x):
    """The elements as one axis, in C order: (size,); a 0-d tensor gives (1,)."""
    return reshape(_input("ravel", x), (-1,))


def flatten(x, start_dim=0, end_dim=-1):
    """PyTorch's ``flatten``: merge axes ``start_dim`` .. ``end_dim`` (inclusive) into one;
    x (2, 3, 4), 1, 2 -> (2, 12). A 0-d tensor gives (1,)."""
    x = _input("flatten", x)
    if x.ndim == 0:
        return reshape(x, (1,))
    start = _axis("flatten", start_dim, x.ndim, "start_dim")
    end = _axis("flatten", end_dim, x.ndim, "end_dim")
    if start > end:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a tensor "
                         f"with {x.ndim} dimensions")
    return reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])


def repeat(x, repeats, axis=None, *, dim=_UNSET):
    """numpy's ``repeat``: each element along ``axis`` repeated ``repeats`` times (an int, or one int
    per element), x [a, b], 2 -> [a, a, b, b]; [1, 2] -> [a, b, b]. ``axis`` None repeats the
    flattened elements. (``Tensor.repeat`` has this meaning too; PyTorch's ``repeat`` is ``tile``.)

    An int count is a broadcast of a new axis after ``axis``, merged into it (gradient: a sum); per-
    element counts gather with an index array (gradient: a scatter-add)."""
    x = _input("repeat", x)
    axis = _one_of("repeat", axis, dim)
    if axis is None:
        x, axis = ravel(x), 0
    axis = _axis("repeat", axis, x.ndim)
    n = x.shape[axis]
    counts = repeats._data if isinstance(repeats, Tensor) else repeats
    counts = [_int("repeat", "repeats", c, low=0) for c in np.asarray(counts, dtype=object).ravel()]
    if len(counts) not in (1, n):
        raise ShapeError(f"repeat: repeats has {len(counts)} counts for axis {axis} of size {n}; "
                         f"give one count per element, or one int")
    if len(set(counts)) <= 1:  # one count for all (none for an empty axis)
        counts = counts[0] if counts else 0
    lead = x.shape[:axis]
    if isinstance(counts, int):
        rest = x.shape[axis + 1:]
        spread = broadcast_to(reshape(x, lead + (n, 1) + rest), lead + (n, counts) + rest)
        return reshape(spread, lead + (n * counts,) + rest)
    index = np.repeat(np.arange(n), counts)
    return getitem(x, (slice(None),) * axis + (index,))


def tile(x, reps):
    """numpy's ``tile`` (PyTorch's ``Tensor.repeat``): ``x`` repeated ``reps[k]`` times along axis k,
    x (2, 3), (2, 1) -> (4, 3) = [x; x]. The shorter of x.shape and reps is padded with leading 1s.

    A reshape to (1, n0, 1, n1, ...), a broadcast to (r0, n0, r1, n1, ...) and a merge: no rule needed."""
    x = _input("tile", x)
    reps = tuple(reps) if isinstance(reps, (tuple, list)) else (reps,)
    reps = tuple(_int("tile", "reps", r, low=0) for r in reps)
    ndim = builtins.max(len(reps), x.ndim)
    reps = (1,) * (ndim - len(reps)) + reps
    shape = (1,) * (ndim - x.ndim) + x.shape
    spread = tuple(v for r, n in zip(reps, shape) for v in (r, n))
    interleaved = reshape(x, tuple(v for n in shape for v in (1, n)))
    return reshape(broadcast_to(interleaved, spread), tuple(r * n for r, n in zip(reps, shape)))


def flip(x, axis=None, *, dims=_UNSET):
    """Reverse the order of elements along ``axis`` (int or tuple; None: every axis). PyTorch spells
    it ``dims``."""
    x = _input("flip", x)
    axis = _one_of("flip", axis, dims, dim_name="dims")
    axes = tuple(range(x.ndim)) if axis is None else tuple(sorted(_axes("flip", axis, x.ndim)))
    return apply(LA.Flip(axes), x)


def roll(x, shift=None, axis=None, *, shifts=_UNSET, dims=_UNSET):
    """Shift elements cyclically: element i moves to i + shift along ``axis``; with ``axis`` None the
    flattened elements roll and the shape is kept. ``shift`` and ``axis`` may be tuples of equal
    length (or an int against a tuple, used for each); an axis named twice rolls by the sum. PyTorch
    spells them ``shifts`` and ``dims``."""
    x = _input("roll", x)
    shift = _one_of("roll", shift, shifts, None, "shift", "shifts")
    if shift is None:
        raise ShapeError("roll: shift is required (an int or a tuple of ints)")
    axis = _one_of("roll", axis, dims, dim_name="dims")
    shift_tuple = tuple(shift) if isinstance(shift, (tuple, list)) else (shift,)
    shift_tuple = tuple(_int("roll", "shift", s) for s in shift_tuple)
    if axis is None:
        if len(shift_tuple) != 1:
            raise ShapeError(f"roll: without an axis the shift must be one int, got {shift!r}")
        return apply(LA.Roll(shift_tuple[0] % builtins.max(x.size, 1), None), x)
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    axes = tuple(_axis("roll", a, x.ndim) for a in axes)
    if len(shift_tuple) == 1:
        shift_tuple *= len(axes)
    elif len(axes) == 1:
        axes *= len(shift_tuple)
    if len(shift_tuple) != len(axes):
        raise ShapeError(f"roll: shift {shift!r} and axis {axis!r} must have the same length (or one "
                         f"of them be a single int)")
    total = {}
    for a, s in zip(axes, shift_tuple):
        total[a] = total.get(a, 0) + s
    axes = tuple(sorted(total))
    return apply(LA.Roll(tuple(total[a] % builtins.max(x.shape[a], 1) for a in axes), axes), x)


_PAD_MODES = ("constant", "edge", "reflect", "wrap")


def _pairs(fn_name, argument, value, ndim, integer):
    """numpy's per-axis ``(before, after)`` forms (n, (n,), (b, a), ((b, a),), ((b0, a0), ...)) as a
    tuple of ndim pairs."""
    try:
        array = np.asarray(value._data if isinstance(value, Tensor) else value)
        ok = array.dtype.kind in ("iu" if integer else "iuf") and array.ndim <= 2
        pairs = np.broadcast_to(array, (ndim, 2)) if ok else None
    except ValueError:
        pairs = None
    if pairs is None:
        kind = "ints" if integer else "numbers"
        raise ShapeError(f"{fn_name}: {argument} {value!r} does not fit a tensor with {ndim} dimensions; "
                         f"allowed: {kind} in the forms n, (n,), (before, after), ((before, after),) or "
                         f"{ndim} pairs ((before_0, after_0), ...)")
    if integer:
        if (pairs < 0).any():
            raise ShapeError(f"{fn_name}: {argument} {value!r} holds a negative width; widths are >= 0")
        return tuple((int(b), int(a)) for b, a in pairs)
    return tuple((b.item(), a.item()) for b, a in pairs)


def pad(x, pad_width, mode="constant", constant_values=0):
    """numpy's ``pad``: add ``pad_width`` elements (one ``(before, after)`` pair per axis, or a form
    numpy broadcasts to that) around ``x``. Modes: 'constant' (``constant_values``, same forms),
    'edge' (the border element repeated), 'reflect' (mirrored, border not repeated: [a, b, c] padded
    by 2 -> [c, b, a, b, c, b, a]), 'wrap' (the other end continued). x (2, 3), ((1, 0), (2, 2))
    -> (3, 7). The gradient of edge/reflect/wrap sums over every copy of an element."""
    x = _input("pad", x)
    if mode not in _PAD_MODES:
        raise ShapeError(f"pad: mode {mode!r} is not supported; allowed: {', '.join(map(repr, _PAD_MODES))}")
    widths = _pairs("pad", "pad_width", pad_width, x.ndim, integer=True)
    if mode == "constant":
        values = _pairs("pad", "constant_values", constant_values, x.ndim, integer=False)
        return apply(LA.Pad(widths, values), x)
    padded = [a for a, (before, after) in enumerate(widths) if before or after]
    if not padded:
        return x
    empty = [a for a in padded if x.shape[a] == 0]
    if empty:
        raise ShapeError(f"pad: mode {mode!r} cannot pad axis {empty[0]} of shape {x.shape}: it is empty; "
                         f"use mode 'constant'")
    # The padded array as a gather: numpy's own padding of the positions 0..n-1 says which element each
    # output position copies, so the gather's gradient adds up every copy.
    positions = [np.pad(np.arange(n), widths[a], mode=mode) if a in padded else np.arange(n)
                 for a, n in enumerate(x.shape)]
    if len(padded) == 1:
        a = padded[0]
        return getitem(x, (slice(None),) * a + (positions[a],))
    return getitem(x, np.ix_(*positions))


def _as_tensors(fn_name, tensors):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise ShapeError(f"{fn_name}: tensors must be a list or tuple of tensors, got "
                         f"{type(tensors).__name__}")
    if not tensors:
        raise ShapeError(f"{fn_name}: needs at least one tensor")
    return [_input(fn_name, t, f"tensors[{k}]") for k, t in enumerate(tensors)]


def _atleast(x, ndim):
    """numpy's atleast_1d/2d/3d: () -> (1,)/(1, 1)/(1, 1, 1); (n,) -> (1, n)/(1, n, 1); (m, n) ->
    (m, n, 1)."""
    if x.ndim >= ndim:
        return x
    if ndim == 3 and x.ndim == 2:
        return reshape(x, x.shape + (1,))
    if ndim == 3 and x.ndim == 1:
        return reshape(x, (1,) + x.shape + (1,))
    return reshape(x, (1,) * (ndim - x.ndim) + x.shape)


def vstack(tensors):
    """Rows on top of each other: 1-D (n,) inputs become (1, n) rows, then concat along axis 0."""
    return concat([_atleast(t, 2) for t in _as_tensors("vstack", tensors)], axis=0)


def hstack(tensors):
    """Side by side: 1-D inputs concat along axis 0, others along axis 1 (0-d become (1,))."""
    tensors = [_atleast(t, 1) for t in _as_tensors("hstack", tensors)]
    return concat(tensors, axis=0 if tensors[0].ndim == 1 else 1)


def dstack(tensors):
    """Along the third axis: (n,) -> (1, n, 1), (m, n) -> (m, n, 1), then concat along axis 2."""
    return concat([_atleast(t, 3) for t in _as_tensors("dstack", tensors)], axis=2)


def column_stack(tensors):
    """1-D (n,) inputs become (n, 1) columns, 2-D and higher stay; concat along axis 1."""
    tensors = _as_tensors("column_stack", tensors)
    return concat([reshape(t, (-1, 1)) if t.ndim < 2 else t for t in tensors], axis=1)


def array_split(x, indices_or_sections, axis=0, *, dim=_UNSET):
    """numpy's ``array_split``: like ``split``, but an int N may leave unequal parts: the first
    n % N parts get n // N + 1 elements, the others n // N (so 5 into 3 gives 2, 2, 1)."""
    return _split("array_split", x, indices_or_sections, _one_of("array_split", axis, dim, 0),
                  False)


def chunk(x, chunks, dim=0):
    """PyTorch's ``chunk``: parts of ceil(n / chunks) elements along ``dim``, the last one smaller, so
    there may be fewer than ``chunks`` (6 into 4 gives 2, 2, 2); an empty axis gives ``chunks``
    empty parts."""
    x = _input("chunk", x)
    chunks = _int("chunk", "chunks", chunks, low=1)
    axis = _axis("chunk", dim, x.ndim, "dim")
    n = x.shape[axis]
    if n == 0:
        return _split("chunk", x, chunks, axis, False)
    size = -(-n // chunks)
    return _split("chunk", x, list(range(size, n, size)), axis, False)


def expand(x, *sizes):
    """PyTorch's ``expand``: ``x`` broadcast to ``sizes`` (varargs or a tuple); -1 keeps an existing
    axis' size, new axes go in front: x (3, 1), (2, -1, 4) -> (2, 3, 4). A view, no copy."""
    x = _input("expand", x)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    sizes = tuple(_int("expand", "sizes", n, low=-1) for n in sizes)
    new = len(sizes) - x.ndim
    if new < 0 or -1 in sizes[:new]:
        raise ShapeError(f"expand: sizes {sizes} do not fit a tensor of shape {x.shape}: give at least "
                         f"{x.ndim} sizes, -1 only for existing axes")
    target = sizes[:new] + tuple(n if s == -1 else s for s, n in zip(sizes[new:], x.shape))
    if any(n not in (1, s) for s, n in zip(target[new:], x.shape)):
        raise ShapeError(f"expand: cannot expand shape {x.shape} to {sizes}; only axes of size 1 grow "
                         f"(-1 keeps a size)")
    return broadcast_to(x, target)


def expand_as(x, other):
    """``expand(x, other.shape)``."""
    return expand(x, _input("expand_as", other, "other").shape)


def clone(x):
    """A copy of ``x`` in the graph: gradients flow through it to ``x``."""
    return apply(LA.Clone(), _input("clone", x))


concatenate = cat = concat
# --- end of the shape area ------------------------------------------------------------------------
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
