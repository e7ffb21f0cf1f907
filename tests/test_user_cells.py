"""A user's own cell is first-class: folded, unrolled (any direction, lengths), stacked, gradchecked,
trained through the same trainer, checkpointed, named on the command line — and refused clearly when
it breaks the cell protocol. The worked examples live in examples/cells.py."""
import numpy as np
import pytest

import tinygraph as tg
from examples.cells import IndRNN, MinimalGatedUnit, PeepholeLSTM
from helpers import run_cli, run_folded
from rnn_models import Recurrent, RecurrentLayer, SequenceModel, Trainer, build_model, make_task
from rnn_models.checkpoint import load_checkpoint, restore, save_checkpoint
from rnn_models.recurrent import flat
from rnn_models.training import make_optimizer

I, H, B, T = 3, 4, 2, 5
EXAMPLES = {"mgu": MinimalGatedUnit, "peephole": PeepholeLSTM, "indrnn": IndRNN}


def plain_function_cell():
    """A minimal gated unit as a plain function closing over its weights: no Module at all."""
    rng = np.random.default_rng(5)
    w = tg.tensor(rng.uniform(-0.5, 0.5, (I + H, 2 * H)), requires_grad=True, name="w")

    def mgu(x, h):
        f = tg.sigmoid(tg.concat([x, h], axis=1) @ w[:, :H])
        candidate = tg.tanh(tg.concat([x, f * h], axis=1) @ w[:, H:])
        return h + f * (candidate - h)
    return mgu, [w]


def make_node(kind):
    tg.manual_seed(0)
    if kind == "function":
        fn, params = plain_function_cell()
        return Recurrent(fn, state_size=H, input_size=I), params
    cell = EXAMPLES[kind](I, H)
    if isinstance(cell, PeepholeLSTM):  # non-zero peepholes, so their gradients are checked too
        cell.peephole.data[:] = np.random.default_rng(1).uniform(-0.5, 0.5, cell.peephole.shape)
    node = Recurrent(cell, state_size=None if isinstance(cell, PeepholeLSTM) else H, input_size=I)
    return node, cell.parameters()


KINDS = sorted(EXAMPLES) + ["function"]


def random_state(node, rng, batch=B):
    zeros = node.initial_state(batch, np.float64)
    parts = [tg.tensor(rng.uniform(-1, 1, z.shape)) for z in flat(zeros)]
    return parts[0] if isinstance(zeros, tg.Tensor) else tuple(parts)


