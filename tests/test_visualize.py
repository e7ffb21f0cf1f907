"""visualize: Graph -> DOT/SVG for folded and unrolled recurrent nets, gradients painted on them.

The nets here are written by hand with tinygraph ops and record their time steps the way any unroll
does (a ``tg.graph.Loop``, each step inside ``in_step(loop, t)``, then ``loop.record``), with the scopes
and names rnn_models uses ("rnn/l0/t=3/forget_gate", states "h" and "c"), so these tests depend on
the engine only.

Snapshots: tests/snapshots/*.dot hold the DOT text of a tiny RNN in both views. After an intended
change to the drawing (or to the engine's ops), regenerate them and review the diff:

    TINYGRAPH_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_visualize.py -k snapshot
"""
import os
import pathlib
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygraph as tg
import visualize
from tinygraph.graph import Loop
from tinygraph.modes import current_scope, in_step
from visualize import grads as G

SNAPSHOTS = pathlib.Path(__file__).parent / "snapshots"
SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(not __import__("shutil").which("dot"), reason="Graphviz `dot` not installed")


# --- hand-written nets, recording their steps as an unroll does ------------------------------------
def _params(rng, gates, inputs, hidden, layer):
    rows = gates * hidden
    shapes = {f"weight_ih_l{layer}": (rows, inputs), f"weight_hh_l{layer}": (rows, hidden),
              f"bias_ih_l{layer}": (rows,), f"bias_hh_l{layer}": (rows,)}
    return [tg.tensor(rng.uniform(-0.6, 0.6, shape), requires_grad=True, name=name)
            for name, shape in shapes.items()]


def _step(kind, params, x, state):
    """One step: RNN h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); LSTM gates i, f, g, o in scopes."""
    w_ih, w_hh, b_ih, b_hh = params[0], params[1], params[2], params[3]
    pre = x @ w_ih.T + b_ih + state[0] @ w_hh.T + b_hh
    if kind == "rnn":
        h = tg.tanh(pre)
        h.name = "h"
        return (h,)
    chunks = tg.split(pre, 4, axis=-1)
    gates = []
    for scope, chunk, act in zip(("input_gate", "forget_gate", "cell_gate", "output_gate"), chunks,
                                 (tg.sigmoid, tg.sigmoid, tg.tanh, tg.sigmoid)):
        with tg.scope(scope):
            gates.append(act(chunk))
    i, f, g, o = gates
    c = f * state[1] + i * g
    c.name = "c"
    h = o * tg.tanh(c)
    h.name = "h"
    return h, c


def tiny_net(kind="rnn", steps=3, layers=1, hidden=3, inputs=2, seed=0):
    """Unrolled net: x (T, 1, I) -> ``layers`` stacked cells -> loss on the last output.
    Returns ``(loss, params)``."""
    rng = np.random.default_rng(seed)
    gates = 4 if kind == "lstm" else 1
    x = tg.tensor(rng.standard_normal((steps, 1, inputs)), name="x")
    sequence, params = x, []
    with tg.scope(kind):
        for layer in range(layers):
            p = _params(rng, gates, inputs if layer == 0 else hidden, hidden, layer)
            params += p
            names = ("h0", "c0") if kind == "lstm" else ("h0",)
            state = tuple(tg.tensor(np.zeros((1, hidden)), name=n) for n in names)
            outputs = []
            with tg.scope(f"l{layer}"):
                loop = Loop(current_scope())
                for t in range(steps):
                    with tg.scope(f"t={t}"), in_step(loop, t):
                        new = _step(kind, p, sequence[t], state)
                        loop.record(t, state, new, new[0])
                    state = new
                    outputs.append(state[0])
            sequence = tg.stack(outputs)
    with tg.scope("loss"):
        loss = (sequence[-1] ** 2).sum()
    return loss, params


