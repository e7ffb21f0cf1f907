"""Elementwise math ops (tinygraph.ops.elementwise), the forward-mode rules of every elementwise op
(``jvp``), and how every function takes its arguments (conversion, stacking, dtype promotion, errors).

The registry tests in test_ops.py check each op's reverse-mode gradients (first and second order),
float32, immutability, anomaly mode and saves; this file checks values against numpy, the ``jvp``
rules against central differences and against ``vjp``, and the argument handling.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph import functional as F
from tinygraph.ops import NUMPY_VJP, OPS, TENSOR_VJP, Op, apply
from tinygraph.tensor import Tensor
from tinygraph.testing import op_samples

ELEMENTWISE_MODULES = ("tinygraph.ops.math", "tinygraph.ops.elementwise")
MINE = sorted(name for name, cls in OPS.items() if cls.__module__ == "tinygraph.ops.elementwise")


def own_jvp(cls):
    """Whether ``cls`` writes its own ``jvp`` (not one a base class derives from ``vjp``)."""
    return any("jvp" in vars(k) for k in cls.__mro__ if k not in (Op, object))


WITH_JVP = sorted(name for name, cls in OPS.items()
                  if cls.__module__ in ELEMENTWISE_MODULES and cls.differentiable)


def test_every_differentiable_elementwise_op_writes_its_jvp():
    assert [name for name in WITH_JVP if not own_jvp(OPS[name])] == []
    assert {"sin", "logaddexp", "mod", "fmax", "nan_to_num", "add", "where", "pow_const"} <= set(WITH_JVP)


# --- values: the numpy meaning, written independently where a formula is exact enough ----------------
def _nan_to_num_reference(op, x):
    info = np.finfo(x.dtype)
    posinf = info.max if op.posinf is None else op.posinf
    neginf = info.min if op.neginf is None else op.neginf
    return np.where(np.isnan(x), op.nan, np.where(x == np.inf, posinf, np.where(x == -np.inf, neginf, x)))


NUMPY_REFERENCE = {
    "sin": lambda op, x: np.sin(x),
    "cos": lambda op, x: np.cos(x),
    "tan": lambda op, x: np.sin(x) / np.cos(x),
    "arcsin": lambda op, x: np.arctan2(x, np.sqrt(1 - x * x)),
    "arccos": lambda op, x: np.pi / 2 - np.arctan2(x, np.sqrt(1 - x * x)),
    "arctan": lambda op, x: np.arctan2(x, np.ones_like(x)),
    "sinh": lambda op, x: (np.exp(x) - np.exp(-x)) / 2,
    "cosh": lambda op, x: (np.exp(x) + np.exp(-x)) / 2,
    "arcsinh": lambda op, x: np.sign(x) * np.log(np.abs(x) + np.sqrt(x * x + 1)),
    "arccosh": lambda op, x: np.log(x + np.sqrt(x * x - 1)),
    "arctanh": lambda op, x: 0.5 * np.log((1 + x) / (1 - x)),
    "exp2": lambda op, x: np.power(2.0, x),
    "expm1": lambda op, x: np.exp(x) - 1,
    "log2": lambda op, x: np.log(x) / np.log(2.0),
    "log10": lambda op, x: np.log(x) / np.log(10.0),
    "log1p": lambda op, x: np.log(1 + x),
    "square": lambda op, x: x * x,
    "reciprocal": lambda op, x: 1 / x,
    "floor": lambda op, x: np.floor(x),
    "ceil": lambda op, x: -np.floor(-x),
    "isnan": lambda op, x: x != x,
    "isinf": lambda op, x: np.abs(x) == np.inf,
    "isfinite": lambda op, x: np.isfinite(x),
    "nan_to_num": _nan_to_num_reference,
    "arctan2": lambda op, y, x: np.angle(x + 1j * y),
    "hypot": lambda op, x, y: np.sqrt(x * x + y * y),
    "logaddexp": lambda op, x, y: np.maximum(x, y) + np.log1p(np.exp(-np.abs(x - y))),
    "mod": lambda op, x, y: x - np.floor(x / y) * y,
    "minimum": lambda op, x, y: np.where(x < y, x, y),
    "fmin": lambda op, x, y: np.where(np.isnan(y) | (x <= y), x, y),
    "fmax": lambda op, x, y: np.where(np.isnan(y) | (x >= y), x, y),
}


def test_the_reference_table_covers_every_elementwise_op():
    assert sorted(NUMPY_REFERENCE) == MINE


@pytest.mark.parametrize("name", MINE)
@settings(max_examples=25)  # the ci profile's count; test_ops.py draws these families 8 more times
@given(data=st.data())
def test_forward_matches_numpy_to_1e_12(name, data):
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    expected = np.asarray(NUMPY_REFERENCE[name](op, *inputs))
    out = apply(op, *[tg.tensor(a) for a in inputs])
    assert out.shape == expected.shape and out.dtype == expected.dtype
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", MINE)
@settings(max_examples=10)
@given(data=st.data())
def test_float32_stays_float32(name, data):
    op, inputs = data.draw(op_samples(OPS[name], np.float32), label="op, inputs")
    out = apply(op, *[tg.tensor(a) for a in inputs])
    assert out.dtype == (np.bool_ if name.startswith("is") else np.float32)


# --- forward mode: jvp rules ---------------------------------------------------------------------------
def _draw_tangents(data, inputs):
    """One tangent per input: None for integer/bool inputs, else (usually) a normal draw."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    tangents = []
    for a in inputs:
        if a.dtype.kind != "f" or data.draw(st.integers(0, 3), label="zero tangent") == 0:
            tangents.append(None)
        else:
            tangents.append(rng.standard_normal(a.shape).astype(a.dtype))
    return tangents, rng


