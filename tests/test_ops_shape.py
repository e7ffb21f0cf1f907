"""Shape ops: forward-mode rules, numpy reference values, gradients of the composites, bad input.

The registry tests (tests/test_ops.py) cover every op's vjp; here each op's ``jvp`` is checked
directly, on arrays and recorded on Tensors: against float64 central differences, and against its
own ``vjp`` through the adjoint identity <u, J v> == <J^T u, v>.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.ops import NUMPY_VJP, OPS, TENSOR_VJP
from tinygraph.ops.lazy import materialize
from tinygraph.testing import arrays, assert_gradients_at, op_samples, shapes

# --- forward mode: every op of the shape area has its own jvp rule ------------------------------------
JVP_OPS = ["reshape", "transpose", "broadcast_to", "getitem", "index_add", "concat", "stack", "astype",
           "clone", "flip", "roll", "pad"]


def _forward(op, inputs):
    return np.asarray(op.forward(*inputs))


def _draw_tangents(data, inputs):
    """One tangent per floating input (None for the others, and for some floating ones: a None
    tangent means zero)."""
    tangents = []
    for k, x in enumerate(inputs):
        if x.dtype.kind != "f" or data.draw(st.integers(0, 3), label=f"no tangent {k}") == 0:
            tangents.append(None)
        else:
            tangents.append(data.draw(arrays(x.shape, x.dtype), label=f"tangent {k}"))
    return tangents


def test_every_op_of_the_area_defines_its_own_jvp():
    assert [name for name in JVP_OPS if "jvp" not in vars(OPS[name])] == []


@pytest.mark.parametrize("name", JVP_OPS)
@given(data=st.data())
def test_jvp_matches_central_differences_and_the_vjp(name, data):
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    tangents = _draw_tangents(data, inputs)
    out = _forward(op, inputs)
    jv = op.jvp(NUMPY_VJP, tangents, out, *inputs)
    if all(t is None for t in tangents):
        assert jv is None
        return
    assert jv.dtype == out.dtype
    jv = np.broadcast_to(jv, out.shape)
    eps = 1e-6
    shifted = [[x if t is None else x + sign * eps * t for x, t in zip(inputs, tangents)]
               for sign in (1, -1)]
    numerical = (_forward(op, shifted[0]) - _forward(op, shifted[1])) / (2 * eps)
    np.testing.assert_allclose(jv, numerical, rtol=1e-5, atol=1e-6)
    # the adjoint identity: the jvp and the vjp are the same linear map, transposed
    u = data.draw(arrays(out.shape, out.dtype), label="u")
    grads = op.vjp(NUMPY_VJP, u, out, *inputs)
    lhs = float(np.sum(u * jv))
    rhs = sum(float(np.sum(materialize(g) * t)) for g, t in zip(grads, tangents) if t is not None)
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)
    # the same rule recorded on Tensors gives the same tangent
    wrap = tg.Tensor._wrap
    with tg.enable_grad():
        recorded = op.jvp(TENSOR_VJP, [None if t is None else wrap(t) for t in tangents], wrap(out),
                          *[wrap(x) for x in inputs])
    np.testing.assert_array_equal(np.broadcast_to(recorded._data, out.shape), jv)


@pytest.mark.parametrize("name", JVP_OPS)
@given(data=st.data())
def test_jvp_keeps_float32(name, data):
    op, inputs = data.draw(op_samples(OPS[name], np.float32), label="op, inputs")
    tangents = [None if x.dtype.kind != "f" else np.ones_like(x) for x in inputs]
    out = _forward(op, inputs)
    jv = op.jvp(NUMPY_VJP, tangents, out, *inputs)
    assert jv.dtype == out.dtype


def test_layout_rules_read_no_value():
    """Their rules use shapes only, so the engine may release every input and output."""
    assert {name: OPS[name].saves for name in ["clone", "flip", "roll", "pad"]} == dict.fromkeys(
        ["clone", "flip", "roll", "pad"], ())


def test_jvp_of_a_cast_to_integers_is_none():
    op = OPS["astype"](np.int64)
    x = np.array([1.5, 2.5])
    assert op.jvp(NUMPY_VJP, [np.ones(2)], op.forward(x), x) is None


# --- the functions against numpy, over drawn inputs ----------------------------------------------------
def _negated(axes, ndim, draw):
    """Some axes written negatively, as users do (-1 for the last)."""
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


@st.composite
def _squeeze_case(draw, dtype):
    shape = draw(shapes(max_dims=4, max_side=3))
    ones = [a for a, n in enumerate(shape) if n == 1]
    axis = None
    if ones and draw(st.booleans()):
        axis = _negated(draw(st.sets(st.sampled_from(ones)).map(sorted)), len(shape), draw)
        if len(axis) == 1 and draw(st.booleans()):
            axis = axis[0]
    return [draw(arrays(shape, dtype))], dict(axis=axis)


@st.composite
def _expand_dims_case(draw, dtype, one=False):
    shape = draw(shapes())
    k = 1 if one else draw(st.integers(1, 2))
    axes = _negated(draw(st.permutations(range(len(shape) + k)))[:k], len(shape) + k, draw)
    return [draw(arrays(shape, dtype))], dict(axis=axes[0] if k == 1 and draw(st.booleans()) else axes)


@st.composite
def _moveaxis_case(draw, dtype):
    shape = draw(shapes(min_dims=1))
    k = draw(st.integers(1, len(shape)))
    source = _negated(draw(st.permutations(range(len(shape))))[:k], len(shape), draw)
    destination = _negated(draw(st.permutations(range(len(shape))))[:k], len(shape), draw)
    if k == 1 and draw(st.booleans()):
        source, destination = source[0], destination[0]
    return [draw(arrays(shape, dtype))], dict(source=source, destination=destination)


@st.composite
def _permute_case(draw, dtype):
    shape = draw(shapes())
    return [draw(arrays(shape, dtype))], dict(dims=_negated(draw(st.permutations(range(len(shape)))),
                                                           len(shape), draw))


@st.composite
def _flatten_case(draw, dtype):
    shape = draw(shapes(min_dims=1, max_dims=4, max_side=3))
    start = draw(st.integers(0, len(shape) - 1))
    end = draw(st.integers(start, len(shape) - 1))
    start, end = _negated((start, end), len(shape), draw)
    return [draw(arrays(shape, dtype))], dict(start_dim=start, end_dim=end)


def _flatten_reference(x, start_dim, end_dim):
    start, end = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:])


@st.composite
def _repeat_case(draw, dtype):
    shape = draw(shapes())
    axis = None if not shape or draw(st.booleans()) else draw(st.integers(-len(shape), len(shape) - 1))
    n = int(np.prod(shape)) if axis is None else shape[axis]
    if draw(st.booleans()):
        repeats = draw(st.integers(0, 3))
    else:
        repeats = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    return [draw(arrays(shape, dtype))], dict(repeats=repeats, axis=axis)


@st.composite
def _tile_case(draw, dtype):
    reps = draw(st.lists(st.integers(0, 3), max_size=3).map(tuple) | st.integers(0, 3))
    return [draw(arrays(shapes(), dtype))], dict(reps=reps)


@st.composite
def _roll_case(draw, dtype):
    shape = draw(shapes())
    if not shape or draw(st.booleans()):
        return [draw(arrays(shape, dtype))], dict(shift=draw(st.integers(-7, 7)), axis=None)
    axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=3))  # repeats too
    shift = tuple(draw(st.integers(-7, 7)) for _ in axes)
    if len(axes) == 1 and draw(st.booleans()):
        axes, shift = axes[0], shift[0]
    elif draw(st.booleans()):
        shift = shift[0]  # one shift for every axis
    return [draw(arrays(shape, dtype))], dict(shift=shift, axis=tuple(axes) if isinstance(axes, list) else axes)


@st.composite
def _flip_case(draw, dtype):
    shape = draw(shapes())
    axis = None
    if shape and draw(st.booleans()):
        axis = _negated(draw(st.sets(st.sampled_from(range(len(shape))), min_size=1).map(sorted)),
                        len(shape), draw)
        axis = axis[0] if len(axis) == 1 and draw(st.booleans()) else axis
    return [draw(arrays(shape, dtype))], dict(axis=axis)


@st.composite
def _pad_case(draw, dtype):
    shape = draw(shapes())
    mode = draw(st.sampled_from(["constant", "edge", "reflect", "wrap"]))
    high = 2 if mode == "constant" else 6  # reflect and wrap wider than the axis fold several times
    width = st.integers(0, high)
    form = draw(st.sampled_from(["int", "pair", "per axis"] if shape else ["int", "pair"]))
    if form == "int":
        pad_width = draw(width)
    elif form == "pair":
        pad_width = (draw(width), draw(width))
    else:
        pad_width = tuple((draw(width), draw(width)) for _ in shape)
    params = dict(pad_width=pad_width, mode=mode)
    if mode == "constant" and draw(st.booleans()):
        params["constant_values"] = (draw(st.sampled_from([0.0, 1.5])), -2.0)
    return [draw(arrays(shape, dtype))], params


@st.composite
def _concatenate_case(draw, dtype):
    count = draw(st.integers(1, 3))
    if draw(st.booleans()):  # axis None: any shapes, flattened
        return [draw(arrays(shapes(), dtype)) for _ in range(count)], dict(axis=None)
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    sizes = [draw(st.integers(0, 3)) for _ in range(count)]
    return [draw(arrays(shape[:axis % len(shape)] + (n,) + shape[axis % len(shape) + 1:], dtype))
            for n in sizes], dict(axis=axis)


@st.composite
def _stack_case(draw, dtype, kind):
    """Inputs numpy's vstack, hstack or dstack accepts: below the dimensions the stack promotes to,
    one shared shape; from there on, shapes that differ only on the axis joined along."""
    count = draw(st.integers(1, 3))
    ndim = draw(st.integers(0, 3))
    shape = draw(shapes(min_dims=ndim, max_dims=ndim))
    axis = {"vstack": 0 if ndim >= 2 else None, "dstack": 2 if ndim >= 3 else None,
            "hstack": None if ndim == 0 else 0 if ndim == 1 else 1}[kind]
    if axis is None:
        return [draw(arrays(shape, dtype)) for _ in range(count)], {}
    return [draw(arrays(shape[:axis] + (draw(st.integers(1, 3)),) + shape[axis + 1:], dtype))
            for _ in range(count)], {}


@st.composite
def _column_stack_case(draw, dtype):
    rows = draw(st.integers(1, 3))
    shapes_ = [(rows,) if draw(st.booleans()) else (rows, draw(st.integers(1, 3)))
               for _ in range(draw(st.integers(1, 3)))]
    return [draw(arrays(s, dtype)) for s in shapes_], {}


@st.composite
def _split_case(draw, dtype, equal):
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    if draw(st.booleans()):
        sections = draw(st.sampled_from([k for k in range(1, n + 1) if n % k == 0])) if equal else \
            draw(st.integers(1, 5))
    else:  # any order, out of range and negative: numpy's slicing semantics
        sections = draw(st.lists(st.integers(-n - 1, n + 2), max_size=3))
    return [draw(arrays(shape, dtype))], dict(indices_or_sections=sections, axis=axis)


@st.composite
def _chunk_case(draw, dtype):
    shape = draw(shapes(min_dims=1, min_side=0, max_side=6))
    return [draw(arrays(shape, dtype))], dict(chunks=draw(st.integers(1, 5)),
                                             dim=draw(st.integers(-len(shape), len(shape) - 1)))


def _chunk_reference(x, chunks, dim):
    """PyTorch's chunk: parts of ceil(n / chunks) elements; an empty axis gives ``chunks`` parts."""
    n = x.shape[dim]
    if n == 0:
        return [x] * chunks
    size = -(-n // chunks)
    return [np.take(x, np.arange(i, min(i + size, n)), axis=dim) for i in range(0, n, size)]


@st.composite
def _expand_case(draw, dtype):
    shape = draw(shapes(max_side=3))
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    sizes = lead + tuple(draw(st.sampled_from([-1, n] + ([3] if n == 1 else []))) for n in shape)
    return [draw(arrays(shape, dtype))], dict(sizes=sizes)


def _expand_reference(x, sizes):
    new = len(sizes) - x.ndim
    return np.broadcast_to(x, sizes[:new] + tuple(n if s == -1 else s for s, n in zip(sizes[new:], x.shape)))


def _one(fn):
    """A function of one tensor with keyword parameters, as (tensors, params) -> result."""
    return lambda xs, p: fn(xs[0], **p)


def _many(fn):
    """A function of a list of tensors, as (tensors, params) -> result."""
    return lambda xs, p: fn(list(xs), **p)


# name: (tinygraph, numpy reference (independent where numpy has no such function), inputs)
CASES = {
    "squeeze": (_one(tg.squeeze), _one(np.squeeze), _squeeze_case),
    "expand_dims": (_one(tg.expand_dims), _one(np.expand_dims), _expand_dims_case),
    "unsqueeze": (lambda xs, p: tg.unsqueeze(xs[0], np.ravel(p["axis"])[0].item()),
                  lambda xs, p: np.expand_dims(xs[0], np.ravel(p["axis"])[0].item()),
                  lambda dtype: _expand_dims_case(dtype, one=True)),
    "moveaxis": (_one(tg.moveaxis), _one(np.moveaxis), _moveaxis_case),
    "movedim": (_one(tg.movedim), _one(np.moveaxis), _moveaxis_case),
    "permute": (_one(tg.permute), lambda xs, p: np.transpose(xs[0], p["dims"]), _permute_case),
    "transpose": (lambda xs, p: tg.transpose(xs[0], p["dims"]),
                  lambda xs, p: np.transpose(xs[0], p["dims"]), _permute_case),
    "ravel": (_one(tg.ravel), _one(np.ravel), lambda dtype: _permute_case(dtype).map(lambda c: (c[0], {}))),
    "flatten": (_one(tg.flatten), _one(_flatten_reference), _flatten_case),
    "repeat": (_one(tg.repeat), _one(np.repeat), _repeat_case),
    "tile": (_one(tg.tile), _one(np.tile), _tile_case),
    "roll": (_one(tg.roll), _one(np.roll), _roll_case),
    "flip": (_one(tg.flip), _one(np.flip), _flip_case),
    "pad": (_one(tg.pad), _one(np.pad), _pad_case),
    "concatenate": (_many(tg.concatenate), lambda xs, p: np.concatenate(xs, **p), _concatenate_case),
    "vstack": (_many(tg.vstack), _many(np.vstack), lambda dtype: _stack_case(dtype, "vstack")),
    "hstack": (_many(tg.hstack), _many(np.hstack), lambda dtype: _stack_case(dtype, "hstack")),
    "dstack": (_many(tg.dstack), _many(np.dstack), lambda dtype: _stack_case(dtype, "dstack")),
    "column_stack": (_many(tg.column_stack), _many(np.column_stack), _column_stack_case),
    "split": (_one(tg.split), _one(np.split), lambda dtype: _split_case(dtype, True)),
    "array_split": (_one(tg.array_split), _one(np.array_split), lambda dtype: _split_case(dtype, False)),
    "chunk": (_one(tg.chunk), _one(_chunk_reference), _chunk_case),
    "expand": (lambda xs, p: tg.expand(xs[0], *p["sizes"]), _one(_expand_reference), _expand_case),
}


def _parts(result):
    return list(result) if isinstance(result, (list, tuple)) else [result]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_values_match_numpy(name, dtype, data):
    mine, reference, case = CASES[name]
    inputs, params = data.draw(case(dtype), label="inputs, params")
    expected = _parts(reference([x.copy() for x in inputs], params))
    got = _parts(mine([tg.tensor(x) for x in inputs], params))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape and a.dtype == b.dtype == dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a.data, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=10)
