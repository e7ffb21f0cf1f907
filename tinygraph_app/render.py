"""Draw a recurrent net: its folded cell with the delay loop, or its graph unrolled over T steps.

The budget is checked before unrolling: from a 2- and a 3-step unroll, how many nodes T steps would
draw and how wide. When that is over --max-nodes, or over 20,000 pt wide (time runs in one row, left
to right), only the first and last steps that fit are drawn, the rest behind a "…" (as --window
draws them), with a note on stderr; and when the whole unroll would be over the nodes --timeout
allows (or 512 MiB of arrays), only the drawn steps are unrolled (so --steps 1000000 takes seconds).
--grads and --values need the whole unroll: they are refused past that budget.

An .html output is the interactive explorer (visualize.explore): one self-contained page with the
unrolled and the folded picture, hover for a node's numbers, click for its paths to the loss, and a
slider playing backpropagation through time back from the last step; it always runs backward.

Examples:
  tinygraph render --cell lstm --steps 12 -o lstm.html
  tinygraph render --cell lstm --view folded --link lstm_unrolled.svg -o lstm_folded.svg
  tinygraph render --cell lstm --steps 3 --grads -o lstm_unrolled.svg
  tinygraph render --cell rnn --steps 50 --level cell --grads --window 0:4,-4: -o rnn.svg
"""
import os
import sys

import numpy as np

import rnn_models
import tinygraph as tg
import visualize

from .cells import HELP as CELL_HELP
from .cells import cell_spec
from .extras import MissingDependencyError, require, require_dot
from .limits import SEED, integer, number, output_file

STEPS = integer(1, 1_000_000)         # past the budget only the drawn steps are unrolled
LAYERS = integer(1, 8, size=True)
SIZE = integer(1, 1024, size=True)    # hidden size, input size, batch of a picture
MAX_NODES = integer(10, 20_000)       # dot takes minutes past some thousands of nodes
TIMEOUT = number(0, 3600)
# The whole unroll is built when it has at most this many nodes, and at most NODES_PER_SECOND per
# second of --timeout (a conservative rate for unrolling, backward and writing DOT: measured 15-60k).
UNROLL_NODES = 50_000
NODES_PER_SECOND = 20_000
UNROLL_BYTES = 2**29   # and at most this much array memory; past it fewer steps are drawn


def window(text):
    """``--window``: an int in [1, 1000000] (that many steps: the first half and the last) or
    comma-separated slices and indices over the steps like ``0:3,-2:`` (read against --steps, before
    any work, by ``run``)."""
    return STEPS(text) if text.strip().lstrip("-").isdigit() else text


def add_model_arguments(parser, steps=STEPS):
    """Add the flags that build the model drawn (``--steps`` in the range ``steps``, ``--layers``,
    ``--hidden`` ...), shared with ``gradflow``."""
    parser.add_argument("--steps", type=steps, default=4, metavar="T", help=f"time steps, {steps.text}")
    parser.add_argument("--layers", type=LAYERS, default=1, metavar="N", help=f"stacked layers, {LAYERS.text}")
    parser.add_argument("--hidden", type=SIZE, default=3, metavar="N", help=f"hidden size, {SIZE.text}")
    parser.add_argument("--input-size", type=SIZE, default=2, metavar="N", help=f"input size, {SIZE.text}")
    parser.add_argument("--batch", type=SIZE, default=1, metavar="B", help=f"batch size, {SIZE.text}")
    parser.add_argument("--seed", type=SEED, default=0, help=f"random seed, {SEED.text}")


