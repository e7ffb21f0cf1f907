"""`tinygraph render` / `tinygraph gradflow` and the demo pictures, on real rnn_models layers, and
pictures of what ``rnn_models.Recurrent`` records when it unrolls or folds a user's own cell."""
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

import visualize
from tinygraph_app import cli
from tinygraph_app.render import build_model, unrolled_graph, write_demo_pictures

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
SVG = "{http://www.w3.org/2000/svg}"


def step_clusters(svg_text):
    root = ET.fromstring(svg_text)
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "cluster step"]


@needs_dot
@pytest.mark.parametrize("cell,states", [("rnn", 1), ("lstm", 2), ("gru", 1)])
def test_render_folded_has_a_loop_edge_per_state(cell, states, tmp_path, capsys):
    out = tmp_path / "f.svg"
    assert cli.main(["render", "--cell", cell, "--view", "folded", "-o", str(out)]) == 0
    root = ET.fromstring(out.read_text())
    loops = [g for g in root.iter(f"{SVG}g") if (g.get("class") or "").startswith("edge loop")]
    assert len(loops) == states
    assert "wrote" in capsys.readouterr().out


@needs_dot
@pytest.mark.parametrize("level", ["op", "cell", "layer"])
def test_render_unrolled_draws_one_cluster_per_step(level, tmp_path):
    out = tmp_path / "u.svg"
    argv = ["render", "--cell", "lstm", "--steps", "3", "--layers", "2", "--level", level, "-o", str(out)]
    assert cli.main(argv) == 0
    assert len(step_clusters(out.read_text())) == 3


@needs_dot
def test_render_grads_and_window(tmp_path):
    out = tmp_path / "g.svg"
    argv = ["render", "--cell", "rnn", "--steps", "20", "--level", "cell", "--grads", "--window", "0:2,-2:",
            "-o", str(out)]
    assert cli.main(argv) == 0
    text = out.read_text()
    assert len(step_clusters(text)) == 4 and "t=2…17 elided" in text
    assert re.search(r'class="node [a-z]+ grad\d"', text)        # painted nodes
    assert cli.main(["render", "--window", "3", "--steps", "9", "-o", str(tmp_path / "w.dot")]) == 0
    assert (tmp_path / "w.dot").read_text().count("class=step") == 3


def test_render_bad_input_exits_2(tmp_path, capsys):
    out = str(tmp_path / "x.svg")
    assert cli.main(["render", "--view", "folded", "--grads", "-o", out]) == 2
    assert "--view unrolled" in capsys.readouterr().err
    assert cli.main(["render", "--window", "0:x", "-o", out]) == 2
    assert "0:3,-2:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["render", "--cell", "transformer", "-o", out])
    assert exit_info.value.code == 2


def test_render_without_graphviz_exits_2_with_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["render", "--view", "folded", "-o", str(tmp_path / "x.svg")]) == 2
    err = capsys.readouterr().err
    assert "install Graphviz" in err and "apt-get install graphviz" in err
    assert cli.main(["render", "--view", "folded", "-o", str(tmp_path / "x.dot")]) == 0   # DOT needs no dot


def test_gradflow_plots_each_cell(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="gradflow plots need matplotlib")
    out = tmp_path / "g.svg"
    assert cli.main(["gradflow", "--cell", "rnn,gru", "--steps", "12", "--hidden", "4", "-o", str(out)]) == 0
    root = ET.fromstring(out.read_text())
    assert len([g for g in root.iter(f"{SVG}g") if (g.get("id") or "").startswith("run-")]) == 2
    printed = capsys.readouterr().out
    assert "rnn" in printed and "gru" in printed
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["gradflow", "--cell", "rnn,mlp", "-o", str(out)])
    assert exit_info.value.code == 2


def test_state_grad_norms_match_the_layers_h_gradients():
    graph = unrolled_graph(build_model("lstm", 2, 3, 2, seed=1), 5, 1, seed=1, grads=True)
    norms = visualize.state_grad_norms(graph)
    assert sorted(norms) == ["lstm/l0", "lstm/l1"] and all(len(v) == 5 for v in norms.values())
    assert norms["lstm/l1"][-1] > 0


@needs_dot
def test_demo_pictures(tmp_path):
    paths = write_demo_pictures(str(tmp_path), log=lambda message: None)
    names = sorted(p.rsplit("/", 1)[-1] for p in paths)
    assert {"rnn_folded.svg", "rnn_unrolled.svg", "lstm_folded.svg", "lstm_unrolled.svg"} <= set(names)
    folded = (tmp_path / "rnn_folded.svg").read_text()
    unrolled = (tmp_path / "rnn_unrolled.svg").read_text()
    links = re.findall(r'xlink:href="rnn_unrolled\.svg#([^"]+)"', folded)
    ids = set(re.findall(r'<g id="([^"]+)"', unrolled))
    assert len(links) >= 3 and all(link in ids for link in links)   # folded ops link into the unrolled
    assert "rnn/l0/h_0@0" in links


