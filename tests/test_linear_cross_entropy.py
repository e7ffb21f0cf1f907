"""The fused head ``linear_cross_entropy`` equals Linear + cross_entropy composed from existing ops, and
its input gradient reaches a ``stack`` of per-step states as a lazy ``Product`` multiplied out per step.
(Its gradients against central differences come from the registry tests in test_ops.py.)"""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph.ops.lazy import Buffer, Product, Scatter, accumulate, materialize
from tinygraph.ops import lazy
from tinygraph.ops.head import LinearCrossEntropy
from tinygraph.ops.shape import Stack

H, V = 4, 5
LEADS = {1: (), 2: (3,), 3: (3, 2)}  # x.ndim -> leading shape of x (H,), (N, H), (T, B, H)
REDUCTIONS = ["mean", "sum", "none"]


def composed(x, w, b, targets, reduction):
    """The definition: logits = x @ W.T + b over (N, V) rows, then cross_entropy."""
    logits = (x @ w.T + b).reshape(-1, V)
    loss = tg.cross_entropy(logits, targets.reshape(-1), reduction)
    return loss.reshape(targets.shape) if reduction == "none" else loss


def fused(x, w, b, targets, reduction):
    return tg.linear_cross_entropy(x, w, b, targets, reduction)


def problem(lead, seed=0):
    """Arrays x (lead..., H), weight (V, H), bias (V,), targets (lead...) with repeated classes."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(lead + (H,)), rng.standard_normal((V, H)), rng.standard_normal(V)]
    return arrays, rng.integers(0, V, lead)


def leaves(arrays):
    return [tg.tensor(a.copy(), requires_grad=True) for a in arrays]


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ndim", sorted(LEADS))
def test_loss_and_gradients_equal_the_composed_head(ndim, reduction):
    arrays, targets = problem(LEADS[ndim])
    results = []
    for fn in (fused, composed):
        params = leaves(arrays)
        loss = fn(*params, targets, reduction)
        seed = np.random.default_rng(1).standard_normal(loss.shape)  # checks every output element
        loss.backward(seed)
        results.append((loss, params))
    (loss, params), (ref_loss, ref_params) = results
    assert loss.shape == ref_loss.shape and loss.dtype == ref_loss.dtype
    close(loss.data, ref_loss.data)
    for p, ref in zip(params, ref_params):
        assert p.grad.shape == ref.grad.shape
        close(p.grad, ref.grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ndim", sorted(LEADS))
def test_hessian_vector_products_equal_the_composed_head(ndim, reduction):
    """create_graph=True: d/d(x, W, b) of <grad, v> is the same for both, so the rule built from B ops
    is twice differentiable (and right)."""
    arrays, targets = problem(LEADS[ndim], seed=2)
    directions = [np.random.default_rng(3 + k).standard_normal(a.shape) for k, a in enumerate(arrays)]
    results = []
    for fn in (fused, composed):
        params = leaves(arrays)
        loss = fn(*params, targets, reduction)
        seed = np.random.default_rng(4).standard_normal(loss.shape)
        grads = tg.grad_of(loss, params, grad_outputs=seed, create_graph=True)
        inner = tg.sum(tg.stack([tg.sum(g * v) for g, v in zip(grads, directions)]))
        results.append((grads, tg.grad_of(inner, params)))
    (grads, hvps), (ref_grads, ref_hvps) = results
    for g, ref in zip(grads + hvps, ref_grads + ref_hvps):
        close(g.data, ref.data)


def test_a_second_backward_recomputes_what_the_first_took_from_the_cache():
    arrays, targets = problem((3, 2))
    params = leaves(arrays)
    loss = tg.linear_cross_entropy(*params, targets)
    assert loss._cache.shape == (6, V)  # the node's only (N, V) array: no logits beside it
    assert vars(loss.op).keys() == {"targets", "reduction"}  # the op holds no state of its own
    first = tg.grad_of(loss, params, retain_graph=True)
    assert loss._cache is None          # taken (and scaled) by the first backward
    second = tg.grad_of(loss, params, retain_graph=True)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.data, b.data)


def test_no_cache_is_kept_where_no_backward_can_come():
    arrays, targets = problem((3, 2))
    with tg.no_grad():
        assert tg.linear_cross_entropy(*leaves(arrays), targets)._cache is None
    constants = [tg.tensor(a) for a in arrays]
    assert tg.linear_cross_entropy(*constants, targets)._cache is None


def test_one_op_applied_twice_gives_each_node_its_own_gradient():
    """The cache lives on the node, so an op instance applied twice (as the property tests do) leaves
    each node its own dlogits, and each backward takes only its node's."""
    (x, w, b), targets = problem((3,))
    op = LinearCrossEntropy(targets, "sum")
    older = tg.ops.apply(op, *leaves([x, w, b]))
    newer = tg.ops.apply(op, *leaves([x + 1.0, w, b]))
    assert older._cache is not None and newer._cache is not None and older._cache is not newer._cache
    for node, shift in [(older, 0.0), (newer, 1.0)]:
        params = leaves([x + shift, w, b])
        expected = tg.grad_of(composed(*params, targets, "sum"), params)
        for g, ref in zip(tg.grad_of(node, node.inputs), expected):
            close(g.data, ref.data)
        assert node._cache is None
    assert vars(op).keys() == {"targets", "reduction"}


