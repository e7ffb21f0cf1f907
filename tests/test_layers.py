"""RNN/LSTM/GRU layers: PyTorch equality (values and every gradient), shapes, names, scopes, lengths,
dropout, dtypes and bad input."""
import itertools

import numpy as np
import pytest

import tinygraph as tg
from rnn_models import GRU, LSTM, RNN

T, B, I, H = 5, 3, 3, 4
LENGTHS = [5, 2, 4]  # unsorted, as pack_padded_sequence(enforce_sorted=False) allows
KINDS = {"rnn_tanh": (RNN, "RNN", {"nonlinearity": "tanh"}), "rnn_relu": (RNN, "RNN", {"nonlinearity": "relu"}),
         "lstm": (LSTM, "LSTM", {}), "gru": (GRU, "GRU", {})}


def make(kind, **kwargs):
    cls, _, options = KINDS[kind]
    return cls(I, H, **options, **kwargs)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


# --- PyTorch equality ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (1, True), (2, False), (2, True)])
@pytest.mark.parametrize("batch_first,with_h0,with_lengths", list(itertools.product([False, True], repeat=3)))
def test_equals_pytorch(kind, num_layers, bidirectional, batch_first, with_h0, with_lengths):
    torch = pytest.importorskip("torch", reason="PyTorch is needed for the cross-check against torch.nn")
    cls, torch_name, options = KINDS[kind]
    config = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    torch.manual_seed(0)
    ref = getattr(torch.nn, torch_name)(I, H, dtype=torch.float64, **options, **config)
    layer = cls(I, H, **options, **config)
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in ref.named_parameters()]
    layer.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})

    rng = np.random.default_rng(sum(map(ord, kind)) + 8 * num_layers + 4 * bidirectional + 2 * batch_first)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    n_states = 2 if kind == "lstm" else 1
    D = 2 if bidirectional else 1
    h0 = [rng.standard_normal((D * num_layers, B, H)) for _ in range(n_states)] if with_h0 else None
    out_seed = rng.standard_normal((B, T, D * H) if batch_first else (T, B, D * H))
    state_seeds = [rng.standard_normal((D * num_layers, B, H)) for _ in range(n_states)]
    if with_lengths:  # padding must not leak into any result
        for b, n in enumerate(LENGTHS):
            x[(b, slice(n, None)) if batch_first else (slice(n, None), b)] = 7.0

    # PyTorch
    x_t = torch.tensor(x, requires_grad=True)
    h0_t = [torch.tensor(h, requires_grad=True) for h in h0] if with_h0 else []
    hx_t = (tuple(h0_t) if n_states == 2 else h0_t[0]) if with_h0 else None
    if with_lengths:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x_t, torch.tensor(LENGTHS), batch_first=batch_first,
                                                         enforce_sorted=False)
        out_packed, states_t = ref(packed, hx_t)
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_packed, batch_first=batch_first, total_length=T)
    else:
        out_t, states_t = ref(x_t, hx_t)
    states_t = as_tuple(states_t)
    loss_t = (out_t * torch.tensor(out_seed)).sum() + sum((s * torch.tensor(p)).sum()
                                                         for s, p in zip(states_t, state_seeds))
    loss_t.backward()

    # ours
    x_g = tg.tensor(x, requires_grad=True)
    h0_g = [tg.tensor(h, requires_grad=True) for h in h0] if with_h0 else []
    hx_g = (tuple(h0_g) if n_states == 2 else h0_g[0]) if with_h0 else None
    out_g, states_g = layer(x_g, hx_g, lengths=LENGTHS if with_lengths else None)
    states_g = as_tuple(states_g)
    ((out_g * out_seed).sum() + sum((s * p).sum() for s, p in zip(states_g, state_seeds))).backward()

    close = dict(rtol=0, atol=1e-10)
    assert out_g.shape == tuple(out_t.shape)
    np.testing.assert_allclose(out_g.data, out_t.detach().numpy(), **close)
    for ours, theirs in zip(states_g, states_t):
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **close)
    np.testing.assert_allclose(x_g.grad, x_t.grad.numpy(), **close)
    for ours, theirs in zip(h0_g, h0_t):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), **close)
    for (name, p), (_, q) in zip(layer.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), err_msg=name, **close)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_parameter_names_without_bias_match_pytorch(kind):
    torch = pytest.importorskip("torch", reason="PyTorch is needed for the cross-check against torch.nn")
    cls, torch_name, options = KINDS[kind]
    ref = getattr(torch.nn, torch_name)(I, H, num_layers=2, bias=False, bidirectional=True, **options)
    layer = cls(I, H, num_layers=2, bias=False, bidirectional=True, **options)
    assert [(n, p.shape) for n, p in layer.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in ref.named_parameters()]


