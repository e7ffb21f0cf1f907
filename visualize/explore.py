"""One self-contained HTML page for exploring a Graph: its pictures, its numbers, and BPTT played back.

``explore(graph, "graph.html")`` writes a single file that needs no network (no CDN, no external
URL: the SVG pictures, a small hand-written script and its data are inline) where a learner can

- hover a node: its op, scope, stable id, time step, shape and dtype, value statistics and
  ‖∂L/∂·‖ (a shared node's reference: that step's term of its gradient);
- click a node: every path from it to the loss is highlighted (clicking the loss: every path into
  it, all that its gradient flows back through); click the background or press Esc to clear;
- drag the time slider (or press ▶): backpropagation through time played back from the last step
  to t=0. The steps the gradient has not reached yet are dimmed, and the panel shows ‖∂L/∂h_t‖ (and
  ‖∂L/∂c_t‖ for an LSTM) at the step reached, its ratio to the last step's, and where it sits on
  the per-step curve (log scale) drawn below;
- switch between the unrolled and the folded picture of the same graph: the selected node stays
  selected (an op of step t maps to the op of the folded cell, and back to step t).

The pictures are ``visualize.svg(graph, ...)`` as they are (``to_dot``'s options apply; gradients
are painted when the graph holds them); the script finds nodes by the stable ids ``to_dot`` writes
into the SVG (``lstm/l0/forget_gate/sigmoid_0@3``). The page's data is one JSON blob in a
``<script type="application/json">``, ``<``, ``>`` and ``&`` written as ``\\u003c``... so no name
can end the script; names are shown as text (never parsed as HTML), made printable by
``visualize.labels``. The same graph and options give a byte-identical page.

In Jupyter the returned ``Explorer`` displays itself (``_repr_html_``: the page in a sandboxed
``<iframe srcdoc>``, so two explorers in one notebook cannot clash).
"""
import html
import json
import math
import os
import re
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import tinygraph as tg

from . import grads as G
from .dot import DEFAULT_MAX_NODES, LEVELS, VIEWS, to_dot
from .labels import printable, shorten
from .render import DEFAULT_TIMEOUT, check_timeout, layout, write_atomic
from .structure import StepIndex, safe_id

SUFFIXES = (".html",)
TEXT_CHARS = 500          # names and scopes longer than this are cut in the page's data
SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_ASSETS = Path(__file__).with_name("explore_assets")


class Explorer:
    """The page ``explore`` made: ``html`` (the text), ``path`` (where it was written, or None),
    ``save(path)``; displays itself in Jupyter."""

    def __init__(self, html_text, path=None):
        self.html, self.path = html_text, path

    def save(self, path):
        """Write the page to ``path`` (``.html``), atomically; returns the path."""
        path = check_path(path)
        write_atomic(path, self.html.encode("utf-8"))
        self.path = path
        return path

    def _repr_html_(self):
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" sandbox="allow-scripts" '
                f'style="width:100%;height:640px;border:1px solid #ccc" '
                f'title="tinygraph explorer"></iframe>')

    def __repr__(self):
        where = f" written to {self.path!r}" if self.path else ""
        return f"Explorer({len(self.html)} characters{where})"


