"""Tasks: embedded data, batch generators (deterministic under a seed, right statistics), losses, metrics."""
import configparser
import fnmatch
import pathlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from rnn_models.tasks import TASKS, AddingTask, CharsTask, CopyTask, SineTask, load_text, make_task

ROOT = pathlib.Path(__file__).resolve().parents[1]


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_batches_are_deterministic_under_a_seed(name):
    task = make_task(name)
    seq_len = task.default_seq_len
    a = task.batch(rng(3), 4, seq_len)
    b = task.batch(rng(3), 4, seq_len)
    c = task.batch(rng(4), 4, seq_len)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    e1, e2 = task.eval_batches(4, seq_len, 2), task.eval_batches(4, seq_len, 2)
    np.testing.assert_array_equal(e1[1][0], e2[1][0])


@pytest.mark.parametrize("name", sorted(TASKS))
def test_model_config_builds_a_model_whose_output_fits_the_loss(name):
    from rnn_models.models import build_model
    task = make_task(name)
    tg.manual_seed(0)
    model = build_model(task.model_config("gru", 6, 1))
    inputs, targets = task.batch(rng(), 3, task.min_seq_len + 2)
    outputs, _ = model(inputs)
    loss = task.loss(outputs, targets)
    assert loss.shape == () and np.isfinite(loss.item())
    assert isinstance(task.metric(outputs, targets), float)


# --- chars --------------------------------------------------------------------------------------------
def test_embedded_text_is_shipped_and_sized():
    text = load_text()
    size = len(text.encode("utf-8"))
    assert 30_000 <= size <= 200_000
    # setup.cfg's package_data pattern covers every shipped text
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    pattern = cfg["options.package_data"]["rnn_models"].strip()
    shipped = [p.relative_to(ROOT / "rnn_models").as_posix() for p in (ROOT / "rnn_models" / "data").iterdir()]
    assert shipped and all(fnmatch.fnmatch(p, pattern) for p in shipped)


def test_chars_batches_are_next_character_windows_of_the_training_split():
    task = CharsTask()
    assert task.vocab == "".join(sorted(set(task.text)))
    inputs, targets = task.batch(rng(1), 5, 12)
    assert inputs.shape == targets.shape == (12, 5) and inputs.dtype == np.int64
    np.testing.assert_array_equal(inputs[1:], targets[:-1])
    train_text = task.text[:len(task.train_ids)]
    for b in range(5):
        window = "".join(task.vocab[i] for i in inputs[:, b]) + task.vocab[targets[-1, b]]
        assert window in train_text
    val_text = task.text[len(task.train_ids):]
    (vx, vy), = task.eval_batches(2, 10, 1)
    assert "".join(task.vocab[i] for i in vx[:, 0]) in val_text


def test_chars_metric_and_loss():
    task = CharsTask(text="abcabcabcabcabcabcabcabc", val_fraction=0.25)
    inputs, targets = task.batch(rng(), 2, 4)
    perfect = np.full(targets.shape + (3,), -20.0)
    np.put_along_axis(perfect, targets[..., None], 20.0, axis=-1)
    assert task.metric(perfect, targets) == 1.0
    assert task.loss(tg.tensor(perfect), targets).item() < 1e-10
    uniform = tg.tensor(np.zeros(targets.shape + (3,)))
    assert task.loss(uniform, targets).item() == pytest.approx(np.log(3))


def test_chars_rejects_too_long_sequences_and_unknown_text():
    task = CharsTask(text="abcdefghij" * 3)
    with pytest.raises(ValueError, match="longer than the text"):
        task.batch(rng(), 2, 1000)
    with pytest.raises(ValueError, match="no embedded text 'missing.txt'"):
        load_text("missing.txt")


