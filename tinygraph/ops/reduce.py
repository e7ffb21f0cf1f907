"""Reductions, scans, contractions and sorting: forward, gradient rule (``vjp``) and tangent rule
(``jvp``) side by side.

Every op takes normalized parameters (axes non-negative, sorted; the wrappers in
``tinygraph.functional`` validate user arguments). Rules use only ``B``, operators and the methods
ndarray and Tensor share, so under ``create_graph=True`` they build a differentiable graph.

``sum`` and ``max`` live in ``ops/shape.py``; ``min`` shares ``max``'s rules.
"""
import string

import numpy as np

from .base import Op
from .shape import Max, kept_shape


def _flip(a, axis):
    """``a`` reversed along ``axis`` (a view for arrays, a getitem node for Tensors)."""
    axis = axis % a.ndim
    return a[(slice(None),) * axis + (slice(None, None, -1),)]


def _along(order, axis):
    """The index tuple that gathers along ``axis`` with the integer array ``order`` (numpy's
    ``take_along_axis`` written as indexing, so it works on arrays and on Tensors)."""
    ndim = order.ndim
    index = []
    for d in range(ndim):
        if d == axis:
            index.append(order)
        else:
            shape = [1] * ndim
            shape[d] = order.shape[d]
            index.append(np.arange(order.shape[d]).reshape(shape))
    return tuple(index)


def _sorted_order(B, x, axis, descending):
    """Stable argsort along ``axis``; ``descending`` keeps tied elements in their original order too
    (as ``torch.sort(stable=True)``): the ascending order of the reversed input, read backwards."""
    if not descending:
        return B.argsort(x, axis=axis, stable=True)
    n = x.shape[axis]
    return (n - 1) - _flip(B.argsort(_flip(x, axis), axis=axis, stable=True), axis)


# --- reductions -----------------------------------------------------------------------------------
class Min(Max):
    """Min over ``axis``; tied minima share the gradient equally (as ``torch.amin``)."""
    name = "min"
    def forward(self, x): return np.min(x, axis=self.axis, keepdims=self.keepdims)

    def explain(self, x):
        return f"min: cannot reduce a tensor of shape {x.shape} over axis {self.axis} (empty?)"


class MaxShift(Op):
    """The max over ``axis`` (a tuple of axes) kept as size-1 dims, 0 where it is not finite (zeros
    for an empty input): what softmax, log_softmax and logsumexp subtract so that exp cannot
    overflow. A node of its own rather than a constant, so a traced graph (``tinygraph.export``,
    ``tinygraph.compile``) computes it from its input; not differentiable: the shift cancels, and the
    gradient treats it as a constant."""
    name = "max_shift"
    differentiable = False
    saves = ()
    sample = "max_shift"
    def __init__(self, axis): self.axis = axis

    def forward(self, x):
        if not x.size:
            return np.zeros(kept_shape(x.shape, self.axis), x.dtype)
        shift = np.max(x, axis=self.axis, keepdims=True)
        return np.where(np.isfinite(shift), shift, 0).astype(x.dtype)

    def vjp(self, B, g, out, x): return (None,)
    def jvp(self, B, tangents, out, x): return None


def _others_product(B, x, axis):
    """For each element of ``x``, the product of the other elements of its reduced slice (``axis``
    a tuple or None). Written as left-exclusive times right-exclusive cumulative products, so it
    is exact when the slice holds zeros (one or several) and needs no division; O(size)."""
    axes = tuple(range(x.ndim)) if axis is None else axis
    kept = tuple(d for d in range(x.ndim) if d not in axes)
    perm = kept + axes
    lead = tuple(x.shape[d] for d in kept)
    n = int(np.prod([x.shape[d] for d in axes]))
    if n == 0:
        return x * 0
    flat = x.transpose(perm).reshape(lead + (n,))
    ones = np.ones(lead + (1,), dtype=x.dtype)
    left = B.cumprod(B.concat([ones, flat[..., :-1]], -1), axis=-1)
    right = _flip(B.cumprod(B.concat([ones, _flip(flat, -1)[..., :-1]], -1), axis=-1), -1)
    others = (left * right).reshape(tuple(x.shape[d] for d in perm))
    return others.transpose(tuple(np.argsort(perm)))


