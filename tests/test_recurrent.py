"""The recurrent node: folded graph, unrolled graph, BPTT gradients, variable lengths, deep sequences."""
import gc
import tracemalloc

import numpy as np
import pytest

import tinygraph as tg
from rnn_models import GRUCell, LSTMCell, Recurrent, RNNCell
from helpers import run_folded
from rnn_models.recurrent import flat

I, H, B = 3, 4, 2
CELLS = {"rnn": lambda: RNNCell(I, H), "lstm": lambda: LSTMCell(I, H), "gru": lambda: GRUCell(I, H),
         "rnn_relu_nobias": lambda: RNNCell(I, H, bias=False, nonlinearity="relu")}


def pack(node, tensors):
    """The cell's state structure: h alone for RNN/GRU, the pair (h, c) for LSTM."""
    tensors = tuple(tensors)
    return tensors[0] if len(node.cell.state_names) == 1 else tensors


@pytest.fixture(params=sorted(CELLS))
def node(request):
    tg.manual_seed(0)
    return Recurrent(CELLS[request.param]())


def test_folded_graph_has_one_loop_edge_per_state(node):
    graph = node.folded()
    names = node.cell.state_names
    assert [(graph.nodes[s].name, graph.nodes[d].name) for s, d in graph.loop_edges] == \
        [(n, f"{n}[t-1]") for n in names]
    assert all(graph.nodes[d].op is None for _, d in graph.loop_edges)
    assert len(graph.parameters) == len(list(node.parameters()))
    assert all(n.scope.split("/")[0] == "cell" for n in graph.ops)
    assert node.folded(batch=5).nodes[graph.outputs[0]].shape == (5, H)


def test_folded_and_unrolled_forward_agree(node):
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((5, B, I))
    state0 = [rng.standard_normal((B, H)) for _ in node.cell.state_names]
    _, final = node.unroll(tg.tensor(xs), pack(node, (tg.tensor(s) for s in state0)))
    replayed = run_folded(node.folded(batch=B), xs, state0)
    for ours, folded in zip(flat(final), replayed):
        np.testing.assert_allclose(ours.data, folded, rtol=1e-13, atol=1e-13)


def nodes_per_step(node):
    """Folded graph minus its shared leaves: the step's ops plus its input (a leaf there, a slice
    of xs when unrolled)."""
    graph = node.folded()
    return len(graph) - len(graph.parameters) - len(graph.loop_edges)


@pytest.mark.parametrize("as_list", [False, True])
def test_unrolled_node_count_is_linear_in_T(node, as_list):
    per_step = nodes_per_step(node)
    shared = len(list(node.parameters())) + len(node.cell.state_names)

    def count(steps):
        data = np.ones((steps, B, I))
        xs = [tg.tensor(x) for x in data] if as_list else tg.tensor(data)
        outputs, final = node.unroll(xs)
        graph = tg.Graph.of(*outputs, *flat(final))
        assert len(graph.parameters) == len(list(node.parameters()))  # ONE set of shared leaves
        return len(graph)

    # a list brings one input leaf per step, projected inside the step; a tensor brings one leaf
    # and one projection of the whole sequence (constants), each step slicing its row instead
    if as_list:
        constant = shared
    else:
        projection = tg.Graph.of(node.cell.project(tg.tensor(np.ones((B, I)))))
        hoisted = len(projection.ops)
        per_step, constant = per_step - hoisted, shared + 1 + hoisted
    for steps in (1, 2, 7):
        assert count(steps) == steps * per_step + constant
    assert count(7) - count(2) == 5 * per_step


def test_unroll_scopes_and_outputs(node):
    xs = tg.tensor(np.random.default_rng(1).standard_normal((4, B, I)))
    outputs, final = node.unroll(xs)
    assert len(outputs) == 4 and all(o.shape == (B, H) for o in outputs)
    assert outputs[-1] is flat(final)[0]
    assert len(flat(final)) == len(node.cell.state_names)
    graph = tg.Graph.of(*flat(final))
    assert {s.split("/")[0] for s in graph.scopes()} == {f"t={t}" for t in range(4)}
    assert all(o.scope == f"t={t}" for t, o in enumerate(outputs))
    # reverse keeps the input position in the scope and in the outputs
    rev_outputs, rev_final = node.unroll(xs, reverse=True)
    assert rev_outputs[0] is flat(rev_final)[0] and rev_outputs[3].scope == "t=3"
    reversed_input = node.unroll(tg.tensor(xs.data[::-1].copy()))[0]
    for t in range(4):
        np.testing.assert_allclose(rev_outputs[t].data, reversed_input[3 - t].data, rtol=1e-14)