def _forward(op, arrays):
    return np.asarray(op.forward(*arrays))


@pytest.mark.parametrize("name", WITH_JVP)
@settings(max_examples=25)
@given(data=st.data())
def test_jvp_matches_central_differences_and_the_vjp(name, data):
    """In float64: J t from ``jvp`` equals (f(x + eps t) - f(x - eps t)) / 2 eps; <u, J t> equals
    sum_k <vjp(u)_k, t_k> (the rules are each other's transposes); the rule run on Tensors gives the
    same values, and the graph it records has the vjp as its gradient in the tangents."""
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    tangents, rng = _draw_tangents(data, inputs)
    out = _forward(op, inputs)
    jt = op.jvp(NUMPY_VJP, tangents, out, *inputs)
    if all(t is None for t in tangents):
        assert jt is None
        return
    if jt is None:  # a zero tangent (pow_const with exponent 0)
        jt = np.zeros_like(out)
    assert jt.dtype == out.dtype
    jt = np.broadcast_to(jt, out.shape)

    eps = 1e-6
    plus = _forward(op, [a if t is None else a + eps * t for a, t in zip(inputs, tangents)])
    minus = _forward(op, [a if t is None else a - eps * t for a, t in zip(inputs, tangents)])
    numeric = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(jt, numeric, rtol=1e-5, atol=1e-6)

    u = rng.standard_normal(out.shape)
    grads = op.vjp(NUMPY_VJP, u, out, *inputs)
    transposed = sum(np.sum(g * t) for g, t in zip(grads, tangents) if t is not None)
    np.testing.assert_allclose(np.sum(u * jt), transposed, rtol=1e-10, atol=1e-10)

    wrap = Tensor._wrap
    tangent_leaves = [None if t is None else wrap(t.copy(), requires_grad=True) for t in tangents]
    with tg.enable_grad():
        recorded = op.jvp(TENSOR_VJP, tangent_leaves, wrap(out), *[wrap(a) for a in inputs])
    if recorded is None:
        assert not jt.any()
        return
    assert isinstance(recorded, Tensor) and recorded.dtype == out.dtype
    np.testing.assert_allclose(np.broadcast_to(recorded.data, out.shape), jt, rtol=1e-12, atol=1e-12)
    positions = [k for k, t in enumerate(tangent_leaves) if t is not None]
    got = tg.grad_of((tg.broadcast_to(recorded, out.shape) * u).sum(), [tangent_leaves[k] for k in positions])
    for k, g in zip(positions, got):
        np.testing.assert_allclose(g.data, grads[k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", WITH_JVP)
@settings(max_examples=10)
@given(data=st.data())
def test_jvp_keeps_float32(name, data):
    op, inputs = data.draw(op_samples(OPS[name], np.float32), label="op, inputs")
    tangents = [None if a.dtype.kind != "f" else np.ones_like(a) for a in inputs]
    out = _forward(op, inputs)
    jt = op.jvp(NUMPY_VJP, tangents, out, *inputs)
    assert jt is None or (jt.dtype == np.float32 and np.broadcast_shapes(jt.shape, out.shape) == out.shape)


# --- the functions: every name, numpy's value ----------------------------------------------------------
X = np.array([[0.3, -0.7, 0.55], [0.9, -0.2, 0.1]])
Y = np.array([0.8, -1.3, 0.45])
POSITIVE = np.array([[1.5, 2.0, 3.25], [1.2, 4.0, 1.1]])

UNARY = {  # function name: (numpy function, input)
    "sin": (np.sin, X), "cos": (np.cos, X), "tan": (np.tan, X), "arcsin": (np.arcsin, X),
    "arccos": (np.arccos, X), "arctan": (np.arctan, X), "sinh": (np.sinh, X), "cosh": (np.cosh, X),
    "arcsinh": (np.arcsinh, X), "arccosh": (np.arccosh, POSITIVE), "arctanh": (np.arctanh, X),
    "asin": (np.arcsin, X), "acos": (np.arccos, X), "atan": (np.arctan, X), "asinh": (np.arcsinh, X),
    "acosh": (np.arccosh, POSITIVE), "atanh": (np.arctanh, X),
    "exp2": (np.exp2, X), "expm1": (np.expm1, X), "log2": (np.log2, POSITIVE),
    "log10": (np.log10, POSITIVE), "log1p": (np.log1p, X), "square": (np.square, X),
    "reciprocal": (np.reciprocal, X), "floor": (np.floor, 3 * X), "ceil": (np.ceil, 3 * X),
    "abs": (np.abs, X), "fabs": (np.fabs, X), "absolute": (np.absolute, X), "negative": (np.negative, X),
    "exp": (np.exp, X), "log": (np.log, POSITIVE), "sqrt": (np.sqrt, POSITIVE), "tanh": (np.tanh, X),
    "isnan": (np.isnan, X), "isinf": (np.isinf, X), "isfinite": (np.isfinite, X),
    "nan_to_num": (np.nan_to_num, X),
}
BINARY = {
    "arctan2": np.arctan2, "atan2": np.arctan2, "hypot": np.hypot, "logaddexp": np.logaddexp,
    "mod": np.mod, "remainder": np.remainder, "minimum": np.minimum, "maximum": np.maximum,
    "fmin": np.fmin, "fmax": np.fmax, "power": np.power, "multiply": np.multiply,
    "subtract": np.subtract, "divide": np.divide, "true_divide": np.true_divide, "add": np.add,
}
BINARY_INPUTS = {"power": (POSITIVE, Y * Y)}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_function_and_method_give_numpy_values(name):
    reference, x = UNARY[name]
    expected = reference(x)
    results = [getattr(tg, name)(x)] + ([] if name == "fabs" else [getattr(tg.tensor(x), name)()])
    for result in results:
        assert result.dtype == expected.dtype
        np.testing.assert_allclose(result.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_function_gives_numpy_values(name):
    x, y = BINARY_INPUTS.get(name, (X, Y))
    expected = BINARY[name](x, y)
    result = getattr(tg, name)(x, y)
    assert result.dtype == expected.dtype and result.shape == expected.shape
    np.testing.assert_allclose(result.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["arctan2", "atan2", "hypot", "logaddexp", "remainder", "maximum",
                                    "minimum", "fmax", "fmin"])
def test_binary_methods(method):
    expected = getattr(tg, method)(X, Y).data
    np.testing.assert_array_equal(getattr(tg.tensor(X), method)(Y).data, expected)


def test_aliases_are_the_same_functions():
    assert tg.fabs is tg.absolute is tg.abs and tg.remainder is tg.mod and tg.atan2 is tg.arctan2
    assert tg.power is tg.pow and tg.negative is F.neg and tg.multiply is F.mul
    assert tg.subtract is F.sub and tg.divide is tg.true_divide is F.div and tg.clamp is tg.clip
    assert (tg.asin, tg.acos, tg.atan, tg.asinh, tg.acosh, tg.atanh) == (
        tg.arcsin, tg.arccos, tg.arctan, tg.arcsinh, tg.arccosh, tg.arctanh)


def test_operators_mod_abs_pos():
    x = tg.tensor([5.5, -5.5, 2.0], requires_grad=True)
    np.testing.assert_array_equal((x % 3).data, [2.5, 0.5, 2.0])      # Python's sign convention
    np.testing.assert_array_equal((x % -3).data, [-0.5, -2.5, -1.0])
    np.testing.assert_array_equal((7 % tg.tensor([3.0, -3.0])).data, [1.0, -2.0])
    np.testing.assert_array_equal(abs(x).data, [5.5, 5.5, 2.0])
    assert +x is x
    ((x % 3) + abs(x)).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 2.0])


# --- specific behaviour --------------------------------------------------------------------------------
def test_logaddexp_is_stable_for_large_inputs():
    x = tg.tensor([1000.0, -1000.0, 1e308, 0.0], requires_grad=True)
    y = tg.tensor([1000.0, -1000.0, 1e308, 800.0], requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = tg.logaddexp(x, y)
        out.sum().backward()
    np.testing.assert_allclose(out.data, [1000 + np.log(2), -1000 + np.log(2), 1e308 + np.log(2), 800.0])
    np.testing.assert_allclose(x.grad, [0.5, 0.5, 0.5, np.exp(-800.0)])
    np.testing.assert_allclose(y.grad, [0.5, 0.5, 0.5, 1.0])


def test_mod_gradient_is_one_and_minus_floor():
    x = tg.tensor([5.5, -5.5, 1.25], requires_grad=True)
    y = tg.tensor([2.0, 2.0, -0.5], requires_grad=True)
    (x % y).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(y.grad, -np.floor(x.data / y.data))


def test_fmin_fmax_ignore_nan_and_route_its_gradient_to_the_other_input():
    x = tg.tensor([np.nan, 1.0, 2.0, np.nan, 3.0], requires_grad=True)
    y = tg.tensor([4.0, np.nan, 2.0, np.nan, 1.0], requires_grad=True)
    hi, lo = tg.fmax(x, y), tg.fmin(x, y)
    np.testing.assert_array_equal(hi.data, [4.0, 1.0, 2.0, np.nan, 3.0])
    np.testing.assert_array_equal(lo.data, [4.0, 1.0, 2.0, np.nan, 1.0])
    hi.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.5, 0.0, 1.0])  # tie at 2.0: split
    np.testing.assert_array_equal(y.grad, [1.0, 0.0, 0.5, 0.0, 0.0])
    x.grad = y.grad = None
    lo.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.5, 0.0, 0.0])
    np.testing.assert_array_equal(y.grad, [1.0, 0.0, 0.5, 0.0, 1.0])


