"""Recurrent cells: step functions ``cell(x_t, state) -> state`` built from tinygraph ops.

A cell computes ONE time step, shaped like ``torch.nn.RNNCell/LSTMCell/GRUCell``: ``x_t`` is
(B, input_size); ``RNNCell(x, h) -> h'`` and ``GRUCell(x, h) -> h'`` take and return one (B, hidden_size)
tensor, ``LSTMCell(x, (h, c)) -> (h', c')`` a pair. ``Recurrent`` (the recurrent node) folds or unrolls
any cell over time — these three or a user's own (the protocol is in ``rnn_models.recurrent``); the
layers in ``rnn_models.layers`` stack them.

Parameters follow PyTorch exactly (names, shapes, gate order, initialisation U(-1/sqrt(H), 1/sqrt(H))):

    weight_ih (G*H, input_size)   weight_hh (G*H, H)   bias_ih (G*H,)   bias_hh (G*H,)

with G = 1 (RNN), 4 (LSTM: gates i, f, g, o) or 3 (GRU: gates r, z, n). The equations, with
``a @ W.T + b`` written ``W a + b``:

    RNN   h' = act(W_ih x + b_ih + W_hh h + b_hh)                   act = tanh | relu | sigmoid
    LSTM  i = σ(.._i)   f = σ(.._f)   g = tanh(.._g)   o = σ(.._o)    (.. = W_ih x + b_ih + W_hh h + b_hh)
          c' = f * c + i * g          h' = o * tanh(c')
    GRU   r = σ(W_ir x + b_ir + W_hr h + b_hr)   z = σ(W_iz x + b_iz + W_hz h + b_hz)
          n = tanh(W_in x + b_in + r * (W_hn h + b_hn))             h' = (1 - z) * n + z * h

A step is ``recurrent_step(project(x), state)``: ``project`` is the input projection for all gates at
once — it has no recurrence, so ``Recurrent.unroll`` computes it for the whole sequence in one node —
and ``recurrent_step`` adds ``h @ W_hh.T`` and applies the gates. For RNN and LSTM the recurrent bias
only ever adds to the projection, so ``project`` adds both biases, ``x @ W_ih.T + (b_ih + b_hh)``
(their sum is one node per sequence, not one addition per step; the hand-written baselines and JAX do
the same). GRU's b_hn sits inside ``r * (W_hn h + b_hn)``: its ``project`` adds b_ih only and its
``recurrent_step`` adds b_hh. Two forms of ``recurrent_step`` compute the same numbers:

- ``fused=True`` (default): one fused op per step (``tg.functional.rnn_cell/lstm_cell/gru_cell``),
  fast and lean — the form to train with.
- ``fused=False``: the gates from primitives, each inside its own ``tg.scope`` ("forget_gate", ...),
  so a drawn op-level graph shows one cluster per gate — the form to look at.

The new state tensors are named "h" (and "c").
"""
import math

import numpy as np

import tinygraph as tg
from tinygraph import functional as F
from tinygraph.nn import Module, Parameter
from tinygraph.nn.layers import uniform
from tinygraph.ops.fused import GRUCellBlock, LSTMCellBlock, RNNCellBlock
from tinygraph.tensor import Tensor

from .recurrent import as_float

NONLINEARITIES = {"tanh": F.tanh, "relu": F.relu, "sigmoid": F.sigmoid}


def init_parameters(num_gates, input_size, hidden_size, bias=True, dtype=np.float64, rng=None):
    """Fresh ``{weight_ih, weight_hh[, bias_ih, bias_hh]}`` Parameters, PyTorch's order and init."""
    for what, size in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size <= 0:
            raise ValueError(f"recurrent cell: {what} must be a positive integer, got {size!r}")
    bound = 1 / math.sqrt(hidden_size)
    rows = num_gates * hidden_size
    shapes = {"weight_ih": (rows, input_size), "weight_hh": (rows, hidden_size)}
    if bias:
        shapes.update(bias_ih=(rows,), bias_hh=(rows,))
    return {name: Parameter(uniform(shape, bound, dtype, rng)) for name, shape in shapes.items()}


