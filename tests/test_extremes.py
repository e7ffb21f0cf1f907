"""Numerics at the extremes, against PyTorch: values and gradients for ±1e300, ±1e38 in float32, 0,
-0, subnormals and infinities agree (same NaN and Inf positions, finite values to a few ulps)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rnn_models
import tinygraph as tg

torch = pytest.importorskip("torch")

EXTREMES = {
    np.float64: [1e300, -1e300, 1e16, -1e16, 1e-300, 5e-324, -5e-324, 2.2e-308, 0.0, -0.0, 1.0, -1.0,
                 0.5, 700.0, -700.0, 1e308],
    np.float32: [1e38, -1e38, 3e38, 1e16, 1e7, -1e7, 1e-38, 1e-45, -1e-45, 0.0, -0.0, 1.0, -1.0, 0.5,
                 88.0, -88.0],
}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}

UNARY = {
    "exp": (tg.exp, torch.exp), "log": (tg.log, torch.log), "tanh": (tg.tanh, torch.tanh),
    "sigmoid": (tg.sigmoid, torch.sigmoid), "relu": (tg.relu, torch.relu), "sqrt": (tg.sqrt, torch.sqrt),
    "abs": (tg.abs, torch.abs), "neg": (lambda x: -x, lambda x: -x),
    "square": (lambda x: x ** 2, lambda x: x ** 2), "reciprocal power": (lambda x: x ** -1, lambda x: x ** -1),
    "sum": (tg.sum, torch.sum), "max": (tg.max, torch.max),
    "softmax": (tg.softmax, lambda x: torch.softmax(x, -1)),
    "log_softmax": (tg.log_softmax, lambda x: torch.log_softmax(x, -1)),
    "logsumexp": (tg.logsumexp, lambda x: torch.logsumexp(x, -1)),
    **{name: (getattr(tg, name), getattr(torch, name)) for name in (
        "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh", "arccosh",
        "arctanh", "exp2", "expm1", "log2", "log10", "log1p", "square", "reciprocal")},
}
# where PyTorch's own gradient is not the derivative: logsumexp's backward, exp(x - logsumexp(x)),
# gives [1, 1] for [1e300, 1e300] (the log-sum rounds away); the derivative is softmax, [0.5, 0.5]
REFERENCE_GRADIENT = {"logsumexp": lambda x: torch.softmax(x.detach(), -1)}
BINARY = {
    "add": (lambda x, y: x + y, lambda x, y: x + y), "sub": (lambda x, y: x - y, lambda x, y: x - y),
    "mul": (lambda x, y: x * y, lambda x, y: x * y), "div": (lambda x, y: x / y, lambda x, y: x / y),
    "pow": (lambda x, y: x ** y, lambda x, y: x ** y),
    "maximum": (tg.maximum, torch.maximum),
    **{name: (getattr(tg, name), getattr(torch, name)) for name in (
        "minimum", "fmin", "fmax", "arctan2", "hypot", "logaddexp")},
}


def values(dtype, size):
    special = st.sampled_from(EXTREMES[dtype])
    width = 32 if dtype == np.float32 else 64
    ordinary = st.floats(-1e3, 1e3, width=width, allow_subnormal=True)
    return st.lists(special | ordinary, min_size=size, max_size=size).map(lambda v: np.array(v, dtype))


def assert_same(ours, theirs, dtype, what, ulps=8):
    """Equal NaN and Inf positions (Inf signs too); finite values within ``ulps`` of the larger, or
    of 1 (a derivative such as 1 - tanh(x)**2 is computed from a value of size 1, and cancels)."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=f"{what}: NaN positions")
    finite = np.isfinite(ours) & np.isfinite(theirs)
    np.testing.assert_array_equal(ours[~finite & ~np.isnan(ours)], theirs[~finite & ~np.isnan(ours)],
                                  err_msg=f"{what}: infinities")
    eps = np.finfo(dtype).eps
    atol = ulps * eps if what.endswith(("gradient", "in x", "in y")) else ulps * np.finfo(dtype).tiny
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=ulps * eps, atol=atol,
                               err_msg=f"{what}: finite values")


