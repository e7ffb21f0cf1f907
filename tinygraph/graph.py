"""The explicit computational graph: nodes in topological order, edges, leaves, parameters, scopes.

``toposort`` is the one traversal: ``Graph.of`` and the backward pass both use it. It is iterative (a
10^6-node chain is fine) and deterministic: inputs are visited in argument order, so the same program
gives the same node order, and therefore the same node names when drawn.
"""
import weakref

import numpy as np

from .errors import GraphError
from .modes import current_scope
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


class Loop:
    """The record of one unrolled recurrence, written by whoever unrolled it (``rnn_models.Recurrent``).

    Nodes created while step ``t`` runs (inside ``tg.modes.in_step(loop, t)``) carry ``(loop, t)``;
    the loop itself remembers, per step, which tensors the step read as its state, which it produced
    as its new state, and its output. It holds them weakly: a record never keeps a graph alive.

    Attributes:
        name: a label, e.g. the scope path the recurrence ran in (``"lstm/l0"``).
        reverse: True when the steps ran from t = T-1 down to 0.
        order: the time steps in the order they ran.
    """
    __slots__ = ("name", "reverse", "order", "_records", "__weakref__")

    def __init__(self, name="", reverse=False):
        self.name, self.reverse, self.order = name, bool(reverse), []
        self._records = {}   # t -> (state_in refs, state_out refs, output ref, scope)

    def record(self, t, state_in, state_out, output, scope=None):
        """Step ``t`` read the tensors ``state_in``, produced ``state_out`` and ``output``; ``scope``
        is the scope path its nodes were created in (default: the current one)."""
        ref = weakref.ref
        self.order.append(t)
        self._records[t] = ([ref(s) for s in state_in], [ref(s) for s in state_out], ref(output),
                            current_scope() if scope is None else scope)

    def __contains__(self, t):
        return t in self._records

    def state_in(self, t):
        """The tensors step ``t`` read as its state (None for one that no longer exists)."""
        return tuple(r() for r in self._records[t][0])

    def state_out(self, t):
        """The tensors step ``t`` produced as its new state (None for one that no longer exists)."""
        return tuple(r() for r in self._records[t][1])

    def output(self, t):
        """The output tensor of step ``t`` (None once it no longer exists)."""
        return self._records[t][2]()

    def scope(self, t):
        """The scope path of step ``t`` (``"lstm/l0/t=3"``); its nodes' scopes lie in or under it."""
        return self._records[t][3]

    def __repr__(self):
        return f"Loop({self.name!r}, {len(self.order)} steps{', reverse' if self.reverse else ''})"


class StepRecord:
    """One time step of one loop as positions in a ``Graph`` (None where a tensor is not a node).

    Attributes: loop (index into ``Graph.loops``), t, nodes (positions created in the step, in
    topological order), state_in, state_out (tuples of positions), output (a position), scope (the
    step's scope path, or None when the loop has no record of step t).
    """
    __slots__ = ("loop", "t", "nodes", "state_in", "state_out", "output", "scope")

    def __init__(self, loop, t, nodes, state_in, state_out, output, scope=None):
        self.loop, self.t, self.nodes = loop, t, nodes
        self.state_in, self.state_out, self.output, self.scope = state_in, state_out, output, scope

    def __repr__(self):
        return (f"StepRecord(loop={self.loop}, t={self.t}, {len(self.nodes)} nodes, state_in="
                f"{self.state_in}, state_out={self.state_out}, output={self.output})")


