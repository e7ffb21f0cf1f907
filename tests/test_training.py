"""Truncated BPTT (k1, k2) against full BPTT, and the Trainer (determinism, clipping, history, logging)."""

import numpy as np
import pytest

import tinygraph as tg
from rnn_models.models import SequenceModel, detach_state
from rnn_models.tasks import AddingTask, SineTask, make_task
from rnn_models.training import Trainer, TruncatedBPTT, Window, make_optimizer

T, B, I, O = 6, 2, 3, 2


def model(cell="lstm", **kwargs):
    tg.manual_seed(0)
    return SequenceModel(cell, I, 4, O, **kwargs)


def sequence(seed=0, steps=T):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((steps, B, I)), rng.standard_normal((steps, B, O))


def sum_mse(targets):
    """loss_terms for many-to-many regression: summed squared error of steps [a, b)."""
    return lambda outputs, a, b: (tg.mse_loss(outputs, targets[a:b], reduction="sum"), outputs.size)


def grads(m):
    return {name: p.grad.copy() for name, p in m.named_parameters()}


def full_bptt_grads(m, xs, targets, scale):
    m.zero_grad()
    y, _ = m(xs)
    (tg.mse_loss(y, targets, reduction="sum") / scale).backward()
    return grads(m)


# --- windows -------------------------------------------------------------------------------------------
def test_windows():
    assert TruncatedBPTT(3).windows(7) == [Window(0, 0, 3), Window(3, 3, 6), Window(6, 6, 7)]
    assert TruncatedBPTT(2, 4).windows(6) == [Window(0, 0, 2), Window(0, 2, 4), Window(2, 4, 6)]
    assert TruncatedBPTT(4, 1).windows(8) == [Window(0, 0, 4, (1, 2, 3)), Window(4, 4, 8, (5, 6, 7))]
    assert TruncatedBPTT(4, 3).windows(4) == [Window(0, 0, 4, (1,))]
    assert TruncatedBPTT(2, 3).windows(5) == [Window(0, 0, 2), Window(1, 2, 4), Window(3, 4, 5)]
    assert TruncatedBPTT(2, 100).windows(5) == [Window(0, 0, 2), Window(0, 2, 4), Window(0, 4, 5)]
    with pytest.raises(ValueError, match="k1 must be a positive integer, got 0"):
        TruncatedBPTT(0)
    with pytest.raises(ValueError, match="k2 must be a positive integer, got -1"):
        TruncatedBPTT(2, -1)


# --- truncated vs full BPTT ----------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_one_window_with_k2_at_least_T_is_full_bptt_exactly(cell):
    m = model(cell)
    xs, targets = sequence()
    want = full_bptt_grads(m, xs, targets, T * B * O)
    m.zero_grad()
    results, _ = TruncatedBPTT(T, T + 5).run(m, xs, None, sum_mse(targets))
    assert len(results) == 1
    for name, g in grads(m).items():
        np.testing.assert_array_equal(g, want[name], err_msg=name)


