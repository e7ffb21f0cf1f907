"""Baseline training-step implementations for recurrent nets.

These are the references tinygraph is benchmarked against.  One training
step is: forward over T time steps, a linear head with softmax cross-entropy
on every step, backprop through time, and an SGD update (lr = 0.1).

Model (PyTorch ``nn.RNN`` / ``nn.LSTM`` + ``nn.Linear`` conventions,
one layer, h0 = c0 = 0):

* rnn:  h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
* lstm: [i, f, g, o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh  (gates
  stacked in that order), i, f, o = sigmoid, g = tanh,
  c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)
* head: logits_t = h_t W_y^T + b_y
* loss = (1 / T) * sum_t mean_b cross_entropy(logits_t[b], targets_t[b]),
  i.e. the mean over all T*B positions.

Shapes: x (T, B, V) dense one-hot, targets (T, B) int64 in [0, V);
weight_ih_l0 (G*H, V), weight_hh_l0 (G*H, H), bias_ih_l0 / bias_hh_l0
(G*H,), head.weight (V, H), head.bias (V,), with G = 1 (rnn) or 4 (lstm).

Implementations (``IMPLS``):

* ``numpy_per_step``: hand-written numpy; everything (input projection,
  head, weight gradients) is done one time step at a time.
* ``numpy_batched``: hand-written numpy; input projection, head and weight
  gradients are single matmuls over all T*B rows; only the recurrence
  (h @ W_hh^T and its backward) is per step.
* ``torch_loop``: PyTorch ops in a Python loop over time, autograd backward.
* ``torch_nn``: ``torch.nn.RNN`` / ``torch.nn.LSTM`` + ``torch.nn.Linear``.

Public API::

    init_params(cell, H, V, seed, dtype) -> {name: ndarray}
    make_data(B, V, T, seed, dtype) -> (x, targets)
    available_impls() -> tuple of impl names usable in this interpreter
    make_step(impl, cell, dtype, B, H, V, T, seed, lr=LR) -> (params, step_fn)
        step_fn(x, targets) -> float   # one training step, updates params
    loss_and_grads(impl, cell, params, x, targets) -> (float, {name: ndarray})
    params_to_numpy(params) -> {name: ndarray}

Importing this module has no side effects and does not import torch; torch
is imported lazily by the torch implementations.  Thread counts (BLAS,
torch.set_num_threads) are left to the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

IMPLS = ("numpy_per_step", "numpy_batched", "torch_loop", "torch_nn")
NUMPY_IMPLS = ("numpy_per_step", "numpy_batched")
TORCH_IMPLS = ("torch_loop", "torch_nn")
CELLS = ("rnn", "lstm")
DTYPES = ("float32", "float64")
LR = 0.1

# Parameter names follow PyTorch (nn.RNN/nn.LSTM attribute names, and
# "head." for the nn.Linear head); this is also the init order.
PARAM_NAMES = (
    "weight_ih_l0",
    "weight_hh_l0",
    "bias_ih_l0",
    "bias_hh_l0",
    "head.weight",
    "head.bias",
)

_GATES = {"rnn": 1, "lstm": 4}


# ---------------------------------------------------------------------------
# Shared helpers: validation, parameters, data
# ---------------------------------------------------------------------------

def _check_cell(cell: str) -> int:
    """Return the number of gates G for ``cell``."""
    try:
        return _GATES[cell]
    except KeyError:
        raise ValueError(f"unknown cell {cell!r}; expected one of {CELLS}") from None


def _check_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.name not in DTYPES:
        raise ValueError(f"unsupported dtype {dtype}; expected one of {DTYPES}")
    return dtype


def init_params(cell: str, H: int, V: int, seed: int, dtype) -> dict:
    """Deterministic parameters, identical for every implementation.

    Every tensor is drawn from uniform(-1/sqrt(H), 1/sqrt(H)), which is
    PyTorch's default for nn.RNN/nn.LSTM and also for an nn.Linear with
    in_features = H.  Values are drawn in float64 in the order of
    PARAM_NAMES and then cast, so float32 and float64 runs start from the
    same (rounded) point.

    Returns {name: ndarray}: weight_ih_l0 (G*H, V), weight_hh_l0 (G*H, H),
    bias_ih_l0 (G*H,), bias_hh_l0 (G*H,), head.weight (V, H), head.bias (V,).
    """
    G = _check_cell(cell)
    dtype = _check_dtype(dtype)
    shapes = {
        "weight_ih_l0": (G * H, V),
        "weight_hh_l0": (G * H, H),
        "bias_ih_l0": (G * H,),
        "bias_hh_l0": (G * H,),
        "head.weight": (V, H),
        "head.bias": (V,),
    }
    rng = np.random.default_rng(seed)
    bound = 1.0 / math.sqrt(H)
    return {
        name: rng.uniform(-bound, bound, size=shapes[name]).astype(dtype)
        for name in PARAM_NAMES
    }


def make_data(B: int, V: int, T: int, seed: int, dtype):
    """Random token sequence and targets.

    Returns (x, targets): x (T, B, V) one-hot in ``dtype`` (C-contiguous),
    targets (T, B) int64 in [0, V).
    """
    dtype = _check_dtype(dtype)
    # A separate stream from init_params, so passing the same seed to both
    # does not correlate data with weights.
    rng = np.random.default_rng([seed, 1])
    tokens = rng.integers(0, V, size=(T, B))
    targets = rng.integers(0, V, size=(T, B), dtype=np.int64)
    x = np.zeros((T, B, V), dtype=dtype)
    np.put_along_axis(x, tokens[..., None], 1, axis=2)
    return x, targets


def params_to_numpy(params: dict) -> dict:
    """Copy a params dict (numpy arrays or torch tensors) to numpy arrays."""
    out = {}
    for name, p in params.items():
        if hasattr(p, "detach"):  # torch tensor / Parameter
            p = p.detach().cpu().numpy()
        out[name] = np.array(p, copy=True)
    return out


def _cell_from_params(params: dict) -> str:
    G = params["weight_hh_l0"].shape[0] // params["weight_hh_l0"].shape[1]
    return {1: "rnn", 4: "lstm"}[G]


# ---------------------------------------------------------------------------
# numpy implementations
# ---------------------------------------------------------------------------

@dataclass
class _Workspace:
    """Activations kept for BPTT (numpy implementations).

    hs:      (T+1, B, H)  h_0..h_T, hs[0] = h0 = 0.
    cs:      (T+1, B, H)  c_0..c_T (lstm only, else None).
    acts:    (T, B, G*H)  step t's pre-activations, turned into activations in
             place.  For rnn the activation *is* h_t, so acts is the view
             hs[1:] and nothing is stored twice; for lstm it holds the gate
             activations i, f, g, o.
    dlogits: (T, B, V)    logits, turned in place into dloss/dlogits.
    dacts:   (T, B, G*H)  dloss/d(pre-activations); numpy_batched only, since
             it forms the weight gradients after the loop.

    A workspace can be reused across calls with the same shapes, which
    saves re-allocating (and page-faulting) the large buffers every step.
    """

    hs: np.ndarray
    cs: np.ndarray | None
    acts: np.ndarray
    dlogits: np.ndarray
    dacts: np.ndarray | None

    @classmethod
    def allocate(cls, cell, T, B, H, V, dtype, with_dacts):
        G = _check_cell(cell)
        hs = np.empty((T + 1, B, H), dtype=dtype)
        cs = np.empty((T + 1, B, H), dtype=dtype) if cell == "lstm" else None
        acts = hs[1:] if cell == "rnn" else np.empty((T, B, G * H), dtype=dtype)
        dlogits = np.empty((T, B, V), dtype=dtype)
        dacts = np.empty((T, B, G * H), dtype=dtype) if with_dacts else None
        return cls(hs, cs, acts, dlogits, dacts)

    def matches(self, cell, T, B, H, V, dtype, with_dacts) -> bool:
        return (
            self.hs.shape == (T + 1, B, H)
            and self.dlogits.shape == (T, B, V)
            and self.hs.dtype == dtype
            and (self.cs is not None) == (cell == "lstm")
            and self.acts.shape[2] == _GATES[cell] * H
            and (self.dacts is not None or not with_dacts)
        )


def _sigmoid_(a: np.ndarray) -> None:
    """In-place logistic sigmoid.

    Uses sigmoid(a) = (1 + tanh(a/2)) / 2, which cannot overflow (unlike
    1 / (1 + exp(-a))) and needs one transcendental per element.
    """
    a *= 0.5
    np.tanh(a, out=a)
    a += 1
    a *= 0.5


def _cell_forward(cell: str, ws: _Workspace, t: int) -> None:
    """Finish step t of the recurrence.

    On entry ws.acts[t] (B, G*H) holds the full pre-activation
    x_t W_ih^T + h_{t-1} W_hh^T + b_ih + b_hh.  On exit it holds the
    activations, and ws.hs[t+1] (and ws.cs[t+1]) hold h_t (and c_t).
    """
    a = ws.acts[t]
    if cell == "rnn":
        np.tanh(a, out=a)  # a is the view ws.hs[t+1]
        return
    H = ws.hs.shape[2]
    _sigmoid_(a[:, : 2 * H])  # i, f are adjacent: one call
    g = a[:, 2 * H : 3 * H]
    np.tanh(g, out=g)
    _sigmoid_(a[:, 3 * H :])
    i, f, o = a[:, :H], a[:, H : 2 * H], a[:, 3 * H :]
    c, h = ws.cs[t + 1], ws.hs[t + 1]
    np.multiply(f, ws.cs[t], out=c)
    c += i * g
    np.tanh(c, out=h)
    h *= o


def _cell_backward(cell: str, ws: _Workspace, t: int, dh, dc, out) -> None:
    """Backward through the nonlinearities of step t.

    dh:  (B, H) total dloss/dh_t (head + recurrence from step t+1); may be
         clobbered.
    dc:  (B, H) lstm only (None for rnn): on entry dloss/dc_t coming from
         step t+1, updated in place to dloss/dc_{t-1}.
    out: (B, G*H) receives dloss/d(pre-activation_t).
    """
    if cell == "rnn":
        h = ws.hs[t + 1]
        np.multiply(h, h, out=out)
        np.subtract(1, out, out=out)  # tanh' = 1 - h^2
        out *= dh
        return
    H = ws.hs.shape[2]
    gates = ws.acts[t]
    i, f, g, o = (gates[:, k * H : (k + 1) * H] for k in range(4))
    di, df, dg, do = (out[:, k * H : (k + 1) * H] for k in range(4))
    tanh_c = np.tanh(ws.cs[t + 1])  # recomputed: cheaper than storing it
    # h_t = o * tanh(c_t)
    np.multiply(dh, tanh_c, out=do)
    do *= o * (1 - o)
    # dloss/dc_t = carried part + part through h_t
    np.multiply(tanh_c, tanh_c, out=tanh_c)
    np.subtract(1, tanh_c, out=tanh_c)
    tanh_c *= o
    tanh_c *= dh
    dc += tanh_c
    # c_t = f * c_{t-1} + i * g
    np.multiply(dc, g, out=di)
    di *= i * (1 - i)
    np.multiply(dc, ws.cs[t], out=df)
    df *= f * (1 - f)
    np.multiply(dc, i, out=dg)
    dg *= 1 - g * g
    dc *= f


def _softmax_xent_(logits: np.ndarray, targets: np.ndarray, scale: float) -> float:
    """Softmax cross-entropy, in place.

    logits: (N, V), overwritten with scale * (softmax(logits) - onehot(targets)),
            i.e. the gradient of scale * sum(loss) w.r.t. the logits.
    targets: (N,) integer class ids.
    Returns the *sum* of the N cross-entropies as a Python float.
    """
    rows = np.arange(logits.shape[0])
    logits -= logits.max(axis=1, keepdims=True)  # exp cannot overflow
    target_logit = logits[rows, targets]  # fancy indexing copies
    np.exp(logits, out=logits)
    sums = logits.sum(axis=1)
    loss = float(np.sum(np.log(sums) - target_logit))
    logits /= sums[:, None]
    logits[rows, targets] -= 1
    logits *= scale
    return loss


def _unpack_numpy(cell, params, x, targets):
    """Validate inputs; return (W_ih, W_hh, b_ih, b_hh, W_y, b_y), dims."""
    _check_cell(cell)
    W_ih, W_hh, b_ih, b_hh, W_y, b_y = (params[n] for n in PARAM_NAMES)
    T, B, V = x.shape
    H = W_hh.shape[1]
    dtype = W_hh.dtype
    # numpy would silently upcast a float32 model fed float64 data.
    if x.dtype != dtype or any(params[n].dtype != dtype for n in PARAM_NAMES):
        raise TypeError(f"x and all params must have the same dtype (params {dtype}, x {x.dtype})")
    if W_ih.shape != (_GATES[cell] * H, V) or W_y.shape != (V, H):
        raise ValueError(f"param shapes do not match cell={cell!r}, x {x.shape}")
    if targets.shape != (T, B):
        raise ValueError(f"targets shape {targets.shape}, expected {(T, B)}")
    return (W_ih, W_hh, b_ih, b_hh, W_y, b_y), (T, B, H, V, dtype)


def _get_workspace(ws, cell, T, B, H, V, dtype, with_dacts):
    if ws is None or not ws.matches(cell, T, B, H, V, dtype, with_dacts):
        ws = _Workspace.allocate(cell, T, B, H, V, dtype, with_dacts)
    ws.hs[0] = 0  # h0 = 0
    if ws.cs is not None:
        ws.cs[0] = 0  # c0 = 0
    return ws


def _grads_dict(dW_ih, dW_hh, db, dW_y, db_y) -> dict:
    # b_ih and b_hh enter only through their sum, so their grads are equal.
    return {
        "weight_ih_l0": dW_ih,
        "weight_hh_l0": dW_hh,
        "bias_ih_l0": db,
        "bias_hh_l0": db.copy(),
        "head.weight": dW_y,
        "head.bias": db_y,
    }


def numpy_per_step_loss_and_grads(cell, params, x, targets, ws=None):
    """numpy_per_step: forward + BPTT with every op done one step at a time.

    params: {name: ndarray} (see init_params); x (T, B, V); targets (T, B).
    ws: optional _Workspace to reuse.  Returns (loss, grads, ws).
    Per step this stores only h_t, c_t and the gate activations (lstm) and
    dloss/dlogits_t (B, V).
    """
    (W_ih, W_hh, b_ih, b_hh, W_y, b_y), (T, B, H, V, dtype) = _unpack_numpy(
        cell, params, x, targets
    )
    ws = _get_workspace(ws, cell, T, B, H, V, dtype, with_dacts=False)
    bias = b_ih + b_hh
    scale = 1.0 / (T * B)  # loss is the mean over all T*B positions

    loss = 0.0
    for t in range(T):
        a = ws.acts[t]
        np.matmul(x[t], W_ih.T, out=a)
        a += ws.hs[t] @ W_hh.T
        a += bias
        _cell_forward(cell, ws, t)
        logits = ws.dlogits[t]
        np.matmul(ws.hs[t + 1], W_y.T, out=logits)
        logits += b_y
        loss += _softmax_xent_(logits, targets[t], scale)

    dW_ih, dW_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    db = np.zeros_like(b_ih)
    dW_y, db_y = np.zeros_like(W_y), np.zeros_like(b_y)
    dh_next = np.zeros((B, H), dtype=dtype)  # dloss/dh_t via step t+1
    dc = np.zeros((B, H), dtype=dtype) if cell == "lstm" else None
    da = np.empty((B, W_hh.shape[0]), dtype=dtype)
    for t in reversed(range(T)):
        dlogits = ws.dlogits[t]
        dW_y += dlogits.T @ ws.hs[t + 1]
        db_y += dlogits.sum(axis=0)
        dh = dlogits @ W_y
        dh += dh_next
        _cell_backward(cell, ws, t, dh, dc, out=da)
        dW_ih += da.T @ x[t]
        dW_hh += da.T @ ws.hs[t]
        db += da.sum(axis=0)
        np.matmul(da, W_hh, out=dh_next)

    return loss * scale, _grads_dict(dW_ih, dW_hh, db, dW_y, db_y), ws


def numpy_batched_loss_and_grads(cell, params, x, targets, ws=None):
    """numpy_batched: only the recurrence is per step.

    The input projection (T*B, V) @ (V, G*H), the head (T*B, H) @ (H, V),
    its backward and all weight gradients are single matmuls over the
    T*B rows.  Same arguments and return value as
    numpy_per_step_loss_and_grads.
    """
    (W_ih, W_hh, b_ih, b_hh, W_y, b_y), (T, B, H, V, dtype) = _unpack_numpy(
        cell, params, x, targets
    )
    ws = _get_workspace(ws, cell, T, B, H, V, dtype, with_dacts=True)
    N, GH = T * B, W_hh.shape[0]
    scale = 1.0 / N
    X = x.reshape(N, V)
    H_in = ws.hs[:-1].reshape(N, H)  # h_{t-1} for every row
    H_out = ws.hs[1:].reshape(N, H)  # h_t for every row

    # Input projection for all steps at once, written straight into the
    # pre-activation buffer (for rnn that buffer is hs[1:]).
    A = ws.acts.reshape(N, GH)
    np.matmul(X, W_ih.T, out=A)
    A += b_ih + b_hh
    for t in range(T):
        ws.acts[t] += ws.hs[t] @ W_hh.T
        _cell_forward(cell, ws, t)

    dlogits = ws.dlogits.reshape(N, V)
    np.matmul(H_out, W_y.T, out=dlogits)
    dlogits += b_y
    loss = _softmax_xent_(dlogits, targets.reshape(N), scale) * scale
    dH = (dlogits @ W_y).reshape(T, B, H)  # head's share of dloss/dh_t

    dh_next = np.zeros((B, H), dtype=dtype)
    dc = np.zeros((B, H), dtype=dtype) if cell == "lstm" else None
    for t in reversed(range(T)):
        dh = dH[t]
        dh += dh_next
        _cell_backward(cell, ws, t, dh, dc, out=ws.dacts[t])
        np.matmul(ws.dacts[t], W_hh, out=dh_next)

    dA = ws.dacts.reshape(N, GH)
    grads = _grads_dict(
        dA.T @ X, dA.T @ H_in, dA.sum(axis=0), dlogits.T @ H_out, dlogits.sum(axis=0)
    )
    return loss, grads, ws


_NUMPY_FWD_BWD = {
    "numpy_per_step": numpy_per_step_loss_and_grads,
    "numpy_batched": numpy_batched_loss_and_grads,
}


def _make_numpy_step(impl, cell, params, B, H, V, T, lr):
    fwd_bwd = _NUMPY_FWD_BWD[impl]
    dtype = params["weight_hh_l0"].dtype
    state = {"ws": _Workspace.allocate(cell, T, B, H, V, dtype, with_dacts=impl == "numpy_batched")}

    def step(x, targets):
        loss, grads, state["ws"] = fwd_bwd(cell, params, x, targets, state["ws"])
        for name, p in params.items():
            g = grads[name]
            g *= lr  # grads are ours: scale in place instead of allocating
            p -= g
        return loss

    return step


# ---------------------------------------------------------------------------
# torch implementations (torch imported lazily)
# ---------------------------------------------------------------------------

def _torch():
    import torch  # noqa: PLC0415 - lazy on purpose: keep import side-effect free

    return torch


def _as_torch(x, targets):
    """numpy -> torch without copying (tensors pass through)."""
    torch = _torch()
    return torch.as_tensor(x), torch.as_tensor(targets)


def _build_torch_loop(cell, params_np):
    """Leaf tensors (copies of params_np) and a loss function that runs
    the recurrence as torch ops in a Python loop over time."""
    torch = _torch()
    import torch.nn.functional as F  # noqa: PLC0415

    P = {n: torch.tensor(params_np[n], requires_grad=True) for n in PARAM_NAMES}
    W_ih, W_hh, b_ih, b_hh, W_y, b_y = (P[n] for n in PARAM_NAMES)
    H = W_hh.shape[1]

    def loss_fn(x, targets):
        """x (T, B, V), targets (T, B) int64 -> scalar loss."""
        T, B, _ = x.shape
        h = x.new_zeros(B, H)
        c = x.new_zeros(B, H)
        loss = 0
        for t in range(T):
            a = F.linear(x[t], W_ih, b_ih) + F.linear(h, W_hh, b_hh)
            if cell == "rnn":
                h = torch.tanh(a)
            else:
                i, f, g, o = a.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            # mean over the batch here; / T below gives the mean over T*B
            loss = loss + F.cross_entropy(F.linear(h, W_y, b_y), targets[t])
        return loss / T

    return P, loss_fn


def _build_torch_nn(cell, params_np):
    """nn.RNN / nn.LSTM + nn.Linear loaded with params_np.

    Returns ({name: nn.Parameter}, loss_fn)."""
    torch = _torch()
    import torch.nn.functional as F  # noqa: PLC0415

    V, H = params_np["head.weight"].shape
    tdtype = getattr(torch, params_np["head.weight"].dtype.name)
    rnn_cls = torch.nn.RNN if cell == "rnn" else torch.nn.LSTM
    rnn = rnn_cls(V, H, num_layers=1, bias=True, batch_first=False, dtype=tdtype)
    head = torch.nn.Linear(H, V, dtype=tdtype)
    P = {
        "weight_ih_l0": rnn.weight_ih_l0,
        "weight_hh_l0": rnn.weight_hh_l0,
        "bias_ih_l0": rnn.bias_ih_l0,
        "bias_hh_l0": rnn.bias_hh_l0,
        "head.weight": head.weight,
        "head.bias": head.bias,
    }
    with torch.no_grad():
        for n in PARAM_NAMES:
            P[n].copy_(torch.from_numpy(params_np[n]))

    def loss_fn(x, targets):
        """x (T, B, V), targets (T, B) int64 -> scalar loss."""
        out, _ = rnn(x)  # (T, B, H); h0 = c0 = 0 by default
        logits = head(out)  # (T, B, V)
        return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))

    return P, loss_fn


_TORCH_BUILDERS = {"torch_loop": _build_torch_loop, "torch_nn": _build_torch_nn}


def _make_torch_step(impl, cell, params_np, lr):
    torch = _torch()
    P, loss_fn = _TORCH_BUILDERS[impl](cell, params_np)

    def step(x, targets):
        x, targets = _as_torch(x, targets)
        loss = loss_fn(x, targets)
        loss.backward()
        with torch.no_grad():
            for p in P.values():
                p.add_(p.grad, alpha=-lr)
                p.grad = None
        return loss.item()

    return P, step


def _torch_loss_and_grads(impl, cell, params_np, x, targets):
    P, loss_fn = _TORCH_BUILDERS[impl](cell, params_np)
    loss = loss_fn(*_as_torch(x, targets))
    loss.backward()
    return loss.item(), {n: P[n].grad.numpy() for n in PARAM_NAMES}


# ---------------------------------------------------------------------------
# Uniform interface
# ---------------------------------------------------------------------------

def _check_impl(impl):
    if impl not in IMPLS:
        raise ValueError(f"unknown impl {impl!r}; expected one of {IMPLS}")


def available_impls() -> tuple:
    """The implementations usable here (torch ones only if torch imports)."""
    try:
        _torch()
    except ImportError:
        return NUMPY_IMPLS
    return IMPLS


def make_step(impl, cell, dtype, B, H, V, T, seed, lr=LR):
    """Build one implementation's training step.

    Parameters are init_params(cell, H, V, seed, dtype), so all impls start
    from the same point for the same seed.  B and T size the numpy
    workspaces, which are then reused every step.

    Returns (params, step_fn):
      params: {name: array} updated in place by each step -- numpy arrays
              for numpy impls, torch leaf tensors / nn.Parameters for torch
              impls (see params_to_numpy).
      step_fn(x, targets) -> float: forward + BPTT + SGD update on
              x (T, B, V) and targets (T, B) int64 from make_data (torch
              impls also accept torch tensors; numpy input is wrapped
              without a copy).  Returns the loss before the update.
    """
    _check_impl(impl)
    params = init_params(cell, H, V, seed, dtype)
    if impl in NUMPY_IMPLS:
        return params, _make_numpy_step(impl, cell, params, B, H, V, T, lr)
    return _make_torch_step(impl, cell, params, lr)


def loss_and_grads(impl, cell, params, x, targets):
    """Loss and gradients w.r.t. every parameter, without updating.

    params: {name: ndarray} (e.g. from init_params; not modified);
    x (T, B, V); targets (T, B) int64.
    Returns (loss: float, {name: ndarray shaped like params[name]}).
    """
    _check_impl(impl)
    if impl in NUMPY_IMPLS:
        loss, grads, _ = _NUMPY_FWD_BWD[impl](cell, params, x, targets)
        return loss, grads
    if _cell_from_params(params) != cell:
        raise ValueError(f"params do not belong to a {cell!r} cell")
    return _torch_loss_and_grads(impl, cell, params, x, targets)
