"""tg.compile: a replayed step gives the eager step's numbers bit for bit (float64), step after step.

Each case builds the same model twice from one seed, runs a few steps eagerly and then the same steps
compiled (the first call traces, the others replay) from the same global generator state, and
compares every returned value and every parameter after every step with ``array_equal``.
"""

import re

import numpy as np
import pytest

import tinygraph as tg
from examples.cells import IndRNN, MinimalGatedUnit, PeepholeLSTM
from rnn_models import GRU, LSTM, RNN, Recurrent, RecurrentLayer, SequenceModel, TruncatedBPTT

STEPS = 4
T, B, V, H = 5, 3, 4, 6


def batches(steps=STEPS, T=T, B=B, V=V, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((T, B, V)).astype(dtype), rng.integers(0, V, (T, B)))
            for _ in range(steps)]


def run(make, data, compiled):
    """Per step: (what the step returned, copies of every parameter after it)."""
    tg.manual_seed(7)
    model, step = make()
    if compiled:
        step = tg.compile(step)
    tg.manual_seed(11)    # the stream dropout draws from, the same for both runs
    out = []
    for args in data:
        result = step(*args)
        out.append((result, [p.data.copy() for p in model.parameters()]))
    return out, step


def assert_same(eager, compiled):
    for (r1, p1), (r2, p2) in zip(eager, compiled):
        assert _plain(r1) == _plain(r2)
        assert len(p1) == len(p2)
        for a, b in zip(p1, p2):
            assert a.dtype == b.dtype and np.array_equal(a, b)


def _plain(r):
    if isinstance(r, tg.Tensor):
        return (r.shape, r.dtype.str, r.numpy().tobytes())
    if isinstance(r, (tuple, list)):
        return type(r)(_plain(v) for v in r)
    return r


def check(make, data=None, **kwargs):
    data = batches() if data is None else data
    eager, _ = run(make, data, False)
    compiled, step = run(make, data, True)
    assert_same(eager, compiled)
    assert step.traces == 1
    return step


class Head(tg.nn.Module):
    """x (T, B, V) -> a recurrent layer -> a linear head -> mean cross-entropy."""

    def __init__(self, layer):
        super().__init__()
        self.rnn = layer
        self.head = tg.nn.Linear(layer.hidden_size * layer.num_directions, V)

    def loss(self, x, targets, lengths=None):
        out = self.rnn(x, lengths=lengths)[0]
        return tg.linear_cross_entropy(out, self.head.weight, self.head.bias, targets)


def trainer(layer_fn, optimizer=tg.optim.SGD, lr=0.1, lengths=None):
    def make():
        model = Head(layer_fn())
        opt = optimizer(model.parameters(), lr=lr)

        def step(x, targets):
            loss = model.loss(tg.Tensor._wrap(x), targets, lengths)
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss.item()
        return model, step
    return make


@pytest.mark.parametrize("layer", [RNN, LSTM, GRU])
def test_layers_bit_for_bit(layer):
    step = check(trainer(lambda: layer(V, H)))
    plan = step.plan
    assert plan.nodes > T and plan.rules > T and plan.units == 2 and plan.backwards == 1


def test_two_layers_bidirectional_adam():
    check(trainer(lambda: LSTM(V, H, num_layers=2, bidirectional=True), tg.optim.Adam, 0.01))


@pytest.mark.parametrize("cell", [MinimalGatedUnit, PeepholeLSTM, IndRNN])
def test_user_cells(cell):
    check(trainer(lambda: RecurrentLayer(cell, V, H, num_layers=2)))


def test_recurrent_node_of_a_user_cell():
    def make():
        node = Recurrent(MinimalGatedUnit(V, H), state_size=H)
        head = tg.nn.Linear(H, V)
        params = node.parameters() + head.parameters()
        opt = tg.optim.SGD(params, lr=0.2)
        model = tg.nn.Sequential(node, head)

        def step(x, targets):
            outputs, h = node.unroll(tg.Tensor._wrap(x))
            logits = head(tg.stack(outputs)).reshape(-1, V)
            loss = tg.cross_entropy(logits, targets.reshape(-1))
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss.item(), h
        return model, step
    check(make)


@pytest.mark.parametrize("layer", [LSTM, GRU])
def test_lengths(layer):
    lengths = np.array([T, 2, 4])   # steers Python (masks per step): constant, as the docs require
    check(trainer(lambda: layer(V, H), lengths=lengths))


