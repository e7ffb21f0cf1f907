"""Hypothesis strategies for tinygraph, and a one-line property test of any function's gradients.

Needs the ``test`` extra (hypothesis); ``import tinygraph`` never imports this module.

One line checks a function's gradients against float64 central differences over many drawn inputs,
and checks that it does not modify its inputs::

    from tinygraph.testing import arrays, check_grads, shapes
    check_grads(lambda x, w: tg.tanh(x @ w), arrays((2, 3)), arrays((3, 4)), second_order=True)

or, as a decorator, the function becomes the test (pytest collects it by its name)::

    @check_grads(arrays(shapes(min_dims=1)))
    def test_my_softplus(x):
        return tg.log(1 + tg.exp(x))

Arguments whose shapes depend on each other share a drawn value (hypothesis ``st.shared``)::

    n = st.shared(st.integers(1, 4), key="batch")
    check_grads(f, n.flatmap(lambda b: arrays((b, 3))), n.flatmap(lambda b: arrays((b,))))

``op_samples(op_cls)`` draws ``(op, input arrays)`` for any primitive from the family its ``sample``
attribute names, respecting its ``domain`` (value range), ``kinks`` (points kept away from) and
``distinct`` (no ties). ``SAMPLERS`` must name every family used in ``tinygraph.ops.OPS``: the op
tests assert it, so a new op is covered by the gradient property tests the moment it exists.
"""
import math

import numpy as np
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.strategies import SearchStrategy

from .autograd import grad_of
from .gradcheck import gradcheck, gradgradcheck
from .ops import OPS
from .ops.shape import is_advanced
from .tensor import Tensor

__all__ = ["shapes", "broadcastable_shapes", "broadcastable_pairs", "arrays", "tensors", "indices",
           "op_samples", "SAMPLERS", "check_grads", "assert_gradients_at", "assert_not_mutated"]

_GRID = 600  # distinct values are drawn from a grid this fine: far apart compared with gradcheck's eps


# --- shapes -----------------------------------------------------------------------------------------
def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Array shapes; ``min_dims=0`` includes the 0-d (scalar) case."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(shape, min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Shapes that broadcast together with ``shape`` (a tuple)."""
    return hnp.broadcastable_shapes(tuple(shape), min_dims=min_dims, max_dims=max_dims,
                                    min_side=min_side, max_side=max_side)


def broadcastable_pairs(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Tuples of ``num_shapes`` shapes that all broadcast together (sizes 1 and missing dims included)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
        max_side=max_side).map(lambda b: b.input_shapes)


# --- values -----------------------------------------------------------------------------------------
def _push_away(value, points, margin, low, high):
    """``value`` moved at least ``margin`` away from each of ``points``, staying inside [low, high]."""
    for p in points:
        if abs(value - p) < margin:
            above, below = p + margin, p - margin
            prefer_above = value >= p
            if prefer_above and above <= high or below < low:
                value = above
            else:
                value = below
    return value


@st.composite
def arrays(draw, shape, dtype=np.float64, low=-3.0, high=3.0, away_from=(), distinct=False, margin=0.01):
    """ndarrays of ``shape`` (a tuple, an int, or a strategy of shapes) and ``dtype``.

    Floats are finite and within [low, high]; ``away_from`` keeps every value at least ``margin`` from
    the given points (kinks such as relu's 0, where a numerical derivative is meaningless); ``distinct``
    makes all values differ by far more than gradcheck's eps (ties in max have no unique gradient).
    Integers lie in [low, high]; bool arrays ignore the bounds.
    """
    shape = draw(shape) if isinstance(shape, SearchStrategy) else shape
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    if dtype.kind == "b":
        return np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), bool).reshape(shape)
    if dtype.kind in "iu":
        ints = st.integers(int(math.ceil(low)), int(math.floor(high)))
        return np.array(draw(st.lists(ints, min_size=size, max_size=size)), dtype).reshape(shape)
    if distinct:
        steps = draw(st.lists(st.integers(0, _GRID), min_size=size, max_size=size, unique=True))
        values = [low + (high - low) * k / _GRID for k in steps]
    else:
        floats = st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)
        values = draw(st.lists(floats, min_size=size, max_size=size))
    if away_from:
        values = [_push_away(v, away_from, margin, low, high) for v in values]
    return np.array(values, dtype=np.float64).reshape(shape).astype(dtype)


