"""Tensor: dtype rules, the 0-d scalar case, repr, and the small API around the value."""
import numpy as np
import pytest
from hypothesis import given

import tinygraph as tg
from tinygraph.testing import arrays, check_grads, shapes


# --- dtypes -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data, dtype", [
    (1.5, np.float64), ([1.0, 2.0], np.float64), (3, np.int64), ([1, 2], np.int64), ([True], np.bool_),
    (np.ones(2, np.float32), np.float32), (np.arange(3, dtype=np.int32), np.int32),
])
def test_tensor_dtype_follows_the_data(data, dtype):
    assert tg.tensor(data).dtype == dtype


def test_explicit_dtype_is_used():
    assert tg.tensor([1, 2], dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("data", [np.array([object()]), ["a", "b"], np.array(["x"]), {"a": 1}])
def test_object_and_string_data_are_refused(data):
    with pytest.raises(tg.DTypeError, match="not supported"):
        tg.tensor(data)


@pytest.mark.parametrize("data", [[1, 2], [True, False]])
def test_integer_and_bool_tensors_cannot_require_grad(data):
    with pytest.raises(tg.DTypeError, match="floating-point"):
        tg.tensor(data, requires_grad=True)
    with pytest.raises(TypeError):
        tg.tensor(data).requires_grad_()


@given(x=arrays(shapes(), np.float32))
def test_python_numbers_adopt_the_tensor_dtype(x):
    t = tg.tensor(x, requires_grad=True)
    for out in (t * 2.0, 2.0 * t, t + 1, 1 - t, t / 3.0, t ** 2, tg.maximum(t, 0.5), tg.where(t > 0, t, 0.0)):
        assert out.dtype == np.float32, out


def test_comparisons_return_bool_tensors_that_need_no_grad():
    x = tg.tensor([1.0, -1.0], requires_grad=True)
    for out in (x > 0, x >= 0, x < 0, x <= 0, x == 1.0, x != 1.0):
        assert out.dtype == np.bool_ and not out.requires_grad
    np.testing.assert_array_equal((x > 0).data, [True, False])


# --- the scalar case --------------------------------------------------------------------------------------
def test_scalar_expression_matches_hand_derivative():
    a, b = tg.tensor(0.7, requires_grad=True), tg.tensor(-1.3, requires_grad=True)
    f = a * b + tg.tanh(a) / b + (a - b).relu() ** 2
    f.backward()
    av, bv = 0.7, -1.3
    assert f.ndim == 0 and f.item() == pytest.approx(av * bv + np.tanh(av) / bv + (av - bv) ** 2)
    assert a.grad == pytest.approx(bv + (1 - np.tanh(av) ** 2) / bv + 2 * (av - bv))
    assert b.grad == pytest.approx(av - np.tanh(av) / bv ** 2 - 2 * (av - bv))


def micrograd_readme(a, b):
    """The expression from micrograd's README, on 0-d tensors (or torch scalars)."""
    c = a + b
    d = a * b + b ** 3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e ** 2
    g = f / 2.0
    return g + 10.0 / f


def test_micrograd_readme_expression_matches_torch():
    torch = pytest.importorskip("torch", reason="cross-check against PyTorch needs torch")
    a, b = tg.tensor(-4.0, requires_grad=True), tg.tensor(2.0, requires_grad=True)
    ta, tb = torch.tensor(-4.0, dtype=torch.float64, requires_grad=True), torch.tensor(2.0, dtype=torch.float64,
                                                                                       requires_grad=True)
    out, expected = micrograd_readme(a, b), micrograd_readme(ta, tb)
    out.backward()
    expected.backward()
    assert out.item() == pytest.approx(expected.item(), rel=1e-12)
    assert a.grad == pytest.approx(ta.grad.item(), rel=1e-12)
    assert b.grad == pytest.approx(tb.grad.item(), rel=1e-12)


def test_micrograd_readme_expression_gradients_are_right():
    check_grads(micrograd_readme, arrays((), low=-4, high=-3), arrays((), low=1.5, high=2.5))


# --- value API ------------------------------------------------------------------------------------------------
def test_item_numpy_and_shape_properties():
    t = tg.tensor([[1.0, 2.0, 3.0]])
    assert (t.shape, t.ndim, t.size, len(t)) == ((1, 3), 2, 3, 1)
    assert np.shares_memory(t.numpy(), t._data) and t.numpy().shape == t.shape
    assert isinstance(tg.tensor(2.5).item(), float) and tg.tensor(2.5).item() == 2.5
    assert [row.shape for row in t] == [(3,)]
    with pytest.raises(TypeError, match="0-d"):
        len(tg.tensor(1.0))


def test_detach_shares_data_but_leaves_the_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    d = y.detach()
    assert d._data is y._data and d.op is None and not d.requires_grad and d.is_leaf
    assert not (d * 3.0).requires_grad


def test_requires_grad_underscore():
    x = tg.tensor([1.0])
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad
    y = tg.tensor([1.0], requires_grad=True) * 2.0
    with pytest.raises(ValueError, match="detach"):
        y.requires_grad_(False)


def test_tensor_from_tensor_copies():
    x = tg.tensor([1.0, 2.0])
    y = tg.tensor(x)
    y.data[0] = 5.0
    assert x.data[0] == 1.0


# --- repr --------------------------------------------------------------------------------------------------------
def test_repr_shows_values_and_only_the_relevant_extras():
    assert repr(tg.tensor([1.0, 2.5])) == "tensor([1. , 2.5])"
    w = tg.tensor([1.0, 2.0], requires_grad=True, name="w")
    assert repr(w) == "tensor([1., 2.], requires_grad=True, name='w')"
    with tg.scope("layer"):
        y = w.astype(np.float32) * 2.0
    assert repr(y) == "tensor([2., 4.], dtype=float32, op=mul, requires_grad=True, scope='layer')"
    assert repr(tg.tensor(3.0)) == "tensor(3.)"


def test_repr_of_a_large_tensor_is_summarised():
    text = repr(tg.tensor(np.arange(1000.0)))
    assert "..." in text and len(text) < 200
