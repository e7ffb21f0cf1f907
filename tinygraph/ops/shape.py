"""Reductions and structural primitives: sum, max, reshape, transpose, broadcast, indexing, concat."""
import numpy as np

from .base import Op
from .lazy import index_add


def kept_shape(shape, axis):
    """``shape`` with the reduced ``axis`` (a tuple, or None for all) set to 1."""
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else n for i, n in enumerate(shape))


class Sum(Op):
    """Sum over ``axis`` (a tuple of non-negative axes, or None for all)."""
    name = "sum"
    saves = ()
    sample = "reduce"
    def __init__(self, axis=None, keepdims=False): self.axis, self.keepdims = axis, keepdims
    def forward(self, x): return np.sum(x, axis=self.axis, keepdims=self.keepdims)
    def vjp(self, B, g, out, x):
        if not self.keepdims:
            g = g.reshape(kept_shape(x.shape, self.axis))
        return (B.broadcast_to(g, x.shape),)

    def jvp(self, B, tangents, out, x):
        (t,) = tangents
        return None if t is None else t.sum(axis=self.axis, keepdims=self.keepdims)


class Max(Op):
    """Max over ``axis``; tied maxima share the gradient equally (as ``torch.amax``)."""
    name = "max"
    saves = ("out", "x")
    sample = "reduce"
    distinct = True
    def __init__(self, axis=None, keepdims=False): self.axis, self.keepdims = axis, keepdims
    def forward(self, x): return np.max(x, axis=self.axis, keepdims=self.keepdims)
    def vjp(self, B, g, out, x):
        keep = kept_shape(x.shape, self.axis)
        mask = (x == out.reshape(keep)).astype(g.dtype)
        return (g.reshape(keep) * mask / mask.sum(axis=self.axis, keepdims=True),)

    def jvp(self, B, tangents, out, x):
        # the tangent of a max is the mean tangent of the elements tied at it
        (t,) = tangents
        if t is None:
            return None
        mask = (x == out.reshape(kept_shape(x.shape, self.axis))).astype(t.dtype)
        shared = (t * mask).sum(axis=self.axis, keepdims=True) / mask.sum(axis=self.axis, keepdims=True)
        return shared if self.keepdims else shared.reshape(out.shape)

    def explain(self, x):
        return f"max: cannot reduce a tensor of shape {x.shape} over axis {self.axis} (empty?)"


class Reshape(Op):
    """The elements of x in ``shape`` (one -1 stands for the rest); the gradient is g reshaped back.
    Element counts that differ raise ShapeError."""
    name = "reshape"
    saves = ()
    sample = "reshape"
    def __init__(self, shape): self.shape = shape
    def forward(self, x): return x.reshape(self.shape)
    def vjp(self, B, g, out, x): return (g.reshape(x.shape),)
    def jvp(self, B, tangents, out, x):
        t, = tangents
        return None if t is None else t.reshape(out.shape)  # out.shape: the -1 resolved
    def explain(self, x):
        return (f"reshape: cannot reshape {x.shape} ({x.size} elements) into {self.shape}; "
                f"the element counts must match (one -1 may stand for the rest)")


class Transpose(Op):
    """Permute axes (a full permutation tuple)."""
    name = "transpose"
    saves = ()
    sample = "transpose"
    def __init__(self, axes):
        self.axes = axes
        self._inverse = tuple(int(k) for k in np.argsort(axes))   # once, not in every backward
    def forward(self, x): return x.transpose(self.axes)
    def vjp(self, B, g, out, x): return (g.transpose(self._inverse),)
    def jvp(self, B, tangents, out, x):
        t, = tangents
        return None if t is None else t.transpose(self.axes)
    def explain(self, x):
        return f"transpose: axes {self.axes} are not a permutation of the {x.ndim} axes of {x.shape}"


class BroadcastTo(Op):
    """x broadcast to ``shape`` (a read-only view); the gradient sums g back over the broadcast axes. A
    shape x does not broadcast to raises ShapeError."""
    name = "broadcast_to"
    saves = ()
    sample = "broadcast_to"
    def __init__(self, shape): self.shape = shape
    def forward(self, x): return np.broadcast_to(x, self.shape)
    def vjp(self, B, g, out, x): return (B.unbroadcast(g, x.shape),)
    def jvp(self, B, tangents, out, x):
        t, = tangents
        return None if t is None else B.broadcast_to(t, self.shape)
    def explain(self, x):
        return f"broadcast_to: cannot broadcast {x.shape} to {self.shape}"