@given(data=st.data())
def test_float32_gradients_stay_float32(name, data):
    mine, _, case = CASES[name]
    inputs, params = data.draw(case(np.float32), label="inputs, params")
    tensors = [tg.tensor(x, requires_grad=True) for x in inputs]
    out = _weighted(mine(tensors, params))
    assert out.dtype == np.float32
    out.sum().backward()
    for t in tensors:
        assert t.grad is None or t.grad.dtype == np.float32


def _weighted(result):
    """One tensor from a list of parts, each scaled by its position + 1 (a part sent the wrong
    gradient shows), so gradcheck sees every part."""
    parts = _parts(result)
    if len(parts) == 1:
        return parts[0]
    return tg.concatenate([tg.ravel(p) * float(k + 1) for k, p in enumerate(parts)])


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=10)
@given(data=st.data())
def test_gradients_first_and_second_order(name, data):
    mine, _, case = CASES[name]
    inputs, params = data.draw(case(np.float64), label="inputs, params")
    if all(x.size == 0 for x in inputs):
        return  # nothing to differentiate
    assert_gradients_at(lambda *xs: _weighted(mine(xs, params)), inputs, second_order=True)


# --- bad input: a tinygraph error naming the function, the argument and what is allowed -----------------
def _x(*shape):
    return tg.zeros(*shape)


