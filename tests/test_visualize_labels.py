"""Pictures of graphs whose names, scopes, titles and links hold anything: control characters, lone
surrogates, names longer than dot can read, scopes nested 1,500 deep. Each renders (or is refused
with a clear message), with the text written out and cut in the labels and ids, the whole of it in
the tooltip, and the output byte-identical run to run."""
import contextlib
import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import rnn_models
import tinygraph as tg
import visualize
from visualize.dot import MAX_DEPTH
from visualize.labels import (LABEL_CHARS, TOOLTIP_BYTES, URL_BYTES, altered, label_text, printable,
                              tooltip_text, url_text)
from visualize.structure import ID_CHARS

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"

# C0 controls, DEL, C1 controls, lone surrogates (high, low, both ends) and the two non-characters
CONTROL = [chr(c) for c in range(0x20)] + ["\x7f", "\x80", "\x85", "\x9b", "\x9f"]
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
NONCHARS = ["\ufffe", "\uffff"]
BAD_CHARS = CONTROL + SURROGATES + NONCHARS
FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")  # DOT keeps \t, \n
LONG = [LABEL_CHARS + 1, 16384, 20000, 100000]


def written(ch):
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def net(name, scope=""):
    """loss = sum(2 * tanh(w)), w and tanh both called ``name``, inside ``scope`` (a "/" path)."""
    with contextlib.ExitStack() as stack:
        for part in filter(None, scope.split("/")):
            stack.enter_context(tg.scope(part))
        w = tg.tensor(np.ones(2), requires_grad=True, name=name)
        y = tg.tanh(w)
        y.name = name
        loss = (y * 2).sum()
    return loss


def nested(depth, name="w"):
    """A net inside ``depth`` nested scopes s0/s1/... (entered one by one, not as one path)."""
    with contextlib.ExitStack() as stack:
        for k in range(depth):
            stack.enter_context(tg.scope(f"s{k}"))
        return net(name)


def assert_dot_safe(source):
    """DOT text dot can read: UTF-8 (no surrogate left), no control character, no line of 16384+
    bytes (dot's limit per string)."""
    data = source.encode("utf-8")   # raises on a lone surrogate
    assert FORBIDDEN.search(source) is None
    assert max(len(line) for line in data.split(b"\n")) < 16384


def svg_tree(graph, **options):
    text = visualize.svg(graph, **options)
    return ET.fromstring(text)     # well-formed XML: no control character reached the SVG


def node_texts(root):
    """{node id: (label text lines, tooltip or None)} from an SVG."""
    out = {}
    for g in root.iter(f"{SVG}g"):
        if (g.get("class") or "").startswith("node"):
            lines = [t.text or "" for t in g.iter(f"{SVG}text")]
            link = next((a for a in g.iter(f"{SVG}a") if a.get(f"{XLINK}title")), None)
            out[g.get("id")] = (lines, link.get(f"{XLINK}title") if link is not None else None)
    return out


# --- the text helpers -------------------------------------------------------------------------------
@pytest.mark.parametrize("ch", BAD_CHARS, ids=[f"U+{ord(c):04X}" for c in BAD_CHARS])
def test_printable_writes_out_each_bad_character(ch):
    assert printable(f"a{ch}b") == f"a{written(ch)}b"
    assert label_text(f"a{ch}b") == f"a{written(ch)}b" and altered(f"a{ch}b")
    assert FORBIDDEN.search(printable(ch * 3)) is None


def test_ordinary_text_is_left_alone():
    text = "héllo wörld ∂L/∂h_t ‖·‖ z⁻¹ 𝔁 <b>&amp;\"quoted\" back\\slash …"
    assert printable(text) == text and label_text(text) == text and not altered(text)
    assert url_text("rnn_unrolled.svg#rnn/l0/h_0@0") == "rnn_unrolled.svg#rnn/l0/h_0@0"


def test_labels_are_cut_at_the_limit():
    assert label_text("x" * LABEL_CHARS) == "x" * LABEL_CHARS and not altered("x" * LABEL_CHARS)
    cut = label_text("x" * (LABEL_CHARS + 1))
    assert len(cut) == LABEL_CHARS and cut.endswith("…") and altered("x" * (LABEL_CHARS + 1))


