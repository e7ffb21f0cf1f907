"""Recurrent layers: stacks of recurrent nodes over any cell, with PyTorch's API, shapes and names.

``RecurrentLayer(cell, input_size, hidden_size, ...)`` stacks ``num_layers`` recurrent nodes (and a
reverse direction with ``bidirectional``) of a *cell factory*: ``cell(input_size, hidden_size,
**cell_options)`` returns one cell (see the protocol in ``rnn_models.recurrent``). ``RNN``, ``LSTM`` and
``GRU`` are that class with our cells; a user's cell stacks the same way::

    out, h_n = rnn(x, h0=None, lengths=None)              # RNN, GRU
    out, (h_n, c_n) = lstm(x, (h0, c0), lengths=None)     # LSTM

    x    (T, B, input_size), or (B, T, input_size) with batch_first
    h0   (D * num_layers, B, hidden_size), D = 2 if bidirectional else 1; zeros when omitted
    out  (T, B, D * hidden_size), or (B, T, D * hidden_size) with batch_first: the last layer's h_t,
         forward and reverse directions concatenated
    h_n  (D * num_layers, B, hidden_size): each layer/direction's final h (row ``layer * D + direction``)

Each layer/direction's cell owns its parameters; the layer registers them under PyTorch's names and
in its order — a cell parameter ``weight_ih`` is ``weight_ih_l0``, ``weight_ih_l0_reverse``, then
``weight_ih_l1`` ... (a nested name ``lin.weight`` becomes ``lin_weight_l0``) — so a PyTorch
state_dict converted to numpy loads as-is into ``RNN/LSTM/GRU``. The step math has one definition, in
the cell; ``Recurrent`` unrolls it.

For a cell whose state is not one (B, hidden_size) tensor, the state's shape comes from the cell's
``initial_state`` hook or from ``state_size`` (as in ``Recurrent``); h0 then stacks every state
tensor over layers and directions the same way, (D * num_layers, B, ...).

Scopes: ``"lstm"`` (the layer's ``kind``) / ``"l1_reverse"`` / ``"t=3"`` / ``"forget_gate"`` — the time step is the position in the
input sequence, for the reverse direction too. Gate scopes exist with ``fused=False``; the default
``fused=True`` runs each step as one fused op (same numbers, faster — see ``rnn_models.cells``).

Between layers the sequence travels as one time-major (T, B, D*H) tensor: each direction's steps are
stacked once and the directions concatenated once, so the next layer projects its whole input in
one node.
"""
import numpy as np

import tinygraph as tg
from tinygraph import functional as F
from tinygraph.nn import Module
from tinygraph.ops.sources import dropout_mask
from tinygraph.tensor import Tensor

from .cells import NONLINEARITIES, GRUCell, LSTMCell, RNNCell
from .recurrent import Recurrent, as_float, check_finite_input, check_lengths, flat, folded_mimebundle


