"""Cells: PyTorch parameters and numbers, gate scopes, gradients, float32, bad input."""
import numpy as np
import pytest

import tinygraph as tg
from rnn_models import GRUCell, LSTMCell, Recurrent, RNNCell

I, H, B = 3, 4, 2
CELLS = [(RNNCell, 1, {}), (RNNCell, 1, {"nonlinearity": "relu"}), (RNNCell, 1, {"nonlinearity": "sigmoid"}),
         (LSTMCell, 4, {}), (GRUCell, 3, {})]
CELL_IDS = ["rnn_tanh", "rnn_relu", "rnn_sigmoid", "lstm", "gru"]


def pack(cell, tensors):
    """A cell's state from a list of tensors: h for RNN/GRU (as torch.nn), the pair (h, c) for LSTM."""
    return tensors[0] if len(cell.state_names) == 1 else tuple(tensors)


def unpack(state):
    return (state,) if isinstance(state, tg.Tensor) else tuple(state)


def random_state(cell, rng, batch=B):
    return pack(cell, [tg.tensor(rng.standard_normal((batch, cell.hidden_size))) for _ in cell.state_names])


@pytest.mark.parametrize("cls,gates,options", CELLS, ids=CELL_IDS)
def test_parameters_follow_pytorch(cls, gates, options):
    tg.manual_seed(3)
    cell = cls(I, H, **options)
    names = [n for n, _ in cell.named_parameters()]
    assert names == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    shapes = [p.shape for p in cell.parameters()]
    assert shapes == [(gates * H, I), (gates * H, H), (gates * H,), (gates * H,)]
    for p in cell.parameters():
        assert np.abs(p.data).max() <= 1 / np.sqrt(H) and p.requires_grad
    tg.manual_seed(3)
    again = cls(I, H, **options)
    for p, q in zip(cell.parameters(), again.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    assert [n for n, _ in cls(I, H, bias=False, **options).named_parameters()] == ["weight_ih", "weight_hh"]


def test_nonlinearities_match_the_formula():
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal((B, I)), rng.standard_normal((B, H))
    acts = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0), "sigmoid": lambda a: 1 / (1 + np.exp(-a))}
    for name, act in acts.items():
        cell = RNNCell(I, H, nonlinearity=name)
        w_ih, w_hh, b_ih, b_hh = (p.data for p in cell.parameters())
        out = cell(x, h)
        np.testing.assert_allclose(out.data, act(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh), rtol=1e-13, atol=1e-14)


def test_lstm_gates_are_scoped_and_states_named():
    cell = LSTMCell(I, H, fused=False)
    h, c = cell(np.ones((B, I)))
    assert (h.name, c.name) == ("h", "c")
    scopes = tg.Graph.of(h, c).scopes()
    assert set(scopes) == {"input_gate", "forget_gate", "cell_gate", "output_gate"}
    h = GRUCell(I, H, fused=False)(np.ones((B, I)))
    assert h.name == "h"
    assert set(tg.Graph.of(h).scopes()) == {"reset_gate", "update_gate", "new_gate"}
    h, c = LSTMCell(I, H)(np.ones((B, I)))  # fused: one op per step, states still named
    assert (h.name, c.name) == ("h", "c")
    assert "lstm_cell" in tg.Graph.of(h, c).op_counts()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cls,gates,options", CELLS, ids=CELL_IDS)
