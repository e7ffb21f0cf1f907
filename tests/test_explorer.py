"""visualize.explore / `tinygraph render -o graph.html`: one self-contained HTML page per graph.

What is checked here without a browser: the page names no external URL, its JSON blob parses and
describes every node the pictures draw, hostile names cannot end the script, the same model and seed
give a byte-identical page, bad input is one line naming the argument, and a T=100 LSTM explorer is
written in under 3 s. tests/test_explorer_browser.py drives the page in a real headless Chromium.
"""
import html
import json
import os
import re
import resource
import shutil
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygraph as tg
import visualize
from tinygraph.graph import Loop
from tinygraph.modes import in_step
from tinygraph_app import cli
from tinygraph_app.render import build_model, unrolled_graph

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
DATA = re.compile(r'<script type="application/json" id="tg-data">(.*?)</script>', re.S)


def page_data(text):
    return json.loads(DATA.search(text).group(1))


def svg_node_ids(text, view):
    """The ids of the <g class="node ..."> elements of one embedded picture."""
    start = text.index(f'id="tg-view-{view}"')
    svg = text[text.index("<svg", start):text.index("</svg>", start) + 6]
    svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg" '
                      'xmlns:xlink="http://www.w3.org/1999/xlink"', 1)
    root = ET.fromstring(svg)
    return [(g.get("id"), g.get("class")) for g in root.iter("{http://www.w3.org/2000/svg}g")
            if (g.get("class") or "").startswith("node")]


@pytest.fixture(scope="module")
def lstm_page(tmp_path_factory):
    model = build_model("lstm", 2, 3, 1, seed=0, fused=False)
    graph = unrolled_graph(model, 4, 1, seed=0, grads=True)
    path = tmp_path_factory.mktemp("explorer") / "lstm.html"
    explorer = visualize.explore(graph, path)
    return graph, explorer, path.read_text(encoding="utf-8")


def test_the_page_is_one_file_with_no_external_url(lstm_page):
    _, explorer, text = lstm_page
    assert explorer.html == text and text.startswith("<!DOCTYPE html>")
    assert "http://" not in text and "https://" not in text
    links = re.findall(r'\b(?:src|href|xlink:href|action|data)\s*=\s*"([^"]*)"', text, re.I)
    assert all(not link.startswith("//") and "://" not in link for link in links), links
    assert "<link" not in text and not re.search(r"<script[^>]*\bsrc=", text) and "@import" not in text
    assert text.count("<svg") >= 3      # the unrolled picture, the folded one, the gradient chart
    ids = re.findall(r'\bid="([^"]*)"', text)
    assert len(ids) == len(set(ids))    # unique element ids: the folded picture's are "folded:..."


def test_the_data_describes_every_drawn_node(lstm_page):
    graph, _, text = lstm_page
    data = page_data(text)
    ids = visualize.StepIndex(graph).stable_ids
    assert list(data["nodes"]) == ids and len(data["edges"]) == len(graph.edges)
    assert data["outputs"] == [ids[i] for i in graph.outputs]
    gate = data["nodes"]["lstm/l0/forget_gate/sigmoid_0@2"]
    assert gate["op"] == "sigmoid" and gate["t"] == 2 and gate["scope"] == "lstm/l0/t=2/forget_gate"
    assert gate["shape"] == [1, 3] and gate["dtype"] == "float64" and gate["stats"].startswith("mean ")
    assert gate["grad"] != "—" and gate["family"] == "lstm/l0/forget_gate/sigmoid_0"
    assert [s["t"] for s in data["steps"]] == [0, 1, 2, 3]
    last = {s["series"]: s for s in data["steps"][-1]["states"]}
    assert set(last) == {"h", "c"}
    h3 = graph.nodes[ids.index(last["h"]["id"])]
    assert last["h"]["norm"] == pytest.approx(float(np.linalg.norm(h3.grad.data)), rel=1e-5)
    for view in ("unrolled", "folded"):
        elements = data["views"][view]["elements"]
        drawn = [(i, c) for i, c in svg_node_ids(text, view)
                 if not {"anchor", "elision", "legend"} & set(c.split())]
        assert drawn and all(i in elements for i, _ in drawn), [i for i, _ in drawn if i not in elements]
        assert all(set(e["nodes"]) <= set(data["nodes"]) for e in elements.values())
    unrolled = data["views"]["unrolled"]
    assert sorted(unrolled["steps"].values()) == [0, 1, 2, 3]           # the step clusters
    refs = [e for e in unrolled["elements"].values() if e["kind"] == "ref"]
    assert refs and all(e["t"] in (0, 1, 2, 3) for e in refs)            # a reference's own step
    assert all(e["t"] is None for e in data["views"]["folded"]["elements"].values())