# --- folded and unrolled ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_folded_graph_replays_the_unrolled_sequence(kind):
    """The folded graph alone, its ops replayed with each loop edge fed back, computes what the unroll
    computes: it is the step, traced once."""
    node, _ = make_node(kind)
    folded = node.folded(batch=B)
    n_states = len(flat(node.initial_state(1)))
    assert len(folded.loop_edges) == n_states
    assert all(folded.nodes[d].op is None and folded.nodes[d].name.endswith("[t-1]")
               for _, d in folded.loop_edges)
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((T, B, I))
    state0 = random_state(node, rng)
    _, final = node.unroll(tg.tensor(xs), state0)

    replayed = run_folded(folded, xs, [s.data for s in flat(state0)])
    for ours, value in zip(flat(final), replayed):
        np.testing.assert_allclose(ours.data, value, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_the_unrolled_graph_records_its_steps(kind):
    node, params = make_node(kind)
    outputs, final = node.unroll(np.ones((T, B, I)))
    graph = tg.Graph.of(*outputs, *flat(final))
    assert len(graph.loops) == 1 and [s.t for s in graph.steps] == list(range(T))
    assert {id(p) for p in graph.parameters} == {id(p) for p in params}   # one set of shared leaves
    n_states = len(flat(final))
    for step in graph.steps:
        assert step.scope == f"t={step.t}"
        assert all(graph.nodes[i].scope.startswith(f"t={step.t}") for i in step.nodes)
        assert graph.nodes[step.output] is outputs[step.t]
        assert len(step.state_out) == n_states
        if step.t > 0:   # the state a step reads is the state its predecessor produced
            assert step.state_in == graph.steps[step.t - 1].state_out
    # state edges join neighbouring steps only, and every step after the first receives one
    homes = [(graph.step_of[s][1], graph.step_of[d][1]) for s, d, _ in graph.state_edges]
    assert homes and all(b == a + 1 for a, b in homes)
    assert {b for _, b in homes} == set(range(1, T))
    assert graph.nodes[graph.steps[-1].state_out[0]] is flat(final)[0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_bptt_gradients_pass_gradcheck(kind, reverse):
    node, params = make_node(kind)
    rng = np.random.default_rng(3)
    xs = tg.tensor(rng.uniform(-1, 1, (T, B, I)), requires_grad=True)
    state0 = random_state(node, rng)
    if kind == "indrnn":  # keep relu's pre-activations away from its kink
        xs.data += 1.5
    state_leaves = [s.requires_grad_() for s in flat(state0)]
    seeds = rng.standard_normal((T, B, H))

    def loss(xs, *leaves):
        state = leaves[0] if isinstance(state0, tg.Tensor) else tuple(leaves[:len(state_leaves)])
        outputs, final = node.unroll(xs, state, reverse=reverse)
        return (tg.stack(outputs) * seeds).sum() + sum(s.sum() for s in flat(final))

    assert tg.gradcheck(loss, [xs, *state_leaves, *params])


@pytest.mark.parametrize("kind", KINDS)
def test_lengths_equal_running_each_sequence_alone(kind):
    node, _ = make_node(kind)
    rng = np.random.default_rng(4)
    lengths = [3, 5]
    xs = rng.standard_normal((T, B, I))
    outputs, final = node.unroll(xs, lengths=lengths)
    for b, n in enumerate(lengths):
        alone, final_b = node.unroll(xs[:n, b:b + 1])
        for t in range(T):
            expected = alone[t].data[0] if t < n else np.zeros(H)
            np.testing.assert_allclose(outputs[t].data[b], expected, rtol=1e-13, atol=1e-14)
        for ours, theirs in zip(flat(final), flat(final_b)):
            np.testing.assert_allclose(ours.data[b], theirs.data[0], rtol=1e-13, atol=1e-14)


def test_a_list_of_steps_and_batch_first_give_the_same_numbers():
    node, _ = make_node("mgu")
    xs = np.random.default_rng(6).standard_normal((T, B, I))
    reference = node.unroll(xs)[1].data
    np.testing.assert_array_equal(node.unroll(list(xs))[1].data, reference)
    np.testing.assert_array_equal(node.unroll(xs.swapaxes(0, 1), batch_first=True)[1].data, reference)


# --- layers, float32, checkpoints -----------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_layers_stack_a_users_cell(kind):
    tg.manual_seed(0)
    layer = RecurrentLayer(EXAMPLES[kind], I, H, num_layers=2, bidirectional=True, batch_first=True)
    names = [n for n, _ in layer.named_parameters()]
    assert all(n.endswith(("_l0", "_l0_reverse", "_l1", "_l1_reverse")) for n in names)
    x = np.random.default_rng(7).standard_normal((B, T, I))
    out, state = layer(x, lengths=[T, 2])
    assert out.shape == (B, T, 2 * H)
    assert all(s.shape == (4, B, H) for s in flat(state))
    # a one-layer bidirectional layer is its two recurrent nodes, side by side
    single = RecurrentLayer(EXAMPLES[kind], I, H, bidirectional=True)
    both, _ = single(x.swapaxes(0, 1), lengths=[T, 2])
    for direction in (0, 1):
        alone, _ = single.recurrent(0, reverse=bool(direction)).unroll(
            x.swapaxes(0, 1), lengths=[T, 2], reverse=bool(direction))
        np.testing.assert_array_equal(both.data[..., direction * H:(direction + 1) * H],
                                      tg.stack(alone).data)
    (out.sum() + sum(s.sum() for s in flat(state))).backward()
    assert all(p.grad is not None and np.isfinite(p.grad).all() for p in layer.parameters())
    # a state dict round-trips into a fresh layer, and the cell computes with the loaded values
    tg.manual_seed(1)
    other = RecurrentLayer(EXAMPLES[kind], I, H, num_layers=2, bidirectional=True, batch_first=True)
    other.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(other(x, lengths=[T, 2])[0].data, out.data)


def test_float32_model_of_a_users_cell_stays_float32(tmp_path):
    model = SequenceModel("examples.cells:PeepholeLSTM", 2, 8, 1, head="many_to_one", dtype=np.float32)
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    y, (h, c) = model(np.ones((5, 3, 2)))
    assert y.dtype == h.dtype == c.dtype == np.float32
    path = tmp_path / "peephole.npz"
    save_checkpoint(path, model, config={"model": model.config()})
    checkpoint = load_checkpoint(path)
    again = build_model(checkpoint.config["model"])
    restore(checkpoint, again)
    np.testing.assert_array_equal(again(np.ones((5, 3, 2)))[0].data, y.data)


# --- training ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["examples.cells:MinimalGatedUnit", "examples.cells:PeepholeLSTM",
                                  "examples.cells:IndRNN"])
