"""Ops without inputs that draw from a random generator: a random value made by an op is part of
the graph, so a compiled step (``tinygraph.jit``) draws it again on every replay, from the same
stream, instead of reusing the traced draw as a constant.
"""
import numpy as np

from ..random import default_generator
from .base import Op, apply


class DropoutMask(Op, register=False):  # no inputs: nothing for the gradient property tests to draw
    """The scaled keep-mask of dropout: ``(u >= p) * 1/(1-p)`` (0 where p == 1), u ~ U[0, 1) of
    ``shape`` drawn from ``rng`` — by default the global generator at the moment the op runs, so
    ``tg.manual_seed`` makes it reproducible. () -> ``shape``, ``dtype``; not differentiable."""
    name = "dropout_mask"
    differentiable = False
    saves = ()
    random = True  # each run draws anew: a compiled step must run it even if nothing reads it

    def __init__(self, shape, p, dtype, rng=None):
        self.shape, self.p, self.dtype = tuple(shape), float(p), np.dtype(dtype)
        self._rng = rng

    def forward(self):
        rng = self._rng or default_generator()
        scale = 0.0 if self.p == 1 else 1 / (1 - self.p)  # p = 1 drops everything, as in PyTorch
        return (rng.random(self.shape) >= self.p).astype(self.dtype) * scale

    def vjp(self, B, g, out):
        return ()


def dropout_mask(shape, p, dtype, rng=None):
    """The ``DropoutMask`` node: a (shape) array of 0 and 1/(1-p), a fresh draw each time it runs."""
    return apply(DropoutMask(shape, p, dtype, rng))
