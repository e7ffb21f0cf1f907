"""Three recurrent cells of the literature, each an ordinary ``tinygraph.nn.Module`` whose ``forward``
is one time step built from tinygraph ops — nothing else is needed to fold, unroll, stack, train,
checkpoint and draw them (the protocol is in ``rnn_models.recurrent``)::

    from rnn_models import Recurrent, RecurrentLayer, SequenceModel
    node = Recurrent(MinimalGatedUnit(3, 8))                  # outputs, h = node.unroll(xs)
    layer = RecurrentLayer(PeepholeLSTM, 3, 8, num_layers=2)  # out, (h_n, c_n) = layer(xs)
    model = SequenceModel("examples.cells:IndRNN", 2, 32, 1, head="many_to_one")

and on the command line ``tinygraph train --task adding --cell examples.cells:MinimalGatedUnit``.
Shapes: x (B, input_size); h, c (B, hidden_size).
"""
import numpy as np

import tinygraph as tg
from tinygraph.nn import Linear, Module, Parameter


class MinimalGatedUnit(Module):
    """Zhou et al. (2016), "Minimal gated unit for recurrent neural networks": one gate f.

        f  = σ(W_f x + U_f h + b_f)
        h~ = tanh(W_h x + U_h (f ⊙ h) + b_h)
        h' = (1 - f) ⊙ h + f ⊙ h~

    ``cell(x, h) -> h'``.
    """

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input = Linear(input_size, 2 * hidden_size)                  # [W_f; W_h] x + [b_f; b_h]
        self.forget = Linear(hidden_size, hidden_size, bias=False)        # U_f
        self.candidate = Linear(hidden_size, hidden_size, bias=False)     # U_h

    def forward(self, x, h):
        H = h.shape[-1]
        wx = self.input(x)
        f = tg.sigmoid(wx[:, :H] + self.forget(h))
        candidate = tg.tanh(wx[:, H:] + self.candidate(f * h))
        return h + f * (candidate - h)


class PeepholeLSTM(Module):
    """Gers & Schmidhuber (2000), an LSTM whose gates also read the cell state (peepholes p_i, p_f, p_o).

        i = σ(W_i x + U_i h + p_i ⊙ c + b_i)     f = σ(W_f x + U_f h + p_f ⊙ c + b_f)
        c' = f ⊙ c + i ⊙ tanh(W_c x + U_c h + b_c)
        o = σ(W_o x + U_o h + p_o ⊙ c' + b_o)    h' = o ⊙ tanh(c')

    ``cell(x, (h, c)) -> (h', c')``; the step's output is h'.
    """
    state_names = ("h", "c")

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.input = Linear(input_size, 4 * hidden_size)
        self.recurrent = Linear(hidden_size, 4 * hidden_size, bias=False)
        self.peephole = Parameter(np.zeros((3, hidden_size)))            # p_i, p_f, p_o

    def initial_state(self, batch, dtype):
        """Zeros (h0, c0), each (batch, hidden_size): the state is a pair."""
        return tuple(tg.tensor(np.zeros((batch, self.hidden_size), dtype=dtype), name=n)
                     for n in ("h0", "c0"))

    def forward(self, x, state):
        h, c = state
        H = self.hidden_size
        pre = self.input(x) + self.recurrent(h)
        i = tg.sigmoid(pre[:, :H] + self.peephole[0] * c)
        f = tg.sigmoid(pre[:, H:2 * H] + self.peephole[1] * c)
        c = f * c + i * tg.tanh(pre[:, 2 * H:3 * H])
        o = tg.sigmoid(pre[:, 3 * H:] + self.peephole[2] * c)
        return o * tg.tanh(c), c


class IndRNN(Module):
    """Li et al. (2018), "Independently recurrent neural network": each unit only sees its own past.

        h' = relu(W x + u ⊙ h + b)       u (hidden_size,) — a vector, not a matrix

    ``cell(x, h) -> h'``. u starts in [0, 1): |u| ≤ 1 keeps h from exploding through time.
    """

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input = Linear(input_size, hidden_size)
        self.recurrent_weight = Parameter(tg.random.default_generator().uniform(0, 1, hidden_size))

    def forward(self, x, h):
        return tg.relu(self.input(x) + self.recurrent_weight * h)
