"""The Trainer's compiled steps (the default) give the eager steps' numbers bit for bit, and it goes back
to eager steps, saying why, whenever a plan could not be trusted.

Each case trains the same model from one seed twice, ``compile=False`` and ``compile=True``, and
compares every history entry and every parameter and optimiser state entry with ``array_equal``; the
compiled run must really be replaying (``compiled`` still True, more calls than traces).
"""
import warnings

import numpy as np
import pytest

import tinygraph as tg
from rnn_models import training
from rnn_models.models import build_model
from rnn_models.tasks import SineTask, make_task
from rnn_models.training import Trainer, make_optimizer

CASES = [
    ("chars", "lstm", {}, {}),
    ("chars", "gru", {"dropout": 0.3, "num_layers": 2}, {}),
    ("adding", "rnn", {}, {"clip": 0.5}),
    ("adding", "lstm", {}, {"tbptt": 3, "tbptt_k2": 6}),
    ("adding", "examples.cells:MinimalGatedUnit", {}, {}),
    ("copy", "gru", {}, {"tbptt": 4}),
    ("copy", "lstm", {"bidirectional": True}, {}),
    ("sine", "lstm", {}, {"tbptt": 5, "clip": 0.5}),
    ("sine", "rnn", {"dtype": "float32"}, {}),
    ("sine", "examples.cells:PeepholeLSTM", {}, {"tbptt": 4}),
]


def make_trainer(task, cell, model_options, compile, optim="adam", **options):
    tg.manual_seed(0)
    task = make_task(task) if isinstance(task, str) else task
    config = task.model_config(cell, 6, model_options.pop("num_layers", 1))
    config.update(model_options)
    model = build_model(config)
    settings = dict(batch_size=3, seq_len=12, seed=1)
    settings.update(options)
    return Trainer(model, task, make_optimizer(optim, model.parameters(), 0.01), compile=compile, **settings)


def assert_same_run(a, b):
    for key in ("loss", "smoothed_loss", "grad_norm"):
        np.testing.assert_array_equal(a.history[key], b.history[key], err_msg=key)
    assert a.history["eval"] == b.history["eval"]
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


@pytest.mark.parametrize("task, cell, model_options, options", CASES,
                         ids=[f"{c[0]}-{c[1].split(':')[-1]}-{i}" for i, c in enumerate(CASES)])
def test_compiled_training_equals_eager_training(task, cell, model_options, options):
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # no fallback, no CompileWarning
        # each made and trained in turn: dropout draws from the global generator make_trainer seeds
        eager = make_trainer(task, cell, dict(model_options), False, eval_every=3, **options)
        eager.train(6)
        compiled = make_trainer(task, cell, dict(model_options), True, eval_every=3, **options)
        compiled.train(6)
    assert not eager.compiled and compiled.compiled and compiled.compile_fallback is None
    assert compiled._compiled.traces == 1 and compiled._compiled.plan.nodes > 0
    assert_same_run(eager, compiled)


def test_a_resumed_compiled_run_equals_an_uninterrupted_one():
    straight = make_trainer("adding", "lstm", {}, True)
    straight.train(6)
    first = make_trainer("adding", "lstm", {}, True)
    first.train(3)
    model_state, optimizer_state, trainer_state = (first.model.state_dict(), first.optimizer.state_dict(),
                                                   first.state_dict())
    resumed = make_trainer("adding", "lstm", {}, True)
    resumed.model.load_state_dict(model_state)
    resumed.optimizer.load_state_dict(optimizer_state)
    resumed.load_state_dict(trainer_state)
    resumed.train(3)
    assert_same_run(straight, resumed)


class NumpyTargetSine(SineTask):
    """A user's task whose loss converts the targets with numpy (a copy the trace cannot see)."""

    def _sum_loss(self, outputs, targets):
        target = np.asarray(targets, dtype=np.float32).astype(np.float64)
        return tg.mse_loss(outputs, target, reduction="sum"), target.size


def test_a_plan_that_froze_an_input_falls_back_to_eager_steps_with_the_same_numbers():
    eager = make_trainer(NumpyTargetSine(), "rnn", {}, False)
    compiled = make_trainer(NumpyTargetSine(), "rnn", {}, True)
    eager.train(5)
    with pytest.warns(RuntimeWarning, match=r"Trainer: training with eager steps.*first replay differed "
                                            r"from the eager step on the same batch"):
        compiled.train(5)
    assert not compiled.compiled and "first replay differed" in compiled.compile_fallback
    assert_same_run(eager, compiled)


