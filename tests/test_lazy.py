"""The accumulator's lazy gradients: a sum of Products of one shape (a recurrent weight's per-step
gradients ``dgates_t.T @ h_t``) is a ``ProductSum`` multiplied out in a few large matmuls, equal to
the sum of the products, holding no more than about the result's size of factors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from rnn_models import GRU, LSTM, RNN
from tinygraph.ops.lazy import Buffer, Product, ProductSum, accumulate, for_rule, materialize


def products(rng, count, m, n, k, dtype=np.float64):
    return [Product(rng.standard_normal((k, m)).astype(dtype).T, rng.standard_normal((k, n)).astype(dtype))
            for _ in range(count)]


@given(count=st.integers(1, 40), m=st.integers(1, 6), n=st.integers(1, 9), k=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_a_sum_of_products_is_their_sum_and_holds_at_most_the_results_size(count, m, n, k, seed):
    items = products(np.random.default_rng(seed), count, m, n, k)
    total = None
    for g in items:
        total = g if total is None else accumulate(total, g)
        if isinstance(total, ProductSum):
            assert total.inner < n               # what it holds unmultiplied stays under one result
            assert sum(left.size for left in total.lefts) < m * n + m * k
    expected = sum(g.left @ g.right for g in items)
    np.testing.assert_allclose(materialize(total), expected, rtol=1e-12, atol=1e-12)
    assert isinstance(total, Product if count == 1 else ProductSum)


def test_other_contributions_and_other_shapes_fall_back_to_a_buffer():
    rng = np.random.default_rng(0)
    a, b = products(rng, 2, 3, 4, 2)
    dense = rng.standard_normal((3, 4))
    total = accumulate(accumulate(a, b), dense)          # a ProductSum meeting an ndarray
    assert type(total) is Buffer
    np.testing.assert_allclose(materialize(total), a.left @ a.right + b.left @ b.right + dense)
    same_shape = Product(rng.standard_normal((3, 5)), rng.standard_normal((5, 4)))   # another inner size
    assert type(accumulate(a, same_shape)) is ProductSum
    other_shape = Product(rng.standard_normal((3, 5)), rng.standard_normal((5, 2)))
    with pytest.raises(ValueError):                      # (3, 4) + (3, 2): numpy's broadcasting error
        accumulate(ProductSum(a), other_shape)
    float32 = Product(a.left.astype(np.float32), a.right.astype(np.float32))
    assert type(accumulate(ProductSum(a), float32)) is Buffer        # another dtype: not one matmul
    mixed = Product(a.left.astype(np.float32), a.right)              # float32 @ float64 is float64
    assert ProductSum(a).takes(mixed) and not ProductSum(float32).takes(a)
    np.testing.assert_allclose(accumulate(ProductSum(a), mixed).dense(), 2 * (a.left @ a.right), rtol=1e-6)
    assert type(for_rule(accumulate(a, b), None)) is np.ndarray      # a rule or a leaf gets an array


@pytest.mark.parametrize("layer", [RNN, LSTM, GRU])
def test_recurrent_weight_gradients_equal_the_generic_rules(layer, monkeypatch):
    """The cells' weight gradients arrive as Products and are summed as ProductSums (one add per step
    after the first); the stored gradients equal those of the unfused gate form (each step's own
    matmul, added up)."""
    adds = []
    real = ProductSum.add
    monkeypatch.setattr(ProductSum, "add", lambda self, g: adds.append(1) or real(self, g))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 2, 3))
    grads = []
    for fused in (True, False):
        tg.manual_seed(0)
        model = layer(3, 5, fused=fused)
        out = model(x)[0]
        (out * out).sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert len(adds) == 30 - 1                           # the fused run's W_hh: 30 steps, one sum
    for name in grads[0]:
        np.testing.assert_allclose(grads[0][name], grads[1][name], rtol=1e-10, atol=1e-12, err_msg=name)