def exact_partials(name, x, y):
    """d/dx and d/dy of arctan2/hypot in extended precision (x86's 80-bit long double, exponents to
    1e4932): PyTorch's own gradient, g * x / (x*x + y*y), is 0 or NaN where x*x + y*y underflows."""
    x, y = x.astype(np.longdouble), y.astype(np.longdouble)
    r2 = x * x + y * y
    if name == "arctan2":  # arctan2(x, y): the angle of the point (y, x)
        return y / r2, -x / r2
    r = np.sqrt(r2)
    r = np.where(r == 0, 1, r)  # at the origin: 0, PyTorch's subgradient
    return x / r, y / r


def run_both(fns, arrays, dtype):
    ours_fn, torch_fn = fns
    with np.errstate(all="ignore"):
        xs = [tg.tensor(a, requires_grad=True) for a in arrays]
        out = ours_fn(*xs)
        out.backward(np.ones(out.shape, out.dtype))
    ts = [torch.tensor(a, dtype=TORCH_DTYPE[dtype], requires_grad=True) for a in arrays]
    ref = torch_fn(*ts)
    ref.backward(torch.ones_like(ref))
    return out, xs, ref, ts


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_values_and_gradients_match_torch_at_the_extremes(name, dtype, data):
    x = data.draw(values(dtype, data.draw(st.integers(1, 4))), label="x")
    out, (tx,), ref, (rx,) = run_both(UNARY[name], [x], dtype)
    assert out.dtype == dtype
    assert_same(out.data, ref.detach().numpy(), dtype, f"{name} value")
    expected = REFERENCE_GRADIENT[name](rx) if name in REFERENCE_GRADIENT else rx.grad
    assert_same(tx.grad, expected.numpy(), dtype, f"{name} gradient")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_values_and_gradients_match_torch_at_the_extremes(name, dtype, data):
    n = data.draw(st.integers(1, 3))
    x, y = data.draw(values(dtype, n), label="x"), data.draw(values(dtype, n), label="y")
    if name == "pow":  # a negative base to a non-integer power is NaN in both; keep the bases >= 0
        x = np.abs(x)
    out, (tx, ty), ref, (rx, ry) = run_both(BINARY[name], [x, y], dtype)
    assert_same(out.data, ref.detach().numpy(), dtype, f"{name} value")
    dx, dy = rx.grad.numpy(), ry.grad.numpy()
    if name in ("arctan2", "hypot"):
        if np.finfo(np.longdouble).maxexp <= 1024:
            pytest.skip("no extended precision here for the reference")
        with np.errstate(all="ignore"):
            dx, dy = (d.astype(dtype) for d in exact_partials(name, x, y))
        if name == "arctan2" and ((x == 0) & (y == 0)).any():
            return  # the angle at the origin: no derivative
    if name in ("fmin", "fmax"):  # at ties ours splits the gradient, as maximum does and torch's
        tie = x == y              # maximum does; torch's fmin/fmax give it all to x
        dx, dy = np.where(tie, tx.grad, dx), np.where(tie, ty.grad, dy)
        assert np.all(np.where(tie, tx.grad == ty.grad, True))
    assert_same(tx.grad, dx, dtype, f"{name} gradient in x")
    assert_same(ty.grad, dy, dtype, f"{name} gradient in y")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@given(data=st.data())
def test_cross_entropy_matches_torch_at_the_extremes(dtype, data):
    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    z = data.draw(values(dtype, n * c), label="logits").reshape(n, c)
    t = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    fns = (lambda z: tg.cross_entropy(z, t), lambda z: torch.nn.functional.cross_entropy(z, torch.tensor(t)))
    out, (tz,), ref, (rz,) = run_both(fns, [z], dtype)
    assert_same(out.data, ref.detach().numpy(), dtype, "cross_entropy value")
    assert_same(tz.grad, rz.grad.numpy(), dtype, "cross_entropy gradient")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("big", [1e16, 1e7, 1e30])