def tensors(shape, dtype=np.float64, requires_grad=True, name=None, **value_kwargs):
    """``tg.Tensor`` leaves over ``arrays(shape, dtype, **value_kwargs)``; floating ones require grad."""
    return arrays(shape, dtype, **value_kwargs).map(
        lambda a: Tensor(a, requires_grad=requires_grad and a.dtype.kind == "f", name=name))


@st.composite
def _op_inputs(draw, op_cls, shapes_, dtype, low=None, high=None, away_from=None):
    """Arrays of ``shapes_`` in ``op_cls.domain``, away from its kinks, distinct across *all* inputs
    when the op asks for it (``maximum(x, y)`` needs x != y, not only distinct values within x)."""
    low = op_cls.domain[0] if low is None else low
    high = op_cls.domain[1] if high is None else high
    away_from = op_cls.kinks if away_from is None else away_from
    sizes = [math.prod(s) for s in shapes_]
    flat = draw(arrays((sum(sizes),), dtype, low, high, away_from, op_cls.distinct))
    parts = np.split(flat, np.cumsum(sizes)[:-1]) if sizes else []
    return [part.reshape(s).copy() for part, s in zip(parts, shapes_)]


# --- indices ----------------------------------------------------------------------------------------
@st.composite
def _basic_index(draw, shape):
    """ints (negative too), slices (negative steps too), None and Ellipsis over a prefix of the dims."""
    count = draw(st.integers(0, len(shape)))
    ellipsis = draw(st.booleans())
    dims = shape[len(shape) - count:] if ellipsis else shape[:count]
    parts = []
    for n in dims:
        if draw(st.booleans()):
            parts.append(draw(st.integers(-n, n - 1)))
        else:
            bound = st.none() | st.integers(-n - 1, n + 1)
            step = draw(st.sampled_from([None, 1, 2, -1, -2]))
            parts.append(slice(draw(bound), draw(bound), step))
    if ellipsis:
        parts.insert(0, Ellipsis)
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), None)
    return parts[0] if len(parts) == 1 and draw(st.booleans()) else tuple(parts)


@st.composite
def _array_index(draw, shape):
    """Integer arrays (repeats and negatives included) on one dim, or on the first two dims together
    (the ``logp[arange(N), targets]`` pattern), possibly mixed with an int or a slice."""
    index_shape = draw(shapes(min_dims=1, max_dims=2, max_side=5))

    def ints(n):
        return draw(arrays(index_shape, np.int64, -n, n - 1))
    if len(shape) >= 2 and draw(st.booleans()):
        return (ints(shape[0]), ints(shape[1]))
    dim = draw(st.integers(0, len(shape) - 1))
    lead = tuple(draw(st.sampled_from([slice(None), 0, -1])) for _ in range(dim))
    return lead + (ints(shape[dim]),)


@st.composite
def _mask_index(draw, shape):
    """A bool mask over the first k dims (k >= 1), or over all of a 0-d array."""
    k = draw(st.integers(min(1, len(shape)), len(shape)))
    return draw(arrays(shape[:k], np.bool_))


def indices(shape):
    """Valid indices for an array of ``shape``: basic (ints, slices, None, Ellipsis), integer arrays with
    repeated positions, and bool masks."""
    shape = tuple(shape)
    if not shape:
        return st.sampled_from([(), None, Ellipsis]) | _mask_index(shape)
    return _basic_index(shape) | _array_index(shape) | _mask_index(shape)