def is_advanced(index):
    """True when the index holds arrays, so positions can repeat and gradients must accumulate."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, np.ndarray) for p in parts)


class GetItem(Op):
    """``x[index]`` for ints, slices, None, Ellipsis and integer/bool arrays (numpy semantics)."""
    name = "getitem"
    saves = ()
    sample = "getitem"
    def __init__(self, index): self.index, self.advanced = index, is_advanced(index)
    def forward(self, x): return x[self.index]
    def vjp(self, B, g, out, x): return (B.index_add(x.shape, self.index, g, self.advanced),)
    def jvp(self, B, tangents, out, x):
        t, = tangents
        return None if t is None else t[self.index]
    def selection(self): return None if self.advanced else self.index
    def explain(self, x):
        return f"getitem: index {self.index!r} is not valid for a tensor of shape {x.shape}"


class IndexAdd(Op):
    """Zeros of ``shape`` with ``g`` added at ``index``: the gradient of ``getitem``, as an op so that
    ``create_graph=True`` can differentiate through indexing."""
    name = "index_add"
    saves = ()
    sample = "index_add"
    def __init__(self, shape, index, advanced): self.shape, self.index, self.advanced = shape, index, advanced
    def forward(self, g): return index_add(self.shape, self.index, g, self.advanced)
    def vjp(self, B, g, out, src): return (g[self.index],)
    def jvp(self, B, tangents, out, src):
        t, = tangents  # linear: the tangent is the op applied to the source's tangent
        return None if t is None else B.apply(self, t)


class Concat(Op):
    """Join tensors along ``axis``; the gradient is the matching slice of g for each input."""
    name = "concat"
    saves = ()
    sample = "concat"
    def __init__(self, axis): self.axis = axis
    def forward(self, *xs): return np.concatenate(xs, axis=self.axis)
    def vjp(self, B, g, out, *xs):
        ends = np.cumsum([x.shape[self.axis] for x in xs])
        lead = (slice(None),) * self.axis
        return tuple(g[lead + (slice(end - x.shape[self.axis], end),)] for x, end in zip(xs, ends))

    def jvp(self, B, tangents, out, *xs):
        if all(t is None for t in tangents):
            return None
        return B.concat([_or_zeros(B, t, x, out.dtype) for t, x in zip(tangents, xs)], axis=self.axis)

    def explain(self, *xs):
        shapes = ", ".join(str(x.shape) for x in xs)
        return (f"concat: shapes {shapes} must agree on every dimension except axis {self.axis}")


class Stack(Op):
    """Join same-shaped tensors along a new ``axis``; one node however many inputs (an unrolled
    sequence stacks T steps)."""
    name = "stack"
    saves = ()
    sample = "stack"
    lazy_grad = True  # g may be a lazy Product; g[lead + (k,)] slices it without multiplying out
    def __init__(self, axis, out=None, assume_filled=False):   # see functional.stack
        self.axis, self._out, self._filled = axis, out, assume_filled   # buffers and flags: not in attrs

    def forward(self, *xs):
        if self._out is None:
            return np.stack(xs, axis=self.axis)
        if self._filled:   # the inputs are out's slices, written in place by the ops that made them
            return self._out
        # ``out`` is a buffer the inputs may already live in (a recurrent layer's slab): copying a
        # view onto itself is a no-op in numpy, so the stacked sequence costs no memory.
        lead = (slice(None),) * self.axis
        for k, x in enumerate(xs):
            np.copyto(self._out[lead + (k,)], x)
        return self._out

    def vjp(self, B, g, out, *xs):
        if self.axis == 0 and g.__class__ is np.ndarray:
            return tuple(g)   # the same views g[k], made by one iteration in C
        lead = (slice(None),) * self.axis
        return tuple(g[lead + (k,)] for k in range(len(xs)))

    def jvp(self, B, tangents, out, *xs):
        if all(t is None for t in tangents):
            return None
        return B.stack([_or_zeros(B, t, x, out.dtype) for t, x in zip(tangents, xs)], axis=self.axis)

    def explain(self, *xs):
        shapes = sorted({x.shape for x in xs})
        return f"stack: all tensors must have the same shape, got {shapes}"


class AsType(Op):
    """x cast to ``dtype``; the gradient is g cast back to x's dtype (none through a cast to integers or
    bool: those are piecewise constant)."""
    name = "astype"
    saves = ()
    sample = "astype"
    def __init__(self, dtype): self.dtype = np.dtype(dtype)
    def forward(self, x): return x.astype(self.dtype)
    def vjp(self, B, g, out, x): return (g.astype(x.dtype),)
    def jvp(self, B, tangents, out, x):
        t, = tangents  # a cast to integers or bool is piecewise constant: its tangent is zero
        return None if t is None or self.dtype.kind != "f" else t.astype(self.dtype)


def _or_zeros(B, t, x, dtype):
    """The tangent ``t`` of input ``x``, or zeros of ``x``'s shape and ``dtype`` (the output's) for None."""
    return B.zeros(x.shape, dtype=dtype) if t is None else t
