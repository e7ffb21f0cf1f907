"""Numerical gradient checking, for our tests and for users (float64 central differences)."""
import numpy as np

from .autograd import grad_of
from .errors import GradcheckError
from .tensor import Tensor


def _as_inputs(inputs):
    inputs = (inputs,) if isinstance(inputs, (Tensor, np.ndarray)) else tuple(inputs)
    out = []
    for x in inputs:
        array = x._data if isinstance(x, Tensor) else np.asarray(x)
        differentiable = array.dtype.kind == "f" and (not isinstance(x, Tensor) or x.requires_grad)
        out.append((array.astype(np.float64) if differentiable else array, differentiable,
                    getattr(x, "name", None)))
    return out


def _projected(fn, arrays, differentiable, projection):
    """sum(fn(*inputs) * projection) — a random projection checks every output element at once."""
    tensors = [Tensor._wrap(a.copy(), requires_grad=d) for a, d in zip(arrays, differentiable)]
    out = fn(*tensors)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return tensors, out, (out * projection).sum() if projection is not None else out


def numerical_grad(fn, arrays, index, eps):
    """Central-difference gradient of the scalar ``fn(*arrays)`` w.r.t. ``arrays[index]``."""
    x = arrays[index]
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    for k in range(flat.size):
        orig = flat[k]
        flat[k] = orig + eps
        plus = fn(*arrays)
        flat[k] = orig - eps
        minus = fn(*arrays)
        flat[k] = orig
        grad.reshape(-1)[k] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check ``fn``'s analytic gradients against central differences in float64.

    Args:
        fn: ``fn(*tensors) -> Tensor`` of any shape.
        inputs: Tensors/arrays; floating ones are checked (Tensors only if they require grad).
    Returns True, or raises ``GradcheckError`` naming the input, the worst index, analytic vs numeric.
    """
    specs = _as_inputs(inputs)
    arrays = [a for a, _, _ in specs]
    differentiable = [d for _, d, _ in specs]
    if not any(differentiable):
        raise ValueError("gradcheck: no floating-point input requires grad, nothing to check")
    _, probe, _ = _projected(fn, arrays, differentiable, None)
    projection = np.random.default_rng(seed).standard_normal(probe.shape)
    tensors, _, scalar = _projected(fn, arrays, differentiable, projection)
    wanted = [t for t, d in zip(tensors, differentiable) if d]
    # an output that no input reaches (e.g. the derivative of a linear fn) has zero gradient
    analytic = iter(grad_of(scalar, wanted) if scalar.requires_grad else
                    [Tensor._wrap(np.zeros_like(t._data)) for t in wanted])

    def scalar_fn(*arrs):
        return _projected(fn, arrs, differentiable, projection)[2].item()

    for i, (array, d, name) in enumerate(specs):
        if not d:
            continue
        a = next(analytic)._data
        n = numerical_grad(scalar_fn, [x.copy() for x in arrays], i, eps)
        err = np.abs(a - n) - (atol + rtol * np.abs(n))
        if a.shape != n.shape or (err > 0).any() or not np.isfinite(a).all():
            worst = np.unravel_index(np.argmax(np.where(np.isfinite(err), err, np.inf)), err.shape) \
                if err.ndim else ()
            label = f"input {i}" + (f" ({name!r})" if name else "")
            raise GradcheckError(
                f"gradcheck: gradient of {label} with shape {array.shape} is wrong at index "
                f"{tuple(int(k) for k in worst)}: analytic {float(a[worst]):.10g} vs numeric {float(n[worst]):.10g} "
                f"(atol={atol}, rtol={rtol}, eps={eps})")
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check second derivatives: the gradient of ``sum(fn(*x) * v)`` (built with ``create_graph``)
    is itself checked with ``gradcheck``."""
    specs = _as_inputs(inputs)
    arrays = [a for a, _, _ in specs]
    differentiable = [d for _, d, _ in specs]
    _, probe, _ = _projected(fn, arrays, differentiable, None)
    projection = np.random.default_rng(seed + 1).standard_normal(probe.shape)

    def first_grads(*tensors):
        out = (fn(*tensors) * projection).sum()
        wanted = [t for t, d in zip(tensors, differentiable) if d]
        grads = grad_of(out, wanted, create_graph=True)
        flat = [g.reshape(-1) for g in grads]
        from .functional import concat
        return concat(flat) if len(flat) > 1 else flat[0]

    return gradcheck(first_grads, [Tensor._wrap(a, requires_grad=d) for a, d in zip(arrays, differentiable)],
                     eps, atol, rtol, seed)
