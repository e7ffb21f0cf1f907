# %% [markdown]
# # 1. Autodiff from scratch: build, walk and draw a Graph
#
# Reverse-mode automatic differentiation needs two things: a record of the computation (which op made
# which value from which inputs), and for every op a *gradient rule* that turns the gradient of its
# output into gradients of its inputs. In tinygraph the record is an object you can hold: a `Graph`.
#
# In this notebook you will
# 1. build a tiny model — one neuron and a squared-error loss — from tensors,
# 2. walk its graph: nodes in topological order, edges, leaves, parameters, scopes,
# 3. draw it,
# 4. run backpropagation **by hand**, one gradient rule per node, and check it against
#    `loss.backward()` and against numerical derivatives.

# %%
import numpy as np
from IPython.display import SVG, display

import tinygraph as tg
import visualize   # the pictures; importing it also makes a Graph display itself in Jupyter

# %% [markdown]
# ## Build
#
# A `Tensor` wraps a numpy array. Parameters are tensors with `requires_grad=True`; names show up in
# the graph and in pictures. `tg.scope(...)` labels the nodes created inside it, like a folder.

# %%
x = tg.tensor([1.0, -2.0, 0.5], name="x")                     # an input: no gradient wanted
w = tg.tensor([0.3, 0.8, -0.5], requires_grad=True, name="w")  # parameters
b = tg.tensor(0.1, requires_grad=True, name="b")               # a 0-d tensor is a scalar

with tg.scope("neuron"):
    y = tg.tanh((w * x).sum() + b)          # y = tanh(w·x + b)
with tg.scope("loss"):
    loss = (y - 1.0) ** 2                   # squared error against the target 1

print("y    =", y.item())
print("loss =", loss.item())

# %% [markdown]
# ## Walk
#
# `loss.graph()` collects every node that `loss` depends on, **each after all of its inputs**
# (topological order, found by an iterative depth-first walk, so the order is the same every run).
# A node is a `Tensor`: `op` is the op that made it (None for a leaf) and `inputs` are its arguments,
# in order.

# %%
graph = loss.graph()
print(graph)
print()
print(f"{'pos':>3}  {'op':<32} {'name':<5} {'scope':<7} {'shape':<6} inputs")
for pos, node in enumerate(graph.nodes):
    inputs = [graph.index(t) for t in node.inputs]
    print(f"{pos:>3}  {str(node.op or 'leaf'):<32} {node.name or '':<5} {node.scope or '':<7} "
          f"{str(node.shape):<6} {inputs}")

# %% [markdown]
# The same structure as plain data: an edge `(src, dst, argnum)` says that node `src` is argument
# `argnum` of node `dst`. Leaves are what no op produced (inputs, constants, parameters); parameters
# are the leaves that want a gradient.

# %%
print("edges:     ", graph.edges)
print("leaves:    ", [leaf.name or leaf.item() for leaf in graph.leaves])
print("parameters:", [p.name for p in graph.parameters])
print("op counts: ", graph.op_counts())
print("scopes:    ", graph.scopes())

# %% [markdown]
# ## Draw
#
# `visualize` turns a Graph into a Graphviz picture: one box per scope, leaves at the bottom, the loss
# on top. With `visualize` imported, a Graph that ends a cell displays itself:

# %%
graph

# %% [markdown]
# ## Backpropagation by hand
#
# Every op has a gradient rule `vjp(B, g, out, *inputs)`: given `g = ∂loss/∂out`, it returns one
# gradient per input, `∂loss/∂input = g · ∂out/∂input` (a vector-Jacobian product). `B` is the array
# namespace the rule computes with; for plain numpy arrays it is `tinygraph.ops.NUMPY_VJP`.
#
# Backpropagation is then a walk over the nodes in **reverse** topological order: seed
# `∂loss/∂loss = 1`, and at each op node hand its gradient to its rule and *add* what comes out into
# its inputs' gradients (a node used twice receives two contributions).