BAD_INPUT = [
    ("squeeze of a size-3 axis", lambda: tg.squeeze(_x(1, 3), 1), tg.ShapeError,
     r"squeeze: axis 1 of shape \(1, 3\) has size 3; only axes of size 1 can be removed \(here: \(0,\)\)"),
    ("squeeze out of range", lambda: tg.squeeze(_x(1, 3), 2), tg.ShapeError,
     r"squeeze: axis 2 is out of range for a tensor with 2 dimensions \(allowed: -2 to 1\)"),
    ("squeeze axis and dim", lambda: tg.squeeze(_x(1, 3), axis=0, dim=0), tg.ShapeError,
     r"squeeze: give axis= or dim="),
    ("squeeze axis a float", lambda: tg.squeeze(_x(1, 3), 0.0), tg.DTypeError, r"squeeze: axis must be an int"),
    ("expand_dims out of range", lambda: tg.expand_dims(_x(2), 2), tg.ShapeError,
     r"expand_dims: axis 2 is out of range for a tensor with 2 dimensions \(allowed: -2 to 1\)"),
    ("expand_dims repeated", lambda: tg.expand_dims(_x(2), (0, -3)), tg.ShapeError,
     r"expand_dims: axis \(0, -3\) repeats an axis"),
    ("unsqueeze out of range", lambda: tg.unsqueeze(_x(2, 3), -4), tg.ShapeError,
     r"unsqueeze: dim -4 is out of range .* \(allowed: -3 to 2\)"),
    ("permute repeats", lambda: tg.permute(_x(1, 2, 3), (0, 0, 1)), tg.ShapeError,
     r"permute: dims \(0, 0, 1\) is not a permutation of the 3 axes \(0, 1, 2\)"),
    ("permute too short", lambda: _x(1, 2, 3).permute(1, 0), tg.ShapeError,
     r"permute: dims \(1, 0\) is not a permutation of the 3 axes"),
    ("permute out of range", lambda: tg.permute(_x(1, 2), 0, 2), tg.ShapeError,
     r"permute: dims \(0, 2\) is not a permutation of the 2 axes \(0, 1\)"),
    ("transpose out of range", lambda: tg.transpose(_x(1, 2), (0, 5)), tg.ShapeError,
     r"transpose: axes \(0, 5\) is not a permutation of the 2 axes"),
    ("transpose(dim0, dim1) out of range", lambda: _x(1, 2).transpose(0, 2), tg.ShapeError,
     r"transpose: dim1 2 is out of range for a tensor with 2 dimensions"),
    ("transpose(dim0, dim1) of one axis", lambda: _x(1, 2).transpose(1, -1), tg.ShapeError,
     r"transpose: dims \(1, -1\) name one axis of shape \(1, 2\) twice"),
    ("moveaxis lengths", lambda: tg.moveaxis(_x(1, 2, 3), (0, 1), 2), tg.ShapeError,
     r"moveaxis: source \(0, 1\) and destination \(2,\) must name as many axes"),
    ("moveaxis out of range", lambda: tg.moveaxis(_x(1, 2), 0, 2), tg.ShapeError,
     r"moveaxis: destination 2 is out of range .* \(allowed: -2 to 1\)"),
    ("reshape element count", lambda: _x(2, 3).reshape(4), tg.ShapeError,
     r"reshape: cannot reshape \(2, 3\) \(6 elements\) into \(4,\); the element counts must match"),
    ("reshape two -1", lambda: _x(2, 3).view(-1, -1), tg.ShapeError,
     r"reshape: shape \(-1, -1\) has more than one -1"),
    ("reshape a float size", lambda: tg.reshape(_x(2), (2.0,)), tg.DTypeError, r"reshape: shape must be an int"),
    ("reshape below -1", lambda: tg.reshape(_x(2), (-2,)), tg.ShapeError, r"reshape: shape must be >= -1"),
    ("flatten start after end", lambda: tg.flatten(_x(1, 2, 3), 2, 1), tg.ShapeError,
     r"flatten: start_dim 2 comes after end_dim 1"),
    ("flatten out of range", lambda: _x(1, 2).flatten(3), tg.ShapeError,
     r"flatten: start_dim 3 is out of range .* \(allowed: -2 to 1\)"),
    ("repeat negative", lambda: tg.repeat(_x(2), -1), tg.ShapeError, r"repeat: repeats must be >= 0, got -1"),
    ("repeat negative per element", lambda: tg.repeat(_x(2), [1, -1]), tg.ShapeError,
     r"repeat: repeats must be >= 0, got -1"),
    ("repeat counts", lambda: tg.repeat(_x(3), [1, 2], axis=0), tg.ShapeError,
     r"repeat: repeats has 2 counts for axis 0 of size 3; give one count per element, or one int"),
    ("repeat a float count", lambda: tg.repeat(_x(3), 1.5), tg.DTypeError, r"repeat: repeats must be an int"),
    ("repeat axis out of range", lambda: _x(3).repeat(2, axis=1), tg.ShapeError,
     r"repeat: axis 1 is out of range"),
    ("tile negative", lambda: tg.tile(_x(2), (2, -1)), tg.ShapeError, r"tile: reps must be >= 0, got -1"),
    ("roll lengths", lambda: tg.roll(_x(2, 3), (1, 2, 3), (0, 1)), tg.ShapeError,
     r"roll: shift \(1, 2, 3\) and axis \(0, 1\) must have the same length"),
    ("roll tuple without axis", lambda: tg.roll(_x(2, 3), (1, 2)), tg.ShapeError,
     r"roll: without an axis the shift must be one int"),
    ("roll without shift", lambda: tg.roll(_x(2, 3)), tg.ShapeError, r"roll: shift is required"),
    ("roll out of range", lambda: _x(2, 3).roll(1, 2), tg.ShapeError, r"roll: axis 2 is out of range"),
    ("flip out of range", lambda: tg.flip(_x(2, 3), -3), tg.ShapeError,
     r"flip: axis -3 is out of range for a tensor with 2 dimensions \(allowed: -2 to 1\)"),
    ("pad three numbers per axis", lambda: tg.pad(_x(2, 3), ((1, 2, 3),)), tg.ShapeError,
     r"pad: pad_width \(\(1, 2, 3\),\) does not fit a tensor with 2 dimensions; allowed: ints in the forms n, "
     r"\(n,\), \(before, after\), \(\(before, after\),\) or 2 pairs"),
    ("pad three axes for two", lambda: tg.pad(_x(2, 3), ((1, 1), (1, 1), (1, 1))), tg.ShapeError,
     r"pad: pad_width .* does not fit a tensor with 2 dimensions"),
    ("pad ragged", lambda: tg.pad(_x(2, 3), ((1, 1), (1,))), tg.ShapeError, r"pad: pad_width .* does not fit"),
    ("pad float widths", lambda: tg.pad(_x(2, 3), 1.5), tg.ShapeError, r"pad: pad_width 1.5 does not fit"),
    ("pad negative", lambda: tg.pad(_x(2, 3), ((0, -1), (0, 0))), tg.ShapeError,
     r"pad: pad_width .* holds a negative width; widths are >= 0"),
    ("pad mode", lambda: tg.pad(_x(2), 1, mode="symmetric"), tg.ShapeError,
     r"pad: mode 'symmetric' is not supported; allowed: 'constant', 'edge', 'reflect', 'wrap'"),
    ("pad constant_values form", lambda: tg.pad(_x(2), 1, constant_values=(1, 2, 3)), tg.ShapeError,
     r"pad: constant_values \(1, 2, 3\) does not fit a tensor with 1 dimensions; allowed: numbers in the forms"),
    ("pad edge of an empty axis", lambda: tg.pad(_x(0, 2), 1, mode="edge"), tg.ShapeError,
     r"pad: mode 'edge' cannot pad axis 0 of shape \(0, 2\): it is empty; use mode 'constant'"),
    ("concatenate shapes", lambda: tg.concatenate([_x(2, 3), _x(2, 4)]), tg.ShapeError,
     r"concat: shapes \(2, 3\), \(2, 4\) must agree on every dimension except axis 0"),
    ("concatenate a tensor", lambda: tg.cat(_x(2, 3)), tg.ShapeError,
     r"concat: tensors must be a list or tuple of tensors, got Tensor"),
    ("concatenate nothing", lambda: tg.concat([]), tg.ShapeError, r"concat: needs at least one tensor"),
    ("concatenate 0-d", lambda: tg.concat([_x(), _x()]), tg.ShapeError,
     r"concat: axis 0 is out of range: the tensor is 0-d and has no axes"),
    ("concatenate out of range", lambda: tg.cat([_x(2), _x(2)], dim=1), tg.ShapeError,
     r"concat: axis 1 is out of range for a tensor with 1 dimensions \(allowed: -1 to 0\)"),
    ("vstack shapes", lambda: tg.vstack([_x(2), _x(3)]), tg.ShapeError, r"concat: shapes \(1, 2\), \(1, 3\)"),
    ("vstack a tensor", lambda: tg.vstack(_x(2)), tg.ShapeError, r"vstack: tensors must be a list or tuple"),
    ("split unequal", lambda: tg.split(_x(5), 2), tg.ShapeError,
     r"split: axis 0 of size 5 does not split into 2 equal parts; give a divisor of 5, a list of "
     r"indices, or use array_split"),
    ("split into 0", lambda: tg.array_split(_x(5), 0), tg.ShapeError, r"array_split: indices_or_sections must be >= 1"),
    ("split by a float", lambda: tg.split(_x(4), 2.0), tg.DTypeError,
     r"split: indices_or_sections must be an int or a list of ints"),
    ("chunk into 0", lambda: tg.chunk(_x(4), 0), tg.ShapeError, r"chunk: chunks must be >= 1, got 0"),
    ("chunk out of range", lambda: tg.chunk(_x(4), 2, dim=1), tg.ShapeError, r"chunk: dim 1 is out of range"),
    ("expand a size-3 axis", lambda: _x(3, 1).expand(2, 4), tg.ShapeError,
     r"expand: cannot expand shape \(3, 1\) to \(2, 4\); only axes of size 1 grow \(-1 keeps a size\)"),
    ("expand -1 for a new axis", lambda: _x(3).expand(-1, 3), tg.ShapeError,
     r"expand: sizes \(-1, 3\) do not fit a tensor of shape \(3,\): give at least 1 sizes, -1 only for "
     r"existing axes"),
    ("expand fewer sizes", lambda: _x(2, 3).expand(3), tg.ShapeError, r"expand: sizes \(3,\) do not fit"),
    ("mT of a vector", lambda: _x(3).mT, tg.ShapeError, r"mT: needs at least 2 dimensions, got shape \(3,\)"),
    ("complex input", lambda: tg.squeeze(np.array([1 + 2j])), tg.DTypeError,
     r"squeeze: argument x: dtype complex128 is not supported .*use numbers: float32/float64 for values"),
    ("object input", lambda: tg.flip(np.array([object()])), tg.DTypeError,
     r"flip: argument x: dtype object is not supported"),
    ("string input", lambda: tg.tile(["a", "b"], 2), tg.DTypeError, r"tile: argument x: dtype <U1 is not supported"),
    ("string in a list of tensors", lambda: tg.hstack([_x(2), np.array(["a"])]), tg.DTypeError,
     r"hstack: argument tensors\[1\]: dtype <U1 is not supported"),
    ("ragged input", lambda: tg.ravel([[1.0], [1.0, 2.0]]), tg.ShapeError,
     r"ravel: argument x is a ragged nested sequence; rows must have equal lengths"),
]