def check_path(path):
    """``path`` as a str if it ends in ``.html`` and its directory exists, else ValueError
    (FileNotFoundError for the directory) in one line naming it and the fix."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"explore: path must be a file name ending in .html, got {type(path).__name__}")
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() not in SUFFIXES:
        raise ValueError(f"explore: path must end in .html (the explorer is one HTML page), got "
                         f"{shorten(printable(path), 80)!r}; for a picture use visualize.render(graph, "
                         f"'graph.svg')")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"explore: directory {shorten(printable(folder), 80)!r} does not exist "
                                f"(for path {shorten(printable(path), 80)!r}); create it first")
    return path


def explore(graph, path=None, *, view="unrolled", level="op", steps=None, grads=None, values=False,
            folded=True, max_nodes=DEFAULT_MAX_NODES, legend=True, title=None, timeout=DEFAULT_TIMEOUT):
    """Write the interactive explorer of ``graph`` to ``path`` (``.html``; None: only build it) and
    return the ``Explorer``.

    Args:
        graph: ``tg.Graph`` (an unrolled one: ``visualize.retain_all(loss)`` before
            ``loss.backward()`` gives every node its gradient), a Tensor or a list of Tensors.
        view: the picture shown first, ``"unrolled"`` or ``"folded"``.
        level, steps, values, max_nodes, legend: as for ``to_dot`` (the unrolled picture; the folded
            one is always drawn at ``level``, all of one step).
        grads: paint ‖∂L/∂·‖ on the pictures; None (default): when the graph holds gradients.
        folded: embed the folded picture too (needs a graph that recorded time steps or has
            ``loop_edges``; False for a plain graph without either).
        title: the page's heading. timeout: seconds for each ``dot`` run (or None).
    """
    if path is not None:
        path = check_path(path)
    if view not in VIEWS:
        raise ValueError(f"explore: view must be one of {VIEWS}, got {view!r}")
    if level not in LEVELS:
        raise ValueError(f"explore: level must be one of {LEVELS}, got {level!r}")
    for name, flag in (("folded", folded), ("values", values), ("legend", legend)):
        if not isinstance(flag, bool):
            raise TypeError(f"explore: {name} must be True or False, got {flag!r}")
    if grads is not None and not isinstance(grads, bool):
        raise TypeError(f"explore: grads must be True, False or None (paint when the graph holds "
                        f"gradients), got {grads!r}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"explore: title must be a str or None, got {type(title).__name__}")
    check_timeout(timeout)
    graph = G.as_graph(graph)
    if not folded and view == "folded":
        raise ValueError("explore: view='folded' needs the folded picture; pass folded=True (the "
                         "default) or view='unrolled'")
    if folded and not graph.loop_edges and not graph.steps:
        raise ValueError("explore: this graph recorded no time steps and has no loop_edges, so it has "
                         "no folded picture; pass folded=False, or unroll it with rnn_models.Recurrent")
    norms = G.node_norms(graph)
    if grads is None:
        grads = any(v is not None for v in norms)
    options = dict(level=level, grads=grads, values=values, legend=legend)
    # the page pans and zooms, so no width limit: every step within the node budget is drawn
    pictures = {"unrolled": to_dot(graph, view="unrolled", steps=steps, max_nodes=max_nodes,
                                   max_width=math.inf, **options)}
    # dot runs in its own process: the pictures are laid out side by side while the data is read
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {"unrolled": pool.submit(layout, pictures["unrolled"], "svg", timeout)}
        if folded:
            pictures["folded"] = to_dot(graph, view="folded", **options)
            jobs["folded"] = pool.submit(layout, pictures["folded"], "svg", timeout)
        data = _page_data(graph, norms)
        svgs = {name: job.result().decode("utf-8") for name, job in jobs.items()}
    prefix = {"unrolled": "", "folded": "folded:"}   # one page, unique ids: edge1, graph0... are in both
    for name, text in svgs.items():
        data["views"][name] = _read_svg(text, _view_index(graph, name), data, prefix[name],
                                        timed=name == "unrolled")
    page = _page(graph, data, {name: _inline(svgs[name], prefix[name]) for name in pictures}, view, title)
    explorer = Explorer(page)
    if path is not None:
        explorer.save(path)
    return explorer


# --- the data the script reads ------------------------------------------------------------------
def _text(value):
    return None if value is None else shorten(printable(value), TEXT_CHARS)


def _stats(array):
    if isinstance(array, tg.Released):
        return "released (no gradient rule reads it)"
    a = np.asarray(array)
    if a.size == 0:
        return "empty"
    if a.dtype.kind not in "biuf":
        return f"{a.dtype} values"
    a = a.astype(np.float64)
    if a.size == 1:
        return f"{a.item():.4g}"
    return f"mean {a.mean():.4g}, std {a.std():.4g}, min {a.min():.4g}, max {a.max():.4g}"


def _number(value):
    """A finite norm as a short JSON number (6 significant digits), else None."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def _kind(graph, pos, loop_dst):
    node = graph.nodes[pos]
    if node.op is not None:
        return "op"
    if node.requires_grad and pos not in loop_dst:
        return "parameter"
    return "input" if node.name else "constant"