def test_recurrent_layers_display_their_folded_graph_in_jupyter():
    model = build_model("gru", 2, 3, 1, seed=0, fused=False)
    bundle = model._repr_mimebundle_()
    if shutil.which("dot"):
        root = ET.fromstring(bundle["image/svg+xml"])
        assert [g for g in root.iter(f"{SVG}g") if (g.get("class") or "").startswith("edge loop")]
    else:
        assert bundle["text/plain"].startswith("digraph")


@pytest.mark.parametrize("level", visualize.LEVELS)
def test_bidirectional_stack_unrolled_and_folded(level):
    import numpy as np
    import rnn_models
    import tinygraph as tg
    tg.manual_seed(0)
    model = rnn_models.LSTM(2, 3, num_layers=2, bidirectional=True, fused=False)
    out, _ = model(tg.tensor(np.ones((4, 1, 2)), name="x"))
    source = visualize.to_dot(out, level=level).source
    assert source.count("class=step") == 4
    assert source.count("class=state") == 3 * 4 * 2        # 3 transitions x 4 layer-directions x (h, c)
    folded = visualize.to_dot(out, view="folded", level=level).source
    assert folded.count("class=loop") == 4 * 2 and "class=step" not in folded


def step_clusters_of_nodes(source):
    """``{position: "t=<k>"}`` for each node ``n<position>`` the DOT text draws inside a step cluster."""
    stack, found = [], {}
    for line in source.splitlines():
        text = line.strip()
        if text.startswith("subgraph"):
            stack.append(None)
        elif text == "}" and stack:
            stack.pop()
        elif text.startswith("class=step"):
            stack[-1] = re.search(r"<B>(t=\d+)</B>", text).group(1)
        elif re.match(r"n\d+ \[", text) and any(stack):
            found[int(text[1:text.index(" ")])] = next(label for label in stack if label)
    return found


def test_a_users_own_cell_is_drawn_with_the_steps_its_unroll_recorded():
    """A minimal gated unit written as a plain function of tg ops, unrolled by ``Recurrent``: one
    cluster per step holding that step's ops, state edges only between neighbouring steps; folded,
    a delay edge from its new state back to its state placeholder."""
    import numpy as np
    import rnn_models
    import tinygraph as tg
    rng = np.random.default_rng(0)
    w = tg.tensor(rng.uniform(-0.5, 0.5, (3, 8)), requires_grad=True, name="w")
    u = tg.tensor(rng.uniform(-0.5, 0.5, (4, 8)), requires_grad=True, name="u")

    def gated(x, h):
        """h' = z * h + (1 - z) * tanh(a), with [z | a] = x W + h U."""
        with tg.scope("gate"):
            z, a = tg.split(x @ w + h @ u, 2, axis=-1)
            z = tg.sigmoid(z)
        new = z * h + (1 - z) * tg.tanh(a)
        new.name = "h"
        return new

    node = rnn_models.Recurrent(gated, state_size=4, input_size=3)
    steps = 4
    outputs, _ = node(tg.tensor(rng.standard_normal((steps, 1, 3)), name="x"))
    graph = tg.Graph.of(tg.stack(outputs).sum())
    source = visualize.to_dot(graph).source
    assert re.findall(r"class=step .*<B>(t=\d+)</B>", source) == [f"t={t}" for t in range(steps)]
    clusters = step_clusters_of_nodes(source)
    for i, home in enumerate(graph.step_of):
        if home is not None and graph.nodes[i].op is not None:
            assert clusters[i] == f"t={home[1]}"
    assert any(n.scope.endswith("/gate") for n in graph.nodes)          # the cell's own sub-scope
    states = re.findall(r"n(\d+) -> n(\d+) \[class=state", source)
    assert len(states) == len(graph.state_edges) == 2 * (steps - 1)      # h is read twice per step
    assert all(graph.step_of[int(d)][1] == graph.step_of[int(s)][1] + 1 for s, d in states)
    assert len(re.findall(r"class=group", visualize.to_dot(graph, level="cell").source)) == steps

    folded = node.folded()
    source = visualize.to_dot(folded, view="folded").source
    loops = re.findall(r"n(\d+) -> n(\d+) \[label=<z⁻¹> class=loop", source)
    assert [(int(s), int(d)) for s, d in loops] == folded.loop_edges
    assert [(folded.nodes[int(s)].name, folded.nodes[int(d)].name) for s, d in loops] == [("h", "h[t-1]")]
    assert "class=step" not in source and "<B>cell</B>" in source and "<B>gate</B>" in source
    # an unrolled graph folded by the renderer: delay edges from step 1's h into its own readers
    source = visualize.to_dot(graph, view="folded").source
    loops = {(int(s), int(d)) for s, d in re.findall(r"n(\d+) -> n(\d+) \[label=<z⁻¹> class=loop", source)}
    assert loops == {(graph.steps[1].state_out[0], d) for _, d, _ in graph.state_edges
                     if graph.step_of[d][1] == 1}