def tiny_folded(kind="rnn", hidden=3, inputs=2, seed=0):
    """One step on placeholders "x[t]", "h[t-1]" ("c[t-1]") with a loop edge per state, recorded as
    the one step of a loop (as ``Recurrent.folded()`` traces it)."""
    rng = np.random.default_rng(seed)
    params = _params(rng, 4 if kind == "lstm" else 1, inputs, hidden, 0)
    with tg.scope(kind), tg.scope("l0"):
        loop = Loop(current_scope())
        with in_step(loop, 0):
            x = tg.tensor(np.zeros((1, inputs)), name="x[t]")
            names = ("h", "c") if kind == "lstm" else ("h",)
            state = tuple(tg.tensor(np.zeros((1, hidden)), name=f"{n}[t-1]") for n in names)
            new = _step(kind, params, x, state)
            loop.record(0, state, new, new[0])
    return tg.Graph.of(*new, loop_edges=list(zip(new, state)))


def painted(kind="rnn", steps=4, **kw):
    loss, params = tiny_net(kind, steps, **kw)
    graph = visualize.retain_all(loss)
    loss.backward()
    return graph, params


# --- reading the DOT text ---------------------------------------------------------------------------
NODE = re.compile(r"^\s*([\w]+) \[(.*)\]$")
EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$")


def attr(text, key):
    match = re.search(rf'(?<![\w-]){key}=("(?:[^"\\]|\\.)*"|[^\s\]]+)', text or "")
    return None if match is None else match.group(1).strip('"')


def parse(dot):
    """``(nodes {name: attrs text}, edges [(src, dst, attrs text)], step cluster labels)``."""
    nodes, edges, steps = {}, [], []
    for line in dot.source.splitlines():
        if "class=step" in line:
            steps.append(re.search(r"<B>(t=\d+)</B>", line).group(1))
        edge = EDGE.match(line)
        if edge:
            edges.append(edge.groups())
            continue
        node = NODE.match(line)
        if node and node.group(1) not in ("graph", "node", "edge"):
            nodes[node.group(1)] = node.group(2)
    return nodes, edges, steps


def enclosing(dot):
    """``{node name: [(cluster class, cluster label), ...]}``: the clusters around each node,
    outermost first."""
    stack, around = [], {}
    for line in dot.source.splitlines():
        text = line.strip()
        if text.startswith("subgraph "):
            stack.append(None)      # filled in by the cluster's attribute line (none for "timeline")
        elif text == "}":
            if stack:
                stack.pop()
        elif stack and stack[-1] is None and text.startswith("class="):
            stack[-1] = (attr(text, "class"), re.search(r"<B>(.*?)</B>", text).group(1))
        elif NODE.match(line) and not EDGE.match(line):
            around[NODE.match(line).group(1)] = [c for c in stack if c is not None]
    return around


def kind(attrs):
    return (attr(attrs, "class") or "").split()[0]


def svg_root(text):
    return ET.fromstring(text)


# --- structure --------------------------------------------------------------------------------------
@needs_dot
@pytest.mark.parametrize("view,level", [("unrolled", "op"), ("unrolled", "cell"), ("unrolled", "layer"),
                                        ("folded", "op"), ("folded", "cell")])
def test_svg_parses_as_xml(view, level):
    graph = tiny_net("lstm", steps=3, layers=2)[0].graph() if view == "unrolled" else tiny_folded("lstm")
    root = svg_root(visualize.svg(graph, view=view, level=level))
    assert root.tag == SVG + "svg"
    assert root.findall(f".//{SVG}g[@class='node']") == []   # every node carries its kind class
    assert len(root.findall(f".//{SVG}g")) > 5


@pytest.mark.parametrize("level", visualize.LEVELS)
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_unrolled_has_one_cluster_per_step(level, steps):
    nodes, _, clusters = parse(visualize.to_dot(tiny_net("lstm", steps, layers=2)[0], level=level))
    assert clusters == [f"t={t}" for t in range(steps)]
    assert not [n for n, a in nodes.items() if kind(a) == "elision"]


@pytest.mark.parametrize("spec,kept", [("0:3,-2:", [0, 1, 2, 8, 9]), (4, [0, 1, 8, 9]), ("5", [5]),
                                       ("::4", [0, 4, 8]), ("-1", [9])])
