"""The `tinygraph` command line. Each sub-command is a module with ``add_arguments(parser)`` and
``run(args) -> exit code``; bad input prints one clear line and exits with code 2 (never a traceback).

Exit codes: 0 done; 2 bad arguments, a bad or refused file, or (train) a NaN/inf loss or gradient that
stopped training; 130 interrupted (Ctrl-C; `train` saves a final checkpoint first when it can).
Every numeric flag has a range (``tinygraph_app.limits``), checked before any work; running out of
memory is one line too, naming the size flags that asked for it.
"""
import argparse
import importlib
import platform
import re
import sys

import numpy as np

import tinygraph
from tinygraph.errors import TinygraphError

from .extras import MissingDependencyError
from .limits import size_flags

# sub-command -> (module, one-line help)
COMMANDS = {
    "demo": ("tinygraph_app.demo", "run the main demo on the embedded default data"),
    "train": ("tinygraph_app.train", "train an RNN/LSTM/GRU on a task (chars, adding, copy, sine)"),
    "sample": ("tinygraph_app.sample", "generate text from a trained character-level model"),
    "render": ("tinygraph_app.render", "draw a recurrent net folded or unrolled (SVG/PNG/PDF/DOT)"),
    "gradflow": ("tinygraph_app.gradflow", "plot the gradient norm |dL/dh_t| against t (SVG)"),
    "experiment": ("tinygraph_app.experiment", "reproduce the textbook RNN results with numbers and SVGs"),
    "export": ("tinygraph_app.export", "write a trained model to an ONNX file (runs in onnxruntime)"),
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that keeps the docstrings' line breaks and ends each option's text with its default,
    ``(default: 64)``, unless the text already says what the default is or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default:" in text or action.default is None or action.default is False or \
                action.default == argparse.SUPPRESS or not action.option_strings:
            return text
        default = action.default
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with errors in one line (no usage block above them), exit code 2."""

    def error(self, message):
        """Print ``<prog>: error: <message>`` and exit with code 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def version():
    """``tinygraph 0.1.0 (numpy 2.4.0, Python 3.11.7)``: what ``--version`` prints."""
    return f"tinygraph {tinygraph.__version__} (numpy {np.__version__}, Python {platform.python_version()})"


def examples(doc):
    """The example command lines of a command's docstring: the ``  tinygraph ...`` lines of its
    ``Example:``/``Examples:`` paragraph, one command a line."""
    match = re.search(r"^Examples?:\n((?:  tinygraph .*(?:\n|$))+)", doc or "", flags=re.M)
    return [line.strip() for line in match.group(1).splitlines()] if match else []


def build_parser():
    """The ``tinygraph`` argparse parser, one sub-command per entry of ``COMMANDS``."""
    parser = ArgumentParser(prog="tinygraph", formatter_class=HelpFormatter,
                            description="Train, sample and draw recurrent nets on tinygraph, an exact "
                                        "autodiff engine with an explicit graph.")
    parser.add_argument("--version", action="version", version=version(),
                        help="print the versions of tinygraph, numpy and Python, and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=module.__doc__,
                                 formatter_class=HelpFormatter)
        module.add_arguments(command)
        command.set_defaults(run=module.run, size_flags=size_flags(command))
    first = [line for name in COMMANDS for line in examples(sub.choices[name].description)[:1]]
    parser.epilog = "Examples (each command's --help has more):\n" + "".join(f"  {line}\n" for line in first)
    return parser


def out_of_memory(args, exc):
    """One line for a MemoryError: numpy's words for it, and the size flags with their values."""
    asked = ", ".join(f"{flag} {getattr(args, dest)}" for flag, dest in args.size_flags
                      if getattr(args, dest, None) is not None)
    detail = f" ({exc})" if str(exc) else ""
    return (f"out of memory{detail}: {asked or 'this command'} asked for more memory than this "
            f"machine could give; try smaller values")


def one_line(exc):
    """An error's message on one line: its lines (dot's stderr can have several) joined by "; "."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def main(argv=None):
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit code (see
    the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (TinygraphError, ValueError, TypeError, KeyError, FileNotFoundError, OSError,
            MissingDependencyError) as exc:
        print(f"tinygraph {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        print(f"tinygraph {args.command}: error: {out_of_memory(args, exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tinygraph {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