def test_trains_on_the_adding_task(cell):
    """The same Trainer as our cells: 150 steps at T=20 take the MSE well below the 1/6 of always
    predicting the mean."""
    task = make_task("adding")
    tg.manual_seed(0)
    model = build_model(task.model_config(cell, 16))
    trainer = Trainer(model, task, make_optimizer("adam", model.parameters(), 0.01), batch_size=32,
                      seq_len=20, clip=1.0, seed=0, eval_batches=2)
    before = trainer.evaluate()["loss"]
    trainer.train(150)
    after = trainer.evaluate()["loss"]
    assert before > 0.1 and after < before / 4, (before, after)


def test_truncated_bptt_with_a_users_cell_cuts_the_gradient():
    """TBPTT(k) through the trainer's machinery: the gradient of a loss on the last chunk does not
    reach the first chunk's inputs."""
    from rnn_models import TruncatedBPTT
    tg.manual_seed(0)
    model = SequenceModel("examples.cells:MinimalGatedUnit", 2, 6, 1)
    xs = tg.tensor(np.random.default_rng(8).standard_normal((8, 2, 2)), requires_grad=True)
    seen = []

    def loss_terms(outputs, a, b):  # a loss on the second window only
        seen.append((a, b))
        return ((outputs ** 2).sum(), outputs.size) if a == 4 else None
    TruncatedBPTT(4).run(model, xs, None, loss_terms)
    assert seen == [(0, 4), (4, 8)]
    assert not xs.grad[:4].any() and np.abs(xs.grad[4:]).min() > 0


# --- anomaly and bad input ----------------------------------------------------------------------------
def test_detect_anomaly_names_the_time_step():
    def cell(x, h):
        return tg.log(h + x)  # NaN once the argument turns negative
    xs = np.ones((6, 1, 1))
    xs[4] = -5.0
    node = Recurrent(cell, state_size=1)
    with tg.detect_anomaly(), np.errstate(invalid="ignore"), \
            pytest.raises(tg.AnomalyError, match=r"op 'log' \(scope 't=4'"):
        node.unroll(xs, tg.tensor(np.ones((1, 1))))


def cell_returning(make):
    """A cell whose step returns ``make(x, h, t)`` — t counts calls."""
    calls = []

    def cell(x, h):
        calls.append(None)
        return make(x, h, len(calls) - 1)
    cell.__qualname__ = "BadCell"
    return Recurrent(cell, state_size=H)


@pytest.mark.parametrize("make,error,message", [
    (lambda x, h, t: h.data, TypeError,
     r"Recurrent\(BadCell\) at step t=0: the cell returned ndarray; expected the new state, a "
     r"Tensor\(2, 4\) float64"),
    (lambda x, h, t: (h, h, h), TypeError,
     r"at step t=0: the cell returned tuple\(Tensor\(2, 4\) float64, .*\); expected the new state"),
    (lambda x, h, t: h if t < 2 else h[:, :2], tg.ShapeError,
     r"at step t=2: the new state Tensor\(2, 2\) float64 does not match the state it was given, "
     r"Tensor\(2, 4\) float64"),
    (lambda x, h, t: tg.astype(h, np.float32), tg.ShapeError,
     r"at step t=0: the new state Tensor\(2, 4\) float32 does not match .* Tensor\(2, 4\) float64"),
    (lambda x, h, t: (None, h), TypeError, r"at step t=0: the step's output must be a Tensor, got NoneType"),
])
def test_a_cell_that_breaks_the_protocol_is_named_at_the_step(make, error, message):
    with pytest.raises(error, match=message):
        cell_returning(make).unroll(np.ones((T, B, I)))