# --- shapes, names, scopes without PyTorch ---------------------------------------------------------------
def test_parameters_are_pytorch_named_and_initialised():
    tg.manual_seed(5)
    lstm = LSTM(I, H, num_layers=2, bidirectional=True)
    names = [n for n, _ in lstm.named_parameters()]
    assert names[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse"]
    assert len(names) == 16 and names[-1] == "bias_hh_l1_reverse"
    assert lstm.weight_ih_l1.shape == (4 * H, 2 * H) and lstm.weight_hh_l0_reverse.shape == (4 * H, H)
    assert all(np.abs(p.data).max() <= 1 / np.sqrt(H) for p in lstm.parameters())
    assert lstm.weight_ih_l1_reverse.name == "weight_ih_l1_reverse"
    tg.manual_seed(5)
    assert np.array_equal(LSTM(I, H, num_layers=2, bidirectional=True).bias_hh_l1.data, lstm.bias_hh_l1.data)


def test_graph_scopes_name_layer_direction_step_and_gate():
    lstm = LSTM(I, H, num_layers=2, bidirectional=True, fused=False)  # gate scopes: the gate form
    out, (h_n, c_n) = lstm(np.random.default_rng(0).standard_normal((T, B, I)))
    graph = tg.Graph.of(out, h_n, c_n)
    scopes = set(graph.scopes())
    assert {"lstm/l1_reverse/t=3/forget_gate", "lstm/l0/t=0/input_gate", "lstm/l1/t=4/output_gate"} <= scopes
    assert len(graph.parameters) == 16  # one set of shared leaves for all time steps


def test_reverse_direction_scopes_use_input_positions():
    gru = GRU(I, H, bidirectional=True)
    out, h_n = gru(np.random.default_rng(1).standard_normal((T, B, I)))
    graph = tg.Graph.of(out)
    for t in range(T):
        (forward,) = [n for n in graph.scope(f"gru/l0/t={t}") if n.name == "h"]
        (backward,) = [n for n in graph.scope(f"gru/l0_reverse/t={t}") if n.name == "h"]
        np.testing.assert_array_equal(forward.data, out.data[t, :, :H])
        np.testing.assert_array_equal(backward.data, out.data[t, :, H:])
    np.testing.assert_array_equal(h_n.data[1], out.data[0, :, H:])  # the reverse direction ends at t=0


def test_folded_stack_has_a_loop_edge_per_layer_direction_and_state():
    graph = LSTM(I, H, num_layers=2, bidirectional=True).folded()
    names = [(graph.nodes[s].scope, graph.nodes[s].name, graph.nodes[d].name) for s, d in graph.loop_edges]
    assert len(names) == 8
    assert ("lstm/l1_reverse", "c", "c[t+1]") in names and ("lstm/l0", "h", "h[t-1]") in names
    assert len(graph.parameters) == 16


def test_folded_stack_records_one_step_per_layer_direction():
    graph = LSTM(I, H, num_layers=2, bidirectional=True, fused=False).folded()
    assert [(loop.name, loop.reverse) for loop in graph.loops] == [
        ("lstm/l0", False), ("lstm/l0_reverse", True), ("lstm/l1", False), ("lstm/l1_reverse", True)]
    assert [(step.loop, step.t, step.scope) for step in graph.steps] == \
        [(k, 0, loop.name) for k, loop in enumerate(graph.loops)]
    # each loop edge runs from a step's new state back to that same step's placeholder
    assert sorted(edge for step in graph.steps for edge in zip(step.state_out, step.state_in)) == \
        sorted(graph.loop_edges)
    assert all(graph.step_of[i] == (step.loop, 0) for step in graph.steps for i in step.nodes)
    inputs = [i for i, n in enumerate(graph.nodes) if n.name == "x[t]"]
    assert graph.step_of[inputs[0]] is None and graph.state_edges == []   # the input is no step's


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_lengths_equal_running_each_sequence_alone(kind):
    layer = make(kind, num_layers=2, bidirectional=True, batch_first=True)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, T, I))
    seeds = rng.standard_normal((B, T, 2 * H))
    x_all = tg.tensor(x, requires_grad=True)
    out, states = layer(x_all, lengths=LENGTHS)
    (out * seeds).sum().backward()
    batched = [p.grad.copy() for p in layer.parameters()]
    layer.zero_grad()
    for b, n in enumerate(LENGTHS):
        x_b = tg.tensor(x[b:b + 1, :n], requires_grad=True)
        out_b, states_b = layer(x_b)
        (out_b * seeds[b:b + 1, :n]).sum().backward()
        np.testing.assert_allclose(out.data[b, :n], out_b.data[0], rtol=1e-12, atol=1e-13)
        assert not out.data[b, n:].any()
        for ours, alone in zip(as_tuple(states), as_tuple(states_b)):
            np.testing.assert_allclose(ours.data[:, b], alone.data[:, 0], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(x_all.grad[b, :n], x_b.grad[0], rtol=1e-12, atol=1e-13)
        assert not x_all.grad[b, n:].any()
    for together, alone in zip(batched, layer.parameters()):
        np.testing.assert_allclose(together, alone.grad, rtol=1e-11, atol=1e-13)


def test_dropout_between_layers_only_in_training_and_seeded():
    x = np.random.default_rng(3).standard_normal((T, B, I))
    gru = GRU(I, H, num_layers=2, dropout=0.5)
    tg.manual_seed(1)
    first = gru(x)[0].data
    tg.manual_seed(1)
    np.testing.assert_array_equal(gru(x)[0].data, first)           # deterministic under a seed
    assert (first != 0).all()                                       # not applied after the last layer
    eval_out = gru.eval()(x)[0].data
    assert not np.allclose(first, eval_out)                         # applied between layers in training
    gru.dropout = 0.0
    np.testing.assert_array_equal(gru.train()(x)[0].data, eval_out)
    single = GRU(I, H, dropout=0.5)                                  # one layer: nothing to drop
    np.testing.assert_array_equal(single(x)[0].data, single.eval()(x)[0].data)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_float32_stays_float32(kind):
    layer = make(kind, num_layers=2, bidirectional=True, dtype=np.float32)
    x = tg.tensor(np.ones((T, B, I), np.float32), requires_grad=True)
    h0 = np.zeros((4, B, H), np.float32)
    out, states = layer(x, (h0, h0) if kind == "lstm" else h0, lengths=LENGTHS)
    assert out.dtype == np.float32 and all(s.dtype == np.float32 for s in as_tuple(states))
    (out.sum() + sum(s.sum() for s in as_tuple(states))).backward()
    assert x.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in layer.parameters())
    assert layer(np.ones((T, B, I)))[0].dtype == np.float32  # float64 data is cast to the model's dtype