def add_arguments(parser):
    """Add the ``tinygraph render`` flags to the argparse ``parser``."""
    parser.add_argument("--cell", type=cell_spec, default="rnn", help=CELL_HELP)
    add_model_arguments(parser)
    parser.add_argument("--view", choices=visualize.VIEWS, default="unrolled", help="what to draw")
    parser.add_argument("--level", choices=visualize.LEVELS, default="op",
                        help="op: every primitive; cell: one box per step; layer: one box per layer")
    parser.add_argument("--grads", action="store_true",
                        help="paint log10 |dL/d.| of a last-step loss on the unrolled graph")
    parser.add_argument("--values", action="store_true", help="add shapes and value summaries")
    parser.add_argument("--window", type=window, default=None, metavar="SPEC",
                        help="time steps to draw, the rest elided: an int or slices like 0:3,-2: "
                             "(default: all that fit --max-nodes)")
    parser.add_argument("--max-nodes", type=MAX_NODES, default=visualize.DEFAULT_MAX_NODES,
                        help=f"most nodes to draw, {MAX_NODES.text}; past it the middle steps are elided")
    parser.add_argument("--timeout", type=TIMEOUT, default=120.0,
                        help=f"seconds allowed for dot, {TIMEOUT.text}; also bounds the unroll "
                             f"({NODES_PER_SECOND} nodes a second, at most {UNROLL_NODES})")
    parser.add_argument("--link", default=None, metavar="URL",
                        help="folded view: link each node to the same op at t=0 of the unrolled "
                             "picture at URL (drawn with the same --cell/--steps/... options) "
                             "(default: no links)")
    parser.add_argument("-o", "--output", required=True,
                        type=output_file("svg", "png", "pdf", "dot", "html"),
                        help="output file: .svg, .png, .pdf, .dot (.gv) for the DOT text, or .html for "
                             "the interactive explorer (both views, hover, paths, a BPTT slider)")


def build_model(cell, input_size, hidden, layers, seed, fused=True):
    """A seeded recurrent layer for ``cell`` (a registry kind or ``package.module:ClassName``).
    ``fused=False`` builds our cells' gates from primitives, each in its own scope (what an op-level
    picture should show); the numbers are the same. A user's cell is drawn as it is written."""
    tg.manual_seed(seed)
    if cell in rnn_models.CELL_KINDS:
        return rnn_models.CELL_KINDS[cell](input_size, hidden, num_layers=layers, fused=fused)
    return rnn_models.make_layer(cell, input_size, hidden, num_layers=layers)


def unrolled_graph(model, steps, batch, seed, grads=False, numbers=None):
    """Unroll ``model`` over a seeded random input ``x`` (T, B, I) with a last-step MSE loss (so
    painted gradients show how far back in time the loss reaches). Returns the loss's Graph; with
    ``grads`` every op node keeps its gradient and backward has run.

    ``numbers``: the time steps of a longer run that these ``steps`` stand for, one per step in order
    (``[0, 1, 2, 999998, 999999]``). The graph records its steps under those numbers, so a picture
    elides the ones between; its input is called after the slices it stands for (``x[0:3,
    999998:1000000]``). The values are those of this short unroll, not of the long one.
    """
    rng = np.random.default_rng(seed)
    name = "x" if numbers is None else f"x[{_slices(numbers)}]"
    x = tg.tensor(rng.standard_normal((steps, batch, model.input_size)), name=name)
    out, _ = model(x)
    with tg.scope("loss"):
        loss = tg.mse_loss(out[-1], rng.standard_normal(out.shape[1:]))
    graph = visualize.retain_all(loss) if grads else tg.Graph.of(loss)
    if grads:
        loss.backward()
    if numbers is not None:
        graph.renumber_steps(numbers)
    return graph


def _runs(numbers):
    """Consecutive runs of sorted ints: ``[0, 1, 2, 7, 8]`` -> ``[(0, 2), (7, 8)]``."""
    runs = []
    for t in numbers:
        if runs and runs[-1][1] == t - 1:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return [tuple(r) for r in runs]


def _slices(numbers):
    runs = _runs(numbers)
    if len(runs) > 4:
        return f"{len(numbers)} steps"
    return ", ".join(f"{a}:{b + 1}" if b > a else f"{a}" for a, b in runs)


