"""rnn_models.to_torch: the torch module computes what ours computes.

For each model: random inputs and initial states, a random scalar loss of the outputs and final states;
the forward outputs, final states and the gradients with respect to the inputs, the initial states and
every parameter (by name) agree to 1e-10 in float64 and 1e-5 in float32. The op table that runs a
user's cell in torch is walked over the whole op registry, forward and gradient. State dicts move both
ways, also through safetensors files.
"""
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

torch = pytest.importorskip("torch")

import tinygraph as tg  # noqa: E402
from examples.cells import IndRNN, MinimalGatedUnit, PeepholeLSTM  # noqa: E402
from rnn_models import (GRU, LSTM, RNN, CharRNN, ExportError, LSTMCell, RecurrentLayer,  # noqa: E402
                        SequenceModel, to_torch)
from rnn_models.checkpoint import load_checkpoint, restore, save_checkpoint  # noqa: E402
from rnn_models.recurrent import flat  # noqa: E402
from rnn_models.torch_modules import TORCH_DTYPES, TORCH_OPS, TracedRecurrentLayer  # noqa: E402
from tinygraph.ops.base import OPS, Op, apply  # noqa: E402
from tinygraph.testing import op_samples  # noqa: E402

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}
T, B = 5, 3


def close(actual, expected, dtype, what):
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol, err_msg=what)


def as_tuple(state):
    return (state,) if isinstance(state, (tg.Tensor, torch.Tensor)) else tuple(state)


def run_both(model, x, state=None, lengths=None):
    """Run ours and its export on the same inputs; return both sides' (out, states, grads).

    ``x``: float array (gradient taken) or int ids; ``state``: tuple of arrays or None. The loss is
    sum(out * W) + sum_k sum(state_k * V_k) with random W, V_k.
    """
    rng = np.random.default_rng(1)
    exported = to_torch(model)
    floats = x.dtype.kind == "f"
    ours_x = tg.tensor(x, requires_grad=floats)
    ours_state = None if state is None else tuple(tg.tensor(s, requires_grad=True) for s in state)
    out, final = model(ours_x, _shape(ours_state), lengths=lengths)
    weights = [rng.normal(size=out.shape)] + [rng.normal(size=s.shape) for s in as_tuple(final)]
    loss = sum(((t * w).sum() for t, w in zip((out, *as_tuple(final)), weights)), tg.tensor(0.0))
    loss.backward()
    ours = dict(out=out.data, states=[s.data for s in as_tuple(final)],
                grads={"x": ours_x.grad} if floats else {})
    if ours_state is not None:
        ours["grads"].update({f"state{k}": s.grad for k, s in enumerate(ours_state)})
    ours["grads"].update({name: p.grad for name, p in model.named_parameters()})

    torch_x = torch.tensor(x, requires_grad=floats)
    torch_state = None if state is None else tuple(torch.tensor(s, requires_grad=True) for s in state)
    padded = {} if lengths is None else {"lengths": lengths}   # torch.nn.LSTM & co. take no lengths
    out_t, final_t = exported(torch_x, _shape(torch_state), **padded)
    loss_t = sum((t * torch.tensor(w)).sum() for t, w in zip((out_t, *as_tuple(final_t)), weights))
    loss_t.backward()
    theirs = dict(out=out_t.detach().numpy(), states=[s.detach().numpy() for s in as_tuple(final_t)],
                  grads={"x": torch_x.grad.numpy()} if floats else {})
    if torch_state is not None:
        theirs["grads"].update({f"state{k}": s.grad.numpy() for k, s in enumerate(torch_state)})
    theirs["grads"].update({name: p.grad.numpy() for name, p in exported.named_parameters()})
    return ours, theirs


def _shape(state):
    """A state tuple as the model takes it: one tensor alone, LSTM's pair as a tuple."""
    if state is None:
        return None
    return state[0] if len(state) == 1 else state


def assert_same(model, x, state=None, dtype=np.float64, lengths=None):
    ours, theirs = run_both(model, x, state, lengths)
    close(theirs["out"], ours["out"], dtype, "output")
    assert len(theirs["states"]) == len(ours["states"])
    for k, (a, b) in enumerate(zip(theirs["states"], ours["states"])):
        close(a, b, dtype, f"final state {k}")
    assert sorted(theirs["grads"]) == sorted(ours["grads"])
    for name, grad in ours["grads"].items():
        assert grad is not None, name
        close(theirs["grads"][name], grad, dtype, f"gradient of {name}")


