"""Fused ops: one node where the composed version needs many, each with its own checked rule.

They exist because they are measurably faster (fewer Python-level nodes, fewer temporaries) and store
less for backward; the property tests cover them like every other op, and tests check them equal to
their composed definitions. Every rule is written with ``B``, so they stay twice differentiable; where
an in-place array form is faster, it is the op's ``vjp_arrays`` beside it, checked equal to the rule.

A recurrent cell block receives the *input projection* ``p = x @ W_ih.T + b_ih`` (computed by
``affine``, once per sequence when the whole input is known) and does the recurrent part. An op has one
output, so an LSTM/GRU block returns its new state together with the gate activations its gradient
needs, side by side along the last axis; the caller slices the state out (views, no copy).

Output buffers: ``affine`` and the cell blocks may be handed ``out=``, an array their result is written
into (like numpy's ``out``; kept out of ``attrs``, so it never shows in a drawing). A recurrent layer
uses it to run a whole sequence in one slab ``(T, B, width*H)``: the projection is written into each
row's gate columns (``gate_offset*H`` on) and step t computes its row in place, consuming its own
projection, which no gradient rule reads. That is what the hand-written baselines do with their
activation buffer: the sequence's values exist once.
"""
import numpy as np

from .base import Op
from .lazy import Product


def plus(*terms):
    """The sum of the terms that are not None (a tangent rule's zero tangents), None if all are."""
    total = None
    for term in terms:
        if term is not None:
            total = term if total is None else total + term
    return total


def times(tangent, factor):
    """``tangent @ factor`` — None for a zero tangent."""
    return None if tangent is None else tangent @ factor


def recurrent_pre(B, tangents, h, w_hh):
    """The tangent of ``p + h @ W_hh.T [+ b_hh]`` from the tangents (tp, th, tW[, tb]): (B, G*H) or
    None."""
    tp, th, tw, *tb = tangents
    pre = plus(tp, times(th, w_hh.T), None if tw is None else h @ tw.T, *tb)
    if pre is not None and len(pre.shape) == 1:  # only the bias moves: the same for every row
        pre = B.broadcast_to(pre, h.shape[:1] + pre.shape)
    return pre


def row_sum(a):
    """``a.sum(axis=0)`` of a (B, n) array: the bias gradient of a step. One row is that row itself
    (a view: a sum of one term is exact), which saves a reduction per step at B = 1."""
    return a.reshape(a.shape[1:]) if a.shape[0] == 1 else np.add.reduce(a, axis=0)