def test_window_keeps_the_chosen_steps_and_one_elision_node_per_gap(spec, kept):
    graph = tiny_net("rnn", 10)[0].graph()
    nodes, edges, clusters = parse(visualize.to_dot(graph, level="cell", steps=spec))
    assert clusters == [f"t={t}" for t in kept]
    gap_count = len(visualize.structure.gaps(kept, list(range(10))))
    elisions = [n for n, a in nodes.items() if kind(a) == "elision"]
    assert len(elisions) == gap_count
    for name in elisions:   # each "…" is connected on both sides of its gap (or to the outputs)
        assert any(s == name for s, _, _ in edges) or any(d == name for _, d, _ in edges)


def test_parse_steps_rejects_bad_specs():
    steps = list(range(6))
    assert visualize.parse_steps(None, steps) == steps
    assert visualize.parse_steps(10, steps) == steps
    for bad, error in [("0:x", ValueError), ("7", ValueError), ("4:2", ValueError), (0, ValueError),
                       ("::0", ValueError), (2.5, TypeError), (True, TypeError)]:
        with pytest.raises(error, match="steps"):
            visualize.parse_steps(bad, steps)


@pytest.mark.parametrize("kind_,states", [("rnn", 1), ("lstm", 2)])
def test_folded_view_has_one_loop_edge_per_state(kind_, states):
    for level in visualize.LEVELS:
        _, edges, clusters = parse(visualize.to_dot(tiny_folded(kind_), view="folded", level=level))
        loops = [(s, d) for s, d, a in edges if attr(a, "class") == "loop"]
        assert len(loops) == states and clusters == []
        assert all("z⁻¹" in attr(a, "label") for _, _, a in edges if attr(a, "class") == "loop")


@pytest.mark.parametrize("layers", [1, 2])
def test_folded_view_of_an_unrolled_graph_reads_the_loops_off_the_state_edges(layers):
    graph = tiny_net("lstm", 4, layers=layers)[0].graph()
    nodes, edges, _ = parse(visualize.to_dot(graph, view="folded"))
    loops = [(s, d) for s, d, a in edges if attr(a, "class") == "loop"]
    assert len({s for s, _ in loops}) == 2 * layers            # h and c of every layer
    loop_sources = {graph.nodes[int(s[1:])].name for s, _ in loops}
    assert loop_sources == {"h", "c"}
    # one step per layer is drawn: each layer's ops appear exactly once
    drawn = [graph.nodes[int(n[1:])] for n in nodes if n.startswith("n")]
    assert sum(1 for n in drawn if n.name == "h") == layers


@pytest.mark.parametrize("kind_", ["rnn", "lstm"])
def test_op_level_draws_every_node_and_edge_of_the_graph_once(kind_):
    graph = tiny_net(kind_, 4, layers=2)[0].graph()
    nodes, edges, _ = parse(visualize.to_dot(graph))
    real = [n for n in nodes if n.startswith("n")]
    assert sorted(int(n[1:]) for n in real) == list(range(len(graph)))
    drawn = [(s, d) for s, d, a in edges if attr(a, "class") in ("data", "state")]
    assert len(drawn) == len(graph.edges)
    # a shared parameter is drawn once and referenced from each step, never wired into every step
    for p in graph.parameters:
        pos = graph.index(p)
        assert not [e for e in edges if e[0] == f"n{pos}"]
        refs = [n for n, a in nodes.items() if n.startswith(f"r{pos}_")]
        assert len(refs) == 4
        assert all(attr(nodes[r], "URL") == "#" + attr(nodes[f"n{pos}"], "id") for r in refs)


def test_state_edges_cross_steps_and_do_not_constrain_ranks():
    graph = tiny_net("rnn", 5)[0].graph()
    for level in ("op", "cell"):
        _, edges, _ = parse(visualize.to_dot(graph, level=level))
        states = [a for _, _, a in edges if attr(a, "class") == "state"]
        assert len(states) == 4 and all(attr(a, "constraint") == "false" for a in states)