# --- per-op sample families ---------------------------------------------------------------------------
SAMPLERS = {}
"""``{family: sampler}``, one for every ``sample`` value an op in ``tinygraph.ops.OPS`` names:
``sampler(op_cls, dtype)`` is a strategy of ``(op instance, [input arrays])`` (see ``op_samples``)."""


def _sampler(family):
    def register(fn):
        SAMPLERS[family] = fn
        return fn
    return register


@_sampler("unary")
@st.composite
def _unary(draw, op_cls, dtype):
    return op_cls(), draw(_op_inputs(op_cls, [draw(shapes())], dtype))


@_sampler("pow_const")
@st.composite
def _pow_const(draw, op_cls, dtype):
    exponent = draw(st.sampled_from([2, 3, 1, 0, -1, -2, 0.5, 1.5, -0.5, 2.5]))
    shape = draw(shapes())
    if float(exponent).is_integer() and exponent >= 0:   # a polynomial: any x, zero included
        x = draw(_op_inputs(op_cls, [shape], dtype, away_from=()))
    elif float(exponent).is_integer():                   # a pole at 0
        x = draw(_op_inputs(op_cls, [shape], dtype, away_from=(0.0,)))
        x = np.where(np.abs(x) < 0.5, np.sign(x) * 0.5, x).astype(dtype)
    else:                                                # x ** 0.5 and friends need x > 0
        x = draw(_op_inputs(op_cls, [shape], dtype, low=0.5, high=3.0))
    return op_cls(exponent), x


@_sampler("binary")
@st.composite
def _binary(draw, op_cls, dtype):
    return op_cls(), draw(_op_inputs(op_cls, draw(broadcastable_pairs(2)), dtype))


@_sampler("where")
@st.composite
def _where(draw, op_cls, dtype):
    cond_shape, x_shape, y_shape = draw(broadcastable_pairs(3))
    return op_cls(), [draw(arrays(cond_shape, np.bool_)), *draw(_op_inputs(op_cls, [x_shape, y_shape], dtype))]


@_sampler("matmul")
@st.composite
def _matmul(draw, op_cls, dtype):
    """Vector or matrix operands, with broadcast batch dimensions: (k,), (..., m, k) @ (k,), (..., k, n)."""
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    x_batch, y_batch = draw(broadcastable_pairs(2, max_dims=2, max_side=3))
    x_shape = (k,) if draw(st.booleans()) else x_batch + (m, k)
    y_shape = (k,) if draw(st.booleans()) else y_batch + (k, n)
    return op_cls(), draw(_op_inputs(op_cls, [x_shape, y_shape], dtype))


def _axes(shape):
    """None (all), or a sorted tuple of distinct non-negative axes (possibly empty)."""
    subsets = st.sets(st.sampled_from(range(len(shape)))) if shape else st.just(set())
    return st.none() | subsets.map(lambda s: tuple(sorted(s)))


@_sampler("reduce")
@st.composite
def _reduce(draw, op_cls, dtype):
    shape = draw(shapes())
    return op_cls(draw(_axes(shape)), draw(st.booleans())), draw(_op_inputs(op_cls, [shape], dtype))


def _prime_factors(n):
    factors, p = [], 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors


@_sampler("reshape")
@st.composite
def _reshape(draw, op_cls, dtype):
    """A target shape with the same element count: the prime factors dealt into 0-4 dims, ones added,
    sometimes one dim written as -1."""
    shape = draw(shapes())
    factors = _prime_factors(math.prod(shape))
    ndim = draw(st.integers(1 if factors else 0, 4))
    target = [1] * ndim
    for f in factors:
        target[draw(st.integers(0, ndim - 1))] *= f
    if ndim and draw(st.booleans()):
        target[draw(st.integers(0, ndim - 1))] = -1
    return op_cls(tuple(target)), draw(_op_inputs(op_cls, [shape], dtype))


@_sampler("transpose")
@st.composite
def _transpose(draw, op_cls, dtype):
    shape = draw(shapes())
    return op_cls(tuple(draw(st.permutations(range(len(shape)))))), draw(_op_inputs(op_cls, [shape], dtype))