def test_lengths_as_a_static_argument_retraces_per_value():
    def make():
        model = Head(LSTM(V, H))
        opt = tg.optim.SGD(model.parameters(), lr=0.1)

        def step(x, targets, lengths):
            loss = model.loss(tg.Tensor._wrap(x), targets, lengths)
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss.item()
        return model, step
    data = [(x, t, np.array([T, 2, 4]) if k % 2 else np.array([1, T, 3]))
            for k, (x, t) in enumerate(batches(6))]
    tg.manual_seed(7)
    model1, eager = make()
    tg.manual_seed(7)
    model2, step = make()
    compiled = tg.compile(step, static_argnums=2)
    for args in data:
        assert eager(*args) == compiled(*args)
    assert compiled.traces == 2 and len(compiled.plans) == 2
    for a, b in zip(model1.parameters(), model2.parameters()):
        assert np.array_equal(a.data, b.data)


def test_dropout_redraws_its_mask_from_the_stream():
    step = check(trainer(lambda: GRU(V, H, num_layers=2, dropout=0.4)))
    assert step.plan.ops.get("dropout_mask") == 1


def test_nn_dropout():
    def make():
        lin, drop = tg.nn.Linear(V, V), tg.nn.Dropout(0.5)
        opt = tg.optim.SGD(lin.parameters(), lr=0.1)

        def step(x, targets):
            loss = tg.cross_entropy(drop(lin(tg.Tensor._wrap(x))).reshape(-1, V), targets.reshape(-1))
            loss.backward()
            opt.step()
            lin.zero_grad()   # Module.zero_grad is a unit of the plan too
            return loss
        return lin, step
    check(make)


def test_truncated_bptt():
    def make():
        model = SequenceModel("lstm", V, H, V, num_layers=1)
        opt = tg.optim.SGD(model.parameters(), lr=0.1)
        tbptt = TruncatedBPTT(2, 3)

        def loss_terms(outputs, targets, a, b):
            logits = outputs.reshape(-1, V)
            return tg.cross_entropy(logits, targets[a:b].reshape(-1), reduction="sum"), logits.shape[0]

        def step(x, targets):
            def update():
                opt.step()
                opt.zero_grad()
            results, _ = tbptt.run(model, tg.Tensor._wrap(x),
                                   None, lambda o, a, b: loss_terms(o, targets, a, b), update)
            return [r.loss for r in results]
        return model, step
    step = check(make, batches(T=7))
    assert step.plan.backwards == len(TruncatedBPTT(2, 3).windows(7))


def test_gradients_dropped_by_hand_and_accumulated_across_calls():
    def make(clear):
        def build():
            lin = tg.nn.Linear(V, V)
            opt = tg.optim.SGD(lin.parameters(), lr=0.3)

            def step(x, targets):
                loss = tg.cross_entropy(lin(tg.Tensor._wrap(x)).reshape(-1, V), targets.reshape(-1))
                loss.backward()
                opt.step()   # without zero_grad: the next call adds to .grad, as eager does
                if clear:
                    for p in lin.parameters():
                        p.grad = None   # not replayed as code, but the plan clears .grad likewise
                return loss
            return lin, step
        return build
    check(make(True))
    check(make(False))


def test_float32_and_shape_changes_retrace():
    make = trainer(lambda: LSTM(V, H, dtype=np.float32))
    f32 = np.float32
    data = batches(2, dtype=f32) + batches(2, T=3, seed=1, dtype=f32) + batches(2, dtype=f32)
    eager, _ = run(make, data, False)
    compiled, step = run(make, data, True)
    assert_same(eager, compiled)
    assert step.traces == 2 and len(step.plans) == 2
    assert compiled[0][1][0].dtype == np.float32


def test_returned_values_are_the_replayed_ones():
    def make():
        lin = tg.nn.Linear(V, V)
        opt = tg.optim.SGD(lin.parameters(), lr=0.5)

        def step(x, targets):
            logits = lin(tg.Tensor._wrap(x)).reshape(-1, V)
            loss = tg.cross_entropy(logits, targets.reshape(-1))
            loss.backward()
            opt.step()
            opt.zero_grad()
            return {"loss": loss, "value": float(loss), "logits": logits, "none": None}
        return lin, step
    data = batches()
    eager, _ = run(make, data, False)
    compiled, _ = run(make, data, True)
    for (r1, _), (r2, _) in zip(eager, compiled):
        assert r1["value"] == r2["value"] and r2["none"] is None
        assert np.array_equal(r1["loss"].numpy(), r2["loss"].numpy())
        assert np.array_equal(r1["logits"].numpy(), r2["logits"].numpy())
    assert len({r["value"] for r, _ in compiled}) == STEPS   # not the traced value again