def _page_data(graph, norms):
    """Everything the script needs but the pictures: nodes by stable id, edges, outputs, steps."""
    idx = StepIndex(graph)
    ids = idx.stable_ids
    loop_dst = {d for _, d in graph.loop_edges}
    nodes = {}
    for pos, node in enumerate(graph.nodes):
        home = idx.home[pos]
        loop = home[0] if home is not None and pos not in idx.attached else None
        local = idx.local_ids[pos]
        nodes[ids[pos]] = {
            "name": _text(node.name),
            "op": node.op.name if node.op is not None else None,
            "attrs": _text(_attrs(node.op)) if node.op is not None else None,
            "kind": _kind(graph, pos, loop_dst),
            "requires_grad": bool(node.requires_grad),
            "scope": _text(node.scope or ""),
            "shape": list(node.shape),
            "dtype": str(node.dtype),
            "stats": _stats(node.data),
            "grad": G.format_norm(norms[pos]) if norms[pos] is None or math.isfinite(norms[pos])
            else str(norms[pos]),
            "t": None if home is None or graph.loop_edges else home[1],
            "family": f"{loop}/{local}" if loop is not None and local else ids[pos],
        }
    edges = [[ids[s], ids[d]] for s, d, _ in graph.edges]
    return {"nodes": nodes, "edges": edges, "outputs": [ids[i] for i in graph.outputs],
            "steps": [] if graph.loop_edges else _steps(graph, norms, ids), "views": {}}


def _attrs(op):
    parts = []
    for key, value in op.attrs().items():
        if value is None or value is False:
            continue
        parts.append(f"{key}=array{value.shape}" if isinstance(value, np.ndarray) else f"{key}={value!r}")
    return ", ".join(parts) or None


def _steps(graph, norms, ids):
    """Per time step (in time order): the norms of the gradients of the states it produced."""
    by_t = {}
    several = len(graph.loops) > 1
    for step in graph.steps:
        loop = graph.loops[step.loop].name
        for k, pos in enumerate(step.state_out):
            if pos is None:
                continue
            name = graph.nodes[pos].name or f"s{k}"
            series = f"{loop}: {name}" if several else name
            by_t.setdefault(step.t, []).append({
                "series": _text(series), "name": _text(name), "loop": _text(loop) if several else None,
                "id": ids[pos], "norm": _number(norms[pos]),
                "text": G.format_norm(norms[pos]) if norms[pos] is None or math.isfinite(norms[pos])
                else str(norms[pos])})
    return [{"t": t, "states": states} for t, states in sorted(by_t.items())]


def _view_index(graph, view):
    """The stable ids ``to_dot`` writes into the SVG of ``view`` (its own StepIndex), per position."""
    read = view == "folded" or not graph.loop_edges
    return StepIndex(graph, read_steps=read)


