# %% [markdown]
# # 2. Your own recurrent cell, folded and unrolled
#
# A recurrent network is one *step* applied again and again: `h_t = cell(x_t, h_{t-1})`. In tinygraph a
# cell is any callable that computes one step from tinygraph ops — a `tinygraph.nn.Module` or a plain
# function. `rnn_models.Recurrent(cell)` turns it into a *recurrent node*, which can be
#
# - **folded**: one step traced once, with a delayed *loop edge* from the new state back to the state
#   input — the textbook picture of an RNN;
# - **unrolled**: the step run T times, each in its own scope `t=<k>`, into one ordinary graph whose
#   parameters are shared by every step.
#
# Backpropagation through time (BPTT) is then nothing new: `loss.backward()` over the unrolled graph.

# %%
import numpy as np
from IPython.display import SVG, display

import tinygraph as tg
import visualize
from tinygraph.nn import Linear, Module, Parameter
from rnn_models import Recurrent, RecurrentLayer

# %% [markdown]
# ## A cell from primitives
#
# A *leaky* tanh unit: each hidden unit keeps a fraction of its old value and moves towards a new
# candidate at its own learned rate `a = σ(leak)` (the leaky-integrator units of echo-state networks):
#
#     h~ = tanh(W x + U h + b)
#     h' = (1 − a) ⊙ h + a ⊙ h~,     a = σ(leak)
#
# Shapes: `x` (B, input_size), `h` (B, hidden_size). The `forward` is the step — nothing else is
# required. The scope `candidate` groups its nodes in the pictures.

# %%
class LeakyTanhCell(Module):
    """h' = (1 − a) ⊙ h + a ⊙ tanh(W x + U h + b), a = σ(leak) per unit. x (B, I), h (B, H)."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input = Linear(input_size, hidden_size)                  # W x + b
        self.recurrent = Linear(hidden_size, hidden_size, bias=False)  # U h
        self.leak = Parameter(np.zeros(hidden_size))                  # a = σ(0) = 0.5 at the start

    def forward(self, x, h):
        with tg.scope("candidate"):
            candidate = tg.tanh(self.input(x) + self.recurrent(h))
        rate = tg.sigmoid(self.leak)
        return h + rate * (candidate - h)


tg.manual_seed(0)                       # parameters are drawn from tinygraph's seeded generator
cell = LeakyTanhCell(input_size=3, hidden_size=4)
h1 = cell(np.ones((2, 3)), tg.zeros((2, 4)))   # one step on a batch of 2
print("one step:", h1.shape)
print("parameters:", [(name, p.shape) for name, p in cell.named_parameters()])

# %% [markdown]
# ## Folded: the step traced once
#
# `folded()` runs the cell once on placeholder inputs and returns its Graph with one `loop_edge` per
# state tensor: the new `h` feeds the placeholder `h[t-1]` at the next step. This is the loop body of
# JAX's `lax.scan` or ONNX's `Scan`.

# %%
node = Recurrent(cell, state_size=4, input_size=3)
folded = node.folded()
print(folded)
for src, dst in folded.loop_edges:
    print(f"loop edge: {folded.nodes[src].name} -> {folded.nodes[dst].name}")
display(SVG(visualize.svg(folded, view="folded", title="the leaky tanh cell, folded")))

# %% [markdown]
# ## Unrolled: the step run T times
#
# `unroll(xs)` takes a sequence (T, B, input_size) and returns the outputs of every step and the final
# state. It is this loop, with every step recorded:

# %%
xs = tg.tensor(np.random.default_rng(0).standard_normal((4, 2, 3)), name="x")   # T = 4, batch 2, 3 features
outputs, h = node.unroll(xs)

h_loop = tg.zeros((2, 4))
for t in range(len(xs)):
    h_loop = cell(xs[t], h_loop)
print("outputs:", len(outputs), "steps of", outputs[0].shape, " final state:", h.shape)
print("largest difference from the hand loop:", np.abs(h.data - h_loop.data).max())

# %% [markdown]
# The unrolled graph is an ordinary Graph. The unroll recorded its structure — which nodes belong to
# which step (`graph.steps`), and which edges carry the state from one step into the next
# (`graph.state_edges`, the unrolled counterpart of the folded `loop_edges`):

# %%
loss = (h ** 2).sum()
graph = loss.graph()
print(graph)
print(graph.steps[1])
print("state edges (src, dst, argnum):", graph.state_edges[:3], "...")
print("scopes:", graph.scopes()[:4], "...")

# %% [markdown]
# The nodes grow with T; the parameters do not — every step uses the same four leaves:

# %%
for T in (1, 4, 16, 64):
    _, h_T = node.unroll(np.random.default_rng(0).standard_normal((T, 2, 3)))
    g = h_T.sum().graph()
    print(f"T = {T:2d}: {len(g):5d} nodes, {len(g.parameters)} parameters")

# %% [markdown]
# Drawn, time runs left to right, one box per step. The parameters are drawn once, outside the steps;
# inside each step a dashed ellipse marked *shared* stands for its use of one of them:

# %%
display(SVG(visualize.svg(graph, title="the leaky tanh cell unrolled over 4 steps")))

# %% [markdown]
# ## BPTT is backward over the unrolled graph
#
# Nothing in the engine knows about time. The gradient of a shared parameter is the sum of what flows
# into it through its use at each step; the gradient of the initial state has come back through every
# step. `gradcheck` compares both the inputs' and the initial state's gradients with central
# differences through the whole unroll:

# %%
loss.backward()
print("dloss/dleak =", node.cell.leak.grad)

rng = np.random.default_rng(1)
x_check = tg.tensor(rng.standard_normal((5, 2, 3)), requires_grad=True)    # 5 steps
h0_check = tg.tensor(rng.standard_normal((2, 4)), requires_grad=True)
print("gradcheck through 5 steps:",
      tg.gradcheck(lambda x, h0: (node.unroll(x, h0)[1] ** 2).sum(), [x_check, h0_check]))

# %% [markdown]
# ## Layers, like PyTorch's
#
# `RecurrentLayer(cell class, input_size, hidden_size, ...)` stacks the cell into layers and
# directions with the interface of `torch.nn.RNN`: `out, h_n = layer(x)`.

# %%
layer = RecurrentLayer(LeakyTanhCell, 3, 4, num_layers=2, bidirectional=True)
out, h_n = layer(np.ones((6, 2, 3)))          # (T, B, input_size)
print("out:", out.shape, "  h_n:", h_n.shape)   # (T, B, 2·H) and (layers·directions, B, H)

# %% [markdown]
# ## What next
#
# - `examples/cells.py` has three more cells written this way (a minimal gated unit, a peephole LSTM
#   with a tuple state, an IndRNN); any of them trains with `tinygraph train --cell examples.cells:...`.
# - Notebook 3 follows the gradient back through the unrolled graph and watches it vanish.
