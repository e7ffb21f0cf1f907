"""Gradient magnitudes for painting: per node, per edge (what flows back along it), and the colour scale.

A node's magnitude is ``‖∂L/∂node‖`` (Frobenius norm of ``.grad``). An edge ``src -> dst`` carries
the part of ``∂L/∂src`` that comes through ``dst``: the vjp of ``dst``'s op applied to ``dst.grad``,
for ``src``'s argument slot. So the edges from a shared parameter into step ``t`` show that step's term
of the BPTT sum ``∂L/∂W = Σ_t (∂L/∂W)_t``, where ``(∂L/∂W)_t`` is what flows into ``W`` through its use at
step ``t`` (a loss on the last step only still has a term at every step). Both need ``dst.grad``, which
the engine keeps only for tensors that called ``retain_grad()`` (see ``retain_all``); ``gradients``
computes them from the Graph instead when they were not kept.
"""
import math

import numpy as np

import tinygraph as tg

# blue (small) -> red (large); ColorBrewer RdYlBu, reversed
PALETTE = ("#313695", "#4575b4", "#74add1", "#abd9e9", "#e0f3f8",
           "#fee090", "#fdae61", "#f46d43", "#d73027", "#a50026")
DARK = {0, 1, 8, 9}          # palette entries that need white text
ZERO_COLOUR = "#d9d9d9"      # exactly zero gradient
MIN_PEN, MAX_PEN = 0.6, 4.0


def retain_all(outputs):
    """Build the Graph of ``outputs`` (a Tensor, Tensors or a Graph) and make every op node keep its
    gradient, so ``to_dot(graph, grads=True)`` can paint it after ``loss.backward()``.

    Call it before ``backward``; the returned Graph keeps its nodes and edges after backward frees
    the tensors' links.
    """
    graph = as_graph(outputs)
    for node in graph.nodes:
        if node.op is not None and node.requires_grad:
            node.retain_grad()
    return graph


def as_graph(obj):
    """A Graph from a Graph, a Tensor or a sequence of Tensors."""
    if isinstance(obj, tg.Graph):
        return obj
    if isinstance(obj, tg.Tensor):
        return tg.Graph.of(obj)
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(t, tg.Tensor) for t in obj):
        return tg.Graph.of(*obj)
    raise TypeError(f"visualize: expected a tinygraph Graph, a Tensor or a list of Tensors, got "
                    f"{type(obj).__name__}")


def norm(array):
    """Frobenius norm as a float (``None`` passes through)."""
    if array is None:
        return None
    data = array.data if isinstance(array, tg.Tensor) else np.asarray(array)
    return float(np.sqrt(np.sum(np.square(data, dtype=np.float64))))


def node_norms(graph):
    """Per node position, ``‖node.grad‖`` or None when the node holds no gradient."""
    return [norm(n.grad) for n in graph.nodes]


def edge_grads(graph):
    """``{(src, dst, argnum): ndarray}``: the gradient flowing back along each edge whose ``dst`` holds
    ``.grad``. One vjp per such node, on the values stored in the Graph (works after backward)."""
    nodes = graph.nodes
    args = {}
    for src, dst, argnum in graph.edges:
        args.setdefault(dst, {})[argnum] = src
    flows = {}
    for dst, by_arg in args.items():
        node = nodes[dst]
        if node.op is None or node.grad is None or not node.op.differentiable:
            continue
        g = node.grad.data if isinstance(node.grad, tg.Tensor) else node.grad
        inputs = [nodes[by_arg[k]].data for k in range(len(by_arg))]
        with tg.no_grad():
            grads = tg.autograd.vjp_of(node, g, inputs)
        for argnum, flow in enumerate(grads):
            if flow is not None and nodes[by_arg[argnum]].requires_grad:
                flows[(by_arg[argnum], dst, argnum)] = _dense(flow)
    return flows


