"""The one registry of cell kinds: the layers, the CLI's ``--cell`` choices, the demo and the experiments
all read it.

A cell is named either by its kind (``"rnn"``, ``"lstm"``, ``"gru"``: the layer class with our cell)
or as ``"package.module:ClassName"``, a ``tinygraph.nn.Module`` subclass following the cell protocol
(``rnn_models.recurrent``) whose constructor takes ``(input_size, hidden_size)``. Such a spec is
JSON-able, so it travels in a model's ``config()`` and a checkpoint: loading the checkpoint imports
the module again (only a Module subclass is accepted, so a spec cannot name an arbitrary function).

Adding a built-in kind is one entry here (a ``RecurrentLayer`` subclass with ``kind`` and
``cell_type``).
"""
import importlib
import inspect

import numpy as np

from tinygraph.nn import Module

from .layers import GRU, LSTM, RNN, RecurrentLayer

CELL_KINDS = {layer.kind: layer for layer in (RNN, LSTM, GRU)}
"""``{"rnn": RNN, "lstm": LSTM, "gru": GRU}``: the built-in cell kinds, by the name ``--cell`` and
``make_layer`` take, and the layer class of each."""


def is_spec(name):
    """True for ``"package.module:ClassName"``."""
    return isinstance(name, str) and ":" in name


def resolve_cell(spec):
    """The cell class a ``"package.module:ClassName"`` spec names, or a kind's cell class.

    Raises ``ValueError`` naming the spec and what is wrong (unknown kind, module not importable,
    no such attribute, not a Module subclass).
    """
    if not isinstance(spec, str):
        raise ValueError(f"cell: expected a kind ({', '.join(CELL_KINDS)}) or 'package.module:ClassName', "
                         f"got {type(spec).__name__}")
    if spec in CELL_KINDS:
        return CELL_KINDS[spec].cell_type
    if not is_spec(spec):
        raise ValueError(f"cell: unknown kind {spec!r}; choose one of {', '.join(CELL_KINDS)}, or name "
                         f"your own cell as 'package.module:ClassName'")
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"cell: {spec!r} is not of the form 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cell: cannot import module {module_name!r} for {spec!r} ({exc}); is it on "
                         f"the Python path (the current directory is, for the command line)?") from None
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"cell: module {module_name!r} has no attribute {attr!r}")
    if not (inspect.isclass(obj) and issubclass(obj, Module)):
        raise ValueError(f"cell: {spec!r} is {type(obj).__name__}, not a tinygraph.nn.Module subclass; a "
                         f"cell named on the command line or in a config must be a Module class taking "
                         f"(input_size, hidden_size)")
    return obj


def make_layer(cell, input_size, hidden_size, num_layers=1, dropout=0.0, bidirectional=False,
               dtype=np.float64, nonlinearity=None, batch_first=False):
    """The recurrent layer for ``cell`` (a kind or a spec, see the module docstring).

    A kind gives its layer class (``nonlinearity`` only for "rnn"); a spec gives a ``RecurrentLayer``
    over the named class, its parameters cast to ``dtype``.
    """
    common = dict(num_layers=num_layers, dropout=dropout, bidirectional=bidirectional,
                  batch_first=batch_first)
    if cell in CELL_KINDS:
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" and nonlinearity is not None else {}
        return CELL_KINDS[cell](input_size, hidden_size, dtype=dtype, **common, **extra)
    factory = resolve_cell(cell)
    layer = RecurrentLayer(factory, input_size, hidden_size, kind=factory.__name__, **common)
    if layer.dtype != np.dtype(dtype):
        layer.to(dtype)
    return layer
