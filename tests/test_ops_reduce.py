"""Reductions, scans, contractions and sorting (tinygraph/ops/reduce.py and its functional wrappers).

The registry tests in test_ops.py check every op's gradients (first and second order), float32,
immutability, anomaly mode and declared saves. Here: values against numpy (1e-12, over drawn inputs),
the forward-mode ``jvp`` rules (central differences and <u, J v> == <J^T u, v>), gradients at zeros
(prod, cumprod), empty reductions, argument aliases (dim/keepdim, correction/unbiased) and errors.
"""
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.ops import NUMPY_VJP, OPS, TENSOR_VJP, apply
from tinygraph.ops.lazy import materialize
from tinygraph.testing import arrays, assert_gradients_at, check_grads, op_samples, shapes

REDUCE_OPS = ["min", "prod", "var", "cumsum", "cumprod", "diff", "einsum", "diagonal", "sort",
              "argmax", "argmin", "argsort"]
JVP_OPS = REDUCE_OPS + ["sum", "max"]
DIFFERENTIABLE = [n for n in JVP_OPS if OPS[n].differentiable]


def _descending_order(x, axis):
    """Stable descending argsort, written independently of the op (negation keeps ties in order)."""
    return np.argsort(-x, axis=axis, kind="stable")


# What each op computes, from numpy's documented functions.
OP_REFERENCE = {
    "min": lambda op, x: np.amin(x, axis=op.axis, keepdims=op.keepdims),
    "prod": lambda op, x: np.prod(x, axis=op.axis, keepdims=op.keepdims),
    "var": lambda op, x: np.var(x, axis=op.axis, ddof=op.ddof, keepdims=op.keepdims),
    "cumsum": lambda op, x: np.cumsum(x, axis=op.axis),
    "cumprod": lambda op, x: np.cumprod(x, axis=op.axis),
    "diff": lambda op, x: np.diff(x, n=op.n, axis=op.axis),
    "einsum": lambda op, *xs: np.einsum(op.subscripts, *xs),
    "diagonal": lambda op, x: np.diagonal(x, op.offset, op.axis1, op.axis2),
    "sort": lambda op, x: (np.take_along_axis(x, _descending_order(x, op.axis), op.axis)
                           if op.descending else np.sort(x, axis=op.axis)),
    "argmax": lambda op, x: np.argmax(x, axis=op.axis, keepdims=op.keepdims),
    "argmin": lambda op, x: np.argmin(x, axis=op.axis, keepdims=op.keepdims),
    "argsort": lambda op, x: (_descending_order(x, op.axis) if op.descending
                              else np.argsort(x, axis=op.axis, kind="stable")),
}


def test_every_op_of_the_area_has_a_reference():
    assert sorted(OP_REFERENCE) == sorted(REDUCE_OPS) and set(REDUCE_OPS) <= set(OPS)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", REDUCE_OPS)
@given(data=st.data())
def test_op_matches_numpy(name, dtype, data):
    op, inputs = data.draw(op_samples(OPS[name], dtype), label="op, inputs")
    expected = np.asarray(OP_REFERENCE[name](op, *inputs))
    out = apply(op, *[tg.tensor(a) for a in inputs])
    assert out.shape == expected.shape
    assert out.dtype == (np.int64 if name.startswith("arg") else dtype) == expected.dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out._data, expected, rtol=tol, atol=tol)


# --- the functions: values against numpy over drawn inputs --------------------------------------------
square = st.integers(1, 4).flatmap(lambda n: arrays((n, n)))
any_array = arrays(shapes())
at_least_1d = arrays(shapes(min_dims=1))
at_least_2d = arrays(shapes(min_dims=2))
matrix_pair = st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)).flatmap(
    lambda s: st.tuples(arrays((s[0], s[1])), arrays((s[1], s[2]))))
# dot of every rank pairing: (shape a, shape b) with the contracted sizes equal
DOT_SHAPES = [((), ()), ((), (3,)), ((2, 3), ()), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)),
              ((2, 3), (3, 4)), ((2, 2, 3), (3,)), ((3,), (2, 3, 4)), ((2, 2, 3), (3, 4)),
              ((2, 3), (2, 3, 4)), ((2, 1, 3), (2, 3, 2))]
dot_pair = st.sampled_from(DOT_SHAPES).flatmap(lambda s: st.tuples(arrays(s[0]), arrays(s[1])))
inner_pair = st.sampled_from([((), (2,)), ((3,), (3,)), ((2, 3), (3,)), ((2, 3), (4, 3)),
                              ((2, 1, 3), (2, 3))]).flatmap(lambda s: st.tuples(arrays(s[0]), arrays(s[1])))
