"""Real-time recurrent learning (Williams & Zipser 1989): the parameter gradient of a recurrent node's
loss computed forward in time, with no stored history — forward-mode differentiation through the
recurrent node, beside backpropagation through time (which is reverse mode over the unrolled graph).

For a node ``s_t = f(x_t, s_{t-1}; θ)`` and a loss ``L = Σ_t ℓ_t(output_t)``, RTRL carries the
sensitivity ``M_t = ds_t/dθ`` (state size S × P parameters per batch row) forward::

    M_0 = 0
    for t in range(T):
        s_t, out_t = f(x_t, s_{t-1})
        dL/dθ += ∂ℓ_t/∂θ + ∂ℓ_t/∂s_{t-1} · M_{t-1}        # the loss of step t, through the state
        M_t = ∂f/∂s_{t-1} · M_{t-1} + ∂f/∂θ                 # carried forward, then s_{t-1} is dropped

Memory is that of one step plus M (S·P numbers per batch row), constant in T; BPTT keeps every step
(linear in T) but costs about one forward per step, where RTRL's cost grows with P (the textbook
trade-off: O(S²P) per step). Two ways to get the per-step derivatives, the same numbers:

- ``mode="forward"``: tangents through the step (``tinygraph.forward``), one pass per parameter
  direction, ``M_t``'s column k being the tangent of ``s_t`` when θ_k moves — forward mode, literally.
- ``mode="jacobian"`` (default): the step's Jacobians ``∂f/∂s`` and ``∂f/∂θ`` by reverse mode over the
  one-step graph, one pass per state element (B·S), and ``M_t`` updated with one matrix product —
  fewer passes whenever S·B < P, the usual case.
"""
import numpy as np

import tinygraph as tg
from tinygraph import Tensor
from tinygraph.forward import dual_level, make_dual, unpack_dual

from .recurrent import Recurrent, flat

MODES = ("jacobian", "forward")


def rtrl(node, xs, loss_fn, state0=None, mode="jacobian"):
    """``(loss, {name: gradient})``: L = Σ_t loss_fn(t, output_t) and dL/dθ for every parameter of
    ``node`` (a ``Recurrent``), computed forward in time (see the module docstring).

    xs: (T, B, ...) time-major input (array or Tensor). loss_fn(t, output_t) -> a single-element
    Tensor built from tinygraph ops (None or 0 for a step without loss). state0: the initial state
    (default: the node's zeros). Equal to BPTT's ``loss.backward()`` over ``node.unroll(xs)`` to
    rounding; float64 recommended for comparisons.
    """
    if not isinstance(node, Recurrent):
        raise TypeError(f"rtrl: node must be an rnn_models.Recurrent, got {type(node).__name__}")
    if mode not in MODES:
        raise ValueError(f"rtrl: mode must be one of {MODES}, got {mode!r}")
    xs = xs._data if isinstance(xs, Tensor) else np.asarray(xs)
    if xs.ndim < 2 or len(xs) == 0:
        raise tg.ShapeError(f"rtrl: xs must be (T, B, ...) with T >= 1, got shape {xs.shape}")
    names, params = zip(*node.named_parameters())
    if not params:
        raise ValueError("rtrl: the node has no parameters to differentiate")
    dtype = params[0].dtype
    with tg.no_grad():
        state = node.initial_state(xs.shape[1], dtype) if state0 is None else state0
    state = tuple(s.detach() for s in flat(state))
    single = len(state) == 1 and isinstance(state0 if state0 is not None else
                                            node.initial_state(xs.shape[1], dtype), Tensor)
    run = _jacobian_steps if mode == "jacobian" else _forward_steps
    total, grads = run(node, xs, loss_fn, state, single, params)
    return total, {name: g.reshape(p.shape) for name, p, g in zip(names, params, _split(grads, params))}


def _split(vector, params):
    sizes = np.cumsum([p.size for p in params])[:-1]
    return np.split(vector, sizes)


def _structured(tensors, single):
    return tensors[0] if single else tuple(tensors)


def _step_loss(node, x, state, single, loss_fn, t):
    """Run the cell once: (new state tensors, the step's loss Tensor or None)."""
    output, new = node.call_cell(Tensor._wrap(x), _structured(state, single), t)
    loss = loss_fn(t, output)
    if loss is not None and not isinstance(loss, Tensor):
        loss = None if loss == 0 else loss
    if loss is not None and (not isinstance(loss, Tensor) or loss.size != 1):
        raise TypeError(f"rtrl: loss_fn({t}, output) must return a single-element Tensor or None, got "
                        f"{getattr(loss, 'shape', type(loss).__name__)}")
    return flat(new), loss


