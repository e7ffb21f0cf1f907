# %% [markdown]
# # 3. Backpropagation through time and the vanishing gradient
#
# Put a loss on the last state of an unrolled recurrent net, `L = ℓ(h_{T-1})`. Its gradient with
# respect to an earlier state is a product of step Jacobians `J_t = ∂h_t/∂h_{t-1}`:
#
#     ∂L/∂h_t = J_{t+1}ᵀ J_{t+2}ᵀ ⋯ J_{T-1}ᵀ ∂L/∂h_{T-1}
#
# A product of T − 1 − t matrices tends to shrink or grow geometrically with the distance T − 1 − t:
# the gradient *vanishes* or *explodes* (Bengio et al. 1994). Early inputs then barely influence what
# the net learns. This notebook measures it: exactly on a linear RNN, then on tanh RNN, LSTM and GRU,
# and finally lets you explore the gradients on the graph itself.

# %%
import tempfile
from pathlib import Path

import numpy as np
from IPython.display import SVG, display

import tinygraph as tg
import visualize
from rnn_models import RNN, Recurrent

OUT = Path(tempfile.mkdtemp(prefix="tinygraph-bptt-"))   # files this notebook writes go here

# %% [markdown]
# ## A linear RNN, where the answer is exact
#
# `h_t = W h_{t-1} + U x_t` has `J_t = W` at every step. Take `W = ρ Q` with `Q` orthogonal: `Wᵀ`
# multiplies every vector's norm by exactly ρ, so for `L = ⟨v, h_{T-1}⟩`
#
#     ‖∂L/∂h_t‖ = ρ^(T-1-t) ‖v‖.
#
# The cell is a plain function; `visualize.retain_all(loss)` makes every node keep its gradient during
# `backward()`, and `visualize.state_grad_norms(graph)` reads ‖∂L/∂h_t‖ off the states of the recorded
# time steps.

# %%
T, H = 30, 16
rng = np.random.default_rng(0)
Q, _ = np.linalg.qr(rng.standard_normal((H, H)))   # an orthogonal matrix
U = tg.tensor(0.3 * rng.standard_normal((H, 4)), name="U")
xs, v = rng.standard_normal((T, 1, 4)), rng.standard_normal((1, H))


def linear_rnn_norms(rho):
    """‖∂L/∂h_t‖ for t = 0..T-1 for the linear RNN with W = rho·Q and L = <v, h_{T-1}>."""
    W = tg.tensor(rho * Q, requires_grad=True, name="W")
    node = Recurrent(lambda x, h: h @ W.T + x @ U.T, state_size=H, input_size=4)
    _, h = node.unroll(xs)
    loss = (h * v).sum()
    graph = visualize.retain_all(loss)
    loss.backward()
    (norms,) = visualize.state_grad_norms(graph).values()   # one recurrence in this graph
    return np.array(norms)


for rho in (0.9, 1.0, 1.1):
    norms = linear_rnn_norms(rho)
    factor = norms[:-1] / norms[1:]               # |dL/dh_t| / |dL/dh_t+1|: one step further back
    print(f"rho = {rho}: per-step factor {factor.min():.6f} to {factor.max():.6f}, "
          f"|dL/dh_0| / |dL/dh_T-1| = {norms[0] / norms[-1]:.3e}  (rho^{T - 1} = {rho ** (T - 1):.3e})")

# %% [markdown]
# ## A tanh RNN
#
# With `h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)` the Jacobian is `J_t = diag(1 − h_t²) W_hh`: the
# derivative of tanh, at most 1 and far less where units saturate, shrinks every factor further.
# `rnn_models.RNN` is the layer with PyTorch's interface and initialisation.

# %%
tg.manual_seed(0)
rnn = RNN(input_size=4, hidden_size=H)
x = tg.tensor(rng.standard_normal((T, 1, 4)), name="x")
out, h_n = rnn(x)
with tg.scope("loss"):
    loss = (out[-1] ** 2).sum()                   # a loss on the last step only
graph = visualize.retain_all(loss)
loss.backward()

tanh_norms = visualize.state_grad_norms(graph)["rnn/l0"]
for t in (T - 1, T - 5, T - 10, T - 20, 0):
    print(f"t = {t:2d}: |dL/dh_t| = {tanh_norms[t]:.2e}")
print(f"tanh RNN: |dL/dh_0| / |dL/dh_T-1| = {tanh_norms[0] / tanh_norms[-1]:.2e}")

# %% [markdown]
# ## RNN, LSTM and GRU side by side
#
# `tinygraph gradflow` on the command line draws this comparison; its function `state_gradients`
# returns the norms (a seeded net, input 4, hidden 16, a last-step loss). The LSTM has a second
# state, the cell `c_t`, whose step Jacobian is mostly the forget gate `f_t`: raising the forget
# gate's bias keeps `f_t` near 1, and the gradient travels back along `c` (Gers et al. 2000;
# Jozefowicz et al. 2015).

# %%
from tinygraph_app.gradflow import state_gradients

steps = 40
runs = {cell: state_gradients(cell, steps)["h"] for cell in ("rnn", "lstm", "gru")}
runs["lstm c, forget bias +3"] = state_gradients("lstm", steps, forget_bias=3.0)["c"]
for label, norms in runs.items():
    print(f"{label:22s}  |dL/d·_0| / |dL/d·_T-1| = {norms[0] / norms[-1]:.2e}")
display(SVG(visualize.gradflow(runs, title=f"a last-step loss, {steps} steps back",
                               ylabel="‖∂L/∂h_t‖ (and the LSTM's ‖∂L/∂c_t‖)")))

# %% [markdown]
# ## The gradient on the graph
#
# The same tanh RNN over 12 steps, drawn one box per step (`level="cell"`) and painted with
# log₁₀‖∂L/∂·‖: red near the loss, fading to blue towards t = 0.

# %%
tg.manual_seed(0)
small = RNN(input_size=4, hidden_size=H)
out, _ = small(tg.tensor(rng.standard_normal((12, 1, 4)), name="x"))
with tg.scope("loss"):
    loss = (out[-1] ** 2).sum()
small_graph = visualize.retain_all(loss)
loss.backward()
display(SVG(visualize.svg(small_graph, level="cell", grads=True, title="tanh RNN, 12 steps, BPTT gradients")))

# %% [markdown]
# ## Explore it
#
# `visualize.explore` writes one self-contained HTML page (no network needed): hover a node for its
# op, shape and ‖∂L/∂·‖; click one to highlight every path from it to the loss; drag the time slider
# (or press ▶) to play backpropagation from the last step back to t = 0, with ‖∂L/∂h_t‖ shown at each
# step; switch to the folded picture of the same cell. The page is written to a file and also shown
# below.

# %%
explorer = visualize.explore(small_graph, OUT / "rnn_bptt.html", title="tanh RNN: BPTT, step by step")
print("wrote", explorer.path)
explorer

# %% [markdown]
# ## What to take away
#
# - BPTT is the ordinary backward pass over the unrolled graph; the gradient at step t is a product
#   of T − 1 − t step Jacobians, so it changes geometrically with the distance.
# - On a linear RNN the rate is exactly the spectral radius ρ; a tanh RNN loses more at every step.
# - Gating helps only when the gates let it: the LSTM's cell path carries the gradient when the
#   forget gate is open (bias +3), not at PyTorch's initialisation.
# - Notebook 5 trains with *truncated* BPTT, which cuts this product on purpose every k steps.