def test_minimum_splits_ties_and_propagates_nan():
    x = tg.tensor([1.0, 2.0, np.nan], requires_grad=True)
    out = tg.minimum(x, tg.tensor([1.0, 0.0, 5.0]))
    assert np.isnan(out.data[2])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.5, 0.0, 0.0])


def test_nan_to_num_replaces_and_cuts_the_gradient_there():
    x = tg.tensor([np.nan, np.inf, -np.inf, 1.5], requires_grad=True)
    out = tg.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0)
    np.testing.assert_array_equal(out.data, [-1.0, 9.0, -9.0, 1.5])
    (out * 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0, 2.0])
    big = tg.nan_to_num(np.array([np.inf], np.float32))
    assert big.dtype == np.float32 and big.data[0] == np.finfo(np.float32).max


def test_rounding_has_no_gradient():
    x = tg.tensor([1.5, -1.5], requires_grad=True)
    assert not tg.floor(x).requires_grad and not tg.ceil(x).requires_grad
    (tg.floor(x) * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, -2.0])


@pytest.mark.parametrize("name", ["sin", "exp", "reciprocal", "log1p", "arctan"])
def test_float_valued_functions_compute_integers_and_bools_in_float64(name):
    for values in ([1, 2, 4], [True, False, True]):
        out = getattr(tg, name)(values)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out.data, getattr(np, name)(np.array(values, np.float64)))


