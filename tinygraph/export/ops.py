"""The op table: every registered tinygraph op (``tinygraph.ops.OPS``) as ONNX nodes, or in
``UNSUPPORTED`` with the reason.

A rule is ``rule(b, op, inputs, out) -> name``: ``b`` the ``GraphBuilder``, ``op`` the tinygraph op
(its attributes: axes, shapes, indices), ``inputs`` the Values of its inputs, ``out`` the Value its
output will be (``out.dtype``, ``out.shape``, and its probe shape, so ``out.is_dynamic(axis)``). It
emits nodes and returns the ONNX name of the output. numpy promotes mixed dtypes where ONNX refuses
them, so a rule casts its inputs to the dtype numpy gave the output (``b.cast``, a no-op when they
agree).

Semantics follow numpy (tinygraph's forward) exactly where ONNX has the op; where it has not, the
rule composes it, and says so:

- ``expm1``, ``log1p``, ``log2``, ``log10``, ``exp2``, ``hypot``, ``logaddexp`` from Exp/Log/Pow/Sqrt:
  the same values up to rounding, without numpy's care for tiny arguments (``expm1(1e-20)`` is 0)
  and overflow (``hypot`` of values above ~1e154, 1e19 in float32, is inf).
- ``arctan2`` from Atan and Where (numpy's quadrants; signed zeros not distinguished).
- ``mod`` (numpy's sign convention, the divisor's) from ``Mod(fmod=1)`` and a correction.
- ``fmin``/``fmax`` (NaN ignored) from Min/Max, IsNaN and Where.
- ``var``, ``diff``, ``cumprod`` (a product per step along a fixed-size axis), ``flip``, ``roll``,
  ``pad`` (one constant per side and axis: one Pad per axis and side, in numpy's order) from Slice,
  Concat, Reduce*, Pad.
- ``getitem`` with ints, slices, None and Ellipsis: Slice, Squeeze, Unsqueeze (dynamic axes allowed);
  with one integer array on one axis: Gather; with any other integer or bool arrays, and
  ``diagonal``: a Gather of the flattened input at the positions numpy would read, computed at export
  (fixed sizes only). ``index_add`` is the ScatterElements (add) of the same positions.
- ``sort``/``argsort``: TopK over the whole axis (ties: lower index first, as the stable sort).
- the fused cells ``rnn_cell``, ``lstm_cell``, ``gru_cell``: Gemm, Split, the gate activations and a
  Concat of the same ``[h | c | gates]`` layout (a Scan body of a layer exported with
  ``recurrent="scan"`` holds them; ``recurrent="native"`` writes ONNX's RNN/LSTM/GRU instead).
"""
import math

import numpy as np

from ..errors import ExportError
from . import proto
from .builder import CONVERTERS, INT64_MAX, INT64_MIN, SIZED_ATTRIBUTES, UNSUPPORTED

UNSUPPORTED.update({
    "cross_entropy": "it is a training loss whose integer targets are constants of the op (one fixed "
                     "batch); export the model's logits and compute the loss outside",
    "linear_cross_entropy": "it is a training loss whose integer targets are constants of the op (one "
                            "fixed batch); export the model's logits and compute the loss outside",
})


def rule(*names):
    """Register the decorated function as the rule of the tinygraph ops ``names``."""
    def register(fn):
        for name in names:
            CONVERTERS[name] = fn
        return fn
    return register


def _as(b, inputs, dtype):
    return [b.cast(v, dtype) for v in inputs]


# --- elementwise ----------------------------------------------------------------------------------
UNARY = {"neg": "Neg", "exp": "Exp", "log": "Log", "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu",
         "sqrt": "Sqrt", "abs": "Abs", "sign": "Sign", "sin": "Sin", "cos": "Cos", "tan": "Tan",
         "arcsin": "Asin", "arccos": "Acos", "arctan": "Atan", "sinh": "Sinh", "cosh": "Cosh",
         "arcsinh": "Asinh", "arccosh": "Acosh", "arctanh": "Atanh", "reciprocal": "Reciprocal",
         "floor": "Floor", "ceil": "Ceil", "clone": "Identity"}
BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "maximum": "Max",
          "minimum": "Min"}
COMPARE = {"lt": "Less", "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual", "eq": "Equal"}


def _unary(onnx_op):
    def convert(b, op, inputs, out):
        return b.node(onnx_op, _as(b, inputs, out.dtype))
    return convert


def _binary(onnx_op):
    def convert(b, op, inputs, out):
        return b.node(onnx_op, _as(b, inputs, out.dtype))
    return convert


def _compare(onnx_op):
    def convert(b, op, inputs, out):
        return b.node(onnx_op, _as(b, inputs, np.result_type(*(v.dtype for v in inputs))))
    return convert


for _name, _op in UNARY.items():
    CONVERTERS[_name] = _unary(_op)
for _name, _op in BINARY.items():
    CONVERTERS[_name] = _binary(_op)
for _name, _op in COMPARE.items():
    CONVERTERS[_name] = _compare(_op)


@rule("ne")
def _not_equal(b, op, inputs, out):
    return b.node("Not", [_compare("Equal")(b, op, inputs, out)])


@rule("square")
def _square(b, op, inputs, out):
    (x,) = _as(b, inputs, out.dtype)
    return b.node("Mul", [x, x])


@rule("pow_const")
def _pow_const(b, op, inputs, out):
    return b.node("Pow", [b.cast(inputs[0], out.dtype), b.scalar(op.exponent, out.dtype)])


@rule("exp2")
def _exp2(b, op, inputs, out):
    return b.node("Pow", [b.scalar(2, out.dtype), b.cast(inputs[0], out.dtype)])


@rule("expm1")
def _expm1(b, op, inputs, out):
    return b.node("Sub", [b.node("Exp", _as(b, inputs, out.dtype)), b.scalar(1, out.dtype)])


@rule("log1p")
def _log1p(b, op, inputs, out):
    return b.node("Log", [b.node("Add", [b.cast(inputs[0], out.dtype), b.scalar(1, out.dtype)])])


@rule("log2", "log10")
def _log_base(b, op, inputs, out):
    scale = 1 / math.log(2.0 if op.name == "log2" else 10.0)
    return b.node("Mul", [b.node("Log", _as(b, inputs, out.dtype)), b.scalar(scale, out.dtype)])


@rule("isnan")
def _isnan(b, op, inputs, out):
    return b.node("IsNaN", inputs)


@rule("isinf")
def _isinf(b, op, inputs, out):
    return b.node("IsInf", inputs)


@rule("isfinite")
def _isfinite(b, op, inputs, out):
    return b.node("Not", [b.node("Or", [b.node("IsNaN", inputs), b.node("IsInf", inputs)])])


@rule("nan_to_num")
def _nan_to_num(b, op, inputs, out):
    (x,) = inputs
    info = np.finfo(x.dtype)
    posinf = info.max if op.posinf is None else op.posinf
    neginf = info.min if op.neginf is None else op.neginf
    y = b.node("Where", [b.node("IsNaN", [x]), b.scalar(op.nan, x.dtype), x])
    y = b.node("Where", [b.node("IsInf", [x], detect_negative=0), b.scalar(posinf, x.dtype), y])
    return b.node("Where", [b.node("IsInf", [x], detect_positive=0), b.scalar(neginf, x.dtype), y])


@rule("arctan2")
def _arctan2(b, op, inputs, out):
    y, x = _as(b, inputs, out.dtype)
    zero, pi = b.scalar(0, out.dtype), b.scalar(math.pi, out.dtype)
    angle = b.node("Atan", [b.node("Div", [y, x])])
    left = b.node("Where", [b.node("GreaterOrEqual", [y, zero]), b.node("Add", [angle, pi]),
                            b.node("Sub", [angle, pi])])
    angle = b.node("Where", [b.node("Less", [x, zero]), left, angle])
    on_axis = b.node("Mul", [b.node("Sign", [y]), b.scalar(math.pi / 2, out.dtype)])
    return b.node("Where", [b.node("Equal", [x, zero]), on_axis, angle])


@rule("hypot")
def _hypot(b, op, inputs, out):
    x, y = _as(b, inputs, out.dtype)
    return b.node("Sqrt", [b.node("Add", [b.node("Mul", [x, x]), b.node("Mul", [y, y])])])


