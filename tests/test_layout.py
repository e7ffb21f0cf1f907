"""The textbook layout, measured on the SVG ``dot`` lays out (not on the DOT text): time runs left to
right, the states h_t sit on one horizontal line with short state edges between neighbouring steps,
the gates come in the same order in every step, initial states are nodes of their own, what no step
made (the head, the loss) lies outside every step's box, the "…" of a window sits between the right
steps, stacked layers are drawn bottom-up with their edges, and an op-level picture of 200 steps
stays within 20,000 pt.

Positions come from the SVG: each node is ``<g class="node <kind>" id="<stable id>">`` with its DOT
name as ``<title>`` and its shape as an ellipse, polygon or path; each step is
``<g class="cluster step">`` (label ``t=<k>``); each edge ``<g class="edge <kind>">`` with its
spline as a path. Graphviz's y axis grows downwards.
"""
import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import rnn_models
import tinygraph as tg
import visualize
from tinygraph_app import cli
from tinygraph_app.render import build_model, unrolled_graph

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
SVG = "{http://www.w3.org/2000/svg}"
NUMBER = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"


def points(element):
    """Every (x, y) of the ellipses, polygons and paths under ``element``."""
    out = []
    for shape in element.iter():
        tag = shape.tag.replace(SVG, "")
        if tag == "ellipse":
            cx, cy, rx, ry = (float(shape.get(k)) for k in ("cx", "cy", "rx", "ry"))
            out += [(cx - rx, cy - ry), (cx + rx, cy + ry)]
        elif tag in ("polygon", "path", "polyline"):
            text = shape.get("points") or shape.get("d") or ""
            out += [(float(x), float(y)) for x, y in re.findall(rf"({NUMBER}),({NUMBER})", text)]
    return out


def box(element):
    pts = points(element) or [(float(t.get("x")), float(t.get("y"))) for t in element.iter(f"{SVG}text")]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


class Picture:
    """An SVG's nodes ({DOT name: (kind, id, box)}), steps ([(t, box)] in t order) and edges
    ([(kind, src, dst, spline points)])."""

    def __init__(self, text):
        self.text = text
        self.root = root = ET.fromstring(text)
        self.width = float(root.get("width").rstrip("pt"))
        self.nodes, self.steps, self.edges, self.scopes = {}, [], [], []
        for g in root.iter(f"{SVG}g"):
            cls = (g.get("class") or "").split()
            title = g.find(f"{SVG}title")
            if cls[:1] == ["node"] and len(cls) > 1:
                self.nodes[title.text] = (cls[1], g.get("id"), box(g))
            elif cls == ["cluster", "step"]:
                label = next(t.text for t in g.iter(f"{SVG}text"))
                self.steps.append((int(label[2:]), box(g.find(f"{SVG}path") or g)))
            elif cls[:1] == ["cluster"]:
                label = next(t.text for t in g.iter(f"{SVG}text"))
                self.scopes.append((label, box(g.find(f"{SVG}path") or g)))
            elif cls[:1] == ["edge"]:
                src, dst = title.text.split("->")
                path = g.find(f"{SVG}path")
                self.edges.append((cls[1], src, dst, points(path) if path is not None else []))
        self.steps.sort()

    def centre(self, name):
        x0, y0, x1, y1 = self.nodes[name][2]
        return (x0 + x1) / 2, (y0 + y1) / 2

    def named(self, pattern):
        """DOT names of the nodes whose id matches ``pattern`` (a regex), in t order of ``@t``."""
        found = [(n, v[1]) for n, v in self.nodes.items() if v[1] and re.fullmatch(pattern, v[1])]
        return [n for n, _ in sorted(found, key=lambda f: int(f[1].rsplit("@", 1)[1]))]

    def step_of(self, name):
        """The t of the step box the node's centre lies in, or None."""
        x, y = self.centre(name)
        inside = [t for t, (x0, y0, x1, y1) in self.steps if x0 <= x <= x1 and y0 <= y <= y1]
        return inside[0] if len(inside) == 1 else None if not inside else inside


def spline_length(pts):
    """Length of the spline's control polygon: at least that of the curve it controls."""
    return sum(np.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(pts, pts[1:]))


def render(argv, tmp_path, capsys, name="p.svg"):
    out = tmp_path / name
    assert cli.main(["render", *argv, "-o", str(out)]) == 0
    return Picture(out.read_text()), capsys.readouterr().err


@pytest.fixture(scope="module")
def rnn6(tmp_path_factory):
    out = tmp_path_factory.mktemp("rnn6") / "c.svg"
    assert cli.main(["render", "--cell", "rnn", "--steps", "6", "--level", "cell", "-o", str(out)]) == 0
    return Picture(out.read_text())


