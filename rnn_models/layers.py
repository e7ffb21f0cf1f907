"""``RNN``, ``LSTM`` and ``GRU`` layers: stacks of recurrent nodes with PyTorch's API, shapes and names.

    out, h_n = rnn(x, h0=None, lengths=None)              # RNN, GRU
    out, (h_n, c_n) = lstm(x, (h0, c0), lengths=None)     # LSTM

    x    (T, B, input_size), or (B, T, input_size) with batch_first
    h0   (D * num_layers, B, hidden_size), D = 2 if bidirectional else 1; zeros when omitted
    out  (T, B, D * hidden_size), or (B, T, D * hidden_size) with batch_first: the last layer's h_t,
         forward and reverse directions concatenated
    h_n  (D * num_layers, B, hidden_size): each layer/direction's final h (row ``layer * D + direction``)

Parameters are registered under PyTorch's names and in its order (``weight_ih_l0``, ``weight_hh_l0``,
``bias_ih_l0``, ``bias_hh_l0``, then ``..._l0_reverse``, then layer 1), so a PyTorch state_dict
converted to numpy loads as-is. Each forward builds one cell per layer/direction on those parameters
(``Cell.from_parameters``) and unrolls it with ``Recurrent``: the step math has one definition, in
``rnn_models.cells``.

Scopes: ``"lstm"`` / ``"l1_reverse"`` / ``"t=3"`` / ``"forget_gate"`` — the time step is the position in the
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
from tinygraph.random import default_generator
from tinygraph.tensor import Tensor

from .cells import CELLS, NONLINEARITIES, as_float, init_parameters
from .recurrent import Recurrent, check_finite_input, check_lengths, folded_mimebundle


class RecurrentLayer(Module):
    """Shared machinery of RNN/LSTM/GRU; ``mode`` is "rnn", "lstm" or "gru"."""
    mode = None

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=np.float64, rng=None, fused=True, **options):
        super().__init__()
        name = type(self).__name__
        if not isinstance(num_layers, (int, np.integer)) or isinstance(num_layers, bool) or num_layers < 1:
            raise ValueError(f"{name}: num_layers must be a positive integer, got {num_layers!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional = bool(bidirectional)
        self.fused = bool(fused)
        self.options = options                           # nonlinearity for RNN
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else self.num_directions * hidden_size
            for suffix in self._suffixes:
                params = init_parameters(CELLS[self.mode].num_gates, layer_input, hidden_size, bias, dtype, rng)
                for pname, p in params.items():
                    setattr(self, f"{pname}_l{layer}{suffix}", p)   # also names the leaf for drawing

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def _suffixes(self):
        return ("", "_reverse") if self.bidirectional else ("",)

    @property
    def state_names(self):
        return CELLS[self.mode].state_names

    def recurrent(self, layer=0, reverse=False):
        """The ``Recurrent`` node of one layer/direction, computing with this layer's parameters."""
        suffix = f"_l{layer}{'_reverse' if reverse else ''}"
        names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
        params = [getattr(self, name + suffix) for name in names]
        return Recurrent(CELLS[self.mode].from_parameters(*params, fused=self.fused, **self.options))

    # --- forward ---------------------------------------------------------------------------------
    def forward(self, x, h0=None, lengths=None, hx=None):
        """Run the stack over ``x``; see the module docstring for shapes. ``hx`` is PyTorch's name for
        ``h0``. ``lengths`` (B,) ints in [1, T]: padded batches as with ``pack_padded_sequence``."""
        if hx is not None:
            if h0 is not None:
                raise TypeError(f"{type(self).__name__}: give h0 or hx, not both")
            h0 = hx
        dtype = self.weight_ih_l0.dtype
        x, steps, batch = self._check_input(x, dtype)
        if tg.is_anomaly_enabled():  # before any op touches it, attributed to the first layer's step
            with tg.scope(self.mode), tg.scope("l0"):
                check_finite_input(x.data, self.batch_first, type(self).__name__)
        initial = self._check_initial_state(h0, batch, dtype)
        if lengths is not None:
            lengths = check_lengths(lengths, batch, steps, type(self).__name__)
        finals = []                                      # per layer/direction: the final state tuple
        with tg.scope(self.mode):
            layer_input = F.swapaxes(x, 0, 1) if self.batch_first else x   # time-major inside
            for layer in range(self.num_layers):
                if layer > 0:
                    layer_input = self._dropout(layer_input)
                directions = []
                for direction, suffix in enumerate(self._suffixes):
                    k = layer * self.num_directions + direction
                    with tg.scope(f"l{layer}{suffix}"):
                        state0 = tuple(s[k] for s in initial) if initial is not None else None
                        out, final = self.recurrent(layer, bool(direction)).sequence(
                            layer_input, state0, reverse=bool(direction), lengths=lengths)
                        directions.append(out)
                    finals.append(final)
                layer_input = directions[0] if len(directions) == 1 else F.concat(directions, axis=-1)
            out = F.swapaxes(layer_input, 0, 1) if self.batch_first else layer_input
            states = tuple(F.stack([final[i] for final in finals]) for i in range(len(self.state_names)))
        return out, (states if len(states) > 1 else states[0])

    def _dropout(self, sequence):
        """Dropout on the (T, B, D*H) input of layers after the first (train mode only)."""
        if not self.training or self.dropout == 0:
            return sequence
        keep = default_generator().random(sequence.shape) >= self.dropout
        return sequence * Tensor._wrap((keep / (1 - self.dropout)).astype(sequence.dtype))

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

    def _check_initial_state(self, h0, batch, dtype):
        """``None`` or a tuple of (D * num_layers, B, H) tensors, one per state name."""
        if h0 is None:
            return None
        name, names = type(self).__name__, self.state_names
        if len(names) > 1:
            if not isinstance(h0, (tuple, list)) or len(h0) != len(names):
                raise TypeError(f"{name}: the initial state must be a tuple ({', '.join(n + '0' for n in names)}), "
                                f"got {type(h0).__name__}")
        elif isinstance(h0, (tuple, list)):
            raise TypeError(f"{name}: h0 must be a tensor (D * num_layers, B, hidden_size), not a "
                            f"{type(h0).__name__}")
        else:
            h0 = (h0,)
        expected = (self.num_directions * self.num_layers, batch, self.hidden_size)
        checked = []
        for n, s in zip(names, h0):
            s = as_float(s, dtype)
            if s.shape != expected:
                raise tg.ShapeError(f"{name}: {n}0 has shape {s.shape}, expected {expected} = "
                                    f"(num_directions * num_layers, B, hidden_size)")
            checked.append(s)
        return tuple(checked)

    # --- display -----------------------------------------------------------------------------------
    def folded(self, batch=1):
        """One time step of the whole stack on placeholders, with a loop edge per layer/direction/state
        (the reverse direction's placeholders are named "h[t+1]": its state comes from the next step)."""
        loop_edges, outputs = [], []
        with tg.scope(self.mode):
            x = Tensor._wrap(np.zeros((batch, self.input_size), self.weight_ih_l0.dtype), name="x[t]")
            for layer in range(self.num_layers):
                step_outputs = []
                for direction, suffix in enumerate(self._suffixes):
                    node = self.recurrent(layer, bool(direction))
                    with tg.scope(f"l{layer}{suffix}"):
                        placeholders, new_state = node.trace_step(x, reverse=bool(direction))
                    loop_edges += zip(new_state, placeholders)
                    outputs += new_state
                    step_outputs.append(node.cell.output(new_state))
                x = step_outputs[0] if len(step_outputs) == 1 else F.concat(step_outputs, axis=-1)
            x.name = x.name or "y[t]"
        return tg.Graph.of(*outputs, x, loop_edges=loop_edges)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return folded_mimebundle(self, include, exclude)

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for key, value in self.options.items():
            text += f", {key}={value!r}"
        for key, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False),
                             ("fused", True)):
            if getattr(self, key) != default:
                text += f", {key}={getattr(self, key)}"
        return text


class RNN(RecurrentLayer):
    """Elman RNN layer: h_t = act(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh), act = tanh | relu
    (| sigmoid). ``out, h_n = rnn(x, h0=None, lengths=None)``; shapes in the module docstring."""
    mode = "rnn"

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=np.float64, rng=None,
                 fused=True):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; choose one of {', '.join(NONLINEARITIES)}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype, rng, fused, nonlinearity=nonlinearity)


class LSTM(RecurrentLayer):
    """LSTM layer (gates i, f, g, o). ``out, (h_n, c_n) = lstm(x, (h0, c0)=None, lengths=None)``;
    c_n has h_n's shape (D * num_layers, B, hidden_size)."""
    mode = "lstm"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=np.float64, rng=None, fused=True):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype, rng, fused)


class GRU(RecurrentLayer):
    """GRU layer (gates r, z, n). ``out, h_n = gru(x, h0=None, lengths=None)``."""
    mode = "gru"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=np.float64, rng=None, fused=True):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype, rng, fused)