@pytest.mark.parametrize("level", ["cell", "layer"])
def test_collapsed_levels_map_their_boxes(level):
    model = build_model("gru", 2, 3, 2, seed=1)
    graph = unrolled_graph(model, 3, 1, seed=1, grads=True)
    text = visualize.explore(graph, level=level).html
    data = page_data(text)
    for view in ("unrolled", "folded"):
        elements = data["views"][view]["elements"]
        groups = [i for i, c in svg_node_ids(text, view) if "group" in c.split()]
        assert groups and all(i in elements and elements[i]["kind"] == "group" for i in groups)
        assert all(len(elements[i]["nodes"]) > 1 for i in groups)


def test_same_model_and_seed_give_a_byte_identical_page(lstm_page, tmp_path):
    _, explorer, _ = lstm_page
    model = build_model("lstm", 2, 3, 1, seed=0, fused=False)
    again = visualize.explore(unrolled_graph(model, 4, 1, seed=0, grads=True))
    assert again.html == explorer.html


def hostile_graph(name):
    """A two-step recurrence whose state, input and scope carry ``name``."""
    rng = np.random.default_rng(0)
    w = tg.tensor(rng.standard_normal((2, 2)), requires_grad=True, name=name)
    x = tg.tensor(rng.standard_normal((2, 1, 2)), name=name + "x")
    loop, h = Loop(name), tg.tensor(np.zeros((1, 2)), name="h0")
    for t in range(2):
        with tg.scope(name.replace("/", "|")), tg.scope(f"t={t}"), in_step(loop, t):
            new = tg.tanh(x[t] @ w + h @ w)
            new.name = name
            loop.record(t, (h,), (new,), new)
            h = new
    loss = (h * h).sum()
    graph = visualize.retain_all(loss)
    loss.backward()
    return graph


@pytest.mark.parametrize("name", ["</script><script>alert(1)</script>", "a\x00b\x1b[31m\u2028\ud800&<!--",
                                  "<!-- </SCRIPT >", "ünï/cødé ✓ \\N \"q\" 'q'"])
def test_hostile_names_cannot_end_the_script(name):
    text = visualize.explore(hostile_graph(name)).html
    assert text.lower().count("</script") == 2          # the data blob's end and the script's end
    assert "<script" not in DATA.search(text).group(1).lower()
    text.encode("utf-8")                                 # no lone surrogate reached the page
    data = page_data(text)
    shown = visualize.labels.printable(name)
    assert any(n["name"] == shown for n in data["nodes"].values())
    if "<" in name:
        assert name not in text                          # only ever escaped