TORCH_CHECKS = {  # tinygraph function, torch function, inputs (away from ties and jumps)
    "atan2": (tg.arctan2, "atan2", (X, Y)), "hypot": (tg.hypot, "hypot", (X, Y)),
    "logaddexp": (tg.logaddexp, "logaddexp", (X * 300, Y * 300)),
    "remainder": (tg.remainder, "remainder", (3 * X, Y)), "fmax": (tg.fmax, "fmax", (X, Y)),
    "fmin": (tg.fmin, "fmin", (X, Y)), "minimum": (tg.minimum, "minimum", (X, Y)),
    "minimum ties": (tg.minimum, "minimum", (X, X * [1, -1, 1])),
    "maximum ties": (tg.maximum, "maximum", (X, X * [1, -1, 1])),
    "asinh": (tg.asinh, "asinh", (X,)), "acosh": (tg.acosh, "acosh", (POSITIVE,)),
    "atanh": (tg.atanh, "atanh", (X,)), "expm1": (tg.expm1, "expm1", (X,)),
    "log1p": (tg.log1p, "log1p", (X,)), "exp2": (tg.exp2, "exp2", (X,)),
    "reciprocal": (tg.reciprocal, "reciprocal", (X,)), "tan": (tg.tan, "tan", (X,)),
    "nan_to_num": (tg.nan_to_num, "nan_to_num", (np.array([np.nan, np.inf, -np.inf, 0.5]),)),
}


