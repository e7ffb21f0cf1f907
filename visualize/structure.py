"""What a picture needs to know about a Graph's shape in time, read from scope paths alone.

Scope conventions (set by whoever builds the graph, e.g. rnn_models): a scope component ``t=<k>`` marks
time step ``k``; the components before it are the step's *prefix* (``"lstm/l1_reverse"``: model kind,
layer and direction), the ones after it are nested sub-scopes such as gates (``"forget_gate"``).

Each node gets a *home*: ``(prefix, t)`` for a node inside a step scope, or for an outer node *attached*
to one step (an output head computed only from step ``t``'s nodes, or an input slice used only by step
``t``); ``None`` for everything else. An outer node read in two or more time steps is *shared*
(parameters, the input sequence ``x``): the renderer draws it once and gives each step a small
reference to it, because one node with an edge into every step makes ``dot``'s layout cost explode.

Every node also gets a *stable id* like ``"lstm/l0/forget_gate/sigmoid_0@3"``: prefix / sub-scope / op
name or tensor name and its ordinal within that step, counted from the step's end / ``@t``. It depends
only on scopes, names, op names and topological order, never on ``id()``, so the same program draws
the same ids, and the folded picture of a cell (scope ``"lstm/l0/forget_gate"`` ->
``"lstm/l0/forget_gate/sigmoid_0"``) can link to the same op of the unrolled one.
"""
import math
import re

STEP_COMPONENT = re.compile(r"t=(\d+)$")
LAYER_COMPONENT = re.compile(r"l\d+(_reverse)?$")
_UNSAFE_ID_CHARS = re.compile(r"[^\w./=@:+\-\[\]]")


def split_scope(scope):
    """``"lstm/l1/t=3/forget_gate"`` -> ``("lstm/l1", 3, "forget_gate")``;
    no step component -> ``(scope, None, "")``."""
    parts = (scope or "").split("/") if scope else []
    for i, part in enumerate(parts):
        match = STEP_COMPONENT.match(part)
        if match:
            return "/".join(parts[:i]), int(match.group(1)), "/".join(parts[i + 1:])
    return scope or "", None, ""


def split_folded(scope):
    """Scope splitter for a folded graph, whose one "step" per layer has no ``t=`` component: the
    prefix runs to the layer component (``"lstm/l1/forget_gate"`` -> ``("lstm/l1", 0, "forget_gate")``),
    or is the top component when there is none (``"cell/forget_gate"`` -> ``("cell", 0, ...)``)."""
    if not scope:
        return "", None, ""
    parts = scope.split("/")
    cut = next((i + 1 for i, part in enumerate(parts) if LAYER_COMPONENT.match(part)), 1)
    return "/".join(parts[:cut]), 0, "/".join(parts[cut:])


def safe_id(text):
    """``text`` with every character outside ``[\\w./=@:+-[]]`` replaced by ``_`` (an SVG/DOT-safe id)."""
    return _UNSAFE_ID_CHARS.sub("_", text)


def node_label_name(node):
    """The short name a node goes by: its tensor name, else its op name, else ``"leaf"``."""
    if node.name:
        return str(node.name)
    return node.op.name if node.op is not None else "leaf"


