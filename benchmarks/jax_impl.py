"""The JAX side of the training-step benchmark: ``jax.jit`` over ``lax.scan``, what a user would write.

Same model, data and parameters as ``baselines`` (PyTorch names and gate order i, f, g, o)::

    a = x @ W_ih^T + b_ih + b_hh             # (T, B, G*H), all steps in one matmul
    h_t, c_t = scan(cell, (h0, c0), a)       # per step: a_t + h_{t-1} @ W_hh^T, then the gates
    loss = mean over T*B of cross_entropy(h_t @ W_y^T + b_y, targets_t)
    params <- params - lr * grad(loss)       # inside the same jitted function

The input projection is hoisted out of the scan by hand, as (c) and tinygraph do; the scan body is
only the recurrence. The whole step — forward, backward (JAX's transpose of the scan) and the SGD
update — is one XLA executable, compiled once per shape with ``jit(...).lower(...).compile()`` so
the compile time can be reported apart from the step time. Parameters are donated, so the update
reuses their buffers.

Importing this module does not import jax; ``available()`` says whether it can. Float64 needs
``jax_enable_x64``, which is switched on when jax is first loaded here (float32 stays float32: the
Python scalars in the step are weakly typed). Thread counts are the caller's business (the
benchmark worker pins the process to one CPU before jax loads; see ``benchmarks.worker``).
"""
import time

import numpy as np

from .baselines import LR, PARAM_NAMES, init_params

_JAX = None


def _jax():
    """(jax, jax.numpy, jax.lax), loaded once with 64-bit types enabled."""
    global _JAX
    if _JAX is None:
        import jax  # noqa: PLC0415 - lazy on purpose
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp  # noqa: PLC0415
        _JAX = jax, jnp, jax.lax
    return _JAX


def available():
    """True if jax imports here."""
    try:
        _jax()
    except ImportError:
        return False
    return True


def loss_fn(cell, P, x, targets):
    """Mean softmax cross-entropy over all T*B positions. P {name: array}, x (T, B, V), targets (T, B)."""
    jax, jnp, lax = _jax()
    W_ih, W_hh, b_ih, b_hh, W_y, b_y = (P[n] for n in PARAM_NAMES)
    T, B, _ = x.shape
    H = W_hh.shape[1]
    a = x @ W_ih.T + (b_ih + b_hh)  # (T, B, G*H)

    def rnn_step(h, a_t):
        h = jnp.tanh(a_t + h @ W_hh.T)
        return h, h

    def lstm_step(state, a_t):
        h, c = state
        gates = a_t + h @ W_hh.T
        i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    h0 = jnp.zeros((B, H), dtype=x.dtype)
    if cell == "rnn":
        _, hs = lax.scan(rnn_step, h0, a)
    else:
        _, hs = lax.scan(lstm_step, (h0, h0), a)
    logits = hs @ W_y.T + b_y  # (T, B, V)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1))


def _train_step(cell, lr):
    jax, _, _ = _jax()
    value_and_grad = jax.value_and_grad(lambda P, x, targets: loss_fn(cell, P, x, targets))

    def train_step(P, x, targets):
        loss, grads = value_and_grad(P, x, targets)
        return {n: P[n] - lr * grads[n] for n in P}, loss
    return jax.jit(train_step, donate_argnums=0)


def make_step(cell, dtype, B, H, V, T, seed, lr=LR):
    """(state, step_fn, compile_ms): state["params"] holds the current parameters (jax arrays);
    step_fn(x, targets) -> loss before the update, blocking until the step is done. The executable
    is compiled here, for these shapes and dtype, and compile_ms is how long that took."""
    jax, jnp, _ = _jax()
    state = {"params": {n: jnp.asarray(p) for n, p in init_params(cell, H, V, seed, dtype).items()}}
    x_spec = jax.ShapeDtypeStruct((T, B, V), np.dtype(dtype))
    targets_spec = jax.ShapeDtypeStruct((T, B), np.int64)
    t0 = time.perf_counter()
    compiled = _train_step(cell, lr).lower(state["params"], x_spec, targets_spec).compile()
    compile_ms = (time.perf_counter() - t0) * 1e3

    def step(x, targets):
        state["params"], loss = compiled(state["params"], x, targets)
        return float(loss)  # waits for the executable to finish
    return state, step, compile_ms


def loss_and_grads(cell, params_np, x, targets):
    """(loss, {baseline name: grad as ndarray}) for one forward + backward, parameters unchanged."""
    jax, jnp, _ = _jax()
    P = {n: jnp.asarray(p) for n, p in params_np.items()}
    loss, grads = jax.jit(jax.value_and_grad(lambda P, x, t: loss_fn(cell, P, x, t)))(
        P, jnp.asarray(x), jnp.asarray(targets))
    return float(loss), {n: np.asarray(g) for n, g in grads.items()}