class RecurrentCell(Module):
    """Base class: parameters, shape checks and the state protocol. Subclasses define ``step``."""
    num_gates = 1
    state_names = ("h",)
    folds_recurrent_bias = True  # b_hh only adds to the projection: ``project`` adds it (not GRU)

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float64, rng=None, fused=True,
                 **options):
        super().__init__()
        self.fused = bool(fused)
        self._configure(**options)
        self._attach(**init_parameters(self.num_gates, input_size, hidden_size, bias, dtype, rng))

    @classmethod
    def from_parameters(cls, weight_ih, weight_hh, bias_ih=None, bias_hh=None, fused=True, **options):
        """A cell that computes with the given tensors (shared, not copied).

        The layers use this to run cells on parameters they register under PyTorch's names
        (``weight_ih_l0``...); tests use it to differentiate with respect to plain tensors.
        Sizes are read from the shapes: weight_ih (G*H, I), weight_hh (G*H, H), biases (G*H,).
        """
        cell = cls.__new__(cls)
        Module.__init__(cell)
        cell.fused = bool(fused)
        cell._configure(**options)
        cell._attach(weight_ih, weight_hh, bias_ih, bias_hh)
        return cell

    def _configure(self):
        pass

    def _attach(self, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        name = type(self).__name__
        rows = weight_hh.shape[0] if weight_hh.ndim == 2 else -1
        hidden = rows // self.num_gates
        if weight_hh.ndim != 2 or weight_hh.shape != (self.num_gates * hidden, hidden) or hidden == 0:
            raise tg.ShapeError(f"{name}: weight_hh must be ({self.num_gates}*H, H), got {weight_hh.shape}")
        if weight_ih.ndim != 2 or weight_ih.shape[0] != rows:
            raise tg.ShapeError(f"{name}: weight_ih must be ({rows}, input_size) to match weight_hh "
                                f"{weight_hh.shape}, got {weight_ih.shape}")
        if (bias_ih is None) != (bias_hh is None):
            raise ValueError(f"{name}: give both bias_ih and bias_hh, or neither")
        for bias_name, b in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
            if b is not None and b.shape != (rows,):
                raise tg.ShapeError(f"{name}: {bias_name} must be ({rows},), got {b.shape}")
        self.input_size, self.hidden_size = weight_ih.shape[1], hidden
        self.weight_ih, self.weight_hh = weight_ih, weight_hh
        self.bias_ih, self.bias_hh = bias_ih, bias_hh

    @property
    def dtype(self):
        """The parameters' dtype (float32 or float64): inputs and states are converted to it."""
        return self.weight_ih.dtype

    # --- the state protocol ---------------------------------------------------------------------
    def initial_state(self, batch, dtype=None):
        """Zeros: h0 (batch, hidden_size), or the tuple (h0, c0) for a cell with two state tensors."""
        dtype = self.dtype if dtype is None else dtype
        zeros = tuple(Tensor._wrap(np.zeros((batch, self.hidden_size), dtype=dtype), name=f"{n}0")
                      for n in self.state_names)
        return zeros[0] if len(zeros) == 1 else zeros

    # --- one step ------------------------------------------------------------------------------
    def forward(self, x, state=None):
        """``(x_t (B, input_size), state) -> state``, checking shapes; ``state=None`` means zeros.

        The state is h (B, hidden_size), or (h, c) for ``LSTMCell``, as in ``torch.nn``."""
        x = self.check_input(x)
        state = self.check_state(state, x.shape[0])
        return self.step(x, state)

    def step(self, x, state):
        """The step math on already checked tensors: ``recurrent_step(project(x), state)``."""
        return self.recurrent_step(self.project(x), state)

    def projection_bias(self):
        """The input projection's bias (G*H,): ``b_ih + b_hh`` (one node, named "b_ih+b_hh") where
        ``folds_recurrent_bias``, else ``b_ih``; None for a cell without biases."""
        if self.bias_ih is None or not self.folds_recurrent_bias:
            return self.bias_ih
        return named(self.bias_ih + self.bias_hh, "b_ih+b_hh")

    def project(self, x, out=None, bias=None):
        """Input projection of every gate, ``x @ W_ih.T + projection_bias()``: (..., input_size) ->
        (..., G*H).

        ``out`` (N, G*H), N the product of x's leading dimensions: where to write it (a fused
        cell's sequence slab, see ``slab_block``). ``bias``: ``projection_bias()`` already computed,
        for a sequence projected in chunks (one bias node for all of them).
        """
        return F.affine(x, self.weight_ih, self.projection_bias() if bias is None else bias, out=out)

    def recurrent_step(self, p, state, out=None):
        """The recurrent part of a step: projection p (B, G*H) and state -> new state.

        A GRU cell without biases runs the gate form (its fused op takes b_hh); RNN and LSTM cells
        run fused with or without them.
        ``out`` (B, width*H): the fused op's output buffer (only with ``slab_block``).
        """
        if self.slab_block is not None:
            return self.fused_step(p, state, out)
        return self.gate_step(p, state)

    @property
    def slab_block(self):
        """The fused op class a step runs as (its ``width`` and ``gate_offset`` lay out a sequence
        slab, see ``tinygraph.ops.fused``), or None when the step is built from primitives."""
        fusable = self.bias_hh is not None or self.folds_recurrent_bias
        return self.block if self.fused and fusable else None

    def check_input(self, x, what="input"):
        """``x`` as a Tensor of the cell's dtype, shape (B, input_size), else ``ShapeError``."""
        x = as_float(x, self.dtype)
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise tg.ShapeError(f"{type(self).__name__}: expected {what} of shape (B, input_size="
                                f"{self.input_size}), got {x.shape}")
        return x

    def check_state(self, state, batch):
        """``state`` as the cell's structure — h (batch, hidden_size), or the tuple (h, c) — of
        tensors of the cell's dtype; None -> zeros."""
        if state is None:
            return self.initial_state(batch)
        single = len(self.state_names) == 1
        if single and not isinstance(state, (tuple, list)):
            state = (state,)
        elif single:
            raise TypeError(f"{type(self).__name__}: the state is one tensor h (B, hidden_size), as in "
                            f"torch.nn.{type(self).__name__}, got a {type(state).__name__} of length "
                            f"{len(state)}")
        names = ", ".join(self.state_names)
        if not isinstance(state, (tuple, list)) or len(state) != len(self.state_names):
            raise TypeError(f"{type(self).__name__}: state must be a tuple ({names}), got "
                            f"{type(state).__name__}" + (f" of length {len(state)}"
                                                         if isinstance(state, (tuple, list)) else ""))
        expected = (batch, self.hidden_size)
        out = []
        for n, s in zip(self.state_names, state):
            s = as_float(s, self.dtype)
            if s.shape != expected:
                raise tg.ShapeError(f"{type(self).__name__}: state {n} has shape {s.shape}, expected "
                                    f"{expected} = (batch, hidden_size)")
            out.append(s)
        return out[0] if single else tuple(out)

    def _gate(self, pre, k):
        """Columns of gate ``k`` of a (B, G*H) pre-activation."""
        H = self.hidden_size
        return pre[:, k * H:(k + 1) * H]

    def extra_repr(self):
        """``input_size, hidden_size, bias=..., fused=...`` for ``repr(cell)``."""
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}, fused={self.fused}"


