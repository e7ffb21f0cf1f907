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


MODES = ("rev", "fwd")


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, modes=("rev",), directions=2):
    """Check ``fn``'s analytic derivatives against central differences in float64.

    Args:
        fn: ``fn(*tensors) -> Tensor`` of any shape.
        inputs: Tensors/arrays; floating ones are checked (Tensors only if they require grad).
        modes: which derivatives to check (``jax.test_util.check_grads``' ``modes``): "rev" checks
            the gradient of a random projection of the output, input by input; "fwd" checks the
            forward-mode J v (``tinygraph.forward``) against (fn(x + eps v) - fn(x - eps v)) / 2 eps
            along ``directions`` random directions v, one tangent per checked input.
    Returns True, or raises ``GradcheckError`` naming the input (or direction), the worst index,
    analytic vs numeric.
    """
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    if not modes or any(m not in MODES for m in modes):
        raise ValueError(f"gradcheck: modes must be a non-empty tuple of {MODES}, got {modes!r}")
    specs = _as_inputs(inputs)
    arrays = [a for a, _, _ in specs]
    differentiable = [d for _, d, _ in specs]
    if not any(differentiable):
        raise ValueError("gradcheck: no floating-point input requires grad, nothing to check")
    if "fwd" in modes:
        _check_forward(fn, arrays, differentiable, eps, atol, rtol, seed, directions)
    if "rev" not in modes:
        return True
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


def _check_forward(fn, arrays, differentiable, eps, atol, rtol, seed, directions):
    """``gradcheck``'s "fwd" mode: J v from the dual numbers vs central differences along v."""
    from .forward import dual_level, make_dual, unpack_dual
    rng = np.random.default_rng(seed + 2)

    def run(*values):
        out = fn(*values)
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        return out
    for direction in range(directions):
        vs = [rng.standard_normal(a.shape) if d else None for a, d in zip(arrays, differentiable)]
        with dual_level():
            out = run(*[Tensor._wrap(a.copy()) if v is None else make_dual(a.copy(), v)
                        for a, v in zip(arrays, vs)])
            tangent = unpack_dual(out)[1]
        a = np.zeros(out.shape) if tangent is None else tangent._data.astype(np.float64)

        def shifted(sign):
            values = [x if v is None else x + sign * eps * v for x, v in zip(arrays, vs)]
            return run(*[Tensor._wrap(x.copy()) for x in values])._data.astype(np.float64)
        n = (shifted(1) - shifted(-1)) / (2 * eps)
        err = np.abs(a - n) - (atol + rtol * np.abs(n))
        if a.shape != n.shape or (err > 0).any() or not np.isfinite(a).all():
            worst = np.unravel_index(np.argmax(np.where(np.isfinite(err), err, np.inf)), err.shape) \
                if err.ndim else ()
            raise GradcheckError(
                f"gradcheck: forward-mode J v along random direction {direction} is wrong at output "
                f"index {tuple(int(k) for k in worst)} (output shape {out.shape}): analytic "
                f"{float(a[worst]):.10g} vs numeric {float(n[worst]):.10g} (atol={atol}, rtol={rtol}, "
                f"eps={eps})")


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
