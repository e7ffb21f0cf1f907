"""Modules (layers with parameters) and their helpers, PyTorch-style."""
from . import utils  # noqa: F401
from .module import Module, Parameter  # noqa: F401
from .layers import Dropout, Embedding, Linear, Sequential  # noqa: F401

__all__ = ["Module", "Parameter", "Dropout", "Embedding", "Linear", "Sequential", "utils"]
