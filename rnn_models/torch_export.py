"""``to_torch(model)``: an equivalent ``torch.nn.Module`` with the model's weights, for moving to PyTorch.

======================================  ===============================================================
ours                                    the torch module
======================================  ===============================================================
``RNN``, ``LSTM``, ``GRU``              ``torch.nn.RNN``/``LSTM``/``GRU`` (same options and names)
``RNN(nonlinearity="sigmoid")``,        ``TracedRecurrentLayer``: the cell's step traced into a
``RecurrentLayer`` of any cell          ``StepProgram`` and run with torch functions, layer by layer
``SequenceModel``, ``CharRNN``          ``TorchSequenceModel``/``TorchCharRNN`` (rnn_models.torch_modules)
======================================  ===============================================================

The torch module computes what ours computes — forward outputs, final states and every gradient agree
to 1e-10 in float64 (tests/test_torch_export.py) — with our ``state_dict`` names, so a state dict goes
either way: ``torch_model.load_state_dict(safetensors.torch.load_file(path))`` for a checkpoint saved
as ``.safetensors``, and ``model.load_state_dict({k: v.numpy() for k, v in sd.items()})`` back. It is in
the model's dtype and training mode; dropout between layers draws torch's own masks, so equality
holds in eval mode or with dropout 0.

A user's cell. Its step is traced once — the cell runs on placeholder leaves for x_t and the state,
and ``tinygraph.Graph.of`` gives its nodes in topological order — into a ``StepProgram``: a
straight-line list of leaves (input, state, parameter by name, constant) and ops (name, attributes,
argument positions). ``StepProgram.run`` evaluates it with any table of op name -> function; the torch
module passes ``torch_modules.TORCH_OPS``, which covers every tinygraph op. We trace rather than run
the cell's own ``forward`` on torch tensors because tinygraph ops compute on ndarrays: tracing needs
no second backend in the engine, and the graph already is the program. What tracing cannot see it
refuses, naming it: an op without a torch function, a tensor the step reads that requires grad but is
not a parameter of the cell, and a step whose ops depend on the batch size (traced at two batch sizes
and compared).
"""
import numpy as np

import tinygraph as tg
from tinygraph.errors import ExportError  # noqa: F401  (one error for ONNX and torch export)
from tinygraph.extras import require
from tinygraph.nn import Embedding
from tinygraph.tensor import Tensor

from .layers import GRU, LSTM, RNN, RecurrentLayer
from .models import CharRNN, SequenceModel
from .recurrent import flat

_TRACE_BATCHES = (2, 3)   # a step traced at both must give the same program


class StepProgram:
    """One step of a cell as a straight-line program, free of tinygraph objects.

    ``nodes`` in topological order, each one of::

        ("input",)                    x_t (B, ...)
        ("state", k)                  the k-th state tensor
        ("parameter", name)           a parameter, by its name in the exported module
        ("constant", j)               constants[j], an ndarray the step reads
        ("op", name, attrs, args)     a tinygraph op: its name, ``Op.attrs()`` and argument positions

    ``result`` is what the cell returned, as node positions with its tuple structure; ``output`` and
    ``state`` are the step's output and new state tensors (positions), as ``Recurrent`` reads them.
    """

    def __init__(self, nodes, constants, result, output, state):
        self.nodes, self.constants = nodes, constants
        self.result, self.output, self.state = result, output, state

    def op_names(self):
        """The op names of the step, in program order (repeats included)."""
        return [node[1] for node in self.nodes if node[0] == "op"]

    def run(self, ops, x, state, parameter, constant):
        """Every node's value: ``ops[name](attrs, *args)`` for an op, ``parameter(name)``,
        ``constant(j)``, ``x`` and ``state[k]`` for the leaves."""
        values = []
        for node in self.nodes:
            kind = node[0]
            if kind == "op":
                _, name, attrs, args = node
                values.append(ops[name](attrs, *(values[i] for i in args)))
            elif kind == "input":
                values.append(x)
            elif kind == "state":
                values.append(state[node[1]])
            elif kind == "parameter":
                values.append(parameter(node[1]))
            else:
                values.append(constant(node[1]))
        return values

    def step(self, ops, x, state, parameter, constant):
        """``(output, new state tuple)`` of one step."""
        values = self.run(ops, x, state, parameter, constant)
        return values[self.output], tuple(values[i] for i in self.state)

    def signature(self):
        """Everything the program computes, comparable with ``==`` (arrays by dtype, shape, values)."""
        return ([_comparable(node) for node in self.nodes], [_comparable(c) for c in self.constants],
                self.result, self.output, self.state)