def _read_svg(svg_text, view_index, data, prefix="", timed=True):
    """``{"elements": {svg id: {"nodes": [stable ids], "t": t, "kind": ...}}, "edges": {svg id:
    [src svg id, dst svg id]}, "steps": {svg cluster id: t}}`` read off the SVG ``dot`` wrote.
    ``prefix``: what the page puts before each element id of this picture; ``timed``: whether the
    picture has time steps (the folded one draws one step for all: t is None)."""
    primary = list(data["nodes"])
    pos_of = {sid: pos for pos, sid in enumerate(view_index.stable_ids)}
    home = view_index.home
    groups, io, shown = {}, {}, {}
    for h in home:   # the folded picture draws each loop's second step (its first if it has one)
        if h is not None and len(shown.setdefault(h[0], [])) < 2 and h[1] not in shown[h[0]]:
            shown[h[0]].append(h[1])
    for pos, h in enumerate(home):
        if h is None:
            continue
        if pos in view_index.attached:
            io.setdefault(f"{view_index.attached[pos]}@{h[1]}", []).append(pos)
        else:
            groups.setdefault(safe_id(f"{h[0] or 'cell'}@{h[1]}"), []).append(pos)
            groups.setdefault(safe_id(f"cell@{h[1]}"), []).append(pos)
            if h[1] == shown[h[0]][-1]:   # a box of the folded picture
                groups.setdefault(safe_id(h[0] or "cell"), []).append(pos)
                groups.setdefault("cell", []).append(pos)
    root = ET.fromstring(svg_text)
    elements, by_name, edge_titles, clusters = {}, {}, [], {}
    for g in root.iter(f"{SVG_NS}g"):
        cls, gid = (g.get("class") or "").split(), g.get("id")
        title = g.find(f"{SVG_NS}title")
        title = title.text if title is not None else None
        if not cls or gid is None:
            continue
        own, gid = gid, prefix + gid
        if cls[0] == "edge":
            edge_titles.append((gid, title))
        elif cls[0] == "cluster" and "step" in cls:
            label = "".join(g.find(f"{SVG_NS}text").itertext()) if g.find(f"{SVG_NS}text") is not None else ""
            match = re.fullmatch(r"t=(-?\d+)", label.strip())
            if match:
                clusters[gid] = int(match.group(1))
        elif cls[0] == "node":
            by_name[title] = gid
            entry = _element(g, own, cls, pos_of, home, groups, io, primary)
            if entry is not None:
                elements[gid] = entry
    edges = {}
    for gid, title in edge_titles:
        src, _, dst = (title or "").partition("->")
        a, b = by_name.get(src), by_name.get(dst)
        if a in elements and b in elements:
            edges[gid] = [a, b]
            if elements[a]["kind"] == "ref" and elements[a]["t"] is None:
                elements[a]["t"] = elements[b]["t"]    # a reference belongs to the step reading it
    if not timed or view_index.folded or all(h is None for h in home):
        for entry in elements.values():
            entry["t"] = None
    return {"elements": elements, "edges": edges, "steps": clusters}


def _element(g, gid, cls, pos_of, home, groups, io, primary):
    if gid in pos_of:
        pos = pos_of[gid]
        h = home[pos]
        return {"nodes": [primary[pos]], "t": None if h is None else h[1], "kind": "node"}
    link = next((a.get(XLINK_HREF) for a in g.iter(f"{SVG_NS}a") if a.get(XLINK_HREF)), None)
    if link and link.startswith("#") and link[1:] in pos_of:   # a per-step reference to a shared node
        return {"nodes": [primary[pos_of[link[1:]]]], "t": None, "kind": "ref"}
    if "group" in cls and gid in groups:
        members = groups[gid]
        return {"nodes": [primary[p] for p in members], "t": home[members[0]][1], "kind": "group"}
    if "io" in cls and gid in io:
        members = io[gid]
        return {"nodes": [primary[p] for p in members], "t": home[members[0]][1], "kind": "io"}
    return None


# --- the page -----------------------------------------------------------------------------------
def _inline(svg_text, prefix=""):
    """Graphviz's SVG as inline markup for an HTML page: no XML prolog, DOCTYPE, comments or
    namespace declarations (the HTML parser puts <svg> in the SVG namespace itself), so the page
    names no external URL; ``prefix`` before each group's id."""
    start = svg_text.index("<svg")
    body = re.sub(r"<!--.*?-->\n?", "", svg_text[start:], flags=re.S)
    if prefix:
        body = body.replace('<g id="', f'<g id="{prefix}')
    head_end = body.index(">")
    head = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", body[:head_end])
    return head + body[head_end:]


