"""Every flag of every `tinygraph` command is checked before any work: a value outside its range, or
no number at all, is one line on stderr naming the flag, the value and the range, with exit code 2;
running out of memory is one line naming the size flags; the help states each default."""
import math
import os
import resource
import subprocess
import sys

import numpy as np
import pytest

from rnn_models.checkpoint import load_checkpoint, restore, save_checkpoint
from rnn_models.models import build_model as build_saved_model
from tinygraph_app import cli
from tinygraph_app.limits import Range

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARSER = cli.build_parser()
COMMANDS = PARSER._subparsers._group_actions[0].choices
# what each command needs besides the flag under test to get past argparse
REQUIRED = {"render": ["-o", "x.svg"], "gradflow": ["-o", "x.svg"], "sample": ["--load", "x.npz"],
            "experiment": ["gradients"]}


def run_cli(argv, capsys):
    """``main(argv)`` -> (exit code, stdout, stderr), argparse's exit counted as a return; never a
    traceback."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def ranged_flags():
    """(command, flag, Range) for every option of every command whose type is a Range."""
    return [(name, action.option_strings[-1], action.type)
            for name, parser in COMMANDS.items() for action in parser._actions
            if isinstance(action.type, Range)]


def bad_values(limits):
    """Values each flag must refuse: past each end, absurdly large, not finite, not a number."""
    step = 1 if limits.kind is int else max(limits.high * 1e-6, 1e-9)
    low = limits.low if limits.low_open else limits.low - step
    values = [low, limits.high + step, 10**12, -(10**12), "ten", "", "1.5x", "9" * 5000, "\x1b[31m"]
    if limits.kind is int:
        values += ["2.5", "1e3", "nan", "inf"]
    else:
        values += ["nan", "inf", "-inf", "1e400", "-1e400"]
    if limits.low > 0:
        values.append(limits.low / 2 if limits.kind is float else 0)
    return [str(v) for v in values]


CASES = [(command, flag, value) for command, flag, limits in ranged_flags() for value in bad_values(limits)]


def test_every_numeric_flag_has_a_finite_range():
    """A flag that takes a number takes it through a Range (so a new one cannot skip its bounds)."""
    for name, parser in COMMANDS.items():
        for action in parser._actions:
            numeric = isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
            assert action.type not in (int, float), (name, action.dest)
            if numeric or isinstance(action.type, Range):
                assert isinstance(action.type, Range), (name, action.dest)
                assert math.isfinite(action.type.low) and math.isfinite(action.type.high)
                if action.default is not None:
                    assert action.type.contains(action.default), (name, action.dest)
    assert len(ranged_flags()) >= 35


@pytest.mark.parametrize("command,flag,value", CASES, ids=[f"{c} {f} {v[:12]!r}" for c, f, v in CASES])
def test_a_value_out_of_range_is_one_line_naming_flag_value_and_range(command, flag, value, capsys):
    code, out, err = run_cli([command, f"{flag}={value}", *REQUIRED.get(command, [])], capsys)
    limits = next(r for c, f, r in ranged_flags() if (c, f) == (command, flag))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"tinygraph {command}: error: argument {flag}")
    assert limits.text in err and len(err) < 300
    if value and value.isprintable() and len(value) < 30:
        assert value in err


@pytest.mark.parametrize("argv,message", [
    (["render", "--timeout", "inf", "-o", "x.svg"], "argument --timeout: must be a number in (0, 3600], got inf"),
    (["render", "--timeout", "0", "-o", "x.svg"], "argument --timeout: must be a positive number, got 0 (the range is (0, 3600])"),
    (["train", "--seq-len", "1000000000"], "argument --seq-len: must be an integer in [1, 10000], got 1000000000"),
    (["train", "--batch-size", "1000000000"],
     "argument --batch-size: must be an integer in [1, 4096], got 1000000000"),
    (["train", "--hidden", "1000000"], "argument --hidden: must be an integer in [1, 2048], got 1000000"),
    (["train", "--layers", "100"], "argument --layers: must be an integer in [1, 8], got 100"),
    (["train", "--lr", "1e400"], "argument --lr: must be a number in (0, 10], got 1e400"),
    (["train", "--seed", "-1"], "argument --seed: must be an integer in [0, 4294967295], got -1"),
    (["render", "--steps", "1000000000", "-o", "x.svg"],
     "argument --steps: must be an integer in [1, 1000000], got 1000000000"),
    (["render", "--window", "0", "-o", "x.svg"], "argument --window: must be a positive integer, got 0 (the range is [1, 1000000])"),
    (["gradflow", "--steps", "1000000", "-o", "x.svg"],
     "argument --steps: must be an integer in [1, 10000], got 1000000"),
    (["sample", "--load", "x.npz", "--temperature", "1e-320"],
     "argument --temperature: must be a number in [0.001, 1000], got 1e-320"),
    (["sample", "--load", "x.npz", "--temperature", "nan"],
     "argument --temperature: must be a positive number, got nan (the range is [0.001, 1000])"),
    (["demo", "--seconds", "inf"], "argument --seconds: must be a number in (0, 3600], got inf"),
    (["experiment", "all", "--jobs", "1000"], "argument --jobs: must be an integer in [1, 64], got 1000"),
])
def test_the_reported_flags_are_refused_in_one_line(argv, message, capsys):
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and err == f"tinygraph {argv[0]}: error: {message}\n"


@pytest.mark.parametrize("name", ["pic.jpg", "pic.jpeg", "pic.svgz", "pic.txt", "pic", "pic.", "pic.svg.bak",
                                  ".hidden", "pic.SVG\x00"])
def test_render_refuses_an_output_suffix_it_cannot_write(name, capsys, tmp_path):
    code, _, err = run_cli(["render", "-o", str(tmp_path / name)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "argument -o/--output: the file name must end in .svg, .png, .pdf, .dot, .gv or .html" in err
    assert list(tmp_path.iterdir()) == []


def test_outputs_are_checked_before_any_work(capsys, tmp_path):
    code, _, err = run_cli(["render", "-o", str(tmp_path / "missing" / "pic.svg")], capsys)
    assert code == 2 and "argument -o/--output: directory" in err and "does not exist" in err
    code, _, err = run_cli(["gradflow", "-o", str(tmp_path / "g.png")], capsys)
    assert code == 2 and "argument -o/--output: the file name must end in .svg, got" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not __import__("shutil").which("dot"), reason="Graphviz `dot` not installed")
def test_render_writes_the_format_its_suffix_names(capsys, tmp_path):
    for suffix, start in ((".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF"), (".DOT", b"digraph")):
        path = tmp_path / f"pic{suffix}"
        assert run_cli(["render", "--view", "folded", "-o", str(path)], capsys)[0] == 0
        assert path.read_bytes().startswith(start), suffix


@pytest.mark.parametrize("argv,message", [
    (["render", "--window", "0:x"], "cannot read '0:x'"),
    (["render", "--window", "5:9"], "keeps none of the 4 time steps"),
    (["render", "--window", "7,0"], "index 7 in '7,0' is out of range for 4 time steps"),
    (["render", "--window", "::0"], "cannot read '::0'"),
])
def test_a_window_is_read_against_the_steps_before_any_work(argv, message, capsys, tmp_path, monkeypatch):
    import tinygraph_app.render as render
    monkeypatch.setattr(render, "build_model", lambda *a, **k: pytest.fail("built a model"))
    code, _, err = run_cli(argv + ["-o", str(tmp_path / "x.svg")], capsys)
    assert code == 2 and message in err and err.count("\n") == 1


def test_bounds_themselves_are_accepted(capsys, tmp_path):
    out = str(tmp_path / "x.dot")
    for argv in (["--seed", "4294967295"], ["--max-nodes", "10", "--steps", "6"], ["--max-nodes", "20000"],
                 ["--timeout", "3600"], ["--layers", "8", "--steps", "2"], ["--hidden", "1024", "--steps", "2"],
                 ["--batch", "1024", "--input-size", "1024", "--steps", "2"]):
        code, _, err = run_cli(["render", *argv, "-o", out], capsys)
        assert code == 0, (argv, err)


# --- out of memory ---------------------------------------------------------------------------------
def test_a_memory_error_names_the_size_flags(capsys, monkeypatch, tmp_path):
    import tinygraph_app.render as render

    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 7.45 TiB for an array with shape (1024, 1000000000)")
    monkeypatch.setattr(render, "unrolled_graph", too_big)
    code, _, err = run_cli(["render", "--hidden", "1024", "--batch", "512", "-o", str(tmp_path / "x.svg")],
                           capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("tinygraph render: error: out of memory (Unable to allocate 7.45 TiB")
    assert "--layers 1, --hidden 1024, --input-size 2, --batch 512" in err and "smaller values" in err
    monkeypatch.setattr(render, "unrolled_graph", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    code, _, err = run_cli(["render", "-o", str(tmp_path / "x.svg")], capsys)
    assert code == 2 and err.startswith("tinygraph render: error: out of memory: --layers 1")


def test_a_real_out_of_memory_in_train_is_one_line():
    """With its address space capped at 1.5 GiB, a batch of 4096 sequences of 2000 one-hot characters
    (3.9 GiB) fails as one line naming the flags, exit 2."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**29, 3 * 2**29))
    argv = ["train", "--hidden", "8", "--batch-size", "4096", "--seq-len", "2000", "--steps", "1", "--quiet"]
    done = subprocess.run([sys.executable, "-m", "tinygraph_app", *argv], cwd=ROOT, preexec_fn=cap,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("tinygraph train: error: out of memory (Unable to allocate")
    assert "--hidden 8, --layers 1, --seq-len 2000, --batch-size 4096" in done.stderr


def test_the_shell_sees_exit_code_2_and_one_line():
    for argv in (["render", "--steps", "1000000000", "-o", "x.svg"], ["render", "-o", "pic.jpg"]):
        done = subprocess.run([sys.executable, "-m", "tinygraph_app", *argv], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, argv


# --- sampling ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def char_checkpoint(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ckpt") / "chars.npz")
    assert cli.main(["train", "--hidden", "6", "--seq-len", "8", "--batch-size", "2", "--steps", "2",
                     "--quiet", "--save", path]) == 0
    return path


@pytest.mark.parametrize("temperature", ["0.001", "0.01", "1", "1000"])
def test_sampling_at_the_ends_of_the_temperature_range_gives_text(temperature, char_checkpoint, capsys):
    code, out, err = run_cli(["sample", "--load", char_checkpoint, "--prompt", "The ", "-n", "40",
                              "--temperature", temperature], capsys)
    vocab = set(build_saved_model(load_checkpoint(char_checkpoint).config["model"]).vocab)
    text = out[:-1]
    assert code == 0 and err == "" and text.startswith("The ") and len(text) == 44
    assert set(text) <= vocab


def test_sampling_a_checkpoint_holding_nan_is_refused(char_checkpoint, capsys, tmp_path):
    checkpoint = load_checkpoint(char_checkpoint)
    model = build_saved_model(checkpoint.config["model"])
    restore(checkpoint, model)
    name, parameter = next(iter(model.named_parameters()))
    parameter.data[...] = np.nan
    path = str(tmp_path / "nan.npz")
    save_checkpoint(path, model, config=checkpoint.config, allow_nonfinite=True)  # as a crafted file would
    code, out, err = run_cli(["sample", "--load", path], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "holds non-finite values (NaN or inf) in 1 parameter(s)" in err and name in err


# --- help ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_states_every_default(command):
    parser = COMMANDS[command]
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help, (command, action.dest)
        default = action.default
        if default is None or default is False:
            continue
        shown = ",".join(map(str, default)) if isinstance(default, list) else str(default)
        assert f"(default: {shown})" in text or f"(default: {shown}," in text, (command, action.dest)
        if isinstance(action.type, Range):
            assert action.type.text in text


def test_gradflow_help_shows_its_own_defaults():
    text = " ".join(COMMANDS["gradflow"].format_help().split())
    assert "time steps, [1, 10000] (default: 50)" in text and "hidden size, [1, 1024] (default: 16)" in text


def test_an_error_of_several_lines_is_printed_as_one(capsys, monkeypatch, tmp_path):
    import tinygraph_app.render as render

    def failing(*args, **kwargs):
        raise ValueError("dot failed to lay out the graph: Error: first\n  second line\n\n")
    monkeypatch.setattr(render, "build_model", failing)
    code, _, err = run_cli(["render", "-o", str(tmp_path / "x.svg")], capsys)
    assert code == 2 and err == ("tinygraph render: error: dot failed to lay out the graph: Error: first; "
                                 "second line\n")