def _comparable(value):
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (tuple, list)):
        return tuple(_comparable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _comparable(v)) for k, v in value.items())
    if isinstance(value, slice):
        return ("slice", value.start, value.stop, value.step)
    return value


def trace_step(node, names, batch, who):
    """The ``StepProgram`` of a ``Recurrent`` node's cell at ``batch`` rows; ``names`` maps
    ``id(parameter)`` to the parameter's name in the exported module."""
    size = node.input_size
    shape = (batch,) + (tuple(size) if isinstance(size, tuple) else (size,))
    x = Tensor._wrap(np.zeros(shape, dtype=node.dtype), name="x[t]")
    template = node.initial_state(batch, node.dtype)
    placeholders = tuple(Tensor._wrap(np.zeros(s.shape, s.dtype), name=f"state{k}")
                         for k, s in enumerate(flat(template)))
    state = placeholders[0] if isinstance(template, Tensor) else placeholders
    with tg.enable_grad(), np.errstate(all="ignore"):   # zeros may meet a log or a division
        result = node.cell(x, state)
        output, new_state = node.split_result(result, state, "t")
    graph = tg.Graph.of(*flat(new_state), output)
    leaves = {id(x): ("input",), **{id(p): ("state", k) for k, p in enumerate(placeholders)}}
    nodes, constants = [], []
    for tensor in graph.nodes:
        if tensor.op is not None:
            nodes.append(("op", tensor.op.name, tensor.op.attrs(), tuple(graph.index(t) for t in tensor.inputs)))
        elif id(tensor) in leaves:
            nodes.append(leaves[id(tensor)])
        elif id(tensor) in names:
            nodes.append(("parameter", names[id(tensor)]))
        elif tensor.requires_grad:
            raise ExportError(f"to_torch({who}): the step of {node.name} reads a tensor "
                              f"{tensor.name or ''}{tensor.shape} that requires grad but is not a parameter "
                              f"of the cell; register it as a tinygraph.nn.Parameter of the cell (or detach it)")
        else:
            nodes.append(("constant", len(constants)))
            constants.append(np.array(tensor.data, copy=True))

    def positions(value):
        if isinstance(value, Tensor):
            return graph.index(value)
        return tuple(positions(v) for v in value)
    return StepProgram(nodes, constants, positions(result), graph.index(output),
                       tuple(graph.index(s) for s in flat(new_state)))


def trace_layer_steps(layer, who):
    """One ``StepProgram`` per layer/direction of a ``RecurrentLayer``, with the layer's parameter
    names, after checking the step does not depend on the batch size."""
    names = {id(p): name for name, p in layer.named_parameters()}
    programs = []
    for node in layer._nodes:
        first, second = (trace_step(node, names, batch, who) for batch in _TRACE_BATCHES)
        if first.signature() != second.signature():
            raise ExportError(f"to_torch({who}): the step of {node.name} depends on the batch size: "
                              f"{_first_difference(first, second)}")
        programs.append(first)
    return programs


def _first_difference(first, second):
    """What differs between a step traced at two batch sizes, and the fix."""
    small, large = _TRACE_BATCHES
    for a, b in zip(first.nodes, second.nodes):
        if _comparable(a) != _comparable(b) and a[0] == "op":
            return (f"op '{a[1]}' has {a[2]} at batch {small} and {b[2]} at batch {large}; write it for any "
                    f"batch (x.reshape(-1, n), not x.reshape(B, n))")
    for a, b in zip(first.constants, second.constants):
        if _comparable(a) != _comparable(b):
            return (f"a constant made inside the step has shape {a.shape} at batch {small} and {b.shape} at "
                    f"batch {large}; give it a shape without the batch (it broadcasts), or make it from "
                    f"the step's inputs")
    return f"its program at batch {small} differs from the one at batch {large}"