def test_batch_first_equals_time_major(node):
    xs = np.random.default_rng(2).standard_normal((5, B, I))
    time_major = node.unroll(tg.tensor(xs))[1]
    batch_major = node.unroll(tg.tensor(xs.swapaxes(0, 1)), batch_first=True)[1]
    for a, b in zip(flat(time_major), flat(batch_major)):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("reverse", [False, True])
def test_bptt_gradcheck(node, reverse):
    cell_type, options = type(node.cell), {}
    if isinstance(node.cell, RNNCell):
        options["nonlinearity"] = node.cell.nonlinearity
    params = [p.data.copy() for p in node.parameters()]
    rng = np.random.default_rng(3)
    xs = rng.uniform(-1, 1, (3, B, I))
    if options.get("nonlinearity") == "relu":
        xs = xs + 2  # keep pre-activations away from relu's kink
    states = [rng.uniform(-1, 1, (B, H)) for _ in node.cell.state_names]
    k = len(states)

    def loss(xs, *rest):
        cell = cell_type.from_parameters(*rest[k:], **options)
        outputs, final = Recurrent(cell).unroll(xs, pack(node, rest[:k]), reverse=reverse)
        return tg.stack(outputs + list(flat(final)))

    assert tg.gradcheck(loss, [tg.tensor(a, requires_grad=True) for a in [xs, *states, *params]])


# --- variable lengths ----------------------------------------------------------------------------------
@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_equal_running_each_sequence_alone(node, reverse):
    rng = np.random.default_rng(4)
    steps, lengths = 5, [3, 5, 1]
    xs = rng.standard_normal((steps, len(lengths), I))
    state0 = [rng.standard_normal((len(lengths), H)) for _ in node.cell.state_names]
    seeds = rng.standard_normal((steps, len(lengths), H))

    node.zero_grad()
    x_all = tg.tensor(xs, requires_grad=True)
    outputs, final = node.unroll(x_all, pack(node, (tg.tensor(s) for s in state0)), reverse=reverse,
                                 lengths=lengths)
    (tg.stack(outputs) * seeds).sum().backward()
    batched_grads = [p.grad.copy() for p in node.parameters()]

    node.zero_grad()
    for b, n in enumerate(lengths):
        x_b = tg.tensor(xs[:n, b:b + 1], requires_grad=True)
        outputs_b, final_b = node.unroll(x_b, pack(node, (tg.tensor(s[b:b + 1]) for s in state0)),
                                         reverse=reverse)
        (tg.stack(outputs_b) * seeds[:n, b:b + 1]).sum().backward()
        for t in range(steps):
            expected = outputs_b[t].data[0] if t < n else np.zeros(H)
            np.testing.assert_allclose(outputs[t].data[b], expected, rtol=1e-13, atol=1e-13)
        for ours, alone in zip(flat(final), flat(final_b)):
            np.testing.assert_allclose(ours.data[b], alone.data[0], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(x_all.grad[:n, b], x_b.grad[:, 0], rtol=1e-12, atol=1e-13)
        assert not x_all.grad[n:, b].any()  # padded steps receive no gradient
    for batched, alone in zip(batched_grads, node.parameters()):
        np.testing.assert_allclose(batched, alone.grad, rtol=1e-12, atol=1e-13)


def test_full_lengths_add_no_nodes(node):
    xs = tg.tensor(np.ones((4, B, I)))
    plain = tg.Graph.of(*flat(node.unroll(xs)[1]))
    full = tg.Graph.of(*flat(node.unroll(xs, lengths=[4] * B)[1]))
    assert len(plain) == len(full)


# --- bad input --------------------------------------------------------------------------------------------
def test_bad_input():
    node = Recurrent(LSTMCell(I, H))
    with pytest.raises(tg.ShapeError, match=r"expected xs of shape \(T, B, input_size\) with input_size=3, "
                                            r"got \(4, 2, 5\)"):
        node.unroll(np.ones((4, 2, 5)))
    with pytest.raises(tg.ShapeError, match=r"\(B, T, input_size\).*got \(2, 3\)"):
        node.unroll(np.ones((2, 3)), batch_first=True)
    with pytest.raises(tg.ShapeError, match="T = 0"):
        node.unroll(np.ones((0, 2, 3)))
    with pytest.raises(tg.ShapeError, match="T = 0"):
        node.unroll([])
    with pytest.raises(tg.ShapeError, match="same shape"):
        node.unroll([np.ones((2, 3)), np.ones((1, 3))])
    with pytest.raises(tg.ShapeError, match=r"state h has shape \(3, 4\), expected \(2, 4\)"):
        node.unroll(np.ones((4, 2, 3)), (np.zeros((3, 4)), np.zeros((2, 4))))
    with pytest.raises(tg.DTypeError, match="lengths must be integers"):
        node.unroll(np.ones((4, 2, 3)), lengths=[2.0, 3.0])
    with pytest.raises(tg.ShapeError, match=r"lengths must lie in \[1, T\] = \[1, 4\], got values from 0 to 3"):
        node.unroll(np.ones((4, 2, 3)), lengths=[0, 3])
    with pytest.raises(tg.ShapeError, match=r"lengths must lie in \[1, T\] = \[1, 4\].* to 5"):
        node.unroll(np.ones((4, 2, 3)), lengths=[5, 3])
    with pytest.raises(tg.ShapeError, match=r"lengths must have shape \(B,\) = \(2,\)"):
        node.unroll(np.ones((4, 2, 3)), lengths=[1, 2, 3])


def test_anomaly_names_the_time_step():
    xs = np.ones((6, B, I))
    xs[3, 1, 0] = np.nan
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"NaN .*scope 't=3'"):
        Recurrent(GRUCell(I, H)).unroll(xs)