class Prod(Op):
    """Product over ``axis`` (a tuple or None); the empty product is 1. Zeros in the input get the
    exact gradient (the product of the other elements), for one zero or several."""
    name = "prod"
    saves = ("x",)
    sample = "reduce"
    domain = (-2.0, 2.0)  # products of up to 64 drawn values stay within float32's range
    def __init__(self, axis=None, keepdims=False): self.axis, self.keepdims = axis, keepdims
    def forward(self, x): return np.prod(x, axis=self.axis, keepdims=self.keepdims)

    def vjp(self, B, g, out, x):
        if not self.keepdims:
            g = g.reshape(kept_shape(x.shape, self.axis))
        return (g * _others_product(B, x, self.axis),)

    def jvp(self, B, tangents, out, x):
        (t,) = tangents
        if t is None:
            return None
        return (t * _others_product(B, x, self.axis)).sum(axis=self.axis, keepdims=self.keepdims)


def _count(shape, axis):
    return int(np.prod(shape if axis is None else [shape[d] for d in axis]))


class Var(Op):
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom: ``sum((x - mean)**2) /
    max(N - ddof, 0)``, N the number of reduced elements (numpy's formula; an empty reduction or
    ``ddof >= N`` gives NaN or inf, no exception)."""
    name = "var"
    saves = ("x",)
    sample = "var"
    def __init__(self, axis=None, keepdims=False, ddof=0):
        self.axis, self.keepdims, self.ddof = axis, keepdims, ddof

    def forward(self, x):
        n = _count(x.shape, self.axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = x - np.sum(x, axis=self.axis, keepdims=True) / n
            return np.sum(d * d, axis=self.axis, keepdims=self.keepdims) / max(n - self.ddof, 0)

    def _scale(self, x):
        """d var / d x = scale * (x - mean)."""
        denom = max(_count(x.shape, self.axis) - self.ddof, 0)
        return 2.0 / denom if denom else float("inf")

    def vjp(self, B, g, out, x):
        if not self.keepdims:
            g = g.reshape(kept_shape(x.shape, self.axis))
        return (g * (x - x.mean(axis=self.axis, keepdims=True)) * self._scale(x),)

    def jvp(self, B, tangents, out, x):
        (t,) = tangents
        if t is None:
            return None
        d = x - x.mean(axis=self.axis, keepdims=True)
        return (d * t).sum(axis=self.axis, keepdims=self.keepdims) * self._scale(x)


# --- scans ------------------------------------------------------------------------------------------
class CumSum(Op):
    """Running sum along ``axis`` (an int); the output has the input's shape."""
    name = "cumsum"
    saves = ()
    sample = "scan"
    def __init__(self, axis): self.axis = axis
    def forward(self, x): return np.cumsum(x, axis=self.axis)
    # dx_j = sum_{i >= j} g_i: the running sum from the end
    def vjp(self, B, g, out, x): return (_flip(B.cumsum(_flip(g, self.axis), axis=self.axis), self.axis),)

    def jvp(self, B, tangents, out, x):
        (t,) = tangents
        return None if t is None else B.cumsum(t, axis=self.axis)