# --- a head over a stacked sequence ------------------------------------------------------------------
T, B = 4, 3


def unrolled(step_inputs, w_h, w, b, targets, head):
    """h_t = tanh(h_{t-1} @ W_h + x_t), loss = head(stack(h), W, b, targets)."""
    h = tg.tensor(np.zeros((B, H)))
    hs = []
    for x_t in step_inputs:
        h = tg.tanh(h @ w_h + x_t)
        hs.append(h)
    return head(tg.stack(hs), w, b, targets, "mean")


def sequence_problem():
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal((T, B, H)), rng.standard_normal((H, H)) * 0.5,
              rng.standard_normal((V, H)), rng.standard_normal(V)]
    return arrays, rng.integers(0, V, (T, B))


def run_sequence(head):
    arrays, targets = sequence_problem()
    xs, w_h, w, b = leaves(arrays)
    loss = unrolled([xs[t] for t in range(T)], w_h, w, b, targets, head)
    loss.backward()
    return loss, [xs, w_h, w, b]


def test_through_a_stack_the_gradients_equal_the_composed_head():
    (loss, params), (ref_loss, ref_params) = run_sequence(fused), run_sequence(composed)
    close(loss.data, ref_loss.data)
    for p, ref in zip(params, ref_params):
        close(p.grad, ref.grad)


def test_the_sequence_gradient_is_multiplied_out_one_step_at_a_time(monkeypatch):
    """Above ``lazy.DENSE_BELOW``, stack's rule receives the lazy Product, and every block the engine
    multiplies out is one step's (B, H): materialising the (T, B, H) gradient at once would show up as
    a dense() of that shape."""
    monkeypatch.setattr(lazy, "DENSE_BELOW", 0)   # this problem is small: make it count as large
    received, multiplied = [], []
    stack_vjp, dense = Stack.vjp, Product.dense

    def spy_vjp(self, B_, g, out, *xs):
        received.append(type(g))
        return stack_vjp(self, B_, g, out, *xs)

    def spy_dense(self):
        multiplied.append(self.shape)
        return dense(self)
    monkeypatch.setattr(Stack, "vjp", spy_vjp)
    monkeypatch.setattr(Product, "dense", spy_dense)
    run_sequence(fused)
    assert received == [Product]
    assert multiplied == [(B, H)] * T


def test_a_small_sequence_gradient_is_multiplied_out_at_once(monkeypatch):
    """Below ``lazy.DENSE_BELOW`` bytes the (T, B, H) gradient is one matmul, not T small ones (each a
    numpy call), and the gradients are the same as the lazy path's to rounding."""
    received = []
    stack_vjp = Stack.vjp

    def spy_vjp(self, B_, g, out, *xs):
        received.append(type(g))
        return stack_vjp(self, B_, g, out, *xs)
    monkeypatch.setattr(Stack, "vjp", spy_vjp)
    assert T * B * H * 8 < lazy.DENSE_BELOW
    loss, params = run_sequence(fused)
    assert received == [np.ndarray]
    monkeypatch.setattr(lazy, "DENSE_BELOW", 0)
    lazy_loss, lazy_params = run_sequence(fused)
    assert received == [np.ndarray, Product]
    for p, ref in zip(params, lazy_params):
        close(p.grad, ref.grad)


def test_users_see_dense_gradients_of_a_lazily_fed_stack():
    """retain_grad, grad_of and anomaly mode read the stack's gradient: they get ndarrays."""
    arrays, targets = sequence_problem()
    xs, _, w, b = leaves(arrays)
    with tg.detect_anomaly():
        seq = tg.stack([tg.tanh(xs[t]) for t in range(T)])
        seq.retain_grad()
        loss = tg.linear_cross_entropy(seq, w, b, targets)
        (captured,) = tg.grad_of(loss, [seq], retain_graph=True)
        loss.backward()
    ref_seq = tg.tensor(seq.data, requires_grad=True)
    (ref,) = tg.grad_of(composed(ref_seq, w, b, targets, "mean"), [ref_seq])
    assert type(seq.grad) is np.ndarray and type(captured._data) is np.ndarray
    close(seq.grad, ref.data)
    close(captured.data, ref.data)