@_sampler("broadcast_to")
@st.composite
def _broadcast_to(draw, op_cls, dtype):
    """A target with up to two new leading dims, size-1 dims stretched."""
    shape = draw(shapes())
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    target = lead + tuple(draw(st.integers(1, 3)) if n == 1 else n for n in shape)
    return op_cls(target), draw(_op_inputs(op_cls, [shape], dtype))


@_sampler("getitem")
@st.composite
def _getitem(draw, op_cls, dtype):
    shape = draw(shapes())
    return op_cls(draw(indices(shape))), draw(_op_inputs(op_cls, [shape], dtype))


@_sampler("index_add")
@st.composite
def _index_add(draw, op_cls, dtype):
    """index_add(shape, index): scatters a source of the shape ``zeros(shape)[index]`` has."""
    shape = draw(shapes())
    index = draw(indices(shape))
    source_shape = np.empty(shape)[index].shape
    return op_cls(shape, index, is_advanced(index)), draw(_op_inputs(op_cls, [source_shape], dtype))


@_sampler("concat")
@st.composite
def _concat(draw, op_cls, dtype):
    """1-3 inputs that agree on every dim except ``axis``."""
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(0, len(shape) - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    input_shapes = [shape[:axis] + (n,) + shape[axis + 1:] for n in sizes]
    return op_cls(axis), draw(_op_inputs(op_cls, input_shapes, dtype))


@_sampler("stack")
@st.composite
def _stack(draw, op_cls, dtype):
    """1-3 inputs of one shape, stacked along a new axis (0 .. ndim)."""
    shape = draw(shapes())
    axis = draw(st.integers(0, len(shape)))
    count = draw(st.integers(1, 3))
    return op_cls(axis), draw(_op_inputs(op_cls, [shape] * count, dtype))


@_sampler("astype")
@st.composite
def _astype(draw, op_cls, dtype):
    """Casts that lose nothing (same dtype, or widening), so the gradient check stays exact."""
    targets = [np.dtype(dtype)] + ([np.dtype(np.float64)] if np.dtype(dtype) != np.float64 else [])
    return op_cls(draw(st.sampled_from(targets))), draw(_op_inputs(op_cls, [draw(shapes())], dtype))


@_sampler("affine")
@st.composite
def _affine(draw, op_cls, dtype):
    """x (..., in), W (out, in), b (out,) — or no b."""
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(shapes(max_dims=2))
    bias = [(n_out,)] if draw(st.booleans()) else []
    return op_cls(), draw(_op_inputs(op_cls, [batch + (n_in,), (n_out, n_in), *bias], dtype))


@st.composite
def _recurrent_block(draw, op_cls, dtype, gates, with_cell=False, optional_bias=False):
    """p (B, gates*H), h (B, H)[, c (B, H)], W_hh (gates*H, H), b_hh (gates*H,) — left out half the
    time with ``optional_bias``; values in [-1, 1] so the gates are not all saturated (a saturated
    gate has a near-zero gradient and checks nothing)."""
    batch, hidden = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    state = [(batch, hidden)] * (2 if with_cell else 1)
    bias = [(gates * hidden,)] if not optional_bias or draw(st.booleans()) else []
    shapes_ = [(batch, gates * hidden), *state, (gates * hidden, hidden), *bias]
    return draw(_op_inputs(op_cls, shapes_, dtype, low=-1.0, high=1.0))


@_sampler("rnn_cell")
@st.composite
def _rnn_cell(draw, op_cls, dtype):
    nonlinearity = draw(st.sampled_from(["tanh", "relu", "sigmoid"]))
    p, h, w_hh, *b_hh = draw(_recurrent_block(op_cls, dtype, gates=1, optional_bias=True))
    if nonlinearity == "relu":  # keep the pre-activation away from relu's kink by moving p
        rest = h @ w_hh.T + sum(b_hh)
        pre = np.vectorize(lambda v: _push_away(v, (0.0,), 0.05, -np.inf, np.inf))(p + rest)
        p = (pre - rest).astype(dtype)
    return op_cls(nonlinearity), [p, h, w_hh, *b_hh]


@_sampler("lstm_cell")
@st.composite
def _lstm_cell(draw, op_cls, dtype):
    return op_cls(), draw(_recurrent_block(op_cls, dtype, gates=4, with_cell=True, optional_bias=True))


@_sampler("gru_cell")
@st.composite
def _gru_cell(draw, op_cls, dtype):
    return op_cls(), draw(_recurrent_block(op_cls, dtype, gates=3))


@_sampler("cross_entropy")
@st.composite
def _cross_entropy(draw, op_cls, dtype):
    """logits (N, C) with integer targets (N,) in [0, C) (repeats included), reduction mean|sum|none."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    targets = draw(arrays((n,), np.int64, 0, c - 1))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return op_cls(targets, reduction), draw(_op_inputs(op_cls, [(n, c)], dtype))


@_sampler("linear_cross_entropy")
@st.composite
def _linear_cross_entropy(draw, op_cls, dtype):
    """x (lead..., H) with 1-2 leading dims, weight (V, H), bias (V,), integer targets (lead...) in
    [0, V) (repeats included), reduction mean|sum|none."""
    lead = draw(shapes(min_dims=1, max_dims=2, max_side=3))
    hidden, classes = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    targets = draw(arrays(lead, np.int64, 0, classes - 1))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    inputs = draw(_op_inputs(op_cls, [lead + (hidden,), (classes, hidden), (classes,)], dtype))
    return op_cls(targets, reduction), inputs


# --- elementwise math (tinygraph.ops.elementwise) -----------------------------------------------------
def _nonzero(x, low=0.5):
    """``x`` with every |value| below ``low`` moved to +-low (keeping its side)."""
    return np.where(np.abs(x) < low, np.where(x < 0, -low, low), x).astype(x.dtype)


@_sampler("unary_nonzero")
@st.composite
def _unary_nonzero(draw, op_cls, dtype):
    """One input with |x| >= 0.5: an op with a pole at 0 (reciprocal)."""
    (x,) = draw(_op_inputs(op_cls, [draw(shapes())], dtype))
    return op_cls(), [_nonzero(x)]


@_sampler("binary_nonzero")
@st.composite
def _binary_nonzero(draw, op_cls, dtype):
    """Two broadcastable inputs with |value| >= 0.5: away from the origin, where arctan2 and hypot
    have no derivative, and from arctan2's jump across the negative x axis."""
    op, inputs = draw(_binary(op_cls, dtype))
    return op, [_nonzero(a) for a in inputs]


@_sampler("binary_nan")
@st.composite
def _binary_nan(draw, op_cls, dtype):
    """Two broadcastable inputs, sometimes with NaN at some elements of one of them (never both, so
    a NaN-ignoring op's output stays finite)."""
    op, inputs = draw(_binary(op_cls, dtype))
    which = draw(st.sampled_from([None, 0, 1]))
    if which is not None:
        mask = draw(arrays(inputs[which].shape, np.bool_))
        inputs[which] = np.where(mask, np.nan, inputs[which]).astype(dtype)
    return op, inputs


@_sampler("mod")
@st.composite
def _mod(draw, op_cls, dtype):
    """x % y with x / y at least 0.03 from every integer (mod jumps there), whichever elements
    broadcasting pairs: x = (2j + 1) / 8 + u, |u| <= 0.02, in [-2.9, 2.9]; y = +-2**k (1 + v), k in
    {-1, 0, 1}, |v| <= 0.01. x / 2**k is 1/16, 1/8 or 1/4 from the nearest integer, and u and v move
    x / y by at most 0.025, 0.05 or 0.1 (|x / y| <= 1.45, 2.9, 5.8)."""
    x_shape, y_shape = draw(broadcastable_pairs(2))
    small = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False)

    def values(shape, make):
        count = math.prod(shape)
        return np.array([make() for _ in range(count)], dtype=np.float64).reshape(shape).astype(dtype)
    x = values(x_shape, lambda: (2 * draw(st.integers(-12, 11)) + 1) / 8 + 0.02 * draw(small))
    y = values(y_shape, lambda: draw(st.sampled_from([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])) *
               (1 + 0.01 * draw(small)))
    return op_cls(), [x, y]