def states_for(layer, batch, rng, dtype):
    template = flat(layer._nodes[0].initial_state(batch, layer.dtype))
    rows = layer.num_layers * layer.num_directions
    return tuple(rng.normal(size=(rows,) + s.shape).astype(dtype) for s in template)


LAYERS = {
    "lstm_2_layers_bidirectional_batch_first":
        lambda dtype: LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, dtype=dtype),
    "gru_2_layers": lambda dtype: GRU(3, 4, num_layers=2, dtype=dtype),
    "rnn_tanh": lambda dtype: RNN(3, 4, dtype=dtype),
    "rnn_relu_bidirectional": lambda dtype: RNN(3, 4, nonlinearity="relu", bidirectional=True, dtype=dtype),
    "rnn_sigmoid_traced": lambda dtype: RNN(3, 4, nonlinearity="sigmoid", num_layers=2, dtype=dtype),
    "lstm_no_bias_unfused": lambda dtype: LSTM(3, 4, bias=False, fused=False, dtype=dtype),
    "minimal_gated_unit": lambda dtype: RecurrentLayer(MinimalGatedUnit, 3, 4, num_layers=2,
                                                       bidirectional=True, batch_first=True).to(dtype),
    "peephole_lstm": lambda dtype: RecurrentLayer(PeepholeLSTM, 3, 4).to(dtype),
    "indrnn": lambda dtype: RecurrentLayer(IndRNN, 3, 4, num_layers=2).to(dtype),
    "our_lstm_cell_traced": lambda dtype: RecurrentLayer(LSTMCell, 3, 4, bidirectional=True, dtype=dtype),
}


def randomized(module, rng):
    """Parameters away from their initialisation (peepholes start at zero, which hides them)."""
    for p in module.parameters():
        p.data = rng.normal(scale=0.5, size=p.shape).astype(p.dtype)
    return module


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_forward_and_every_gradient(name, dtype):
    rng = np.random.default_rng(0)
    tg.manual_seed(0)
    layer = randomized(LAYERS[name](dtype), rng)
    x = rng.normal(size=(B, T, 3) if layer.batch_first else (T, B, 3)).astype(dtype)
    assert_same(layer, x, states_for(layer, B, rng, dtype), dtype)


def test_the_four_models_of_the_bar_map_as_promised():
    assert type(to_torch(LAYERS["lstm_2_layers_bidirectional_batch_first"](np.float64))) is torch.nn.LSTM
    assert type(to_torch(GRU(3, 4))) is torch.nn.GRU and type(to_torch(RNN(3, 4))) is torch.nn.RNN
    traced = to_torch(RecurrentLayer(MinimalGatedUnit, 3, 4))
    assert isinstance(traced, TracedRecurrentLayer)
    assert set(traced.state_dict()) == {"input_weight_l0", "input_bias_l0", "forget_weight_l0",
                                        "candidate_weight_l0"}
    assert "ops=['add', 'affine', 'getitem', 'mul', 'sigmoid', 'sub', 'tanh']" in repr(traced)


@pytest.mark.parametrize("name", ["minimal_gated_unit", "peephole_lstm"])
def test_traced_layers_with_padded_batches(name):
    """(torch.nn's layers take padded batches packed: the SequenceModel tests below cover them.)"""
    rng = np.random.default_rng(2)
    layer = randomized(LAYERS[name](np.float64), rng)
    x = rng.normal(size=(B, T, 3) if layer.batch_first else (T, B, 3))
    assert_same(layer, x, states_for(layer, B, rng, np.float64), lengths=np.array([T, 2, 4]))


SEQUENCE_MODELS = {
    "lstm_many_to_many_floats": lambda dtype: SequenceModel("lstm", 3, 4, 2, num_layers=2, dtype=dtype),
    "gru_many_to_one_embedding": lambda dtype: SequenceModel("gru", 3, 4, 2, head="many_to_one",
                                                             embedding=6, bidirectional=True, dtype=dtype),
    "rnn_one_hot": lambda dtype: SequenceModel("rnn", None, 4, 2, embedding=6, dtype=dtype),
    "mgu_many_to_one_bidirectional": lambda dtype: SequenceModel(
        "examples.cells:MinimalGatedUnit", 3, 4, 2, head="many_to_one", bidirectional=True, dtype=dtype),
    "char_rnn_lstm_embedding": lambda dtype: CharRNN("abcdef", 4, embedding_dim=3, num_layers=2, dtype=dtype),
    "char_rnn_gru_one_hot": lambda dtype: CharRNN("abcdef", 4, cell="gru", dtype=dtype),
}