# (subscripts, shapes): implicit outputs, '...', broadcasting of size-1 dimensions
EINSUM_CASES = [("ij,jk", [(2, 3), (3, 4)]), ("ij,kj", [(2, 3), (4, 3)]), ("ii", [(3, 3)]),
                ("ii->i", [(3, 3)]), ("ba,Ab", [(2, 3), (4, 2)]), ("...ij->...ji", [(2, 3, 4)]),
                ("...ii->...i", [(2, 3, 3)]), ("i...->...", [(3, 2, 2)]),
                ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]), ("...i,...i", [(1, 3), (4, 3)]),
                ("ij,ij->ij", [(1, 3), (4, 3)]), ("i,i,i->i", [(3,), (3,), (3,)]), (",->", [(), ()]),
                ("ij,j->i", [(2, 3), (1,)]), ("iji", [(2, 3, 2)])]
einsum_case = st.sampled_from(EINSUM_CASES).flatmap(
    lambda c: st.tuples(st.just(c[0]), st.tuples(*[arrays(s) for s in c[1]])))


def _axis_of(x):
    return st.none() | st.integers(-max(x.ndim, 1), max(x.ndim, 1) - 1) if x.ndim else st.none()


@st.composite
def reduced(draw, source=any_array):
    """(x, axis, keepdims) with axis None, an int (negative too) or a tuple."""
    x = draw(source)
    axis = draw(st.none() | st.sets(st.integers(0, x.ndim - 1)).map(tuple) | st.integers(-x.ndim, x.ndim - 1)
                if x.ndim else st.none())
    return x, axis, draw(st.booleans())


def _numpy_tril(x, k):
    return np.tril(x, k)