@pytest.mark.parametrize("call, error, message", [case[1:] for case in BAD_INPUT],
                         ids=[case[0] for case in BAD_INPUT])
def test_bad_input_is_a_tinygraph_error_that_says_what_is_allowed(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_pytorch_argument_spellings_mean_numpys():
    x = np.arange(24.0).reshape(2, 3, 4)
    t = tg.tensor(x)
    same = [
        (tg.concatenate([t, t], dim=1), np.concatenate([x, x], axis=1)),
        (tg.cat([t, t], dim=-1), np.concatenate([x, x], axis=-1)),
        (tg.squeeze(t[:1], dim=0), x[0]),
        (tg.expand_dims(t, dim=1), x[:, None]),
        (tg.repeat(t, 2, dim=2), np.repeat(x, 2, axis=2)),
        (tg.flip(t, dims=(0, 2)), np.flip(x, (0, 2))),
        (tg.roll(t, shifts=1, dims=1), np.roll(x, 1, 1)),
        (tg.linspace(0, 1, steps=3), np.linspace(0, 1, 3)),
    ]
    same += list(zip(tg.split(t, 2, dim=2), np.split(x, 2, axis=2)))
    same += list(zip(tg.array_split(t, 2, dim=1), np.array_split(x, 2, axis=1)))
    for got, expected in same:
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got.data, expected)
    with pytest.raises(tg.ShapeError, match=r"split: give axis= or dim="):
        tg.split(t, 2, axis=1, dim=2)
    with pytest.raises(tg.ShapeError, match=r"roll: give shift= or shifts="):
        tg.roll(t, 1, shifts=2)