def test_equal_huge_logits_are_a_fair_coin(dtype, big):
    z = tg.tensor(np.array([[big, big]], dtype), requires_grad=True)
    np.testing.assert_allclose(tg.softmax(z).data, [[0.5, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(tg.log_softmax(z).data, [[-np.log(2)] * 2], rtol=1e-6)
    loss = tg.cross_entropy(z, [0])
    np.testing.assert_allclose(loss.item(), np.log(2), rtol=1e-6)
    loss.backward()
    np.testing.assert_allclose(z.grad, [[-0.5, 0.5]], rtol=1e-6)
    head = tg.linear_cross_entropy(tg.tensor(np.array([[1.0]], dtype)), np.array([[big], [big]], dtype),
                                   np.zeros(2, dtype), [1])
    np.testing.assert_allclose(head.item(), np.log(2), rtol=1e-6)


def test_zero_to_a_power_has_torchs_gradients():
    """d/dy 0**y = 0 for y >= 0 (was NaN: 0 * log 0), d/dx x**0 = 0 at x = 0 (was NaN: 0 * 0**-1)."""
    for x0, y0 in [(0.0, 2.0), (0.0, 0.0), (0.0, 0.5), (2.0, 0.0), (0.0, -1.0)]:
        with np.errstate(divide="ignore"):
            x, y = tg.tensor(x0, requires_grad=True), tg.tensor(y0, requires_grad=True)
            (x ** y).backward()
        tx, ty = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x0, y0))
        (tx ** ty).backward()
        assert (float(x.grad), float(y.grad)) == (tx.grad.item(), ty.grad.item()), (x0, y0)


@pytest.mark.parametrize("cls", [rnn_models.RNN, rnn_models.LSTM, rnn_models.GRU])
@pytest.mark.parametrize("batch_first", [False, True])
def test_a_batch_of_no_sequences_gives_empty_outputs_like_torch(cls, batch_first):
    model = cls(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first)
    reference = getattr(torch.nn, cls.__name__)(3, 4, num_layers=2, bidirectional=True,
                                                batch_first=batch_first)
    shape = (0, 5, 3) if batch_first else (5, 0, 3)
    x = tg.tensor(np.zeros(shape), requires_grad=True)
    out, state = model(x)
    ref_out, ref_state = reference(torch.zeros(shape))
    assert out.shape == tuple(ref_out.shape)
    states = state if isinstance(state, tuple) else (state,)
    ref_states = ref_state if isinstance(ref_state, tuple) else (ref_state,)
    assert [s.shape for s in states] == [tuple(s.shape) for s in ref_states]
    out.sum().backward()
    assert x.grad.shape == shape and not np.abs(model.weight_hh_l0.grad).any()


def test_a_users_cell_runs_a_batch_of_no_sequences():
    from examples.cells import MinimalGatedUnit
    layer = rnn_models.Recurrent(MinimalGatedUnit(3, 4), state_size=4)
    out, h = layer.sequence(tg.tensor(np.zeros((5, 0, 3))))
    assert out.shape == (5, 0, 4) and h.shape == (0, 4)


@pytest.mark.parametrize("temperature", [1e-320, 5e-324, 1e-300, 1e300])
def test_sampling_at_extreme_temperatures_is_defined(temperature):
    model = rnn_models.CharRNN("abcd", hidden_size=8)
    with np.errstate(invalid="raise"):  # no NaN from inf - inf
        text = model.sample("ab", 12, temperature=temperature, seed=0)
    assert len(text) == 12 and set(text) <= set("abcd")
    if temperature < 1e-200:  # the arg-max character, every time
        assert len(set(text)) == 1 or text == model.sample("ab", 12, temperature=1e-300, seed=1)