@rule("logaddexp")
def _logaddexp(b, op, inputs, out):
    x, y = _as(b, inputs, out.dtype)
    gap = b.node("Neg", [b.node("Abs", [b.node("Sub", [x, y])])])
    softplus = b.node("Log", [b.node("Add", [b.scalar(1, out.dtype), b.node("Exp", [gap])])])
    return b.node("Add", [b.node("Max", [x, y]), softplus])


@rule("mod")
def _mod(b, op, inputs, out):
    x, y = _as(b, inputs, out.dtype)
    zero = b.scalar(0, out.dtype)
    r = b.node("Mod", [x, y], fmod=1)  # C's fmod: the sign of x; numpy's % has the sign of y
    wrong_sign = b.node("And", [b.node("Not", [b.node("Equal", [r, zero])]),
                                b.node("Xor", [b.node("Less", [r, zero]), b.node("Less", [y, zero])])])
    return b.node("Where", [wrong_sign, b.node("Add", [r, y]), r])


@rule("fmin", "fmax")
def _fmin_fmax(b, op, inputs, out):
    x, y = _as(b, inputs, out.dtype)
    both = b.node("Min" if op.name == "fmin" else "Max", [x, y])
    return b.node("Where", [b.node("IsNaN", [x]), y, b.node("Where", [b.node("IsNaN", [y]), x, both])])


@rule("where")
def _where(b, op, inputs, out):
    cond, x, y = inputs
    return b.node("Where", [b.cast(cond, np.bool_), b.cast(x, out.dtype), b.cast(y, out.dtype)])


@rule("matmul")
def _matmul(b, op, inputs, out):
    return b.node("MatMul", _as(b, inputs, out.dtype))


@rule("affine")
def _affine(b, op, inputs, out):
    """x @ W.T [+ b]: Gemm for a 2-D x, else MatMul (and Add)."""
    x, w, *bias = _as(b, inputs, out.dtype)
    if inputs[0].ndim == 2:
        return b.node("Gemm", [x, w, *bias], transB=1)
    y = b.node("MatMul", [x, b.node("Transpose", [w], perm=[1, 0])])
    return b.node("Add", [y, *bias]) if bias else y


@rule("astype")
def _astype(b, op, inputs, out):
    return b.node("Cast", inputs, to=proto.data_type(op.dtype))


# --- reductions and scans ---------------------------------------------------------------------------
def _axes(op, x):
    return tuple(range(x.ndim)) if op.axis is None else tuple(op.axis)


def reduce(b, onnx_op, x, axes, keepdims):
    """``onnx_op`` over ``axes`` (none: the input itself); axes are an input of ReduceSum, and of
    every Reduce* from opset 18 on, an attribute before."""
    if not axes:
        return b.node("Identity", [x])
    if onnx_op == "ReduceSum" or b.opset >= 18:
        return b.node(onnx_op, [x, b.ints(axes)], keepdims=int(keepdims))
    return b.node(onnx_op, [x], axes=list(axes), keepdims=int(keepdims))


def _reduction(onnx_op):
    def convert(b, op, inputs, out):
        (x,) = inputs
        return reduce(b, onnx_op, b.cast(x, out.dtype), _axes(op, x), op.keepdims)
    return convert


CONVERTERS.update(sum=_reduction("ReduceSum"), max=_reduction("ReduceMax"), min=_reduction("ReduceMin"),
                  prod=_reduction("ReduceProd"))


@rule("max_shift")
def _max_shift(b, op, inputs, out):
    (x,) = inputs
    shift = reduce(b, "ReduceMax", x, op.axis, True)
    finite = b.node("Not", [b.node("Or", [b.node("IsNaN", [shift]), b.node("IsInf", [shift])])])
    return b.node("Where", [finite, shift, b.scalar(0, x.dtype)])