@pytest.mark.parametrize("ch", ["x", "€", "𝔁", "\\", '"', "\x01", "\ud800"])
def test_tooltips_fit_dots_string_limit(ch):
    tip = str(tooltip_text(ch * 20000))
    written_bytes = len(tip.encode("utf-8")) + tip.count('"')      # graphviz escapes each quote
    assert written_bytes <= TOOLTIP_BYTES < 16384 and tip.endswith("…")
    short = str(tooltip_text(["first", "a\x1bb"]))
    assert short == "first\na\\\\\\\\x1bb"                         # dot unescapes twice


def test_urls_are_percent_encoded_and_bounded():
    assert url_text("a b\x01\"<c>\\d\ud800") == "a%20b%01%22%3Cc%3E%5Cd%ED%A0%80"
    assert url_text("x" * URL_BYTES) == "x" * URL_BYTES
    with pytest.raises(ValueError, match=f"longer than the {URL_BYTES} a picture can hold"):
        url_text("x" * (URL_BYTES + 1))


# --- names and scopes in pictures ---------------------------------------------------------------------
@pytest.mark.parametrize("ch", BAD_CHARS, ids=[f"U+{ord(c):04X}" for c in BAD_CHARS])
@pytest.mark.parametrize("where", ["name", "scope"])
def test_each_bad_character_makes_safe_dot(ch, where):
    name, scope = (f"w{ch}x", "outer") if where == "name" else ("w", f"sc{ch}pe/inner")
    source = visualize.to_dot(net(name, scope)).source
    assert_dot_safe(source)
    assert written(ch) in source
    assert "tooltip=" in source                    # the label was changed: its whole text is kept there


@needs_dot
def test_every_bad_character_renders_in_one_picture():
    """All of them at once as names, op names and scopes: one valid SVG whose labels show each
    character written out, the tooltip the same text."""
    losses = [net(f"w{ch}", scope=f"s{ch}") for ch in BAD_CHARS]
    total = losses[0]
    for loss in losses[1:]:
        total = total + loss
    root = svg_tree(total, legend=False)
    texts = [(" ".join(lines), tip) for lines, tip in node_texts(root).values()]
    for ch in BAD_CHARS:
        shown = [(label, tip) for label, tip in texts if f"w{written(ch)}" in label]
        assert shown and all(tip is not None and f"w{written(ch)}" in tip for _, tip in shown), ch
    clusters = [t.text for g in root.iter(f"{SVG}g") if g.get("class") == "cluster scope"
                for t in g.iter(f"{SVG}text")]
    assert {f"s{written(ch)}" for ch in BAD_CHARS} <= set(clusters)


@needs_dot
@pytest.mark.parametrize("ch", ["\x00", "\x1b", "\ud800"])
def test_svg_and_dot_files_are_written(ch, tmp_path):
    """A NUL, an escape and a surrogate in a name: each output format is written."""
    for suffix in (".svg", ".dot"):
        path = visualize.render(net(f"a{ch}b"), tmp_path / f"g{suffix}")
        text = open(path, encoding="utf-8").read()
        shown = written(ch) if suffix == ".svg" else written(ch).replace("\\", "\\\\")  # dot's escape
        assert f"a{shown}b" in text and FORBIDDEN.search(text) is None


@pytest.mark.parametrize("length", LONG)
@pytest.mark.parametrize("ch", ["x", "€", "𝔁"])
def test_long_names_are_cut_in_labels_and_ids(length, ch):
    source = visualize.to_dot(net(ch * length)).source
    assert_dot_safe(source)
    assert ch * LABEL_CHARS not in source.split("tooltip=")[0]           # the label holds less
    assert ch * (LABEL_CHARS - 1) + "…" in source
    ids = re.findall(r'\bid="?([^" \]]+)', source)
    assert ids and all(len(i) <= ID_CHARS + 2 for i in ids)              # + "_0" ordinal at most
    tips = re.findall(r'tooltip="([^"]*)"', source)
    assert tips and all(len(t.encode("utf-8")) <= TOOLTIP_BYTES for t in tips)


