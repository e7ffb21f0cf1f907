"""Draw a recurrent net: its folded cell with the delay loop, or its graph unrolled over T steps.

Examples:
  tinygraph render --cell lstm --view folded --link lstm_unrolled.svg -o lstm_folded.svg
  tinygraph render --cell lstm --steps 3 --grads -o lstm_unrolled.svg
  tinygraph render --cell rnn --steps 50 --level cell --grads --window 0:4,-4: -o rnn.svg
"""
import os

import numpy as np

import rnn_models
import tinygraph as tg
import visualize

from .cells import HELP as CELL_HELP
from .cells import cell_spec
from .limits import SEED, integer, number, output_file

STEPS = integer(1, 1_000_000)
LAYERS = integer(1, 8, size=True)
SIZE = integer(1, 1024, size=True)    # hidden size, input size, batch of a picture
MAX_NODES = integer(10, 20_000)       # dot takes minutes past some thousands of nodes
TIMEOUT = number(0, 3600)


def window(text):
    """``--window``: an int in [1, 1000000] (that many steps: the first half and the last) or
    comma-separated slices and indices over the steps like ``0:3,-2:`` (read against --steps, before
    any work, by ``run``)."""
    return STEPS(text) if text.strip().lstrip("-").isdigit() else text


def add_model_arguments(parser, steps=STEPS):
    parser.add_argument("--steps", type=steps, default=4, metavar="T", help=f"time steps, {steps.text}")
    parser.add_argument("--layers", type=LAYERS, default=1, metavar="N", help=f"stacked layers, {LAYERS.text}")
    parser.add_argument("--hidden", type=SIZE, default=3, metavar="N", help=f"hidden size, {SIZE.text}")
    parser.add_argument("--input-size", type=SIZE, default=2, metavar="N", help=f"input size, {SIZE.text}")
    parser.add_argument("--batch", type=SIZE, default=1, metavar="B", help=f"batch size, {SIZE.text}")
    parser.add_argument("--seed", type=SEED, default=0, help=f"random seed, {SEED.text}")


def add_arguments(parser):
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
                        help=f"seconds allowed for dot, {TIMEOUT.text}")
    parser.add_argument("--link", default=None, metavar="URL",
                        help="folded view: link each node to the same op at t=0 of the unrolled "
                             "picture at URL (drawn with the same --cell/--steps/... options)")
    parser.add_argument("-o", "--output", required=True, type=output_file("svg", "png", "pdf", "dot"),
                        help="output file: .svg, .png, .pdf, or .dot (.gv) for the DOT text")


def build_model(cell, input_size, hidden, layers, seed, fused=True):
    """A seeded recurrent layer for ``cell`` (a registry kind or ``package.module:ClassName``).
    ``fused=False`` builds our cells' gates from primitives, each in its own scope (what an op-level
    picture should show); the numbers are the same. A user's cell is drawn as it is written."""
    tg.manual_seed(seed)
    if cell in rnn_models.CELL_KINDS:
        return rnn_models.CELL_KINDS[cell](input_size, hidden, num_layers=layers, fused=fused)
    return rnn_models.make_layer(cell, input_size, hidden, num_layers=layers)


def unrolled_graph(model, steps, batch, seed, grads=False):
    """Unroll ``model`` over a seeded random input ``x`` (T, B, I) with a last-step MSE loss (so
    painted gradients show how far back in time the loss reaches). Returns the loss's Graph; with
    ``grads`` every op node keeps its gradient and backward has run."""
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.standard_normal((steps, batch, model.input_size)), name="x")
    out, _ = model(x)
    with tg.scope("loss"):
        loss = tg.mse_loss(out[-1], rng.standard_normal(out.shape[1:]))
    graph = visualize.retain_all(loss) if grads else tg.Graph.of(loss)
    if grads:
        loss.backward()
    return graph


def run(args):
    if args.window is not None:   # before any work: a window that cannot be read, or past --steps
        visualize.parse_steps(args.window, range(args.steps))
    model = build_model(args.cell, args.input_size, args.hidden, args.layers, args.seed,
                        fused=args.level != "op")
    if args.view == "folded":
        if args.grads:
            raise ValueError("--grads paints a backward pass, which runs over the unrolled graph; use "
                             "--view unrolled")
        graph = model.folded(batch=args.batch)
        if args.link:
            unrolled = unrolled_graph(model, args.steps, args.batch, args.seed)
            args.link = visualize.link_to(unrolled, args.link)
    else:
        graph = unrolled_graph(model, args.steps, args.batch, args.seed, args.grads)
    path = visualize.render(graph, args.output, view=args.view, level=args.level, steps=args.window,
                            grads=args.grads, values=args.values, max_nodes=args.max_nodes,
                            link=args.link, timeout=args.timeout)
    print(f"wrote {path}")
    return 0


def write_demo_pictures(out_dir="out", history=None, log=print):
    """The pictures for ``make demo``: the folded and unrolled graphs of a small RNN and LSTM
    (unrolled ones painted with BPTT gradients; each folded node links to the same op at t=0 of the
    unrolled SVG), the gradient flow of both over 30 steps, and with ``history`` (a training history:
    per-step ``loss`` and ``smoothed_loss`` lists) its loss curve. Without Graphviz the DOT text is
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
    from .gradflow import state_norms
    runs = {cell: state_norms(cell, steps=30, hidden=16, seed=0) for cell in ("rnn", "lstm")}
    curves = {key: history[key] for key in ("loss", "smoothed_loss") if history and history.get(key)}
    try:
        path = os.path.join(out_dir, "gradflow.svg")
        visualize.gradflow(runs, path, title="‖∂L/∂h_t‖ of a last-step loss (T=30, hidden 16)")
        paths.append(path)
        if curves:
            path = os.path.join(out_dir, "loss.svg")
            visualize.loss_curve(curves, path, title="char-RNN training loss (nats/char)")
            paths.append(path)
    except ImportError as exc:
        log(f"  note: no gradient-flow plot: {exc}")
    for path in paths:
        log(f"  wrote {path}")
    return paths
