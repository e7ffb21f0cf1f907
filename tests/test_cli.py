"""`tinygraph train` and `tinygraph sample`: exit codes, messages (never a traceback), checkpoints, resume."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from rnn_models.checkpoint import load_checkpoint
from helpers import run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--hidden", "6", "--seq-len", "8", "--batch-size", "2", "--quiet"]


@pytest.mark.parametrize("task,cell,optim", [("chars", "lstm", "adam"), ("adding", "rnn", "sgd"),
                                             ("copy", "gru", "adagrad"), ("sine", "lstm", "sgd")])
def test_train_each_task(task, cell, optim, capsys, tmp_path):
    seq_len = "11" if task == "copy" else "8"
    path = tmp_path / "run.npz"
    code, out, err = run_cli(["train", "--task", task, "--cell", cell, "--optim", optim, "--steps", "2",
                              "--hidden", "5", "--seq-len", seq_len, "--batch-size", "2", "--tbptt", "4",
                              "--save", str(path)], capsys)
    assert code == 0, err
    assert "step 2/2" in out and f"task '{task}'" in out
    config = load_checkpoint(path).config
    assert config["task"]["name"] == task and config["model"]["cell"] == cell and config["optimizer"] == optim


@pytest.mark.parametrize("argv,message", [
    (["train", "--task", "music"], "argument --task: invalid choice: 'music'"),
    (["train", "--cell", "transformer"], "argument --cell: cell: unknown kind 'transformer'; choose one of rnn, lstm, gru"),
    (["train", "--optim", "lbfgs"], "argument --optim: invalid choice: 'lbfgs'"),
    (["train", "--hidden", "0"], "argument --hidden: must be a positive integer, got 0"),
    (["train", "--layers", "-1"], "argument --layers: must be a positive integer, got -1"),
    (["train", "--steps", "ten"], "argument --steps: must be a positive integer, got 'ten'"),
    (["train", "--seq-len", "0"], "argument --seq-len: must be a positive integer, got 0"),
    (["train", "--tbptt", "0"], "argument --tbptt: must be a positive integer, got 0"),
    (["train", "--lr", "0"], "argument --lr: must be a positive number, got 0"),
    (["train", "--clip", "-1"], "argument --clip: must be a positive number, got -1"),
    (["train", "--resume"], "--resume needs --save PATH"),
    (["train", "--task", "copy", "--seq-len", "5", "--steps", "1"], "seq_len must be at least 11, got 5"),
    (["sample"], "the following arguments are required: --load"),
    (["sample", "--load", "x.npz", "-n", "0"], "argument -n: must be a positive integer, got 0"),
    (["sample", "--load", "x.npz", "--temperature", "0"], "argument --temperature: must be a positive number"),
])
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert message in err


def test_missing_and_corrupt_checkpoints_exit_2(capsys, tmp_path):
    code, _, err = run_cli(["sample", "--load", str(tmp_path / "none.npz")], capsys)
    assert code == 2 and "none.npz' does not exist" in err
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00not a zip file at all" * 50)
    code, _, err = run_cli(["sample", "--load", str(garbage)], capsys)
    assert code == 2 and "truncated or corrupt" in err
    code, _, err = run_cli(["train", *TINY, "--steps", "1", "--save", str(garbage), "--resume"], capsys)
    assert code == 2 and "truncated or corrupt" in err
    assert garbage.read_bytes().startswith(b"\x00not a zip")  # a failed resume does not overwrite it
    code, _, err = run_cli(["train", *TINY, "--steps", "1", "--save", str(tmp_path / "new.npz"), "--resume"],
                           capsys)
    assert code == 2 and "new.npz' does not exist" in err


def test_train_save_sample(capsys, tmp_path):
    path = str(tmp_path / "chars.npz")
    code, out, _ = run_cli(["train", *TINY, "--steps", "3", "--save", path], capsys)
    assert code == 0 and "saved checkpoint" in out and "sample:" in out
    argv = ["sample", "--load", path, "--prompt", "The ", "-n", "30", "--seed", "4"]
    code, out, _ = run_cli(argv, capsys)
    assert code == 0
    text = out.rstrip("\n")
    assert text.startswith("The ") and len(text) == 34
    assert run_cli(argv, capsys)[1] == out                                   # same seed, same text
    assert run_cli(argv[:-1] + ["5"], capsys)[1] != out                      # another seed, another text
    code, _, err = run_cli(["sample", "--load", path, "--prompt", "The {}"], capsys)
    assert code == 2 and "'{}' ([\'{\', \'}\']) are not in the vocabulary" in err


def test_sample_needs_a_char_model(capsys, tmp_path):
    path = str(tmp_path / "sine.npz")
    assert run_cli(["train", "--task", "sine", *TINY, "--steps", "1", "--save", path], capsys)[0] == 0
    code, _, err = run_cli(["sample", "--load", path], capsys)
    assert code == 2 and "holds a SequenceModel model, not a CharRNN" in err


def test_resume_with_a_different_model_is_refused(capsys, tmp_path):
    path = str(tmp_path / "run.npz")
    assert run_cli(["train", *TINY, "--steps", "1", "--save", path], capsys)[0] == 0
    before = open(path, "rb").read()
    code, _, err = run_cli(["train", *TINY, "--hidden", "7", "--steps", "1", "--save", path, "--resume"], capsys)
    assert code == 2 and "model.hidden_size: checkpoint has 6, expected 7" in err
    code, _, err = run_cli(["train", *TINY, "--optim", "sgd", "--steps", "1", "--save", path, "--resume"], capsys)
    assert code == 2 and "optimizer: checkpoint has 'adam', expected 'sgd'" in err
    assert open(path, "rb").read() == before


def test_resume_continues_exactly(capsys, tmp_path):
    """train 5 steps == train 2, save, resume 3 (same parameters, optimiser state and losses)."""
    common = [*TINY, "--cell", "gru", "--layers", "2", "--tbptt", "4", "--seed", "3"]
    straight, split = str(tmp_path / "straight.npz"), str(tmp_path / "split.npz")
    assert run_cli(["train", *common, "--steps", "5", "--save", straight], capsys)[0] == 0
    assert run_cli(["train", *common, "--steps", "2", "--save", split], capsys)[0] == 0
    code, out, _ = run_cli(["train", *common, "--steps", "3", "--save", split, "--resume"], capsys)
    assert code == 0 and "from step 2" in out
    a, b = load_checkpoint(straight), load_checkpoint(split)
    assert a.model_state.keys() == b.model_state.keys()
    for name in a.model_state:
        np.testing.assert_array_equal(a.model_state[name], b.model_state[name], err_msg=name)
    for name, value in a.optimizer_state.items():
        np.testing.assert_array_equal(value, b.optimizer_state[name], err_msg=name)
    assert a.trainer_state["step"] == b.trainer_state["step"] == 5
    np.testing.assert_array_equal(a.trainer_state["history"]["loss"], b.trainer_state["history"]["loss"])


def test_save_every_writes_intermediate_checkpoints(capsys, tmp_path, monkeypatch):
    import tinygraph_app.train as train
    saved_steps = []
    real_save = train.save_checkpoint

    def spy(path, model, optimizer, config, trainer_state):
        saved_steps.append(trainer_state["step"])
        real_save(path, model, optimizer, config, trainer_state)
    monkeypatch.setattr(train, "save_checkpoint", spy)
    path = str(tmp_path / "run.npz")
    assert run_cli(["train", "--task", "sine", *TINY, "--steps", "5", "--save-every", "2", "--save", path],
                   capsys)[0] == 0
    assert saved_steps == [2, 4, 5]


def test_python_dash_m_tinygraph_train(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tinygraph", "train", "--task", "adding", "--steps", "2", "--hidden", "4",
         "--seq-len", "6", "--batch-size", "2", "--save", str(tmp_path / "a.npz")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "step 2/2" in result.stdout and (tmp_path / "a.npz").exists()
    bad = subprocess.run([sys.executable, "-m", "tinygraph", "train", "--cell", "lstn"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown kind 'lstn'" in bad.stderr and "Traceback" not in bad.stderr


def test_demo_runs_briefly(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the demo writes its pictures into ./out
    code, out, err = run_cli(["demo", "--seconds", "0.01", "--hidden", "8", "--cell", "rnn"], capsys)
    assert code == 0, err
    assert re.search(r"trained \d+ steps in .* loss 4\.\d+ -> ", out)   # starts near ln(vocab)
    assert "sample (temperature 0.7):\nThe keeper " in out


def test_keep_freed_memory_sets_glibc_malloc_where_there_is_one():
    """Best effort: True where glibc's mallopt exists (this project's Linux machines), False elsewhere,
    never an error."""
    import ctypes

    from tinygraph_app.train import keep_freed_memory
    try:
        has_mallopt = hasattr(ctypes.CDLL("libc.so.6"), "mallopt")
    except OSError:
        has_mallopt = False
    assert keep_freed_memory() is has_mallopt
