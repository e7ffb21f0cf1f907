"""The sequence slab: fused steps write their rows into one (T, B, width*H) array, over their own input
projection, and the stacked outputs are a view of it. Same numbers as the primitive gate form, which
uses no slab; less memory."""
import numpy as np
import pytest

import tinygraph as tg
import rnn_models.recurrent as recurrent
from rnn_models import GRUCell, LSTMCell, Recurrent, RNNCell
from rnn_models import LSTM

I, H, B, T = 3, 4, 2, 7
CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


def cell_pair(kind, dtype=np.float64):
    """(fused cell, gate-form cell) on the same parameter leaves."""
    tg.manual_seed(0)
    fused = CELLS[kind](I, H, dtype=dtype)
    params = [fused.weight_ih, fused.weight_hh, fused.bias_ih, fused.bias_hh]
    return fused, CELLS[kind].from_parameters(*params, fused=False)


def loss_and_grads(cell, xs, lengths=None, reverse=False):
    params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
    for p in params:
        p.grad = None
    out, state = Recurrent(cell).sequence(xs, reverse=reverse, lengths=lengths)
    loss = (out * out).sum() + (state[-1] * 0.5).sum()
    loss.backward()
    return out.data.copy(), [p.grad for p in params]


@pytest.fixture(params=[None, 1, 3], ids=["one-chunk", "chunk-of-1", "chunk-of-3"])
def chunk_steps(request, monkeypatch):
    """Projection chunks of 1 or 3 steps (as for long sequences), or the whole sequence."""
    if request.param is not None:
        monkeypatch.setattr(recurrent, "PROJECTION_CHUNK_BYTES", request.param * B * 4 * H * 8)
    return request.param