# --- to_torch --------------------------------------------------------------------------------------
def to_torch(model):
    """An equivalent ``torch.nn.Module`` holding copies of ``model``'s weights (see the module docstring).

    ``model``: ``RNN``, ``LSTM``, ``GRU``, a ``RecurrentLayer`` of any cell, ``SequenceModel`` or
    ``CharRNN``. The result is in the model's dtype and training mode, its ``state_dict`` keys are
    ``model.state_dict()``'s, and its forward has our signature and shapes.
    """
    require("torch", "torch", "to_torch")
    from . import torch_modules
    who = type(model).__name__
    if isinstance(model, SequenceModel):
        module = _sequence_model(model, who, torch_modules)
    elif isinstance(model, RecurrentLayer):
        module = _layer(model, who, torch_modules)
    else:
        raise ExportError(f"to_torch: cannot export a {who}; give an RNN, LSTM, GRU, a RecurrentLayer of "
                          f"any cell, a SequenceModel or a CharRNN")
    return module.train(model.training)


def _layer(layer, who, tm):
    import torch
    dtype = tm.TORCH_DTYPES[np.dtype(layer.dtype)]
    options = dict(num_layers=layer.num_layers, batch_first=layer.batch_first, dropout=layer.dropout,
                   bidirectional=layer.bidirectional)
    native = {LSTM: torch.nn.LSTM, GRU: torch.nn.GRU, RNN: torch.nn.RNN}.get(type(layer))
    if type(layer) is RNN and layer.options.get("nonlinearity") not in ("tanh", "relu"):
        native = None   # torch.nn.RNN has tanh and relu; any other runs as a traced step
    if native is not None:
        if type(layer) is RNN:
            options["nonlinearity"] = layer.options["nonlinearity"]
        module = native(layer.input_size, layer.hidden_size, bias=layer.bias, dtype=dtype, **options)
        _load(module, layer, who)
        return module
    programs = trace_layer_steps(layer, who)
    unmapped = sorted({name for p in programs for name in p.op_names()} - set(tm.TORCH_OPS))
    if unmapped:
        raise ExportError(f"to_torch({who}): the step of {layer._nodes[0].name} uses the op(s) {unmapped}, "
                          f"which have no torch function in rnn_models.torch_modules.TORCH_OPS")
    template = layer._nodes[0].initial_state(1, layer.dtype)
    return tm.TracedRecurrentLayer(
        programs, layer.state_dict(), tuple(s.shape[1:] for s in flat(template)),
        isinstance(template, Tensor), layer.input_size, layer.hidden_size, layer.num_layers,
        layer.batch_first, layer.dropout, layer.bidirectional)


def _sequence_model(model, who, tm):
    import torch
    dtype = tm.TORCH_DTYPES[np.dtype(model.head.weight.dtype)]
    rnn = _layer(model.rnn, who, tm)
    head = torch.nn.Linear(model.head.weight.shape[1], model.head.weight.shape[0],
                           bias=model.head.bias is not None, dtype=dtype)
    _load(head, model.head, who)
    embedding = None
    if isinstance(getattr(model, "embedding", None), Embedding):
        embedding = torch.nn.Embedding(*model.embedding.weight.shape, dtype=dtype)
        _load(embedding, model.embedding, who)
    if isinstance(model, CharRNN):
        return tm.TorchCharRNN(model.vocab, rnn, head, embedding)
    return tm.TorchSequenceModel(rnn, head, model.head_kind, embedding, model.vocab_size)


def _load(module, ours, who):
    """Copy ``ours``' parameters into the torch ``module`` (strict: the names must agree)."""
    import torch
    state = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in ours.state_dict().items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ExportError(f"to_torch({who}): the parameters of {type(ours).__name__} do not match "
                          f"{type(module).__name__}'s (missing {list(missing)}, unexpected {list(unexpected)})")