def sigmoid_(a):
    """In-place sigmoid in its tanh form (no overflow, one transcendental call)."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5


class Affine(Op):
    """x @ W.T [+ b].  x (..., in), W (out, in), b (out,) optional -> (..., out).  ``nn.Linear``'s op.

    ``input_grad=False`` (x is data, e.g. the one-hot inputs of a sequence) skips the gradient of x:
    for an input projection over a whole sequence it is as large as the forward matmul.
    """
    name = "affine"
    saves = ("x", "w")
    sample = "affine"

    def __init__(self, input_grad=True, out=None):
        self._input_grad = input_grad  # a gradient flag, not a parameter of the op (kept out of attrs)
        self._out = out                # None, or a 2-D (N, out) array to write into

    # Leading dimensions are flattened into one 2-D matmul: BLAS is faster on one (T*B, in) block
    # than numpy's stacked matmul over T (B, in) blocks with a transposed weight.
    def forward(self, x, w, *b):
        out = np.matmul(x.reshape(-1, x.shape[-1]), w.T, out=self._out)
        if b:
            out += b[0]
        return out.reshape(x.shape[:-1] + (w.shape[0],))

    def vjp(self, B, g, out, x, w, *b):
        rows = g.reshape((-1, g.shape[-1]))
        dx = (rows @ w).reshape(x.shape) if self._input_grad else None
        grads = dx, rows.T @ x.reshape((-1, x.shape[-1]))
        return grads + (rows.sum(axis=0),) if b else grads

    def jvp(self, B, tangents, out, x, w, *b):
        tx, tw, *tb = tangents
        return plus(times(tx, w.T), None if tw is None else x @ tw.T, *tb)

    def explain(self, x, w, *b):
        bias = f" and bias {b[0].shape}" if b else ""
        return (f"affine: input {x.shape} does not fit weight {w.shape} (out, in){bias}; "
                f"the input's last dimension must equal in={w.shape[-1] if w.ndim else '?'}")


def _tanh_slope(y):
    s = np.multiply(y, y)
    return np.subtract(1, s, out=s)


def _sigmoid_slope(y):
    s = np.subtract(1, y)
    s *= y
    return s


def _relu_slope(y):
    return (y > 0).astype(y.dtype)


ACTIVATIONS = {
    # name: (forward on an array in place, derivative from the output y for any namespace, the same
    # derivative on arrays as a new array in as few numpy calls as numpy allows)
    "tanh": (lambda a: np.tanh(a, out=a), lambda y: 1 - y * y, _tanh_slope),
    "relu": (lambda a: np.maximum(a, 0, out=a), _relu_slope, _relu_slope),
    "sigmoid": (sigmoid_, lambda y: y * (1 - y), _sigmoid_slope),
}


class CellBlock(Op):
    """A recurrent step's fused op. Its output row is ``width*H`` wide and may be written into ``out``
    (B, width*H), whose columns from ``gate_offset*H`` on may already hold this step's projection p:
    the step then consumes p in place (see the module docstring)."""
    width = gate_offset = None

    def __init__(self, out=None):
        self._out = out

    def output_buffer(self, h, *arrays):
        """``out``, or a fresh (B, width*H) array of the inputs' common dtype."""
        if self._out is not None:
            return self._out
        return np.empty(h.shape[:-1] + (self.width * h.shape[-1],), dtype=np.result_type(h, *arrays))


class RNNCellBlock(CellBlock):
    """h = act(p + h_prev @ W_hh.T [+ b_hh]).  p, h_prev (B, H); W_hh (H, H); b_hh (H,), optional:
    a layer adds it to the projection once per sequence instead -> h (B, H)."""
    name = "rnn_cell"
    saves = ("out", "h", "w_hh")
    sample = "rnn_cell"
    width, gate_offset = 1, 0

    def __init__(self, nonlinearity="tanh", out=None):
        super().__init__(out)
        self.nonlinearity = nonlinearity
        # the array forms, looked up once: this op runs every time step
        self._activate, _, self._slope = ACTIVATIONS[nonlinearity]

    # np.dot, not @, for the 2-D products of every step: under half the call time (see lazy._dot)
    def forward(self, p, h, w_hh, *b_hh):
        a = np.add(p, np.dot(h, w_hh.T), out=self.output_buffer(h, p, w_hh))  # may be p itself
        if b_hh:
            a += b_hh[0]
        self._activate(a)
        return a

    def vjp(self, B, g, out, p, h, w_hh, *b_hh):
        da = g * ACTIVATIONS[self.nonlinearity][1](out)
        grads = da, da @ w_hh, B.weight_grad(da, h)
        return grads + (da.sum(axis=0),) if b_hh else grads

    def vjp_arrays(self, g, out, p, h, w_hh, *b_hh):
        """The same rule on arrays: the activation's slope computed in one buffer, in place."""
        da = self._slope(out)
        da *= g
        grads = da, np.dot(da, w_hh), Product(da.T, h)  # Product: NUMPY_VJP.weight_grad
        return grads + (row_sum(da),) if b_hh else grads

    def jvp(self, B, tangents, out, p, h, w_hh, *b_hh):
        da = recurrent_pre(B, tangents, h, w_hh)
        return None if da is None else da * ACTIVATIONS[self.nonlinearity][1](out)


_GATE_AFFINES = {}