def test_steps_run_left_to_right_in_time_order(rnn6):
    assert [t for t, _ in rnn6.steps] == list(range(6))
    lefts = [b[0] for _, b in rnn6.steps]
    assert lefts == sorted(lefts)
    for (_, a), (_, b) in zip(rnn6.steps, rnn6.steps[1:]):
        assert a[2] <= b[0]                                   # boxes do not overlap


def test_states_lie_on_one_horizontal_line(rnn6):
    hs = rnn6.named(r"rnn/l0/h_0@\d+")
    assert len(hs) == 6
    ys = [rnn6.centre(h)[1] for h in hs]
    assert max(ys) - min(ys) <= 1.0
    assert [rnn6.step_of(h) for h in hs] == list(range(6))
    xs = [rnn6.centre(h)[0] for h in hs]
    assert xs == sorted(xs)


def test_state_edges_join_neighbouring_steps_and_are_short(rnn6):
    width = np.mean([b[2] - b[0] for _, b in rnn6.steps])
    states = [e for e in rnn6.edges if e[0] == "state"]
    assert len(states) == 5
    for _, src, dst, pts in states:
        assert rnn6.step_of(src) + 1 == rnn6.step_of(dst)
        assert spline_length(pts) < 2 * width, (src, dst, spline_length(pts), width)


def test_each_initial_state_is_its_own_node_and_no_edge_skips_a_cell(tmp_path, capsys):
    for cell, states in (("rnn", ["h0"]), ("lstm", ["h0", "c0"])):
        picture, _ = render(["--cell", cell, "--steps", "3", "--level", "cell"], tmp_path, capsys)
        ids = {v[1]: n for n, v in picture.nodes.items()}
        for state in states:
            assert f"{cell}/l0/{state}_0@0" in ids                # h0, c0: a node each
        inputs = [n for n, v in picture.nodes.items() if v[0] == "io"]
        labels = [" ".join(t.text for t in g.iter(f"{SVG}text")) for g in picture.root.iter(f"{SVG}g")
                  if g.get("id") in {picture.nodes[n][1] for n in inputs}]
        assert labels and not [text for text in labels if "h0" in text or "c0" in text]
        boxes = {n for n, v in picture.nodes.items() if v[0] == "group"}
        drawn_states = {n for n, v in picture.nodes.items() if v[1] and re.search(r"/[hc]_0@\d+$", v[1])}
        for _, src, dst, _ in picture.edges:
            if dst in drawn_states:                               # a state comes out of its cell only
                assert src in boxes and picture.step_of(src) == picture.step_of(dst)


def test_the_same_gate_order_in_every_step(tmp_path, capsys):
    picture, _ = render(["--cell", "lstm", "--steps", "5"], tmp_path, capsys)
    orders = []
    for t, (x0, y0, x1, y1) in picture.steps:
        gates = [(b[0], label) for label, b in picture.scopes
                 if label.endswith("_gate") and x0 <= b[0] and b[2] <= x1]
        orders.append([label for _, label in sorted(gates)])
    assert len(orders) == 5 and len(orders[0]) == 4 and all(order == orders[0] for order in orders)
    hs = picture.named(r"lstm/l0/h_0@\d+")
    ys = [picture.centre(h)[1] for h in hs]
    assert len(hs) == 5 and max(ys) - min(ys) <= 1.0             # op level too: one line of h_t


def test_what_no_step_made_is_drawn_outside_every_step(tmp_path):
    """The loss of the last output, read straight off the list of outputs (so it is computed from
    one step only), lies outside that step's box; so does the stack of outputs at every level."""
    tg.manual_seed(0)
    layer = rnn_models.Recurrent(rnn_models.RNNCell(2, 3))
    outputs, _ = layer(tg.tensor(np.random.default_rng(0).standard_normal((4, 1, 2)), name="x"))
    with tg.scope("head"):
        y = outputs[-1] @ tg.tensor(np.ones((3, 1)), requires_grad=True, name="w_out")
    with tg.scope("loss"):
        loss = (y ** 2).sum()
    for level in visualize.LEVELS:
        picture = Picture(visualize.svg(loss, level=level))
        outer = [n for n, v in picture.nodes.items() if v[1] and v[1].split("/")[0] in ("head", "loss")
                 or v[0] == "io" and v[1].startswith("out@")]
        assert outer
        assert [picture.step_of(n) for n in outer] == [None] * len(outer), level


