"""The explicit computational graph: nodes in topological order, edges, leaves, parameters, scopes.

``toposort`` is the one traversal: ``Graph.of`` and the backward pass both use it. It is iterative (a
10^6-node chain is fine) and deterministic: inputs are visited in argument order, so the same program
gives the same node order, and therefore the same node names when drawn.
"""
import numpy as np

from .errors import GraphError
from .release import Released, sweep


def toposort(roots, requires_grad_only=False):
    """Nodes reachable from ``roots``, each after all of its inputs.

    With ``requires_grad_only`` the walk skips subgraphs that no gradient can reach (constants, data).
    """
    order, visited = [], set()
    for root in roots:
        if id(root) in visited:
            continue
        visited.add(id(root))
        stack = [(root, iter(_inputs(root)))]
        while stack:
            node, pending = stack[-1]
            for child in pending:
                if id(child) not in visited and (child.requires_grad or not requires_grad_only):
                    visited.add(id(child))
                    stack.append((child, iter(_inputs(child))))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def _inputs(node):
    if node.inputs is None:
        raise GraphError(
            f"the graph through op '{node.op.name}' (scope '{node.scope or '<root>'}') was freed by "
            f"an earlier backward(); call backward(retain_graph=True) the first time to walk or "
            f"differentiate it again, or build the graph before backward with Graph.of(...)")
    return node.inputs


class Graph:
    """A computational graph you can hold, walk, count and draw.

    Attributes:
        nodes: list of Tensors in topological order (inputs before the ops that use them).
        edges: list of ``(src, dst, argnum)`` node positions: ``nodes[src]`` is argument ``argnum``
            of ``nodes[dst]``.
        outputs: positions of the tensors the graph was built from.
        loop_edges: ``(src, dst)`` positions of delayed state edges — a state output ``src`` feeds
            the state input ``dst`` at the next time step. Empty unless the graph is folded.
    """

    def __init__(self, nodes, outputs=(), loop_edges=()):
        self.nodes = list(nodes)
        self._position = {id(n): i for i, n in enumerate(self.nodes)}
        self.edges = [(self._position[id(src)], dst, argnum)
                      for dst, node in enumerate(self.nodes)
                      for argnum, src in enumerate(node.inputs)]
        self.outputs = [self._position[id(t)] for t in outputs]
        self.loop_edges = [(self.index(src), self.index(dst)) for src, dst in loop_edges]

    @classmethod
    def of(cls, *outputs, loop_edges=()):
        """The graph that computes ``outputs`` (Tensors).

        Values no gradient rule reads and nothing else holds are released first (a Graph holds its
        nodes, so none would be while it lives): the graph shows what backward will find.
        """
        sweep()
        return cls(toposort(outputs), outputs, loop_edges)

    def __len__(self):
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __contains__(self, tensor):
        return id(tensor) in self._position

    def index(self, tensor):
        """Position of ``tensor`` in ``nodes``."""
        try:
            return self._position[id(tensor)]
        except KeyError:
            raise KeyError(f"tensor {tensor.name or tensor.shape} is not a node of this graph") from None

    @property
    def leaves(self):
        """Nodes no op produced: inputs, constants and parameters."""
        return [n for n in self.nodes if n.op is None]

    @property
    def parameters(self):
        """Leaves that require grad."""
        return [n for n in self.nodes if n.op is None and n.requires_grad]

    @property
    def ops(self):
        """Nodes produced by an op."""
        return [n for n in self.nodes if n.op is not None]

    def scope(self, path):
        """Nodes whose scope is ``path`` or lies under it (``"lstm"`` matches ``"lstm/t=3/..."``)."""
        prefix = path.rstrip("/") + "/"
        return [n for n in self.nodes if n.scope == path or (n.scope or "").startswith(prefix)]

    def scopes(self):
        """Every distinct scope path, in order of first appearance."""
        return list(dict.fromkeys(n.scope for n in self.nodes if n.scope))

    def op_counts(self):
        """``{op name: count}`` over op nodes, in order of first appearance."""
        counts = {}
        for n in self.ops:
            counts[n.op.name] = counts.get(n.op.name, 0) + 1
        return counts

    def memory(self):
        """``{op name: bytes}`` the node values hold, each buffer counted once: a view counts towards
        the first node (in topological order) holding its buffer. Leaves count under ``"leaf"``; a
        released value (``tinygraph.release``) counts 0 bytes."""
        seen, usage = set(), {}
        for n in self.nodes:
            buffer = n.data
            if type(buffer) is Released:
                continue
            while isinstance(buffer.base, np.ndarray):
                buffer = buffer.base
            if id(buffer) not in seen:
                seen.add(id(buffer))
                key = n.op.name if n.op is not None else "leaf"
                usage[key] = usage.get(key, 0) + buffer.nbytes
        return usage

    def __repr__(self):
        return (f"Graph({len(self.nodes)} nodes, {len(self.edges)} edges, {len(self.leaves)} leaves, "
                f"{len(self.parameters)} parameters, {len(self.loop_edges)} loop edges)")
