"""How the recurrent layers and sequence models export to ONNX (``tinygraph.export.to_onnx``).

``RNN``, ``LSTM``, ``GRU`` become ONNX's own ops, one per layer (both directions in one op), with the
weights reordered from PyTorch's gate order to ONNX's: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h
with ``linear_before_reset=1`` (r multiplies ``W_hn h + b_hn``, as in PyTorch); the two biases
``b_ih``, ``b_hh`` side by side in ONNX's one ``B``. ONNX's Y (T, D, B, H) becomes tinygraph's
(T, B, D*H) with a Transpose and a Reshape; the layers' final states stack to (L*D, B, H).

Any other cell — a user's, or ours with ``recurrent="scan"`` — becomes one ``Scan`` per layer and
direction whose body is the cell's folded step (``Recurrent.folded``: the step traced once on
placeholders, its loop edges the Scan's state variables); the reverse direction scans backwards
(``scan_input_directions``) and writes its outputs in input order (``scan_output_directions``).

A state left out is zeros: ONNX's default for the native ops, a ``ConstantOfShape`` of the batch for
a Scan. ``lengths`` (padded batches) is not exported.
"""
import numpy as np

import tinygraph as tg
from tinygraph.errors import ExportError
from tinygraph.export import Signature, register_onnx
from tinygraph.tensor import Tensor

from .layers import GRU, LSTM, RNN, RecurrentLayer
from .models import SequenceModel
from .recurrent import flat

# layer class -> (ONNX op, PyTorch's gate blocks in ONNX's order)
NATIVE = {RNN: ("RNN", (0,)), LSTM: ("LSTM", (0, 3, 1, 2)), GRU: ("GRU", (1, 0, 2))}
ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}


def _no_lengths(who, lengths):
    if lengths is not None:
        raise ExportError(f"to_onnx: {who} with lengths (padded batches) cannot be exported; export "
                          f"without lengths")


def export_layer(b, layer, x, h0=None, lengths=None, hx=None):
    """``out, h_n`` (``out, (h_n, c_n)`` for a pair state) of a ``RecurrentLayer`` as ONNX names."""
    who = type(layer).__name__
    _no_lengths(who, lengths)
    h0 = hx if hx is not None else h0
    template = layer.recurrent(0).initial_state(1, layer.dtype)
    single = isinstance(template, Tensor)
    initial = None if h0 is None else [b.cast(s, layer.dtype) for s in ((h0,) if single else h0)]
    seq = b.cast(x, layer.dtype)   # as the layer does (as_float): a float64 input of a float32 layer
    seq = b.node("Transpose", [seq], perm=[1, 0, 2]) if layer.batch_first else seq
    batch_axis = 0 if layer.batch_first else 1
    native = b.recurrent == "native" and type(layer) in NATIVE
    finals = [[] for _ in flat(template)]   # per state tensor: its (D, B, ...) or (1, B, ...) blocks
    for level in range(layer.num_layers):
        if native:
            with b.scoped(f"{layer.kind}/l{level}"):
                seq, states = _native_layer(b, layer, level, seq, initial)
        else:
            seq, states = _scan_layer(b, layer, level, seq, initial, x, batch_axis)
        for k, block in enumerate(states):
            finals[k].extend(block)
    out = b.node("Transpose", [seq], perm=[1, 0, 2]) if layer.batch_first else seq
    states = [blocks[0] if len(blocks) == 1 else b.node("Concat", blocks, axis=0) for blocks in finals]
    return out, (states[0] if single else tuple(states))


def _gates(array, order):
    """Rows of a (G*H, ...) weight or (G*H,) bias regrouped from PyTorch's gate order to ONNX's."""
    blocks = np.split(np.asarray(array), len(order))
    return np.concatenate([blocks[k] for k in order])


def _native_layer(b, layer, level, seq, initial):
    """One layer, both directions, as ONNX's RNN/LSTM/GRU: the (T, B, D*H) output and the final
    state blocks, each (D, B, H)."""
    op_type, order = NATIVE[type(layer)]
    D, H = layer.num_directions, layer.hidden_size
    cells = [layer.recurrent(level, bool(d)).cell for d in range(D)]
    prefix = f"{layer.kind}.l{level}"
    W = b.const(np.stack([_gates(c.weight_ih.data, order) for c in cells]), f"{prefix}.W")
    R = b.const(np.stack([_gates(c.weight_hh.data, order) for c in cells]), f"{prefix}.R")
    B = None
    if cells[0].bias_ih is not None:
        B = b.const(np.stack([np.concatenate([_gates(c.bias_ih.data, order), _gates(c.bias_hh.data, order)])
                              for c in cells]), f"{prefix}.B")
    rows = [b.node("Slice", [s, b.ints([level * D]), b.ints([(level + 1) * D]), b.ints([0])])
            for s in initial] if initial is not None else [None] * (2 if op_type == "LSTM" else 1)
    attributes = dict(direction="bidirectional" if D == 2 else "forward", hidden_size=H)
    if op_type == "RNN":
        attributes["activations"] = [ACTIVATIONS[cells[0].nonlinearity]] * D
    if op_type == "GRU":
        attributes["linear_before_reset"] = 1
    outputs = b.node(op_type, [seq, W, R, B, None, *rows], outputs=3 if op_type == "LSTM" else 2,
                     **attributes)
    y = b.node("Transpose", [outputs[0]], perm=[0, 2, 1, 3])   # (T, D, B, H) -> (T, B, D, H)
    return b.node("Reshape", [y, b.ints([0, 0, -1])]), [[s] for s in outputs[1:]]