@pytest.mark.parametrize("case", sorted(TORCH_CHECKS))
def test_values_and_gradients_match_pytorch(case):
    torch = pytest.importorskip("torch", reason="cross-check against PyTorch needs torch")
    fn, torch_name, inputs = TORCH_CHECKS[case]
    theirs = [torch.tensor(a, requires_grad=True) for a in inputs]
    expected = getattr(torch, torch_name)(*theirs)
    expected.sum().backward()
    ours = [tg.tensor(a, requires_grad=True) for a in inputs]
    out = fn(*ours)
    out.sum().backward()
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    for mine, ref in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad, ref.grad.numpy(), rtol=1e-12, atol=1e-12)


# --- argument handling ---------------------------------------------------------------------------------
def test_functions_of_numbers_arrays_and_lists_return_tensors():
    torch = pytest.importorskip("torch", reason="the expected results are PyTorch's")
    out = tg.maximum(1.0, 2.0)
    expected = torch.maximum(torch.tensor(1.0), torch.tensor(2.0))
    assert isinstance(out, Tensor) and out.item() == expected.item()
    np.testing.assert_array_equal(F.add(np.ones(2), 0.5).data, torch.add(torch.ones(2), 0.5).numpy())
    np.testing.assert_array_equal(tg.matmul(np.ones((2, 2)), np.ones((2, 2))).data,
                                  torch.matmul(torch.ones(2, 2), torch.ones(2, 2)).numpy())
    assert F.add(np.ones(2, np.float32), 0.5).dtype == np.float32  # torch: float32 too