def named(t, name):
    """``t`` with its ``name`` set (how the new state tensors become "h" and "c"); returns ``t``."""
    t.name = name
    return t


class RNNCell(RecurrentCell):
    """Elman cell: h' = act(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh); act = tanh | relu | sigmoid.

    ``cell(x, h) -> h'``: x (B, input_size), h and h' (B, hidden_size).
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=np.float64, rng=None,
                 fused=True):
        super().__init__(input_size, hidden_size, bias, dtype, rng, fused, nonlinearity=nonlinearity)

    def _configure(self, nonlinearity="tanh"):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; choose one of "
                             f"{', '.join(NONLINEARITIES)}")
        self.nonlinearity = nonlinearity

    block = RNNCellBlock

    def fused_step(self, p, h, out=None):
        """The step as one ``rnn_cell`` op: projection p (B, H) and h (B, H) -> h' (B, H), named "h";
        ``out`` (B, H): where to write h' (see ``tg.functional.rnn_cell``)."""
        return named(F.rnn_cell(p, h, self.weight_hh, None, self.nonlinearity, out), "h")

    def gate_step(self, p, h):
        """The step from primitives: act(p + h @ W_hh.T), p (with both biases) and h (B, H) -> h'."""
        pre = p + F.affine(h, self.weight_hh)
        return named(NONLINEARITIES[self.nonlinearity](pre), "h")

    def extra_repr(self):
        """The base cell's text and ``nonlinearity=...``."""
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class LSTMCell(RecurrentCell):
    """LSTM cell (gate order i, f, g, o as in PyTorch).

    ``cell(x, (h, c)) -> (h', c')``: x (B, input_size), h, c, h', c' (B, hidden_size), with
    c' = f * c + i * g and h' = o * tanh(c').
    """
    num_gates = 4
    state_names = ("h", "c")

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float64, rng=None, fused=True):
        super().__init__(input_size, hidden_size, bias, dtype, rng, fused)

    block = LSTMCellBlock

    def fused_step(self, p, state, out=None):
        """The step as one ``lstm_cell`` op: projection p (B, 4H) and (h, c), each (B, H) -> (h', c')
        named "h" and "c"; ``out`` (B, 6H): the op's output buffer (see ``tg.functional.lstm_cell``)."""
        h, c = F.lstm_cell(p, state[0], state[1], self.weight_hh, None, out)
        return named(h, "h"), named(c, "c")

    def gate_step(self, p, state):
        """The step from primitives, each gate in its scope (``input_gate``, ``forget_gate``,
        ``cell_gate``, ``output_gate``): p (B, 4H, with both biases) and (h, c) -> (h', c'), each
        (B, H)."""
        h, c = state
        pre = p + F.affine(h, self.weight_hh)
        with tg.scope("input_gate"):
            i = F.sigmoid(self._gate(pre, 0))
        with tg.scope("forget_gate"):
            f = F.sigmoid(self._gate(pre, 1))
        with tg.scope("cell_gate"):
            g = F.tanh(self._gate(pre, 2))
        with tg.scope("output_gate"):
            o = F.sigmoid(self._gate(pre, 3))
        c = named(f * c + i * g, "c")
        return named(o * F.tanh(c), "h"), c


