"""The engine releases every value no gradient rule reads, once nothing outside the graph holds it
(tinygraph.release): what is released, what is kept, and that gradients do not change."""
import gc
import sys
import weakref

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import release
from tinygraph.ops import apply
from tinygraph.ops.math import Add

B, H, STEPS = 3, 4, 6


@pytest.fixture(autouse=True)
def release_every_size(monkeypatch):
    """The values here are tiny, below the size worth a sweep by default (``MIN_BYTES``)."""
    monkeypatch.setattr(release, "MIN_BYTES", 0)


def params(seed=0):
    rng = np.random.default_rng(seed)
    return [tg.tensor(rng.standard_normal(shape) * 0.5, requires_grad=True, name=name)
            for name, shape in [("W", (H, H)), ("U", (H, H)), ("b", (H,))]]


def gated_loop(W, U, b, steps=STEPS, seed=1):
    """A minimal gated cell written from primitives, unrolled by hand:
    z = sigmoid(x W + h U + b), h = z * h + (1 - z) * tanh(x W + b)."""
    xs = np.random.default_rng(seed).standard_normal((steps, B, H))
    h = tg.tensor(np.zeros((B, H)))
    for t in range(steps):
        x = tg.tensor(xs[t])
        z = tg.sigmoid(x @ W + h @ U + b)
        h = z * h + (1 - z) * tg.tanh(x @ W + b)
    return (h * h).sum()


def released(t):
    return isinstance(t.data, tg.Released)


def first_add(h, x):
    """The first ``h + x`` of a ``h = tanh(h + x)`` chain that starts at ``x``."""
    return next(n for n in walk(h) if n.op is not None and n.op.name == "add" and n.inputs[0] is x)


def walk(root):
    """Every node behind ``root``, found through ``inputs`` without building a Graph (which would
    sweep first)."""
    seen, stack, nodes = set(), [root], []
    while stack:
        n = stack.pop()
        if id(n) not in seen:
            seen.add(id(n))
            nodes.append(n)
            stack.extend(n.inputs)
    return nodes


# --- what is released ----------------------------------------------------------------------------------
def test_values_no_rule_reads_are_released_and_gradients_do_not_change():
    W, U, b = params()
    with tg.keep_values():
        gated_loop(W, U, b).backward()
    expected = [p.grad.copy() for p in (W, U, b)]
    for p in (W, U, b):
        p.grad = None
    loss = gated_loop(W, U, b)
    graph = loss.graph()
    status = {}
    for n in graph.ops:
        for k, s in enumerate(n.inputs):
            if s.op is not None:
                status.setdefault((s.op.name, n.op.name, k), set()).add(released(s))
    # (value's op, consumer's op, argument): a value only add reads (its rule reads shapes), or only
    # sigmoid/tanh (they read their output) is released; what mul or matmul reads is kept
    assert status == {
        ("matmul", "add", 0): {True}, ("matmul", "add", 1): {True}, ("add", "add", 0): {True},
        ("add", "sigmoid", 0): {True}, ("add", "tanh", 0): {True},
        ("mul", "add", 0): {True}, ("mul", "add", 1): {True}, ("mul", "sum", 0): {True},
        ("sigmoid", "mul", 0): {False}, ("sigmoid", "sub", 1): {False}, ("sub", "mul", 0): {False},
        ("tanh", "mul", 1): {False}, ("add", "mul", 1): {False}, ("add", "matmul", 0): {False},
        ("add", "mul", 0): {False}}
    loss.backward()
    for p, g in zip((W, U, b), expected):
        np.testing.assert_array_equal(p.grad, g)


def test_memory_counts_only_the_saved_values():
    W, U, b = params()
    loss = gated_loop(W, U, b)
    usage = loss.graph().memory()
    per_step = B * H * 8
    # each step keeps what mul and matmul read: z (sigmoid), 1 - z (sub), tanh(...) and the new h
    # (add); the pre-activations, the products and h * h, read by add and sum only, are gone
    assert usage["sigmoid"] == usage["tanh"] == usage["sub"] == usage["add"] == STEPS * per_step
    assert usage["sum"] == 8                                  # the loss, which the test holds
    assert "matmul" not in usage and "mul" not in usage