FORMS = {  # how a user may write the value 1-D [0.25, 0.5]
    "Tensor": lambda v: tg.tensor(v), "ndarray": np.asarray, "list": lambda v: [float(a) for a in v],
    "tuple": lambda v: tuple(float(a) for a in v), "nested list": lambda v: [[float(a) for a in v]],
}
SCALAR_FORMS = {"number": float, "numpy number": np.float64, "0-d ndarray": np.asarray,
                "0-d Tensor": tg.tensor}
ALL_FUNCTIONS = sorted(set(UNARY) | set(BINARY))


@pytest.mark.parametrize("form", sorted(FORMS) + sorted(SCALAR_FORMS))
@pytest.mark.parametrize("name", ALL_FUNCTIONS)
def test_every_argument_takes_every_form(name, form):
    make = FORMS.get(form) or SCALAR_FORMS[form]
    value = np.array([0.25, 0.5]) if form in FORMS else np.float64(0.75)
    if name in ("arccosh", "acosh"):
        value = value + 1.5
    fn = getattr(tg, name)
    arity = 2 if name in BINARY else 1
    reference = BINARY[name] if arity == 2 else UNARY[name][0]
    for position in range(arity):
        args = [np.float64(0.6)] * arity
        args[position] = value
        expected = reference(*[np.asarray(a) for a in args])
        given_args = list(args)
        given_args[position] = make(value)
        out = fn(*given_args)
        assert isinstance(out, Tensor)
        np.testing.assert_allclose(out.data, np.broadcast_to(expected, out.shape), rtol=1e-12)
        assert out.shape == (1, 2) if form == "nested list" else out.shape == np.shape(expected)


def test_a_list_of_tensors_is_stacked_differentiably():
    x = tg.tensor(2.0, requires_grad=True)
    (tg.sum([x, x]) + x).backward()
    assert x.grad == 3.0  # was 1: the list became a constant
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0], requires_grad=True)
    nested = tg.as_tensor([[a, b], [b, a]])
    assert nested.shape == (2, 2, 2) and nested.requires_grad
    np.testing.assert_array_equal(nested.data, [[[1, 2], [3, 4]], [[3, 4], [1, 2]]])
    (tg.mul([a, b], [[1.0], [10.0]])).sum().backward()
    np.testing.assert_array_equal(a.grad, [1.0, 1.0])
    np.testing.assert_array_equal(b.grad, [10.0, 10.0])


def test_a_list_mixing_tensors_and_numbers_takes_the_tensors_dtype():
    x = tg.tensor(np.float32(2.0), requires_grad=True)
    mixed = tg.as_tensor([x, 1.0, np.float64(3.0)])
    assert mixed.dtype == np.float32
    np.testing.assert_array_equal(mixed.data, [2.0, 1.0, 3.0])
    (mixed * [1.0, 2.0, 3.0]).sum().backward()
    assert x.grad == 1.0 and x.grad.dtype == np.float32
    promoted = tg.as_tensor([x, tg.tensor(1.0)])
    assert promoted.dtype == np.float64


def test_tg_tensor_of_a_list_of_tensors_stays_a_constant():
    x = tg.tensor(2.0, requires_grad=True)
    t = tg.tensor([x, x])  # like torch.tensor: the values, copied
    assert not t.requires_grad and t.op is None


@pytest.mark.parametrize("bad, error, words", [
    (["a", "b"], tg.DTypeError, "argument x has dtype <U1"),
    ([None, 1.0], tg.DTypeError, "argument x has dtype object"),
    ([[1.0, 2.0], [3.0]], tg.ShapeError, "argument x cannot be converted"),
    ({"a": 1}, tg.DTypeError, "argument x has dtype object (a dict)"),
    (None, tg.DTypeError, "argument x has dtype object (a NoneType)"),
    (2**80, tg.DTypeError, "argument x has dtype object"),
])
def test_arguments_that_are_not_numbers_are_refused_by_name(bad, error, words):
    with pytest.raises(error, match="^sin: " + _escape(words)):
        tg.sin(bad)