def _json(data):
    """JSON safe inside <script>: ASCII only, and no <, > or & that could end or open a tag."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _chart(steps):
    """The per-step gradient-norm curves (log scale) as inline SVG, and the x of each step."""
    width, height, left, right, top, bottom = 640, 150, 52, 12, 10, 26
    series = list(dict.fromkeys((s["series"], s["name"], s["loop"])
                                for step in steps for s in step["states"]))
    values = [s["norm"] for step in steps for s in step["states"] if s["norm"]]
    n = len(steps)
    xs = [left + (width - left - right) * (k / (n - 1) if n > 1 else 0.5) for k in range(n)]
    if not values:
        return ('<svg class="tg-chart" width="640" height="40"><text x="8" y="24">no gradients: call '
                'visualize.retain_all(loss) before loss.backward()</text></svg>'), xs
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    high = max(high, low + 1)

    def y(v):
        return top + (height - top - bottom) * (high - math.log10(v)) / (high - low)
    colours = ("#1f4e79", "#c00000", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f")
    parts = [f'<svg class="tg-chart" width="{width}" height="{height}" role="img" '
             f'aria-label="gradient norm per time step">']
    for d in range(low, high + 1):
        yy = y(10.0 ** d)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" '
                     f'stroke="#e0e0e0"/><text x="{left - 4}" y="{yy + 3:.1f}" text-anchor="end" '
                     f'font-size="9">1e{d}</text>')
    for k, (name, state, loop) in enumerate(series):
        colour = colours[k % len(colours)]
        points = []
        for x, step in zip(xs, steps):
            v = next((s["norm"] for s in step["states"] if s["series"] == name), None)
            if v:
                points.append(f"{x:.1f},{y(v):.1f}")
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                     f'points="{" ".join(points)}"/>')
        parts.append(f'<text x="{left + 6}" y="{top + 12 + 12 * k}" font-size="10" '
                     f'fill="{colour}">‖∂L/∂{html.escape(state)}_t‖'
                     f'{" " + html.escape(loop) if loop else ""}</text>')
    for t_text, x in ((steps[0]["t"], xs[0]), (steps[-1]["t"], xs[-1])):
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 12}" font-size="9" '
                     f'text-anchor="middle">t={t_text}</text>')
    parts.append(f'<line id="tg-marker" x1="{xs[0]:.1f}" x2="{xs[0]:.1f}" y1="{top}" '
                 f'y2="{height - bottom}" stroke="#000" stroke-dasharray="3,2"/></svg>')
    return "".join(parts), xs


def _page(graph, data, svgs, view, title):
    steps = data["steps"]
    chart, xs = _chart(steps) if steps else ("", [])
    data["chart"] = {"x": [round(x, 1) for x in xs]}
    data["view"] = view
    heading = title if title is not None else f"tinygraph explorer: {len(graph.nodes)} nodes" + (
        f", {len(steps)} time steps" if steps else "")
    css = (_ASSETS / "explore.css").read_text(encoding="utf-8")
    script = (_ASSETS / "explore.js").read_text(encoding="utf-8")
    views = "".join(
        f'<div class="tg-view" id="tg-view-{name}" data-view="{name}"'
        f'{"" if name == view else " hidden"}>{svg}</div>' for name, svg in svgs.items())
    switch = "".join(
        f'<button type="button" class="tg-switch" id="tg-show-{name}" data-view="{name}">{name}</button>'
        for name in svgs) if len(svgs) > 1 else ""
    slider = ""
    if steps:
        last = len(steps) - 1
        slider = (f'<div class="tg-time"><button type="button" id="tg-play" title="play BPTT from the '
                  f'last step back to t=0">▶ play BPTT</button> <label for="tg-slider">backprop has '
                  f'reached</label> <input type="range" id="tg-slider" min="0" max="{last}" step="1" '
                  f'value="0" dir="ltr"> <span id="tg-step">t={steps[0]["t"]}</span>'
                  f'<div id="tg-stepinfo" class="tg-stepinfo"></div>{chart}</div>')
    safe_title = html.escape(printable(heading))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{safe_title}</title><style>{css}</style></head>\n<body>'
            f'<div class="tg-root"><div class="tg-bar"><h1>{safe_title}</h1>{switch}'
            f'<button type="button" id="tg-zoom-out" title="zoom out">−</button>'
            f'<button type="button" id="tg-zoom-in" title="zoom in">+</button>'
            f'<button type="button" id="tg-zoom-fit" title="fit the width">fit</button>'
            f'<span class="tg-help">hover a node for its numbers · click it for its paths to the loss'
            f' · Esc clears</span></div>{slider}'
            f'<div id="tg-selection" class="tg-selection"></div>'
            f'<div class="tg-views">{views}</div>'
            f'<div id="tg-tip" class="tg-tip" hidden></div></div>\n'
            f'<script type="application/json" id="tg-data">{_json(data)}</script>\n'
            f'<script>{script}</script>\n</body></html>\n')