@pytest.mark.parametrize("hold", ["variable", "list", "dict", "closure", "attribute", "tuple"])
def test_a_tensor_held_once_outside_the_graph_keeps_its_value(hold):
    """Exactly one reference besides the consumers' ``inputs`` keeps a value: the refcount arithmetic
    of the sweep is off by none in either direction (the sibling intermediate, held by nothing, goes)."""
    x = tg.tensor(np.ones((2, 2)), requires_grad=True)
    pre = x + 1.0
    holder = {"variable": lambda t: t, "list": lambda t: [t], "dict": lambda t: {"k": t},
              "closure": lambda t: (lambda: t), "attribute": lambda t: type("Box", (), {})(),
              "tuple": lambda t: (t,)}[hold](pre)
    if hold == "attribute":
        holder.t = pre
    out = tg.tanh(pre) + tg.tanh(x * 2.0 + 1.0)
    del pre
    graph = tg.Graph.of(out)
    held, free = [n for n in graph.ops if n.op.name == "add" and n is not out]
    assert not released(held) and released(free)
    np.testing.assert_array_equal(held.data, 2.0)
    del holder, held, graph  # a Graph holds its nodes too
    graph = tg.Graph.of(out)
    assert all(released(n) for n in graph.ops if n.op.name == "add" and n is not out)


def test_the_sweep_accounts_for_exactly_three_references_of_its_own():
    x = tg.tensor(np.ones(3), requires_grad=True)
    pre = x + 1.0
    out = tg.tanh(pre)
    # `pre`, out.inputs and the pending list (getrefcount's own argument excluded)
    assert sys.getrefcount(pre) - 1 == 3 and any(t is pre for t in release.PENDING)
    assert release._OWN_REFS == 3          # in the sweep: PENDING's slot, the loop variable, the argument
    del pre
    release.sweep()
    assert released(out.inputs[0])
    args = (x, x)
    assert apply(Add(), *args).inputs is not args  # each node's inputs: a tuple of its own


def test_a_tensor_used_twice_by_one_op_counts_twice():
    x = tg.tensor(np.ones(3), requires_grad=True)
    pre = x * 3.0
    out = tg.tanh(pre + pre)
    release.sweep()
    assert not released(pre)               # held by the test
    del pre
    release.sweep()
    twice = out.inputs[0].inputs
    assert twice[0] is twice[1] and released(twice[0])
    out.sum().backward()
    np.testing.assert_allclose(x.grad, 6 * (1 - np.tanh(6.0) ** 2))


def test_a_consumer_that_died_does_not_let_a_held_tensor_go():
    """A throwaway consumer (``exp(pre)``: its value is saved, its input is not) would die with its
    ``inputs`` and leave the count of ``pre``'s consumers one too high, so that the user's own
    reference would pass for the dead consumer's; the engine holds such a consumer while its input
    may still be released."""
    x = tg.tensor(np.ones(3), requires_grad=True)
    pre = x + 1.0
    tg.exp(pre).sum()                     # dead at once, as far as the user is concerned
    out = tg.tanh(pre)
    for _ in range(2):
        release.sweep()
        assert not released(pre)
    np.testing.assert_array_equal(pre.data, 2.0)
    del pre
    release.sweep()
    assert released(out.inputs[0])


def test_a_dropped_graph_is_freed_at_the_next_sweep():
    x = tg.tensor(np.ones(3), requires_grad=True)
    h = x
    for _ in range(50):
        h = tg.tanh(h + x)
    first = weakref.ref(first_add(h, x))
    del h
    release.sweep()
    gc.collect()
    assert first() is None
    assert all(n.inputs is not None for n in release.PENDING)


def test_the_pending_list_stays_small_in_a_long_forward():
    x = tg.tensor(np.ones((2, 2)), requires_grad=True)
    h = x
    longest = 0
    for _ in range(5000):
        h = tg.tanh(h + x)
        longest = max(longest, len(release.PENDING))
    assert longest <= 2 * release.FLOOR
    # the sweeps ran during forward: the first pre-activation went long before backward
    assert released(first_add(h, x))


def test_leaves_constants_and_no_grad_values_are_never_released():
    x = tg.tensor(np.ones(3), requires_grad=True)
    with tg.no_grad():
        c = x + 1.0
    out = tg.tanh(x + c) + 2.0
    graph = tg.Graph.of(out)
    assert all(not released(n) for n in graph.leaves)
    assert not released(c) and c.op is None


# --- how values are kept -------------------------------------------------------------------------------
def test_retain_grad_keeps_the_value():
    x = tg.tensor(np.ones(3), requires_grad=True)
    pre = (x + 1.0).retain_grad()
    out = tg.tanh(pre)
    del pre
    graph = tg.Graph.of(out)
    (pre,) = out.inputs
    assert not released(pre)
    out.sum().backward()
    np.testing.assert_array_equal(pre.data, 2.0)
    np.testing.assert_allclose(pre.grad, 1 - np.tanh(2.0) ** 2)
    assert graph.nodes