def test_repr_mimebundle_delegates_to_the_folded_graph(monkeypatch):
    node = Recurrent(RNNCell(I, H))
    monkeypatch.delattr(tg.Graph, "_repr_mimebundle_", raising=False)  # importing visualize installs it
    assert node._repr_mimebundle_() == {"text/plain": repr(node)}
    seen = []

    def fake_render(graph, include=None, exclude=None):
        seen.append(graph)
        return {"image/svg+xml": f"<svg>{len(graph)}</svg>"}

    monkeypatch.setattr(tg.Graph, "_repr_mimebundle_", fake_render, raising=False)
    assert node._repr_mimebundle_() == {"image/svg+xml": f"<svg>{len(node.folded())}</svg>"}
    assert len(seen[0].loop_edges) == 1


# --- deep sequences ---------------------------------------------------------------------------------------
def long_rnn_forward_backward(steps, hidden=4):
    tg.manual_seed(0)
    node = Recurrent(RNNCell(2, hidden))
    xs = tg.tensor(np.random.default_rng(0).standard_normal((steps, 1, 2)), requires_grad=True)
    outputs, h = node.unroll(xs)
    (tg.stack(outputs[-10:]).sum() + h.sum()).backward()
    return node, xs


def test_ten_thousand_steps_forward_and_backward():
    node, xs = long_rnn_forward_backward(10_000)
    assert np.isfinite(xs.grad).all() and xs.grad[-1].any()
    assert all(np.isfinite(p.grad).all() for p in node.parameters())
    # a graph dropped without backward is freed without deep recursion too
    node.unroll(xs)
    gc.collect()


def peak_memory(steps):
    gc.collect()
    tracemalloc.start()
    try:
        long_rnn_forward_backward(steps)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_grows_linearly_in_T():
    peak_memory(200)  # warm caches (imports, op instances) so they do not count for the first size
    ratio = peak_memory(2000) / peak_memory(1000)
    assert 1.6 < ratio < 2.4, ratio