@_sampler("nan_to_num")
@st.composite
def _nan_to_num(draw, op_cls, dtype):
    """Finite inputs with numpy's default replacements, or inputs with NaN, +inf and -inf at some
    elements and finite replacement values (the default +-max would overflow a gradient check)."""
    (x,) = draw(_op_inputs(op_cls, [draw(shapes())], dtype))
    if not draw(st.booleans()):
        return op_cls(), [x]
    kind = draw(arrays(x.shape, np.int64, 0, 3))
    x = np.choose(kind, [x, np.nan, np.inf, -np.inf]).astype(dtype)
    nan, posinf, neginf = (draw(st.sampled_from(v)) for v in ([0.0, 1.5], [2.0, 10.0], [-2.0, -10.0]))
    return op_cls(nan, posinf, neginf), [x]
# --- end of elementwise math ---------------------------------------------------------------------------
# --- shape area: flip, roll, pad --------------------------------------------------------------------
@_sampler("flip")
@st.composite
def _flip(draw, op_cls, dtype):
    """Any subset of the axes (none included), as the sorted tuple the functional form passes."""
    shape = draw(shapes())
    axes = draw(st.sets(st.sampled_from(range(len(shape)))) if shape else st.just(set()))
    return op_cls(tuple(sorted(axes))), draw(_op_inputs(op_cls, [shape], dtype))


