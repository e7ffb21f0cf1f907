"""Layout primitives beyond ``ops.shape``: copies, flips, rolls and constant padding.

Most layout functions (squeeze, expand_dims, moveaxis, tile, repeat, the stacks, split...) are
composites of ``reshape``, ``transpose``, ``broadcast_to``, ``getitem`` and ``concat`` in
``tinygraph.functional`` and need no rule; the ops here are those whose own rule is cheaper than the
composite's (a flip's gradient is a flip, not a scatter into zeros).
"""
import numpy as np

from .base import Op


class Clone(Op):
    """A copy of ``x`` that stays in the graph (``Tensor.clone``): the gradient passes unchanged."""
    name = "clone"
    saves = ()
    sample = "unary"
    def forward(self, x): return x.copy()
    def vjp(self, B, g, out, x): return (g,)
    def jvp(self, B, tangents, out, x): return tangents[0]


class Flip(Op):
    """Reverse the order of elements along ``axis`` (a tuple of non-negative axes; () flips nothing).
    A flip is its own inverse and its own transpose, so both rules are flips."""
    name = "flip"
    saves = ()
    sample = "flip"
    def __init__(self, axis): self.axis = axis
    def forward(self, x): return np.flip(x, self.axis)
    def vjp(self, B, g, out, x): return (B.flip(g, self.axis),)
    def jvp(self, B, tangents, out, x):
        t, = tangents
        return None if t is None else B.flip(t, self.axis)


class Roll(Op):
    """Shift elements cyclically by ``shift[k]`` along ``axis[k]`` (tuples of equal length), or, with
    ``axis`` None, by the int ``shift`` over the flattened array (shape kept): element i moves to
    i + shift. The transpose of a roll is the roll back."""
    name = "roll"
    saves = ()
    sample = "roll"
    def __init__(self, shift, axis): self.shift, self.axis = shift, axis
    def forward(self, x): return np.roll(x, self.shift, self.axis)
    def vjp(self, B, g, out, x): return (B.roll(g, _negated(self.shift), self.axis),)
    def jvp(self, B, tangents, out, x):
        t, = tangents
        return None if t is None else B.roll(t, self.shift, self.axis)


def _negated(shift):
    return tuple(-s for s in shift) if isinstance(shift, tuple) else -shift


class Pad(Op):
    """Constant padding: ``pad_width`` and ``constant_values`` hold one ``(before, after)`` pair per
    axis, e.g. x (2, 3) with ((1, 0), (2, 2)) -> (3, 7). The gradient is the inner block of g; the
    tangent is the padded tangent with zeros (the constants do not move)."""
    name = "pad"
    saves = ()
    sample = "pad"
    def __init__(self, pad_width, constant_values):
        self.pad_width, self.constant_values = pad_width, constant_values

    def forward(self, x):
        if not self.pad_width:  # 0-d: nothing to pad (numpy refuses the empty width)
            return x.copy()
        return np.pad(x, self.pad_width, mode="constant", constant_values=self.constant_values)

    def vjp(self, B, g, out, x):
        return (g[tuple(slice(before, before + n) for (before, _), n in zip(self.pad_width, x.shape))],)

    def jvp(self, B, tangents, out, x):
        t, = tangents
        return t if t is None or not self.pad_width else B.pad(t, self.pad_width)
