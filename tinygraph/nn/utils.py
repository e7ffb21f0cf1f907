"""Gradient clipping, as ``torch.nn.utils``: both functions change ``p.grad`` of the given parameters."""
import math
import numbers

import numpy as np

from .. import functional as F
from ..tensor import Tensor


def _with_grads(parameters):
    """The parameters (an iterable, or a single Tensor) whose ``.grad`` is set."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p for p in params if p.grad is not None]


def _grad_array(p):
    return p.grad._data if isinstance(p.grad, Tensor) else np.asarray(p.grad)


def _vector_norm(array, norm_type):
    """``torch.linalg.vector_norm`` of the flattened array: (sum |x|^p)^(1/p), or max |x| for inf."""
    magnitudes = np.abs(array)
    if norm_type == math.inf:
        return float(magnitudes.max()) if magnitudes.size else 0.0
    return float((magnitudes ** norm_type).sum()) ** (1.0 / norm_type)


def _check_nonnegative(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{owner}: {name} must be a number >= 0, got {value!r}")


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their joint ``norm_type``-norm is at most ``max_norm``.

    Returns the total norm before clipping, as a Python float. As in PyTorch, the total is the norm of
    the per-parameter norms and the scale is ``min(1, max_norm / (total + 1e-6))``. ``norm_type`` is
    any p > 0 or ``float('inf')``.
    """
    _check_nonnegative("clip_grad_norm_", "max_norm", max_norm)
    if isinstance(norm_type, str) and norm_type.lower() == "inf":
        norm_type = math.inf
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) or not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be a number > 0 or float('inf'), got {norm_type!r}")
    params = _with_grads(parameters)
    if not params:
        return 0.0
    norms = np.array([_vector_norm(_grad_array(p), norm_type) for p in params])
    total = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise FloatingPointError(f"clip_grad_norm_: the total {norm_type}-norm of the gradients of "
                                 f"{len(params)} parameters is {total}; fix the NaN/Inf (e.g. with "
                                 f"tg.detect_anomaly()) or pass error_if_nonfinite=False to clip anyway")
    coef = max_norm / (total + 1e-6)
    if coef < 1 or math.isnan(coef):
        for p in params:  # a new array: the old one may be shared
            p.grad = p.grad * np.asarray(coef, dtype=p.dtype)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element to ``[-clip_value, clip_value]`` (``clip_value >= 0``)."""
    _check_nonnegative("clip_grad_value_", "clip_value", clip_value)
    clip_value = float(clip_value)  # a numpy float64 bound would upcast float32 gradients
    for p in _with_grads(parameters):
        if isinstance(p.grad, Tensor):  # a differentiable gradient (create_graph=True) stays one
            p.grad = F.clip(p.grad, -clip_value, clip_value)
        else:
            p.grad = np.clip(p.grad, -clip_value, clip_value)