def test_cell_level_is_the_textbook_figure():
    graph = tiny_net("rnn", 3)[0].graph()
    nodes, edges, _ = parse(visualize.to_dot(graph, level="cell"))
    boxes = [n for n, a in nodes.items() if kind(a) == "group"]
    inputs = [n for n, a in nodes.items() if kind(a) == "io"]
    states = [n for n in nodes if n.startswith("n") and graph.nodes[int(n[1:])].name == "h"]
    assert len(boxes) == len(inputs) == len(states) == 3
    assert "weight_hh_l0" in nodes[boxes[0]]                     # shared parameters named in the box
    assert not [n for n, a in nodes.items() if kind(a) in ("param", "ref-param")]
    pairs = {(s, d) for s, d, _ in edges}
    for box, inp, h in zip(boxes, inputs, states):
        assert (inp, box) in pairs and (box, h) in pairs           # x_t -> [cell] -> h_t


def test_layer_level_draws_one_box_per_layer_per_step():
    graph = tiny_net("lstm", 3, layers=2)[0].graph()
    nodes, _, _ = parse(visualize.to_dot(graph, level="layer"))
    labels = [a for a in nodes.values() if kind(a) == "group"]
    assert len(labels) == 6 and sum("lstm/l1" in a for a in labels) == 3


def test_scopes_named_like_steps_make_no_steps_when_no_loop_was_recorded():
    """Structure is not guessed from names: a chain built inside scopes "rnn/l0/t=<k>" without a
    recorded Loop has no time steps, so its "t=<k>" scopes are ordinary scope clusters."""
    rng = np.random.default_rng(0)
    w = tg.tensor(rng.uniform(-0.6, 0.6, (3, 3)), requires_grad=True, name="w")
    h = tg.tensor(np.zeros((1, 3)), name="h0")
    with tg.scope("rnn"), tg.scope("l0"):
        for t in range(4):
            with tg.scope(f"t={t}"):
                h = tg.tanh(h @ w)
                h.name = "h"
    graph = h.graph()
    assert graph.steps == [] and graph.state_edges == []
    index = visualize.StepIndex(graph)
    assert index.steps == [] and set(index.home) == {None} and index.shared == []
    for level in visualize.LEVELS:
        nodes, edges, clusters = parse(visualize.to_dot(graph, level=level))
        assert clusters == []
        assert {kind(a) for a in nodes.values()} <= {"op", "param", "leaf", "legend"}   # no boxes, refs
        assert {attr(a, "class") for _, _, a in edges} == {"data"}
    where = enclosing(visualize.to_dot(graph))
    tanhs = [f"n{i}" for i, n in enumerate(graph.nodes) if n.name == "h"]
    assert [where[n] for n in tanhs] == [[("scope", "rnn"), ("scope", "l0"), ("scope", f"t={t}")]
                                         for t in range(4)]
    with pytest.raises(ValueError, match="loop_edges"):
        visualize.to_dot(graph, view="folded")


def test_scopes_named_like_steps_do_not_confuse_the_recorded_steps():
    """A user's own scopes called "t=<k>" — around the recurrence ("t=7"), inside every step
    ("t=9") and around the loss ("t=1") — stay scope clusters: the time steps are the four the
    loop recorded, and the loss is not put into step 1."""
    rng = np.random.default_rng(0)
    w = tg.tensor(rng.uniform(-0.6, 0.6, (3, 3)), requires_grad=True, name="w")
    x = tg.tensor(rng.standard_normal((4, 1, 3)), name="x")
    h, outputs = tg.tensor(np.zeros((1, 3)), name="h0"), []
    with tg.scope("t=7"), tg.scope("rnn"):
        loop = Loop(current_scope())
        for t in range(4):
            with tg.scope(f"t={t}"), in_step(loop, t):
                x_t = x[t]
                with tg.scope("t=9"):
                    new = tg.tanh(x_t + h @ w)
                    new.name = "h"
                loop.record(t, (h,), (new,), new)
            h = new
            outputs.append(h)
    with tg.scope("t=1"):
        loss = tg.stack(outputs).sum()
    graph = loss.graph()
    assert [loop.name for loop in graph.loops] == ["t=7/rnn"]
    dot = visualize.to_dot(graph)
    _, edges, clusters = parse(dot)
    assert clusters == ["t=0", "t=1", "t=2", "t=3"]
    where = enclosing(dot)
    for i, node in enumerate(graph.nodes):
        if graph.step_of[i] is not None:
            step = ("step", f"t={graph.step_of[i][1]}")
            assert where[f"n{i}"] == ([step, ("scope", "t=9")] if node.scope.endswith("/t=9") else [step])
        elif node.scope == "t=1":
            assert where[f"n{i}"] == [("scope", "t=1")]
    states = [(s, d) for s, d, a in edges if attr(a, "class") == "state"]
    assert states == [(f"n{s}", f"n{d}") for s, d, _ in graph.state_edges] and len(states) == 3
    h2 = graph.steps[2].state_out[0]
    assert visualize.StepIndex(graph).stable_ids[h2] == "t=7/rnn/t=9/h_0@2"
    nodes, edges, clusters = parse(visualize.to_dot(graph, level="cell"))
    assert clusters == ["t=0", "t=1", "t=2", "t=3"]
    assert len([a for a in nodes.values() if kind(a) == "group"]) == 4
    _, edges, _ = parse(visualize.to_dot(graph, view="folded"))
    assert [(s, d) for s, d, a in edges if attr(a, "class") == "loop"] == \
        [(f"n{graph.steps[1].state_out[0]}", f"n{d}") for s, d, _ in graph.state_edges
         if graph.step_of[d] == (0, 1)]