def test_bad_input_is_one_line_naming_the_argument(lstm_page, tmp_path):
    graph = lstm_page[0]
    cases = [
        (dict(path=str(tmp_path / "g.svg")), ValueError, ["path must end in .html", "'", "visualize.render"]),
        (dict(path=str(tmp_path / "missing" / "g.html")), FileNotFoundError, ["does not exist", "create it"]),
        (dict(path=3), TypeError, ["path", "int"]),
        (dict(view="sideways"), ValueError, ["view must be one of", "'sideways'"]),
        (dict(level="gate"), ValueError, ["level must be one of", "'gate'"]),
        (dict(folded=1), TypeError, ["folded must be True or False", "1"]),
        (dict(grads="yes"), TypeError, ["grads must be", "'yes'"]),
        (dict(title=5), TypeError, ["title must be a str"]),
        (dict(timeout=-1), ValueError, ["timeout", "-1"]),
        (dict(folded=False, view="folded"), ValueError, ["folded=True"]),
        (dict(steps="0:x"), ValueError, ["'0:x'", "0:3,-2:"]),
    ]
    for kwargs, error, words in cases:
        with pytest.raises(error) as info:
            visualize.explore(graph, **kwargs)
        message = str(info.value)
        assert "\n" not in message and all(w in message for w in words), (kwargs, message)
    plain = tg.tensor(np.ones(3), requires_grad=True) * 2
    with pytest.raises(ValueError, match="folded=False"):
        visualize.explore(plain.sum())
    assert "folded" not in page_data(visualize.explore(plain.sum(), folded=False).html)["views"]
    with pytest.raises(TypeError, match="expected a tinygraph Graph"):
        visualize.explore("graph")


def test_a_graph_without_gradients_still_explores():
    model = build_model("rnn", 2, 3, 1, seed=0, fused=False)
    data = page_data(visualize.explore(unrolled_graph(model, 3, 1, seed=0)).html)
    assert all(n["grad"] == "—" for n in data["nodes"].values())
    assert all(s["norm"] is None for step in data["steps"] for s in step["states"])


def test_jupyter_display_is_a_sandboxed_iframe(lstm_page):
    explorer = lstm_page[1]
    shown = explorer._repr_html_()
    assert shown.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in shown
    assert "<script" not in shown and html.unescape(shown.split('"')[1]) == explorer.html
    assert "characters" in repr(explorer)


def test_render_and_the_cli_write_html(lstm_page, tmp_path, capsys):
    graph = lstm_page[0]
    path = visualize.render(graph, tmp_path / "r.html", view="folded")
    assert path.endswith("r.html") and page_data(open(path, encoding="utf-8").read())["view"] == "folded"
    with pytest.raises(ValueError, match="drop link"):
        visualize.render(graph, tmp_path / "r.html", link="x.svg")
    assert visualize.format_of("G.HTML") == "html"
    out = tmp_path / "cli.html"
    assert cli.main(["render", "--cell", "gru", "--steps", "3", "--level", "cell", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    data = page_data(out.read_text(encoding="utf-8"))
    assert len(data["steps"]) == 3 and any(n["grad"] != "—" for n in data["nodes"].values())
    assert cli.main(["render", "--link", "u.svg", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "drop --link" in err


def test_a_t100_lstm_explorer_is_written_in_under_3_seconds(tmp_path):
    """Wall time on a machine no busier than its cores; on a busier one (tests of other work running
    beside these) the wall clock measures the other processes, and the bar is on the CPU time the
    page costs: this process and its ``dot`` runs."""
    model = build_model("lstm", 2, 3, 1, seed=0, fused=False)
    graph = unrolled_graph(model, 100, 1, seed=0, grads=True)
    walls, cpus = [], []
    for _ in range(2):   # the better of two runs
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu, start = time.process_time(), time.perf_counter()
        explorer = visualize.explore(graph, tmp_path / "t100.html")
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(time.process_time() - cpu + after.ru_utime + after.ru_stime -
                    children.ru_utime - children.ru_stime)
        if walls[-1] < 3.0:
            break
    busy = os.getloadavg()[0] > (os.cpu_count() or 1)
    assert min(cpus) < 3.0, cpus
    assert min(walls) < 3.0 or busy, (walls, os.getloadavg())
    assert len(page_data(explorer.html)["steps"]) == 100