@rule("var")
def _var(b, op, inputs, out):
    """mean((x - mean x)**2) * N / (N - ddof), N the reduced count (counted at run time when a
    reduced axis is dynamic)."""
    (x,) = inputs
    axes, xv = _axes(op, x), b.cast(x, out.dtype)
    d = b.node("Sub", [xv, reduce(b, "ReduceMean", xv, axes, True)])
    total = reduce(b, "ReduceSum", b.node("Mul", [d, d]), axes, op.keepdims)
    if not any(x.is_dynamic(a) for a in axes):
        n = math.prod(x.shape[a] for a in axes)
        return b.node("Div", [total, b.scalar(max(n - op.ddof, 0), out.dtype)])
    shape = b.node("Gather", [b.node("Shape", [x]), b.ints(axes)], axis=0)
    n = b.node("Cast", [reduce(b, "ReduceProd", shape, (0,), False)], to=proto.data_type(out.dtype))
    denominator = b.node("Max", [b.node("Sub", [n, b.scalar(op.ddof, out.dtype)]), b.scalar(0, out.dtype)])
    return b.node("Div", [total, denominator])


@rule("cumsum")
def _cumsum(b, op, inputs, out):
    return b.node("CumSum", [b.cast(inputs[0], out.dtype), b.scalar(op.axis, np.int64)])


def _slice(b, x, start, end, axis, step=1):
    return b.node("Slice", [x, b.ints([start]), b.ints([end]), b.ints([axis]), b.ints([step])])


@rule("cumprod")
def _cumprod(b, op, inputs, out):
    """One Mul per step along the axis (its size must be fixed)."""
    (x,) = inputs
    b.require_fixed(x, "cumprod", axes=(op.axis,))
    n, xv = x.shape[op.axis], b.cast(x, out.dtype)
    if n <= 1:
        return b.node("Identity", [xv])
    running = [_slice(b, xv, 0, 1, op.axis)]
    for i in range(1, n):
        running.append(b.node("Mul", [running[-1], _slice(b, xv, i, i + 1, op.axis)]))
    return b.node("Concat", running, axis=op.axis)


@rule("diff")
def _diff(b, op, inputs, out):
    y = b.cast(inputs[0], out.dtype)
    for _ in range(op.n):
        y = b.node("Sub", [_slice(b, y, 1, INT64_MAX, op.axis), _slice(b, y, 0, -1, op.axis)])
    return y


@rule("einsum")
def _einsum(b, op, inputs, out):
    """ONNX's Einsum; size-1 dimensions numpy broadcasts are expanded first (ONNX wants equal sizes)."""
    terms, _ = op._inputs, op._output
    size = {}
    for term, v in zip(terms, inputs):
        for label, n in zip(term, v.shape):
            size[label] = max(size.get(label, 1), n)
    operands = []
    for term, v in zip(terms, inputs):
        name = b.cast(v, out.dtype)
        if any(n == 1 and size[c] > 1 for c, n in zip(term, v.shape)):
            b.require_fixed(v, "einsum broadcasting a size-1 dimension")
            name = b.node("Expand", [name, b.ints([size[c] for c in term])])
        operands.append(name)
    return b.node("Einsum", operands, equation=op.subscripts)


@rule("sort", "argsort")
def _sort(b, op, inputs, out):
    (x,) = inputs
    values, indices = b.node("TopK", [x, b.dim(x, op.axis)], outputs=2, axis=op.axis,
                             largest=int(op.descending), sorted=1)
    return values if op.name == "sort" else indices


@rule("argmax", "argmin")
def _arg(b, op, inputs, out):
    (x,) = inputs
    onnx_op = "ArgMax" if op.name == "argmax" else "ArgMin"
    if op.axis is not None:
        return b.node(onnx_op, [x], axis=op.axis, keepdims=int(op.keepdims))
    flat = b.node(onnx_op, [b.node("Reshape", [x, b.ints([-1])])], axis=0, keepdims=0)
    return b.node("Reshape", [flat, b.ints([1] * x.ndim)]) if op.keepdims else flat


# --- shapes and indexing ------------------------------------------------------------------------------
SIZED_ATTRIBUTES.update(reshape={"shape"}, broadcast_to={"shape"})  # their rules read out's sizes


