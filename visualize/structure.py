"""What a picture needs to know about a Graph's shape in time, read from what the Graph recorded.

Whoever unrolls a recurrence (``rnn_models.Recurrent``, or any code using ``tg.graph.Loop`` with
``tg.modes.in_step``) records in the Graph which nodes form which time step of which loop
(``Graph.loops``, ``Graph.step_of``, ``Graph.steps``) and which edges carry the state into the next
step (``Graph.state_edges``). A folded graph (``Recurrent.folded()``) records its one traced step per
layer/direction the same way, beside its ``loop_edges``. Nothing here reads a time step, a layer or a
direction out of a name or a scope string: a graph that recorded no steps has none, whatever its
scopes are called.

Each node gets a *home*: ``(loop name, t)`` for a node created in step ``t`` of a loop (``Loop.name``
is the label its unroll gave it; rnn_models uses the scope path it ran in, ``"lstm/l1_reverse"``), or
for an outer node *attached* to one step (an output head computed only from step ``t``'s nodes, or an
input slice used only by step ``t``: read off the edges); ``None`` for everything else. An outer node
read in two or more time steps is *shared* (parameters, the input sequence ``x``): the renderer draws
it once and gives each step a small reference to it, because one node with an edge into every step
makes ``dot``'s layout cost explode. A node's place *within* its step (a gate's sub-scope such as
``"forget_gate"``) is its scope relative to the scope path the step recorded (``StepRecord.scope``).

Every node also gets a *stable id* like ``"lstm/l0/forget_gate/sigmoid_0@3"``: loop name / place in
the step / op name or tensor name and its ordinal within that step, counted from the step's end /
``@t``. It depends only on the recorded steps, scopes, names, op names and topological order, never on
``id()``, so the same program draws the same ids, and the folded picture of a cell (loop
``"lstm/l0"``, a node in ``"forget_gate"`` -> ``"lstm/l0/forget_gate/sigmoid_0"``) can link to the
same op of the unrolled one.
"""
import math
import re
import zlib

_UNSAFE_ID_CHARS = re.compile(r"[^\w./=@:+\-\[\]]")
ID_CHARS = 200   # a longer id is cut and ends in a hash of the whole, so distinct ids stay distinct


def within(scope, base):
    """``scope`` as a path relative to the recorded path ``base``: ``""`` when they are equal, the rest
    when ``scope`` lies under ``base`` (``"lstm/t=3/forget_gate"`` in ``"lstm/t=3"`` ->
    ``"forget_gate"``), else ``scope`` itself (a step that recorded no scope, or a node created
    outside the scope its step recorded)."""
    scope = scope or ""
    if scope == base:
        return ""
    if base and scope.startswith(base + "/"):
        return scope[len(base) + 1:]
    return scope


def common_path(paths):
    """The longest scope path every one of ``paths`` lies in or under (``""`` if none)."""
    parts = [p.split("/") if p else [] for p in paths]
    common = []
    for column in zip(*parts):
        if len(set(column)) > 1:
            break
        common.append(column[0])
    return "/".join(common)


def safe_id(text, limit=ID_CHARS):
    """``text`` with every character outside ``[\\w./=@:+-[]]`` replaced by ``_`` (an SVG/DOT-safe id),
    at most ``limit`` characters: a longer one keeps its start and ends in ``-`` and the CRC-32 of
    the whole text (deterministic, and two long ids differing anywhere stay apart)."""
    safe = _UNSAFE_ID_CHARS.sub("_", text)
    if len(safe) <= limit:
        return safe
    digest = zlib.crc32(text.encode("utf-8", "surrogatepass"))
    return f"{safe[:limit - 9]}-{digest:08x}"


def node_label_name(node):
    """The short name a node goes by: its tensor name, else its op name, else ``"leaf"``."""
    if node.name:
        return str(node.name)
    return node.op.name if node.op is not None else "leaf"


