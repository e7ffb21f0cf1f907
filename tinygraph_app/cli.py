"""The `tinygraph` command line. Each sub-command is a module with ``add_arguments(parser)`` and
``run(args) -> exit code``; bad input prints one clear line and exits with code 2 (never a traceback).

Exit codes: 0 done; 2 bad arguments, a bad or refused file, or (train) a NaN/inf loss or gradient that
stopped training; 130 interrupted (Ctrl-C; `train` saves a final checkpoint first when it can).
"""
import argparse
import importlib
import sys

from tinygraph.errors import TinygraphError

# sub-command -> (module, one-line help)
COMMANDS = {
    "demo": ("tinygraph_app.demo", "run the main demo on the embedded default data"),
    "train": ("tinygraph_app.train", "train an RNN/LSTM/GRU on a task (chars, adding, copy, sine)"),
    "sample": ("tinygraph_app.sample", "generate text from a trained character-level model"),
    "render": ("tinygraph_app.render", "draw a recurrent net folded or unrolled (SVG/PNG/PDF/DOT)"),
    "gradflow": ("tinygraph_app.gradflow", "plot the gradient norm |dL/dh_t| against t (SVG)"),
    "experiment": ("tinygraph_app.experiment", "reproduce the textbook RNN results with numbers and SVGs"),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="tinygraph", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (TinygraphError, ValueError, TypeError, KeyError, FileNotFoundError, OSError) as exc:
        print(f"tinygraph {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tinygraph {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