@pytest.mark.parametrize("kind", sorted(CELLS))
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_slab_equals_the_gate_form(kind, reverse, masked, chunk_steps):
    fused, gates = cell_pair(kind)
    xs = np.random.default_rng(1).normal(size=(T, B, I))
    lengths = np.array([T, 3]) if masked else None
    out_f, grads_f = loss_and_grads(fused, tg.Tensor(xs), lengths, reverse)
    out_g, grads_g = loss_and_grads(gates, tg.Tensor(xs), lengths, reverse)
    np.testing.assert_allclose(out_f, out_g, rtol=1e-12, atol=1e-12)
    for gf, gg in zip(grads_f, grads_g):
        np.testing.assert_allclose(gf, gg, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_stacked_outputs_are_a_view_of_the_slab(kind):
    fused, _ = cell_pair(kind)
    xs = tg.Tensor(np.random.default_rng(2).normal(size=(T, B, I)))
    out, _ = Recurrent(fused).sequence(xs)
    graph = out.graph()
    steps = [n for n in graph.nodes if n.op is not None and n.op.name == f"{kind}_cell"]
    assert len(steps) == T
    assert all(np.shares_memory(out.data, s.data) for s in steps)
    usage = graph.memory()
    assert "stack" not in usage                                  # no copy of the sequence
    width = fused.block.width
    assert usage[f"{kind}_cell"] == T * B * width * H * 8       # the slab, counted once


def test_consumed_projection_is_released_and_holds_no_memory(chunk_steps):
    """No gradient rule reads the projection (chunks, and each step's slice of them): the engine
    releases it, so what the steps wrote over it is never mistaken for it."""
    fused, _ = cell_pair("lstm")
    xs = tg.Tensor(np.random.default_rng(3).normal(size=(T, B, I)))
    out, _ = Recurrent(fused).sequence(xs)
    graph = out.graph()
    nodes = graph.nodes
    chunks = [n for n in nodes if (n.name or "").startswith("x@W_ih")]
    assert len(chunks) == (1 if chunk_steps is None else -(-T // chunk_steps))
    if chunk_steps == 3:
        assert [c.name for c in chunks] == ["x@W_ih[0:3]", "x@W_ih[3:6]", "x@W_ih[6:7]"]
    chunk_ids = {id(c) for c in chunks}
    slices = [n for n in nodes if n.op is not None and n.op.name == "getitem" and id(n.inputs[0]) in chunk_ids]
    assert len(slices) == T
    for n in chunks + slices:
        assert isinstance(n.data, tg.Released) and n.shape[-1] == 4 * H
        with pytest.raises(tg.GraphError, match=r"op '(affine|getitem)'.*released"):
            n.numpy()
    usage = graph.memory()
    assert "affine" not in usage and "getitem" not in usage      # the slab counts once, for the cells
    assert np.isfinite(out.data).all()


def test_retain_graph_second_backward_and_double_backward_agree():
    fused, gates = cell_pair("lstm")
    xs = np.random.default_rng(4).normal(size=(T, B, I))

    def hvp(cell):
        """d/dW_hh of <dL/dW_hh, v>: needs create_graph through every step."""
        out, _ = Recurrent(cell).sequence(tg.Tensor(xs))
        loss = (out * out).sum()
        (g,) = tg.grad_of(loss, [cell.weight_hh], create_graph=True)
        v = np.ones_like(g.data)
        (h,) = tg.grad_of((g * tg.Tensor(v)).sum(), [cell.weight_hh])
        return h.data

    np.testing.assert_allclose(hvp(fused), hvp(gates), rtol=1e-9, atol=1e-12)
    out, _ = Recurrent(fused).sequence(tg.Tensor(xs))
    loss = (out * out).sum()
    first = tg.grad_of(loss, [fused.weight_ih, fused.weight_hh], retain_graph=True)
    second = tg.grad_of(loss, [fused.weight_ih, fused.weight_hh])
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.data, b.data)


def test_layer_output_is_a_slab_view_and_matches_the_unfused_layer():
    tg.manual_seed(0)
    lstm = LSTM(I, H, num_layers=2, bidirectional=True)
    unfused = LSTM(I, H, num_layers=2, bidirectional=True, fused=False)
    unfused.load_state_dict({k: v.data for k, v in lstm.state_dict().items()})
    xs = np.random.default_rng(5).normal(size=(T, B, I))
    out, (h_n, c_n) = lstm(xs)
    ref, (h_ref, c_ref) = unfused(xs)
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c_n.data, c_ref.data, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call", [
    lambda: tg.stack([tg.Tensor(np.ones(3))] * 2, out=np.empty((3, 2))),
    lambda: tg.stack([tg.Tensor(np.ones(3))] * 2, out=np.empty((2, 3), np.float32)),
    lambda: tg.functional.affine(np.ones((2, 3)), np.ones((4, 3)), np.ones(4), out=np.empty((4, 2))),
    lambda: tg.functional.rnn_cell(np.ones((2, 4)), np.ones((2, 4)), np.ones((4, 4)), np.ones(4),
                                   out=np.empty((2, 5))),
    lambda: tg.functional.lstm_cell(np.ones((2, 16)), np.ones((2, 4)), np.ones((2, 4)), np.ones((16, 4)),
                                    np.ones(16), out=np.empty((2, 16))),
])
def test_bad_out_buffer_is_refused_with_the_expected_shape(call):
    with pytest.raises(tg.ShapeError, match=r"out must be an ndarray of the result's shape"):
        call()


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_the_sequence_stack_copies_nothing_and_keeps_its_promise(kind):
    """The layer stacks its slab rows with ``assume_filled``: the stacked values are the steps' outputs
    (checked against np.stack), and anomaly mode, which checks the promise, accepts it."""
    fused, _ = cell_pair(kind)
    xs = tg.Tensor(np.random.default_rng(3).normal(size=(T, B, I)))
    outputs, _ = Recurrent(fused).unroll(xs)
    expected = np.stack([o.data for o in outputs])
    with tg.detect_anomaly():
        out, _ = Recurrent(fused).sequence(xs)
    np.testing.assert_array_equal(out.data, expected)
    assert out.op.name == "stack" and out.op._filled


def test_a_broken_fill_promise_is_an_anomaly_and_filled_needs_out():
    out = np.zeros((2, 3))
    inside, outside = tg.Tensor._wrap(out[0]), tg.Tensor(np.ones(3))
    assert tg.stack([inside, outside], out=out, assume_filled=True).op._filled   # not checked
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"input 1 \(3,\) is not the view out\[1\]"):
        tg.stack([inside, outside], out=out, assume_filled=True)
    np.testing.assert_array_equal(tg.stack([inside, outside], out=out).data, [[0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match="assume_filled=True needs out="):
        tg.stack([inside, outside], assume_filled=True)