def test_edge_gradients_for_drawing_use_the_recomputed_rule():
    """visualize asks the op's rule again after backward (cache gone): the flow into x is dense and
    equals the composed gradient."""
    from visualize.grads import edge_grads, retain_all
    arrays, targets = problem((3, 2))
    params = leaves(arrays)
    loss = tg.linear_cross_entropy(*params, targets)
    graph = retain_all(loss)
    loss.backward()
    flows = edge_grads(graph)
    x_flow = next(f for (src, dst, argnum), f in flows.items() if argnum == 0)
    assert type(x_flow) is np.ndarray
    close(x_flow, params[0].grad)


# --- Product, the lazy gradient ----------------------------------------------------------------------
@pytest.fixture
def product():
    rng = np.random.default_rng(6)
    return Product(rng.standard_normal((4, 3, 5)), rng.standard_normal((5, 2)))


def test_product_stands_for_left_at_right(product):
    assert product.shape == (4, 3, 2) and product.dtype == np.float64
    close(product.dense(), product.left @ product.right)
    close(materialize(product), product.left @ product.right)


@pytest.mark.parametrize("index", [1, -1, np.int64(2), (slice(None), 0), (slice(1, None, 2),),
                                   (2, slice(0, 2)), slice(None, None, -1)])
def test_indexing_leading_axes_stays_lazy(product, index):
    part = product[index]
    assert type(part) is Product and part.right is product.right
    close(part.dense(), product.dense()[index])


@pytest.mark.parametrize("index", [(0, 1, 1), (Ellipsis, 0), (slice(None), slice(None), 1), (None, 0),
                                   (np.array([0, 0, 3]),), True])
def test_indexing_the_last_axis_or_advanced_falls_back_to_dense(product, index):
    part = product[index]
    assert type(part) is not Product
    np.testing.assert_array_equal(part, product.dense()[index])


def test_an_int_on_a_vector_product_indexes_its_only_axis():
    p = Product(np.arange(3.0), np.ones((3, 2)))
    assert p.shape == (2,) and p[1] == 3.0


@pytest.mark.parametrize("other", ["array", "scatter", "buffer", "product"])
@pytest.mark.parametrize("product_first", [True, False])
def test_accumulate_adds_a_product_to_every_gradient_form(product, other, product_first):
    dense = product.dense()
    rng = np.random.default_rng(7)
    values = rng.standard_normal(dense.shape)
    forms = {"array": lambda: values.copy(),
             "scatter": lambda: Scatter(dense.shape, (slice(None), 1), values[:, 1], False),
             "buffer": lambda: Buffer(values.copy()),
             "product": lambda: Product(product.left, product.right * 2)}
    expected = dense + materialize(forms[other]())
    g = forms[other]()
    # the engine's running total may be a Buffer; what a rule hands it never is
    total = accumulate(product, g) if product_first and other != "buffer" else accumulate(g, product)
    assert type(total) is Buffer
    close(total.array, expected)
    if other == "buffer":
        assert total is g  # the engine's own buffer is added to in place


def test_the_head_on_hidden_states_viewed_in_a_slab_copies_none_of_them():
    """A layer's hidden states are often a strided view ((T, B, H) rows of an [h, c] slab); np.dot
    would copy such a factor whole (memory the benchmark's bar counts), matmul hands BLAS the stride.
    Forward and rule allocate the (N, V) dlogits, the gradients and O(N) vectors, not another (N, H)."""
    import tracemalloc
    rng = np.random.default_rng(0)
    T, B, H, V = 200, 8, 128, 4               # dx (N, H) is 1.6 MB: left as a Product
    slab = rng.standard_normal((T, B, 2 * H))
    hs = slab[:, :, :H]                       # every row strided by 2H
    w, b = rng.standard_normal((V, H)), rng.standard_normal(V)
    targets = rng.integers(0, V, (T, B))
    op = LinearCrossEntropy(targets.reshape(-1), "sum")
    op.vjp_arrays(1.0, None, hs, w, b, op.forward(hs, w, b).cache)   # warm caches
    tracemalloc.start()
    try:
        cached = op.forward(hs, w, b)
        dx, dw, db = op.vjp_arrays(1.0, None, hs, w, b, cached.cache)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    copy_of_hs = T * B * H * 8
    assert peak < copy_of_hs, (peak, copy_of_hs)
    assert isinstance(dx, Product)
    dense = op.forward(np.ascontiguousarray(hs), w, b)
    np.testing.assert_allclose(cached.value, dense.value, rtol=1e-13)
    np.testing.assert_allclose(dx.dense(), dense.cache.reshape(T, B, V) @ w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, dense.cache.T @ np.ascontiguousarray(hs).reshape(-1, H), rtol=1e-12)