def test_keep_values_keeps_everything_computed_inside_for_good():
    W, U, b = params()
    with tg.keep_values():
        loss = gated_loop(W, U, b)
    release.sweep()
    assert not any(released(n) for n in loss.graph().nodes)
    loss = gated_loop(W, U, b)            # outside: released again
    assert any(released(n) for n in loss.graph().nodes)


# --- backward over released values ---------------------------------------------------------------------
def test_retain_graph_and_create_graph_work_on_released_values():
    W, U, b = params()

    def hvp():
        (g,) = tg.grad_of(gated_loop(W, U, b), [U], create_graph=True)
        (hv,) = tg.grad_of((g * g).sum(), [U])
        loss = gated_loop(W, U, b)
        first = tg.grad_of(loss, [W], retain_graph=True)[0].data
        second = tg.grad_of(loss, [W])[0].data
        return hv.data, first, second

    with tg.keep_values():
        expected = hvp()
    got = hvp()
    for a, e in zip(got, expected):
        np.testing.assert_array_equal(a, e)


def test_a_held_tensor_stays_valid_after_backward_frees_the_graph():
    """backward(retain_graph=False) drops ``inputs`` as it walks, which no count sees; values still
    pending are then kept for good, so a later sweep cannot mistake the user's reference for a
    consumer's."""
    x = tg.tensor(np.ones(3), requires_grad=True)
    pre = x + 1.0
    side = tg.tanh(pre)                   # a second consumer, which the backward below does not walk
    tg.tanh(pre).sum().backward()         # frees the walked consumer's inputs: pre has one reference less
    more = tg.tanh(pre + 1.0)
    for _ in range(3):
        release.sweep()
    np.testing.assert_array_equal(pre.data, 2.0)
    assert more.inputs[0].inputs[0] is pre and side.inputs[0] is pre


# --- using a released value ----------------------------------------------------------------------------
def test_using_a_released_value_is_a_clear_error_naming_op_scope_and_remedy():
    x = tg.tensor(np.ones((2, 1)), requires_grad=True)
    with tg.scope("cell"), tg.scope("t=3"):
        out = tg.tanh(x * 2.0 + 1.0)
    tg.Graph.of(out)
    pre = out.inputs[0]
    assert released(pre) and pre.shape == (2, 1) and pre.dtype == np.float64
    assert pre.ndim == 2 and pre.size == 2 and len(pre) == 2
    message = r"op 'add' \(scope 'cell/t=3'.*released.*hold a reference.*retain_grad\(\).*keep_values"
    uses = [lambda: pre.numpy(), lambda: pre.data + 1, lambda: np.asarray(pre), lambda: pre[0].item(),
            lambda: float(pre[0, 0]), lambda: np.tanh(pre.data), lambda: pre.data.sum(), lambda: pre * 2,
            lambda: np.ones((2, 1)) * pre.data, lambda: pre.detach(), lambda: tg.tensor(pre),
            lambda: pre.data[0], lambda: bool(pre[0, 0])]
    for use in uses:
        with pytest.raises(tg.GraphError, match=message):
            use()
    text = repr(pre)  # printing a graph node by node never fails: the repr says what happened
    assert "released" in text and "op=add" in text and "scope='cell/t=3'" in text
    assert "shape (2, 1)" in repr(pre.data)


def test_memory_of_a_released_value_is_zero():
    x = tg.tensor(np.ones((4, 4)), requires_grad=True)
    out = tg.tanh(x @ x + x)
    assert tg.Graph.of(out).memory() == {"leaf": 128, "tanh": 128}


def test_only_values_whose_release_frees_memory_are_released(monkeypatch):
    monkeypatch.setattr(release, "MIN_BYTES", 1024)
    x = tg.tensor(np.ones((8, 16)), requires_grad=True)      # 1 KiB: worth it
    big = tg.tanh(x + 1.0)
    small = tg.tanh(x[:1] * 2.0 + 1.0)                        # 128 B each
    gate = tg.tanh((x + 1.0)[:, :8])                          # a view of a releasable 1 KiB value
    leaf_view = tg.tanh(x[:, :8])                             # a view of a leaf frees nothing
    graph = tg.Graph.of(big, small, gate, leaf_view)
    assert released(big.inputs[0]) and not released(small.inputs[0])
    assert released(gate.inputs[0]) and released(gate.inputs[0].inputs[0])
    assert not released(leaf_view.inputs[0])
    usage = graph.memory()
    assert usage["tanh"] == 1024 + 128 + 2 * 512 and usage["mul"] == usage["add"] == 128
    assert "getitem" not in usage                             # slices of x count towards the leaf
