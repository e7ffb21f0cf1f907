"""The output head of a sequence model as one op: a linear layer followed by softmax cross-entropy.

Composed, ``cross_entropy(affine(h, W, b))`` keeps the (N, V) logits for backward and allocates a
second (N, V) array for their gradient, then a dense (N, H) gradient of ``h``. The fused op turns its
logits buffer into the gradient ``softmax - onehot`` during forward, so only one (N, V) array ever
exists, and returns the gradient of ``h`` as a lazy ``Product`` that a ``stack`` hands out per step
(multiplied out at once when it is small: ``lazy.product``).
"""
import math

import numpy as np

from .base import Cached, Op
from .fused import plus
from .lazy import _dot, product

_ROWS = {}   # N -> arange(N), read-only: each target's row, for the fancy indexing of every call


class LinearCrossEntropy(Op):
    """Softmax cross-entropy of ``x @ weight.T + bias`` against integer ``targets``, one node.

    x (..., H) with N = prod(x.shape[:-1]) >= 1 rows, weight (V, H), bias (V,); targets (int) have
    x.shape[:-1] and are stored flattened (N,). reduction "mean" -> (), "sum" -> (), "none" ->
    x.shape[:-1]. Equal to ``cross_entropy((x @ weight.T + bias).reshape(N, V), targets.reshape(N))``.

    Forward leaves the unscaled dlogits = softmax(logits) - onehot(targets), (N, V), on the node it
    makes (``Cached``); the first backward scales it in place by the upstream gradient and hands it on.
    A later backward (``retain_graph=True``) finds the cache gone and recomputes it from x, weight and
    bias.
    """
    name = "linear_cross_entropy"
    saves = ("out", "x", "w", "b")
    sample = "linear_cross_entropy"

    def __init__(self, targets, reduction="mean"):
        self.targets = np.asarray(targets).reshape(-1)
        self.reduction = reduction

    def forward(self, x, w, b):
        dlogits, losses = self._dlogits_and_losses(x, w, b)
        if self.reduction == "none":
            out = losses.reshape(x.shape[:-1])
        else:
            total = np.add.reduce(losses)
            out = total / len(losses) if self.reduction == "mean" else total
        return Cached(out, dlogits)  # (N, V) dlogits stay on the node until its first backward

    def _dlogits_and_losses(self, x, w, b):
        """(softmax(logits) - onehot, losses), (N, V) and (N,), computed in one (N, V) buffer."""
        if x.ndim < 1 or w.ndim != 2 or w.shape[1] != x.shape[-1] or b.shape != w.shape[:1] \
                or math.prod(x.shape[:-1]) != len(self.targets):
            raise ValueError("shapes do not fit")  # apply() turns this into explain()'s message
        # _dot (np.dot where it copies nothing) and the ufuncs' reduce: the same arithmetic as
        # @, max and sum at a smaller call cost (a B = 1 sequence's head is called on (T, V) blocks of a
        # few hundred elements)
        targets = self.targets
        rows = _ROWS.get(len(targets))
        if rows is None:
            rows = _ROWS[len(targets)] = np.arange(len(targets))
            rows.flags.writeable = False
        d = _dot(x.reshape(-1, x.shape[-1]), w.T)
        d += b
        d -= np.maximum.reduce(d, axis=-1, keepdims=True)    # exp cannot overflow
        target = d[rows, targets]              # fancy indexing copies: read before d is overwritten
        np.exp(d, out=d)
        sums = np.add.reduce(d, axis=-1)
        losses = np.log(sums)
        losses -= target
        d /= sums[:, None]
        d[rows, targets] -= 1
        return d, losses

    def _scale(self, g):
        """The upstream gradient as a factor of each row's dlogits: (N, 1) or ()."""
        return g.reshape((-1, 1)) if self.reduction == "none" else g * (
            1.0 / len(self.targets) if self.reduction == "mean" else 1.0)

    def vjp(self, B, g, out, x, w, b):
        # recomputed from differentiable ops, so the rule can itself be differentiated
        N, H = len(self.targets), x.shape[-1]
        x2 = x.reshape((N, H))
        logits = x2 @ w.T + b
        onehot = np.zeros(logits.shape, dtype=logits.dtype)
        onehot[np.arange(N), self.targets] = 1
        d = (B.softmax(logits) - onehot) * self._scale(g)
        return (d @ w).reshape(x.shape), d.T @ x2, d.sum(axis=0)

    def jvp(self, B, tangents, out, x, w, b):
        # d loss_n = <softmax(logits_n) - onehot_n, d logits_n>, reduced like the losses
        tx, tw, tb = tangents
        N, H = len(self.targets), x.shape[-1]
        x2 = x.reshape((N, H))
        logits = x2 @ w.T + b
        onehot = np.zeros(logits.shape, dtype=logits.dtype)
        onehot[np.arange(N), self.targets] = 1
        dlogits = plus(None if tx is None else tx.reshape((N, H)) @ w.T,
                       None if tw is None else x2 @ tw.T, tb)
        losses = ((B.softmax(logits) - onehot) * dlogits).sum(axis=-1)
        if self.reduction == "none":
            return losses.reshape(x.shape[:-1])
        total = losses.sum()
        return total * (1.0 / N) if self.reduction == "mean" else total

    def vjp_arrays(self, g, out, x, w, b, cache=None):
        """The same rule on arrays: the forward's dlogits (``cache``, (N, V)) scaled in place, recomputed
        when a backward has taken them; the gradient of x is left as a lazy ``Product`` multiplied out
        per row block (``lazy.product``: dense at once when small)."""
        d = cache if cache is not None else self._dlogits_and_losses(x, w, b)[0]
        d *= self._scale(g)
        dx = product(d.reshape(x.shape[:-1] + (w.shape[0],)), w)
        return dx, _dot(d.T, x.reshape(-1, x.shape[-1])), np.add.reduce(d, axis=0)

    def explain(self, x, w, b):
        V, H = w.shape if w.ndim == 2 else ("V", "H")
        return (f"linear_cross_entropy: input {x.shape} does not fit weight {w.shape} (V, H) and bias "
                f"{b.shape}; the input's last dimension must equal H={H}, the bias must have shape "
                f"({V},), and there must be one target per row (got {len(self.targets)} targets for "
                f"input rows {x.shape[:-1]})")