def test_windows_with_k2_at_least_T_sum_to_full_bptt():
    """k1 = 2 < T but k2 >= T: every window backpropagates to step 0, so the windows' gradients (each
    the gradient of its own mean loss) add up to full BPTT of the summed loss / (k1 B O)."""
    m = model("lstm")
    xs, targets = sequence(1)
    want = full_bptt_grads(m, xs, targets, 2 * B * O)
    m.zero_grad()
    results, _ = TruncatedBPTT(2, T).run(m, xs, None, sum_mse(targets))
    assert len(results) == 3
    for name, g in grads(m).items():
        np.testing.assert_allclose(g, want[name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_truncation_changes_the_gradient():
    m = model("rnn")
    xs, targets = sequence(2)
    want = full_bptt_grads(m, xs, targets, 2 * B * O)
    m.zero_grad()
    TruncatedBPTT(2).run(m, xs, None, sum_mse(targets))
    assert not np.allclose(grads(m)["rnn.weight_hh_l0"], want["rnn.weight_hh_l0"])


def input_gradients_per_window(m, k1, k2, steps=7):
    """Per window, |d(loss of the window's LAST step)/d(x_t)| summed per step t, captured by the update
    callback (which resets the input's gradient)."""
    xs, targets = sequence(3, steps)
    x = tg.tensor(xs, requires_grad=True)
    tbptt = TruncatedBPTT(k1, k2)
    windows = tbptt.windows(steps)
    stops = {w.stop for w in windows}
    captured = []

    def last_step_loss(outputs, a, b):
        if b not in stops:  # only a window's final piece ends at an update step
            return None
        return tg.mse_loss(outputs[-1:], targets[b - 1:b], reduction="sum"), 1

    def capture():
        captured.append(np.abs(x.grad).sum(axis=(1, 2)))
        x.grad = None

    tbptt.run(m, x, None, last_step_loss, capture)
    assert len(captured) == len(windows)
    return windows, captured


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_no_gradient_crosses_a_chunk_boundary(cell):
    windows, per_step = input_gradients_per_window(model(cell), 3, 3)
    for w, g in zip(windows, per_step):
        assert np.all(g[:w.start] == 0), f"gradient leaked before step {w.start}: {g}"
        assert np.all(g[w.start:w.stop] > 0)   # within the chunk, every step gets gradient
        assert np.all(g[w.stop:] == 0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_k2_equal_1_backpropagates_one_step_only(cell):
    windows, per_step = input_gradients_per_window(model(cell), 3, 1)
    for w, g in zip(windows, per_step):
        nonzero = np.flatnonzero(g)
        assert list(nonzero) == [w.stop - 1], f"{w}: gradient at steps {nonzero}"


def test_k2_greater_than_k1_reaches_back_k2_steps():
    windows, per_step = input_gradients_per_window(model("gru"), 2, 4, steps=8)
    for w, g in zip(windows, per_step):
        assert list(np.flatnonzero(g)) == list(range(max(0, w.stop - 4), w.stop))


def test_carried_state_equals_the_untruncated_forward():
    m = model("lstm", num_layers=2)
    xs, targets = sequence(4, steps=9)
    y_full, state_full = m(xs)
    outputs = {}

    def record(out, a, b):
        outputs[(a, b)] = out.data
        return tg.mse_loss(out, targets[a:b], reduction="sum"), out.size

    for k1, k2 in [(2, 2), (4, 1), (2, 5)]:
        outputs.clear()
        m.zero_grad()
        _, state = TruncatedBPTT(k1, k2).run(m, xs, None, record)
        for full, truncated in zip(state_full, state):
            np.testing.assert_allclose(truncated.data, full.data, rtol=1e-12, atol=1e-14)
            assert truncated.op is None and not truncated.requires_grad  # handed back detached
        for (a, b), out in outputs.items():
            np.testing.assert_allclose(out, y_full.data[a:b], rtol=1e-12, atol=1e-14)


def test_initial_state_is_used_and_detached():
    m = model("gru")
    xs, targets = sequence(5)
    h0 = tg.tensor(np.random.default_rng(0).standard_normal((1, B, 4)), requires_grad=True)
    _, full = m(xs, h0)
    _, state = TruncatedBPTT(2).run(m, xs, h0, sum_mse(targets))
    np.testing.assert_allclose(state.data, full.data, rtol=1e-12)
    assert h0.grad is None


def test_many_to_one_loss_only_in_the_last_window():
    tg.manual_seed(0)
    m = SequenceModel("lstm", 2, 4, 1, head="many_to_one")
    task = AddingTask()
    xs, targets = task.batch(np.random.default_rng(0), 3, 8)
    results, _ = TruncatedBPTT(3).run(m, xs, None, lambda o, a, b: task.loss_terms(o, targets, a, b, 8))
    assert [r.window.stop for r in results] == [8]
    assert results[0].loss == pytest.approx(task.loss(m(xs)[0], targets).item(), rel=1e-12)


# --- the trainer -----------------------------------------------------------------------------------------
def trainer(seed=0, cell="gru", optim="adam", lr=1e-2, task=None, **kwargs):
    task = task or SineTask()
    tg.manual_seed(seed)
    m = SequenceModel(cell, 1, 6, 1)
    options = dict(batch_size=4, seq_len=8, tbptt=4, clip=1.0, seed=seed)
    options.update(kwargs)
    return Trainer(m, task, make_optimizer(optim, m.parameters(), lr), **options)


def test_same_seed_gives_the_same_loss_sequence():
    a, b, c = trainer(seed=3), trainer(seed=3), trainer(seed=4)
    for t in (a, b, c):
        t.train(6)
    assert a.history["loss"] == b.history["loss"]
    assert a.history["grad_norm"] == b.history["grad_norm"]
    assert a.history["loss"] != c.history["loss"]


@pytest.mark.parametrize("optim", ["sgd", "adam", "adagrad"])
def test_training_reduces_the_loss(optim):
    t = trainer(optim=optim, lr={"sgd": 0.5, "adam": 2e-2, "adagrad": 0.1}[optim], seq_len=10, tbptt=None)
    before = t.evaluate()["loss"]
    t.train(40)
    assert t.evaluate()["loss"] < 0.7 * before


def test_history_and_smoothed_loss():
    t = trainer(smoothing=0.5)
    t.train(5)
    h = t.history
    assert len(h["loss"]) == len(h["grad_norm"]) == len(h["smoothed_loss"]) == 5 == t.step
    assert all(n > 0 for n in h["grad_norm"])
    ema = weight = 0.0  # bias-corrected exponential moving average
    for loss, smoothed in zip(h["loss"], h["smoothed_loss"]):
        ema, weight = 0.5 * ema + 0.5 * loss, 0.5 * weight + 0.5
        assert smoothed == pytest.approx(ema / weight)
    assert h["smoothed_loss"][0] == h["loss"][0]


def test_each_update_is_clipped():
    t = trainer(optim="sgd", lr=1.0, clip=1e-3, seq_len=8, tbptt=8)
    before = [p.data.copy() for p in t.model.parameters()]
    t.train(1)
    step = np.sqrt(sum(((p.data - b) ** 2).sum() for p, b in zip(t.model.parameters(), before)))
    assert t.history["grad_norm"][0] > 1e-3          # the raw norm is recorded ...
    assert step == pytest.approx(1e-3, rel=1e-3)      # ... and the applied step is clipped to 1e-3


def test_evaluation_is_periodic_deterministic_and_leaves_train_mode():
    t = trainer(eval_every=2)
    t.train(5)
    assert [e["step"] for e in t.history["eval"]] == [2, 4, 5]
    assert set(t.history["eval"][0]) == {"step", "loss", "relative_mse"}
    assert t.evaluate() == t.evaluate() and t.model.training


def test_log_receives_records_and_none_is_silent(capsys):
    records = []
    trainer(log=records.append, eval_every=3).train(3)
    assert [r["step"] for r in records] == [1, 2, 3]
    assert {"loss", "smoothed_loss", "grad_norm", "elapsed", "total_steps"} <= set(records[0])
    assert "eval" in records[2]
    trainer().train(2)
    assert capsys.readouterr().out == ""


def test_time_limit_stops_training():
    t = trainer()
    t.train(100, time_limit=0.0)
    assert t.step == 1
    with pytest.raises(ValueError, match="give steps, time_limit or both"):
        t.train()


def test_trainer_rejects_bad_settings():
    with pytest.raises(ValueError, match="clip must be a positive number"):
        trainer(clip=0)
    with pytest.raises(ValueError, match="seq_len must be a positive integer, got -3"):
        trainer(seq_len=-3)
    with pytest.raises(ValueError, match="unknown optimiser 'rmsprop'"):
        trainer(optim="rmsprop")
    with pytest.raises(ValueError, match="lr must be a positive number"):
        trainer(lr=0.0)
    tg.manual_seed(0)
    bi = SequenceModel("gru", 1, 3, 1, bidirectional=True)
    with pytest.raises(ValueError, match="bidirectional"):
        Trainer(bi, SineTask(), make_optimizer("sgd", bi.parameters(), 0.1), seq_len=8, tbptt=4)


def test_chars_trainer_runs_with_a_char_rnn():
    from rnn_models.models import build_model
    task = make_task("chars")
    tg.manual_seed(0)
    m = build_model(task.model_config("lstm", 8))
    t = Trainer(m, task, make_optimizer("adam", m.parameters(), 1e-2), batch_size=2, seq_len=8, eval_every=2)
    t.train(2)
    assert t.history["eval"][-1]["loss"] < np.log(len(task.vocab)) + 0.5


def test_detach_state_handles_tuples():
    h = tg.tensor(np.ones((1, 2, 3)), requires_grad=True) * 2
    c = tg.tensor(np.ones((1, 2, 3)), requires_grad=True) * 3
    dh, dc = detach_state((h, c))
    assert dh.op is None and dc.op is None and not dh.requires_grad
    assert detach_state(None) is None
