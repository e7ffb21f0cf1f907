"""Gradient clipping, as ``torch.nn.utils``."""
import numpy as np


def _with_grads(parameters):
    params = [parameters] if hasattr(parameters, "grad") else list(parameters)
    return [p for p in params if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so their joint norm is at most ``max_norm``; returns the norm
    before clipping (a float). ``norm_type`` may be ``float('inf')``."""
    params = _with_grads(parameters)
    if not params:
        return 0.0
    if norm_type == float("inf"):
        total = max(float(np.abs(p.grad).max()) for p in params)
    else:
        total = float(sum(float((np.abs(p.grad) ** norm_type).sum()) for p in params) ** (1.0 / norm_type))
    if error_if_nonfinite and not np.isfinite(total):
        raise FloatingPointError(f"clip_grad_norm_: the total gradient norm is {total}; pass "
                                 f"error_if_nonfinite=False to clip anyway")
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for p in params:
            p.grad = p.grad * np.asarray(coef, dtype=p.grad.dtype)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element to [-clip_value, clip_value]."""
    for p in _with_grads(parameters):
        p.grad = np.clip(p.grad, -clip_value, clip_value)
