"""RTRL computes BPTT's gradient forward in time: equal to 1e-10 for every cell, in both modes,
with memory that does not grow with T."""
import tracemalloc

import numpy as np
import pytest

import rnn_models as R
import tinygraph as tg
from examples.cells import MinimalGatedUnit, PeepholeLSTM
from rnn_models import rtrl


def make_node(kind):
    tg.manual_seed(3)
    if kind == "rnn":
        return R.Recurrent(R.RNNCell(2, 3))
    if kind == "lstm":
        return R.Recurrent(R.LSTMCell(2, 3))
    if kind == "gru":
        return R.Recurrent(R.GRUCell(2, 3))
    if kind == "mgu":
        return R.Recurrent(MinimalGatedUnit(2, 3), state_size=3)
    return R.Recurrent(PeepholeLSTM(2, 3))


def bptt(node, xs, loss_fn):
    for p in node.parameters():
        p.grad = None
    outputs, _ = node.unroll(tg.tensor(xs))
    losses = [loss_fn(t, out) for t, out in enumerate(outputs)]
    loss = tg.sum([l for l in losses if l is not None])
    loss.backward()
    return loss.item(), {name: p.grad.copy() for name, p in node.named_parameters()}


@pytest.mark.parametrize("mode", ["jacobian", "forward"])
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "mgu", "peephole"])
def test_rtrl_equals_bptt(kind, mode):
    node = make_node(kind)
    rng = np.random.default_rng(0)
    T = 7
    xs = rng.standard_normal((T, 2, 2))
    targets = rng.standard_normal((T, 2, 3))

    def loss_fn(t, out):  # a loss on some steps only: step 3 contributes nothing
        return None if t == 3 else ((out - targets[t]) ** 2).sum() * (t + 1)
    expected_loss, expected = bptt(node, xs, loss_fn)
    loss, grads = rtrl(node, xs, loss_fn, mode=mode)
    assert set(grads) == set(expected)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    for name in expected:
        assert grads[name].shape == expected[name].shape
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_rtrl_starts_from_a_given_state():
    node = make_node("gru")
    rng = np.random.default_rng(1)
    xs, h0 = rng.standard_normal((4, 2, 2)), tg.tensor(rng.standard_normal((2, 3)))

    def loss_fn(t, out):
        return (out * out).sum()
    for p in node.parameters():
        p.grad = None
    outputs, _ = node.unroll(tg.tensor(xs), state0=h0)
    tg.sum([loss_fn(t, o) for t, o in enumerate(outputs)]).backward()
    _, grads = rtrl(node, xs, loss_fn, state0=h0)
    for name, p in node.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad, rtol=1e-10, atol=1e-12)


def peak_bytes(fn):
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_rtrl_memory_is_constant_in_t_where_bpttss_grows():
    node = make_node("rnn")
    rng = np.random.default_rng(2)
    short, long = rng.standard_normal((20, 1, 2)), rng.standard_normal((160, 1, 2))

    def loss_fn(t, out):
        return (out * out).sum()
    rtrl_short = peak_bytes(lambda: rtrl(node, short, loss_fn))
    rtrl_long = peak_bytes(lambda: rtrl(node, long, loss_fn))
    bptt_short = peak_bytes(lambda: bptt(node, short, loss_fn))
    bptt_long = peak_bytes(lambda: bptt(node, long, loss_fn))
    assert rtrl_long < 1.3 * rtrl_short     # 8x the steps, about the same memory
    assert bptt_long > 4 * bptt_short       # the unrolled graph grows with T


def test_bad_input_is_refused_clearly():
    node = make_node("rnn")
    xs = np.zeros((3, 1, 2))
    with pytest.raises(TypeError, match="rtrl: node must be an rnn_models.Recurrent"):
        rtrl(R.RNNCell(2, 3), xs, lambda t, o: o.sum())
    with pytest.raises(ValueError, match=r"rtrl: mode must be one of \('jacobian', 'forward'\)"):
        rtrl(node, xs, lambda t, o: o.sum(), mode="reverse")
    with pytest.raises(tg.ShapeError, match=r"rtrl: xs must be \(T, B, ...\) with T >= 1"):
        rtrl(node, np.zeros((0, 1, 2)), lambda t, o: o.sum())
    with pytest.raises(TypeError, match=r"loss_fn\(0, output\) must return a single-element Tensor"):
        rtrl(node, xs, lambda t, o: o)
