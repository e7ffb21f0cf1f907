"""gradcheck / gradgradcheck, and the public strategies and helpers of tinygraph.testing."""
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.ops import OPS, Op, apply
from tinygraph.testing import (arrays, assert_not_mutated, broadcastable_pairs, broadcastable_shapes,
                               check_grads, indices, op_samples, shapes, tensors)


class Square(Op, register=False):
    """x ** 2 with a gradient rule scaled by ``factor`` (1 is right), kept out of the op registry."""
    name = "square"

    def __init__(self, factor=1.0):
        self.factor = factor

    def forward(self, x):
        return x * x

    def vjp(self, B, g, out, x):
        return (g * (2 * self.factor) * x,)


class SquareFrozenSecondOrder(Square, register=False):
    """Right first derivative, but the rule hides x from create_graph, so the second derivative is 0."""

    def vjp(self, B, g, out, x):
        return (g * 2 * (x.detach() if isinstance(x, tg.Tensor) else x),)


def square(x, factor=1.0):
    return apply(Square(factor), tg.as_tensor(x))


def test_private_ops_stay_out_of_the_registry():
    assert OPS.get(Square.name) is not Square  # "square" itself is a registered op (ops/elementwise.py)


def test_gradcheck_returns_true_for_correct_gradients():
    x, w = np.array([[0.5, -1.0, 2.0]]), np.array([[1.0], [2.0], [-0.5]])
    assert tg.gradcheck(lambda a, b: tg.tanh(a @ b) * square(a).sum(), [x, w]) is True
    assert tg.gradgradcheck(lambda a, b: tg.tanh(a @ b) * square(a).sum(), [x, w]) is True


def test_gradcheck_error_names_input_worst_index_and_both_values():
    x = tg.tensor(np.array([[1.0, 2.0], [-3.0, 0.5]]), requires_grad=True, name="weight")
    y = np.array([0.3, 0.2])
    with pytest.raises(tg.GradcheckError) as info:
        tg.gradcheck(lambda a, b: a.sum() + square(b, factor=1.5).sum(), [y, x])
    message = str(info.value)
    assert "input 1 ('weight')" in message and "shape (2, 2)" in message
    assert "index (1, 0)" in message  # the error, 0.5 * 2x, is largest where |x| is: x[1, 0] = -3
    analytic, numeric = map(float, re.search(r"analytic (\S+) vs numeric (\S+)", message).groups())
    assert analytic == pytest.approx(1.5 * numeric, rel=1e-6)
    assert isinstance(info.value, AssertionError)


def test_gradcheck_tolerances_are_honoured():
    slightly_wrong = lambda x: square(x, factor=1 + 1e-4)  # noqa: E731
    x = np.array([1.0, 2.0])
    assert tg.gradcheck(slightly_wrong, [x], rtol=1e-3)
    with pytest.raises(tg.GradcheckError, match="rtol=1e-06"):
        tg.gradcheck(slightly_wrong, [x], rtol=1e-6, atol=0)


def test_gradcheck_skips_constants_and_refuses_when_nothing_is_checked():
    x = np.array([1.0, 2.0])
    constant = tg.tensor([5.0, 6.0])  # does not require grad: wrong gradients into it are not checked
    assert tg.gradcheck(lambda a, c, idx: (a * square(c, factor=3.0))[idx], [x, constant, np.array([1, 1, 0])])
    with pytest.raises(ValueError, match="nothing to check"):
        tg.gradcheck(lambda c: c * 2.0, [constant])


def test_gradcheck_works_in_float64_for_float32_inputs_and_does_not_touch_them():
    x = np.array([0.1, 0.7], dtype=np.float32)
    before = x.copy()
    assert tg.gradcheck(lambda a: tg.sigmoid(a) * a, [x])
    np.testing.assert_array_equal(x, before)


def test_gradgradcheck_catches_a_wrong_second_derivative():
    frozen = lambda x: apply(SquareFrozenSecondOrder(), x)  # noqa: E731
    x = np.array([0.5, -1.5])
    assert tg.gradcheck(frozen, [x])
    with pytest.raises(tg.GradcheckError, match="analytic 0 vs numeric"):
        tg.gradgradcheck(frozen, [x])