def _gate_affine(H, dtype):
    """(scale, shift, lift), each (4H,) of ``dtype``, per gate block i, f, g, o: scale 0.5 (1 on g),
    shift 0.5 (0 on g), lift 0 (1 on g). Made once per (H, dtype)."""
    key = (H, np.dtype(dtype))
    pair = _GATE_AFFINES.get(key)
    if pair is None:
        scale = np.full(4 * H, 0.5, dtype=dtype)
        scale[2 * H:3 * H] = 1
        shift = scale.copy()
        shift[2 * H:3 * H] = 0
        lift = np.zeros(4 * H, dtype=dtype)
        lift[2 * H:3 * H] = 1
        for a in (scale, shift, lift):
            a.flags.writeable = False
        pair = _GATE_AFFINES[key] = (scale, shift, lift)
    return pair


class LSTMCellBlock(CellBlock):
    """LSTM step, gates i, f, g, o (PyTorch order).

    p (B, 4H) input projection, h_prev, c_prev (B, H), W_hh (4H, H), b_hh (4H,) optional (as for
    ``RNNCellBlock``) -> (B, 6H) = [h | c | i f g o], with i, f, o = sigmoid, g = tanh, c = f*c_prev + i*g,
    h = o * tanh(c).
    """
    name = "lstm_cell"
    saves = ("out", "h", "c", "w_hh")
    sample = "lstm_cell"
    width, gate_offset = 6, 2

    def forward(self, p, h, c, w_hh, *b_hh):
        H = h.shape[-1]
        out = self.output_buffer(h, p, c, w_hh)
        gates = np.add(p, np.dot(h, w_hh.T), out=out[:, 2 * H:])  # the gate columns may be p itself
        if b_hh:
            gates += b_hh[0]
        # All four activations in one pass: sigmoid(a) = 0.5 * tanh(0.5 * a) + 0.5 (``sigmoid_``) on
        # i, f, o and 1 * tanh(1 * a) + 0 on g, by per-column scale and shift (4 numpy calls, not 9)
        scale, shift, _ = _gate_affine(H, gates.dtype)
        gates *= scale
        np.tanh(gates, out=gates)
        gates *= scale
        gates += shift
        i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
        h_new, c_new = out[:, :H], out[:, H:2 * H]
        np.multiply(f, c, out=c_new)
        c_new += i * g
        np.multiply(o, np.tanh(c_new), out=h_new)
        return out

    def vjp(self, B, g, out, p, h, c, w_hh, *b_hh):
        # g covers the whole output; its gate part is zero unless something reads the gates (as a
        # double backward does), so it is included to keep the rule exact.
        H = h.shape[-1]
        gh, gc, gi, gf, gg, go = (g[:, k * H:(k + 1) * H] for k in range(6))
        c_new, i, f, g_act, o = (out[:, k * H:(k + 1) * H] for k in range(1, 6))
        tanh_c = B.tanh(c_new)
        dc = gc + gh * o * (1 - tanh_c * tanh_c)
        dgates = B.concat([(dc * g_act + gi) * i * (1 - i),
                           (dc * c + gf) * f * (1 - f),
                           (dc * i + gg) * (1 - g_act * g_act),
                           (gh * tanh_c + go) * o * (1 - o)], axis=-1)
        grads = dgates, dgates @ w_hh, dc * f, B.weight_grad(dgates, h)
        return grads + (dgates.sum(axis=0),) if b_hh else grads

    def jvp(self, B, tangents, out, p, h, c, w_hh, *b_hh):
        tp, th, tc, tw, *tb = tangents
        H = h.shape[-1]
        c_new, i, f, g_act, o = (out[:, k * H:(k + 1) * H] for k in range(1, 6))
        pre = recurrent_pre(B, (tp, th, tw, *tb), h, w_hh)
        if pre is None:  # only c carries a tangent: the gates do not move
            dc = f * tc
            tanh_c = B.tanh(c_new)
            zero = dc * 0
            return B.concat([o * (1 - tanh_c * tanh_c) * dc, dc, zero, zero, zero, zero], axis=-1)
        di, df, dg, do = (pre[:, k * H:(k + 1) * H] for k in range(4))
        di, df, dg, do = di * i * (1 - i), df * f * (1 - f), dg * (1 - g_act * g_act), do * o * (1 - o)
        dc = plus(df * c, None if tc is None else f * tc, di * g_act, i * dg)
        tanh_c = B.tanh(c_new)
        dh = do * tanh_c + o * (1 - tanh_c * tanh_c) * dc
        return B.concat([dh, dc, di, df, dg, do], axis=-1)

    def vjp_arrays(self, g, out, p, h, c, w_hh, *b_hh):
        """The same rule on arrays, each gate's gradient written into its block of one buffer."""
        H = h.shape[-1]
        gh, gc, c_new, gates = g[:, :H], g[:, H:2 * H], out[:, H:2 * H], out[:, 2 * H:]
        i, f, g_act, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
        dgates = np.empty(gates.shape, dtype=np.result_type(g, out))
        tanh_c = np.tanh(c_new)
        np.multiply(gh, tanh_c, out=dgates[:, 3 * H:])      # do
        dc = np.multiply(tanh_c, tanh_c, out=tanh_c)
        np.subtract(1, dc, out=dc)
        dc *= o
        dc *= gh
        dc += gc                                            # dL/dc through h and from the next step
        np.multiply(dc, g_act, out=dgates[:, :H])           # di
        np.multiply(dc, c, out=dgates[:, H:2 * H])          # df
        np.multiply(dc, i, out=dgates[:, 2 * H:3 * H])      # dg
        dgates += g[:, 2 * H:]                              # gradient w.r.t. the activated gates themselves
        # the slopes: sigmoid' = (1 - s)(s + 0) on i, f, o and tanh' = 1 - g^2 = (1 - g)(g + 1) on g
        slope = np.subtract(1, gates)
        dgates *= slope
        dgates *= np.add(gates, _gate_affine(H, gates.dtype)[2], out=slope)
        dc *= f
        grads = dgates, np.dot(dgates, w_hh), dc, Product(dgates.T, h)
        return grads + (row_sum(dgates),) if b_hh else grads