FUNCTIONS = {
    # name: (tinygraph call, numpy call, strategy of argument tuples)
    "min": (lambda x, a, k: tg.min(x, a, k), lambda x, a, k: np.min(x, a, keepdims=k), reduced()),
    "max": (lambda x, a, k: tg.max(x, a, k), lambda x, a, k: np.max(x, a, keepdims=k), reduced()),
    "prod": (lambda x, a, k: tg.prod(x, a, k), lambda x, a, k: np.prod(x, a, keepdims=k), reduced()),
    "mean": (lambda x, a, k: tg.mean(x, a, k), lambda x, a, k: np.mean(x, a, keepdims=k), reduced()),
    "var": (lambda x, a, k: tg.var(x, a, keepdims=k), lambda x, a, k: np.var(x, a, keepdims=k), reduced()),
    "std": (lambda x, a, k: tg.std(x, a, keepdims=k), lambda x, a, k: np.std(x, a, keepdims=k), reduced()),
    "var ddof=1": (lambda x: tg.var(x, 0, ddof=1), lambda x: np.var(x, 0, ddof=1),
                   st.tuples(arrays(st.integers(2, 5).map(lambda n: (n, 2))))),
    "std unbiased": (lambda x: tg.std(x, unbiased=True), lambda x: np.std(x, ddof=1),
                     st.tuples(arrays(st.integers(2, 6)))),
    "cumsum flattened": (tg.cumsum, np.cumsum, st.tuples(any_array)),
    "cumprod axis": (lambda x: tg.cumprod(x, -1), lambda x: np.cumprod(x, -1), st.tuples(at_least_1d)),
    "diff": (lambda x, n: tg.diff(x, n), lambda x, n: np.diff(x, n),
             st.tuples(at_least_1d, st.integers(0, 3))),
    "diff axis 0": (lambda x: tg.diff(x, axis=0), lambda x: np.diff(x, axis=0), st.tuples(at_least_2d)),
    "sort flattened": (lambda x: tg.sort(x, None), lambda x: np.sort(x, None), st.tuples(any_array)),
    "argsort": (lambda x: tg.argsort(x), lambda x: np.argsort(x, kind="stable"), st.tuples(at_least_1d)),
    "argmax flattened": (tg.argmax, np.argmax, st.tuples(any_array)),
    "argmin axis": (lambda x: tg.argmin(x, 0, True), lambda x: np.argmin(x, 0, keepdims=True),
                    st.tuples(at_least_1d)),
    "dot": (tg.dot, np.dot, dot_pair),
    "inner": (tg.inner, np.inner, inner_pair),
    "outer": (tg.outer, np.outer, st.tuples(any_array, any_array)),
    "kron": (tg.kron, np.kron, st.tuples(arrays(shapes(max_dims=2, max_side=3)),
                                          arrays(shapes(max_dims=3, max_side=3)))),
    "tensordot int": (lambda a, b: tg.tensordot(a, b, 1), lambda a, b: np.tensordot(a, b, 1), matrix_pair),
    "tensordot 0": (lambda a, b: tg.tensordot(a, b, 0), lambda a, b: np.tensordot(a, b, 0),
                    st.tuples(any_array, any_array)),
    "tensordot pairs": (lambda a, b: tg.tensordot(a, b, ([0, 2], [1, 0])),
                        lambda a, b: np.tensordot(a, b, ([0, 2], [1, 0])),
                        st.tuples(arrays((2, 3, 4)), arrays((4, 2, 3)))),
    "einsum": (lambda s, ops: tg.einsum(s, *ops), lambda s, ops: np.einsum(s, *ops), einsum_case),
    "trace": (tg.trace, np.trace, st.tuples(at_least_2d)),
    "trace offset axes": (lambda x: tg.trace(x, 1, 2, 0), lambda x: np.trace(x, 1, 2, 0),
                          st.tuples(arrays(shapes(min_dims=3, max_dims=3)))),
    "diag of a vector": (tg.diag, np.diag, st.tuples(at_least_1d.filter(lambda a: a.ndim == 1))),
    "diag k": (lambda v, k: tg.diag(v, k), lambda v, k: np.diag(v, k),
               st.tuples(arrays(shapes(min_dims=1, max_dims=2)), st.integers(-3, 3))),
    "diagonal": (lambda x, k: tg.diagonal(x, k), lambda x, k: np.diagonal(x, k),
                 st.tuples(at_least_2d, st.integers(-3, 3))),
    "tril": (lambda x, k: tg.tril(x, k), _numpy_tril, st.tuples(at_least_1d, st.integers(-3, 3))),
    "triu": (lambda x, k: tg.triu(x, k), lambda x, k: np.triu(x, k),
             st.tuples(at_least_1d, st.integers(-3, 3))),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@settings(max_examples=15)
@given(data=st.data())
def test_function_matches_numpy(name, data):
    ours, theirs, args = FUNCTIONS[name]
    args = data.draw(args, label="args")
    expected = np.asarray(theirs(*args))
    out = ours(*[tg.tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    assert out.shape == expected.shape and out.dtype == expected.dtype, (out.shape, expected.shape)
    np.testing.assert_allclose(out._data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["var", "std", "prod", "dot", "einsum", "kron", "trace", "tril", "diag k",
                                  "cumsum flattened", "sort flattened", "tensordot pairs"])
@settings(max_examples=5)
@given(data=st.data())
def test_float32_stays_float32(name, data):
    ours, _, args = FUNCTIONS[name]
    args = data.draw(args, label="args")
    def f32(a):
        if isinstance(a, tuple):
            return [f32(b) for b in a]
        return tg.tensor(a.astype(np.float32)) if isinstance(a, np.ndarray) else a
    assert ours(*[f32(a) for a in args]).dtype == np.float32


def test_int_and_bool_inputs_follow_numpy_dtypes():
    ints = np.arange(6, dtype=np.int32).reshape(2, 3)
    for ours, theirs in [(tg.cumsum, np.cumsum), (tg.prod, np.prod), (tg.var, np.var),
                         (tg.sort, np.sort), (tg.argmax, np.argmax), (tg.trace, np.trace),
                         (tg.tril, np.tril), (lambda x: tg.diff(x), np.diff)]:
        out, expected = ours(tg.tensor(ints)), theirs(ints)
        assert out.dtype == np.asarray(expected).dtype
        np.testing.assert_array_equal(out._data, expected)
    assert tg.cumsum(tg.tensor([True, False, True])).dtype == np.cumsum([True, False, True]).dtype


# --- gradients of the functions (composites and wrappers) ---------------------------------------------
GRADIENTS = {
    "std": (lambda x: tg.std(x, axis=-1), [arrays(st.integers(2, 4).map(lambda n: (2, n)), distinct=True)]),
    "var ddof 1": (lambda x: tg.var(x, ddof=1), [arrays(st.integers(2, 5))]),
    "min axis": (lambda x: tg.min(x, axis=0), [arrays((3, 2), distinct=True)]),
    "dot": (tg.dot, [dot_pair.map(lambda p: p[0]), dot_pair.map(lambda p: p[1])]),
    "inner": (tg.inner, [arrays((2, 3)), arrays((4, 3))]),
    "outer": (tg.outer, [arrays((2, 2)), arrays((3,))]),
    "kron": (tg.kron, [arrays((2, 2)), arrays((3,))]),
    "tensordot": (lambda a, b: tg.tensordot(a, b, ([0, 2], [1, 0])), [arrays((2, 3, 2)), arrays((2, 2, 3))]),
    "einsum ellipsis broadcast": (lambda a, b: tg.einsum("...ij,...jk", a, b),
                                  [arrays((2, 1, 2, 3)), arrays((3, 3, 2))]),
    "einsum implicit trace": (lambda a: tg.einsum("ii", a), [arrays((3, 3))]),
    "einsum diagonal of a 3-tensor": (lambda a: tg.einsum("iii->i", a), [arrays((2, 2, 2))]),
    "einsum same operand twice": (lambda a: tg.einsum("ij,ij->", a, a), [arrays((2, 3))]),
    "trace": (lambda x: tg.trace(x, offset=-1), [arrays((3, 4))]),
    "diag build": (lambda v: tg.diag(v, k=1), [arrays((3,))]),
    "tril triu": (lambda x: tg.tril(x, 1) * 2 + tg.triu(x, -1), [arrays((2, 3, 3))]),
    "sort flattened descending": (lambda x: tg.sort(x, axis=None, descending=True) * tg.tensor([1.0, 2, 3, 4, 5, 6]),
                                  [arrays((2, 3), distinct=True)]),
    "cumprod flattened": (tg.cumprod, [arrays((2, 3), low=-2, high=2)]),
}


@pytest.mark.parametrize("name", sorted(GRADIENTS))
def test_function_gradients(name):
    fn, inputs = GRADIENTS[name]
    check_grads(fn, *inputs, second_order=True, max_examples=8)


def test_tied_minima_share_the_gradient():
    x = tg.tensor([[1.0, 1.0, 2.0], [0.0, 3.0, 0.0]], requires_grad=True)
    tg.min(x, dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.5, 0.5, 0], [0.5, 0, 0.5]])


# --- zeros in prod and cumprod ---------------------------------------------------------------------------
def _others(x):
    """Products of all other elements, by a loop."""
    flat = x.reshape(-1)
    return np.array([np.prod(np.delete(flat, j)) for j in range(flat.size)]).reshape(x.shape)


@pytest.mark.parametrize("values", [[2.0, 0.0, 3.0, -1.5], [0.0, 2.0, 0.0, 3.0], [0.0, 0.0, 0.0, 1.0],
                                    [1.5, -2.0, 0.5, 3.0]], ids=["one zero", "two zeros", "three", "none"])
def test_prod_gradient_with_zeros(values):
    x = tg.tensor(values, requires_grad=True)
    tg.prod(x).backward()
    np.testing.assert_allclose(x.grad, _others(np.array(values)), rtol=1e-12, atol=0)
    assert_gradients_at(lambda t: tg.prod(t.reshape(2, 2), axis=1), [np.array(values)], second_order=True)
    assert_gradients_at(lambda t: tg.prod(t), [np.array(values)], second_order=True)


def test_prod_gradient_with_zeros_matches_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.0, 2.0, 3.0]])
    at = torch.tensor(a, requires_grad=True)
    at.prod(dim=1).sum().backward()
    x = tg.tensor(a, requires_grad=True)
    tg.prod(x, dim=1).sum().backward()
    np.testing.assert_allclose(x.grad, at.grad.numpy(), rtol=1e-12)