# --- the one-line property test ------------------------------------------------------------------------------------
def test_check_grads_finds_a_wrong_rule():
    with pytest.raises(tg.GradcheckError):
        check_grads(lambda x: square(x, factor=2.0), arrays(shapes()))


def test_check_grads_finds_an_input_modified_in_place():
    def sneaky(x):
        out = x * 2.0
        x.data[...] = 0.0
        return out
    with pytest.raises(AssertionError, match="modified in place"):
        check_grads(sneaky, arrays(shapes(min_dims=1), low=1, high=2))


def test_check_grads_second_order_finds_a_frozen_rule():
    frozen = lambda x: apply(SquareFrozenSecondOrder(), x)  # noqa: E731
    check_grads(frozen, arrays(shapes()))
    with pytest.raises(tg.GradcheckError):
        check_grads(frozen, arrays(shapes()), second_order=True)


@check_grads(arrays(shapes(min_dims=1)), tensors((), low=0.5, high=2.0), second_order=True)
def test_check_grads_as_a_decorator(x, scale):
    """A softplus with a learnable temperature; the decorator makes this a test."""
    return tg.log(1 + tg.exp(x * scale)) / scale


def test_the_decorator_keeps_the_name_and_takes_no_fixtures():
    import inspect
    assert test_check_grads_as_a_decorator.__name__ == "test_check_grads_as_a_decorator"
    assert inspect.signature(test_check_grads_as_a_decorator).parameters == {}


def test_assert_not_mutated_passes_integer_inputs_as_constants():
    assert_not_mutated(lambda w, idx: tg.embedding(w, idx), [np.ones((3, 2)), np.array([0, 2, 2])])


# --- the strategies ----------------------------------------------------------------------------------------------------
@given(a=arrays(shapes(), low=-2.0, high=1.0, away_from=(0.0, 0.5), margin=0.1))
def test_arrays_are_bounded_finite_and_away_from_kinks(a):
    assert a.dtype == np.float64 and np.isfinite(a).all()
    assert ((a >= -2.0) & (a <= 1.0)).all()
    assert (np.abs(a) >= 0.1 - 1e-12).all() and (np.abs(a - 0.5) >= 0.1 - 1e-12).all()


@given(a=arrays(shapes(min_dims=1), np.float32, distinct=True))
def test_distinct_arrays_have_well_separated_values(a):
    assert a.dtype == np.float32
    gaps = np.diff(np.sort(a.reshape(-1).astype(np.float64)))
    assert (gaps > 1e-3).all()


@given(a=arrays((3, 2), np.int64, low=-4, high=4), m=arrays(5, np.bool_))
def test_integer_and_bool_arrays(a, m):
    assert a.dtype == np.int64 and a.shape == (3, 2) and ((a >= -4) & (a <= 4)).all()
    assert m.dtype == np.bool_ and m.shape == (5,)


@given(t=tensors(shapes(max_dims=2), name="w"))
def test_tensors_are_leaves_that_require_grad(t):
    assert isinstance(t, tg.Tensor) and t.requires_grad and t.is_leaf and t.name == "w"


@given(s=shapes(min_dims=0, max_dims=3, max_side=4))
def test_shapes_respect_bounds(s):
    assert len(s) <= 3 and all(1 <= n <= 4 for n in s)


@given(pair=broadcastable_pairs(3), other=broadcastable_shapes((2, 1, 3)))
def test_broadcastable_shapes_broadcast(pair, other):
    np.broadcast_shapes(*pair)
    np.broadcast_shapes(other, (2, 1, 3))


@given(data=st.data())
def test_indices_are_valid_for_their_shape(data):
    shape = data.draw(shapes())
    index = data.draw(indices(shape))
    np.empty(shape)[index]  # raises if the index does not fit


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_samples_fit_their_op(name):
    """Every sample is accepted by the op's forward: a sampler that drew invalid inputs would make the
    property tests check errors instead of gradients."""
    @given(sample=op_samples(OPS[name]))
    def check(sample):
        op, inputs = sample
        apply(op, *[tg.tensor(a) for a in inputs])
    check()


@given(sample=op_samples("matmul"))
def test_op_samples_accepts_a_name(sample):
    op, inputs = sample
    assert op.name == "matmul" and len(inputs) == 2


def test_importing_tinygraph_does_not_import_hypothesis():
    code = "import sys, tinygraph; assert 'hypothesis' not in sys.modules, 'hypothesis imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