class GRUCellBlock(CellBlock):
    """GRU step, gates r, z, n (PyTorch): n = tanh(p_n + r * (h W_hn.T + b_hn)), h' = (1-z) n + z h.

    p (B, 3H) input projection, h_prev (B, H), W_hh (3H, H), b_hh (3H,) -> (B, 5H) = [h' | r z n | hn]
    where hn = h_prev @ W_hn.T + b_hn.
    """
    name = "gru_cell"
    saves = ("out", "h", "w_hh")
    sample = "gru_cell"
    width, gate_offset = 5, 1

    # With ``out``, p may be out[:, H:4H]: each column block of p is read before (or while, element
    # by element) the same block of the output is written.
    def forward(self, p, h, w_hh, b_hh):
        H = h.shape[-1]
        out = self.output_buffer(h, p, w_hh)
        hh = np.dot(h, w_hh.T)
        hh += b_hh
        rz = out[:, H:3 * H]
        np.add(p[:, :2 * H], hh[:, :2 * H], out=rz)
        sigmoid_(rz)
        r, z = rz[:, :H], rz[:, H:]
        out[:, 4 * H:] = hh[:, 2 * H:]
        n = out[:, 3 * H:4 * H]
        np.tanh(p[:, 2 * H:] + r * hh[:, 2 * H:], out=n)
        out[:, :H] = n + z * (h - n)
        return out

    def vjp(self, B, g, out, p, h, w_hh, b_hh):
        H = h.shape[-1]
        gh, gr, gz, gn, ghn = (g[:, k * H:(k + 1) * H] for k in range(5))
        r, z, n, hn = (out[:, k * H:(k + 1) * H] for k in range(1, 5))
        dn = (gh * (1 - z) + gn) * (1 - n * n)
        dz = (gh * (h - n) + gz) * z * (1 - z)
        dr = (dn * hn + gr) * r * (1 - r)
        dhn = dn * r + ghn
        dp = B.concat([dr, dz, dn], axis=-1)
        dhh = B.concat([dr, dz, dhn], axis=-1)
        return dp, gh * z + dhh @ w_hh, B.weight_grad(dhh, h), dhh.sum(axis=0)

    def jvp(self, B, tangents, out, p, h, w_hh, b_hh):
        tp, th, tw, tb = tangents
        H = h.shape[-1]
        r, z, n, hn = (out[:, k * H:(k + 1) * H] for k in range(1, 5))
        dhh = recurrent_pre(B, (None, th, tw, tb), h, w_hh)      # of h @ W_hh.T + b_hh, (B, 3H)
        dr, dz, dp_n = (None if tp is None else tp[:, k * H:(k + 1) * H] for k in range(3))
        dhn = None if dhh is None else dhh[:, 2 * H:]
        if dhh is not None:
            dr, dz = plus(dr, dhh[:, :H]), plus(dz, dhh[:, H:2 * H])
        dr = None if dr is None else dr * r * (1 - r)
        dz = None if dz is None else dz * z * (1 - z)
        dn = plus(dp_n, None if dr is None else dr * hn, None if dhn is None else r * dhn)
        dn = None if dn is None else dn * (1 - n * n)
        # h' = n + z (h - n)
        dh = plus(None if dn is None else dn * (1 - z), None if dz is None else dz * (h - n),
                  None if th is None else z * th)
        zero = dh * 0
        parts = [dh, dr, dz, dn, dhn]
        return B.concat([zero if t is None else t for t in parts], axis=-1)