def sequence_input(model, rng, dtype):
    if model.vocab_size is not None:
        return rng.integers(0, model.vocab_size, size=(T, B))
    return rng.normal(size=(T, B, model.input_size)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(SEQUENCE_MODELS))
def test_sequence_models_forward_and_every_gradient(name, dtype):
    rng = np.random.default_rng(3)
    tg.manual_seed(0)
    model = randomized(SEQUENCE_MODELS[name](dtype), rng)
    assert_same(model, sequence_input(model, rng, dtype), states_for(model.rnn, B, rng, dtype), dtype)


@pytest.mark.parametrize("name", ["lstm_many_to_many_floats", "gru_many_to_one_embedding",
                                  "mgu_many_to_one_bidirectional"])
def test_sequence_models_with_padded_batches(name):
    rng = np.random.default_rng(4)
    model = randomized(SEQUENCE_MODELS[name](np.float64), rng)
    x = sequence_input(model, rng, np.float64)
    assert_same(model, x, states_for(model.rnn, B, rng, np.float64), lengths=np.array([2, T, 1]))


def test_char_rnn_keeps_its_vocabulary():
    model = CharRNN("abc", 4)
    exported = to_torch(model)
    assert exported.decode(exported.encode("cab")) == "cab"
    assert exported.encode("cab").tolist() == model.encode("cab").tolist()
    assert exported(exported.encode("cab")[:, None])[0].shape == (3, 1, 3)


def test_zero_initial_states_and_the_training_mode():
    model = SequenceModel("gru", 3, 4, 2, num_layers=2, dropout=0.5)
    assert to_torch(model).training and not to_torch(model.eval()).training
    x = np.random.default_rng(5).normal(size=(T, B, 3))
    ours, _ = model(x)
    theirs, _ = to_torch(model)(torch.tensor(x))   # eval mode: dropout is off on both sides
    close(theirs.detach().numpy(), ours.data, np.float64, "output without initial states")


def test_the_export_is_a_copy():
    layer = GRU(3, 4)
    exported = to_torch(layer)
    before = exported.weight_hh_l0.detach().clone()
    layer.weight_hh_l0.data += 1
    assert torch.equal(exported.weight_hh_l0.detach(), before)


# --- the op table, walked over the registry --------------------------------------------------------
def test_every_op_has_a_torch_function():
    assert sorted(set(OPS) - set(TORCH_OPS)) == [] and sorted(set(TORCH_OPS) - set(OPS)) == []


