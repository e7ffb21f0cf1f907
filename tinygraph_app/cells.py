"""``--cell``: a kind from the cell registry (``rnn_models.CELL_KINDS``) or a user's own cell,
``package.module:ClassName`` (looked up from the current directory first, as ``python -m`` does)."""
import argparse
import os
import sys

from rnn_models.registry import CELL_KINDS, is_spec, resolve_cell

KINDS = tuple(CELL_KINDS)
HELP = (f"one of {', '.join(KINDS)}, or your own cell as package.module:ClassName (a tinygraph.nn.Module "
        f"taking (input_size, hidden_size))")


def cell_spec(text):
    """argparse type: a registry kind, or an importable ``package.module:ClassName`` Module class."""
    if is_spec(text) and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        resolve_cell(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