# --- stable ids, determinism, snapshots -------------------------------------------------------------
def test_same_program_gives_byte_identical_dot_and_svg():
    def draw(**kw):
        graph, _ = painted("lstm", 3)
        return visualize.to_dot(graph, grads=True, **kw).source
    assert draw() == draw()
    assert draw(level="cell") == draw(level="cell")
    if __import__("shutil").which("dot"):
        first = visualize.svg(tiny_net("rnn", 3)[0], level="op")
        assert first == visualize.svg(tiny_net("rnn", 3)[0], level="op")


def test_folded_ids_name_the_same_ops_as_the_unrolled_ids():
    unrolled = visualize.StepIndex(tiny_net("lstm", 3)[0].graph())
    folded = visualize.StepIndex(tiny_folded("lstm"))
    step1 = {sid.rsplit("@", 1)[0] for i, sid in enumerate(unrolled.stable_ids)
             if unrolled.home[i] == ("lstm/l0", 1) and i not in unrolled.attached}
    ops = {folded.stable_ids[i] for i, n in enumerate(folded.graph.nodes) if n.op is not None}
    assert ops and ops <= step1
    assert "lstm/l0/forget_gate/sigmoid_0" in ops and "lstm/l0/h_0" in ops
    nodes, _, _ = parse(visualize.to_dot(tiny_folded("lstm"), view="folded", link="u.svg#{id}@0"))
    assert attr(nodes["n" + str(len(folded.graph) - 1)], "URL").startswith("u.svg#lstm/l0/")