class ItemModelTask(SineTask):
    """A task whose loss reads a traced value into Python (a CompileWarning at trace time)."""

    def _sum_loss(self, outputs, targets):
        loss = tg.mse_loss(outputs, targets, reduction="sum")
        scale = 1.0 if loss.item() < 1e9 else 0.5      # Python deciding on a traced value
        return loss * scale, outputs.size


def test_a_trace_that_warns_falls_back_after_its_eager_step():
    eager = make_trainer(ItemModelTask(), "gru", {}, False)
    compiled = make_trainer(ItemModelTask(), "gru", {}, True)
    eager.train(4)
    with pytest.warns(RuntimeWarning, match=r"cannot be replayed as a plan: .*read 1 traced value"):
        compiled.train(4)
    assert not compiled.compiled
    assert_same_run(eager, compiled)


class GradOfTask(SineTask):
    """A task whose loss differentiates inside the step (grad_of): a trace refuses it."""

    def _sum_loss(self, outputs, targets):
        loss = tg.mse_loss(outputs, targets, reduction="sum")
        return loss, outputs.size

    def loss_terms(self, outputs, targets, lo, hi, steps):
        terms = super().loss_terms(outputs, targets, lo, hi, steps)
        tg.grad_of(terms[0], [outputs], retain_graph=True)
        return terms


def test_a_trace_the_recorder_refuses_runs_that_step_eagerly():
    eager = make_trainer(GradOfTask(), "rnn", {}, False)
    compiled = make_trainer(GradOfTask(), "rnn", {}, True)
    eager.train(3)
    with pytest.warns(RuntimeWarning, match=r"grad_of, grad and value_and_grad inside a compiled step"):
        compiled.train(3)
    assert not compiled.compiled
    assert_same_run(eager, compiled)


def test_nonfinite_updates_stop_or_skip_the_same_way_compiled():
    class Poisoned(SineTask):
        calls = 0

        def batch(self, rng, batch_size, seq_len):
            inputs, targets = super().batch(rng, batch_size, seq_len)
            self.calls += 1
            if self.calls in (2, 4):          # the checked first replay, and a plain replay
                inputs = inputs.copy()
                inputs[6:] = np.nan
            return inputs, targets
    runs = [make_trainer(Poisoned(), "lstm", {}, c, tbptt=4, skip_nonfinite=True) for c in (False, True)]
    for t in runs:
        t.train(6)
    assert runs[0].skipped_updates == runs[1].skipped_updates == 2 * 2   # steps 2 and 4: windows 2 and 3
    assert runs[1].compiled
    assert_same_run(*runs)
    stopping = [make_trainer(Poisoned(), "lstm", {}, c, tbptt=4) for c in (False, True)]
    messages = []
    for t in stopping:
        with pytest.raises(training.NonFiniteError) as info:
            t.train(6)
        messages.append(str(info.value))
        assert t.step == 1 and not t.at_step_boundary
    assert messages[0] == messages[1] and "step 2 (update 2 of 3): the loss is nan" in messages[0]


def test_the_command_line_default_and_no_compile_flag():
    try:
        training.set_default_compile(False)
        assert not make_trainer("sine", "rnn", {}, None).compiled
        training.set_default_compile(True)
        assert make_trainer("sine", "rnn", {}, None).compiled
    finally:
        training.set_default_compile(True)


class TwoShapeSine(SineTask):
    """Batches of two sizes, alternating: two plans, each checked on its first replay."""
    calls = 0

    def batch(self, rng, batch_size, seq_len):
        self.calls += 1
        return super().batch(rng, batch_size if self.calls % 2 else batch_size - 1, seq_len)


def test_each_batch_shape_gets_its_own_checked_plan():
    eager = make_trainer(TwoShapeSine(), "lstm", {}, False)
    eager.train(8)
    compiled = make_trainer(TwoShapeSine(), "lstm", {}, True)
    compiled.train(8)
    assert compiled.compiled and len(compiled._compiled.plans) == 2 and len(compiled._verified) == 2
    assert_same_run(eager, compiled)
