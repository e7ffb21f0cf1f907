"""Basic layers: Linear, Embedding, Dropout, Sequential (PyTorch names, shapes and initialisation)."""
import math

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from ..random import default_generator
from ..tensor import Tensor
from .module import Module, Parameter


def uniform(shape, bound, dtype=np.float64, rng=None):
    """U(-bound, bound) samples — PyTorch's default for Linear and recurrent weights."""
    rng = rng or default_generator()
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Linear(Module):
    """y = x @ weight.T + bias.  x (..., in_features) -> (..., out_features).

    weight (out_features, in_features), bias (out_features,), both U(-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float64, rng=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features)
        self.weight = Parameter(uniform((out_features, in_features), bound, dtype, rng))
        self.bias = Parameter(uniform((out_features,), bound, dtype, rng)) if bias else None

    def forward(self, x):
        x = F.as_tensor(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ShapeError(f"Linear: expected input (..., {self.in_features}), got {x.shape}")
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """Row lookup. indices (any shape, integers) -> indices.shape + (embedding_dim,); weight ~ N(0, 1)."""

    def __init__(self, num_embeddings, embedding_dim, dtype=np.float64, rng=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        rng = rng or default_generator()
        self.weight = Parameter(rng.standard_normal((num_embeddings, embedding_dim)).astype(dtype))

    def forward(self, indices):
        return F.embedding(self.weight, indices)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Dropout(Module):
    """Zero each element with probability p in training, scaling the rest by 1/(1-p); identity in eval."""

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p, self.rng = p, rng

    def forward(self, x):
        x = F.as_tensor(x)
        if not self.training or self.p == 0:
            return x
        rng = self.rng or default_generator()
        keep = (rng.random(x.shape) >= self.p).astype(x.dtype) / (1 - self.p)
        return x * Tensor._wrap(keep)

    def extra_repr(self):
        return f"p={self.p}"


class Sequential(Module):
    """Apply modules in order; they are registered as ``"0"``, ``"1"``, ..."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x