class GRUCell(RecurrentCell):
    """GRU cell (gate order r, z, n as in PyTorch; r multiplies the recurrent part of n).

    ``cell(x, h) -> h'``: x (B, input_size), h and h' (B, hidden_size), h' = (1 - z) * n + z * h.
    """
    num_gates = 3
    folds_recurrent_bias = False  # b_hn is multiplied by r: it cannot join the projection

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float64, rng=None, fused=True):
        super().__init__(input_size, hidden_size, bias, dtype, rng, fused)

    block = GRUCellBlock

    def fused_step(self, p, h, out=None):
        """The step as one ``gru_cell`` op: projection p (B, 3H) and h (B, H) -> h' (B, H), named "h";
        ``out`` (B, 5H): the op's output buffer (see ``tg.functional.gru_cell``)."""
        return named(F.gru_cell(p, h, self.weight_hh, self.bias_hh, out), "h")

    def gate_step(self, pre_x, h):
        """The step from primitives, each gate in its scope (``reset_gate``, ``update_gate``,
        ``new_gate``): projection pre_x (B, 3H) and h (B, H) -> h' (B, H)."""
        pre_h = F.affine(h, self.weight_hh, self.bias_hh)
        with tg.scope("reset_gate"):
            r = F.sigmoid(self._gate(pre_x, 0) + self._gate(pre_h, 0))
        with tg.scope("update_gate"):
            z = F.sigmoid(self._gate(pre_x, 1) + self._gate(pre_h, 1))
        with tg.scope("new_gate"):
            n = F.tanh(self._gate(pre_x, 2) + r * self._gate(pre_h, 2))
        # (1 - z) * n + z * h, written with one node fewer and no constant leaf per step
        return named(n + z * (h - n), "h")