def test_a_list_of_tensors_of_different_shapes_is_refused_by_name():
    with pytest.raises(tg.ShapeError, match=r"as_tensor: argument value is a list of tensors"):
        tg.as_tensor([tg.tensor([1.0, 2.0]), tg.tensor([1.0, 2.0, 3.0])])
    with pytest.raises(tg.ShapeError, match=r"sum: argument x is a list of tensors of shapes "
                                            r"\[\(2,\), \(3,\)\]"):
        tg.sum([tg.tensor([1.0, 2.0]), tg.tensor([1.0, 2.0, 3.0])])
    with pytest.raises(tg.ShapeError, match=r"add: argument y is a list of tensors"):
        tg.add(1.0, [tg.tensor([1.0, 2.0]), 3.0])


def _escape(text):
    import re
    return re.escape(text)


BAD_DTYPES = {
    "complex": (np.array([1 + 2j, 3j]), "complex128"),
    "object": (np.array([1.0, "a"], dtype=object), "object"),
    "str": (np.array(["a", "b"]), "<U1"),
    "list of str": (["a", "b"], "<U1"),
    "complex number": (1j, "complex128"),
}


@pytest.mark.parametrize("kind", sorted(BAD_DTYPES))
@pytest.mark.parametrize("name", ALL_FUNCTIONS + ["where", "matmul", "pow", "clip", "mul"])
def test_unsupported_dtypes_name_the_function_and_argument(name, kind):
    bad, dtype = BAD_DTYPES[kind]
    arg_names = {"where": ("condition", "x", "y"), "arctan2": ("y", "x"), "atan2": ("y", "x"),
                 "clip": ("x",), "pow": ("x", "y"), "power": ("x", "y")}
    canonical = {"atan2": "arctan2", "remainder": "mod", "fabs": "abs", "absolute": "abs",
                 "negative": "neg", "multiply": "mul", "subtract": "sub", "divide": "div",
                 "true_divide": "div", "power": "pow", "asin": "arcsin", "acos": "arccos",
                 "atan": "arctan", "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh"}
    names = arg_names.get(name, ("x", "y") if name in BINARY or name in ("matmul", "mul") else ("x",))
    fn_name = canonical.get(name, name)
    good = {"where": [np.array([True, False]), np.ones(2), np.ones(2)]}.get(name, [np.ones(2)] * len(names))
    for position, arg in enumerate(names):
        args = list(good)
        args[position] = bad
        if name == "where" and position > 0 or name in ("pow", "power") and position == 1:
            fn_name_here = "where" if name == "where" else "pow"
        else:
            fn_name_here = fn_name
        with pytest.raises(tg.DTypeError, match=f"^{_escape(fn_name_here)}: argument {arg} has dtype "
                                                f"{_escape(dtype)}.*; tinygraph holds float32/float64, "
                                                f"integers or bool"):
            getattr(tg, name)(*args) if name != "mul" else F.mul(*args)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_shapes_that_do_not_broadcast_raise_a_shape_error(name):
    with pytest.raises(tg.ShapeError, match="cannot be broadcast together"):
        getattr(tg, name)(np.ones(2) + 1, np.ones(3) + 1)


def test_nan_to_num_replacements_must_be_numbers():
    for kwargs in ({"nan": "0"}, {"posinf": [1.0]}, {"neginf": True}):
        with pytest.raises(tg.DTypeError, match=f"nan_to_num: {next(iter(kwargs))} must be a real number"):
            tg.nan_to_num(X, **kwargs)


# --- dtype promotion ---------------------------------------------------------------------------------------
f32, f64, i32, i64, i8, b = np.float32, np.float64, np.int32, np.int64, np.int8, np.bool_


def T(dtype):
    return tg.tensor(np.array([1, 0, 1]).astype(dtype))