CUMPROD_ZEROS = [[2.0, 0.0, 3.0, -1.5, 0.5], [0.0, 2.0, 0.0, 3.0, 1.0], [1.0, 2.0, 3.0, 0.0, 0.0],
                 [0.0, 0.0, 0.0, 0.0, 0.0], [1.5, -2.0, 0.5, 3.0, 0.7]]


def _cumprod_jacobian(x):
    """J[i, j] = d out_i / d x_j = prod_{k <= i, k != j} x_k for j <= i, by a loop."""
    n = len(x)
    return np.array([[np.prod(np.delete(x[:i + 1], j)) if j <= i else 0.0 for j in range(n)]
                     for i in range(n)])


@pytest.mark.parametrize("values", CUMPROD_ZEROS, ids=["one zero", "two zeros", "trailing", "all", "none"])
def test_cumprod_rules_with_zeros(values):
    x = np.array(values)
    op = OPS["cumprod"](0)
    out = op.forward(x)
    J = _cumprod_jacobian(x)
    g = np.random.default_rng(1).standard_normal(5)
    t = np.random.default_rng(2).standard_normal(5)
    np.testing.assert_allclose(op.vjp(NUMPY_VJP, g, out, x)[0], J.T @ g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.vjp_arrays(g, out, x)[0], J.T @ g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.jvp(NUMPY_VJP, (t,), out, x), J @ t, rtol=1e-12, atol=1e-12)
    assert_gradients_at(lambda a: tg.cumprod(a), [x], second_order=True)
    # 2-d, scanned along axis 1, rows with zeros at different places
    rows = np.array(CUMPROD_ZEROS)
    assert_gradients_at(lambda a: tg.cumprod(a, axis=1), [rows], second_order=True)