class Graph:
    """A computational graph you can hold, walk, count and draw.

    Attributes:
        nodes: list of Tensors in topological order (inputs before the ops that use them).
        edges: list of ``(src, dst, argnum)`` node positions: ``nodes[src]`` is argument ``argnum``
            of ``nodes[dst]``.
        outputs: positions of the tensors the graph was built from.
        loop_edges: ``(src, dst)`` positions of delayed state edges — a state output ``src`` feeds
            the state input ``dst`` at the next time step. Empty unless the graph is folded.

    The structure of an unrolled recurrence, as recorded by the unroll (see ``Loop``), never guessed
    from names or scopes:

        loops: the ``Loop`` records of the recurrences whose steps are in the graph, in order of
            first appearance.
        step_of: per position, ``(loop index, t)`` for a node created inside a step, else None.
        steps: ``StepRecord`` per (loop, t), loop by loop, in the order the steps ran.
        state_edges: ``(src, dst, argnum)`` edges that carry a state from one step into the next
            (``src`` is in the previous step's ``state_out``, ``dst`` is an op of the next step):
            the unrolled counterpart of ``loop_edges``.
    """

    def __init__(self, nodes, outputs=(), loop_edges=()):
        self.nodes = list(nodes)
        self._position = {id(n): i for i, n in enumerate(self.nodes)}
        self.edges = [(self._position[id(src)], dst, argnum)
                      for dst, node in enumerate(self.nodes)
                      for argnum, src in enumerate(node.inputs)]
        self.outputs = [self._position[id(t)] for t in outputs]
        self.loop_edges = [(self.index(src), self.index(dst)) for src, dst in loop_edges]
        self._record_steps()

    def _record_steps(self):
        loops, index, self.step_of = [], {}, []
        for node in self.nodes:
            mark = node._step
            if mark is None:
                self.step_of.append(None)
                continue
            loop, t = mark
            if id(loop) not in index:
                index[id(loop)] = len(loops)
                loops.append(loop)
            self.step_of.append((index[id(loop)], t))
        self.loops = loops
        members = {}
        for i, mark in enumerate(self.step_of):
            if mark is not None:
                members.setdefault(mark, []).append(i)
        position = self._position.get

        def positions(tensors):
            return tuple(None if s is None else position(id(s)) for s in tensors)

        self.steps = []
        ran = [{t: n for n, t in enumerate(loop.order)} for loop in loops]
        for (k, t), nodes in sorted(members.items(), key=lambda m: (m[0][0], ran[m[0][0]].get(m[0][1], -1))):
            loop = loops[k]
            recorded = t in loop
            self.steps.append(StepRecord(
                k, t, nodes, positions(loop.state_in(t)) if recorded else (),
                positions(loop.state_out(t)) if recorded else (),
                positions((loop.output(t),))[0] if recorded else None,
                loop.scope(t) if recorded else None))
        outs = {}
        for step in self.steps:
            for pos in step.state_out:
                if pos is not None:
                    outs[pos] = (step.loop, step.t)
        self.state_edges = []
        for src, dst, argnum in self.edges:
            origin, home = outs.get(src), self.step_of[dst]
            if origin is not None and home is not None and home[0] == origin[0] and home[1] != origin[1]:
                self.state_edges.append((src, dst, argnum))

    @classmethod
    def of(cls, *outputs, loop_edges=()):
        """The graph that computes ``outputs`` (Tensors).

        Values no gradient rule reads and nothing else holds are released first (a Graph holds its
        nodes, so none would be while it lives): the graph shows what backward will find.
        """
        sweep()
        return cls(toposort(outputs), outputs, loop_edges)

    def renumber_steps(self, numbers):
        """Record the time steps t = 0, 1, ... as ``numbers[t]`` instead, in ``steps`` and ``step_of``
        together (in place): a picture of a short unroll standing for steps of a longer one
        (``[0, 1, 2, 999998, 999999]``) then elides the numbers between."""
        count = len({step.t for step in self.steps})
        if len(numbers) != count:
            raise ValueError(f"renumber_steps: {len(numbers)} numbers for the {count} time steps of the graph")
        for step in self.steps:
            step.t = numbers[step.t]
        self.step_of = [None if home is None else (home[0], numbers[home[1]]) for home in self.step_of]

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
            buffer = n._data
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
        steps = f", {len(self.steps)} steps" if self.steps else ""
        return (f"Graph({len(self.nodes)} nodes, {len(self.edges)} edges, {len(self.leaves)} leaves, "
                f"{len(self.parameters)} parameters, {len(self.loop_edges)} loop edges{steps})")