@_sampler("roll")
@st.composite
def _roll(draw, op_cls, dtype):
    """An int shift of the flattened array (axis None), or one shift per axis of a subset of the axes;
    shifts from -5 to 5, so some exceed the axis' size."""
    shape = draw(shapes())
    if not shape or draw(st.booleans()):
        return op_cls(draw(st.integers(-5, 5)), None), draw(_op_inputs(op_cls, [shape], dtype))
    axes = tuple(sorted(draw(st.sets(st.sampled_from(range(len(shape))), min_size=1))))
    shift = tuple(draw(st.integers(-5, 5)) for _ in axes)
    return op_cls(shift, axes), draw(_op_inputs(op_cls, [shape], dtype))


@_sampler("pad")
@st.composite
def _pad(draw, op_cls, dtype):
    """Constant padding: 0-2 elements before and after each axis, one constant per side."""
    shape = draw(shapes())
    widths = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
    values = tuple((draw(st.sampled_from([0.0, 1.5])), draw(st.sampled_from([0.0, -2.0]))) for _ in shape)
    return op_cls(widths, values), draw(_op_inputs(op_cls, [shape], dtype))
# --- end of the shape area's samplers -----------------------------------------------------------------
# === reduce: samplers for reductions, scans, contractions and sorting (ops/reduce.py) ================
@_sampler("var")
@st.composite
def _var(draw, op_cls, dtype):
    """Var(axis, keepdims, ddof) with ddof 0 or 1, below the reduced count (ddof >= N gives inf/NaN)."""
    shape = draw(shapes())
    axis = draw(_axes(shape))
    count = math.prod(shape if axis is None else [shape[d] for d in axis])
    ddof = draw(st.sampled_from([0, 1])) if count > 1 else 0
    return op_cls(axis, draw(st.booleans()), ddof), draw(_op_inputs(op_cls, [shape], dtype))


@_sampler("max_shift")
@st.composite
def _max_shift(draw, op_cls, dtype):
    """MaxShift(axes): a sorted tuple of axes, all of them in place of None (as softmax passes)."""
    shape = draw(shapes())
    axes = draw(_axes(shape))
    axes = tuple(range(len(shape))) if axes is None else axes
    return op_cls(axes), draw(_op_inputs(op_cls, [shape], dtype))