PROMOTION = [  # (x, y, result dtype): PyTorch's rule with float64 as the default float
    ("f32 Tensor + f64 ndarray", lambda: T(f32), lambda: np.ones(3), f32),
    ("f32 Tensor + Python float", lambda: T(f32), lambda: 0.5, f32),
    ("f32 Tensor + Python int", lambda: T(f32), lambda: 2, f32),
    ("f32 Tensor + list of floats", lambda: T(f32), lambda: [0.5, 1.5, 2.5], f32),
    ("f32 Tensor + numpy float64", lambda: T(f32), lambda: np.float64(0.5), f32),
    ("f32 Tensor + int64 ndarray", lambda: T(f32), lambda: np.arange(3), f32),
    ("f64 Tensor + f32 ndarray", lambda: T(f64), lambda: np.ones(3, f32), f64),
    ("f32 Tensor + f64 Tensor", lambda: T(f32), lambda: T(f64), f64),
    ("i64 Tensor + f32 Tensor", lambda: T(i64), lambda: T(f32), f32),
    ("bool Tensor + f32 Tensor", lambda: T(b), lambda: T(f32), f32),
    ("i32 Tensor + f32 ndarray", lambda: T(i32), lambda: np.ones(3, f32), f32),
    ("i64 Tensor + Python float", lambda: T(i64), lambda: 0.5, f64),
    ("i32 Tensor + Python int", lambda: T(i32), lambda: 7, i32),
    ("i8 Tensor + int64 ndarray", lambda: T(i8), lambda: np.arange(3), i8),
    ("i32 Tensor + i64 Tensor", lambda: T(i32), lambda: T(i64), i64),
    ("bool Tensor + Python int", lambda: T(b), lambda: 2, i64),
    ("bool Tensor + bool Tensor", lambda: T(b), lambda: T(b), b),
    ("f32 ndarray + Python float", lambda: np.ones(3, f32), lambda: 0.5, f32),
    ("f32 ndarray + f64 ndarray", lambda: np.ones(3, f32), lambda: np.ones(3), f64),
    ("Python float + Python float", lambda: 1.0, lambda: 2.0, f64),
    ("Python int + Python int", lambda: 1, lambda: 2, i64),
    ("list of ints + Python float", lambda: [1, 2, 3], lambda: 0.5, f64),
]


@pytest.mark.parametrize("case", PROMOTION, ids=[c[0] for c in PROMOTION])
def test_dtype_promotion_table(case):
    _, make_x, make_y, dtype = case
    for fn in (F.add, F.mul, tg.minimum):
        assert fn(make_x(), make_y()).dtype == dtype, fn
        assert fn(make_y(), make_x()).dtype == dtype, fn  # symmetric
    if np.dtype(dtype).kind == "f":
        assert tg.where(np.array([True, False, True]), make_x(), make_y()).dtype == dtype


def test_operators_follow_the_promotion_rule():
    x = tg.tensor(np.ones(3, np.float32), requires_grad=True)
    y = x * np.ones(3) + 0.5 - [1.0, 2.0, 3.0]
    z = (np.float64(2.0) / y) ** 2 % 3.0
    assert y.dtype == z.dtype == np.float32
    z.sum().backward()
    assert x.grad.dtype == np.float32
    assert (tg.tensor([1, 2]) * 0.5).dtype == np.float64
    assert (tg.tensor([1, 2], dtype=np.int32) + 1).dtype == np.int32


def test_a_float32_tensor_compares_with_a_python_float_in_float32():
    x = tg.tensor(np.float32(0.1))
    assert (x == 0.1).item()  # torch too: 0.1 is cast to the tensor's float32


def test_an_integer_that_does_not_fit_the_tensors_dtype_is_refused():
    with pytest.raises(tg.DTypeError, match="add: argument y holds values outside the range of int8"):
        F.add(T(i8), 1000)


def test_comparisons_are_exported_under_numpy_names_and_cut_the_gradient():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    pairs = [(tg.lt, tg.less, np.less), (tg.le, tg.less_equal, np.less_equal),
             (tg.gt, tg.greater, np.greater), (tg.ge, tg.greater_equal, np.greater_equal),
             (tg.eq, tg.equal, np.equal), (tg.ne, tg.not_equal, np.not_equal)]
    for short, numpy_name, reference in pairs:
        assert short is numpy_name
        out = short(x, 2.0)
        assert out.dtype == np.bool_ and not out.requires_grad
        np.testing.assert_array_equal(out.data, reference(x.data, 2.0))