def test_hx_is_an_alias_of_h0():
    rnn = RNN(I, H)
    x, h0 = np.ones((T, B, I)), np.full((1, B, H), 0.5)
    np.testing.assert_array_equal(rnn(x, hx=h0)[1].data, rnn(x, h0)[1].data)
    with pytest.raises(TypeError, match="h0 or hx, not both"):
        rnn(x, h0, hx=h0)


def test_repr_and_mimebundle(monkeypatch):
    rnn = RNN(I, H, num_layers=2, nonlinearity="relu", batch_first=True)
    assert repr(rnn) == "RNN(3, 4, num_layers=2, nonlinearity='relu', batch_first=True)"
    monkeypatch.delattr(tg.Graph, "_repr_mimebundle_", raising=False)  # importing visualize installs it
    assert rnn._repr_mimebundle_() == {"text/plain": repr(rnn)}
    monkeypatch.setattr(tg.Graph, "_repr_mimebundle_",
                        lambda graph, include=None, exclude=None: {"text/plain": f"{len(graph.loop_edges)} loops"},
                        raising=False)
    assert rnn._repr_mimebundle_() == {"text/plain": "2 loops"}


# --- bad input ---------------------------------------------------------------------------------------------
def test_bad_input_shapes():
    lstm = LSTM(I, H, num_layers=2)
    with pytest.raises(tg.ShapeError, match=r"LSTM: expected input of shape \(T, B, input_size\) with "
                                            r"input_size=3, got \(5, 3, 7\)"):
        lstm(np.ones((5, 3, 7)))
    with pytest.raises(tg.ShapeError, match=r"\(T, B, input_size\).*got \(5, 3\); for one sequence add a batch"):
        lstm(np.ones((5, 3)))
    with pytest.raises(tg.ShapeError, match=r"GRU: expected input of shape \(B, T, input_size\)"):
        GRU(I, H, batch_first=True)(np.ones((2, 5, 3, 1)))
    with pytest.raises(tg.ShapeError, match=r"T = 0 time steps"):
        lstm(np.ones((0, 3, 3)))
    with pytest.raises(tg.ShapeError, match=r"T = 0 time steps \(\(B, T, input_size\)\)"):
        RNN(I, H, batch_first=True)(np.ones((3, 0, 3)))