def test_a_name_at_the_limit_is_drawn_whole_without_a_tooltip():
    source = visualize.to_dot(net("n" * LABEL_CHARS)).source
    assert f"<B>{'n' * LABEL_CHARS}</B>" in source and "tooltip" not in source and "…" not in source


@needs_dot
@pytest.mark.parametrize("name", ["x" * 20000, "𝔁" * 20000, "a\x1b" * 50000], ids=["ascii", "astral", "escapes"])
def test_long_names_render(name):
    nodes = node_texts(svg_tree(net(name), legend=False))
    shown = [(lines, tip) for lines, tip in nodes.values() if tip]
    assert len(shown) == 2                              # w and tanh
    for lines, tip in shown:
        assert lines[0].endswith("…") and len(lines[0]) == LABEL_CHARS
        assert tip.startswith(printable(name)[:1000]) and tip.endswith("…")


def test_long_ids_stay_distinct_and_stable():
    a, b = "q" * 5000 + "a", "q" * 5000 + "b"
    ids = lambda loss: visualize.StepIndex(tg.Graph.of(loss)).stable_ids     # noqa: E731
    first, second = ids(net(a) + net(b)), ids(net(a) + net(b))
    assert first == second and len(set(first)) == len(first)
    assert all(len(i) <= ID_CHARS + 2 for i in first)


@pytest.mark.parametrize("length", LONG)
def test_long_scope_names_are_cut(length):
    source = visualize.to_dot(net("w", scope="s" * length + "/inner")).source
    assert_dot_safe(source)
    assert "s" * (LABEL_CHARS - 1) + "…" in source


# --- nesting --------------------------------------------------------------------------------------------
def cluster_depth(source):
    depth = deepest = 0
    for line in source.splitlines():
        text = line.strip()
        if text.startswith("subgraph"):
            depth += 1
            deepest = max(deepest, depth)
        elif text == "}":
            depth -= 1
    return deepest


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 1500, 3000])
def test_deep_scopes_are_walked_without_recursion(depth):
    source = visualize.to_dot(nested(depth)).source
    assert_dot_safe(source)
    assert cluster_depth(source) == min(depth, MAX_DEPTH)
    assert ("nested deeper than" in source) == (depth > MAX_DEPTH)


@needs_dot
def test_1500_nested_scopes_render():
    root = svg_tree(nested(1500))
    scopes = [g for g in root.iter(f"{SVG}g") if g.get("class") == "cluster scope"]
    assert len(scopes) == MAX_DEPTH
    deepest = " ".join(t.text for t in scopes[-1].iter(f"{SVG}text") if t.text)
    assert deepest.startswith(f"s{MAX_DEPTH - 1}/s{MAX_DEPTH}/") and "…" in deepest


def gated_cell(scope_name, state_name):
    """A user's gated cell with its own sub-scope and state name, run by ``rnn_models.Recurrent``."""
    rng = np.random.default_rng(0)
    w = tg.tensor(rng.uniform(-0.5, 0.5, (3, 8)), requires_grad=True, name="w" + scope_name[:3])
    u = tg.tensor(rng.uniform(-0.5, 0.5, (4, 8)), requires_grad=True, name=state_name)

    def cell(x, h):
        with tg.scope(scope_name):
            z, a = tg.split(x @ w + h @ u, 2, axis=-1)
            z = tg.sigmoid(z)
        new = z * h + (1 - z) * tg.tanh(a)
        new.name = state_name
        return new
    return rnn_models.Recurrent(cell, state_size=4, input_size=3)


@pytest.mark.parametrize("scope_name,state_name", [
    ("g\x1b[31m" + "a" * 600, "h\x00"), ("\ud800" * 300, "s" * 20000), ("gate", "h\x85\u2028")],
    ids=["escape-long", "surrogates-20000", "C1"])
@pytest.mark.parametrize("level", visualize.LEVELS)
def test_a_recurrent_net_with_bad_names_draws_in_every_view(scope_name, state_name, level):
    node = gated_cell(scope_name, state_name)
    with tg.scope("outer\x07" * 30):
        outputs, _ = node(tg.tensor(np.ones((4, 1, 3)), name="x\x1b"))
    graph = tg.Graph.of(tg.stack(outputs).sum())
    assert_dot_safe(visualize.to_dot(graph, level=level).source)
    assert_dot_safe(visualize.to_dot(graph, view="folded", level=level).source)
    assert_dot_safe(visualize.to_dot(node.folded(), view="folded", level=level).source)