def test_cumprod_gradient_with_zeros_matches_torch():
    torch = pytest.importorskip("torch")
    a = np.array(CUMPROD_ZEROS)
    at = torch.tensor(a, requires_grad=True)
    (at.cumprod(dim=1) * torch.arange(5.0, dtype=torch.float64)).sum().backward()
    x = tg.tensor(a, requires_grad=True)
    (tg.cumprod(x, dim=1) * tg.tensor(np.arange(5.0))).sum().backward()
    np.testing.assert_allclose(x.grad, at.grad.numpy(), rtol=1e-12, atol=1e-12)


# --- forward mode: the jvp rules ---------------------------------------------------------------------
def _tangents(data, inputs, dtype=None):
    """One tangent per input: a drawn array of its shape for floating inputs, None otherwise."""
    return [data.draw(arrays(a.shape, dtype or a.dtype), label=f"tangent {k}") if a.dtype.kind == "f"
            else None for k, a in enumerate(inputs)]


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@settings(max_examples=15)
@given(data=st.data())
def test_jvp_matches_central_differences_and_the_vjp(name, data):
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    tangents = _tangents(data, inputs)
    out = op.forward(*inputs)
    tangent = op.jvp(NUMPY_VJP, tangents, out, *inputs)
    tangent = np.broadcast_to(tangent, out.shape)
    eps = 1e-6
    plus = op.forward(*[a + eps * t for a, t in zip(inputs, tangents)])
    minus = op.forward(*[a - eps * t for a, t in zip(inputs, tangents)])
    np.testing.assert_allclose(tangent, (plus - minus) / (2 * eps), rtol=1e-4, atol=1e-6)
    # <u, J v> == <J^T u, v>
    u = data.draw(arrays(out.shape), label="u")
    grads = op.vjp(NUMPY_VJP, u, out, *inputs)
    transposed = sum(np.sum(materialize(gk) * t) for gk, t in zip(grads, tangents) if t is not None)
    np.testing.assert_allclose(np.sum(u * tangent), transposed, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@settings(max_examples=8)
@given(data=st.data())
def test_jvp_runs_on_tensors_and_keeps_the_dtype(name, data):
    """The rule recorded on Tensors (TENSOR_VJP) gives the array rule's values; float32 stays float32."""
    op, inputs = data.draw(op_samples(OPS[name], np.float32), label="op, inputs")
    if name == "cumprod":  # its rule divides by x: float32 values near 1e-38 overflow (see CumProd)
        assume(all(np.all((a == 0) | (np.abs(a) > 1e-20)) for a in inputs))
    tangents = _tangents(data, inputs)
    out = op.forward(*inputs)
    tangent = op.jvp(NUMPY_VJP, tangents, out, *inputs)
    assert tangent.dtype == out.dtype == np.float32
    np.broadcast_to(tangent, out.shape)
    with tg.enable_grad():
        recorded = op.jvp(TENSOR_VJP, [None if t is None else tg.tensor(t) for t in tangents],
                          tg.tensor(out), *[tg.tensor(a) for a in inputs])
    assert recorded.dtype == np.float32
    np.testing.assert_allclose(recorded._data, tangent, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", JVP_OPS)
@settings(max_examples=5)
@given(data=st.data())
def test_jvp_of_no_tangent_is_none(name, data):
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    assert op.jvp(NUMPY_VJP, [None] * len(inputs), op.forward(*inputs), *inputs) is None


def test_einsum_jvp_with_some_tangents_missing():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4) - 5
    op = OPS["einsum"]("ij,jk->ik")
    t = np.ones((3, 4))
    np.testing.assert_allclose(op.jvp(NUMPY_VJP, (None, t), a @ b, a, b), a @ t)
    np.testing.assert_allclose(op.jvp(NUMPY_VJP, (t.T[:2] * 0 + 1, None), a @ b, a, b), np.ones((2, 3)) @ b)


def test_index_ops_have_no_tangent():
    x = np.array([[3.0, 1.0], [2.0, 5.0]])
    for name, op in [("argmax", OPS["argmax"](1)), ("argmin", OPS["argmin"](None)),
                     ("argsort", OPS["argsort"](0))]:
        assert op.jvp(NUMPY_VJP, (np.ones_like(x),), op.forward(x), x) is None, name


# --- empty reductions -----------------------------------------------------------------------------------
def test_empty_reductions_follow_numpy_without_warnings():
    empty = tg.tensor(np.zeros((0, 3)), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tg.sum(empty).item() == 0 and tg.prod(empty).item() == 1
        np.testing.assert_array_equal(tg.prod(empty, axis=0)._data, np.ones(3))
        for value in [tg.mean(empty), tg.var(empty), tg.std(empty), tg.var(tg.tensor([1.0]), ddof=1),
                      tg.mse_loss(tg.tensor([]), tg.tensor([]))]:
            assert np.isnan(value.item())
        np.testing.assert_array_equal(tg.mean(empty, axis=0)._data, np.full(3, np.nan))
        assert tg.max(empty, axis=1).shape == (0,) and tg.argmin(empty, axis=1).shape == (0,)
        tg.prod(empty).backward()
    assert empty.grad.shape == (0, 3)


@pytest.mark.parametrize("fn", [tg.max, tg.min, tg.argmax, tg.argmin])
def test_max_min_argmax_of_an_empty_axis_name_the_function(fn):
    name = fn.__name__
    with pytest.raises(tg.ShapeError, match=rf"^{name}: .*\(0, 3\)"):
        fn(tg.tensor(np.zeros((0, 3))))
    with pytest.raises(tg.ShapeError, match=rf"^{name}: .*axis 0"):
        fn(tg.tensor(np.zeros((0, 3))), axis=0)


# --- aliases --------------------------------------------------------------------------------------------
def test_dim_and_keepdim_are_aliases():
    x = tg.tensor(np.arange(24.0).reshape(2, 3, 4) % 7)
    for fn in [tg.sum, tg.mean, tg.max, tg.min, tg.prod, tg.var, tg.std]:
        np.testing.assert_array_equal(fn(x, dim=(0, 2), keepdim=True)._data, fn(x, (0, 2), keepdims=True)._data)
    for fn in [tg.argmax, tg.argmin]:
        np.testing.assert_array_equal(fn(x, dim=1, keepdim=True)._data, fn(x, 1, True)._data)
    for fn in [tg.cumsum, tg.cumprod, tg.sort, tg.argsort, tg.diff]:
        np.testing.assert_array_equal(fn(x, dim=1)._data, fn(x, axis=1)._data)
    np.testing.assert_array_equal(tg.diagonal(x, dim1=2, dim2=0)._data, np.diagonal(x._data, 0, 2, 0))
    np.testing.assert_array_equal(tg.tril(x, diagonal=-1)._data, np.tril(x._data, -1))


def test_torch_variance_arguments():
    x = tg.tensor([1.0, 2.0, 4.0, 7.0])
    assert tg.var(x).item() == np.var(x._data)  # numpy's default: ddof=0
    for kwargs in [dict(ddof=1), dict(correction=1), dict(unbiased=True)]:
        assert tg.var(x, **kwargs).item() == np.var(x._data, ddof=1)
    assert tg.std(x, unbiased=False).item() == np.std(x._data)


@pytest.mark.parametrize("call, message", [
    (lambda x: tg.sum(x, axis=0, dim=0), r"sum: got axis=0 and dim=0; pass one"),
    (lambda x: tg.max(x, keepdims=True, keepdim=True), r"max: got keepdims=True and keepdim=True"),
    (lambda x: tg.var(x, ddof=1, unbiased=True), r"var: got ddof=1, unbiased=True"),
    (lambda x: tg.sort(x, axis=0, dim=1), r"sort: got axis=0 and dim=1"),
    (lambda x: tg.tril(x, 1, diagonal=2), r"tril: got k=1 and diagonal=2"),
    (lambda x: x.mean(axis=1, dim=1), r"mean: got axis=1 and dim=1"),
])
def test_both_spellings_is_a_type_error(call, message):
    with pytest.raises(TypeError, match=message):
        call(tg.tensor(np.ones((2, 2))))


def test_tensor_methods():
    a = np.array([[3.0, -1.0, 2.0], [0.5, 4.0, -2.0], [1.0, 1.5, 0.0]])
    x = tg.tensor(a)
    pairs = [(x.min(dim=1), np.min(a, 1)), (x.max(axis=0, keepdims=True), np.max(a, 0, keepdims=True)),
             (x.prod(1), np.prod(a, 1)), (x.var(ddof=1), np.var(a, ddof=1)), (x.std(0), np.std(a, 0)),
             (x.cumsum(1), np.cumsum(a, 1)), (x.cumprod(), np.cumprod(a)), (x.argmax(dim=1), np.argmax(a, 1)),
             (x.argmin(), np.argmin(a)), (x.argsort(0), np.argsort(a, 0)), (x.sort(), np.sort(a)),
             (x.dot(x), a.dot(a)), (x.trace(1), a.trace(1)), (x.diagonal(-1), a.diagonal(-1)),
             (x.tril(), np.tril(a)), (x.triu(1), np.triu(a, 1)), (x.sum(dim=0), a.sum(0)),
             (x.mean(dim=1, keepdim=True), a.mean(1, keepdims=True))]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours._data, theirs, rtol=1e-12)
    assert not hasattr(x, "diag")


def test_descending_sort_keeps_ties_in_order_like_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, 3.0, 1.0, 3.0, 2.0, 1.0], [0.0, 0.0, 5.0, 0.0, 5.0, 1.0]])
    for descending in (False, True):
        expected = torch.sort(torch.tensor(a), dim=1, descending=descending, stable=True)
        np.testing.assert_array_equal(tg.argsort(a, descending=descending)._data, expected.indices.numpy())
        np.testing.assert_array_equal(tg.sort(a, descending=descending)._data, expected.values.numpy())


