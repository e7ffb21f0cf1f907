"""Checkpoints: round trip without pickle, atomic writes, clear errors for corrupt or mismatched files,
and resuming a Trainer bit-for-bit."""
import json
import os

import numpy as np
import pytest

import tinygraph as tg
from rnn_models import checkpoint as ckpt
from rnn_models.checkpoint import CheckpointError, check_config, load_checkpoint, restore, save_checkpoint
from rnn_models.models import CharRNN, SequenceModel
from rnn_models.tasks import CharsTask, SineTask
from rnn_models.training import Trainer, make_optimizer


def small_model(hidden=4, layers=1):
    tg.manual_seed(0)
    return SequenceModel("lstm", 2, hidden, 1, num_layers=layers)


def trained(hidden=4, optim="adam"):
    """A model and optimiser with non-trivial state (two optimiser steps)."""
    m = small_model(hidden)
    opt = make_optimizer(optim, m.parameters(), 0.1)
    x = np.random.default_rng(0).standard_normal((3, 2, 2))
    for _ in range(2):
        opt.zero_grad()
        m(x)[0].sum().backward()
        opt.step()
    return m, opt


def assert_same_tree(a, b, exact_types=True):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same_tree(a[k], b[k], exact_types)
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tree(x, y, exact_types)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b and (type(a) is type(b) or not exact_types)


def test_round_trip(tmp_path):
    m, opt = trained()
    config = {"model": m.config(), "note": "ünïcode", "lr": 0.1}
    trainer_state = {"step": 7, "rng": np.random.default_rng(5).bit_generator.state,
                     "history": {"loss": np.array([1.5, 1.25])}, "pair": (1, 2.5), "by_id": {0: "a", 3: [1]}}
    path = tmp_path / "model.npz"
    save_checkpoint(path, m, opt, config, trainer_state)
    loaded = load_checkpoint(path)
    assert loaded.config == config
    assert_same_tree(loaded.model_state, m.state_dict())
    assert_same_tree(loaded.optimizer_state, opt.state_dict())
    assert_same_tree(loaded.trainer_state, trainer_state)

    fresh = small_model()
    fresh_opt = make_optimizer("adam", fresh.parameters(), 0.5)
    restore(loaded, fresh, fresh_opt)
    assert_same_tree(fresh.state_dict(), m.state_dict())
    assert_same_tree(fresh_opt.state_dict(), opt.state_dict(), exact_types=False)  # 0 may become 0.0


def test_files_load_without_pickle(tmp_path):
    m, opt = trained()
    path = tmp_path / "c.npz"
    save_checkpoint(path, m, opt, {"a": 1})
    with np.load(path, allow_pickle=False) as archive:
        arrays = [archive[name] for name in archive.files]
    assert all(a.dtype.kind in "biuf" for a in arrays)
    meta = json.loads(dict(zip(np.load(path).files, arrays))["__meta__"].tobytes())
    assert meta["format"] == "tinygraph-checkpoint" and meta["config"] == {"a": 1}


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    m, opt = trained()
    path = tmp_path / "c.npz"
    save_checkpoint(path, m, opt, {"version": 1})
    before = path.read_bytes()

    def disk_full(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ckpt.np, "savez", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, m, opt, {"version": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path).config == {"version": 1}
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]  # no temporary file left behind


def test_unsupported_values_fail_before_anything_is_written(tmp_path):
    m, opt = trained()
    path = tmp_path / "c.npz"
    with pytest.raises(TypeError, match="cannot store a set at trainer"):
        save_checkpoint(path, m, opt, {}, {"seen": {1, 2}})
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(path, m, opt, {"fn": print})
    assert not path.exists()


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.9, 0.999])
def test_truncated_file(tmp_path, keep):
    m, opt = trained()
    path = tmp_path / "c.npz"
    save_checkpoint(path, m, opt, {"a": 1}, {"step": 3})
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"c\.npz.*(truncated or corrupt|missing)"):
        load_checkpoint(path)


def test_garbage_and_foreign_files(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError, match="garbage.npz' is truncated or corrupt"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones(3))
    with pytest.raises(CheckpointError, match="no __meta__ entry"):
        load_checkpoint(foreign)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __meta__=np.array([{"format": "tinygraph-checkpoint"}], dtype=object))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):  # refuses to unpickle
        load_checkpoint(pickled)
    bad_meta = tmp_path / "bad_meta.npz"
    np.savez(bad_meta, __meta__=np.frombuffer(b"{not json", dtype=np.uint8))
    with pytest.raises(CheckpointError, match="metadata is corrupt"):
        load_checkpoint(bad_meta)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere.npz")