def _jacobian_steps(node, xs, loss_fn, state, single, params):
    """Per step: reverse-mode Jacobians of the one-step graph, one pass per state element."""
    P = sum(p.size for p in params)
    B = xs.shape[1]
    widths = [s[0].size for s in state]            # each state tensor's numbers per batch row
    S = sum(widths)
    M = np.zeros((B, S, P), dtype=params[0].dtype)  # d state / d theta, per batch row
    grad = np.zeros(P, dtype=params[0].dtype)
    total = 0.0
    for t in range(len(xs)):
        leaves = [Tensor._wrap(s._data, requires_grad=True) for s in state]
        new, loss = _step_loss(node, xs[t], leaves, single, loss_fn, t)
        if loss is not None:
            total += float(loss.item())
            g = tg.grad_of(loss, list(leaves) + list(params), retain_graph=True)
            g_state = np.concatenate([a._data.reshape(B, -1) for a in g[:len(leaves)]], axis=1)
            grad += np.concatenate([a._data.reshape(-1) for a in g[len(leaves):]])
            grad += np.einsum("bs,bsp->p", g_state, M)
        A = np.zeros((B, S, S), dtype=M.dtype)
        immediate = np.zeros((B, S, P), dtype=M.dtype)
        row = 0
        for s_new, width in zip(new, widths):
            flat_new = s_new.reshape(B, width)
            for i in range(width):
                for b in range(B):
                    g = tg.grad_of(flat_new[b, i], list(leaves) + list(params), retain_graph=True,
                                   allow_unused=True)
                    A[b, row + i] = np.concatenate([
                        (np.zeros(leaf.shape) if a is None else a._data)[b].reshape(-1)
                        for a, leaf in zip(g[:len(leaves)], leaves)])
                    immediate[b, row + i] = np.concatenate([
                        (np.zeros(p.size) if a is None else a._data.reshape(-1))
                        for a, p in zip(g[len(leaves):], params)])
            row += width
        M = np.einsum("bij,bjp->bip", A, M) + immediate
        state = [s.detach() for s in new]
    return total, grad


def _forward_steps(node, xs, loss_fn, state, single, params):
    """Per step: one forward-mode pass per parameter direction, under no_grad (nothing recorded)."""
    P = sum(p.size for p in params)
    offsets = np.cumsum([0] + [p.size for p in params])
    tangents = [None] * P   # per direction k: the tangent of each state tensor (None: zero)
    grad = np.zeros(P, dtype=params[0].dtype)
    total = 0.0
    owners = _parameter_owners(node, params)
    for t in range(len(xs)):
        new_tangents, new_state = [], None
        with tg.no_grad():
            for k in range(P):
                j = int(np.searchsorted(offsets, k, side="right") - 1)
                direction = np.zeros(params[j].size, dtype=params[j].dtype)
                direction[k - offsets[j]] = 1
                with dual_level():
                    duals = [s if (tangents[k] is None or tangents[k][m] is None)
                             else make_dual(s, tangents[k][m]) for m, s in enumerate(state)]
                    with _substituted(owners[j], make_dual(params[j], direction.reshape(params[j].shape))):
                        new, loss = _step_loss(node, xs[t], duals, single, loss_fn, t)
                    new_tangents.append([None if tan is None else tan._data for _, tan in map(unpack_dual, new)])
                    if loss is not None:
                        tangent = unpack_dual(loss)[1]
                        if tangent is not None:
                            grad[k] += float(tangent.item())
                        if k == 0:
                            total += float(loss.item())
                if new_state is None:
                    new_state = [Tensor._wrap(s._data) for s in new]
        tangents, state = new_tangents, new_state
    return total, grad


def _parameter_owners(module, params):
    """For each parameter: (the module holding it, its attribute name)."""
    where = {}
    for prefix, sub in module.named_modules():
        for name, p in sub._parameters.items():
            where.setdefault(id(p), (sub, name))
    return [where[id(p)] for p in params]


class _substituted:
    """Temporarily let ``owner.<name>`` be ``value`` (a dual of the parameter) for attribute reads."""

    def __init__(self, owner_name, value):
        (self.owner, self.name), self.value = owner_name, value

    def __enter__(self):
        self.saved = self.owner.__dict__[self.name]
        object.__setattr__(self.owner, self.name, self.value)

    def __exit__(self, *exc):
        object.__setattr__(self.owner, self.name, self.saved)
        return False