def _scan_layer(b, layer, level, seq, initial, x, batch_axis):
    """One layer as a Scan per direction: the (T, B, D*H) output and the final state blocks, each
    (1, B, ...)."""
    D = layer.num_directions
    batch, probe_batch = x.shape[batch_axis], x.probe.shape[batch_axis]
    outputs, blocks = [], []
    for direction in range(D):
        node = layer.recurrent(level, bool(direction))
        size = layer.input_size if level == 0 else D * layer.hidden_size
        where = f"l{level}{'_reverse' if direction else ''}"   # the layer's own scopes
        with b.scoped(f"{layer.kind}/{where}"), tg.scope(layer.kind), tg.scope(where):
            y, finals = scan(b, node, seq, size, batch, probe_batch, level * D + direction, initial,
                             reverse=bool(direction), dtype=layer.dtype)
        outputs.append(y)
        blocks.append([b.node("Unsqueeze", [s, b.ints([0])]) for s in finals])
    states = [list(per_state) for per_state in zip(*blocks)]   # per state tensor, one block per direction
    return (outputs[0] if D == 1 else b.node("Concat", outputs, axis=2)), states


def scan(b, node, seq, input_size, batch, probe_batch, k, initial, reverse, dtype):
    """A ``Recurrent`` node over the time-major sequence ``seq`` as one Scan whose body is the folded
    step; returns the (T, B, H) output and the final state tensors' names. ``initial``: the layer's
    stacked initial states (row ``k`` is this node's), or None for zeros."""
    graph, probe = (node.folded(batch=n, input_size=input_size, dtype=dtype) for n in (batch, probe_batch))
    (x_t, placeholders, new_states, step_output), probe_roles = _roles(graph), _roles(probe)
    body = b.subgraph()
    values, probe_values = {}, {}
    for t, p in zip((*placeholders, x_t), (*probe_roles[1], probe_roles[0])):  # Scan: states, then x[t]
        values[id(t)] = probe_values[id(p)] = body.input(t._data, p._data, _label(node, t.name))
    body.convert(graph.nodes, values, probe.nodes, probe_values)
    for s in new_states:
        body.output(values[id(s)])
    body.output(values[id(step_output)], b.export.fresh(_label(node, "y[t]")))
    starts = _initial_states(b, node, seq, k, initial, batch)
    names = b.node("Scan", [*starts, seq], outputs=len(new_states) + 1,
                   body=body.encode(_label(node, "step")), num_scan_inputs=1,
                   scan_input_directions=[int(reverse)], scan_output_directions=[int(reverse)])
    return names[-1], names[:-1]


def _roles(graph):
    """A folded step's x[t] leaf, state placeholders, new states (in loop-edge order) and output."""
    x_t = next(t for t in graph.leaves if t.name == "x[t]")
    placeholders = [graph.nodes[dst] for _, dst in graph.loop_edges]
    new_states = [graph.nodes[src] for src, _ in graph.loop_edges]
    step_output = graph.nodes[graph.outputs[-1]] if len(graph.outputs) > len(new_states) else new_states[0]
    return x_t, placeholders, new_states, step_output


def _label(node, name):
    return f"{node.name}.{name}"


def _initial_states(b, node, seq, k, initial, batch):
    """Row ``k`` of each given initial state, or zeros (B, ...) made for the run's batch."""
    if initial is not None:
        return [b.node("Gather", [s, b.scalar(k, np.int64)], axis=0) for s in initial]
    zeros = flat(node.initial_state(batch))
    if any(np.any(z.data) for z in zeros):
        raise ExportError(f"to_onnx: the initial state of {node.name} is not zero; pass the initial state "
                          f"as an input (example_inputs) to export it")
    batch_size = b.node("Shape", [seq], start=1, end=2)
    starts = []
    for z in zeros:
        shape = b.node("Concat", [batch_size, b.ints(z.shape[1:])], axis=0) if z.ndim > 1 else batch_size
        starts.append(b.node("ConstantOfShape", [shape], value=np.zeros(1, z.dtype)))
    return starts


def layer_signature(layer):
    """Inputs ``input``, ``h0`` (, ``c0``), outputs ``output``, ``h_n`` (, ``c_n``): the state tensors'
    names (``s0``, ``s1``... for a cell that names none); time and batch dynamic."""
    count = len(flat(layer.recurrent(0).initial_state(1)))
    names = layer.state_names if len(layer.state_names) == count else tuple(f"s{k}" for k in range(count))
    x_axes = {0: "batch", 1: "time"} if layer.batch_first else {0: "time", 1: "batch"}
    return Signature(("input",) + tuple(f"{n}0" for n in names), ("output",) + tuple(f"{n}_n" for n in names),
                     {"input": x_axes, **{f"{n}0": {1: "batch"} for n in names}})


def export_sequence_model(b, model, x, state=None, lengths=None):
    """``[embedding ->] layer -> head``: the ids' rows gathered from the embedding (or the one-hot
    table), the layer's own export, the head traced (an affine: MatMul and Add, or Gemm)."""
    _no_lengths(type(model).__name__, lengths)
    if model.vocab_size is not None:
        table = model._one_hot if model._one_hot is not None else model.embedding.weight
        rows = b.node("Gather", [b.parameter(table, "embedding" if model._one_hot is None else "one_hot"), x],
                      axis=0)
        x = b.value(rows, table._data[x.example], table._data[x.probe])
    out, state = b.call(model.rnn, x, state)
    if model.head_kind == "many_to_one":
        out = b.call(model.final_hidden, state)
    return b.call(model.head, out), state


def model_signature(model):
    """The layer's names; the input is time-major, (T, B) ids or (T, B, features)."""
    layer = layer_signature(model.rnn)
    return Signature(layer.inputs, layer.outputs, {**layer.axes, "input": {0: "time", 1: "batch"}})


register_onnx(RecurrentLayer, export_layer, layer_signature)
register_onnx(SequenceModel, export_sequence_model, model_signature)
