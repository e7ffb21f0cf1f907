"""Graph -> ``graphviz.Digraph``: the folded cell, the unrolled time steps, and gradients painted on both.

Legend (what the pictures mean)::

    grey rounded box     an op (``tanh``, ``matmul``...); its tensor name in bold when it has one
    blue ellipse         a parameter (leaf that requires grad); white ellipse: an input or constant
    double border        a state output (``h``, ``c``): it feeds the next time step
    dashed blue ellipse  a per-step *reference* to a shared node (a parameter or the input sequence)
                         drawn once elsewhere; ``dot`` lays out T references in linear time, but one
                         node with an edge into every step costs it minutes at T=200
    yellow box           a collapsed cell (level="cell") or layer (level="layer") for one time step
    "…" text             elided time steps (``steps=``, or numbers between the steps a graph
                         recorded) or nodes (graph over ``max_nodes``)
    thin arrow           data: argument of an op (inputs below, outputs above)
    bold blue arrow      a state edge h_{t-1} -> step t, across time-step clusters
    dashed arrow "z⁻¹"   the folded view's delay edge: state output back to the state input
    colours (grads=True) log10‖∂L/∂·‖ from blue (small) to red (large), whole decades, same scale
                         for nodes and edges; pen width grows with it; grey = exactly zero, white
                         = no gradient kept. A node's colour is its gradient; an edge's is the part
                         of its source's gradient that flows back along it; a reference's is that
                         step's term of the shared node's gradient (Σ over steps = the whole).

Layout (unrolled view, the textbook figure): time runs left to right, one cluster per drawn step in
time order (a hidden timeline at the bottom, and few crossing-minimisation passes, ``mclimit``, keep
it); each state (``h``; ``c``) of each loop is drawn on one horizontal line (``rank=same``) with its
initial state (``h0``) as a node of its own in the first step's cluster; at the cell and layer levels
the box sits below the states it makes, so x_t -> [cell] -> h_t, and h_t -> the next box; a stacked
layer's box reads the output of the layer below at the same step; what no step made (the stack of
outputs, a head, the loss) is drawn outside every step, above. A picture wider than ``max_width``
(estimated by ``step_widths``) draws its first and last steps around a "…".

Names, scopes, titles and links are written safely whatever they hold (``visualize.labels``):
control characters and lone surrogates as ``\\xNN``/``\\uXXXX`` text, lines cut to 200 characters
with the whole text in the node's tooltip, scopes nested more than 100 deep drawn in one box.

Node names in the DOT text are ``n<position in topological order>`` (refs ``r…``, boxes ``g…``, a
step's inputs ``in<t>``, elisions ``e<first t>``), so the same program gives byte-identical DOT; in the
SVG each node is ``<g id=... class="node <kind> [grad<k>]">`` with its DOT name as ``<title>``. The
``id`` is stable: a real node's is its stable id (``rnn/l0/tanh_0@3``, ``rnn/l0/h0_0@0`` for an
initial state, see ``structure``), a box's ``cell@3`` or ``rnn/l1@3`` (level="layer"), a step's
inputs ``in@3``, a reference ``<shared id>><step path>``; step clusters are ``class="cluster step"``
labelled ``t=3``, edges ``class="edge <data|state|loop|elided> [grad<k>]"``.
"""
import html

import graphviz
import numpy as np

import tinygraph as tg

from . import grads as G
from .labels import altered, label_text, tooltip_text, url_text
from .structure import StepIndex, common_path, fit_window, gaps, node_label_name, parse_steps, safe_id

VIEWS = ("unrolled", "folded")
"""``to_dot``'s views: the unrolled time steps, or the folded cell with its delay edges."""
LEVELS = ("op", "cell", "layer")
"""``to_dot``'s levels of detail in the unrolled view: every op, one box per cell and step, or one box
per layer and step."""
DEFAULT_MAX_NODES = 2500
"""``to_dot``'s default ``max_nodes``: above it the middle steps (or the farthest nodes) are elided."""
# Widest picture drawn whole, in points: past it the middle steps are elided (a 100,000 pt SVG is more
# than any rasteriser opens, and dot's spline router fails along very long rows).
DEFAULT_MAX_WIDTH = 20_000
"""``to_dot``'s default ``max_width`` in points: a wider picture draws its first and last steps around
a "…"."""
MAX_DEPTH = 100   # clusters nested deeper are drawn in one box (dot's parser stops near 2500 levels)

FILL = {"op": "#eeeeee", "param": "#cfe2f3", "leaf": "#ffffff", "group": "#fff2cc", "io": "#ffffff"}
STATE_EDGE = "#1f4e79"
LOOP_EDGE = "#c00000"
DEFAULT_EDGE = "#555555"
FONT = "Helvetica"