@pytest.mark.parametrize("name", sorted(OPS))
def test_torch_op_matches_ours_forward_and_gradient(name):
    """Each op on samples of its own family (``tinygraph.testing.op_samples``): the torch function
    gives our output (values, shape, dtype) and, for a random cotangent, our input gradients."""
    @settings(max_examples=max(3, settings.default.max_examples // 5), deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(op_samples(OPS[name]))
    def check(sample):
        op, arrays = sample
        leaves = [tg.Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        out = apply(op, *leaves)
        inputs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        out_t = TORCH_OPS[name](op.attrs(), *inputs)
        assert tuple(out_t.shape) == out.shape and out_t.dtype == TORCH_DTYPES[out.dtype]
        np.testing.assert_allclose(out_t.detach().numpy(), out.data, rtol=1e-10, atol=1e-10, equal_nan=True)
        if not out.requires_grad:
            return
        cotangent = np.random.default_rng(0).normal(size=out.shape)
        (out * cotangent).sum().backward()
        (out_t * torch.tensor(cotangent)).sum().backward()
        for k, (leaf, t) in enumerate(zip(leaves, inputs)):
            if leaf.requires_grad:
                ours = leaf.grad if leaf.grad is not None else np.zeros(leaf.shape)
                theirs = t.grad.numpy() if t.grad is not None else np.zeros(leaf.shape)
                np.testing.assert_allclose(theirs, ours, rtol=1e-9, atol=1e-10, equal_nan=True,
                                           err_msg=f"gradient of input {k}")
    with np.errstate(all="ignore"), torch.autograd.set_detect_anomaly(False):
        check()


# --- what cannot be exported -----------------------------------------------------------------------
class Cube(Op, register=False):
    name = "cube_for_export_test"
    def forward(self, x): return x ** 3
    def vjp(self, B, g, out, x): return (3 * g * x * x,)


class CubeCell(tg.nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin = tg.nn.Linear(input_size, hidden_size)

    def forward(self, x, h):
        return apply(Cube(), self.lin(x)) + h


class HiddenWeightCell(CubeCell):
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        object.__setattr__(self, "secret", tg.tensor(np.ones(hidden_size), requires_grad=True))

    def forward(self, x, h):
        return self.lin(x) * self.secret + h


class BatchBoundReshape(CubeCell):
    def forward(self, x, h):
        return self.lin(x).reshape((x.shape[0], -1)) + h


class BatchBoundConstant(CubeCell):
    def forward(self, x, h):
        return self.lin(x) + tg.tensor(np.ones(h.shape)) * h


@pytest.mark.parametrize("model, match", [
    (RecurrentLayer(CubeCell, 2, 3), r"uses the op\(s\) \['cube_for_export_test'\], which have no torch "
                                      r"function"),
    (RecurrentLayer(HiddenWeightCell, 2, 3), r"reads a tensor \(3,\) that requires grad but is not a "
                                              r"parameter of the cell; register it"),
    (RecurrentLayer(BatchBoundReshape, 2, 3), r"depends on the batch size: op 'reshape' has \{'shape': "
                                               r"\(2, -1\)\} at batch 2 and \{'shape': \(3, -1\)\} at batch 3"),
    (RecurrentLayer(BatchBoundConstant, 2, 3), r"a constant made inside the step has shape \(2, 3\) at batch 2 "
                                                r"and \(3, 3\) at batch 3; give it a shape without the batch"),
    (tg.nn.Linear(2, 3), "cannot export a Linear; give an RNN, LSTM, GRU, a RecurrentLayer"),
])
def test_what_cannot_be_exported_is_named(model, match):
    with pytest.raises(ExportError, match=match):
        to_torch(model)


def test_without_torch_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(tg.MissingDependencyError, match=r"^to_torch needs torch: "
                                                        r"pip install 'tinygraph\[torch\]'$"):
        to_torch(GRU(2, 3))


# --- state dicts, both ways --------------------------------------------------------------------------
def test_a_torch_state_dict_loads_into_ours():
    torch.manual_seed(0)
    native = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64)
    ours = LSTM(3, 4, num_layers=2, bidirectional=True)
    ours.load_state_dict({k: v.numpy() for k, v in native.state_dict().items()})
    x = np.random.default_rng(6).normal(size=(T, B, 3))
    close(native(torch.tensor(x))[0].detach().numpy(), ours(x)[0].data, np.float64, "output")


@pytest.mark.parametrize("name", ["lstm_many_to_many_floats", "mgu_many_to_one_bidirectional",
                                  "char_rnn_lstm_embedding"])
def test_safetensors_files_move_weights_both_ways(tmp_path, name):
    """Ours -> file -> safetensors.torch.load_file -> the exported module of a differently initialised
    model; and torch's state_dict -> safetensors.torch.save_file -> load_checkpoint -> ours."""
    library = pytest.importorskip("safetensors.torch")
    rng = np.random.default_rng(7)
    model, other = (randomized(SEQUENCE_MODELS[name](np.float64), rng) for _ in range(2))
    save_checkpoint(tmp_path / "ours.safetensors", model)
    exported = to_torch(other)
    exported.load_state_dict(library.load_file(str(tmp_path / "ours.safetensors")))
    x = sequence_input(model, rng, np.float64)
    close(exported(torch.tensor(x))[0].detach().numpy(), model(x)[0].data, np.float64, "ours -> torch")

    for p in exported.parameters():
        torch.nn.init.normal_(p)
    library.save_file(exported.state_dict(), str(tmp_path / "torch.safetensors"))
    restore(load_checkpoint(tmp_path / "torch.safetensors"), other)
    close(other(x)[0].data, exported(torch.tensor(x))[0].detach().numpy(), np.float64, "torch -> ours")


def test_a_traced_layer_checks_its_initial_state():
    exported = to_torch(RecurrentLayer(PeepholeLSTM, 3, 4, num_layers=2))
    x = torch.zeros(T, B, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match="the initial state must be a tuple of 2 tensors, got Tensor"):
        exported(x, torch.zeros(2, B, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"initial state 1 has shape \(1, 3, 4\), expected \(2, 3, 4\)"):
        exported(x, (torch.zeros(2, B, 4, dtype=torch.float64), torch.zeros(1, B, 4, dtype=torch.float64)))
    with pytest.raises(ValueError, match=r"expected input of shape \(T, B, input_size\) with input_size=3"):
        exported(torch.zeros(T, B, 2, dtype=torch.float64))