def test_folded_links_reach_the_unrolled_picture_with_long_names():
    node = gated_cell("g" * 600, "h" * 600)
    with tg.scope("cell"):                          # the scope folded() traces the step in
        outputs, _ = node(tg.tensor(np.ones((3, 1, 3)), name="x"))
    unrolled = tg.Graph.of(tg.stack(outputs).sum())
    ids = set(visualize.StepIndex(unrolled).stable_ids)
    source = visualize.to_dot(node.folded(), view="folded",
                              link=visualize.link_to(unrolled, "u.svg")).source
    targets = re.findall(r'URL="u\.svg#([^"]+)"', source)
    assert len(targets) >= 3 and all(t in ids for t in targets)
    assert any(len(t) > ID_CHARS for t in targets)     # cut ids keep their "@0"


@needs_dot
def test_a_deep_recurrent_net_renders():
    node = gated_cell("gate", "h")
    with contextlib.ExitStack() as stack:
        for k in range(1500):
            stack.enter_context(tg.scope(f"s{k}"))
        outputs, _ = node(tg.tensor(np.ones((3, 1, 3)), name="x"))
    graph = tg.Graph.of(tg.stack(outputs).sum())
    for level in visualize.LEVELS:
        assert_dot_safe(visualize.to_dot(graph, level=level).source)
    root = svg_tree(graph)
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "cluster step"]) == 3


# --- titles, links, determinism ---------------------------------------------------------------------
@needs_dot
def test_titles_and_links_with_bad_characters():
    title = "run \x1b[1m\ud800" + "t" * 20000
    link = "pic \x01\ud800.svg#{id}"
    graph = node_graph = gated_cell("gate", "h").folded()
    root = svg_tree(node_graph, view="folded", title=title, link=link)
    caption = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.startswith("run ")]
    assert caption == [label_text(title)]
    hrefs = {a.get(f"{XLINK}href") for a in root.iter(f"{SVG}a") if a.get(f"{XLINK}href")}
    assert hrefs and all(h.startswith("pic%20%01%ED%A0%80.svg#") for h in hrefs)
    with pytest.raises(ValueError, match="link: a URL of"):
        visualize.to_dot(graph, view="folded", link="x" * URL_BYTES + "{id}")


@needs_dot
def test_the_same_names_give_byte_identical_dot_and_svg():
    def picture():
        tg.manual_seed(0)
        node = gated_cell("g\x1b" + "a" * 300, "h\ud800")
        outputs, _ = node(tg.tensor(np.ones((3, 1, 3)), name="x\x00"))
        graph = tg.Graph.of(tg.stack(outputs).sum())
        return visualize.to_dot(graph).source, visualize.svg(graph)
    assert picture() == picture()


def test_ordinary_names_get_no_tooltip():
    node = gated_cell("gate", "h")
    outputs, _ = node(tg.tensor(np.ones((3, 1, 3)), name="x"))
    for level in visualize.LEVELS:
        assert "tooltip" not in visualize.to_dot(tg.Graph.of(tg.stack(outputs).sum()), level=level).source


@pytest.mark.filterwarnings("ignore:Tight layout not applied")   # a 200-character title is wide
def test_plots_with_bad_titles_and_run_names_are_valid_svg():
    pytest.importorskip("matplotlib", reason="plots need matplotlib")
    runs = {f"run{ch}": [1.0, 0.5, 0.25] for ch in ["\x00", "\x1b", "\ud800", "\x85"]}
    runs["r" * 20000] = [1.0, 2.0, 3.0]
    title = "title \x01\x1b[31m\ud800" + "t" * 20000
    for plot in (visualize.gradflow, visualize.loss_curve):
        root = ET.fromstring(plot(runs, title=title))
        assert len([g for g in root.iter(f"{SVG}g") if (g.get("id") or "").startswith("run-")]) == 5