class Plan:
    """What ``render`` will unroll and draw of ``--steps`` T, decided before unrolling them, from a
    2- and a 3-step unroll (the first step, a middle one, the last, and what grows with T).

    Attributes: drawn (the time steps the picture shows, sorted), whole (unroll all T steps, else
    only the drawn ones), nodes and bytes (the estimated size of the whole unrolled graph), budget
    (the most nodes unrolled whole, from --timeout), notice (one line for stderr when steps are
    elided, else None).
    """

    def __init__(self, model, args):
        T = self.steps = args.steps
        cost, outer, self.nodes, self.bytes, step_bytes, width = _measure(model, args)
        kept = _positions(args.window, T)
        self.kept = len(kept)

        def total(cost, steps):
            return sum(map(cost, steps)) if len(steps) <= 3 or args.window is not None else \
                cost(steps[0]) + cost(steps[1]) * (len(steps) - 2) + cost(steps[-1])
        self.drawn = kept if outer + total(cost, kept) <= args.max_nodes else \
            visualize.fit_window(kept, cost, args.max_nodes - outer)
        self.wide = total(width, self.drawn) > visualize.DEFAULT_MAX_WIDTH   # one row of time
        if self.wide:
            self.drawn = visualize.fit_window(self.drawn, width,
                                              visualize.DEFAULT_MAX_WIDTH - visualize.dot.WIDTH_RESERVE)
        self.per_step = cost(min(1, T - 1))
        self.budget = min(UNROLL_NODES, int(args.timeout * NODES_PER_SECOND))
        if getattr(args, "grads", False):
            self.bytes *= 2   # backward keeps a gradient the size of each value
        self.whole = self.nodes <= self.budget and self.bytes <= UNROLL_BYTES
        self.memory = False   # whether the memory bound cut the drawn steps further
        fixed = max(self.bytes - step_bytes * T, 0)
        if not self.whole and fixed + step_bytes * len(self.drawn) > UNROLL_BYTES:
            self.drawn = visualize.fit_window(self.drawn, lambda t: step_bytes, UNROLL_BYTES - fixed)
            self.memory = True
        self.notice = self._notice(args) if len(self.drawn) < T else None

    def _over(self, args):
        """Why the whole unroll is not built: its nodes or its memory."""
        if self.nodes > self.budget:
            return f"~{self.nodes} nodes, over the {self.budget} --timeout {args.timeout:g} allows"
        return f"~{_size(self.bytes)}, over the {_size(UNROLL_BYTES)} allowed"

    def _notice(self, args):
        runs = _runs(self.drawn)
        shown = [f"{a}…{b}" if b > a else f"{a}" for a, b in runs]
        if len(shown) > 4:
            shown = shown[:2] + ["…"] + shown[-2:]
        if self.memory:
            why = f"to stay within {_size(UNROLL_BYTES)} of memory"
        elif self.wide:
            why = f"to keep the picture within {visualize.DEFAULT_MAX_WIDTH} pt wide (time runs in one row)"
        elif len(self.drawn) == self.kept:
            why = f"as --window {args.window} asks"
        else:
            why = f"to stay within --max-nodes {args.max_nodes} (~{self.per_step} nodes a step)"
        line = (f"drawing {len(self.drawn)} of {self.steps} time steps (t={', '.join(shown)}), the rest "
                f"elided {why}")
        if not self.whole:
            line += f"; only the drawn steps were unrolled (all {self.steps} would be {self._over(args)})"
        return line

    def graph(self, model, args, grads=False, flag=None, drop=None):
        """The unrolled graph to draw: all steps, or only the drawn ones recorded under their
        numbers. ``grads`` (and ``--values``) need all of them: past the budget, ValueError naming
        ``flag`` (default: --grads or --values) as what needs them and ``drop`` as the way out."""
        if self.whole:
            return unrolled_graph(model, self.steps, args.batch, args.seed, grads)
        if grads or args.values:
            flag = flag or ("--grads" if grads else "--values")
            drop = drop or f"drop {flag} (without it only the drawn steps are unrolled)"
            most = max(1, min(self.budget * self.steps // max(self.nodes, 1),
                              UNROLL_BYTES * self.steps // max(self.bytes, 1)))
            raise ValueError(f"{flag} needs the whole unroll, and --steps {self.steps} would be "
                             f"{self._over(args)}; lower --steps to about {most} (or --hidden, "
                             f"--batch), or {drop}")
        return unrolled_graph(model, len(self.drawn), args.batch, args.seed, numbers=self.drawn)

    def window(self):
        """The ``steps=`` to draw the graph from ``graph()`` with: the drawn steps when it holds
        all of them and some are elided, else None (it holds just what is drawn)."""
        if not self.whole or len(self.drawn) == self.steps:
            return None
        return ",".join(f"{a}:{b + 1}" for a, b in _runs(self.drawn))


def _size(nbytes):
    return f"{nbytes / 2**20:.0f} MiB" if nbytes >= 2**20 else f"{nbytes / 2**10:.0f} KiB"


def _measure(model, args):
    """``(cost(t), outer, nodes, bytes, bytes a step, width(t))`` of the picture and the graph of a
    ``--steps`` T unroll: the nodes drawn for step t and outside the steps (``visualize.step_costs``)
    and the whole graph's nodes and array bytes, read off the T-step unroll itself for T <= 3, else
    off a 2- and a 3-step one (a middle step stands for every step but the first and the last)."""
    T = args.steps

    def size(graph):
        return len(graph.nodes), sum(graph.memory().values())  # each buffer once, released ones 0
    if T <= 3:
        graph = unrolled_graph(model, T, args.batch, args.seed)
        outer, costs = visualize.step_costs(graph, args.level)
        nodes, nbytes = size(graph)
        widths = visualize.step_widths(graph, args.level)
        return costs.__getitem__, outer, nodes, nbytes, nbytes // T, widths.__getitem__
    two = unrolled_graph(model, 2, args.batch, args.seed)
    three = unrolled_graph(model, 3, args.batch, args.seed)
    outer2, _ = visualize.step_costs(two, args.level)
    outer3, costs = visualize.step_costs(three, args.level)
    widths = visualize.step_widths(three, args.level)
    (nodes2, bytes2), (nodes3, bytes3) = size(two), size(three)

    def cost(t):
        return costs[0] if t == 0 else costs[2] if t == T - 1 else costs[1]

    def width(t):
        return widths[0] if t == 0 else widths[2] if t == T - 1 else widths[1]
    step_bytes = bytes3 - bytes2
    return (cost, outer3 + (outer3 - outer2) * (T - 3), nodes3 + (nodes3 - nodes2) * (T - 3),
            bytes3 + step_bytes * (T - 3), step_bytes, width)


def _positions(window, steps):
    """The time steps ``--window`` keeps of ``steps`` (all when it is None)."""
    return range(steps) if window is None else visualize.parse_steps(window, range(steps))


def run(args):
    """Run ``tinygraph render`` with the parsed ``args``; returns the exit code."""
    if args.window is not None:   # before any work: a window that cannot be read, or past --steps
        visualize.parse_steps(args.window, range(args.steps))
    output_format = visualize.format_of(args.output)
    if output_format != "dot":
        picture = "the .html explorer" if output_format == "html" else f"the .{output_format} picture"
        require_dot(picture, instead=f"write the DOT text, -o {os.path.splitext(args.output)[0]}.dot")
    model = build_model(args.cell, args.input_size, args.hidden, args.layers, args.seed,
                        fused=args.level != "op")
    if output_format == "html":
        return _explore(model, args)
    if args.view == "folded":
        if args.grads:
            raise ValueError("--grads paints a backward pass, which runs over the unrolled graph; use "
                             "--view unrolled")
        graph = model.folded(batch=args.batch)
        if args.link:   # the ops of step 0 are the same in any unroll of two or more steps
            unrolled = unrolled_graph(model, min(args.steps, 2), args.batch, args.seed)
            args.link = visualize.link_to(unrolled, args.link)
        window = args.window
    else:
        plan = Plan(model, args)
        graph = plan.graph(model, args, args.grads)
        window = plan.window()
        if plan.notice:
            print(f"tinygraph render: note: {plan.notice}", file=sys.stderr)
    path = visualize.render(graph, args.output, view=args.view, level=args.level, steps=window,
                            grads=args.grads, values=args.values, max_nodes=args.max_nodes,
                            link=args.link, timeout=args.timeout)
    print(f"wrote {path}")
    return 0


def _explore(model, args):
    """``-o graph.html``: the explorer of the unrolled graph with its backward pass (both views)."""
    if args.link:
        raise ValueError("--link joins separate SVG files; an .html explorer holds the folded and the "
                         "unrolled picture itself: drop --link (or write .svg files)")
    plan = Plan(model, args)
    graph = plan.graph(model, args, grads=True, flag="an .html explorer",
                       drop="write an .svg picture (of which only the drawn steps are unrolled)")
    if plan.notice:
        print(f"tinygraph render: note: {plan.notice}", file=sys.stderr)
    path = visualize.explore(graph, args.output, view=args.view, level=args.level, steps=plan.window(),
                             values=args.values, max_nodes=args.max_nodes, timeout=args.timeout).path
    print(f"wrote {path}")
    return 0


def write_demo_pictures(out_dir="out", history=None, log=print):
    """The pictures for ``make demo``: the folded and unrolled graphs of a small RNN and LSTM
    (unrolled ones painted with BPTT gradients; each folded node links to the same op at t=0 of the
    unrolled SVG), an explorer page of each (``<cell>_explorer.html``), the gradient flow of both
    over 30 steps, and with ``history`` (a training history: per-step ``loss`` and
    ``smoothed_loss`` lists) its loss curve. Without Graphviz the DOT text is
    written instead, with a note. Returns the paths written."""
    log(f"pictures in {out_dir}/:")
    os.makedirs(out_dir, exist_ok=True)
    try:
        visualize.dot_executable()
        suffix = "svg"
    except visualize.GraphvizNotFoundError as exc:
        log(f"  note: {exc}; writing .dot files instead")
        suffix = "dot"
    paths = []
    for cell, steps in (("rnn", 4), ("lstm", 3)):
        unrolled_name = f"{cell}_unrolled.{suffix}"
        model = build_model(cell, 2, 3, 1, seed=0, fused=False)
        graph = unrolled_graph(model, steps, 1, seed=0, grads=True)
        paths.append(visualize.render(model.folded(), os.path.join(out_dir, f"{cell}_folded.{suffix}"),
                                      view="folded", link=visualize.link_to(graph, unrolled_name)))
        paths.append(visualize.render(graph, os.path.join(out_dir, unrolled_name), grads=True))
        graph = unrolled_graph(model, 12, 1, seed=0, grads=True)
        paths.append(visualize.render(graph, os.path.join(out_dir, f"{cell}_unrolled_cells.{suffix}"),
                                      level="cell", grads=True, steps="0:3,-3:"))
        if suffix == "svg":   # the same 12 steps to explore in a browser: hover, paths, BPTT slider
            paths.append(visualize.explore(graph, os.path.join(out_dir, f"{cell}_explorer.html")).path)
    try:
        require("matplotlib", "plot", "plotting the gradient flow and the loss")
    except MissingDependencyError as exc:
        log(f"  note: {exc}; skipped")
    else:
        from .gradflow import state_norms
        runs = {cell: state_norms(cell, steps=30, hidden=16, seed=0) for cell in ("rnn", "lstm")}
        path = os.path.join(out_dir, "gradflow.svg")
        visualize.gradflow(runs, path, title="‖∂L/∂h_t‖ of a last-step loss (T=30, hidden 16)")
        paths.append(path)
        curves = {key: history[key] for key in ("loss", "smoothed_loss") if history and history.get(key)}
        if curves:
            path = os.path.join(out_dir, "loss.svg")
            visualize.loss_curve(curves, path, title="char-RNN training loss (nats/char)")
            paths.append(path)
    for path in paths:
        log(f"  wrote {path}")
    return paths