def test_bad_initial_state():
    lstm = LSTM(I, H, num_layers=2, bidirectional=True)
    x, good = np.ones((T, B, I)), np.zeros((4, B, H))
    with pytest.raises(tg.ShapeError, match=r"h0 has shape \(2, 3, 4\), expected \(4, 3, 4\)"):
        lstm(x, (np.zeros((2, B, H)), good))
    with pytest.raises(tg.ShapeError, match=r"c0 has shape \(4, 3, 5\), expected \(4, 3, 4\)"):
        lstm(x, (good, np.zeros((4, B, 5))))
    with pytest.raises(TypeError, match=r"tuple \(h0, c0\)"):
        lstm(x, good)
    with pytest.raises(TypeError, match="h0 must be a tensor"):
        GRU(I, H)(x, (np.zeros((1, B, H)),))
    with pytest.raises(tg.ShapeError, match=r"h0 has shape \(1, 2, 4\), expected \(1, 3, 4\)"):
        RNN(I, H)(x, np.zeros((1, 2, H)))


def test_bad_lengths_and_options():
    gru = GRU(I, H)
    x = np.ones((T, B, I))
    with pytest.raises(tg.DTypeError, match="GRU: lengths must be integers"):
        gru(x, lengths=[5.0, 2.0, 4.0])
    with pytest.raises(tg.ShapeError, match=r"GRU: lengths must lie in \[1, T\] = \[1, 5\], got values from 2 to 6"):
        gru(x, lengths=[6, 2, 4])
    with pytest.raises(tg.ShapeError, match=r"lengths must have shape \(B,\) = \(3,\), got \(2,\)"):
        gru(x, lengths=[5, 2])
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'"):
        RNN(I, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        LSTM(I, H, dropout=1.5)
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        LSTM(I, H, num_layers=0)


@pytest.mark.parametrize("batch_first", [False, True])
def test_anomaly_in_the_input_names_the_time_step(batch_first):
    x = np.ones((B, T, I) if batch_first else (T, B, I))
    x[(1, 3) if batch_first else (3, 1)] = np.inf
    lstm = LSTM(I, H, batch_first=batch_first)
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"Inf .*scope 'lstm/l0/t=3'"):
        lstm(x)
