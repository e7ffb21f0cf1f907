"""Recurrent networks as one recurrent node (a cell plus a delayed state edge) unrolled into a Graph."""
from .cells import GRUCell, LSTMCell, RNNCell  # noqa: F401
from .layers import GRU, LSTM, RNN  # noqa: F401
from .recurrent import Recurrent  # noqa: F401
