"""Reverse-mode autodiff: accumulation, retained and freed graphs, higher order, long chains, anomalies."""
import inspect
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.testing import arrays, broadcastable_pairs, check_grads


def line_below():
    """``file:line`` of the line after the caller's (where the node under test is created)."""
    frame = inspect.currentframe().f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno + 1}"


# --- .grad bookkeeping ----------------------------------------------------------------------------------
def test_gradients_accumulate_across_backward_calls():
    x = tg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3.0)


def test_intermediate_grads_are_kept_only_with_retain_grad():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 2.0).retain_grad()
    square = h * h
    square.sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)
    assert square.grad is None
    np.testing.assert_allclose(x.grad, 8 * x.data)


def test_a_second_backward_through_a_freed_graph_raises_a_clear_error():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(tg.GraphError, match=r"freed.*retain_graph=True"):
        loss.backward()


def test_retain_graph_allows_a_second_backward_and_grads_add_up():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * (2 * x.data))


def test_compute_gradient_returns_the_requested_gradients_and_stores_nothing():
    """The walk returns {node: gradient}; backward and grad_of only store or hand it out."""
    from tinygraph.autograd import compute_gradient
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([3.0, -1.0], requires_grad=True)
    h = (x * w).retain_grad()
    z = tg.tensor([5.0, 7.0], requires_grad=True)  # no path to the loss
    loss = (h * h).sum()
    found = compute_gradient([loss], [np.ones(())], retain_graph=True)
    assert set(map(id, found)) == {id(x), id(w), id(h)}  # leaves and retained tensors by default
    np.testing.assert_allclose(found[x], 2 * h.data * w.data)
    np.testing.assert_allclose(found[w], 2 * h.data * x.data)
    np.testing.assert_allclose(found[h], 2 * h.data)
    assert x.grad is None and w.grad is None and h.grad is None
    only = compute_gradient([loss], [np.full((), 3.0)], wanted=[h, z])
    assert set(map(id, only)) == {id(h)}
    np.testing.assert_allclose(only[h], 6 * h.data)
    assert loss.inputs is None  # without retain_graph the walk frees the links it used


def test_non_scalar_backward_needs_an_explicit_grad():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2.0
    with pytest.raises(tg.GraphError, match=r"shape \(3,\).*grad="):
        y.backward()
    with pytest.raises(tg.ShapeError, match=r"\(2,\).*\(3,\)"):
        y.backward(np.ones(2), retain_graph=True)
    y.backward(np.array([1.0, 10.0, 100.0]))
    np.testing.assert_allclose(x.grad, [2.0, 20.0, 200.0])


def test_backward_of_an_output_that_needs_no_grad_raises():
    with pytest.raises(tg.GraphError, match="does not require grad"):
        (tg.tensor([1.0]) * 2.0).sum().backward()


def test_no_grad_records_nothing():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        y = (x * x).sum()
        with tg.enable_grad():
            z = x * 1.0
    assert not y.requires_grad and y.op is None and y.inputs == ()
    assert len(tg.Graph.of(y)) == 1
    assert z.requires_grad and z.op.name == "mul"
    assert tg.is_grad_enabled()


def test_a_node_that_uses_one_tensor_twice_keeps_both_parents():
    a = tg.tensor(3.0, requires_grad=True)
    y = a * a
    assert y.inputs == (a, a)
    y.backward()
    assert a.grad == pytest.approx(6.0)


# --- function transforms ------------------------------------------------------------------------------
def test_grad_and_value_and_grad_with_argnums():
    def f(a, b):
        return (a * b + a * a).sum()

    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    np.testing.assert_allclose(tg.grad(f)(a, b).data, b + 2 * a)
    np.testing.assert_allclose(tg.grad(f, argnums=1)(a, b).data, a)
    value, (ga, gb) = tg.value_and_grad(f, argnums=(0, 1))(a, b)
    assert value.item() == pytest.approx(float((a * b + a * a).sum()))
    np.testing.assert_allclose(ga.data, b + 2 * a)
    np.testing.assert_allclose(gb.data, a)


def test_grad_refuses_a_non_scalar_function():
    with pytest.raises(tg.GraphError, match="single-element"):
        tg.grad(lambda x: x * 2.0)(np.ones(3))


def test_grad_of_leaves_dot_grad_alone_and_gives_zeros_for_unused_inputs():
    x, unused = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor(5.0, requires_grad=True)
    gx, gu = tg.grad_of((x * x).sum(), [x, unused])
    np.testing.assert_allclose(gx.data, 2 * x.data)
    assert gu.data == 0 and x.grad is None
    assert tg.grad_of((x * 2.0).sum(), [x, unused], allow_unused=True)[1] is None


# --- higher order ------------------------------------------------------------------------------------------
def test_grad_of_grad_of_a_cube():
    cube = lambda x: x ** 3  # noqa: E731
    first = tg.grad(cube, create_graph=True)
    second = tg.grad(first, create_graph=True)
    third = tg.grad(second)
    x = tg.tensor(1.5, requires_grad=True)
    assert first(x).item() == pytest.approx(3 * 1.5 ** 2)
    assert second(x).item() == pytest.approx(6 * 1.5)
    assert third(x).item() == pytest.approx(6.0)


