"""The Trainer never applies a non-finite update: a NaN/inf loss or gradient stops training before the
update (or, with ``skip_nonfinite``, is skipped and counted); a step that raises before its first update
is undone; one that raises after it leaves a state that ``state_dict`` refuses; resuming stays exact."""

import numpy as np
import pytest

import tinygraph as tg
from rnn_models import training
from rnn_models.checkpoint import NonFiniteError
from rnn_models.models import SequenceModel
from rnn_models.tasks import SineTask
from rnn_models.training import Trainer, make_optimizer


class PoisonedSine(SineTask):
    """Sine waves whose inputs are NaN in the steps ``window`` of the batches numbered in ``batches``
    (1-based calls of ``batch``), or of every batch that ``when(inputs)`` picks."""

    def __init__(self, batches=(), window=(0, None), when=None):
        super().__init__()
        self.batches, self.window, self.when, self.calls = set(batches), window, when, 0

    def batch(self, rng, batch_size, seq_len):
        inputs, targets = super().batch(rng, batch_size, seq_len)
        self.calls += 1
        if self.calls in self.batches or (self.when is not None and self.when(inputs)):
            inputs = inputs.copy()
            inputs[slice(*self.window)] = np.nan
        return inputs, targets


def trainer(task=None, seed=0, **kwargs):
    tg.manual_seed(seed)
    model = SequenceModel("lstm", 1, 4, 1)
    options = dict(batch_size=2, seq_len=8, clip=1.0, seed=seed)
    options.update(kwargs)
    return Trainer(model, task or SineTask(), make_optimizer("adam", model.parameters(), 1e-2), **options)


def params(t):
    return {name: value.copy() for name, value in t.model.state_dict().items()}


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def same_state(a, b):
    """Two trainer state_dicts are equal (RNG states, step, averages, history)."""
    return (a["rng"] == b["rng"] and a["init_rng"] == b["init_rng"] and a["step"] == b["step"]
            and a["ema"] == b["ema"] and all(np.array_equal(a["history"][k], b["history"][k], equal_nan=True)
                                             for k in ("loss", "smoothed_loss", "grad_norm")))


# --- the Trainer -----------------------------------------------------------------------------------------
def test_a_nonfinite_loss_stops_training_before_the_update():
    t = trainer(PoisonedSine(batches=[3]))
    t.train(2)
    before, state = params(t), t.state_dict()
    with pytest.raises(NonFiniteError, match=r"Trainer: step 3: the loss is nan; training stopped before this "
                                             r"update was applied.*skip_nonfinite=True") as info:
        t.train(5)
    assert info.value.finding == "step 3: the loss is nan"
    assert t.step == 2 and t.at_step_boundary
    assert_same_params(params(t), before)               # nothing applied
    assert same_state(t.state_dict(), state)            # the batch RNG is rewound to the end of step 2


def test_after_a_stop_the_run_continues_exactly():
    """Rewinding makes the failed step as if it never ran: continuing equals a run that never failed."""
    straight = trainer()
    straight.train(4)
    t = trainer()
    t.train(2)
    real = t.task.batch

    def failing_once(rng, batch_size, seq_len):
        t.task.batch = real
        real(rng, batch_size, seq_len)          # draws the batch, as a real step would
        raise KeyboardInterrupt
    t.task.batch = failing_once
    with pytest.raises(KeyboardInterrupt):
        t.train(2)
    t.train(2)
    assert t.history["loss"] == straight.history["loss"]
    assert_same_params(params(t), params(straight))


def test_a_nonfinite_gradient_stops_training(monkeypatch):
    real = training.clip_grad_norm_

    def poisoned(parameters, max_norm):
        parameters = list(parameters)
        parameters[0].grad = parameters[0].grad * np.inf     # inf * 0 somewhere: NaN
        return real(parameters, max_norm)
    monkeypatch.setattr(training, "clip_grad_norm_", poisoned)
    t = trainer()
    before = params(t)
    with pytest.raises(NonFiniteError, match=r"step 1: the gradient norm is (nan|inf)"), \
            np.errstate(invalid="ignore"):      # clipping by a NaN norm: numpy's warning, not ours
        t.train(1)
    assert_same_params(params(t), before)


def test_a_nonfinite_second_window_leaves_the_model_between_steps():
    t = trainer(PoisonedSine(batches=[2], window=(4, None)), tbptt=4)
    t.train(1)
    with pytest.raises(NonFiniteError, match=r"step 2 \(update 2 of 2\): the loss is nan"):
        t.train(1)
    assert not t.at_step_boundary and t.step == 1
    with pytest.raises(RuntimeError, match="step 2 stopped .NonFiniteError. after 1 of its updates.*between two "
                                           "steps"):
        t.state_dict()
    t.train(1)                                          # a whole step later it is a resumable state again
    assert t.at_step_boundary and t.state_dict()["step"] == 2


