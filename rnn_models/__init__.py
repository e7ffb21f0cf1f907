"""Recurrent networks as one recurrent node (a cell plus a delayed state edge) unrolled into a Graph."""
from .cells import GRUCell, LSTMCell, RNNCell  # noqa: F401
from .layers import GRU, LSTM, RNN, RecurrentLayer  # noqa: F401
from .recurrent import Recurrent  # noqa: F401
from .registry import CELL_KINDS, make_layer, resolve_cell  # noqa: F401
from .checkpoint import Checkpoint, CheckpointError, NonFiniteError, load_checkpoint, save_checkpoint  # noqa: F401
from .models import CharRNN, SequenceModel, build_model  # noqa: F401
from .tasks import TASKS, make_task  # noqa: F401
from .training import Trainer, TruncatedBPTT, make_optimizer  # noqa: F401
from .rtrl import rtrl  # noqa: F401
from .torch_export import ExportError, to_torch  # noqa: F401
from . import onnx_export  # noqa: F401  (registers the layers' and models' ONNX exporters)

__all__ = ["GRUCell", "LSTMCell", "RNNCell", "GRU", "LSTM", "RNN", "RecurrentLayer", "Recurrent",
           "CELL_KINDS", "make_layer", "resolve_cell", "Checkpoint", "CheckpointError", "NonFiniteError",
           "load_checkpoint", "save_checkpoint", "CharRNN", "SequenceModel", "build_model", "TASKS",
           "make_task", "Trainer", "TruncatedBPTT", "make_optimizer", "rtrl",
           "ExportError", "to_torch"]