@rule("reshape")
def _reshape(b, op, inputs, out):
    """The target shape with every dimension that follows a dynamic axis written as ONNX's 0 (copy
    the input's dimension at the same position) where it is that dimension, else as -1 (inferred;
    one at most)."""
    (x,) = inputs
    target, inferred = [], False
    for i, n in enumerate(out.shape):
        if not out.is_dynamic(i):
            target.append(n)
        elif i < x.ndim and x.shape[i] == n and x.probe.shape[i] == out.probe.shape[i]:
            target.append(0)
        elif not inferred:
            target.append(-1)
            inferred = True
        else:
            raise ExportError(f"reshape {x.shape} -> {out.shape}: two of its dimensions follow "
                              f"dynamic axes in another position; ONNX's Reshape can infer one (-1)")
    if 0 in out.shape:  # a 0 in the target means "copy": an empty dimension needs allowzero
        if 0 in target and any(out.is_dynamic(i) for i in range(out.ndim)):
            raise ExportError(f"reshape to an empty shape {out.shape} with dynamic axes")
        return b.node("Reshape", [x, b.ints(out.shape)], allowzero=1)
    return b.node("Reshape", [x, b.ints(target)])


@rule("transpose")
def _transpose(b, op, inputs, out):
    if len(op.axes) == 0:
        return b.node("Identity", inputs)
    return b.node("Transpose", inputs, perm=list(op.axes))


@rule("broadcast_to")
def _broadcast_to(b, op, inputs, out):
    """Expand with 1 wherever the input already has the size (ONNX broadcasts both ways), so a dynamic
    axis the input carries stays dynamic."""
    (x,) = inputs
    lead = out.ndim - x.ndim
    shape = []
    for i, n in enumerate(out.shape):
        j = i - lead
        keeps = j >= 0 and x.shape[j] == n and x.probe.shape[j] == out.probe.shape[i]
        if keeps:
            shape.append(1)
        elif out.is_dynamic(i):
            raise ExportError(f"broadcast_to {x.shape} -> {out.shape} stretches to "
                              f"{b.export.axis_label(out, i)}, a dynamic axis the input does not have")
        else:
            shape.append(n)
    return b.node("Expand", [x, b.ints(shape)])


@rule("concat")
def _concat(b, op, inputs, out):
    return b.node("Concat", _as(b, inputs, out.dtype), axis=op.axis)


@rule("stack")
def _stack(b, op, inputs, out):
    parts = [b.node("Unsqueeze", [v, b.ints([op.axis])]) for v in _as(b, inputs, out.dtype)]
    return parts[0] if len(parts) == 1 else b.node("Concat", parts, axis=op.axis)


def _positions(shape, take):
    """The flat positions of an array of ``shape`` that ``take(positions)`` reads, as int64."""
    return np.asarray(take(np.arange(math.prod(shape), dtype=np.int64).reshape(shape)), dtype=np.int64)


def gather_positions(b, x, positions, what):
    """``x.flat[positions]`` (an ndarray of positions fixed at export): Gather of the flattened x."""
    b.require_fixed(x, what)
    return b.node("Gather", [b.node("Reshape", [x, b.ints([-1])]), b.const(positions, "positions")], axis=0)


@rule("getitem")
def _getitem(b, op, inputs, out):
    (x,) = inputs
    parts = _expand_index(op.index, x.ndim)
    if parts is not None:
        return _basic_index(b, x, parts)
    single = _single_array(op.index, x.ndim)
    if single is not None:
        axis, index = single   # negative positions count from the end, in ONNX's Gather as in numpy
        return b.node("Gather", [x, b.const(index.astype(np.int64), "index")], axis=axis)
    return gather_positions(b, x, _positions(x.shape, lambda a: a[op.index]), "getitem with index arrays")


def _expand_index(index, ndim):
    """A basic index (ints, slices, None, Ellipsis) as a list over the input's axes, None entries
    kept where they are; None for an index holding arrays or bools."""
    parts = list(index) if isinstance(index, tuple) else [index]
    if any(isinstance(p, (np.ndarray, bool, np.bool_, list)) for p in parts):
        return None
    consumed = sum(1 for p in parts if p is not None and p is not Ellipsis)
    expanded = []
    for p in parts:
        if p is Ellipsis:
            expanded += [slice(None)] * (ndim - consumed)
        else:
            expanded.append(p)
    if Ellipsis not in parts:
        expanded += [slice(None)] * (ndim - consumed)
    return expanded