def test_item_used_in_python_warns():
    lin = tg.nn.Linear(V, V)

    def step(x):
        loss = lin(tg.Tensor._wrap(x)).sum()
        loss.backward()
        return loss.item() * 2
    compiled = tg.compile(step)
    with pytest.warns(tg.CompileWarning, match="into Python"):
        compiled(np.ones((2, V)))


def test_uncaptured_update_warns():
    lin = tg.nn.Linear(V, V)

    def step(x):
        loss = lin(tg.Tensor._wrap(x)).sum()
        loss.backward()
        for p in lin.parameters():
            p.data -= 0.1 * p.grad
            p.grad = None
        return loss
    with pytest.warns(tg.CompileWarning, match="outside optimiser steps"):
        tg.compile(step)(np.ones((2, V)))


def test_bad_arguments_and_results():
    lin = tg.nn.Linear(V, V)
    compiled = tg.compile(lambda x: lin(tg.Tensor._wrap(x)).sum())
    with pytest.raises(tg.CompileError, match="argument 0 is a list"):
        compiled([1.0, 2.0])
    with pytest.raises(tg.CompileError, match="argument 0 is a Tensor"):
        compiled(tg.tensor(np.ones((2, V))))
    with pytest.raises(tg.CompileError, match="is a set"):
        tg.compile(lambda x: {1})(np.ones(2))
    with pytest.raises(tg.CompileError, match="callable"):
        tg.compile(3)

    def uses_grad_of(x):
        y = lin(tg.Tensor._wrap(x)).sum()
        return tg.grad_of(y, lin.weight)[0]
    with pytest.raises(tg.CompileError, match="backward"):
        tg.compile(uses_grad_of)(np.ones((2, V)))


def test_plan_is_inspectable():
    step = check(trainer(lambda: LSTM(V, H)))
    plan = step.plan
    text = repr(plan)
    assert "nodes" in text and "buffers" in text and "KiB" in text
    assert plan.buffers > 0 and plan.bytes > 0 and plan.peak_bytes <= plan.bytes
    assert plan.persistent_bytes > 0    # the slab and the input buffers
    assert plan.ops["lstm_cell"] == T
    assert "def replay" in plan.source
    assert "compiled" in repr(step)


def test_eager_graph_is_unchanged_by_compiling():
    lstm = LSTM(V, H)
    x = np.ones((T, B, V))
    tg.compile(lambda a: lstm(tg.Tensor._wrap(a))[0].sum())(x)
    graph = lstm(tg.Tensor._wrap(x))[0].sum().graph()
    assert len(graph.nodes) > T


def test_other_threads_run_eagerly_while_a_step_is_traced():
    import threading
    done = {}

    def other():
        w = tg.tensor(np.ones(3), requires_grad=True)
        (w * 2).sum().backward()
        done["grad"] = w.grad

    def step(x):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        return tg.Tensor._wrap(x).sum()
    tg.compile(step)(np.ones(2))
    assert np.array_equal(done["grad"], [2.0, 2.0, 2.0])


# --- io_callback and arrays met by ops ---------------------------------------------------------------
def test_io_callback_runs_at_every_replay_with_the_replays_values():
    def make():
        w = tg.Tensor(np.ones(3), requires_grad=True)
        opt = tg.optim.SGD([w], lr=0.01)
        seen = []

        def update(loss, grad):
            assert not loss.flags.writeable and not grad.flags.writeable
            seen.append((float(loss), grad.copy()))
            if loss < 20:                      # a Python decision on the replay's value
                opt.step()
            opt.zero_grad()

        def step(x):
            loss = ((w * x) ** 2).sum()
            loss.backward()
            tg.io_callback(update, loss, w.grad)
            return loss.item()
        return step, w, seen
    eager, w1, seen1 = make()
    step, w2, seen2 = make()
    compiled = tg.compile(step)
    for i in range(6):
        x = np.full(3, float(i))
        assert compiled(x) == eager(x)
    assert compiled.traces == 1 and compiled.plan.units == 1
    assert [s[0] for s in seen1] == [s[0] for s in seen2] and len(seen2) == 6
    assert any(s[0] >= 20 for s in seen2) and any(0 < s[0] < 20 for s in seen2)   # both branches
    np.testing.assert_array_equal(w1.data, w2.data)