@pytest.mark.parametrize("view", ["unrolled", "folded"])
def test_snapshot_tiny_rnn(view):
    graph = tiny_net("rnn", 2, hidden=2)[0].graph() if view == "unrolled" else tiny_folded("rnn", hidden=2)
    source = visualize.to_dot(graph, view=view).source
    path = SNAPSHOTS / f"tiny_rnn_{view}.dot"
    if os.environ.get("TINYGRAPH_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(source, encoding="utf-8")
    assert path.exists(), f"missing snapshot {path}; see this module's docstring to create it"
    assert source == path.read_text(encoding="utf-8"), \
        f"DOT differs from {path.name}; if intended, regenerate (see this module's docstring)"


# --- gradients --------------------------------------------------------------------------------------
def test_edge_flows_into_each_step_sum_to_the_parameter_gradient():
    graph, params = painted("lstm", 4)
    flows = visualize.edge_grads(graph)
    for p in params:
        pos = graph.index(p)
        total = sum(flow for (s, _, _), flow in flows.items() if s == pos)
        np.testing.assert_allclose(total, p.grad, rtol=1e-12, atol=1e-14)
    # and a state: the flows out of h_t add up to ∂L/∂h_t
    h = [i for i, n in enumerate(graph.nodes) if n.name == "h"][1]
    total = sum(flow for (s, _, _), flow in flows.items() if s == h)
    np.testing.assert_allclose(total, graph.nodes[h].grad, rtol=1e-12)


@pytest.mark.parametrize("level", ["op", "cell"])
def test_gradient_colours_and_widths_follow_the_norms(level):
    graph, _ = painted("rnn", 8)
    flows = {}
    for (s, d, _), flow in visualize.edge_grads(graph).items():
        flows.setdefault((f"n{s}", f"n{d}"), []).append(G.norm(flow))
    nodes, edges, _ = parse(visualize.to_dot(graph, grads=True, level=level))
    values = []   # (norm, palette index, pen width) for every painted node and edge
    for name, attrs in nodes.items():
        if name.startswith("n") and G.norm(graph.nodes[int(name[1:])].grad):
            values.append((G.norm(graph.nodes[int(name[1:])].grad),
                           G.PALETTE.index(attr(attrs, "fillcolor")), float(attr(attrs, "penwidth"))))
    for src, dst, attrs in edges:
        if len(flows.get((src, dst), [])) == 1 and flows[(src, dst)][0] > 0:
            values.append((flows[(src, dst)][0], G.PALETTE.index(attr(attrs, "color")),
                           float(attr(attrs, "penwidth"))))
    assert len({index for _, index, _ in values}) >= 3        # vanishing over 8 steps spans decades
    for a in values:
        for b in values:
            if a[0] > b[0]:
                assert a[1] >= b[1] and a[2] >= b[2], (a, b)
    assert "log scale" in visualize.to_dot(graph, grads=True, level=level).source   # the legend


def test_gradient_scale_maps_decades_monotonically():
    scale = G.GradScale([1e-6, 3e-2, 5.0])
    assert (scale.low, scale.high) == (-6, 1)
    values = [1e-6, 1e-5, 1e-3, 0.5, 5.0]
    assert [scale.index(v) for v in values] == sorted(scale.index(v) for v in values)
    assert scale.index(1e-6) == 0 and scale.index(9.9) == len(G.PALETTE) - 1
    assert scale.colour(0.0) == G.ZERO_COLOUR and scale.colour(None) == G.ZERO_COLOUR
    assert scale.colour(float("nan")) == G.ZERO_COLOUR


def test_grads_without_retained_gradients_are_computed_from_the_graph_or_refused():
    """grads=True paints every op and parameter whether or not retain_all ran: the gradients of the
    graph's scalar output are computed from the Graph (the same numbers backward keeps). A graph
    with no scalar output to differentiate is refused, saying how."""
    graph, _ = painted("lstm", 3)
    kept = parse(visualize.to_dot(graph, grads=True))[0]
    for backward in (False, True):
        loss, _ = tiny_net("lstm", 3)
        graph = loss.graph()
        if backward:
            loss.backward()          # only the leaves keep .grad
        nodes = parse(visualize.to_dot(graph, grads=True))[0]
        assert nodes == kept
        ops = [n for n, a in nodes.items() if kind(a) in ("op", "param")
               and graph.nodes[int(n[1:])].requires_grad]
        assert ops and all(attr(nodes[n], "fillcolor") in G.PALETTE + (G.ZERO_COLOUR,) for n in ops)
    loss, _ = tiny_net("rnn", 2)
    with pytest.raises(ValueError, match="retain_all"):
        visualize.to_dot([loss, loss * 2], grads=True)


def test_state_grad_norms_reads_the_h_nodes():
    graph, _ = painted("rnn", 5)
    norms = visualize.state_grad_norms(graph)["rnn/l0"]
    hs = [n for n in graph.nodes if n.name == "h"]
    assert norms == [G.norm(h.grad) for h in hs] and len(norms) == 5
    with pytest.raises(ValueError, match="no node named 'q'"):
        visualize.state_grad_norms(graph, name="q")


# --- escaping, sizes, errors ------------------------------------------------------------------------
NASTY = '<b>"x" & y</b> \\N {z}'


@needs_dot
def test_names_and_scopes_are_escaped():
    scope = 'a"b<c>&d'
    with tg.scope(scope):
        x = tg.tensor(np.ones(3), requires_grad=True, name=NASTY)
        loop = Loop(current_scope())
        with tg.scope("t=0"), in_step(loop, 0):
            y = tg.tanh(x)
            y.name = "</TD></TABLE>>"
            loop.record(0, (), (), y)
        z = x.sum()
    for level in ("op", "cell"):
        dot = visualize.to_dot([y, z], level=level, values=True)
        root = svg_root(visualize.layout(dot).decode())      # well-formed XML
        texts = {t.text for t in root.iter(f"{SVG}text")}
        assert scope in texts                                  # the scope's cluster label, literally
        if level == "op":
            assert NASTY in texts and "</TD></TABLE>>" in texts
        ids = [g.get("id") for g in root.iter(f"{SVG}g")]
        assert all(re.fullmatch(r"[\w./=@:+\-\[\]>~]+", i) for i in ids if i)


def test_values_option_adds_shapes_and_summaries():
    loss, _ = tiny_net("rnn", 2)
    source = visualize.to_dot(loss, values=True).source
    assert "(1, 3)" in source and "μ=" in source


def test_too_big_graphs_are_elided_with_a_note():
    graph = tiny_net("rnn", 40)[0].graph()
    nodes, _, clusters = parse(visualize.to_dot(graph, max_nodes=150))
    assert 1 <= len(clusters) < 40 and [n for n, a in nodes.items() if kind(a) == "elision"]
    assert "max_nodes=150" in visualize.to_dot(graph, max_nodes=150).source
    x = tg.tensor(np.ones(2), requires_grad=True, name="x")
    for _ in range(100):       # no time steps: the nodes nearest the outputs stay
        x = tg.tanh(x)
    nodes, _, _ = parse(visualize.to_dot(x, max_nodes=30))
    assert len([n for n in nodes if n.startswith("n")]) <= 30 and "e_far" in nodes


@pytest.mark.parametrize("kwargs,error", [({"view": "sideways"}, "view"), ({"level": "gate"}, "level"),
                                          ({"max_nodes": 3}, "max_nodes")])
def test_bad_options_are_clear_errors(kwargs, error):
    with pytest.raises(ValueError, match=error):
        visualize.to_dot(tiny_net("rnn", 2)[0], **kwargs)
    with pytest.raises(TypeError, match="Graph"):
        visualize.to_dot("not a graph")
    with pytest.raises(ValueError, match="loop_edges"):
        visualize.to_dot(tg.tanh(tg.tensor(1.0)), view="folded")


def test_missing_dot_is_a_clear_error_and_dot_text_still_works(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    graph = tiny_folded("rnn")
    with pytest.raises(visualize.GraphvizNotFoundError, match="install Graphviz") as info:
        visualize.render(graph, tmp_path / "x.svg", view="folded")
    assert isinstance(info.value, FileNotFoundError) and not (tmp_path / "x.svg").exists()
    assert "digraph" in visualize.to_dot(graph, view="folded").source
    visualize.render(graph, tmp_path / "x.dot", view="folded")
    assert (tmp_path / "x.dot").read_text().startswith("digraph")
    bundle = graph._repr_mimebundle_()
    assert list(bundle) == ["text/plain"] and bundle["text/plain"].startswith("digraph")


@needs_dot
def test_dot_failures_and_timeouts_become_render_errors(tmp_path):
    with pytest.raises(visualize.RenderError, match="dot failed"):
        visualize.layout("digraph { a -> }")
    with pytest.raises(visualize.RenderError, match="within"):
        visualize.layout(visualize.to_dot(tiny_net("lstm", 6)[0]), timeout=1e-6)
    with pytest.raises(ValueError, match="format"):
        visualize.layout("digraph {}", format="gif")


@needs_dot
def test_render_writes_svg_png_pdf_and_jupyter_shows_svg(tmp_path):
    graph = tiny_folded("lstm")
    for fmt, magic in (("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF")):
        path = visualize.render(graph, tmp_path / f"g.{fmt}", view="folded")
        assert pathlib.Path(path).read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pdf", "g.png", "g.svg"]   # no temp files left
    bundle = graph._repr_mimebundle_()
    svg_root(bundle["image/svg+xml"])