def to_dot(graph, view="unrolled", level="op", steps=None, grads=False, values=False, *,
           max_nodes=DEFAULT_MAX_NODES, link=None, legend=True, title=None, max_width=DEFAULT_MAX_WIDTH):
    """Draw a Graph (or the Graph of a Tensor / list of Tensors) as a ``graphviz.Digraph``.

    Args:
        graph: ``tg.Graph``, Tensor or list of Tensors.
        view: ``"unrolled"``: one cluster per time step ``t=k`` the graph recorded (``Graph.steps``),
            its state edges across them; a folded graph is drawn as it is, with its loop edges.
            ``"folded"``: one step drawn once with a dashed ``z⁻¹`` delay edge from each state output
            back to its state input — the graph's ``loop_edges`` if it has them (``Recurrent.folded()``),
            else read off an unrolled graph (its second step, with a delay edge for each recorded
            state edge into it).
        level: ``"op"`` every primitive; ``"cell"`` one box per time step (all layers);
            ``"layer"`` one box per layer per time step.
        steps: which time steps to draw, the rest behind a "…" node: an int window (``5`` = first 3 and
            last 2) or slices over the step list (``"0:3,-2:"``). Default: all that fit ``max_nodes``.
            A graph that recorded only some steps of a longer run (0, 1, 2 and 998, 999) has the
            numbers between them drawn elided too, its state edges passing through the "…".
        grads: paint ``log10‖∂L/∂·‖`` on every node, parameters included: the ``.grad`` the ops kept
            (``visualize.retain_all`` before ``backward``), else computed here from the graph of
            its scalar output (``visualize.grads.gradients``); ValueError when neither is possible.
        values: add shapes and value summaries to the labels ("released" for a value no gradient
            rule reads, which the engine freed; see ``tinygraph.release``).
        max_nodes: above this many drawn nodes the middle steps (or the nodes farthest from the
            outputs) are elided, with a note in the picture, instead of making ``dot`` hang.
        max_width: points; when the drawn steps' estimated width (``step_widths``) is over it, the
            middle steps are elided the same way, with a note: time runs left to right in one row.
        link: folded view only: where each node links to. A template with ``{id}`` (its stable id,
            ``"rnn/l0/h_0"``) and ``{local}`` (the id inside its step, ``"h_0"``), e.g.
            ``"rnn_unrolled.svg#{id}@0"``; or a function ``(id, local) -> URL or None`` such as
            ``visualize.link_to(unrolled_graph, "rnn_unrolled.svg")``.
        legend: draw the legend box. title: a caption.

    Returns a ``graphviz.Digraph``; ``.source`` is the DOT text, ``visualize.render`` makes an SVG.
    See the module docstring for the colour legend.
    """
    if view not in VIEWS:
        raise ValueError(f"to_dot: view must be one of {VIEWS}, got {view!r}")
    if level not in LEVELS:
        raise ValueError(f"to_dot: level must be one of {LEVELS}, got {level!r}")
    if isinstance(max_width, bool) or not isinstance(max_width, (int, float)) or not max_width >= 1000:
        raise ValueError(f"to_dot: max_width must be a number of points >= 1000, got {max_width!r}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 10:
        raise ValueError(f"to_dot: max_nodes must be an int >= 10, got {max_nodes!r}")
    graph = G.as_graph(graph)
    drawing = _Drawing(graph, view, level, grads, values, link)
    drawing.max_width = max_width
    if view == "folded":
        drawing.fold()
    else:
        drawing.unroll(steps, max_nodes)
    return drawing.emit(legend, title)


def link_to(unrolled, url, t=0):
    """A ``link=`` function for the folded view: each node of the folded cell links to the same op at
    step ``t`` of ``unrolled`` (a Graph drawn into ``url``), if that step has it."""
    targets = set(StepIndex(G.as_graph(unrolled)).stable_ids)

    def link(stable_id, local):
        target = f"{stable_id}@{t}"
        return f"{url}#{target}" if target in targets else None
    return link


def h(text):
    """Escape user text for an HTML-like label: XML entities, and backslashes doubled because dot
    still expands ``\\N`` (node name), ``\\G``... inside HTML labels, even written as ``&#92;``."""
    return html.escape(str(text), quote=True).replace("\\", "\\\\")


def _short_attrs(op, limit=24):
    parts = []
    for key, value in op.attrs().items():
        if value is None or value is False:
            continue   # unset options say nothing
        text = f"{key}={value!r}" if not isinstance(value, np.ndarray) else f"{key}=array{value.shape}"
        if len(text) <= limit:
            parts.append(text)
    return ", ".join(parts)


def _summary(array):
    if isinstance(array, tg.Released):
        return "released"
    array = np.asarray(array)
    if array.size == 0:
        return "empty"
    if array.size <= 3:
        return np.array2string(array.ravel(), precision=3, separator=", ")
    a = array.astype(np.float64)
    return f"μ={a.mean():.3g} σ={a.std():.3g} [{a.min():.3g}, {a.max():.3g}]"


class _Step(tuple):
    """Time step ``t``'s cluster as a component of a cluster path (``(_Step(3), "lstm/l0")``). It is
    no string, so it never equals a scope's name: a scope called "t=3" stays a scope cluster."""
    __slots__ = ()

    def __new__(cls, t):
        return tuple.__new__(cls, (t,))

    def __str__(self):
        return f"t={self[0]}"


class _Node:
    """A node to draw. ``label``: ``(title, small lines, bold)`` as user text (made safe when it is
    written), or None for no text."""
    __slots__ = ("name", "kind", "label", "pos", "flow", "attrs")

    def __init__(self, name, kind, label, pos=None, attrs=None):
        self.name, self.kind, self.label, self.pos = name, kind, label, pos
        self.flow = {}            # refs and inputs: {source position: gradient flowing out of it}
        self.attrs = attrs or {}


class _Edge:
    __slots__ = ("kind", "flows", "label")

    def __init__(self, kind, label=None):
        self.kind, self.flows, self.label = kind, {}, label


class _Drawing:
    """Collects nodes (in nested clusters) and edges, then writes them as DOT in a fixed order."""

    def __init__(self, graph, view, level, grads, values, link):
        self.graph, self.view, self.level, self.values, self.link = graph, view, level, values, link
        self.nodes = {}            # DOT name -> _Node
        self.items = {(): []}      # cluster path -> ordered child items: ("node", name) | ("cluster", path)
        self.cluster_labels = {}   # path -> label text
        self.edges = {}            # (src name, dst name, kind) -> _Edge, in insertion order
        self.notes = []
        self.grads = grads
        self.norms, self.flows = G.gradients(graph) if grads else (None, {})
        nodes = graph.nodes
        self.loop_src = {s for s, _ in graph.loop_edges}
        self.loop_dst = {d for _, d in graph.loop_edges}
        self.is_param = [n.op is None and n.requires_grad and i not in self.loop_dst
                         for i, n in enumerate(nodes)]
        self.rep = [None] * len(nodes)   # DOT name drawing each position (None: hidden or per edge)

    # --- building blocks --------------------------------------------------------------------------
    def cluster(self, path, label):
        """The cluster at ``path`` (a tuple of components), made with its missing ancestors (each
        titled by its last component) if it is new."""
        path = self._capped(path)
        missing, p = [], path
        while p not in self.items:   # () always is
            missing.append(p)
            p = p[:-1]
        for p in reversed(missing):
            self.items[p] = []
            self.items[p[:-1]].append(("cluster", p))
            self.cluster_labels[p] = label if p == path else str(p[-1])
        return path

    def _capped(self, path):
        """``path`` with the components below depth ``MAX_DEPTH`` joined into the last one."""
        if len(path) <= MAX_DEPTH:
            return path
        note = f"scopes nested deeper than {MAX_DEPTH} levels are drawn in their level-{MAX_DEPTH} box"
        if note not in self.notes:
            self.notes.append(note)
        return path[:MAX_DEPTH - 1] + ("/".join(map(str, path[MAX_DEPTH - 1:])),)

    def add_node(self, path, node):
        if node.name not in self.nodes:
            path = self._capped(path)
            if path not in self.items:
                self.cluster(path, str(path[-1]))
            self.nodes[node.name] = node
            self.items[path].append(("node", node.name))
        return node.name

    def add_edge(self, src, dst, kind, flow_key=None, label=None):
        """An edge between DOT nodes; ``flow_key`` = the graph edge it draws (for painting)."""
        if src is None or dst is None or src == dst:
            return
        edge = self.edges.get((src, dst, kind))
        if edge is None:
            edge = self.edges[(src, dst, kind)] = _Edge(kind, label)
        flow = self.flows.get(flow_key) if flow_key else None
        if flow is not None:
            prev = edge.flows.get(flow_key[0])
            edge.flows[flow_key[0]] = flow if prev is None else prev + flow

    def real_node(self, pos, path):
        """The node drawing graph position ``pos`` itself."""
        node = self.graph.nodes[pos]
        if node.op is not None:
            kind = "op"
        elif self.is_param[pos]:
            kind = "param"
        else:
            kind = "leaf"
        attrs = {"id": self.index.stable_ids[pos]}
        if self.link and self.index.local_ids[pos]:
            sid, local = self.index.stable_ids[pos], self.index.local_ids[pos]
            url = self.link(sid, local) if callable(self.link) else self.link.format(id=sid, local=local)
            if url:
                attrs["URL"] = graphviz.escape(url_text(url))
        if pos in self.state_outputs:
            attrs["peripheries"] = "2"
        return self.add_node(path, _Node(f"n{pos}", kind, self.node_label(pos), pos, attrs))

    def node_label(self, pos):
        node = self.graph.nodes[pos]
        if node.name:
            title = node.name
        elif node.op is not None:
            title = node.op.name
        elif node.size == 1:
            title = f"{node.data.item():.4g}"
        else:
            title = "const" if not node.requires_grad else "leaf"
        small = []
        if node.op is not None:
            attrs = _short_attrs(node.op)
            op_text = f"{node.op.name}({attrs})" if attrs else node.op.name
            if (node.name and self.level == "op") or (attrs and not node.name):
                small.append(op_text)
        home = self.index.home[pos]
        if self.level == "cell" and self.layered and home and pos not in self.index.attached:
            small.insert(0, home[0])   # which layer's state, once the layers share one box
        if self.values or (node.op is None and node.size > 1):
            small.append(f"{node.shape}" + (f" {node.dtype}" if node.dtype != np.float64 else ""))
        if self.values:
            small.append(_summary(node.data))
        if self.grads and self.norms[pos] is not None:
            small.append(f"‖∂L/∂·‖={G.format_norm(self.norms[pos])}")
        return title, small, True

    # --- the unrolled view ------------------------------------------------------------------------
    def unroll(self, steps, max_nodes):
        # a folded graph has no time steps to lay out: it is drawn as it is, with its loop edges
        self.index = idx = StepIndex(self.graph, read_steps=not self.graph.loop_edges)
        self.state_edges = set(self.graph.state_edges)
        self.state_outputs = self._cross_step_sources()
        kept = parse_steps(steps, idx.steps) if idx.steps else []
        if idx.steps:
            kept = self._fit(kept, max_nodes)
        self.kept = set(kept)
        self.elision = {}
        self.runs = gaps(kept, idx.steps)   # also the numbers between recorded steps: not in the graph
        for first, last in self.runs:
            for t in idx.steps:
                if first <= t <= last:
                    self.elision[t] = f"e{first}"
        ends = dict(self.runs)
        self.timeline = []
        self.initial = self._initial_states()
        for t in sorted(self.kept | set(ends)):   # clusters and "…" nodes left to right in time order
            if t in self.kept:
                self.cluster((_Step(t),), str(_Step(t)))
                self.timeline.append(self.add_node((_Step(t),), _Node(f"a{t}", "anchor", None)))
            else:
                self.timeline.append(self.add_node((), _Node(f"e{t}", "elision",
                                                           _elision_label(t, ends[t]))))
        self.multi_prefix = len(idx.prefixes) > 1
        self.place_and_connect(lambda pos: True)
        for s, d in self.graph.loop_edges:   # a folded graph drawn as it is
            self.add_edge(self.rep[s], self.rep[d], "loop", label="z⁻¹")
        if not idx.steps and len(self.nodes) > max_nodes:
            self._elide_far_nodes(max_nodes)

    def _initial_states(self):
        """``{position: (loop name, state index)}`` of the initial states: what a recorded step read as
        its state without any step having made it (``h0``, ``c0``). Each is drawn as its own node,
        in the cluster of the step that reads it, on the line of the states it starts."""
        graph, initial = self.graph, {}
        for step in graph.steps:
            for k, pos in enumerate(step.state_in):
                if pos is not None and graph.step_of[pos] is None and pos not in initial \
                        and not self.is_param[pos]:
                    initial[pos] = (graph.loops[step.loop].name, k)
        return initial

    def home_path(self, home):
        prefix, t = home
        if self.view == "folded":
            return (prefix,) if prefix and self.level == "op" else ()
        return (_Step(t), prefix) if self.multi_prefix and self.level == "op" else (_Step(t),)

    def _cross_step_sources(self):
        """Nodes drawn with a double border: the sources of the recorded state edges."""
        return set(self.loop_src) | {s for s, _, _ in self.state_edges}

    def _fit(self, kept, max_nodes):
        """Narrow ``kept`` to a window that fits ``max_nodes`` (with a note), if it does not."""
        outer, per_step = _step_costs(self.index, self.level)
        cost = outer + sum(per_step[t] for t in kept)
        if cost > max_nodes:
            window = fit_window(kept, per_step.__getitem__, max_nodes - outer)
            self.notes.append(f"{cost} nodes is over max_nodes={max_nodes}: drawing {len(window)} of "
                              f"{len(kept)} time steps; pass steps=... or max_nodes=... to choose")
            kept = window
        widths = _step_widths(self.index, self.level)
        width = sum(widths[t] for t in kept)
        if width > self.max_width:
            window = fit_window(kept, widths.__getitem__, self.max_width - WIDTH_RESERVE)
            self.notes.append(f"~{width:.0f} pt wide is over max_width={self.max_width:g}: drawing "
                              f"{len(window)} of {len(kept)} time steps; pass steps=... to choose")
            kept = window
        return kept

    def _elide_far_nodes(self, max_nodes):
        """A graph with no time steps and too many nodes: keep those nearest the outputs."""
        graph = self.graph
        readers = [[] for _ in graph.nodes]
        for s, d, _ in graph.edges:
            readers[d].append(s)
        frontier = list(graph.outputs) or [len(graph.nodes) - 1]
        near = dict.fromkeys(frontier)
        while frontier and len(near) < max_nodes - 1:
            frontier = [s for d in frontier for s in readers[d] if s not in near]
            for s in frontier:
                if len(near) < max_nodes - 1:
                    near.setdefault(s)
        far = [f"n{i}" for i in range(len(graph.nodes)) if i not in near]
        if not far:
            return
        self.notes.append(f"{len(graph.nodes)} nodes is over max_nodes={max_nodes}: the {len(far)} "
                          f"farthest from the outputs are elided")
        gone = set(far)
        for name in far:
            self.nodes.pop(name, None)
        for path, items in self.items.items():
            self.items[path] = [it for it in items if not (it[0] == "node" and it[1] in gone)]
        self.add_node((), _Node("e_far", "elision", ("…", [f"{len(far)} nodes elided"], True)))
        edges, self.edges = self.edges, {}
        for (src, dst, kind), edge in edges.items():
            src, dst = ("e_far" if src in gone else src), ("e_far" if dst in gone else dst)
            if src != dst and (src, dst, kind) not in self.edges:
                self.edges[(src, dst, kind)] = edge

    # --- the folded view --------------------------------------------------------------------------
    def fold(self):
        graph = self.graph
        self.index = StepIndex(graph)
        self.state_edges = set()
        if graph.loop_edges:
            self.loops = list(graph.loop_edges)
            drawn = range(len(graph.nodes))
        else:
            drawn, self.loops = self._representative_step()
        self.loop_src = {s for s, _ in self.loops}
        self.state_outputs = self.loop_src
        self.kept, self.elision, self.multi_prefix, self.timeline, self.runs = None, {}, False, [], []
        self.initial = {}
        drawn = set(drawn)
        self.place_and_connect(lambda pos: pos in drawn)
        for s, d in self.loops:
            self.add_edge(self.rep[s], self.rep[d], "loop", label="z⁻¹")

    def _representative_step(self):
        """An unrolled graph's folded picture: per loop, its second step (whose state comes from a
        neighbouring step: the first, or the third in a reverse direction), the outer nodes feeding
        it, and for every recorded state edge into it a loop edge from the matching state output of
        the same step (the state it produces in the place of the state it reads)."""
        idx, graph = self.index, self.graph
        if not idx.steps:
            raise ValueError("to_dot(view='folded'): this graph has no loop_edges and recorded no time "
                             "steps (Graph.steps); build it with Recurrent(cell).folded(), or unroll it "
                             "with rnn_models.Recurrent (or record a tinygraph.graph.Loop)")
        rep_t = {}
        for prefix, t in idx.step_positions():
            rep_t.setdefault(prefix, []).append(t)
        rep_t = {p: (ts[1] if len(ts) > 1 else ts[0]) for p, ts in rep_t.items()}
        drawn = {i for i, home in enumerate(idx.home) if home is not None and rep_t[home[0]] == home[1]}
        inputs = [[] for _ in idx.home]
        for s, d, _ in graph.edges:
            inputs[d].append(s)
        frontier = list(drawn)
        while frontier:   # outer ancestors: parameters, the input sequence, their transposes...
            frontier = [s for d in frontier for s in inputs[d] if idx.home[s] is None and s not in drawn]
            drawn.update(frontier)
        records = {(step.loop, step.t): step for step in graph.steps}
        loops = []
        for s, d, _ in graph.state_edges:
            if d not in drawn:
                continue
            step = records[graph.step_of[d]]
            for read, made in zip(step.state_in, step.state_out):
                if read == s and made is not None and made in drawn and (made, d) not in loops:
                    loops.append((made, d))
        return sorted(drawn), loops

    # --- placing nodes and edges (both views, all levels) -----------------------------------------
    def place_and_connect(self, is_drawn):
        graph, idx = self.graph, self.index
        collapsed = self.level != "op"
        self.prefix_number = {p: i for i, p in enumerate(idx.prefixes)}
        self.layered = len({h[0] for i, h in enumerate(idx.home)
                            if h is not None and i not in idx.attached and graph.nodes[i].op is not None}) > 1
        self.fed_by = self._fed_by()
        if collapsed:
            self._plan_groups(is_drawn)
        pipe = self._layer_pipes() if collapsed else set()
        feeding = self._feeding_hidden_inputs() if collapsed else set()
        for pos in range(len(graph.nodes)):
            if not is_drawn(pos):
                continue
            home = idx.home[pos]
            if home is not None and self.kept is not None and home[1] not in self.kept:
                self.rep[pos] = self.elision[home[1]]
            elif collapsed and home is None and self.is_param[pos] and self._read_in_steps_only(pos):
                continue   # listed in the boxes that read it
            elif pos in pipe:
                continue   # drawn as the layer edges (``_connect_boxes``)
            elif pos in feeding:
                continue   # part of an input the steps' boxes show as their own (b_ih + b_hh)
            elif pos in idx.shared and (self.view == "unrolled" or collapsed):
                if self.level == "op" or not self._read_in_steps_only(pos):
                    self.rep[pos] = self.real_node(pos, self.outer_path(pos))
            elif collapsed and home is not None:
                self.rep[pos] = self._collapsed_rep(pos)
            elif pos in self.initial:   # h0, c0: in the first step's cluster, on the state lines
                self.rep[pos] = self.real_node(pos, self.home_path(home)[:1])
            elif home is not None and pos not in idx.attached:
                self.rep[pos] = self.real_node(pos, self.home_path(home) + _components(idx.local[pos]))
            elif home is not None and idx.attached[pos] == "in":
                # an input slice read by one step: in its step's cluster, outside the layers' ones
                self.rep[pos] = self.real_node(pos, self.home_path(home)[:1])
            else:
                self.rep[pos] = self.real_node(pos, self.outer_path(pos))
        for s, d, argnum in graph.edges:
            if not (is_drawn(s) and is_drawn(d)):
                continue
            src, dst = self.source_for(s, d), self.rep[d]
            if src is None or dst is None:
                continue
            if "elision" in (self.nodes[src].kind, self.nodes[dst].kind):
                kind = "elided"
            elif (s, d, argnum) in self.state_edges:
                kind = "state"
            else:
                kind = "data"
            if collapsed and src in self.exported_names and self.box_of_name.get(src) == dst:
                continue  # a state output read again inside its own cell (c_t -> tanh(c_t))
            skipped = self._run_between(idx.home[s], idx.home[d])
            if skipped is not None:   # steps the graph has no record of lie between: through the "…"
                self.add_edge(src, f"e{skipped}", "elided", (s, d, argnum))
                self.add_edge(f"e{skipped}", dst, "elided", (s, d, argnum))
                continue
            if collapsed and dst in self.box_of_name and self.box_of_name[dst] != src:
                dst = self.box_of_name[dst]   # what flows into a drawn state flows into its cell
            self.add_edge(src, dst, kind, (s, d, argnum))
            flow = self.flows.get((s, d, argnum))
            source = self.nodes[src]
            if flow is not None and (source.kind.startswith("ref") or source.kind == "io"):
                source.flow[s] = flow + source.flow[s] if s in source.flow else flow
        if collapsed:
            self._connect_boxes()

    def _fed_by(self):
        """Per position, the loop names whose steps' outputs reach this outer node through outer
        nodes only (a stacked layer's input sequence: the stack of the layer below's outputs)."""
        graph, idx = self.graph, self.index
        made = {}
        for step in graph.steps:
            for pos in (step.output,) + tuple(step.state_out):
                if pos is not None:
                    made[pos] = graph.loops[step.loop].name
        fed = [frozenset()] * len(graph.nodes)
        for s, d, _ in graph.edges:
            if graph.step_of[d] is None:
                fed[d] = fed[d] | ({made[s]} if s in made else fed[s] if graph.step_of[s] is None else set())
        return fed

    def _read_in_steps_only(self, pos):
        """Whether every reader of node ``pos`` is inside a time step (an outer input the steps share)."""
        idx = self.index
        return all(idx.home[d] is not None for d, _ in idx.consumers[pos])

    def _feeding_hidden_inputs(self):
        """Collapsed levels: the outer op nodes whose values only go into shared inputs the steps
        read, which these levels draw inside each box (``x@W_ih[t]``) rather than as a node: the
        projection's bias sum ``b_ih + b_hh``. Drawn, they would hang with no edge out."""
        idx = self.index
        hidden = {pos for pos in idx.shared if self._read_in_steps_only(pos)}
        feeding = set()
        for pos in reversed(range(len(self.graph.nodes))):
            readers = idx.consumers[pos]
            if idx.home[pos] is None and self.graph.nodes[pos].op is not None and pos not in hidden \
                    and readers and all(d in hidden or d in feeding for d, _ in readers):
                feeding.add(pos)
        return feeding

    def _layer_pipes(self):
        """Collapsed levels: the outer nodes that only carry one layer's outputs into the layer
        above (the stack of its outputs, the projection the layer above reads it through). They are
        not drawn: each output is drawn going straight into the box of the same step above."""
        idx, pipe = self.index, set()
        for pos in reversed(range(len(self.graph.nodes))):
            if idx.home[pos] is not None or not self.fed_by[pos] or pos in self.initial:
                continue
            readers = idx.consumers[pos]
            if pos in idx.shared and self._read_in_steps_only(pos):
                pipe.add(pos)
            elif readers and all(d in pipe for d, _ in readers):
                pipe.add(pos)
        return pipe

    def _connect_boxes(self):
        """Collapsed levels: a box reading a sequence made of another loop's outputs (the layer
        below) reads that loop's output of the same step, drawn as an edge from it; and every drawn
        state comes out of its box."""
        graph, idx = self.graph, self.index
        outputs = {(graph.loops[step.loop].name, step.t): step.output for step in graph.steps}
        for s in idx.shared:
            for d, _ in idx.consumers[s]:
                home = idx.home[d]
                if not self.fed_by[s] or home is None or d not in self.group_of or \
                        (self.kept is not None and home[1] not in self.kept):
                    continue
                box = self._box(self.group_of[d], home)
                for loop in sorted(self.fed_by[s], key=idx.prefixes.index):
                    out = outputs.get((loop, home[1]))
                    src = self.rep[out] if out is not None else None
                    if src is not None and self.box_of_name.get(src) != box:
                        # painted with what flows back from the layer above into this output: along
                        # its edge into the sequence (the stack) the layer above reads
                        into = next(((out, c, k) for c, k in idx.consumers[out]
                                     if idx.home[c] is None and self.fed_by[c]), None)
                        self.add_edge(src, box, "data", into)
        into = {dst for _, dst, _ in self.edges}
        for name in sorted(self.exported_names, key=lambda n: int(n[1:])):
            if name not in into:
                self.add_edge(self.box_of_name[name], name, "data")

    def _run_between(self, a, b):
        """The first step of an elided run lying strictly between homes ``a`` and ``b``, if any."""
        if a is None or b is None or abs(a[1] - b[1]) < 2 or not self.runs:
            return None
        low, high = sorted((a[1], b[1]))
        return next((first for first, last in self.runs if low < first and last < high), None)

    def outer_path(self, pos):
        scope = self.graph.nodes[pos].scope
        return _components(scope)

    def source_for(self, s, d):
        """The DOT node an edge from ``s`` into ``d`` starts at: a per-step reference for a shared
        node read inside a step (unrolled view), else whatever draws ``s``."""
        idx, home = self.index, self.index.home[d]
        if s not in idx.shared or home is None or (self.view == "folded" and self.level == "op"):
            return self.rep[s]
        if self.kept is not None and home[1] not in self.kept:
            return None
        if self.level != "op":
            return None if self.is_param[s] or self.fed_by[s] else self._io_node("in", home)
        path = self.home_path(home)
        name = f"r{s}_{home[1]}" + (f"_{self.prefix_number[home[0]]}" if len(path) > 1 else "")
        if name not in self.nodes:
            shared = self.graph.nodes[s]
            label = (node_label_name(shared), ["shared"] if self.is_param[s] else [], True)
            where = "/".join(map(str, path))
            attrs = {"URL": "#" + idx.stable_ids[s], "id": safe_id(f"{idx.stable_ids[s]}>{where}")}
            kind = "ref-param" if self.is_param[s] else "ref"
            self.add_node(path, _Node(name, kind, label, s, attrs))
        return name

    # --- collapsed levels: one box per cell (or layer) per step -----------------------------------
    def group_key(self, home):
        return home if self.level == "layer" else ("", home[1])

    def _plan_groups(self, is_drawn):
        """Who goes in which box, and which values stay visible around the boxes: state outputs and
        anything else read outside its box."""
        graph, idx = self.graph, self.index
        self.group_of, self.members = {}, {}
        for pos, home in enumerate(idx.home):
            if home is None or not is_drawn(pos):
                continue
            if pos in self.initial:
                continue   # drawn as itself, on the state line
            if pos in idx.attached:
                self.members.setdefault((idx.attached[pos], home[1]), []).append(pos)
                continue
            node = graph.nodes[pos]
            if node.op is None and node.name and not self.is_param[pos] and pos not in self.loop_dst:
                continue   # a named input placeholder (x[t]) stays outside the box
            self.group_of[pos] = key = self.group_key(home)
            self.members.setdefault(key, []).append(pos)
        for s in idx.shared:
            if not self.is_param[s] and not self.fed_by[s]:
                for t in sorted({home[1] for home in idx.consumer_homes(s)}):
                    self.members.setdefault(("in", t), []).append(s)
        self.exported = set(self.loop_src)
        for s, d, _ in graph.edges:
            if s in self.group_of and self.group_of.get(d) != self.group_of[s] and is_drawn(d):
                self.exported.add(s)
        self.exported_names, self.box_of_name = set(), {}
        inputs = [[] for _ in graph.nodes]
        for s, d, _ in graph.edges:
            inputs[d].append(s)
        self.box_params = {key: list(dict.fromkeys(node_label_name(graph.nodes[s]) for i in members
                                                   for s in inputs[i] if self.is_param[s]))
                           for key, members in self.members.items()}

    def _collapsed_rep(self, pos):
        idx = self.index
        home = idx.home[pos]
        if pos in self.initial:
            return self.real_node(pos, self.home_path(home)[:1])
        if pos in idx.attached:
            return self._io_node(idx.attached[pos], home)
        if pos not in self.group_of:
            return self.real_node(pos, self.home_path(home))
        box = self._box(self.group_of[pos], home)
        if pos not in self.exported:
            return box
        name = self.real_node(pos, self.home_path(home))
        self.exported_names.add(name)
        self.box_of_name[name] = box
        return name

    def _box(self, key, home):
        """The box standing for one cell (all layers) or one layer at one time step."""
        prefix, t = key
        name = f"g{t}_{self.prefix_number[prefix]}" if prefix else f"g{t}"
        if name not in self.nodes:
            if prefix:
                title = prefix
            else:   # the loops' common scope, else their names
                prefixes = list(dict.fromkeys(self.index.home[i][0] for i in self.members[key]))
                title = common_path(prefixes) or " + ".join(p for p in prefixes if p) or "cell"
                if len(prefixes) > 1:
                    title += f" ({len(prefixes)} layers)"
            params = self.box_params.get(key, [])
            small = [self.level] + ([", ".join(params[:4]) + (" …" if len(params) > 4 else "")]
                                    if params else [])
            box_id = f"{prefix or 'cell'}@{t}" if self.view == "unrolled" else prefix or "cell"
            node = _Node(name, "group", (title, small, True), self.members[key],
                         {"id": safe_id(box_id)})
            self.add_node(self.home_path(home), node)
        return name

    def _io_node(self, role, home):
        """The one node standing for a step's inputs (``role="in"``) or its head/loss (``"out"``)."""
        t = home[1]
        name = f"{role}{t}"
        if name not in self.nodes:
            members = self.members.get((role, t), [])
            names = list(dict.fromkeys(self.graph.nodes[i].name for i in members
                                       if self.graph.nodes[i].name))
            if role == "in":
                title = ", ".join(f"{n}[{t}]" for n in names) or f"input[{t}]"
            else:
                title = ", ".join(names[-2:]) or f"ŷ[{t}]"
            node = _Node(name, "io", (title, [], True), members, {"id": f"{role}@{t}"})
            # a step's inputs are drawn in its cluster; what is computed from it (a head, a loss)
            # was made outside every step and is drawn outside the steps' boxes
            self.add_node(self.home_path(home) if role == "in" else (), node)
        return name

    # --- output -----------------------------------------------------------------------------------
    def emit(self, legend, title):
        scale = self._scale() if self.grads else None
        dot = graphviz.Digraph(name="tinygraph", graph_attr={
            "rankdir": "BT", "fontname": FONT, "fontsize": "11", "nodesep": "0.2", "ranksep": "0.3",
            "newrank": "true", "compound": "true", "labelloc": "t",
        }, node_attr={"fontname": FONT, "fontsize": "10", "height": "0.3", "margin": "0.06,0.03"},
            edge_attr={"fontname": FONT, "fontsize": "9", "arrowsize": "0.6"})
        if len(self.timeline) > 1:
            # few crossing-minimisation passes: they keep the order the steps are written in (time),
            # which more passes trade for fewer crossings, swapping steps and misplacing the "…"
            dot.attr(mclimit="0.1")
        if title or self.notes:
            dot.attr(label=_html_label(title or "", self.notes))
        self._emit_items(dot, scale)
        lines = self.state_lines()
        line_of = {name: k for k, row in enumerate(lines) for name in row}
        initial = {self.rep[pos] for pos in self.initial}
        for (src, dst, kind), edge in self.edges.items():
            attrs = self._edge_attrs(kind, edge, scale)
            if src in line_of and line_of[src] == line_of.get(dst):
                # along a state line: it orders the line left to right and is drawn straight
                attrs.pop("constraint", None)
            elif src in initial:
                # h0 sits on its state line, above what reads it, like every other state
                attrs["constraint"] = "false"
            dot.edge(src, dst, **attrs)
        self._emit_lines(dot, lines)
        if len(self.timeline) > 1:
            self._emit_timeline(dot)
        if legend:
            dot.node("legend", _legend(scale, self.view), shape="plaintext", **{"class": "legend"})
        return dot

    def state_lines(self):
        """The rows of the textbook layout, each a list of DOT names drawn on one horizontal line
        (``rank=same``). Op level: per loop and state (``h``; ``c``), its initial state and every
        drawn step's output of that state. Cell and layer levels: per layer ("layer") or for the
        whole cell ("cell"), all its states; each box is drawn below the states it makes, so
        x_t -> [cell] -> h_t, then h_t -> the next box. The "…" of elided steps is on no line: the
        timeline (``_emit_timeline``) keeps its place in time."""
        graph, lines = self.graph, {}
        if self.view != "unrolled" or not self.index.steps:
            return []
        for pos, (loop, k) in self.initial.items():
            lines.setdefault(self._line_key(loop, k), []).append(self.rep[pos])
        for step in graph.steps:
            if self.kept is not None and step.t not in self.kept:
                continue
            loop = graph.loops[step.loop].name
            for k, pos in enumerate(step.state_out):
                name = self.rep[pos] if pos is not None else None
                if name is not None and self.nodes[name].kind != "group":
                    lines.setdefault(self._line_key(loop, k), []).append(name)
        rows = [list(dict.fromkeys(names)) for names in lines.values()]
        return [row for row in rows if len(row) > 1]

    def _line_key(self, loop, k):
        if self.level == "op":
            return loop, k
        return loop if self.level == "layer" else ""

    def _emit_lines(self, dot, lines):
        for k, row in enumerate(lines):
            with dot.subgraph(name=f"line{k}") as line:
                line.attr(rank="same")
                for name in row:
                    line.node(name)

    def _emit_timeline(self, dot):
        """Keep the step clusters in time order, left to right. State edges cannot (they are
        constraint=false, or every step would sit one rank above the last), and one hidden node with
        an edge into every step makes layout as slow as a shared parameter does; a hidden chain of
        same-rank nodes, each pointing into its own step, costs ``dot`` next to nothing."""
        invisible = {"class": "anchor", "style": "invis", "width": "0", "height": "0", "fixedsize": "true",
                     "label": ""}
        with dot.subgraph(name="timeline") as chain:
            chain.attr(rank="min")   # the lowest rank, under the steps' contents: its edges route freely
            for k in range(len(self.timeline)):
                chain.node(f"tl{k}", **invisible)
        for k, anchor in enumerate(self.timeline):
            if k:
                dot.edge(f"tl{k - 1}", f"tl{k}", style="invis")
            # At the op level a "…" one rank up, off the steps' bottom row of shared-input references,
            # among which crossing minimisation may push it past the next step's box (measured on
            # windowed RNN, LSTM and GRU pictures; at the cell and layer levels the bottom row holds
            # one input per step, and lifting the "…" there misplaces it instead)
            lift = {"minlen": "2"} if self.level == "op" and self.nodes[anchor].kind == "elision" else {}
            dot.edge(f"tl{k}", anchor, style="invis", **lift)

    def _emit_items(self, dot, scale):
        """Write the nodes and the nested clusters into ``dot``, each cluster's items in order.
        Clusters are numbered in the order a depth-first walk meets them and written innermost
        first (no recursion, however deep the scopes)."""
        order, stack = [], [()]
        while stack:
            path = stack.pop()
            order.append(path)
            stack.extend(item for kind, item in reversed(self.items[path]) if kind == "cluster")
        number = {path: k for k, path in enumerate(order)}
        written = {}
        for path in reversed(order):
            graph = dot if not path else graphviz.Digraph(name=f"cluster_{number[path]}")
            if path:
                is_step = len(path) == 1 and isinstance(path[0], _Step)
                text = self.cluster_labels[path]
                extra = {"tooltip": tooltip_text(text)} if altered(text) else {}
                graph.attr(label=_html_label(text, []), style="rounded",
                           color="#1f4e79" if is_step else "#aaaaaa", fontcolor="#1f4e79",
                           **{"class": "step" if is_step else "scope"}, **extra)
            for kind, item in self.items[path]:
                if kind == "cluster":
                    graph.subgraph(written.pop(item))
                    continue
                node = self.nodes[item]
                attrs = self._node_attrs(node, scale)
                if node.label is None:
                    graph.node(node.name, "", **attrs)
                    continue
                title, small, bold = node.label
                if scale is not None and node.kind.startswith("ref") and node.flow:
                    # this step's term of the shared node's gradient (the terms sum to its .grad)
                    small = small + ["step term ‖·‖=" + G.format_norm(self._node_value(node))]
                if altered(title) or any(altered(line) for line in small):
                    attrs["tooltip"] = tooltip_text([title, *small])
                graph.node(node.name, _html_label(title, small, bold), **attrs)
            written[path] = graph

    def _node_attrs(self, node, scale):
        kind = node.kind
        attrs = {"class": kind}
        if kind in ("op", "group"):
            attrs.update(shape="box", style="rounded,filled", fillcolor=FILL[kind])
        elif kind in ("param", "leaf", "io"):
            attrs.update(shape="ellipse", style="filled", fillcolor=FILL.get(kind, "#ffffff"))
        elif kind in ("ref", "ref-param"):
            attrs.update(shape="ellipse", style="dashed,filled", color="#1f4e79", fontsize="9",
                         fillcolor=FILL["param"] if kind == "ref-param" else FILL["leaf"])
        elif kind == "elision":
            attrs.update(shape="plaintext", fontsize="18")
        elif kind == "anchor":
            return {"class": "anchor", "style": "invis", "width": "0", "height": "0", "fixedsize": "true"}
        if kind == "group":
            attrs["style"] = "rounded,filled,bold"
        attrs.update(node.attrs)
        if scale is not None and kind != "elision":
            value = self._node_value(node)
            if value is not None:
                attrs.update(fillcolor=scale.colour(value), fontcolor=scale.font_colour(value),
                             penwidth=str(scale.pen_width(value)))
                attrs["class"] = f"{kind} grad{scale.index(value)}"
        return attrs

    def _node_value(self, node):
        if node.kind in ("ref", "ref-param") or node.flow:
            # a reference or a step's input node: what flows back into this step, not the shared
            # node's total
            values = [G.norm(f) for f in node.flow.values()]
            return max(values) if values else None
        if node.kind == "group":
            values = [self.norms[i] for i in node.pos if i in self.exported and self.norms[i] is not None]
            return values[-1] if values else None
        if node.kind == "io":
            values = [self.norms[i] for i in node.pos if self.norms[i] is not None]
            return max(values) if values else None
        return self.norms[node.pos] if node.pos is not None else None

    def _edge_value(self, edge):
        values = [G.norm(f) for f in edge.flows.values()]
        return max(values) if values else None

    def _scale(self):
        values = [self._node_value(n) for n in self.nodes.values() if n.kind not in ("elision", "anchor")]
        values += [self._edge_value(e) for e in self.edges.values()]
        return G.GradScale(values)

    def _edge_attrs(self, kind, edge, scale):
        attrs = {"class": kind, "color": DEFAULT_EDGE}
        if kind == "state":
            # not a rank constraint (the next step would sit a rank above), but heavy, so dot keeps
            # the edge short and its bends few instead of hooking round the next step
            attrs.update(color=STATE_EDGE, penwidth="2", constraint="false", weight="10")
        elif kind == "loop":
            attrs.update(color=LOOP_EDGE, style="dashed", penwidth="1.5", constraint="false",
                         fontcolor=LOOP_EDGE)
        elif kind == "elided":
            attrs.update(style="dotted", constraint="false")
        if edge.label:
            attrs["label"] = _html_label(edge.label, [], bold=False)
        if scale is not None:
            value = self._edge_value(edge)
            if value is not None:
                attrs.update(color=scale.colour(value), penwidth=str(scale.pen_width(value)))
                attrs["class"] = f"{kind} grad{scale.index(value)}"
        return attrs


def step_costs(graph, level="op"):
    """``(outer, {t: nodes})``: how many nodes the unrolled picture of ``graph`` at ``level`` draws
    outside the time steps, and for each recorded step ``t`` (its nodes and references; a box per
    layer and its inputs and outputs at the cell and layer levels). ``max_nodes`` is checked against
    ``outer + Σ nodes[t]`` over the steps drawn."""
    if level not in LEVELS:
        raise ValueError(f"step_costs: level must be one of {LEVELS}, got {level!r}")
    return _step_costs(StepIndex(G.as_graph(graph)), level)


def _step_costs(idx, level):
    per_step = {}
    for home in idx.home:
        if home is not None:
            per_step[home[1]] = per_step.get(home[1], 0) + 1
    if level == "op":
        for i in idx.shared:
            for home in idx.consumer_homes(i):
                per_step[home[1]] += 1
    else:
        per_step = {t: 3 * len(idx.prefixes) + 2 for t in per_step}
    return sum(1 for home in idx.home if home is None), per_step


WIDTH_RESERVE = 1500   # points kept for what is drawn beside the steps: shared nodes, "…", legend


def step_widths(graph, level="op"):
    """``{t: points}``: an estimate of how wide each recorded step of ``graph``'s unrolled picture
    at ``level`` is drawn (from its nodes' labels and ranks, without running ``dot``). ``max_width``
    is checked against the sum over the steps drawn."""
    if level not in LEVELS:
        raise ValueError(f"step_widths: level must be one of {LEVELS}, got {level!r}")
    return _step_widths(StepIndex(G.as_graph(graph)), level)


def _text_width(node):
    title = node_label_name(node)
    small = f"{node.op.name}(index=00)" if node.op is not None and node.op.name == "getitem" else ""
    return max(54.0, 7.0 * len(title) + 16, 5.0 * len(small) + 16)


def _step_widths(idx, level):
    graph, gap, margin = idx.graph, 14.0, 40.0
    groups = idx.step_positions()
    widths = {}
    inputs = [[] for _ in graph.nodes]
    for src, dst, _ in graph.edges:
        inputs[dst].append(src)
    if level != "op":   # a box under its states: one line per layer ("layer"), or one in all ("cell")
        states, params = {}, {}
        for (loop, t), positions in groups.items():
            count = sum(1 for p in positions if graph.nodes[p].name and p not in idx.attached
                        and graph.nodes[p].op is not None and any(
                            idx.home[d] != (loop, t) for d, _ in idx.consumers[p]))
            names = [node_label_name(graph.nodes[s]) for p in positions for s in inputs[p]
                     if graph.nodes[s].op is None and graph.nodes[s].requires_grad and idx.home[s] is None]
            key = (loop, t) if level == "layer" else t
            states[key] = states.get(key, 0) + count
            params[key] = list(dict.fromkeys(params.get(key, []) + names))
        widths = {}
        for key, count in states.items():   # measured: ~90 pt a state; the box lists 4 parameters
            box = 16 + 5.5 * len(", ".join(params[key][:4]))
            t = key[1] if level == "layer" else key
            widths[t] = max(widths.get(t, 0), max(box, count * 90.0) + 2 * margin)
        return widths
    shared = set(idx.shared)
    for (loop, t), positions in groups.items():
        members, rank, rows = set(positions), {}, {}
        for p in positions:   # topological order: a node's rank is one above its highest input's
            rank[p] = 1 + max((rank[s] for s in inputs[p] if s in members), default=0)
            rows[rank[p]] = rows.get(rank[p], 0) + _text_width(graph.nodes[p]) + gap
        refs = {s for p in positions for s in inputs[p] if s in shared}
        rows[0] = sum(_text_width(graph.nodes[s]) + 18 + gap for s in refs)
        widths[t] = widths.get(t, 0) + max(rows.values()) + margin   # layers, directions side by side
    return widths


def _components(path):
    return tuple(p for p in (path or "").split("/") if p)


def _html_label(title, small, bold=True):
    """An HTML-like label: ``title`` (bold) over small lines, each made safe (``labels.label_text``:
    control characters and surrogates written out, cut to a few hundred characters) and escaped."""
    title = label_text(title)
    text = f"<B>{h(title)}</B>" if bold and title else h(title)
    for line in small:
        text += f'<BR/><FONT POINT-SIZE="8">{h(label_text(line))}</FONT>'
    return f"<{text}>"


def _elision_label(first, last):
    steps = f"t={first}" if first == last else f"t={first}…{last}"
    return "…", [f"{steps} elided"], False


def _legend(scale, view):
    rows = ['<TR><TD ALIGN="LEFT"><B>legend</B></TD></TR>']
    if view == "folded":
        rows.append('<TR><TD ALIGN="LEFT"><FONT COLOR="#c00000">- - → z⁻¹</FONT>: state fed back '
                    'one step later</TD></TR>')
    else:
        rows.append('<TR><TD ALIGN="LEFT"><FONT COLOR="#1f4e79">━→</FONT> state h<SUB>t-1</SUB> → '
                    'step t; dashed ellipse: shared node, drawn once</TD></TR>')
    if scale is not None:
        cells = "".join(f'<TD BGCOLOR="{colour}"><FONT POINT-SIZE="8" COLOR="{G.text_on(colour)}">'
                        f'{h(text)}</FONT></TD>' for colour, text in scale.decades())
        rows.append(f'<TR><TD ALIGN="LEFT">‖∂L/∂·‖ (log scale)</TD></TR><TR><TD>'
                    f'<TABLE BORDER="0" CELLSPACING="0"><TR>{cells}</TR></TABLE></TD></TR>')
    return f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="2" COLOR="#aaaaaa">{"".join(rows)}</TABLE>>'