def test_hessian_vector_product_equals_the_analytic_hessian_times_v():
    """f(x) = 0.5 x^T A x + sum(exp(x)) has Hessian (A + A^T)/2 + diag(exp(x))."""
    rng = np.random.default_rng(0)
    A, x0, v = rng.standard_normal((4, 4)), rng.standard_normal(4), rng.standard_normal(4)
    x = tg.tensor(x0, requires_grad=True)
    f = 0.5 * (x @ (tg.tensor(A) @ x)) + tg.exp(x).sum()
    (g,) = tg.grad_of(f, x, create_graph=True)
    (hv,) = tg.grad_of((g * v).sum(), x)
    hessian = (A + A.T) / 2 + np.diag(np.exp(x0))
    np.testing.assert_allclose(hv.data, hessian @ v, rtol=1e-12)


def test_backward_with_create_graph_makes_grad_a_differentiable_tensor():
    x = tg.tensor([1.0, -2.0], requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    assert isinstance(x.grad, tg.Tensor) and x.grad.requires_grad
    np.testing.assert_allclose(x.grad.data, 3 * x.data ** 2)
    (second,) = tg.grad_of(x.grad.sum(), x)
    np.testing.assert_allclose(second.data, 6 * x.data)


pair = st.shared(broadcastable_pairs(2, max_dims=2), key="pair")


@given(x=arrays(pair.map(lambda p: p[0]), low=-2, high=2), y=arrays(pair.map(lambda p: p[1]), low=-2, high=2))
def test_grad_of_grad_matches_torch(x, y):
    torch = pytest.importorskip("torch", reason="cross-check against PyTorch needs torch")
    fn = lambda a, b, lib: (lib.tanh(a * b) * a).sum()  # noqa: E731
    a, b = tg.tensor(x, requires_grad=True), tg.tensor(y, requires_grad=True)
    (ga,) = tg.grad_of(fn(a, b, tg), a, create_graph=True)
    ours = tg.grad_of(ga.sum(), [a, b])
    ta, tb = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    (tga,) = torch.autograd.grad(fn(ta, tb, torch), ta, create_graph=True)
    theirs = torch.autograd.grad(tga.sum(), [ta, tb])
    for mine, ref in zip(ours, theirs):
        np.testing.assert_allclose(mine.data, ref.numpy(), rtol=1e-10, atol=1e-12)


def test_user_functions_second_order_through_check_grads():
    check_grads(lambda x, w: tg.tanh(x @ w).sum(axis=-1), arrays((2, 3)), arrays((3, 4)), second_order=True)


# --- scale ----------------------------------------------------------------------------------------------------
def test_a_million_node_chain_runs_forward_and_backward_without_recursion():
    x0 = tg.tensor(1.0, requires_grad=True)
    step = tg.tensor(1e-6)
    x = x0
    for _ in range(10 ** 6):
        x = x + step
    x.backward()
    assert x.item() == pytest.approx(2.0)
    assert x0.grad == 1.0


# --- anomaly detection ---------------------------------------------------------------------------------
def test_detect_anomaly_names_the_op_scope_shapes_and_line_of_a_nan_forward_value():
    x = tg.tensor([-1.0, 2.0], requires_grad=True)
    with tg.detect_anomaly(), tg.scope("lstm"), tg.scope("t=3"), np.errstate(invalid="ignore"):
        with pytest.raises(tg.AnomalyError) as info:
            site = line_below()
            tg.log(x)
    message = str(info.value)
    for part in ("NaN", "forward", "'log'", "lstm/t=3", "(2,)", site):
        assert part in message, (part, message)


def test_detect_anomaly_blames_the_op_whose_gradient_rule_made_an_inf():
    x = tg.tensor([0.0, 4.0], requires_grad=True)
    with tg.detect_anomaly(), np.errstate(divide="ignore"):
        with tg.scope("lstm"), tg.scope("t=3"):
            site = line_below()
            root = tg.sqrt(x * 1.0)
        loss = root.sum()
        with pytest.raises(tg.AnomalyError) as info:
            loss.backward()
    message = str(info.value)
    for part in ("Inf", "gradient", "'sqrt'", "lstm/t=3", "(2,)", site):
        assert part in message, (part, message)


def test_without_detect_anomaly_nothing_is_checked():
    x = tg.tensor(0.0, requires_grad=True)
    with np.errstate(divide="ignore"):
        tg.sqrt(x).backward()
    assert np.isinf(x.grad)


# --- context isolation ---------------------------------------------------------------------------------------
def test_scopes_and_no_grad_do_not_leak_between_threads():
    barrier = threading.Barrier(2)
    made = {}

    def worker(name, disable_grad):
        x = tg.tensor([1.0], requires_grad=True)
        with tg.scope(name):
            barrier.wait()  # both threads are inside their scopes now
            if disable_grad:
                with tg.no_grad():
                    barrier.wait()
                    made[name] = x * 2.0
            else:
                barrier.wait()
                made[name] = x * 2.0
            barrier.wait()

    threads = [threading.Thread(target=worker, args=("a", True)),
               threading.Thread(target=worker, args=("b", False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made["a"].scope == "a" and not made["a"].requires_grad
    assert made["b"].scope == "b" and made["b"].requires_grad
    assert tg.tensor(1.0).scope == "" and tg.is_grad_enabled()