def test_io_callback_outside_a_trace_is_a_call_and_errors_propagate_from_replays():
    assert tg.io_callback(lambda a: float(a.sum()), tg.Tensor(np.ones(4))) == 4.0
    with pytest.raises(tg.CompileError, match="io_callback: fn must be callable"):
        tg.io_callback(3)
    with pytest.raises(tg.CompileError, match="io_callback: value 0 is a float"):
        tg.io_callback(print, 1.5)

    def check(loss):
        if loss > 10:
            raise FloatingPointError(f"loss {float(loss)}")

    def step(x):
        loss = (tg.Tensor(x) ** 2).sum()
        tg.io_callback(check, loss)
        return loss.item()
    compiled = tg.compile(step)
    assert compiled(np.ones(2)) == 2.0
    assert compiled(np.full(2, 2.0)) == 8.0            # a replay
    with pytest.raises(FloatingPointError, match="loss 18.0"):
        compiled(np.full(2, 3.0))
    assert compiled.traces == 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_array_operand_of_an_op_is_read_from_the_replays_input(dtype):
    """``w * x`` with x an ndarray argument: the op copies x into a leaf; a replay copies it again
    (it was once frozen at the traced value), also when it is cast to the Tensor's dtype."""
    w = tg.Tensor(np.arange(3.0, dtype=dtype), requires_grad=True)

    def step(x, y):
        return (w * x).sum().item(), tg.mse_loss(w, y).item(), (2.0 - (x - w)).sum().item()
    compiled = tg.compile(step)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = rng.standard_normal(3), rng.standard_normal(3)
        assert compiled(x, y) == step(x, y)
    assert compiled.traces == 1


def test_inputs_in_fortran_order_are_replayed_through_reshapes():
    """A trace's input buffers are C-ordered, so ``targets.reshape(-1)`` inside the step is a view of
    the buffer the replay writes (in the input's own F order it was a frozen copy)."""
    logits = tg.Tensor(np.random.default_rng(1).standard_normal((6, 4)))

    def step(targets):
        return tg.cross_entropy(logits, np.asarray(targets).reshape(-1)).item()
    compiled = tg.compile(step)
    rng = np.random.default_rng(2)
    for _ in range(3):
        targets = np.asfortranarray(rng.integers(0, 4, (3, 2)))
        assert compiled(targets) == step(targets)


def test_a_layers_step_gradients_are_accumulated_without_calls():
    """The plan adds up what the trace saw: each step's slice of the projection gradient added into one
    buffer in place (no getitem rule, no Scatter), the recurrent weight's per-step Products summed in
    groups, a hidden state's two contributions with one ``+``; still the eager step's bits."""
    step = check(trainer(lambda: RNN(V, H)))
    source = step.plan.source
    assert source.count("] += ") == T and "Scatter" not in source
    assert "sum_group(" in source and "append(r[" in source
    assert source.count(" + r[") == T - 1         # h_t's gradient: from its output and from step t+1
    assert step.plan.ops["getitem"] == T
    selected = re.findall(r"v(\d+) = v\d+\[IDX\1\]", source)
    assert len(selected) == T and not any(f"OP{k}.forward" in source or f"OP{k}.vjp" in source
                                          for k in selected)      # indexed here, no call


@pytest.mark.parametrize("index", [(slice(None), 1), 2, (0, 1), ([0, 2, 0],)])
def test_selections_of_one_tensor_bit_for_bit(index):
    """Several getitems of one tensor, basic (added in place by the plan, a 0-d one too) or advanced
    (repeated rows: the op's own rule with np.add.at), in a compiled step equal the eager step."""
    def make():
        w = tg.Tensor(np.random.default_rng(3).standard_normal((3, 4)), requires_grad=True)
        opt = tg.optim.SGD([w], lr=0.1)
        model = tg.nn.Module()
        model.w = w

        def step(x):
            a = (w * tg.Tensor._wrap(x)).tanh()
            loss = (a[index] * 2).sum() + (a[index] ** 2).sum() + a[0].sum()
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss.item()
        return model, step
    rng = np.random.default_rng(0)
    check(make, [(rng.standard_normal((3, 4)),) for _ in range(3)])