class RecurrentLayer(Module):
    """A stack of recurrent nodes over cells made by ``cell`` (a class or a function).

    Args:
        cell: factory ``cell(input_size, hidden_size, **cell_options) -> cell``; called once per
            layer and direction (layer k > 0 gets input size D * hidden_size).
        input_size, hidden_size, num_layers, batch_first, dropout, bidirectional: as ``torch.nn.RNN``.
        state_size: the per-row state shape(s) (see ``Recurrent``). Default: the cell's
            ``initial_state`` hook, else one (B, hidden_size) tensor.
        kind: the top scope name (default: the factory's name, lowercased).
        cell_options: passed to every ``cell(...)`` call.

    The step's output (the cell's output, or its state's first tensor) must be (B, hidden_size): it
    is what the next layer reads and what ``out`` stacks.
    """
    kind = None

    def __init__(self, cell, input_size, hidden_size, num_layers=1, batch_first=False, dropout=0.0,
                 bidirectional=False, state_size=None, kind=None, **cell_options):
        super().__init__()
        name = type(self).__name__
        if not callable(cell):
            raise TypeError(f"{name}: cell must be a factory cell(input_size, hidden_size, ...), got "
                            f"{type(cell).__name__}")
        for what, size in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size <= 0:
                raise ValueError(f"{name}: {what} must be a positive integer, got {size!r}")
        if not isinstance(num_layers, (int, np.integer)) or isinstance(num_layers, bool) or num_layers < 1:
            raise ValueError(f"{name}: num_layers must be a positive integer, got {num_layers!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.dropout = batch_first, dropout
        self.bidirectional = bool(bidirectional)
        self.options = cell_options
        if kind is not None or self.kind is None:
            self.kind = str(kind or getattr(cell, "__name__", type(cell).__name__)).lower()
        nodes = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else self.num_directions * hidden_size
            for suffix in self._suffixes:
                made = cell(layer_input, hidden_size, **cell_options)
                if isinstance(made, Module):
                    for pname, p in made.named_parameters():
                        full = f"{pname.replace('.', '_')}_l{layer}{suffix}"
                        p.name = None
                        setattr(self, full, p)   # also names the leaf for drawing
                size = state_size
                if size is None and getattr(made, "initial_state", None) is None:
                    size = hidden_size   # a cell without the hook: one (B, hidden_size) state tensor
                nodes.append(Recurrent(made, state_size=size, input_size=layer_input))
        object.__setattr__(self, "_nodes", nodes)   # the cells' parameters are registered above

    @property
    def num_directions(self):
        """D: 2 if ``bidirectional`` else 1."""
        return 2 if self.bidirectional else 1

    @property
    def _suffixes(self):
        return ("", "_reverse") if self.bidirectional else ("",)

    @property
    def dtype(self):
        """The cells' parameter dtype; inputs and states are converted to it."""
        return self._nodes[0].dtype

    @property
    def state_names(self):
        """The names of the state tensors: ``("h",)``, or ``("h", "c")`` for an LSTM (the cell's
        ``state_names``)."""
        names = self._nodes[0].state_names
        return tuple(names) if names is not None else ("h",)

    def recurrent(self, layer=0, reverse=False):
        """The ``Recurrent`` node of one layer/direction."""
        return self._nodes[layer * self.num_directions + int(bool(reverse))]

    def cells(self):
        """The cells, layer by layer, forward direction first."""
        return [node.cell for node in self._nodes]

    def train(self, mode=True):
        """Training mode on the layer and on every cell (dropout between layers is active only in
        training); returns self."""
        super().train(mode)
        for cell in self.cells():
            if isinstance(cell, Module):
                cell.train(mode)
        return self

    # --- forward ---------------------------------------------------------------------------------
    def forward(self, x, h0=None, lengths=None, hx=None):
        """Run the stack over ``x``; see the module docstring for shapes. ``hx`` is PyTorch's name for
        ``h0``. ``lengths`` (B,) ints in [1, T]: padded batches as with ``pack_padded_sequence``."""
        if hx is not None:
            if h0 is not None:
                raise TypeError(f"{type(self).__name__}: give h0 or hx, not both")
            h0 = hx
        dtype = self.dtype
        x, steps, batch = self._check_input(x, dtype)
        if tg.is_anomaly_enabled():  # before any op touches it, attributed to the first layer's step
            with tg.scope(self.kind), tg.scope("l0"):
                check_finite_input(x.data, self.batch_first, type(self).__name__)
        template = self._nodes[0].initial_state(batch, dtype)
        single = isinstance(template, Tensor)
        initial = self._check_initial_state(h0, flat(template), single)
        if lengths is not None:
            lengths = check_lengths(lengths, batch, steps, type(self).__name__)
        finals = []                                      # per layer/direction: the final state tensors
        with tg.scope(self.kind):
            layer_input = F.swapaxes(x, 0, 1) if self.batch_first else x   # time-major inside
            for layer in range(self.num_layers):
                if layer > 0:
                    layer_input = self._dropout(layer_input)
                directions = []
                for direction, suffix in enumerate(self._suffixes):
                    k = layer * self.num_directions + direction
                    with tg.scope(f"l{layer}{suffix}"):
                        state0 = None
                        if initial is not None:
                            parts = tuple(s[k] for s in initial)
                            state0 = parts[0] if single else parts
                        out, final = self.recurrent(layer, bool(direction)).sequence(
                            layer_input, state0, reverse=bool(direction), lengths=lengths)
                        self._check_output(out, batch)
                        directions.append(out)
                    finals.append(flat(final))
                layer_input = directions[0] if len(directions) == 1 else F.concat(directions, axis=-1)
            out = F.swapaxes(layer_input, 0, 1) if self.batch_first else layer_input
            states = tuple(F.stack([final[i] for final in finals]) for i in range(len(finals[0])))
        return out, (states[0] if single else states)

    def _check_output(self, out, batch):
        expected = (out.shape[0], batch, self.hidden_size)
        if out.shape != expected:
            raise tg.ShapeError(f"{type(self).__name__}: the cell's step output has shape {out.shape[1:]}; "
                                f"a layer stacks outputs of shape (B, hidden_size) = {expected[1:]} (return "
                                f"(output, state) from the cell to give an output of its own)")

    def _dropout(self, sequence):
        """Dropout on the (T, B, D*H) input of layers after the first (train mode only)."""
        if not self.training or self.dropout == 0:
            return sequence
        # an op drawing from the global generator when it runs: a compiled step redraws the mask
        return sequence * dropout_mask(sequence.shape, self.dropout, sequence.dtype)

    # --- checks -----------------------------------------------------------------------------------
    def _layout(self):
        return "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"

    def _check_input(self, x, dtype):
        name = type(self).__name__
        x = F.as_tensor(x)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise tg.ShapeError(
                f"{name}: expected input of shape {self._layout()} with input_size={self.input_size}, "
                f"got {x.shape}" + ("; for one sequence add a batch axis" if x.ndim == 2 else ""))
        steps, batch = (x.shape[1], x.shape[0]) if self.batch_first else x.shape[:2]
        if steps == 0:
            raise tg.ShapeError(f"{name}: the input {x.shape} has T = 0 time steps ({self._layout()}); "
                                f"give at least one step")
        return as_float(x, dtype), steps, batch

    def _check_initial_state(self, h0, template, single):
        """``None`` or a tuple of (D * num_layers, B, ...) tensors, one per state tensor."""
        if h0 is None:
            return None
        name, names = type(self).__name__, self.state_names
        if len(names) != len(template):
            names = tuple(f"s{k}" for k in range(len(template)))
        if not single:
            if not isinstance(h0, (tuple, list)) or len(h0) != len(template):
                raise TypeError(f"{name}: the initial state must be a tuple ({', '.join(n + '0' for n in names)}), "
                                f"got {type(h0).__name__}")
        elif isinstance(h0, (tuple, list)):
            raise TypeError(f"{name}: h0 must be a tensor (D * num_layers, B, hidden_size), not a "
                            f"{type(h0).__name__}")
        else:
            h0 = (h0,)
        checked = []
        for n, s, zero in zip(names, h0, template):
            expected = (self.num_directions * self.num_layers,) + zero.shape
            s = as_float(s, zero.dtype)
            if s.shape != expected:
                tail = "hidden_size" if zero.shape[1:] == (self.hidden_size,) else \
                    ", ".join(map(str, zero.shape[1:]))
                raise tg.ShapeError(f"{name}: {n}0 has shape {s.shape}, expected {expected} = "
                                    f"(num_directions * num_layers, B, {tail})")
            checked.append(s)
        return tuple(checked)

    # --- display -----------------------------------------------------------------------------------
    def folded(self, batch=1):
        """One time step of the whole stack on placeholders, with a loop edge per layer/direction/state
        (the reverse direction's placeholders are named "h[t+1]": its state comes from the next step)."""
        loop_edges, outputs = [], []
        with tg.scope(self.kind):
            x = Tensor._wrap(np.zeros((batch, self.input_size), self.dtype), name="x[t]")
            for layer in range(self.num_layers):
                step_outputs = []
                for direction, suffix in enumerate(self._suffixes):
                    node = self.recurrent(layer, bool(direction))
                    with tg.scope(f"l{layer}{suffix}"):
                        placeholders, new_state, output = node.trace_step(x, reverse=bool(direction))
                    loop_edges += zip(flat(new_state), flat(placeholders))
                    outputs += flat(new_state)
                    step_outputs.append(output)
                x = step_outputs[0] if len(step_outputs) == 1 else F.concat(step_outputs, axis=-1)
            x.name = x.name or "y[t]"
        return tg.Graph.of(*outputs, x, loop_edges=loop_edges)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return folded_mimebundle(self, include, exclude)

    def extra_repr(self):
        """``input_size, hidden_size`` and the options that differ from their defaults."""
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for key, value in self.options.items():
            if key not in ("dtype", "rng", "bias", "fused"):
                text += f", {key}={value!r}"
        for key, default in (("bias", True), ("fused", True)):
            if self.options.get(key, default) != default:
                text += f", {key}={self.options[key]}"
        for key, default in (("batch_first", False), ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, key) != default:
                text += f", {key}={getattr(self, key)}"
        return text


class RNN(RecurrentLayer):
    """Elman RNN layer: h_t = act(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh), act = tanh | relu
    (| sigmoid). ``out, h_n = rnn(x, h0=None, lengths=None)``; shapes in the module docstring."""
    kind = "rnn"
    cell_type = RNNCell

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=np.float64, rng=None,
                 fused=True):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; choose one of {', '.join(NONLINEARITIES)}")
        super().__init__(RNNCell, input_size, hidden_size, num_layers, batch_first, dropout, bidirectional,
                         nonlinearity=nonlinearity, bias=bias, dtype=dtype, rng=rng, fused=fused)
        self.bias, self.fused = bias, bool(fused)


class LSTM(RecurrentLayer):
    """LSTM layer (gates i, f, g, o). ``out, (h_n, c_n) = lstm(x, (h0, c0)=None, lengths=None)``;
    c_n has h_n's shape (D * num_layers, B, hidden_size)."""
    kind = "lstm"
    cell_type = LSTMCell

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=np.float64, rng=None, fused=True):
        super().__init__(LSTMCell, input_size, hidden_size, num_layers, batch_first, dropout, bidirectional,
                         bias=bias, dtype=dtype, rng=rng, fused=fused)
        self.bias, self.fused = bias, bool(fused)


class GRU(RecurrentLayer):
    """GRU layer (gates r, z, n). ``out, h_n = gru(x, h0=None, lengths=None)``."""
    kind = "gru"
    cell_type = GRUCell

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=np.float64, rng=None, fused=True):
        super().__init__(GRUCell, input_size, hidden_size, num_layers, batch_first, dropout, bidirectional,
                         bias=bias, dtype=dtype, rng=rng, fused=fused)
        self.bias, self.fused = bias, bool(fused)