def test_fused_and_gate_forms_agree(cls, gates, options, bias):
    """The fused op and the gates built from primitives compute the same state and gradients."""
    rng = np.random.default_rng(7)
    fused = cls(I, H, bias=bias, **options)
    gates_form = cls.from_parameters(*fused.parameters(), fused=False, **options)
    x = rng.standard_normal((B, I))
    state = random_state(fused, rng)
    results = []
    for cell in (fused, gates_form):
        cell.zero_grad()
        xt = tg.tensor(x, requires_grad=True)
        new = unpack(cell(xt, state))
        sum(((s * (k + 1.5)).sum() for k, s in enumerate(new)), tg.tensor(0.0)).backward()
        results.append([s.data for s in new] + [xt.grad] + [p.grad for p in cell.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls,gates,options", CELLS, ids=CELL_IDS)
def test_one_step_gradcheck(cls, gates, options):
    rng = np.random.default_rng(1)
    template = cls(I, H, **options)
    params = [p.data.copy() for p in template.parameters()]
    x = rng.standard_normal((B, I))
    states = [rng.standard_normal((B, H)) for _ in template.state_names]
    n_states = len(states)

    def fn(x, *rest):
        cell = cls.from_parameters(*rest[n_states:], **options)
        return tg.stack(unpack(cell(x, pack(cell, rest[:n_states]))))

    inputs = [tg.tensor(a, requires_grad=True) for a in [x, *states, *params]]
    assert tg.gradcheck(fn, inputs)


def test_from_parameters_shares_the_tensors():
    w_ih, w_hh = tg.tensor(np.ones((8, 3)), requires_grad=True), tg.tensor(np.ones((8, 2)), requires_grad=True)
    cell = LSTMCell.from_parameters(w_ih, w_hh)
    assert cell.weight_ih is w_ih and cell.bias_ih is None
    assert (cell.input_size, cell.hidden_size) == (3, 2)
    h, _ = cell(np.ones((1, 3)))
    h.sum().backward()
    assert w_ih.grad is not None and w_ih.grad.shape == (8, 3)
    with pytest.raises(tg.ShapeError, match=r"weight_hh must be \(4\*H, H\)"):
        LSTMCell.from_parameters(w_ih, tg.tensor(np.ones((6, 2))))
    with pytest.raises(tg.ShapeError, match="bias_ih"):
        LSTMCell.from_parameters(w_ih, w_hh, tg.tensor(np.ones(7)), tg.tensor(np.ones(8)))


@pytest.mark.parametrize("cls", [RNNCell, LSTMCell, GRUCell])
def test_float32_stays_float32(cls):
    cell = cls(I, H, dtype=np.float32)
    x = tg.tensor(np.ones((B, I), dtype=np.float32), requires_grad=True)
    state = unpack(cell(x))
    assert all(s.dtype == np.float32 for s in state)
    tg.stack(state).sum().backward()
    assert x.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in cell.parameters())


def test_bad_input():
    cell = LSTMCell(I, H)
    with pytest.raises(tg.ShapeError, match=r"expected input of shape \(B, input_size=3\), got \(2, 5\)"):
        cell(np.ones((2, 5)))
    with pytest.raises(tg.ShapeError, match=r"got \(3,\)"):
        cell(np.ones(3))
    with pytest.raises(tg.ShapeError, match=r"state c has shape \(2, 5\), expected \(2, 4\)"):
        cell(np.ones((2, 3)), (np.zeros((2, 4)), np.zeros((2, 5))))
    with pytest.raises(TypeError, match=r"state must be a tuple \(h, c\)"):
        cell(np.ones((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'"):
        RNNCell(I, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        GRUCell(I, 0)


# --- PyTorch equality --------------------------------------------------------------------------------
TORCH_CELLS = [("RNNCell", RNNCell, {"nonlinearity": "tanh"}), ("RNNCell", RNNCell, {"nonlinearity": "relu"}),
               ("LSTMCell", LSTMCell, {}), ("GRUCell", GRUCell, {})]


@pytest.mark.parametrize("torch_name,cls,options", TORCH_CELLS, ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("bias", [True, False])
def test_cells_equal_pytorch(torch_name, cls, options, bias):
    torch = pytest.importorskip("torch", reason="PyTorch is needed for the cross-check against torch cells")
    torch.manual_seed(0)
    ref = getattr(torch.nn, torch_name)(I, H, bias=bias, dtype=torch.float64, **options)
    cell = cls(I, H, bias=bias, **options)
    cell.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, I))
    states = [rng.standard_normal((B, H)) for _ in cell.state_names]
    projections = [rng.standard_normal((B, H)) for _ in cell.state_names]

    x_t = torch.tensor(x, requires_grad=True)
    states_t = [torch.tensor(s, requires_grad=True) for s in states]
    out_t = ref(x_t, tuple(states_t) if len(states_t) == 2 else states_t[0])
    out_t = out_t if isinstance(out_t, tuple) else (out_t,)
    sum((o * torch.tensor(p)).sum() for o, p in zip(out_t, projections)).backward()

    x_g = tg.tensor(x, requires_grad=True)
    states_g = tuple(tg.tensor(s, requires_grad=True) for s in states)
    out_g = unpack(cell(x_g, pack(cell, states_g)))
    sum((o * p).sum() for o, p in zip(out_g, projections)).backward()

    for ours, theirs in zip(out_g, out_t):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=0, atol=1e-10)
    for ours, theirs in zip([x_g, *states_g], [x_t, *states_t]):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=0, atol=1e-10)
    torch_params = dict(ref.named_parameters())
    for name, p in cell.named_parameters():
        np.testing.assert_allclose(p.grad, torch_params[name].grad.numpy(), rtol=0, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_the_recurrent_bias_enters_once_per_sequence_where_it_only_adds(kind):
    """RNN and LSTM add b_hh to the input projection (one add node for the whole sequence, as the
    hand-written baselines do), so no step reads it; GRU's b_hn sits inside r * (...): every step
    reads b_hh. The numbers are PyTorch's either way (``test_cells_equal_pytorch``)."""
    cls = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}[kind]
    tg.manual_seed(0)
    cell = cls(I, H)
    T = 5
    xs = tg.tensor(np.random.default_rng(0).standard_normal((T, B, I)))
    outputs, _ = Recurrent(cell)(xs)
    graph = tg.Graph.of(outputs[-1])
    bias = graph.index(cell.bias_hh)
    readers = [graph.nodes[d] for s, d, _ in graph.edges if s == bias]
    if kind == "gru":
        assert len(readers) == T and all(n.op.name == "gru_cell" for n in readers)
    else:
        assert [n.name for n in readers] == ["b_ih+b_hh"]
        assert graph.op_counts()["add"] == 1


def test_a_recurrent_bias_of_the_wrong_shape_is_refused_naming_the_op():
    p, h, w = np.ones((2, 4)), np.ones((2, 4)), np.ones((4, 4))
    with pytest.raises(tg.ShapeError, match=r"rnn_cell: .*bias_hh \(1\*H,\) or None; .*bias_hh \(3,\)"):
        tg.functional.rnn_cell(p, h, w, np.ones(3))
    with pytest.raises(tg.ShapeError, match=r"lstm_cell: .*bias_hh \(1,\)"):
        tg.functional.lstm_cell(np.ones((2, 16)), h, h, np.ones((16, 4)), np.ones(1))
    # a (1,)-shaped bias would broadcast silently in numpy; here it is an error, not a wrong answer


def test_affine_without_bias_is_one_node_equal_to_the_matmul():
    x = tg.tensor(np.random.default_rng(1).standard_normal((3, 2, I)), requires_grad=True)
    w = tg.tensor(np.random.default_rng(2).standard_normal((H, I)), requires_grad=True)
    y = tg.functional.affine(x, w)
    assert tg.Graph.of(y).op_counts() == {"affine": 1}
    np.testing.assert_array_equal(y.data, (x.data.reshape(-1, I) @ w.data.T).reshape(3, 2, H))
    y.sum().backward()
    np.testing.assert_allclose(w.grad.data, np.ones((6, H)).T @ x.data.reshape(-1, I), rtol=1e-15)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cells_without_biases_run_fused_where_the_op_takes_no_bias(kind):
    """rnn_cell and lstm_cell take their bias optional, so bias-free RNN and LSTM layers run one
    fused op per step (and the sequence slab); gru_cell needs b_hh, so a bias-free GRU runs the gate
    form. Either way the numbers are the gate form's."""
    cls = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}[kind]
    tg.manual_seed(1)
    fused = cls(I, H, bias=False)
    gates = cls.from_parameters(fused.weight_ih, fused.weight_hh, fused=False)
    xs = tg.tensor(np.random.default_rng(2).standard_normal((4, B, I)))
    out_fused, _ = Recurrent(fused).sequence(xs)
    out_gates, _ = Recurrent(gates).sequence(xs)
    counts = tg.Graph.of(out_fused).op_counts()
    assert (counts.get(f"{kind}_cell", 0) == 4) == (kind != "gru"), counts
    np.testing.assert_allclose(out_fused.data, out_gates.data, rtol=1e-13, atol=1e-15)
