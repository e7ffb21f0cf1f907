"""The accumulator's lazy gradients: a sum of Products of one shape (a recurrent weight's per-step
gradients ``dgates_t.T @ h_t``) is a ``ProductSum`` multiplied out in a few large matmuls, equal to
the sum of the products, holding no more than about the result's size of factors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from rnn_models import GRU, LSTM, RNN
from tinygraph.ops import lazy
from tinygraph.ops.lazy import (Buffer, Product, ProductSum, accumulate, flush_at, for_rule, group_flushes,
                                materialize, sum_group)


def products(rng, count, m, n, k, dtype=np.float64):
    return [Product(rng.standard_normal((k, m)).astype(dtype).T, rng.standard_normal((k, n)).astype(dtype))
            for _ in range(count)]


class group_bytes:
    """``lazy.GROUP_BYTES`` set for a block (0: groups close at N inner columns, as for a large result)."""
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        self.saved, lazy.GROUP_BYTES = lazy.GROUP_BYTES, self.value

    def __exit__(self, *exc):
        lazy.GROUP_BYTES = self.saved


@given(count=st.integers(1, 40), m=st.integers(1, 6), n=st.integers(1, 9), k=st.integers(1, 4),
       seed=st.integers(0, 2**16), limit=st.sampled_from([0, 256, lazy.GROUP_BYTES]))
def test_a_sum_of_products_is_their_sum_and_holds_at_most_the_results_size(count, m, n, k, seed, limit):
    items = products(np.random.default_rng(seed), count, m, n, k)
    total = None
    with group_bytes(limit):
        for g in items:
            total = g if total is None else accumulate(total, g)
            if isinstance(total, ProductSum):    # what it holds unmultiplied: one result, or the limit
                held = sum(a.size for a in total.lefts) + sum(b.size for b in total.rights)
                assert total.inner < total.flush_at
                assert held * 8 < max((m + n) * n * 8, limit) + (m + n) * k * 8
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


@given(inners=st.lists(st.integers(1, 5), min_size=1, max_size=30), m=st.integers(1, 5),
       n=st.integers(1, 9), seed=st.integers(0, 2**16), limit=st.sampled_from([0, 256, lazy.GROUP_BYTES]))
def test_groups_summed_at_once_equal_the_accumulator_bit_for_bit(inners, m, n, seed, limit):
    """A compiled plan collects a slot's Products and sums each group in one call (``sum_group``) where
    ``group_flushes`` says the accumulator closes it: the same matmuls and additions in the same order,
    so the very same bits, and no more factors held than the accumulator holds."""
    rng = np.random.default_rng(seed)
    items = [Product(rng.standard_normal((k, m)).T, rng.standard_normal((k, n))) for k in inners]
    total = None
    with group_bytes(limit):
        for g in items:
            total = g if total is None else accumulate(total, g)
        closes = group_flushes(inners, flush_at((m, n), np.float64))
    base, group = None, []
    for g, close in zip(items, closes):
        group.append(g)
        if close:
            assert sum(p.left.shape[1] for p in group) >= n    # where ProductSum flushes (>= N)
            base, group = sum_group(base, group), []
    if group:
        base = sum_group(base, group)
    assert np.array_equal(base, materialize(total))
    assert not closes[0]                                       # a first Product is never summed alone


def test_a_group_with_another_form_is_added_one_by_one_into_an_owned_array():
    rng = np.random.default_rng(1)
    a, b = products(rng, 2, 3, 4, 2)
    dense = rng.standard_normal((3, 4))
    out = sum_group(None, [dense, a, b])
    np.testing.assert_allclose(out, dense + a.left @ a.right + b.left @ b.right)
    out += 1                                              # owned: the rule's array is untouched
    assert not np.shares_memory(out, dense)
    base = np.ones((3, 4))
    assert sum_group(base, [a]) is base                   # the running sum adds in place