@_sampler("scan")
@st.composite
def _scan(draw, op_cls, dtype):
    """A 1-3 dim input scanned along one of its axes (up to 5 long)."""
    shape = draw(shapes(min_dims=1, max_side=5))
    return op_cls(draw(st.integers(0, len(shape) - 1))), draw(_op_inputs(op_cls, [shape], dtype))


@_sampler("diff")
@st.composite
def _diff(draw, op_cls, dtype):
    """Diff(n, axis) with n from 1 to 3, also longer than the axis (the result is then empty)."""
    shape = draw(shapes(min_dims=1, max_side=5))
    return (op_cls(draw(st.integers(1, 3)), draw(st.integers(0, len(shape) - 1))),
            draw(_op_inputs(op_cls, [shape], dtype)))


# canonical subscripts: products, traces, diagonals, transposes, sums, outer products, 3 operands,
# a label repeated within one operand and shared with another, a 0-d operand
EINSUM_SUBSCRIPTS = ["ij,jk->ik", "bij,bjk->bik", "ii->", "ii->i", "ij->ji", "ij->", "i,j->ij",
                     "ij,ij->ij", "ij,jk,kl->il", "ii,i->i", "iij->j", "iji->ij", "ij,ik->jk",
                     ",i->i", "ij,j->i", "i,i->", "ijk->kj"]


@_sampler("einsum")
@st.composite
def _einsum(draw, op_cls, dtype):
    """An einsum from ``EINSUM_SUBSCRIPTS`` with a size drawn per label; a dimension whose label is
    not repeated within its operand is sometimes 1 (broadcast against the others)."""
    subscripts = draw(st.sampled_from(EINSUM_SUBSCRIPTS))
    terms = subscripts.split("->")[0].split(",")
    size = {c: draw(st.integers(1, 3)) for c in sorted(set("".join(terms)))}
    shapes_ = [tuple(1 if term.count(c) == 1 and draw(st.integers(0, 4)) == 0 else size[c] for c in term)
               for term in terms]
    return op_cls(subscripts, draw(st.booleans())), draw(_op_inputs(op_cls, shapes_, dtype))


@_sampler("diagonal")
@st.composite
def _diagonal(draw, op_cls, dtype):
    """Diagonal(offset, axis1, axis2) of a 2-3 dim input, offsets that leave the diagonal empty too."""
    shape = draw(shapes(min_dims=2))
    axis1, axis2 = draw(st.permutations(range(len(shape))))[:2]
    offset = draw(st.integers(-shape[axis1], shape[axis2]))
    return op_cls(offset, axis1, axis2), draw(_op_inputs(op_cls, [shape], dtype))


@_sampler("sort")
@st.composite
def _sort(draw, op_cls, dtype):
    """Sort(axis, descending) / ArgSort(axis, descending) along one axis of a 1-3 dim input."""
    shape = draw(shapes(min_dims=1, max_side=5))
    return (op_cls(draw(st.integers(0, len(shape) - 1)), draw(st.booleans())),
            draw(_op_inputs(op_cls, [shape], dtype)))


@_sampler("arg_reduce")
@st.composite
def _arg_reduce(draw, op_cls, dtype):
    """ArgMax/ArgMin(axis, keepdims): axis None or one axis of a non-empty input."""
    shape = draw(shapes())
    axis = draw(st.none() | st.integers(0, len(shape) - 1)) if shape else None
    return op_cls(axis, draw(st.booleans())), draw(_op_inputs(op_cls, [shape], dtype))
# === end of reduce ===================================================================================


def op_samples(op_cls, dtype=np.float64):
    """Strategy of ``(op instance, [input arrays])`` for the primitive ``op_cls`` (see ``SAMPLERS``)."""
    if isinstance(op_cls, str):
        op_cls = OPS[op_cls]
    if op_cls.sample not in SAMPLERS:
        raise LookupError(
            f"op {op_cls.name!r} ({op_cls.__qualname__}) has sample={op_cls.sample!r}, which is not a "
            f"family in tinygraph.testing.SAMPLERS ({', '.join(sorted(SAMPLERS))}); set `sample` to a "
            f"family whose constructor arguments fit, or add a sampler")
    return SAMPLERS[op_cls.sample](op_cls, dtype)


