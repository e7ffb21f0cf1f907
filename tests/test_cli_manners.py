"""The command line's manners: ``--version``; every option's help states the default argparse really
uses; examples laid out one command a line, each of which parses; a tqdm progress bar (rate, time
left) on a terminal and plain lines elsewhere; a missing optional dependency is one line naming what
to install, exit code 2. Every check walks whatever commands ``COMMANDS`` holds."""
import argparse
import ast
import configparser
import io
import os
import pathlib
import platform
import re
import shlex
import subprocess
import sys
import time

import numpy as np
import pytest

import tinygraph
from helpers import run_cli
from tinygraph_app.cli import COMMANDS, build_parser, examples
from tinygraph_app.progress import Progress

ROOT = pathlib.Path(__file__).resolve().parents[1]
VERSION = f"tinygraph {tinygraph.__version__} (numpy {np.__version__}, Python {platform.python_version()})"


def commands():
    """``{name: sub-parser}`` for every command in COMMANDS."""
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(sub.choices) == list(COMMANDS)
    return sub.choices


def cli(argv, block=(), path=None, cwd=None):
    """Run ``tinygraph argv`` in a fresh interpreter with the modules in ``block`` made unimportable
    (as after a ``pip install .`` without their extra) and, if given, ``PATH`` set to ``path``."""
    code = (f"import sys\nfor name in {list(block)!r}:\n    sys.modules[name] = None\n"
            f"from tinygraph_app.cli import main\nsys.exit(main({list(argv)!r}))")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if path is not None:
        env["PATH"] = str(path)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd or ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


# --- --version ----------------------------------------------------------------------------------------
def test_version_in_process(capsys):
    code, out, err = run_cli(["--version"], capsys)
    assert code == 0 and out == VERSION + "\n" and err == ""