def _basic_index(b, x, parts):
    """Slice the sliced and indexed axes (ints as one-element slices), Squeeze the ints, Unsqueeze
    the Nones. A fixed axis gets numpy's own bounds (``slice.indices``); a dynamic one gets the
    index's bounds, which ONNX's Slice clamps as numpy does."""
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = position = 0
    for p in parts:
        if p is None:
            unsqueeze.append(position)
            position += 1
            continue
        n = x.shape[axis]
        if isinstance(p, slice):
            if p != slice(None):
                start, end, step = _slice_bounds(p, n, x.is_dynamic(axis))
                starts.append(start), ends.append(end), axes.append(axis), steps.append(step)
            position += 1
        else:
            i = int(p)
            starts.append(i), ends.append(INT64_MAX if i == -1 else i + 1), axes.append(axis), steps.append(1)
            squeeze.append(axis)
        axis += 1
    y = x.name
    if axes:
        y = b.node("Slice", [y, b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)])
    if squeeze:
        y = b.node("Squeeze", [y, b.ints(squeeze)])
    if unsqueeze:
        y = b.node("Unsqueeze", [y, b.ints(unsqueeze)])
    return y if y != x.name else b.node("Identity", [x])


def _slice_bounds(s, n, dynamic):
    step = 1 if s.step is None else s.step
    if dynamic:
        if step < 0 and s.start is not None and s.start < 0:
            raise ExportError(f"the slice {s} counts from the end of a dynamic axis with a negative "
                              f"step, where ONNX's Slice clamps differently from numpy")
        start = s.start if s.start is not None else (0 if step > 0 else INT64_MAX)
        end = s.stop if s.stop is not None else (INT64_MAX if step > 0 else INT64_MIN)
        return start, end, step
    start, end, step = s.indices(n)
    if len(range(start, end, step)) == 0:
        return 0, 0, 1
    if step < 0 and end < 0:  # numpy's -1 here means "past the first element"; ONNX's is the last
        end = INT64_MIN
    return start, end, step


def _single_array(index, ndim):
    """``(axis, int array)`` for an index that is one integer array on one axis with full slices
    elsewhere (an embedding lookup, ``x[:, ids]``), else None."""
    parts = list(index) if isinstance(index, tuple) else [index]
    arrays = [k for k, p in enumerate(parts) if isinstance(p, np.ndarray)]
    if len(arrays) != 1 or parts[arrays[0]].dtype.kind not in "iu":
        return None
    rest = [p for k, p in enumerate(parts) if k != arrays[0]]
    if not all(isinstance(p, slice) and p == slice(None) for p in rest) or len(parts) > ndim:
        return None
    return arrays[0], parts[arrays[0]]


@rule("index_add")
def _index_add(b, op, inputs, out):
    """Zeros of ``shape`` with the source added at the positions the index reads (repeats add up)."""
    (g,) = inputs
    b.require_fixed(g, "index_add")
    positions = _positions(op.shape, lambda a: a[op.index]).reshape(-1)
    zeros = b.const(np.zeros(math.prod(op.shape), dtype=out.dtype), "zeros")
    flat = b.node("Reshape", [b.cast(g, out.dtype), b.ints([-1])])
    added = b.node("ScatterElements", [zeros, b.const(positions, "positions"), flat], axis=0,
                   reduction="add")
    return b.node("Reshape", [added, b.ints(op.shape)], allowzero=1)


@rule("diagonal")
def _diagonal(b, op, inputs, out):
    (x,) = inputs
    positions = _positions(x.shape, lambda a: np.diagonal(a, op.offset, op.axis1, op.axis2))
    return gather_positions(b, x, positions, "diagonal")


@rule("flip")
def _flip(b, op, inputs, out):
    (x,) = inputs
    if not op.axis:
        return b.node("Identity", [x])
    k = len(op.axis)
    return b.node("Slice", [x, b.ints([-1] * k), b.ints([INT64_MIN] * k), b.ints(op.axis), b.ints([-1] * k)])