# --- gradient property tests ------------------------------------------------------------------------------
def _leaf(x):
    """A fresh leaf for ``x`` (array, number or Tensor): floating ones require grad unless ``x`` is a
    Tensor that does not; a Tensor's data is shared, so a mutation of it is seen by the caller."""
    if isinstance(x, Tensor):
        return Tensor._wrap(x.data, requires_grad=x.requires_grad, name=x.name)
    array = np.asarray(x)
    return Tensor._wrap(array.copy(), requires_grad=array.dtype.kind == "f")


def assert_not_mutated(fn, inputs, seed=0):
    """Run ``fn`` forward and (if its output requires grad) backward; assert no input was modified."""
    leaves = [_leaf(x) for x in inputs]
    before = [t.data.copy() for t in leaves]
    versions = [t.version for t in leaves]
    out = fn(*leaves)
    for i, (t, v) in enumerate(zip(leaves, versions)):
        if t.version != v:  # found before backward, which would refuse the written value
            raise AssertionError(f"input {i} (shape {t.shape}) was modified in place by {fn!r} "
                                 f"(its version went from {v} to {t.version})")
    wanted = [t for t in leaves if t.requires_grad]
    if out.requires_grad and wanted:
        seed_grad = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
        grad_of(out, wanted, grad_outputs=seed_grad)
    for i, (t, old) in enumerate(zip(leaves, before)):
        if t.data.shape != old.shape or not np.array_equal(t.data, old, equal_nan=True):
            raise AssertionError(f"input {i} (shape {old.shape}) was modified in place by {fn!r}")


def assert_gradients_at(fn, inputs, second_order=False, eps=1e-6, atol=1e-5, rtol=1e-3):
    """At these ``inputs``: ``fn`` leaves them unmodified, and its gradients (and second derivatives
    with ``second_order``) match float64 central differences. Raises ``GradcheckError`` otherwise."""
    assert_not_mutated(fn, inputs)
    gradcheck(fn, inputs, eps=eps, atol=atol, rtol=rtol)
    if second_order:
        gradgradcheck(fn, inputs, eps=eps, atol=atol, rtol=rtol)


def check_grads(fn=None, *inputs, second_order=False, eps=1e-6, atol=1e-5, rtol=1e-3, max_examples=None):
    """Property-test ``fn(*tensors) -> Tensor``: for inputs drawn from ``inputs`` (strategies, or fixed
    values), ``assert_gradients_at`` holds. Floating inputs are checked, integer/bool ones (targets,
    masks) are passed as constants; Tensors that do not require grad are constants too.

    ``check_grads(fn, *strategies)`` runs the test now. ``@check_grads(*strategies)`` turns the decorated
    function into a zero-argument test function of the same name.
    """
    if fn is None or isinstance(fn, SearchStrategy) or not callable(fn):
        strategies = inputs if fn is None else (fn,) + inputs

        def decorate(f):
            def test():
                check_grads(f, *strategies, second_order=second_order, eps=eps, atol=atol, rtol=rtol,
                            max_examples=max_examples)
            # no functools.wraps: pytest would read f's parameters as fixtures through __wrapped__
            test.__name__, test.__qualname__, test.__doc__ = f.__name__, f.__qualname__, f.__doc__
            test.__module__ = f.__module__
            return test
        return decorate

    strategies = [s if isinstance(s, SearchStrategy) else st.just(s) for s in inputs]

    @given(st.tuples(*strategies))
    def property_test(drawn):
        assert_gradients_at(fn, drawn, second_order, eps, atol, rtol)

    if max_examples is not None:
        property_test = hypothesis_settings(max_examples=max_examples)(property_test)
    property_test()