class StepIndex:
    """Time structure of a Graph (see the module docstring).

    Attributes:
        graph: the Graph.
        folded: whether the graph is folded (it has ``loop_edges``): its recorded steps are the one
            traced step of each loop, so stable ids carry no ``@t``, and no outer node is attached to
            a step (with a single step there is no time step to choose for it).
        home: list, per node position, of ``(loop name, t)`` or None.
        local: per position, the node's place within its step (a scope path relative to the step's
            recorded scope; ``""`` for nodes outside the steps).
        attached: ``{position: "in" | "out"}`` for outer nodes homed through a neighbour: "in" feeds
            only that step (an input slice), "out" is computed only from that step (an output head).
        shared: sorted positions of outer nodes read in two or more time steps.
        consumers: per position, the list of ``(dst, argnum)`` that read it.
        steps: sorted distinct time steps; prefixes: loop names in order of first appearance.
        stable_ids: per position, the stable id (unique within the graph).
        local_ids: per position, the stable id relative to the loop name and without ``@t`` for
            nodes inside a step (``"forget_gate/sigmoid_0"``), else None.

    ``read_steps=False`` ignores the recorded steps (every node is outer): a folded graph drawn as
    it is.
    """

    def __init__(self, graph, read_steps=True):
        self.graph, self.folded = graph, bool(graph.loop_edges)
        nodes = graph.nodes
        self.consumers = [[] for _ in nodes]
        for src, dst, argnum in graph.edges:
            self.consumers[src].append((dst, argnum))
        self.home, self.local = [None] * len(nodes), [""] * len(nodes)
        for step in graph.steps if read_steps else ():
            name = graph.loops[step.loop].name
            for i in step.nodes:
                self.home[i] = (name, step.t)
                self.local[i] = within(nodes[i].scope, step.scope)
        self.attached = {}  # position -> "in" (feeds one step) or "out" (computed from one step)
        if not self.folded and any(h is not None for h in self.home):
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
        """The set of ``(loop name, t)`` homes of the nodes that read node ``i`` (outer readers left
        out)."""
        return {self.home[d] for d, _ in self.consumers[i] if self.home[d] is not None}

    def consumer_steps(self, i):
        """The set of time steps ``t`` whose nodes read node ``i``."""
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
            suffix = "" if h is None or self.folded else f"@{h[1]}"
            key = (h[0] if in_step else None, base, node_label_name(node), suffix)
            n = counts.get(key, 0)
            counts[key] = n + 1
            local = "/".join(p for p in (base, f"{key[2]}_{n}") if p)
            # the suffix is kept whole, so a folded node's id + "@t" is the id of its op at step t
            ids[i] = safe_id("/".join(p for p in (h[0] if in_step else "", local) if p)) + suffix
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
        """``{(loop name, t): [positions]}`` in topological order, homes in order of first appearance."""
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


def fit_window(kept, cost, budget):
    """The steps of ``kept`` (time steps in order) to draw within ``budget`` nodes when step ``t``
    costs ``cost(t)``: for the largest ``n`` that fits, the first ``ceil(n/2)`` and the last
    ``floor(n/2)`` of them (as an int ``steps=`` window), and at least the first step."""
    head, tail, total = 1, 0, cost(kept[0]) if kept else 0
    while head + tail < len(kept):
        t = kept[head] if head == tail else kept[len(kept) - tail - 1]   # n + 1 odd: one more first
        if total + cost(t) > budget:
            break
        total += cost(t)
        head, tail = (head + 1, tail) if head == tail else (head, tail + 1)
    return list(kept[:head]) + list(kept[len(kept) - tail:])


def gaps(kept, steps):
    """Runs of consecutive time steps not drawn: a list of ``(first, last)`` step values, in order.

    A step is not drawn when it is in ``steps`` but not in ``kept``, or when its number lies between
    two of ``steps`` without being one of them: a graph that recorded steps 0, 1, 2 and 998, 999 (an
    unroll of the steps a picture keeps of a longer one) has ``(3, 997)`` elided.
    """
    kept, runs, first, last, previous = set(kept), [], None, None, None
    for t in steps:
        if previous is not None and t > previous + 1:   # numbers the graph holds no step for
            first = previous + 1 if first is None else first
            last = t - 1
        if t in kept:
            if first is not None:
                runs.append((first, last))
            first = None
        else:
            first = t if first is None else first
            last = t
        previous = t
    if first is not None:
        runs.append((first, last))
    return runs