@rule("roll")
def _roll(b, op, inputs, out):
    """Each rolled axis (of fixed size) as the Concat of its two slices; ``axis=None`` rolls the
    flattened array (all sizes fixed)."""
    (x,) = inputs
    if op.axis is None:
        positions = _positions(x.shape, lambda a: np.roll(a, op.shift))
        return gather_positions(b, x, positions, "roll without axis")
    y = x.name
    for shift, axis in zip(op.shift, op.axis):
        b.require_fixed(x, "roll", axes=(axis,))
        n = x.shape[axis]
        s = shift % n if n else 0
        if s:
            tail, head = _slice(b, y, n - s, INT64_MAX, axis), _slice(b, y, 0, n - s, axis)
            y = b.node("Concat", [tail, head], axis=axis)
    return y if y != x.name else b.node("Identity", [x])


@rule("pad")
def _pad(b, op, inputs, out):
    """numpy pads axis by axis, each side with its own constant, later axes over earlier padding:
    one Pad per axis and side (one Pad in all when every constant is the same)."""
    (x,) = inputs
    widths, values = op.pad_width, op.constant_values
    if not widths:
        return b.node("Identity", [x])
    flat = {float(v) for pair in values for v in pair}
    ndim = len(widths)
    if len(flat) == 1:
        pads = [w[0] for w in widths] + [w[1] for w in widths]
        return b.node("Pad", [x, b.ints(pads), b.scalar(flat.pop(), x.dtype)])
    y = x.name
    for axis, ((before, after), (v_before, v_after)) in enumerate(zip(widths, values)):
        for side, width, value in ((0, before, v_before), (1, after, v_after)):
            if width:
                pads = [0] * (2 * ndim)
                pads[axis + side * ndim] = width
                y = b.node("Pad", [y, b.ints(pads), b.scalar(value, x.dtype)])
    return y if y != x.name else b.node("Identity", [x])


# --- the fused recurrent cells (tinygraph.ops.fused) ----------------------------------------------------
ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}


def _split(b, x, parts, size):
    return b.node("Split", [x, b.ints([size] * parts)], outputs=parts, axis=1)


@rule("rnn_cell")
def _rnn_cell(b, op, inputs, out):
    p, h, w, *bias = _as(b, inputs, out.dtype)  # the recurrent bias is optional (Gemm's C too)
    pre = b.node("Add", [p, b.node("Gemm", [h, w, *bias], transB=1)])
    return b.node(ACTIVATIONS[op.nonlinearity], [pre])


@rule("lstm_cell")
def _lstm_cell(b, op, inputs, out):
    p, h, c, w, *bias = _as(b, inputs, out.dtype)
    H = inputs[1].shape[-1]
    gates = b.node("Add", [p, b.node("Gemm", [h, w, *bias], transB=1)])
    i, f, g, o = _split(b, gates, 4, H)
    i, f, g, o = b.node("Sigmoid", [i]), b.node("Sigmoid", [f]), b.node("Tanh", [g]), b.node("Sigmoid", [o])
    c_new = b.node("Add", [b.node("Mul", [f, c]), b.node("Mul", [i, g])])
    h_new = b.node("Mul", [o, b.node("Tanh", [c_new])])
    return b.node("Concat", [h_new, c_new, i, f, g, o], axis=1)


@rule("gru_cell")
def _gru_cell(b, op, inputs, out):
    p, h, w, bias = _as(b, inputs, out.dtype)
    H = inputs[1].shape[-1]
    hh = b.node("Gemm", [h, w, bias], transB=1)
    (p_r, p_z, p_n), (h_r, h_z, h_n) = _split(b, p, 3, H), _split(b, hh, 3, H)
    r = b.node("Sigmoid", [b.node("Add", [p_r, h_r])])
    z = b.node("Sigmoid", [b.node("Add", [p_z, h_z])])
    n = b.node("Tanh", [b.node("Add", [p_n, b.node("Mul", [r, h_n])])])
    h_new = b.node("Add", [n, b.node("Mul", [z, b.node("Sub", [h, n])])])
    return b.node("Concat", [h_new, r, z, n, h_n], axis=1)