def test_skip_nonfinite_skips_and_counts():
    records = []
    t = trainer(PoisonedSine(batches=[2]), skip_nonfinite=True, log=records.append)
    t.train(1)
    after_1, adam_1 = params(t), t.optimizer.state_dict()
    t.train(1)
    assert_same_params(params(t), after_1)                             # the skipped update changed nothing
    assert t.optimizer.state_dict()["state.0.step"] == adam_1["state.0.step"]
    assert t.skipped_updates == 1 and records[-1]["skipped"] == 1 and records[-1]["skipped_total"] == 1
    assert np.isnan(t.history["loss"][1]) and np.isfinite(t.history["smoothed_loss"][1])
    assert t.history["smoothed_loss"][1] == t.history["smoothed_loss"][0]   # NaN kept out of the average
    t.train(1)
    assert records[-1]["skipped_total"] == 1                           # the count stays in later records
    assert records[-1]["skipped"] == 0 and not np.array_equal(params(t)["head.bias"], after_1["head.bias"])


def test_skip_nonfinite_applies_the_other_windows_of_a_step():
    t = trainer(PoisonedSine(batches=[1], window=(4, None)), tbptt=4, skip_nonfinite=True)
    before = params(t)
    t.train(1)
    assert t.skipped_updates == 1 and t.at_step_boundary
    assert not np.array_equal(params(t)["head.bias"], before["head.bias"])   # window 1 was applied


def test_resuming_a_run_with_skipped_updates_is_exact():
    when = (lambda x: int(abs(x[0, 0, 0]) * 1e6) % 3 == 0)     # a fixed property of the batch
    straight = trainer(PoisonedSine(when=when), skip_nonfinite=True)
    straight.train(6)
    assert 0 < straight.skipped_updates < 6
    first = trainer(PoisonedSine(when=when), skip_nonfinite=True)
    first.train(3)
    model_state, optimizer_state, state = first.model.state_dict(), first.optimizer.state_dict(), first.state_dict()
    tg.manual_seed(123)
    resumed = trainer(PoisonedSine(when=when), skip_nonfinite=True)
    resumed.model.load_state_dict(model_state)
    resumed.optimizer.load_state_dict(optimizer_state)
    resumed.load_state_dict(state)
    resumed.train(3)
    assert resumed.skipped_updates == straight.skipped_updates
    assert np.array_equal(resumed.history["loss"], straight.history["loss"], equal_nan=True)
    assert_same_params(params(resumed), params(straight))


def test_request_stop_returns_after_the_step_in_progress():
    t = trainer(log=lambda record: t.request_stop() if record["step"] == 2 else None)
    t.train(10)
    assert t.step == 2 and t.stop_requested
    t.train(3)                      # still requested: nothing runs until it is cleared
    assert t.step == 2
    t.stop_requested = False
    t.train(1)
    assert t.step == 3


@pytest.mark.parametrize("change,problem", [
    (lambda s: s.update(step=-1), "step must be a non-negative integer"),
    (lambda s: s.update(step="3"), "step must be a non-negative integer"),
    (lambda s: s.update(step=True), "step must be a non-negative integer"),
    (lambda s: s.update(skipped_updates=-2), "skipped_updates must be"),
    (lambda s: s.update(rng={"bit_generator": "MT19937", "state": {}}), "ValueError|KeyError|TypeError"),
    (lambda s: s.update(rng=[1, 2]), "Error"),
    (lambda s: s.update(init_rng="seed"), "Error"),
    (lambda s: s.update(ema="low"), "ValueError"),
    (lambda s: s.update(ema_weight=None), "TypeError"),
    (lambda s: s["history"].pop("grad_norm"), "KeyError"),
    (lambda s: s["history"].update(loss=["a"]), "ValueError"),
    (lambda s: s["history"].update(eval=[1, 2]), "list of dicts"),
    (lambda s: s.pop("rng"), "KeyError"),
    (lambda s: s.clear(), "KeyError"),
])
def test_a_corrupt_trainer_state_is_refused_whole(change, problem):
    source = trainer()
    source.train(2)
    state = source.state_dict()
    change(state)
    t = trainer(seed=5)
    t.train(1)
    before = t.state_dict()
    with pytest.raises(ValueError, match=f"trainer state is incomplete or corrupt .*({problem})"):
        t.load_state_dict(state)
    assert same_state(t.state_dict(), before)           # nothing half-loaded