# --- adding -------------------------------------------------------------------------------------------
@given(st.integers(2, 30), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_adding_has_exactly_two_markers_one_per_half_and_sums_them(seq_len, batch, seed):
    inputs, targets = AddingTask().batch(rng(seed), batch, seq_len)
    assert inputs.shape == (seq_len, batch, 2) and targets.shape == (batch, 1)
    values, markers = inputs[..., 0], inputs[..., 1]
    assert set(np.unique(markers)) <= {0.0, 1.0}
    np.testing.assert_array_equal(markers.sum(0), 2)
    half = seq_len // 2
    np.testing.assert_array_equal(markers[:half].sum(0), 1)
    np.testing.assert_allclose(targets[:, 0], (values * markers).sum(0))
    assert values.min() >= 0 and values.max() < 1


def test_adding_statistics_match_the_trivial_baseline():
    """Predicting 1.0 scores MSE = Var(U + U) = 1/6: the number a model must beat."""
    inputs, targets = AddingTask().batch(rng(0), 40_000, 10)
    assert targets.mean() == pytest.approx(1.0, abs=0.01)
    assert ((targets - 1.0) ** 2).mean() == pytest.approx(1 / 6, abs=0.005)
    assert inputs[..., 0].mean() == pytest.approx(0.5, abs=0.01)


def test_adding_loss_is_only_at_the_end_and_mse():
    task = AddingTask()
    inputs, targets = task.batch(rng(), 4, 6)
    prediction = tg.tensor(np.ones((4, 1)))
    assert task.loss_terms(prediction, targets, 0, 3, 6) is None
    total, count = task.loss_terms(prediction, targets, 3, 6, 6)
    assert count == 4
    assert total.item() == pytest.approx(((targets - 1) ** 2).sum())
    assert task.loss(prediction, targets).item() == pytest.approx(((targets - 1) ** 2).mean())
    assert task.metric(targets + 0.01, targets) == 1.0 and task.metric(targets + 0.05, targets) == 0.0


# --- copy ---------------------------------------------------------------------------------------------
def test_copy_layout():
    task = CopyTask(copy_len=3)
    inputs, targets = task.batch(rng(2), 5, 10)
    assert inputs.shape == targets.shape == (10, 5)
    symbols = inputs[:3]
    assert symbols.min() >= 1 and symbols.max() <= 8
    np.testing.assert_array_equal(inputs[6], 9)                 # delimiter at T - n - 1
    np.testing.assert_array_equal(inputs[3:6], 0)
    np.testing.assert_array_equal(inputs[7:], 0)
    np.testing.assert_array_equal(targets[:7], 0)
    np.testing.assert_array_equal(targets[7:], symbols)
    logits = np.zeros((10, 5, 10))
    np.put_along_axis(logits, targets[..., None], 5.0, axis=-1)
    assert task.metric(logits, targets) == 1.0
    assert task.metric(np.zeros((10, 5, 10)), targets) == 0.0   # argmax -> blank, never a symbol


def test_copy_needs_room_for_the_symbols():
    with pytest.raises(ValueError, match="at least 11"):
        CopyTask(copy_len=5).batch(rng(), 2, 10)
    with pytest.raises(ValueError, match="copy_len must be a positive integer"):
        CopyTask(copy_len=0)


# --- sine ---------------------------------------------------------------------------------------------
def test_sine_targets_are_the_next_values():
    task = SineTask()
    inputs, targets = task.batch(rng(5), 6, 20)
    assert inputs.shape == targets.shape == (20, 6, 1)
    np.testing.assert_array_equal(inputs[1:], targets[:-1])
    assert np.abs(inputs).max() <= 1
    assert task.metric(targets, targets) == 0.0
    echo = np.concatenate([targets[:1], targets[:-1]])          # predict x_{t+1} = x_t
    assert task.metric(echo, targets) == pytest.approx(1.0)


# --- bad input ----------------------------------------------------------------------------------------
def test_unknown_task_and_bad_sizes():
    with pytest.raises(ValueError, match=r"unknown task 'music'.*adding.*chars.*copy.*sine"):
        make_task("music")
    with pytest.raises(ValueError, match="seq_len must be a positive integer, got 0"):
        SineTask().batch(rng(), 2, 0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got -1"):
        AddingTask().batch(rng(), -1, 5)
    with pytest.raises(ValueError, match="at least 2"):
        AddingTask().batch(rng(), 2, 1)


def test_task_config_round_trips():
    for task in (CharsTask(), AddingTask(), CopyTask(copy_len=4), SineTask()):
        again = make_task(task.config())
        assert type(again) is type(task) and again.config() == task.config()
    with pytest.raises(ValueError, match="custom text"):
        CharsTask(text="abcdefghijklmnop").config()