class CrossEntropy(Op):
    """Softmax cross-entropy of logits (N, C) against integer ``targets`` (N,), one node.

    reduction "mean" -> (), "sum" -> (), "none" -> (N,).  The gradient is (softmax - onehot) * g.
    """
    name = "cross_entropy"
    saves = ("x",)
    sample = "cross_entropy"

    def __init__(self, targets, reduction="mean"):
        self.targets, self.reduction = targets, reduction

    def forward(self, x):
        e = x - x.max(axis=-1, keepdims=True)
        target = e[np.arange(len(x)), self.targets]  # read before exp overwrites e
        np.exp(e, out=e)
        # log(sum(exp(e))) - e[target], both relative to the max: adding the max back first would
        # round away log(sum) for logits of 1e16 (1e7 in float32), the loss of two equal logits, log 2
        losses = np.log(e.sum(axis=-1)) - target
        if self.reduction == "none":
            return losses
        total = losses.sum()
        return total / len(x) if self.reduction == "mean" else total

    def _scale(self, g):
        """The upstream gradient as a factor of each row's (softmax - onehot): (N, 1) or ()."""
        return g.reshape((-1, 1)) if self.reduction == "none" else g * (
            1.0 / len(self.targets) if self.reduction == "mean" else 1.0)

    def vjp(self, B, g, out, x):
        onehot = np.zeros(x.shape, dtype=x.dtype)
        onehot[np.arange(len(self.targets)), self.targets] = 1
        return ((B.softmax(x) - onehot) * self._scale(g),)

    def jvp(self, B, tangents, out, x):
        # d loss_n = <softmax(x_n) - onehot_n, dx_n>, reduced like the losses
        (tx,) = tangents
        onehot = np.zeros(x.shape, dtype=x.dtype)
        onehot[np.arange(len(self.targets)), self.targets] = 1
        losses = ((B.softmax(x) - onehot) * tx).sum(axis=-1)
        if self.reduction == "none":
            return losses
        total = losses.sum()
        return total * (1.0 / len(self.targets)) if self.reduction == "mean" else total

    def vjp_arrays(self, g, out, x):
        """The same rule in one (N, C) buffer instead of softmax, one-hot and two products."""
        dx = x - x.max(axis=-1, keepdims=True)
        np.exp(dx, out=dx)
        dx /= dx.sum(axis=-1, keepdims=True)
        dx[np.arange(len(self.targets)), self.targets] -= 1
        dx *= self._scale(g)
        return (dx,)
