"""`tinygraph train` never destroys work: a diverging run stops with one line (exit 2) and leaves the
last checkpoint as it was, --skip-nonfinite skips and counts, NaN/inf is never saved, a bad --save is
refused before the first step, and Ctrl-C saves the last whole step and exits 130 (resumable exactly)."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from rnn_models.checkpoint import load_checkpoint
from rnn_models.training import Trainer
from helpers import run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


TINY = ["--task", "sine", "--hidden", "4", "--seq-len", "6", "--batch-size", "2", "--quiet"]


@pytest.fixture
def any_lr(monkeypatch):
    """The CLI refuses --lr above 10 (tinygraph_app.limits); these tests need a run that diverges on
    its second step, so they widen the range and reach the non-finite path itself."""
    import tinygraph_app.train as train_command
    monkeypatch.setattr(train_command, "LEARNING_RATE", train_command.number(0, 1e300))


def test_a_diverging_run_stops_with_one_line_and_keeps_the_checkpoint(tmp_path, capsys, any_lr):
    path = tmp_path / "good.npz"
    assert run_cli(["train", *TINY, "--steps", "3", "--save", str(path)], capsys)[0] == 0
    before = path.read_bytes()
    code, out, err = run_cli(["train", *TINY, "--steps", "5", "--lr", "1e300", "--save", str(path)], capsys)
    assert code == 2 and "saved" not in out
    assert err.count("\n") == 1 and "Warning" not in err            # numpy's overflow warnings are not shown
    assert err.startswith("tinygraph train: error: step 2: the loss is ")
    assert f"No checkpoint was written; {str(path)!r} was not touched" in err
    assert "Lower --lr (now 1e+300) or --clip, or pass --skip-nonfinite" in err
    assert path.read_bytes() == before


def test_a_diverging_run_names_the_last_checkpoint_it_wrote(tmp_path, capsys, any_lr):
    path = tmp_path / "run.npz"
    code, _, err = run_cli(["train", *TINY, "--steps", "5", "--lr", "1e300", "--save-every", "1",
                            "--save", str(path)], capsys)
    assert code == 2 and f"The checkpoint {str(path)!r} (step 1) was left as it was" in err
    assert load_checkpoint(path).trainer_state["step"] == 1


def test_skip_nonfinite_on_the_command_line(tmp_path, capsys, any_lr):
    path = tmp_path / "run.npz"
    code, out, err = run_cli(["train", *TINY[:-1], "--steps", "4", "--lr", "1e300", "--skip-nonfinite",
                              "--log-every", "1", "--save", str(path)], capsys)
    assert code == 0, err
    assert "skipped 3 updates with a non-finite loss or gradient (--skip-nonfinite)" in out
    assert "skipped 3 non-finite" in out.splitlines()[-3]          # the progress line of step 4
    checkpoint = load_checkpoint(path)
    assert checkpoint.trainer_state["skipped_updates"] == 3
    assert all(np.isfinite(v).all() for v in checkpoint.model_state.values())


def test_the_final_save_refuses_nonfinite_parameters(tmp_path, capsys, monkeypatch):
    path = tmp_path / "run.npz"
    assert run_cli(["train", *TINY, "--steps", "1", "--save", str(path)], capsys)[0] == 0
    before = path.read_bytes()
    real = Trainer.train

    def overflowing(self, steps=None, time_limit=None):
        real(self, steps, time_limit)
        self.model.head.weight.data[0, 0] = np.inf      # an update that overflowed without a NaN loss
    monkeypatch.setattr(Trainer, "train", overflowing)
    code, _, err = run_cli(["train", *TINY, "--steps", "2", "--save", str(path)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "after step 2: NaN or inf in model/head.weight (1 of 4 values), so no checkpoint was written" in err
    assert "allow_nonfinite" not in err and path.read_bytes() == before


@pytest.mark.parametrize("save,message", [
    ("", "--save '': the path is empty"),
    ("{dir}", "is a directory; give a file name inside it"),
    ("{dir}/missing/run.npz", "does not exist; create it first"),
    ("{dir}/a_file/run.npz", "is not a directory"),
])
def test_a_bad_save_path_is_refused_before_the_first_step(save, message, tmp_path, capsys, monkeypatch):
    (tmp_path / "a_file").write_bytes(b"")
    monkeypatch.setattr(Trainer, "train", lambda *a, **k: pytest.fail("trained despite a bad --save"))
    code, out, err = run_cli(["train", *TINY, "--steps", "1", "--save", save.format(dir=tmp_path)], capsys)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


def interrupt_at(monkeypatch, step, times=1):
    """Send this process SIGINT (Ctrl-C) ``times`` times right after step ``step`` completes."""
    real = Trainer.train_step

    def train_step(self):
        record = real(self)
        if self.step == step:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
        return record
    monkeypatch.setattr(Trainer, "train_step", train_step)


def test_ctrl_c_saves_the_last_whole_step_and_exits_130(tmp_path, capsys, monkeypatch):
    common = [*TINY, "--tbptt", "3", "--seed", "4"]
    straight = tmp_path / "straight.npz"
    assert run_cli(["train", *common, "--steps", "6", "--save", str(straight)], capsys)[0] == 0
    path = tmp_path / "split.npz"
    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a pytest-xdist worker
    with monkeypatch.context() as patch:
        interrupt_at(patch, 2)
        code, out, err = run_cli(["train", *common, "--steps", "6", "--save", str(path)], capsys)
    assert code == 130 and "saved checkpoint" not in out
    assert "stopping after this step" in err
    assert err.splitlines()[-1] == f"tinygraph train: interrupted at step 2; saved checkpoint {path} (step 2)"
    assert signal.getsignal(signal.SIGINT) is before                          # the handler is put back
    assert run_cli(["train", *common, "--steps", "4", "--save", str(path), "--resume"], capsys)[0] == 0
    a, b = load_checkpoint(straight), load_checkpoint(path)
    for name, value in a.model_state.items():                              # resuming stayed exact
        np.testing.assert_array_equal(b.model_state[name], value, err_msg=name)


def test_a_second_ctrl_c_stops_at_once_without_saving(tmp_path, capsys, monkeypatch):
    path = tmp_path / "run.npz"
    interrupt_at(monkeypatch, 2, times=2)
    code, _, err = run_cli(["train", *TINY, "--steps", "5", "--save", str(path)], capsys)
    assert code == 130 and "interrupted again, at step 2; not saved, as asked" in err
    assert not path.exists() and os.listdir(tmp_path) == []


def test_ctrl_c_without_save(capsys, monkeypatch):
    interrupt_at(monkeypatch, 1)
    code, _, err = run_cli(["train", *TINY, "--steps", "5"], capsys)
    assert code == 130 and err.splitlines()[-1] == "tinygraph train: interrupted at step 1; nothing saved (no --save)"


def raise_in_update(monkeypatch, step, update=1):
    """KeyboardInterrupt raised (not a signal) at update ``update`` of step ``step`` (1-based), as the
    trainer sees it (a compiled trainer also runs the updates of its checked first replay)."""
    real = Trainer._update

    def patched(self, loss):
        if self.step + 1 == step and sum(self._in_step) + 1 == update:
            raise KeyboardInterrupt
        return real(self, loss)
    monkeypatch.setattr(Trainer, "_update", patched)


def test_an_interrupt_before_a_steps_first_update_saves_the_previous_step(tmp_path, capsys, monkeypatch):
    common = [*TINY, "--tbptt", "3"]        # two updates per step
    straight = tmp_path / "straight.npz"
    assert run_cli(["train", *common, "--steps", "4", "--save", str(straight)], capsys)[0] == 0
    path = tmp_path / "run.npz"
    with monkeypatch.context() as patch:
        raise_in_update(patch, 3)           # the first update of step 3
        code, _, err = run_cli(["train", *common, "--steps", "4", "--save", str(path)], capsys)
    assert code == 130 and f"interrupted at step 2; saved checkpoint {path} (step 2)" in err
    assert run_cli(["train", *common, "--steps", "2", "--save", str(path), "--resume"], capsys)[0] == 0
    for name, value in load_checkpoint(straight).model_state.items():
        np.testing.assert_array_equal(load_checkpoint(path).model_state[name], value, err_msg=name)


def test_an_interrupt_between_two_updates_of_a_step_does_not_save(tmp_path, capsys, monkeypatch):
    path = tmp_path / "run.npz"
    raise_in_update(monkeypatch, 3, 2)       # the second update of step 3
    code, _, err = run_cli(["train", *TINY, "--tbptt", "3", "--steps", "4", "--save-every", "1",
                            "--save", str(path)], capsys)
    assert code == 130
    assert "interrupted during step 3, after some of its updates; not saved, since the model is between" in err
    assert f"The checkpoint {str(path)!r} (step 2) was left as it was" in err
    assert load_checkpoint(path).trainer_state["step"] == 2


def test_an_interrupt_with_nonfinite_values_does_not_save(tmp_path, capsys, monkeypatch):
    path = tmp_path / "run.npz"
    real = Trainer.train_step

    def train_step(self):
        record = real(self)
        self.model.head.bias.data[:] = np.nan
        raise KeyboardInterrupt
    monkeypatch.setattr(Trainer, "train_step", train_step)
    code, _, err = run_cli(["train", *TINY, "--steps", "3", "--save", str(path)], capsys)
    assert code == 130 and "interrupted at step 1; not saved: the model holds NaN/inf values" in err
    assert not path.exists()


def test_ctrl_c_on_a_real_process(tmp_path):
    """The whole path, with a real SIGINT to `python -m tinygraph train`."""
    path = tmp_path / "run.npz"
    process = subprocess.Popen(
        [sys.executable, "-m", "tinygraph", "train", *TINY[:-1], "--steps", "100000", "--log-every", "1",
         "--save", str(path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if line.startswith("step 3/"):
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "saved checkpoint" in err.splitlines()[-1]
    step = load_checkpoint(path).trainer_state["step"]
    assert err.splitlines()[-1].endswith(f"(step {step})") and step >= 3