# %%
from tinygraph.ops import NUMPY_VJP

grads = {graph.index(loss): np.ones(loss.shape)}          # position -> ∂loss/∂node
for pos in reversed(range(len(graph.nodes))):
    node = graph.nodes[pos]
    if node.op is None or pos not in grads:
        continue                                          # a leaf, or nothing flows back to here
    input_grads = node.op.vjp(NUMPY_VJP, grads[pos], node.data, *(t.data for t in node.inputs))
    for t, g in zip(node.inputs, input_grads):
        if g is not None and t.requires_grad:
            k = graph.index(t)
            grads[k] = grads.get(k, 0) + g

by_hand = {"w": grads[graph.index(w)], "b": grads[graph.index(b)]}
print("by hand:   dloss/dw =", by_hand["w"], " dloss/db =", by_hand["b"])

# %% [markdown]
# `loss.backward()` is the same walk (`tinygraph.autograd.compute_gradient`); it stores each
# parameter's gradient in `.grad`.

# %%
loss.backward()
print("backward:  dloss/dw =", w.grad, " dloss/db =", b.grad)
print("same as by hand:", np.allclose(w.grad, by_hand["w"]) and np.allclose(b.grad, by_hand["b"]))

# %% [markdown]
# ## Are the gradients right? Ask the numbers
#
# A derivative is a limit of difference quotients. The *central* difference
# `(f(w + ε e_i) − f(w − ε e_i)) / 2ε` has an error of order ε², so with ε = 1e-6 in float64 it
# agrees with the exact derivative to about 1e-10.

# %%
def neuron_loss(w, b):
    """The loss above as a function of the parameters."""
    with tg.scope("neuron"):
        y = tg.tanh((w * x).sum() + b)
    with tg.scope("loss"):
        return (y - 1.0) ** 2


def loss_at(w_values, b_value):
    """The loss at these parameter values, as a float (no graph is needed: no_grad)."""
    with tg.no_grad():
        return neuron_loss(tg.tensor(w_values), b_value).item()


eps = 1e-6
numeric_w = np.array([(loss_at(w.data + eps * e, b.data) - loss_at(w.data - eps * e, b.data)) / (2 * eps)
                      for e in np.eye(3)])
numeric_b = (loss_at(w.data, b.data + eps) - loss_at(w.data, b.data - eps)) / (2 * eps)
difference = max(np.abs(w.grad - numeric_w).max(), abs(b.grad - numeric_b))
print("numeric:   dloss/dw =", numeric_w, " dloss/db =", numeric_b)
print(f"largest |analytic - numeric|: {difference:.1e}")

# %% [markdown]
# `tg.gradcheck(fn, inputs)` does exactly this for any function of tensors (against a random projection
# of the output, so one check covers every output element) and raises, naming the input and the worst
# index, when they disagree:

# %%
print("gradcheck:", tg.gradcheck(neuron_loss, [w, b]))

# %% [markdown]
# ## The picture with its gradients
#
# `backward()` frees the links between the nodes as it walks (a long unrolled graph would otherwise stay
# in memory), so the graph of `loss` cannot be walked again — and tinygraph says so rather than
# returning something wrong. The `graph` object built before still holds its nodes and edges.

# %%
try:
    loss.graph()
except tg.GraphError as error:
    print("GraphError:", error)

# %% [markdown]
# So build it again. `grads=True` paints every node and edge by log₁₀‖∂loss/∂·‖, blue small to red
# large (the legend is in the picture), so you can see where the gradient flows.

# %%
display(SVG(visualize.svg(neuron_loss(w, b), grads=True, title="one neuron, gradients painted")))

# %% [markdown]
# ## What next
#
# - The same rules differentiate themselves: `tg.grad(tg.grad(f, create_graph=True))` gives second
#   derivatives; `tg.jvp`, `tg.hessian` add forward mode.
# - Notebook 2 builds a recurrent cell and unrolls it over time into one big graph like this one.