def test_missing_entries_are_named(tmp_path):
    m, opt = trained()
    path = tmp_path / "c.npz"
    save_checkpoint(path, m, opt, {})
    with np.load(path) as archive:
        entries = {k: archive[k] for k in archive.files}
    del entries["model/rnn.weight_hh_l0"]
    np.savez(path, **entries)
    with pytest.raises(CheckpointError, match=r"missing model entries \['rnn.weight_hh_l0'\]"):
        load_checkpoint(path)
    entries["model/rnn.weight_hh_l0"] = m.rnn.weight_hh_l0.data
    del entries["optimizer/state.0.exp_avg"]
    np.savez(path, **entries)
    with pytest.raises(CheckpointError, match="missing the array entry 'optimizer/state.0.exp_avg'"):
        load_checkpoint(path)


def test_wrong_shapes_and_missing_keys_name_the_parameters(tmp_path):
    m, opt = trained(hidden=4)
    path = tmp_path / "c.npz"
    save_checkpoint(path, m, opt, {})
    loaded = load_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"does not fit.*rnn.weight_ih_l0.*\(24, 2\).*\(16, 2\)"):
        restore(loaded, small_model(hidden=6))
    with pytest.raises(CheckpointError, match=r"missing keys \['rnn.weight_ih_l1'"):
        restore(loaded, small_model(layers=2))
    untouched = small_model(hidden=6)
    before = untouched.state_dict()
    with pytest.raises(CheckpointError):
        restore(loaded, untouched)
    assert_same_tree(untouched.state_dict(), before)  # nothing half-loaded


def test_optimizer_mismatch(tmp_path):
    m, opt = trained(optim="adam")
    path = tmp_path / "c.npz"
    save_checkpoint(path, m, opt, {})
    with pytest.raises(CheckpointError, match="optimiser state does not fit SGD"):
        restore(load_checkpoint(path), m, make_optimizer("sgd", m.parameters(), 0.1))
    save_checkpoint(path, m, None, {})
    with pytest.raises(CheckpointError, match="holds no optimiser state"):
        restore(load_checkpoint(path), m, opt)


def test_a_config_for_a_different_model_is_named(tmp_path):
    m, opt = trained(hidden=4)
    path = tmp_path / "c.npz"
    save_checkpoint(path, m, opt, {"task": {"name": "sine"}, "model": m.config(), "lr": 0.1})
    loaded = load_checkpoint(path)
    other = small_model(hidden=8).config()
    with pytest.raises(CheckpointError, match="model.hidden_size: checkpoint has 4, expected 8"):
        check_config(loaded, {"task": {"name": "sine"}, "model": other}, keys=("task", "model"))
    with pytest.raises(CheckpointError, match="task.name: checkpoint has 'sine', expected 'adding'"):
        check_config(loaded, {"task": {"name": "adding"}, "model": m.config()}, keys=("task", "model"))
    check_config(loaded, {"task": {"name": "sine"}, "model": m.config(), "lr": 1.0}, keys=("task", "model"))


# --- resuming ----------------------------------------------------------------------------------------------
def chars_trainer(seed=0):
    """A 2-layer CharRNN with dropout, so resuming must also restore the global generator."""
    task = CharsTask()
    tg.manual_seed(seed)
    m = CharRNN(task.vocab, 6, cell="gru", num_layers=2, dropout=0.3)
    opt = make_optimizer("adam", m.parameters(), 1e-2)
    return Trainer(m, task, opt, batch_size=2, seq_len=8, tbptt=4, clip=1.0, seed=seed)


@pytest.mark.parametrize("make", [chars_trainer, lambda: sine_trainer("adagrad")])
def test_train_save_resume_equals_uninterrupted_training(tmp_path, make):
    straight = make()
    straight.train(5)

    first = make()
    first.train(2)
    path = tmp_path / "run.npz"
    save_checkpoint(path, first.model, first.optimizer, {"k": 1}, first.state_dict())
    tg.manual_seed(999)  # a different process would start from a different global state
    resumed = make()
    loaded = load_checkpoint(path)
    restore(loaded, resumed.model, resumed.optimizer)
    resumed.load_state_dict(loaded.trainer_state)
    resumed.train(3)

    assert resumed.step == straight.step == 5
    assert resumed.history["loss"] == straight.history["loss"]
    assert resumed.history["smoothed_loss"] == straight.history["smoothed_loss"]
    for name, value in straight.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[name], value, err_msg=name)


def sine_trainer(optim):
    tg.manual_seed(1)
    m = SequenceModel("lstm", 1, 5, 1)
    return Trainer(m, SineTask(), make_optimizer(optim, m.parameters(), 0.05), batch_size=3, seq_len=6,
                   seed=1)


def test_corrupt_trainer_state_is_reported():
    t = sine_trainer("sgd")
    with pytest.raises(ValueError, match="trainer state is incomplete or corrupt"):
        t.load_state_dict({"step": 1})