def test_tuple_state_mismatch_and_missing_state_size():
    def pair_cell(x, state):
        h, c = state
        return (h,)  # drops c
    with pytest.raises(TypeError, match=r"returned tuple\(Tensor\(2, 4\) float64\); expected the new "
                                         r"state, a tuple of 2 tensors"):
        Recurrent(pair_cell, state_size=(H, H)).unroll(np.ones((T, B, I)))
    with pytest.raises(TypeError, match=r"Recurrent\(MinimalGatedUnit\): cannot make the initial state; "
                                         r"pass state0 .* state_size=H"):
        Recurrent(MinimalGatedUnit(I, H)).unroll(np.ones((T, B, I)))
    with pytest.raises(TypeError, match="input size is unknown"):
        Recurrent(lambda x, h: h, state_size=H).folded()
    with pytest.raises(ValueError, match="state_size must be a positive int"):
        Recurrent(lambda x, h: h, state_size=0)
    with pytest.raises(TypeError, match="the cell must be callable"):
        Recurrent(42)


def test_a_layer_refuses_a_cell_whose_output_is_not_hidden_sized():
    class Wide(tg.nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.lin = tg.nn.Linear(input_size, hidden_size)

        def forward(self, x, h):
            return tg.concat([h, h], axis=1), h   # output (B, 2H) beside the state
    with pytest.raises(tg.ShapeError, match=r"step output has shape \(2, 8\); a layer stacks outputs of "
                                            r"shape \(B, hidden_size\) = \(2, 4\)"):
        RecurrentLayer(Wide, I, H)(np.ones((T, B, I)))


def test_an_explicit_output_beside_the_state():
    """(output, state): the outputs are what the cell says, the state carries on."""
    def cell(x, h):
        new = tg.tanh(h + x.sum(axis=1, keepdims=True))
        return new * 2, new
    outputs, final = Recurrent(cell, state_size=H).unroll(np.ones((T, B, I)))
    np.testing.assert_allclose(outputs[-1].data, 2 * final.data)


# --- the command line ------------------------------------------------------------------------------------
def test_train_and_resume_a_users_cell_from_the_command_line(capsys, tmp_path):
    cell = "examples.cells:MinimalGatedUnit"
    path = tmp_path / "mgu.npz"
    args = ["train", "--task", "adding", "--cell", cell, "--hidden", "6", "--seq-len", "8", "--batch-size",
            "4", "--quiet", "--save", str(path)]
    code, out, err = run_cli(args + ["--steps", "2"], capsys)
    assert code == 0, err
    assert load_checkpoint(path).config["model"]["cell"] == cell
    code, out, err = run_cli(args + ["--steps", "2", "--resume"], capsys)   # two more
    assert code == 0, err
    resumed = load_checkpoint(path)
    assert resumed.trainer_state["step"] == 4
    # resuming 2 -> 4 gives the parameters of training 4 steps at once
    straight = tmp_path / "straight.npz"
    code, out, err = run_cli(args[:-1] + [str(straight), "--steps", "4"], capsys)
    assert code == 0, err
    for name, value in load_checkpoint(straight).model_state.items():
        np.testing.assert_array_equal(resumed.model_state[name], value, err_msg=name)


@pytest.mark.parametrize("cell", sorted(EXAMPLES.values(), key=lambda c: c.__name__))
@pytest.mark.parametrize("view,level", [("unrolled", "op"), ("unrolled", "cell"), ("folded", "op")])
def test_render_each_example_cell(cell, view, level, capsys, tmp_path):
    picture = tmp_path / "cell.svg"
    code, _, err = run_cli(["render", "--cell", f"examples.cells:{cell.__name__}", "--steps", "3", "--view",
                            view, "--level", level, "--grads" if view == "unrolled" else "--values", "-o",
                            str(picture)], capsys)
    assert code == 0, err
    text = picture.read_text()
    assert "<svg" in text and text.count("class=\"node ") >= 5


def test_gradflow_compares_a_users_cell_with_ours(capsys, tmp_path):
    cell = "examples.cells:MinimalGatedUnit"
    code, _, err = run_cli(["gradflow", "--cell", f"rnn,{cell}", "--steps", "6", "-o", str(tmp_path / "g.svg")],
                           capsys)
    assert code == 0, err


@pytest.mark.parametrize("spec,message", [
    ("examples.cells:Nope", "module 'examples.cells' has no attribute 'Nope'"),
    ("no_such_package.cells:Cell", "cannot import module 'no_such_package.cells'"),
    ("os:system", "'os:system' is builtin_function_or_method, not a tinygraph.nn.Module subclass"),
    ("examples.cells:", "is not of the form 'package.module:ClassName'"),
])
def test_a_bad_cell_spec_is_one_line(spec, message, capsys):
    code, _, err = run_cli(["train", "--cell", spec], capsys)
    assert code == 2 and message in err


# --- PyTorch cross-check ------------------------------------------------------------------------------
def torch_step(kind, torch, p, x, state):
    """The same three cells written with torch ops, reading tinygraph's parameter names."""
    sig, tanh = torch.sigmoid, torch.tanh
    if kind == "mgu":
        wx = x @ p["input.weight"].T + p["input.bias"]
        f = sig(wx[:, :H] + state @ p["forget.weight"].T)
        return state + f * (tanh(wx[:, H:] + (f * state) @ p["candidate.weight"].T) - state)
    if kind == "indrnn":
        return torch.relu(x @ p["input.weight"].T + p["input.bias"] + p["recurrent_weight"] * state)
    h, c = state
    pre = x @ p["input.weight"].T + p["input.bias"] + h @ p["recurrent.weight"].T
    i = sig(pre[:, :H] + p["peephole"][0] * c)
    f = sig(pre[:, H:2 * H] + p["peephole"][1] * c)
    c = f * c + i * tanh(pre[:, 2 * H:3 * H])
    return sig(pre[:, 3 * H:] + p["peephole"][2] * c) * tanh(c), c


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_examples_equal_the_same_cell_written_in_pytorch(kind):
    torch = pytest.importorskip("torch", reason="PyTorch is needed for the cross-check")
    node, _ = make_node(kind)
    rng = np.random.default_rng(9)
    xs = rng.uniform(-1, 1, (T, B, I)) + (1.5 if kind == "indrnn" else 0)
    seeds = rng.standard_normal((T, B, H))
    outputs, _ = node.unroll(tg.tensor(xs))
    (tg.stack(outputs) * seeds).sum().backward()

    p = {name: torch.tensor(q.data, requires_grad=True) for name, q in node.cell.named_parameters()}
    state = torch.zeros(B, H, dtype=torch.float64)
    state = (state, state.clone()) if kind == "peephole" else state
    ys = []
    for t in range(T):
        state = torch_step(kind, torch, p, torch.tensor(xs[t]), state)
        ys.append(state[0] if kind == "peephole" else state)
    (torch.stack(ys) * torch.tensor(seeds)).sum().backward()
    np.testing.assert_allclose(tg.stack(outputs).data, torch.stack(ys).detach().numpy(), rtol=0, atol=1e-12)
    for name, q in node.cell.named_parameters():
        np.testing.assert_allclose(q.grad, p[name].grad.numpy(), rtol=0, atol=1e-10, err_msg=name)


def test_sampling_a_checkpoint_that_names_a_users_cell_needs_trust(capsys, tmp_path):
    """The cell's module name comes from the file: importing it is the user's decision."""
    path = tmp_path / "chars.npz"
    code, _, err = run_cli(["train", "--task", "chars", "--cell", "examples.cells:MinimalGatedUnit", "--hidden",
                            "6", "--seq-len", "8", "--batch-size", "2", "--steps", "2", "--quiet", "--save",
                            str(path)], capsys)
    assert code == 0, err
    code, _, err = run_cli(["sample", "--load", str(path), "-n", "5"], capsys)
    assert code == 2 and "names its cell 'examples.cells:MinimalGatedUnit'" in err and "--trust-cell" in err
    code, out, err = run_cli(["sample", "--load", str(path), "-n", "5", "--trust-cell"], capsys)
    assert code == 0 and len(out.strip()) >= 5, err