class StepIndex:
    """Time structure of a Graph (see the module docstring).

    Attributes:
        graph: the Graph.
        home: list, per node position, of ``(prefix, t)`` or None.
        attached: ``{position: "in" | "out"}`` for outer nodes homed through a neighbour: "in" feeds
            only that step (an input slice), "out" is computed only from that step (an output head).
        shared: sorted positions of outer nodes read in two or more time steps.
        consumers: per position, the list of ``(dst, argnum)`` that read it.
        steps: sorted distinct time steps; prefixes: step prefixes in order of first appearance.
        stable_ids: per position, the stable id (unique within the graph).
        local_ids: per position, the stable id relative to the step prefix and without ``@t`` for
            nodes inside a step scope (``"forget_gate/sigmoid_0"``), else None.

    ``split`` reads a scope path into ``(prefix, t, local)``; ``split_scope`` by default, ``split_folded``
    for a folded graph (its top scope component is the one "step").
    """

    def __init__(self, graph, split=split_scope, timed=True):
        self.graph, self.timed = graph, timed
        nodes = graph.nodes
        self.consumers = [[] for _ in nodes]
        for src, dst, argnum in graph.edges:
            self.consumers[src].append((dst, argnum))
        self.home, self.local = [], []
        for node in nodes:
            prefix, t, local = split(node.scope)
            self.home.append(None if t is None else (prefix, t))
            self.local.append(local)
        self.attached = {}  # position -> "in" (feeds one step) or "out" (computed from one step)
        if any(h is not None for h in self.home):
            self._attach()
        self.shared = [i for i in range(len(nodes))
                       if self.home[i] is None and len(self.consumer_steps(i)) >= 2]
        self.steps = sorted({h[1] for h in self.home if h is not None})
        self.prefixes = list(dict.fromkeys(h[0] for h in self.home if h is not None))
        self.stable_ids, self.local_ids = self._stable_ids()

    def _attach(self):
        """Give outer nodes the home of the one time step they belong to (see module docstring).
        Several layers or directions at the same ``t`` count as one step: a node joining them (the
        concat of both directions feeding the next layer) belongs to that ``t``."""
        nodes, home = self.graph.nodes, self.home
        inputs = [[] for _ in nodes]
        for src, dst, _ in self.graph.edges:
            inputs[dst].append(src)
        # outputs: an outer op whose inputs from the steps all come from one step, and none from an
        # outer op fed by the steps (a running loss total stays outer). Topological order, so a chain
        # of head ops attaches link by link.
        downstream = [False] * len(nodes)
        for i, node in enumerate(nodes):
            if home[i] is not None or node.op is None:
                continue
            homes = [home[s] for s in inputs[i] if home[s] is not None]
            if len({h[1] for h in homes}) == 1 and not any(downstream[s] and home[s] is None
                                                            for s in inputs[i]):
                home[i] = homes[0]
                self.attached[i] = "out"
            downstream[i] = bool(homes) or any(downstream[s] for s in inputs[i])
        # inputs: an outer non-parameter node all of whose readers live in one step. Reverse order, so
        # a chain x -> x[t] -> reshape attaches from the step outwards.
        for i in reversed(range(len(nodes))):
            node = nodes[i]
            if home[i] is None and not downstream[i] and not (node.op is None and node.requires_grad):
                readers = [home[d] for d, _ in self.consumers[i]]
                if readers and None not in readers and len({h[1] for h in readers}) == 1:
                    home[i] = readers[0]
                    self.attached[i] = "in"

    def consumer_homes(self, i):
        return {self.home[d] for d, _ in self.consumers[i] if self.home[d] is not None}

    def consumer_steps(self, i):
        return {self.home[d][1] for d, _ in self.consumers[i] if self.home[d] is not None}

    def _stable_ids(self):
        """Ordinals count from the end of each step (reverse topological order): a step's outputs
        are the same ops in the folded and the unrolled graph, while its first ops may differ (an
        unrolled layer computes the input projection for all steps at once, outside the steps)."""
        nodes, counts = self.graph.nodes, {}
        ids, local_ids = [None] * len(nodes), [None] * len(nodes)
        for i in reversed(range(len(nodes))):
            node, h = nodes[i], self.home[i]
            in_step = h is not None and i not in self.attached
            base = self.local[i] if in_step else node.scope or ""
            suffix = "" if h is None or not self.timed else f"@{h[1]}"
            key = (h[0] if in_step else None, base, node_label_name(node), suffix)
            n = counts.get(key, 0)
            counts[key] = n + 1
            local = "/".join(p for p in (base, f"{key[2]}_{n}") if p)
            ids[i] = safe_id("/".join(p for p in (h[0] if in_step else "", local) if p) + suffix)
            local_ids[i] = safe_id(local) if in_step else None
        seen = set()
        for i, stem in enumerate(ids):   # two names that differ only in unsafe characters
            candidate, extra = stem, 1
            while candidate in seen:
                candidate, extra = f"{stem}~{extra}", extra + 1
            seen.add(candidate)
            ids[i] = candidate
        return ids, local_ids

    def step_positions(self):
        """``{(prefix, t): [positions]}`` in topological order, homes in order of first appearance."""
        groups = {}
        for i, h in enumerate(self.home):
            if h is not None:
                groups.setdefault(h, []).append(i)
        return groups


def parse_steps(spec, steps):
    """Which time steps to draw: ``spec`` applied to the sorted list ``steps`` (positions, not values).

    ``None``: all. An int ``n``: ``n`` steps in all, the first ``ceil(n/2)`` and the last ``floor(n/2)``.
    A string of comma-separated Python slices or indices over the step list: ``"0:3,-2:"`` keeps the
    first three and the last two, ``"5"`` keeps the sixth. Returns the kept step values, sorted.
    """
    n_steps = len(steps)
    if spec is None:
        return list(steps)
    if isinstance(spec, bool) or not isinstance(spec, (int, str)):
        raise TypeError(f"steps: expected None, an int window or a slice string like '0:3,-2:', "
                        f"got {type(spec).__name__}")
    if isinstance(spec, int):
        if spec < 1:
            raise ValueError(f"steps: a window must keep at least 1 step, got {spec}")
        head, tail = math.ceil(spec / 2), spec // 2
        keep = set(range(min(head, n_steps))) | set(range(max(n_steps - tail, 0), n_steps))
    else:
        keep = set()
        for part in spec.split(","):
            keep |= _positions(part.strip(), n_steps, spec)
    if not keep:
        raise ValueError(f"steps={spec!r} keeps none of the {n_steps} time steps")
    return [steps[i] for i in sorted(keep)]


def _positions(part, n_steps, spec):
    bad = ValueError(f"steps: cannot read {part!r} in {spec!r}; write Python slices or indices "
                     f"separated by commas, e.g. '0:3,-2:' (first three and last two steps)")
    try:
        bounds = [int(b) if b.strip() else None for b in part.split(":")]
    except ValueError:
        raise bad from None
    if len(bounds) == 1 and bounds[0] is not None:
        i = bounds[0]
        if not -n_steps <= i < n_steps:
            raise ValueError(f"steps: index {i} in {spec!r} is out of range for {n_steps} time steps")
        return {i % n_steps}
    if not 2 <= len(bounds) <= 3 or (len(bounds) == 3 and bounds[2] == 0):
        raise bad
    return set(range(n_steps)[slice(*bounds)])


def gaps(kept, steps):
    """Runs of consecutive dropped steps: list of ``(first, last)`` step values, in order."""
    kept, runs, current = set(kept), [], []
    for t in steps:
        if t in kept:
            if current:
                runs.append((current[0], current[-1]))
            current = []
        else:
            current.append(t)
    if current:
        runs.append((current[0], current[-1]))
    return runs
