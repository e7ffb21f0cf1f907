"""Basic layers: Linear, Embedding, Dropout, Sequential (PyTorch names, shapes and initialisation)."""
import math
import numbers

import numpy as np

from .. import functional as F
from ..errors import DTypeError, ShapeError
from ..ops.sources import dropout_mask
from ..random import default_generator
from ..tensor import Tensor, to_array
from .module import Module, Parameter


def _check_size(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


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
        self.in_features = _check_size("Linear", "in_features", in_features)
        self.out_features = _check_size("Linear", "out_features", out_features)
        bound = 1 / math.sqrt(in_features)
        self.weight = Parameter(uniform((out_features, in_features), bound, dtype, rng))
        self.bias = Parameter(uniform((out_features,), bound, dtype, rng)) if bias else None

    def forward(self, x):
        """x (..., in_features) -> (..., out_features); raw arrays/lists are converted to the weight's dtype."""
        if not isinstance(x, Tensor):
            x = Tensor._wrap(to_array(x, what="Linear").astype(self.weight.dtype))
        elif x.dtype != self.weight.dtype:  # numpy would silently promote float32 to float64
            raise DTypeError(f"Linear: input dtype {x.dtype} does not match the weight dtype "
                             f"{self.weight.dtype}; convert the input with x.astype(np.{self.weight.dtype}) "
                             f"or the module with .to(np.{x.dtype})")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ShapeError(f"Linear: expected input of shape (..., {self.in_features}), got {x.shape}")
        return F.affine(x, self.weight, self.bias)  # one node, with or without the bias

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """Row lookup. indices (any shape, integers) -> indices.shape + (embedding_dim,); weight ~ N(0, 1)."""

    def __init__(self, num_embeddings, embedding_dim, dtype=np.float64, rng=None):
        super().__init__()
        self.num_embeddings = _check_size("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _check_size("Embedding", "embedding_dim", embedding_dim)
        rng = rng or default_generator()
        self.weight = Parameter(rng.standard_normal((num_embeddings, embedding_dim)).astype(dtype))

    def forward(self, indices):
        """indices (any shape, integers in [0, num_embeddings)) -> indices.shape + (embedding_dim,);
        float indices raise DTypeError, out-of-range ones ShapeError."""
        return F.embedding(self.weight, indices)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Dropout(Module):
    """Zero each element with probability p in training, scaling the rest by 1/(1-p); identity in eval.

    x (any shape) -> same shape and dtype. The mask comes from ``rng`` or, by default, the global
    generator at call time, so ``tg.manual_seed`` makes it reproducible.
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p, self.rng = float(p), rng

    def forward(self, x):
        """x (any shape) -> same shape and dtype: masked and scaled in training, x itself in eval."""
        x = F.as_tensor(x)
        if not self.training or self.p == 0:
            return x
        # the mask is an op drawing from the generator when it runs, so a compiled step redraws it
        return x * dropout_mask(x.shape, self.p, x.dtype, self.rng)

    def extra_repr(self):
        return f"p={self.p}"


class Sequential(Module):
    """Apply modules in order; they are registered as ``"0"``, ``"1"``, ..."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
            setattr(self, str(i), m)

    def forward(self, x):
        """Each module applied to the previous one's output, in order; returns the last output."""
        for m in self._modules.values():
            x = m(x)
        return x

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        modules = list(self._modules.values())
        return Sequential(*modules[index]) if isinstance(index, slice) else modules[index]