def test_einsum_matches_torch_with_gradients():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    cases = [("bii,bj->bij", [(2, 3, 3), (2, 4)]), ("ii->", [(3, 3)]), ("ij,jk,kl->li", [(2, 3), (3, 4), (4, 2)])]
    for spec, shape_list in cases:
        values = [rng.standard_normal(s) for s in shape_list]
        ts = [torch.tensor(v, requires_grad=True) for v in values]
        torch.einsum(spec, *ts).sum().backward()
        xs = [tg.tensor(v, requires_grad=True) for v in values]
        tg.einsum(spec, *xs).sum().backward()
        for x, t in zip(xs, ts):
            np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-12, atol=1e-12)


# --- errors ----------------------------------------------------------------------------------------------
COMPLEX = np.array([1 + 2j, 3j])
STRINGS = np.array(["a", "b"])
OBJECTS = np.array([object(), object()])


@pytest.mark.parametrize("bad", [COMPLEX, STRINGS, OBJECTS], ids=["complex", "str", "object"])
@pytest.mark.parametrize("call, name, arg", [
    (lambda v: tg.min(v), "min", "x"), (lambda v: tg.prod(v), "prod", "x"), (lambda v: tg.var(v), "var", "x"),
    (lambda v: tg.std(v), "std", "x"), (lambda v: tg.cumsum(v), "cumsum", "x"),
    (lambda v: tg.cumprod(v), "cumprod", "x"), (lambda v: tg.diff(v), "diff", "x"),
    (lambda v: tg.sort(v), "sort", "x"), (lambda v: tg.argsort(v), "argsort", "x"),
    (lambda v: tg.argmax(v), "argmax", "x"), (lambda v: tg.argmin(v), "argmin", "x"),
    (lambda v: tg.dot(np.ones(2), v), "dot", "b"), (lambda v: tg.inner(v, np.ones(2)), "inner", "a"),
    (lambda v: tg.outer(v, np.ones(2)), "outer", "a"), (lambda v: tg.kron(np.ones(2), v), "kron", "b"),
    (lambda v: tg.tensordot(v, np.ones(2), 1), "tensordot", "a"),
    (lambda v: tg.einsum("i,i", np.ones(2), v), "einsum", r"operands\[1\]"),
    (lambda v: tg.diag(v), "diag", "v"), (lambda v: tg.diagonal(v), "diagonal", "x"),
    (lambda v: tg.trace(v), "diagonal", "x"), (lambda v: tg.tril(v), "tril", "x"),
    (lambda v: tg.triu(v), "triu", "x"),
])
def test_unsupported_dtypes_name_the_function_and_argument(call, name, arg, bad):
    with pytest.raises(tg.DTypeError, match=rf"^{name}: argument {arg}: dtype .* is not supported.*float32/float64"):
        call(bad)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: tg.min(x, axis=2), tg.ShapeError, r"min: axis 2 is out of range for a tensor with 2 dim"),
    (lambda x: tg.prod(x, axis=(0, -2)), tg.ShapeError, r"prod: axis \(0, -2\) repeats an axis"),
    (lambda x: tg.var(x, axis=1.5), tg.DTypeError, r"var: axis must be an int"),
    (lambda x: tg.var(x, ddof="1"), tg.DTypeError, r"var: ddof must be a number"),
    (lambda x: tg.std(x, unbiased=1), tg.DTypeError, r"std: unbiased must be True or False"),
    (lambda x: tg.cumsum(x, axis=-3), tg.ShapeError, r"cumsum: axis -3 is out of range"),
    (lambda x: tg.cumprod(x, axis=(0, 1)), tg.DTypeError, r"cumprod: axis must be a single int"),
    (lambda x: tg.diff(x, n=-1), tg.ShapeError, r"diff: n must be >= 0, got -1"),
    (lambda x: tg.diff(tg.tensor(1.0)), tg.ShapeError, r"diff: needs a tensor with at least 1 dim"),
    (lambda x: tg.argmax(x, axis=(0,)), tg.DTypeError, r"argmax: axis must be a single int"),
    (lambda x: tg.sort(x, descending="yes"), tg.DTypeError, r"sort: descending must be True or False"),
    (lambda x: tg.argsort(x, axis=5), tg.ShapeError, r"argsort: axis 5 is out of range"),
    (lambda x: tg.dot(x, np.ones((3, 2))), tg.ShapeError, r"dot: shapes \(2, 2\) and \(3, 2\) are not aligned"),
    (lambda x: tg.inner(x, np.ones(3)), tg.ShapeError, r"inner: the last axes of \(2, 2\) and \(3,\) differ"),
    (lambda x: tg.tensordot(x, np.ones((3, 2)), 1), tg.ShapeError, r"tensordot: axis 1 of a \(2, 2\) has size 2"),
    (lambda x: tg.tensordot(x, x, 3), tg.ShapeError, r"tensordot: axes=3 must lie in \[0, 2\]"),
    (lambda x: tg.tensordot(x, x, ([0], [0, 1])), tg.ShapeError, r"tensordot: axes .* pair 1 axes of a with 2"),
    (lambda x: tg.tensordot(x, x, "ij"), tg.DTypeError, r"tensordot: axes must be an int or a pair"),
    (lambda x: tg.einsum("ij,jk", x), tg.ShapeError, r"einsum: subscripts 'ij,jk' name 2 operand\(s\), got 1"),
    (lambda x: tg.einsum("ijk", x), tg.ShapeError, r"einsum: operand 'ijk' has 3 label\(s\) for a tensor of shape \(2, 2\)"),
    (lambda x: tg.einsum("i1", x), tg.ShapeError, r"einsum: subscripts 'i1' contain '1'"),
    (lambda x: tg.einsum("ij->ii", x), tg.ShapeError, r"einsum: output label 'i' repeats"),
    (lambda x: tg.einsum("ij->k", x), tg.ShapeError, r"einsum: output label 'k' of 'ij->k' is in no operand"),
    (lambda x: tg.einsum("ij,jk->ik", x, np.ones((3, 2))), tg.ShapeError, r"einsum: label 'j' stands for dimensions of sizes 2 and 3"),
    (lambda x: tg.einsum("ii", np.ones((2, 3))), tg.ShapeError, r"einsum: label 'i' repeats in operand 'ii' over dimensions of different sizes"),
    (lambda x: tg.einsum("...i->i", np.ones((2, 2))), tg.ShapeError, r"einsum: .* the output needs '...'"),
    (lambda x: tg.einsum(3, x), tg.DTypeError, r"einsum: subscripts must be a string"),
    (lambda x: tg.einsum("i"), tg.ShapeError, r"einsum: needs at least one operand"),
    (lambda x: tg.diagonal(np.ones(3)), tg.ShapeError, r"diagonal: needs a tensor with at least 2 dimensions"),
    (lambda x: tg.diagonal(x, 0, 1, -1), tg.ShapeError, r"diagonal: axis1 and axis2 must differ"),
    (lambda x: tg.trace(x, axis1=3), tg.ShapeError, r"diagonal: axis 3 is out of range"),
    (lambda x: tg.diag(np.ones((2, 2, 2))), tg.ShapeError, r"diag: v must be 1-d .* or 2-d"),
    (lambda x: tg.diag(x, k=0.5), tg.DTypeError, r"diag: k must be an int"),
    (lambda x: tg.triu(tg.tensor(2.0)), tg.ShapeError, r"triu: needs a tensor with at least 1 dim"),
])
def test_bad_arguments_raise_tinygraph_errors(call, error, message):
    with pytest.raises(error, match=message):
        call(tg.tensor(np.ones((2, 2))))