class CumProd(Op):
    """Running product along ``axis`` (an int): ``out_i = x_0 * ... * x_i``.

    Gradient: ``dx_j = sum_{i >= j} g_i * prod_{k <= i, k != j} x_k``, exact with zeros in the
    input. ``vjp`` (the definition, run by ``create_graph``) forms the products of all-but-one as an
    (..., n, n) cumulative product, so it is exact to every order; ``vjp_arrays`` (first order)
    is O(n): before the first zero of a slice ``dx_j = (sum_{i >= j} g_i out_i) / x_j``, at the first
    zero z ``dx_z = sum_{i >= z} g_i * cumprod(x with x_z set to 1)_i``, after it 0.
    """
    name = "cumprod"
    saves = ("out", "x")
    sample = "scan"
    domain = (-2.0, 2.0)
    def __init__(self, axis): self.axis = axis
    def forward(self, x): return np.cumprod(x, axis=self.axis)

    def vjp(self, B, g, out, x):
        xt, gt = x.swapaxes(self.axis, -1), g.swapaxes(self.axis, -1)
        n = xt.shape[-1]
        # row j: x with x_j replaced by 1; its running product is prod_{k <= i, k != j} x_k
        rows = B.where(np.eye(n, dtype=bool), 1, xt[..., None, :])
        terms = B.cumprod(rows, axis=-1) * gt[..., None, :]
        upper = np.triu(np.ones((n, n), dtype=bool))  # keeps i >= j
        return (B.where(upper, terms, 0).sum(axis=-1).swapaxes(self.axis, -1),)

    def vjp_arrays(self, g, out, x):
        """``vjp``'s gradient on arrays in O(n), without its (..., n, n) products (the formulas are in
        the class docstring)."""
        axis = self.axis
        before, first, nonzero, first_as_one = _first_zero(np, x, axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            tail = _flip(np.cumsum(_flip(g * out, axis), axis=axis), axis) / nonzero
        at_zero = _flip(np.cumsum(_flip(g * np.cumprod(first_as_one, axis=axis), axis), axis=axis), axis)
        return (np.where(before, tail, np.where(first, at_zero, 0)).astype(out.dtype, copy=False),)

    def jvp(self, B, tangents, out, x):
        # the recurrence out_i = out_{i-1} x_i gives t_out_i = t_out_{i-1} x_i + out_{i-1} t_i: no
        # division, so zeros anywhere (and their derivatives, reverse over forward) are exact;
        # one step per element along the axis
        (t,) = tangents
        if t is None:
            return None
        n = x.shape[self.axis]
        lead = (slice(None),) * self.axis
        steps = []
        for i in range(n):
            at = lead + (slice(i, i + 1),)
            if i == 0:
                steps.append(t[at])
            else:
                before = lead + (slice(i - 1, i),)
                steps.append(steps[-1] * x[at] + out[before] * t[at])
        return B.concat(steps, axis=self.axis) if n else t


def _first_zero(B, x, axis):
    """Masks for the first zero of each slice along ``axis``: (positions before it, the zero itself),
    x with its zeros replaced by 1, and x with only the first zero replaced by 1."""
    zero = x == 0
    seen = B.cumsum(zero, axis=axis)  # zeros up to and including each position
    before = seen == 0
    first = (seen == 1) * zero
    return before, first, B.where(zero, 1, x), B.where(first, 1, x)


class Diff(Op):
    """``n``-th forward difference along ``axis`` (numpy's ``diff``): the axis shrinks by ``n``
    (to 0 if it is shorter). The adjoint of one difference is minus a difference of the gradient
    padded with a zero on each side, so ``dx = (-1)**n diff(pad(g, n), n)``."""
    name = "diff"
    saves = ()
    sample = "diff"
    def __init__(self, n, axis): self.n, self.axis = n, axis
    def forward(self, x): return np.diff(x, n=self.n, axis=self.axis)

    def vjp(self, B, g, out, x):
        axis, n = self.axis, self.n
        def zeros(count):
            shape = list(g.shape)
            shape[axis] = count
            return np.zeros(shape, dtype=g.dtype)
        # the right pad makes the result x's length also when the axis was shorter than n
        padded = B.concat([zeros(n), g, zeros(x.shape[axis] - g.shape[axis])], axis)
        dx = B.diff(padded, n=n, axis=axis)
        return (-dx if n % 2 else dx,)

    def jvp(self, B, tangents, out, x):
        (t,) = tangents
        return None if t is None else B.diff(t, n=self.n, axis=self.axis)


# --- contractions -----------------------------------------------------------------------------------
def parse_subscripts(subscripts):
    """``"ab,bc->ac"`` -> (["ab", "bc"], "ac"); explicit, ellipsis-free subscripts only."""
    inputs, output = subscripts.split("->")
    return inputs.split(","), output


class Einsum(Op):
    """``np.einsum(subscripts, *xs)`` for explicit subscripts without ellipsis (``functional.einsum``
    rewrites implicit outputs and ``...`` into this form). Labels may repeat within an operand
    (``ii->`` trace, ``ii->i`` diagonal) and size-1 dimensions broadcast.

    The gradient of operand k is another einsum: the upstream gradient (labels of the output) times
    the other operands, summed to k's labels. Where k repeats a label, the repeat gets a fresh label
    tied to the first by an identity matrix (``ii->``: ``g * eye``); a label only k has (summed inside
    k alone) is broadcast back; a dimension k broadcast from size 1 is summed back.
    """
    name = "einsum"
    saves = ("xs",)
    sample = "einsum"

    def __init__(self, subscripts, optimize=False):
        self.subscripts, self.optimize = subscripts, optimize
        self._inputs, self._output = parse_subscripts(subscripts)

    def forward(self, *xs): return np.einsum(self.subscripts, *xs, optimize=self.optimize)

    def vjp(self, B, g, out, *xs):
        return tuple(self._operand_grad(B, g, xs, k) for k in range(len(xs)))

    def _operand_grad(self, B, g, xs, k):
        labels, x = self._inputs[k], xs[k]
        others = [(self._inputs[m], xs[m]) for m in range(len(xs)) if m != k]
        elsewhere = set(self._output).union(*(set(s) for s, _ in others))
        used = set(self.subscripts) - set(",->")
        fresh = iter(c for c in string.ascii_letters if c not in used)
        terms, operands = [self._output] + [s for s, _ in others], [g] + [a for _, a in others]
        result, kept, seen = [], [], set()
        for pos, c in enumerate(labels):
            if c in seen:  # a repeat: a fresh label, tied to c by the identity
                tied = next(fresh)
                terms.append(c + tied)
                operands.append(np.eye(x.shape[pos], dtype=g.dtype))
                result.append(tied)
            elif c in elsewhere or labels.count(c) > 1:
                result.append(c)
            kept.append(c in seen or c in elsewhere or labels.count(c) > 1)
            seen.add(c)
        grad = B.einsum(",".join(terms) + "->" + "".join(result), *operands,
                        optimize=self.optimize or len(operands) > 2)
        # back to x's layout: labels only x has are broadcast, size-1 dims of x summed back to 1
        shape = list(grad.shape)
        full = [shape.pop(0) if keep else 1 for keep in kept]
        grad = grad.reshape(tuple(full))
        summed = tuple(d for d, n in enumerate(x.shape) if n == 1 and full[d] != 1)
        if summed:
            grad = grad.sum(axis=summed, keepdims=True)
        return B.broadcast_to(grad, x.shape) if grad.shape != x.shape else grad

    def jvp(self, B, tangents, out, *xs):
        total = None
        for k, t in enumerate(tangents):
            if t is not None:
                term = B.einsum(self.subscripts, *xs[:k], t, *xs[k + 1:], optimize=self.optimize)
                total = term if total is None else total + term
        return total



class Diagonal(Op):
    """``np.diagonal(x, offset, axis1, axis2)``: the two axes are removed and the diagonal appended
    as the last axis. The gradient places g on that diagonal of a zero tensor of x's shape."""
    name = "diagonal"
    saves = ()
    sample = "diagonal"
    def __init__(self, offset, axis1, axis2): self.offset, self.axis1, self.axis2 = offset, axis1, axis2
    def forward(self, x): return np.diagonal(x, self.offset, self.axis1, self.axis2)

    def vjp(self, B, g, out, x):
        a1, a2, k = self.axis1, self.axis2, self.offset
        n = g.shape[-1]
        rows, cols = np.arange(n) + max(-k, 0), np.arange(n) + max(k, 0)
        index = [slice(None)] * x.ndim
        index[a1], index[a2] = rows, cols
        # numpy puts the indexed dimension where the two axes were if they are adjacent, else first
        position = min(a1, a2) if abs(a1 - a2) == 1 else 0
        rest = list(range(g.ndim - 1))
        rest.insert(position, g.ndim - 1)
        return (B.index_add(x.shape, tuple(index), g.transpose(tuple(rest)), False),)

    def jvp(self, B, tangents, out, x):
        (t,) = tangents
        return None if t is None else B.diagonal(t, self.offset, self.axis1, self.axis2)



# --- sorting ----------------------------------------------------------------------------------------
class Sort(Op):
    """Values sorted along ``axis`` (stable; ``descending`` for largest first). The gradient of each
    output position goes back to the input element that was moved there."""
    name = "sort"
    saves = ("x",)
    sample = "sort"
    distinct = True  # at ties the gradient is not unique
    def __init__(self, axis, descending=False): self.axis, self.descending = axis, descending
    def forward(self, x):
        # the values do not depend on the order chosen among ties: numpy's sort, without the indices
        ascending = np.sort(x, axis=self.axis, kind="stable")
        return _flip(ascending, self.axis) if self.descending else ascending

    def vjp(self, B, g, out, x):
        order = _sorted_order(B, x, self.axis, self.descending)
        inverse = B.argsort(order, axis=self.axis, stable=True)  # where each input element went
        return (g[_along(inverse, self.axis)],)

    def jvp(self, B, tangents, out, x):
        (t,) = tangents
        if t is None:
            return None
        return t[_along(_sorted_order(B, x, self.axis, self.descending), self.axis)]


class _Index(Op, register=False):
    """An int64 result (positions): not differentiable, and its tangent is zero."""
    differentiable = False
    saves = ()
    def jvp(self, B, tangents, out, x): return None


class ArgMax(_Index):
    """Position of the first maximum along ``axis`` (an int, or None for the flattened input)."""
    name = "argmax"
    sample = "arg_reduce"
    def __init__(self, axis=None, keepdims=False): self.axis, self.keepdims = axis, keepdims
    def forward(self, x): return np.argmax(x, axis=self.axis, keepdims=self.keepdims).astype(np.int64)


class ArgMin(ArgMax):
    """Position of the first minimum along ``axis`` (an int, or None for the flattened input)."""
    name = "argmin"
    def forward(self, x): return np.argmin(x, axis=self.axis, keepdims=self.keepdims).astype(np.int64)


class ArgSort(_Index):
    """The stable order that sorts ``x`` along ``axis`` (``descending``: ties in original order)."""
    name = "argsort"
    sample = "sort"
    def __init__(self, axis, descending=False): self.axis, self.descending = axis, descending
    def forward(self, x): return _sorted_order(np, x, self.axis, self.descending).astype(np.int64)