@pytest.mark.parametrize("argv,kept", [
    (["--steps", "20", "--level", "op", "--window", "0:2,-2:"], [0, 1, 18, 19]),
    (["--steps", "20", "--level", "cell", "--window", "0:2,-2:"], [0, 1, 18, 19]),
    (["--cell", "lstm", "--steps", "30", "--level", "op", "--window", "0:2,-2:"], [0, 1, 28, 29]),
    # the README's picture
    (["--cell", "lstm", "--steps", "40", "--level", "cell", "--grads", "--window", "0:3,-3:"],
     [0, 1, 2, 37, 38, 39]),
], ids=["rnn-op", "rnn-cell", "lstm-op", "lstm-cell-readme"])
def test_a_window_puts_the_ellipsis_between_the_steps_it_stands_for(argv, kept, tmp_path, capsys):
    picture, _ = render(argv, tmp_path, capsys)
    assert [t for t, _ in picture.steps] == kept
    lefts = [box[0] for _, box in picture.steps]
    assert lefts == sorted(lefts)
    (dots,) = [n for n, v in picture.nodes.items() if v[0] == "elision"]
    x = picture.centre(dots)[0]
    gap = next(k for k in range(len(kept)) if kept[k + 1] != kept[k] + 1)
    before, after = picture.steps[gap][1], picture.steps[gap + 1][1]
    assert before[2] <= x <= after[0], (before, x, after)


def test_the_bias_sum_is_drawn_where_the_projection_is():
    """The projection's bias b_ih + b_hh is drawn at the op level, where the projection x@W_ih is a
    node; the collapsed levels draw the projection inside each box (x@W_ih[t]), and its bias sum
    with it, not as a node with no edge out."""
    tg.manual_seed(0)
    layer = rnn_models.Recurrent(rnn_models.LSTMCell(2, 3))
    outputs, _ = layer(tg.tensor(np.random.default_rng(0).standard_normal((3, 1, 2)), name="x"))
    loss = (outputs[-1] ** 2).sum()
    for level in visualize.LEVELS:
        source = visualize.to_dot(loss, level=level).source
        assert ("<B>b_ih+b_hh</B>" in source) == (level == "op"), level


def test_stacked_layers_are_drawn_bottom_up_with_their_edges(tmp_path, capsys):
    picture, _ = render(["--cell", "lstm", "--steps", "3", "--level", "layer", "--layers", "2"],
                        tmp_path, capsys)
    boxes = {v[1]: n for n, v in picture.nodes.items() if v[0] == "group"}
    for t in range(3):
        l0, l1 = boxes[f"lstm/l0@{t}"], boxes[f"lstm/l1@{t}"]
        assert picture.centre(l0)[1] > picture.centre(l1)[1]      # l0 below l1 (y grows downwards)
        (h,) = picture.named(rf"lstm/l0/h_0@{t}")
        assert ("data", h, l1) in [(k, s, d) for k, s, d, _ in picture.edges]
    painted = visualize.to_dot(unrolled_graph(build_model("lstm", 2, 3, 2, 0, fused=True), 3, 1, 0),
                               level="layer", grads=True).source
    layer_edges = re.findall(r'(n\d+) -> (g\d+_1) \[class="data (grad\d)"', painted)
    assert len(layer_edges) == 3          # l0's h_t -> l1's box, painted with what flows back along it


@pytest.mark.parametrize("argv", [["--cell", "rnn", "--steps", "200"], ["--cell", "lstm", "--steps", "200"],
                                  ["--cell", "gru", "--layers", "2", "--steps", "200"],
                                  ["--cell", "lstm", "--layers", "2", "--steps", "500", "--level", "cell"]])
def test_a_long_unroll_stays_within_20000_pt_and_says_so(argv, tmp_path, capsys):
    picture, err = render(argv, tmp_path, capsys)
    assert picture.width <= 20000
    assert "within 20000 pt wide" in err and err.count("\n") == 1
    ts = [t for t, _ in picture.steps]
    last = int(argv[argv.index("--steps") + 1]) - 1
    assert ts[0] == 0 and ts[-1] == last and ts == sorted(ts)


def test_grads_paint_ops_and_parameters_and_the_legend_is_readable():
    loss, _ = rnn_models.RNN(2, 3)(tg.tensor(np.ones((4, 1, 2)), name="x"))[0][-1].sum(), None
    dot = visualize.to_dot(loss, grads=True)                        # no retain_all, no backward
    source = dot.source
    for name in ("weight_hh_l0", "weight_ih_l0", "bias_hh_l0"):
        line = next(l for l in source.splitlines() if f"<B>{name}</B>" in l and 'class="param' in l)
        assert "grad" in line and "‖∂L/∂·‖=" in line
    ops = [l for l in source.splitlines() if re.search(r'class="?op', l)]
    assert ops and all("grad" in l for l in ops)
    legend = re.findall(r'BGCOLOR="(#[0-9a-f]{6})"><FONT POINT-SIZE="8" COLOR="(\w+)"', source)
    assert legend
    for colour, text in legend:
        assert text == ("white" if colour in {visualize.grads.PALETTE[i] for i in visualize.grads.DARK}
                        else "black")


def test_layout_is_byte_identical_run_to_run(tmp_path, capsys):
    first, _ = render(["--cell", "lstm", "--steps", "4", "--level", "cell"], tmp_path, capsys, "a.svg")
    second, _ = render(["--cell", "lstm", "--steps", "4", "--level", "cell"], tmp_path, capsys, "b.svg")
    assert first.text == second.text