@pytest.mark.parametrize("module", ["tinygraph", "tinygraph_app"])
def test_version_with_python_dash_m(module):
    result = subprocess.run([sys.executable, "-m", module, "--version"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert (result.returncode, result.stdout, result.stderr) == (0, VERSION + "\n", "")


# --- defaults in --help -------------------------------------------------------------------------------
def shown(value):
    """A default as the help writes it (lists comma-separated, as the flags take them)."""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def minimal_argv(command):
    """The fewest arguments ``command`` parses: a value for each required argument (a choice, or the
    first of a few file names its type accepts)."""
    argv = []
    for action in command._actions:
        if not (action.required or not action.option_strings) or action.nargs == 0:
            continue
        candidates = action.choices or ["x.svg", "x.npz", "x.onnx", "x.html", "1"]
        value = next(str(v) for v in candidates if _accepts(action, str(v)))
        argv += [action.option_strings[-1], value] if action.option_strings else [value]
    return argv


def _accepts(action, text):
    try:
        action.type(text) if callable(action.type) else text
        return True
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return False


def options(command):
    """The options whose help a user reads for a default (not -h, not flags without a value)."""
    return [a for a in command._actions if a.option_strings and a.nargs != 0 and
            not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_option_states_the_default_argparse_uses(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # the output-file types check the directory of x.svg
    monkeypatch.setenv("COLUMNS", "1000")   # help unwrapped (argparse breaks lines at hyphens too)
    command = commands()[name]
    used = vars(command.parse_args(minimal_argv(command)))
    page = " ".join(command.format_help().split())
    formatter = command._get_formatter()
    for action in options(command):
        text = " ".join(formatter._expand_help(action).split())
        assert text in page, (name, action.dest)                   # what is checked is what --help prints
        stated = re.findall(r"\(default: ([^)]*)\)", text)
        if action.required:
            assert not stated, (name, action.dest, text)
            continue
        assert len(stated) == 1, f"{name} {action.option_strings[-1]}: help states no default: {text!r}"
        value = used[action.dest]
        number = re.match(r"-?\d+(\.\d+)?(e-?\d+)?\b", stated[0])
        if value is None:   # what happens without the flag, in words; never a number
            assert number is None, (name, action.dest, stated[0])
        elif number and not isinstance(value, (list, tuple)):   # the help's own words start with it
            assert float(number.group()) == float(value), (name, action.dest, stated[0], value)
        else:
            assert stated[0] == shown(value), (name, action.dest, stated[0], value)


def test_gradflow_help_states_its_own_defaults_not_renders(tmp_path, monkeypatch):
    """The issue's case: gradflow shares render's model flags but overrides their defaults."""
    monkeypatch.chdir(tmp_path)
    command = commands()["gradflow"]
    args = command.parse_args(["-o", "g.svg"])
    assert (args.steps, args.hidden, args.input_size) == (50, 16, 4)
    page = " ".join(command.format_help().split())
    assert "time steps, [1, 10000] (default: 50)" in page and "hidden size, [1, 1024] (default: 16)" in page
    assert "(default: 4)" not in page.replace("input size, [1, 1024] (default: 4)", "")


# --- examples -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_shows_examples_one_a_line_that_parse(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = commands()[name]
    lines = examples(command.description)
    assert lines, f"tinygraph {name} --help shows no examples"
    page = command.format_help()
    for line in lines:
        assert f"\n  {line}\n" in page                           # on a line of its own, indented
        words = shlex.split(line)
        assert words[:2] == ["tinygraph", name], line
        assert build_parser().parse_args(words[1:]).command == name, line


def test_the_top_level_help_shows_one_example_per_command():
    page = build_parser().format_help()
    assert "--version" in page and "Examples" in page
    for name, command in commands().items():
        assert f"\n  {examples(command.description)[0]}\n" in page, name


def readme_commands():
    """The ``tinygraph ...`` command lines of the README's sh blocks (continuations joined)."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    lines = " ".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.strip().startswith("tinygraph ")]


def test_the_readme_command_lines_parse(tmp_path, monkeypatch, capsys):
    found = readme_commands()
    assert len(found) >= 10
    monkeypatch.chdir(ROOT)   # the examples/ cells resolve from here
    for words in found:
        if "-o" in words:     # an output file's directory is checked: write into tmp_path
            i = words.index("-o") + 1
            words[i] = str(tmp_path / os.path.basename(words[i]))
        if {"--help", "--version"} & set(words):
            with pytest.raises(SystemExit) as exit_:
                build_parser().parse_args(words[1:])
            assert exit_.value.code == 0, words
        else:
            assert build_parser().parse_args(words[1:]).command == words[1], words
    assert VERSION in capsys.readouterr().out


# --- progress -----------------------------------------------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self):
        return True


def record(step, total=None, **extra):
    return {"step": step, "total_steps": total, "loss": 2.5 - step / 10, "smoothed_loss": 2.6 - step / 20,
            "grad_norm": 0.5, "elapsed": step / 10, "skipped": 0, "skipped_total": 0, **extra}


def test_a_terminal_gets_a_bar_with_rate_and_time_left_and_evaluations_above_it():
    out, bar = io.StringIO(), Terminal()
    with Progress(4, every=1, stream=out, bar_stream=bar) as progress:
        progress(record(1, 4))
        time.sleep(0.15)   # past tqdm's refresh interval: the bar is redrawn with a measured rate
        progress(record(2, 4, eval={"loss": 2.25, "accuracy": 0.5}))
        time.sleep(0.15)
        progress(record(3, 4))
        progress(record(4, 4))
    shown_bar = bar.getvalue()
    assert re.search(r" 2/4 \[00:00<00:0\d, +\d+\.\d\d steps/s, loss 2\.3000, smoothed 2\.5000, "
                     r"\|grad\| 0\.5\]", shown_bar), shown_bar                 # rate and time left
    assert "100%" in shown_bar and " 4/4 " in shown_bar and shown_bar.endswith("\n")   # closed at the end
    assert "\r" in shown_bar
    assert out.getvalue() == "step 2/4  loss 2.3000  smoothed 2.5000  |grad| 0.5  0.2s  eval loss 2.2500  " \
                             "eval accuracy 0.5000\n"                          # only the evaluation


def test_a_time_limited_run_shows_steps_and_rate_until_its_end_is_known():
    bar = Terminal()
    progress = Progress(stream=io.StringIO(), bar_stream=bar)
    progress(record(1))
    time.sleep(0.15)
    progress(record(2))
    assert re.search(r"2 steps \[00:00, +\d+\.\d\d steps/s, loss", bar.getvalue()), bar.getvalue()
    progress(record(3, 3))                                 # out of time: the last step names the end
    assert progress.bar is None and "100%" in bar.getvalue() and " 3/3 " in bar.getvalue()


def test_off_a_terminal_plain_lines_every_n_steps_with_no_carriage_return():
    out, err = io.StringIO(), io.StringIO()
    progress = Progress(5, every=2, stream=out, bar_stream=err)
    for step in range(1, 6):
        progress(record(step, 5, **({"eval": {"loss": 1.0}} if step == 3 else {})))
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["2/5", "3/5", "4/5", "5/5"]
    assert "\r" not in out.getvalue() and err.getvalue() == ""


def test_a_resumed_run_counts_on_from_its_first_step():
    out = io.StringIO()
    progress = Progress(3, every=1, stream=out, bar_stream=io.StringIO())
    for step in (11, 12, 13):
        progress(record(step, 13))
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["11/13", "12/13", "13/13"]


def test_skipped_updates_are_shown():
    out = io.StringIO()
    Progress(1, stream=out, bar_stream=io.StringIO())(record(1, 1, skipped_total=2))
    assert "skipped 2 non-finite" in out.getvalue()


def test_train_off_a_terminal_prints_lines_of_the_whole_run(capsys, tmp_path):
    """Chunks of --save-every train in pieces; the lines still count to --steps, without \\r."""
    code, out, err = run_cli(["train", "--task", "sine", "--hidden", "4", "--seq-len", "6", "--batch-size",
                              "2", "--steps", "4", "--save-every", "2", "--log-every", "1",
                              "--save", str(tmp_path / "s.npz")], capsys)
    assert code == 0 and err == ""
    steps = [line.split()[1] for line in out.splitlines() if line.startswith("step ")]
    assert steps == ["1/4", "2/4", "3/4", "4/4"] and "\r" not in out


def test_train_on_a_terminal_draws_the_bar_on_stderr(monkeypatch):
    out, err = io.StringIO(), Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    from tinygraph_app.cli import main
    assert main(["train", "--task", "sine", "--hidden", "4", "--seq-len", "6", "--batch-size", "2",
                 "--steps", "3", "--eval-every", "3"]) == 0
    assert re.search(r"100%\|.*\| 3/3 \[\d\d:\d\d<00:00, +\d+\.\d\d steps/s, loss ", err.getvalue())
    assert "\r" not in out.getvalue()
    assert [line.split()[1] for line in out.getvalue().splitlines() if line.startswith("step ")] == ["3/3"]


def test_quiet_means_no_bar_and_no_lines(monkeypatch):
    out, err = io.StringIO(), Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    from tinygraph_app.cli import main
    assert main(["train", "--task", "sine", "--hidden", "4", "--seq-len", "6", "--batch-size", "2",
                 "--steps", "2", "--quiet"]) == 0
    assert err.getvalue() == "" and not re.search(r"^step \d", out.getvalue(), flags=re.M)


# --- missing optional dependencies ------------------------------------------------------------------
PLOT = "pip install 'tinygraph[plot]'"


@pytest.mark.parametrize("argv,message", [
    (["gradflow", "--steps", "3", "-o", "g.svg"],
     f"tinygraph gradflow: error: the plot needs matplotlib: {PLOT}"),
    (["experiment", "gradients", "--quick", "--out", "exp"],
     f"tinygraph experiment: error: every experiment needs matplotlib: {PLOT}"),
])
def test_without_matplotlib_one_line_names_the_extra(argv, message, tmp_path):
    result = cli(argv, block=["matplotlib"], cwd=tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (2, message + "\n", "")
    assert list(tmp_path.iterdir()) == []                       # refused before any work


def test_a_broken_optional_module_says_why(tmp_path):
    """matplotlib present but failing to import (a dependency of its own missing) is named as such."""
    fake = tmp_path / "matplotlib"
    fake.mkdir()
    (fake / "__init__.py").write_text("import kiwisolver_that_is_not_installed\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from tinygraph_app.cli import main; "
            "sys.exit(main(['gradflow', '-o', 'g.svg']))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert ("the plot needs matplotlib (it is installed but its import failed: No module named "
            "'kiwisolver_that_is_not_installed')") in result.stderr and PLOT in result.stderr


@pytest.mark.parametrize("argv,what,instead", [
    (["render", "--cell", "lstm", "--steps", "2", "-o", "p.svg"], "the .svg picture", "-o p.dot"),
    (["render", "--steps", "2", "-o", "p.html"], "the .html explorer", "-o p.dot"),
    (["experiment", "chars", "--quick", "--out", "exp"], "experiment chars",
     "run the other experiments (gradients, clipping, adding)"),
])
def test_without_graphviz_one_line_says_how_to_install_it(argv, what, instead, tmp_path):
    result = cli(argv, path=tmp_path / "bin", cwd=tmp_path)   # a PATH without `dot`
    assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1
    line = result.stderr
    assert line.startswith(f"tinygraph {argv[0]}: error: {what}") and "needs Graphviz's `dot` program" in line
    assert "sudo apt-get install graphviz" in line and instead in line
    assert list(tmp_path.iterdir()) == []


def test_without_graphviz_dot_text_and_the_demo_still_work(tmp_path):
    result = cli(["render", "--steps", "2", "-o", "p.dot"], path=tmp_path / "bin", cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / "p.dot").read_text().startswith("digraph")


def test_the_demo_without_matplotlib_or_graphviz_skips_what_it_cannot_draw(tmp_path):
    result = cli(["demo", "--seconds", "0.01", "--hidden", "8", "--cell", "rnn"], block=["matplotlib"],
                 path=tmp_path / "bin", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    note = f"  note: plotting the gradient flow and the loss needs matplotlib: {PLOT}; skipped\n"
    assert note in result.stdout
    assert "writing .dot files instead" in result.stdout and (tmp_path / "out" / "rnn_unrolled.dot").exists()
    assert not list((tmp_path / "out").glob("*.svg")) and "Traceback" not in result.stderr


def test_every_optional_import_the_cli_can_reach_is_checked_with_require():
    """The packages the CLI runs import nothing beyond the standard library, themselves and the
    install requirements, except modules ``tinygraph.extras.require`` checks before the work (in the
    command, or in the library function that needs it, like ``to_torch``)."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    required = {re.split(r"[<>=!~ \[]", line.strip())[0].lower()
                for line in config["options"]["install_requires"].strip().splitlines()}
    ours = {"tinygraph", "rnn_models", "visualize", "tinygraph_app"}
    # tinygraph itself imports numpy only (tests/test_imports.py), hypothesis in tinygraph.testing for tests
    optional = {}
    for package in ("rnn_models", "visualize", "tinygraph_app"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
                for root in {name.split(".")[0] for name in names}:
                    if root not in sys.stdlib_module_names | ours | required:
                        optional.setdefault(root, path.relative_to(ROOT))
    assert "matplotlib" in optional                                 # the walk finds the one we know
    code = "".join(p.read_text() for package in ("rnn_models", "tinygraph_app")
                   for p in sorted((ROOT / package).rglob("*.py")))
    unchecked = {name: str(path) for name, path in optional.items() if f'require("{name}"' not in code}
    assert not unchecked, f"optional imports no command checks with extras.require: {unchecked}"