def gradients(graph):
    """``(norms, flows)`` for painting: ``node_norms`` and ``edge_grads`` of ``graph``.

    When every op node that requires grad holds its ``.grad`` (``retain_all`` before backward), those
    are used. Otherwise the gradients of the graph's one scalar output are computed here, from the
    Graph's stored values and edges (one vjp per node in reverse topological order, the rule
    ``backward`` runs; nothing is written to ``.grad``). Anything else is a ValueError saying what
    to do.
    """
    nodes = graph.nodes
    if all(n.grad is not None for n in nodes if n.op is not None and n.requires_grad):
        if any(n.grad is not None for n in nodes):
            return node_norms(graph), edge_grads(graph)
    outputs = list(dict.fromkeys(graph.outputs))
    if len(outputs) != 1 or nodes[outputs[0]].size != 1:
        shapes = ", ".join(str(nodes[i].shape) for i in outputs) or "none"
        raise ValueError(f"to_dot(grads=True): the ops of this graph hold no gradients and it has no "
                         f"single scalar output to differentiate (outputs: {shapes}); draw the graph "
                         f"of a scalar loss, or call visualize.retain_all(outputs) before backward")
    args = {}
    for src, dst, argnum in graph.edges:
        args.setdefault(dst, {})[argnum] = src
    grads, flows = [None] * len(nodes), {}
    out = outputs[0]
    grads[out] = np.ones(nodes[out].shape, dtype=nodes[out].dtype)
    for dst in reversed(range(len(nodes))):
        node, g = nodes[dst], grads[dst]
        if g is None or node.op is None or not node.op.differentiable or dst not in args:
            continue
        by_arg = args[dst]
        inputs = [nodes[by_arg[k]].data for k in range(len(by_arg))]
        with tg.no_grad():
            results = tg.autograd.vjp_of(node, g, inputs)
        for argnum, flow in enumerate(results):
            src = by_arg[argnum]
            if flow is None or not nodes[src].requires_grad:
                continue
            flow = _dense(flow)
            key = (src, dst, argnum)
            flows[key] = flow if key not in flows else flows[key] + flow
            grads[src] = flow if grads[src] is None else grads[src] + flow
    return [norm(g) for g in grads], flows


def _dense(flow):
    """A vjp result as an ndarray: rules may return lazy gradients the engine adds up itself (a
    scatter into zeros for indexing: ``.dense()``; an engine-owned buffer: ``.array``)."""
    if hasattr(flow, "dense"):
        return flow.dense()
    return np.asarray(getattr(flow, "array", flow))


class GradScale:
    """Maps gradient norms to colours and pen widths on a log10 scale spanning whole decades."""

    def __init__(self, norms):
        logs = [math.log10(v) for v in norms if v is not None and v > 0 and math.isfinite(v)]
        self.low = math.floor(min(logs)) if logs else 0
        self.high = max(math.ceil(max(logs)) if logs else 1, self.low + 1)

    def fraction(self, value):
        """Position of ``value`` in [0, 1] on the log scale (None for missing/zero/non-finite)."""
        if value is None or not value > 0 or not math.isfinite(value):
            return None
        return min(max((math.log10(value) - self.low) / (self.high - self.low), 0.0), 1.0)

    def index(self, value):
        """The palette position of ``value``, in [0, len(PALETTE)), or None where ``fraction`` is."""
        frac = self.fraction(value)
        return None if frac is None else min(int(frac * len(PALETTE)), len(PALETTE) - 1)

    def colour(self, value):
        """Hex colour; grey for an exactly-zero or non-finite gradient."""
        i = self.index(value)
        return ZERO_COLOUR if i is None else PALETTE[i]

    def font_colour(self, value):
        """``"white"`` on the palette's dark colours, else ``"black"``: a label readable on
        ``colour(value)``."""
        i = self.index(value)
        return "white" if i in DARK else "black"

    def pen_width(self, value):
        """The line width for ``value``: from ``MIN_PEN`` (smallest, or no gradient) to ``MAX_PEN``
        (largest), linear in ``fraction``."""
        frac = self.fraction(value)
        return MIN_PEN if frac is None else round(MIN_PEN + (MAX_PEN - MIN_PEN) * frac, 2)

    def decades(self):
        """The legend's tick values: ``[(colour, '1e-3'), ...]`` from low to high."""
        span = self.high - self.low
        return [(PALETTE[min(int(k * len(PALETTE) / span), len(PALETTE) - 1)], f"1e{self.low + k}")
                for k in range(span + 1)]


def text_on(colour):
    """``"white"`` on the palette's dark colours, else ``"black"``: text readable on ``colour``."""
    return "white" if colour in {PALETTE[i] for i in DARK} else "black"


def format_norm(value):
    """A gradient norm as the labels show it: two significant digits, "—" for None (none kept)."""
    return "—" if value is None else f"{value:.2g}"
